// export-verb.ts — `tailor export MODEL`: a model path (optionally with an adapter merged, or a PEFT
// adapter beside it); bytes progress on stderr; Ctrl-C cancels and leaves nothing.
import { Model } from '../engine/engine.js';
import { exportModel, type ExportFormat, type ExportOptions, type ExportProgress } from '../export/export.js';
import { Eta, formatBytes, formatDuration } from '../text/progress.js';
import { json, loadOpts, loadWithAdapter, modelArg, num, str, type CommandContext } from './args.js';

/** Export progress on stderr: percent, bytes written of the total, rate and ETA. */
function bytesProgress(ctx: CommandContext, label: string): ((p: ExportProgress) => void) | undefined {
  if (ctx.values.json && !process.stderr.isTTY) return undefined;
  if (!process.stderr.isTTY && !ctx.values.progress) return undefined;
  let eta: Eta | null = null;
  return (p) => {
    eta ??= new Eta(p.totalBytes);
    const s = eta.update(p.bytesWritten);
    const line = `${label} ${(p.fraction * 100).toFixed(1).padStart(5)}%  ${formatBytes(p.bytesWritten)} / ${formatBytes(p.totalBytes)}  ${formatBytes(Math.round(s.rate))}/s  ETA ${formatDuration(s.etaSec)}`;
    ctx.err(process.stderr.isTTY ? `\r${line}${p.fraction >= 1 ? '\n' : ''}` : line + '\n');
  };
}

export async function runExport(ctx: CommandContext): Promise<void> {
  const out = str(ctx, 'out', true)!;
  const format = str(ctx, 'format', true)! as ExportFormat;
  if (!['gguf', 'hf', 'peft'].includes(format)) throw ctx.usageError('--format must be gguf, hf or peft');
  const dtype = str(ctx, 'dtype') ?? 'f32';
  if (!['f32', 'f16', 'bf16', 'q8_0'].includes(dtype)) throw ctx.usageError('--dtype must be f32, f16, bf16 or q8_0');
  const source = modelArg(ctx);
  const shard = ctx.values['shard-size'] !== undefined ? num(ctx, 'shard-size', 0, { min: 1 }) * 1e6 : undefined;
  const common: ExportOptions = { format, out, dtype: dtype as 'f32', force: !!ctx.values.force, name: str(ctx, 'name'), description: str(ctx, 'description'),
    shardBytes: shard, signal: ctx.signal, onProgress: bytesProgress(ctx, 'export') };
  const adapter = str(ctx, 'adapter');
  const merge = format !== 'peft' && adapter !== undefined;
  const m = merge ? await loadWithAdapter(ctx, loadOpts(ctx)) : await Model.load(source, loadOpts(ctx));
  try {
    const r = await exportModel(m, { ...common, adapterDir: format === 'peft' ? str(ctx, 'adapter', true) : undefined, card: merge ? { mergedAdapter: adapter } : undefined });
    if (ctx.values.json) return json(ctx, { out, format, dtype, bytes: r.bytes, architecture: r.architecture ?? null });
    ctx.out(`exported ${format}${r.architecture ? ` (${r.architecture})` : ''} ${dtype} to ${out} (${formatBytes(r.bytes)})\n`);
  } finally {
    m.dispose();
  }
}
