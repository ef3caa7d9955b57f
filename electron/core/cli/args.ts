// args.ts — what every `tailor` verb shares: the command context (parsed options, cancel signal, output
// streams), typed option readers with usage errors that name the flag, MODEL and load options, the history
// path, progress lines, JSON output, and a task given by name or as a custom file with its column-mapping
// flags (eval --task, prune --calib-task).
import * as fs from 'node:fs';
import type { LoadOptions } from '../engine/engine.js';
import { Model } from '../engine/engine.js';
import { defaultDbPath } from '../history/db.js';
import { getTask, loadCustomTask, type Task } from '../tasks/index.js';
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
  const backend = str(ctx, 'backend') ?? 'auto';
  if (backend !== 'auto' && backend !== 'cpu' && backend !== 'cuda') throw ctx.usageError(`--backend must be auto, cpu or cuda (got "${backend}")`);
  const weights = str(ctx, 'weights') ?? 'f32';
  if (weights !== 'f32' && weights !== 'bf16') throw ctx.usageError(`--weights must be f32 or bf16 (got "${weights}")`);
  return { threads: num(ctx, 'threads', 0, { int: true, min: 0, max: 1024 }), blas: !ctx.values['no-blas'], backend, weights, signal: ctx.signal, onProgress: loadProgress(ctx) };
}

const LOAD_PROGRESS_MIN_BYTES = 256 * 2 ** 20;

/** "loading: 45% (5.8 of 13.0 GB)" on stderr while a large model loads, when stderr is a terminal or --progress */
function loadProgress(ctx: CommandContext): LoadOptions['onProgress'] {
  if (ctx.values.json || !(process.stderr.isTTY || ctx.values.progress)) return undefined;
  let last = 0;
  return (done, total) => {
    if (total < LOAD_PROGRESS_MIN_BYTES) return;
    const now = performance.now();
    if (done < total && now - last < 250) return;
    last = now;
    ctx.err(`  loading: ${((done / total) * 100).toFixed(0)}% (${(done / 1e9).toFixed(1)} of ${(total / 1e9).toFixed(1)} GB)\n`);
  };
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

/** "640 bytes", "1.25 KiB", "2 GiB": binary units, at most two decimals */
export function fmtBytes(n: number): string {
  const units: Array<[number, string]> = [[1024 ** 3, 'GiB'], [1024 ** 2, 'MiB'], [1024, 'KiB']];
  const u = units.find(([d]) => n >= d);
  return u ? `${Number((n / u[0]).toFixed(2))} ${u[1]}` : `${fmtInt(n)} bytes`;
}

/** The column-mapping flags of a custom task file (CSV/TSV/JSONL). */
export const TASK_FILE_OPTIONS = {
  'text-col': { type: 'string' }, 'label-col': { type: 'string' }, 'question-col': { type: 'string' }, 'choices-col': { type: 'string' },
  'answer-col': { type: 'string' }, template: { type: 'string' },
} as const;

/** --FLAG NAME (a built-in task) or --FLAG FILE with its column mapping (a custom task, seeded 80/20 split 0). */
export function taskArg(ctx: CommandContext, flag = 'task'): Task {
  const t = str(ctx, flag, true)!;
  if (!fs.existsSync(t)) return getTask(t, { fullEval: !ctx.values['held-out'] });
  // a custom file: classification (--text-col --label-col) or multiple choice (--question-col --choices-col --answer-col)
  if (ctx.values['text-col'] !== undefined)
    return loadCustomTask(t, { kind: 'classification', text: str(ctx, 'text-col')!, label: str(ctx, 'label-col', true)!, template: str(ctx, 'template') });
  if (ctx.values['question-col'] !== undefined) {
    const choices = str(ctx, 'choices-col', true)!;
    return loadCustomTask(t, { kind: 'multiple-choice', question: str(ctx, 'question-col')!, choices: choices.includes(',') ? choices.split(',') : choices,
      answer: str(ctx, 'answer-col', true)!, template: str(ctx, 'template') });
  }
  throw ctx.usageError('a task file needs a column mapping: --text-col C --label-col C (classification) or --question-col C --choices-col C --answer-col C (multiple choice)');
}
