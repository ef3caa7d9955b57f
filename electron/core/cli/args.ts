// args.ts — what every `tailor` verb shares: the command context (parsed options, cancel signal, output
// streams) and the argument helpers (typed option readers, MODEL, load options, the history path, progress
// lines, JSON output).
import type { LoadOptions } from '../engine/engine.js';
import { Model } from '../engine/engine.js';
import { defaultDbPath } from '../history/db.js';
import { formatDuration, type StageProgress } from '../text/progress.js';
import { applyAdapter } from '../train/trainer.js';

export interface CommandContext {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  signal: AbortSignal;
  out: (s: string) => void;
  err: (s: string) => void;
  usageError: (message: string) => Error;
}

export function str(ctx: CommandContext, name: string, required = false): string | undefined {
  const v = ctx.values[name];
  if (v === undefined) {
    if (required) throw ctx.usageError(`--${name} is required`);
    return undefined;
  }
  return String(v);
}

export function num(ctx: CommandContext, name: string, dflt: number, check: { int?: boolean; min?: number; max?: number } = {}): number {
  const v = ctx.values[name];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || (check.int && !Number.isInteger(n)) || (check.min !== undefined && n < check.min) || (check.max !== undefined && n > check.max)) {
    const range = [check.min !== undefined ? `≥ ${check.min}` : '', check.max !== undefined ? `≤ ${check.max}` : ''].filter(Boolean).join(' and ');
    throw ctx.usageError(`--${name} must be ${check.int ? 'an integer' : 'a number'}${range ? ' ' + range : ''} (got "${String(v)}")`);
  }
  return n;
}

export function modelArg(ctx: CommandContext): string {
  const p = ctx.positionals[0];
  if (!p) throw ctx.usageError('MODEL (a model folder or file) is required');
  if (ctx.positionals.length > 1) throw ctx.usageError(`unexpected argument "${ctx.positionals[1]}"`);
  return p;
}

export function loadOpts(ctx: CommandContext): LoadOptions {
  return { threads: num(ctx, 'threads', 0, { int: true, min: 0, max: 1024 }), blas: !ctx.values['no-blas'] };
}

/** Loads MODEL and, with --adapter DIR, merges that PEFT adapter into it (base + adapter). */
export async function loadWithAdapter(ctx: CommandContext, opts: LoadOptions): Promise<Model> {
  const m = await Model.load(modelArg(ctx), opts);
  const adapter = str(ctx, 'adapter');
  if (adapter) {
    try {
      applyAdapter(m, adapter);
    } catch (e) {
      m.dispose();
      throw e;
    }
  }
  return m;
}

/** The history database for this command: --db PATH, else the user's data folder; --no-history: none. */
export function dbFor(ctx: CommandContext): string | null {
  return ctx.values['no-history'] ? null : (str(ctx, 'db') ?? defaultDbPath());
}

export function progressPrinter(ctx: CommandContext, label: string): ((p: StageProgress) => void) | undefined {
  if (ctx.values.json && !process.stderr.isTTY) return undefined;
  if (!process.stderr.isTTY && !ctx.values.progress) return undefined;
  let last = 0;
  return (p) => {
    const now = performance.now();
    if (now - last < 100 && p.done < p.total) return;
    last = now;
    const line = `${label} ${(p.fraction * 100).toFixed(1).padStart(5)}%  ${p.done}/${p.total}  ETA ${formatDuration(p.etaSec)}`;
    ctx.err(process.stderr.isTTY ? `\r${line}${p.done >= p.total ? '\n' : ''}` : line + '\n');
  };
}

export function json(ctx: CommandContext, v: unknown): void {
  ctx.out(JSON.stringify(v, null, 2) + '\n');
}

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}
