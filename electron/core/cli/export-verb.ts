// export-verb.ts — `tailor export MODEL|RUN_ID`: a model path (optionally with an adapter merged, or a
// PEFT adapter beside it), or a pipeline run from the history (its pruned model at one ratio with its LoRA
// adapter, a model card with the run's evaluation, the export recorded as an artifact of the run); bytes
// progress on stderr; Ctrl-C cancels and leaves nothing.
import * as fs from 'node:fs';
import { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import { exportModel, type ExportFormat, type ExportOptions, type ExportProgress } from '../export/export.js';
import { resolveRunExport } from '../export/from-run.js';
import { defaultDbPath, History, HistoryError } from '../history/db.js';
import { Eta, formatBytes, formatDuration } from '../text/progress.js';
import { applyAdapter } from '../train/trainer.js';
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
  if (!fs.existsSync(source)) return runExportFromRun(ctx, source, common);
  if (ctx.values.ratio !== undefined) throw ctx.usageError('--ratio chooses the pruning ratio of a run; MODEL is a path');
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

/** tailor export RUN_ID: the pruned model of one ratio of a pipeline run, with its LoRA adapter merged (gguf,
 *  hf) or beside it (peft), a model card with the run's evaluation, recorded as an artifact of the run. */
async function runExportFromRun(ctx: CommandContext, runId: string, common: ExportOptions): Promise<void> {
  const db = str(ctx, 'db') ?? defaultDbPath();
  if (!fs.existsSync(db)) throw new EngineError('E_ARG', `${runId} is neither an existing model path nor a run (there is no run history at ${db}; --db PATH chooses one)`);
  if (ctx.values.adapter !== undefined) throw ctx.usageError('--adapter does not apply to a run: its LoRA adapter is exported');
  const ratio = ctx.values.ratio !== undefined ? num(ctx, 'ratio', 0, { min: 0, max: 1 }) : undefined;
  let src;
  const h = History.open(db);
  try {
    src = resolveRunExport(h, runId, ratio);
  } catch (e) {
    if (e instanceof HistoryError && e.code === 'E_NOT_FOUND') throw new EngineError('E_ARG', `${runId} is neither an existing model path nor a run in ${db} (tailor runs lists them)`);
    throw e;
  } finally {
    h.close();
  }
  const m = await Model.load(src.prunedDir, loadOpts(ctx));
  try {
    if (common.format !== 'peft') applyAdapter(m, src.adapterDir);
    const r = await exportModel(m, {
      ...common, name: common.name ?? `${src.runName} (ratio ${src.ratio})`, adapterDir: common.format === 'peft' ? src.adapterDir : undefined,
      card: { baseModel: src.baseModel, runId: src.runId, evaluation: src.evaluation, perplexity: src.perplexity, mergedAdapter: common.format === 'peft' ? undefined : src.adapterDir },
    });
    const h2 = History.open(db);
    try {
      h2.addArtifact(src.runId, 'export', common.out);
    } finally {
      h2.close();
    }
    if (ctx.values.json) return json(ctx, { out: common.out, run: src.runId, ratio: src.ratio, format: common.format, dtype: common.dtype, bytes: r.bytes, architecture: r.architecture ?? null });
    ctx.out(`exported run ${src.runId} at ratio ${src.ratio} (${common.format === 'peft' ? 'adapter beside its pruned base' : 'pruned + LoRA merged'}) as ${common.format}${r.architecture ? ` (${r.architecture})` : ''} ${common.dtype} to ${common.out} (${formatBytes(r.bytes)})\n`);
  } finally {
    m.dispose();
  }
}
