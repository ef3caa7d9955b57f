// spec.ts — the pipeline spec: one JSON file (the wizard writes the same) saying which model, which
// tasks, which pruning ratios, which LoRA settings, how to evaluate and where to write. Validated with
// messages that name the field.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../engine/errors.js';
import { MAX_ROUND_TO } from '../api/contract.js';
import { METHODS, type ImportanceMethod } from '../prune/prune.js';
import { placeholders, type PromptTemplate } from '../tasks/index.js';
import { LORA_TARGETS, type LoraTarget } from '../train/lora.js';

/** A built-in task by name, or a custom task file with its column mapping (see tasks/custom.ts). */
export type TaskRef = string | { name: string; file: string; mapping: Record<string, unknown> };

export interface PipelineSpec {
  name: string;
  model: string;
  tasks: TaskRef[];
  outDir: string;
  seed: number;
  eval: { limit: number | null; shots: number; perplexity: string[] };
  /** export of each recovered (pruned + merged LoRA) model; null = none */
  export: { format: 'gguf' | 'hf'; dtype: 'f32' | 'f16' | 'bf16' | 'q8_0' } | null;
  prune: { method: ImportanceMethod; ratios: number[]; targets: number[]; layers: [number, number] | null; calibText: string | null; calibSamples: number; calibSeqLen: number; global: boolean;
    /** calibrate on the spec's tasks (their training prompts as LoRA sees them) instead of a text: task-specific compression */
    calibTask: boolean;
    /** each pruned layer keeps a multiple of this many MLP channels (1: LLM-Pruner's counts; plan.ts keptChannels) */
    roundTo: number };
  lora: { rank: number; alpha: number; lr: number; epochs: number; batch: number; maxLen: number; trainShots: number; template: 'task' | 'alpaca' | PromptTemplate; targets: LoraTarget[] };
  /** where every model of the run computes (Model.load's backend and weights) */
  compute: { backend: 'auto' | 'cpu' | 'cuda'; weights: 'f32' | 'bf16' };
}

type Obj = Record<string, unknown>;

function field<T>(o: Obj, k: string, dflt: T, check: (v: unknown) => boolean, what: string, where: string): T {
  const v = o[k];
  if (v === undefined || v === null) return dflt;
  if (!check(v)) throw new EngineError('E_ARG', `spec: ${where}${k} must be ${what}`);
  return v as T;
}

const isInt = (min: number) => (v: unknown) => Number.isInteger(v) && (v as number) >= min;
const isNum = (lo: number, hi: number) => (v: unknown) => typeof v === 'number' && v >= lo && v <= hi;

const isTemplate = (v: unknown): v is PromptTemplate => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Obj;
  if (Object.keys(o).some((k) => k !== 'prompt' && k !== 'completion') || typeof o.prompt !== 'string' || typeof o.completion !== 'string' || !o.prompt || !o.completion) return false;
  try {
    placeholders(o.prompt);
    placeholders(o.completion);
    return true;
  } catch {
    return false;
  }
};

export function parseSpec(j: unknown, base = process.cwd()): PipelineSpec {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw new EngineError('E_ARG', 'spec: expected a JSON object');
  const o = j as Obj;
  const str = (k: string, dflt?: string) => {
    const v = o[k] ?? dflt;
    if (typeof v !== 'string' || !v) throw new EngineError('E_ARG', `spec: "${k}" must be a non-empty string`);
    return v;
  };
  const tasks = o.tasks;
  const okTask = (t: unknown) => typeof t === 'string' || (typeof t === 'object' && t !== null && typeof (t as Obj).file === 'string' && typeof (t as Obj).mapping === 'object');
  if (!Array.isArray(tasks) || tasks.length === 0 || !tasks.every(okTask))
    throw new EngineError('E_ARG', 'spec: "tasks" must list task names or {"file": …, "mapping": {…}} custom tasks');
  const ev = (o.eval ?? {}) as Obj, pr = (o.prune ?? {}) as Obj, lo = (o.lora ?? {}) as Obj, co = (o.compute ?? {}) as Obj;
  if (typeof co !== 'object' || Array.isArray(co)) throw new EngineError('E_ARG', 'spec: compute must be {"backend": "auto" | "cpu" | "cuda", "weights": "f32" | "bf16"}');
  const targets = pr.targets ?? [];
  if (!Array.isArray(targets) || targets.some((t) => !isInt(1)(t))) throw new EngineError('E_ARG', 'spec: prune.targets must be a list of parameter counts');
  const ratios = pr.ratios ?? ((targets as number[]).length ? [] : [0.2, 0.5]);
  if (!Array.isArray(ratios) || ratios.some((r) => !isNum(0, 0.99)(r))) throw new EngineError('E_ARG', 'spec: prune.ratios must be a list of ratios in [0, 0.99]');
  if (ratios.length + (targets as number[]).length === 0) throw new EngineError('E_ARG', 'spec: give prune.ratios or prune.targets');
  const ppl = ev.perplexity ?? [];
  if (!Array.isArray(ppl) || ppl.some((f) => typeof f !== 'string')) throw new EngineError('E_ARG', 'spec: eval.perplexity must be a list of text files');
  const ex = o.export ?? null;
  if (ex !== null && (typeof ex !== 'object' || !['gguf', 'hf'].includes(String((ex as Obj).format)) || !['f32', 'f16', 'bf16', 'q8_0', undefined].includes((ex as Obj).dtype as string)))
    throw new EngineError('E_ARG', 'spec: export must be {"format": "gguf" | "hf", "dtype": "f32" | "f16" | "bf16" | "q8_0"}');
  const layers = pr.layers ?? null;
  if (layers !== null && (!Array.isArray(layers) || layers.length !== 2 || !layers.every(isInt(0)) || layers[0] > layers[1])) throw new EngineError('E_ARG', 'spec: prune.layers must be [first, last]');
  const method = field(pr, 'method', 'taylor', (v) => METHODS.includes(v as ImportanceMethod), METHODS.join(' | '), 'prune.');
  const rel = (p: string) => (path.isAbsolute(p) ? p : path.join(base, p));  // (Windows: C:\… and \\server\… are absolute too)
  const calib = field<string | null>(pr, 'calibText', null, (v) => typeof v === 'string', 'a file path', 'prune.');
  const calibTask = field(pr, 'calibTask', false, (v) => typeof v === 'boolean', 'true (calibrate on the tasks\' training prompts) or false (on a text)', 'prune.');
  if (calibTask && calib !== null)
    throw new EngineError('E_ARG', 'spec: prune.calibTask (calibrate on the tasks\' training prompts) and prune.calibText (calibrate on a text file) exclude each other; give one');
  return {
    name: str('name', 'tailoring run'),
    model: rel(str('model')),
    tasks: (tasks as Array<string | Obj>).map((t) => (typeof t === 'string' ? t : { name: String(t.name ?? `custom:${path.basename(String(t.file))}`), file: rel(String(t.file)), mapping: t.mapping as Record<string, unknown> })),
    outDir: rel(str('outDir')),
    seed: field(o, 'seed', 0, isInt(0), 'a non-negative integer', ''),
    eval: { limit: field<number | null>(ev, 'limit', null, isInt(1), 'a positive integer', 'eval.'), shots: field(ev, 'shots', 0, isInt(0), 'a non-negative integer', 'eval.'),
      perplexity: (ppl as string[]).map(rel) },
    export: ex === null ? null : { format: (ex as Obj).format as 'gguf', dtype: ((ex as Obj).dtype ?? 'f32') as 'f32' },
    prune: {
      method, ratios: ratios as number[], targets: targets as number[], layers: layers as [number, number] | null, calibText: calib === null ? null : rel(calib),
      calibSamples: field(pr, 'calibSamples', 10, isInt(1), 'a positive integer', 'prune.'), calibSeqLen: field(pr, 'calibSeqLen', 64, isInt(2), 'an integer ≥ 2', 'prune.'),
      global: field(pr, 'global', false, (v) => typeof v === 'boolean', 'true or false', 'prune.'), calibTask,
      roundTo: field(pr, 'roundTo', 1, (v) => isInt(1)(v) && (v as number) <= MAX_ROUND_TO, `an integer from 1 to ${MAX_ROUND_TO}`, 'prune.'),
    },
    lora: {
      rank: field(lo, 'rank', 8, isInt(1), 'a positive integer', 'lora.'), alpha: field(lo, 'alpha', 16, isNum(1e-9, 1e9), 'positive', 'lora.'),
      lr: field(lo, 'lr', 2e-4, isNum(1e-12, 10), 'a learning rate', 'lora.'), epochs: field(lo, 'epochs', 2, isInt(1), 'a positive integer', 'lora.'),
      batch: field(lo, 'batch', 8, isInt(1), 'a positive integer', 'lora.'), maxLen: field(lo, 'maxLen', 256, isInt(2), 'an integer ≥ 2', 'lora.'),
      trainShots: field(lo, 'trainShots', 50, isInt(1), 'a positive integer', 'lora.'),
      template: field<'task' | 'alpaca' | PromptTemplate>(lo, 'template', 'task', (v) => v === 'task' || v === 'alpaca' || isTemplate(v),
        '"task", "alpaca" or {"prompt": "…{field}…", "completion": "…{answer}"}', 'lora.'),
      targets: field<LoraTarget[]>(lo, 'targets', [...LORA_TARGETS], (v) => Array.isArray(v) && v.length > 0 && new Set(v).size === v.length && v.every((x) => (LORA_TARGETS as readonly unknown[]).includes(x)),
        `a non-empty list of ${LORA_TARGETS.join(', ')}`, 'lora.'),
    },
    compute: {
      backend: field<'auto' | 'cpu' | 'cuda'>(co, 'backend', 'auto', (v) => v === 'auto' || v === 'cpu' || v === 'cuda', '"auto", "cpu" or "cuda"', 'compute.'),
      weights: field<'f32' | 'bf16'>(co, 'weights', 'f32', (v) => v === 'f32' || v === 'bf16', '"f32" or "bf16" (CUDA only)', 'compute.'),
    },
  };
}

export function readSpec(file: string): PipelineSpec {
  let j: unknown;
  try {
    j = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new EngineError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'E_IO' : 'E_FORMAT', `cannot read the spec ${file}: ${(e as Error).message}`);
  }
  return parseSpec(j, path.dirname(path.resolve(file)));
}
