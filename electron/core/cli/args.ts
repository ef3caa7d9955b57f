// args.ts — what every `tailor` verb shares to read its parsed arguments: the command context, string and
// number options with usage errors that name the flag, and a task given by name or as a custom file with
// its column-mapping flags (used by eval --task and prune --calib-task).
import * as fs from 'node:fs';
import { getTask, loadCustomTask, type Task } from '../tasks/index.js';

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
