// registry.ts — look tasks up by name; the data folder is a parameter (the app ships its own copy in resources/).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUILTINS, type Split } from './builtin.js';
import { TaskError, type ChoiceItem, type Task, type TaskInfo } from './types.js';

/**
 * Default dataset folder: $TAILOR_DATA, else $TAILOR_SHARED/datasets, else `<repo>/../shared/datasets`
 * where <repo> is the first folder above this file holding package.json.
 */
export function defaultDataDir(): string {
  if (process.env.TAILOR_DATA) return process.env.TAILOR_DATA;
  if (process.env.TAILOR_SHARED) return path.join(process.env.TAILOR_SHARED, 'datasets');
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) break;
    const up = path.dirname(dir);
    if (up === dir) { dir = process.cwd(); break; }
    dir = up;
  }
  // a checkout beside ../shared uses the full datasets; an installed app uses what it ships in resources/
  const shared = path.resolve(dir, '..', 'shared', 'datasets');
  return fs.existsSync(shared) ? shared : path.join(dir, 'resources', 'datasets');
}

export function listTasks(): TaskInfo[] {
  return BUILTINS.map((b) => ({ ...b.info }));
}

export interface GetTaskOptions {
  dataDir?: string;
  /** single-split tasks (boolq, piqa, hellaswag, ag_news): evaluate on every row, overlapping trainItems() */
  fullEval?: boolean;
}

/** A built-in task by name (case-insensitive, `-` accepted for `_`). Data is read lazily, once. */
export function getTask(name: string, opts: GetTaskOptions = {}): Task {
  const key = name.trim().toLowerCase().replace(/-/g, '_');
  const def = BUILTINS.find((b) => b.info.name === key);
  if (!def) {
    throw new TaskError('E_TASK_UNKNOWN', `unknown task "${name}"; known tasks: ${BUILTINS.map((b) => b.info.name).join(', ')}`);
  }
  const dir = opts.dataDir ?? defaultDataDir();
  let split: Split | undefined;
  const load = (): Split => (split ??= def.load(dir, opts.fullEval === true));
  return {
    info: { ...def.info },
    evalItems(o?: { limit?: number }): ChoiceItem[] {
      const items = load().eval;
      const n = o?.limit;
      return n !== undefined && n >= 0 ? items.slice(0, n) : items.slice();
    },
    trainItems(): ChoiceItem[] {
      return load().train.slice();
    },
  };
}
