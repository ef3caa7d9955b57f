// validate.ts — the back end's check of every payload that crosses the contract, before anything acts on
// it: types, ranges, enums, string lengths, absolute paths without NUL bytes, no unknown fields. A bad
// payload is refused with E_PAYLOAD naming the field. Pure (no Node), so it runs in main and serve alike.
import { CHANNELS, IMPORTANCE_METHODS, LORA_TARGETS, MAX_ROUND_TO, type Channel, type Req } from './contract.js';

export class PayloadError extends Error {
  readonly code = 'E_PAYLOAD' as const;
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'PayloadError';
  }
}

type V<T> = (v: unknown, at: string) => T;

const fail = (at: string, what: string): never => {
  throw new PayloadError(at || 'payload', `must be ${what}`);
};

export const str = (o: { min?: number; max?: number } = {}): V<string> => (v, at) => {
  if (typeof v !== 'string') return fail(at, 'a string');
  if (v.length < (o.min ?? 0)) return fail(at, o.min === 1 ? 'a non-empty string' : `at least ${o.min} characters`);
  if (v.length > (o.max ?? 100_000)) return fail(at, `at most ${o.max ?? 100_000} characters`);
  return v;
};
export const num = (lo: number, hi: number): V<number> => (v, at) =>
  typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi ? v : fail(at, `a number in [${lo}, ${hi}]`);
export const int = (lo: number, hi: number): V<number> => (v, at) =>
  Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi ? (v as number) : fail(at, `an integer in [${lo}, ${hi}]`);
export const bool: V<boolean> = (v, at) => (typeof v === 'boolean' ? v : fail(at, 'true or false'));
export const lit = <T extends string>(...xs: readonly T[]): V<T> => (v, at) => (xs.includes(v as T) ? (v as T) : fail(at, `one of ${xs.join(', ')}`));
export const arr = <T>(item: V<T>, max = 1000): V<T[]> => (v, at) => {
  if (!Array.isArray(v)) return fail(at, 'a list');
  if (v.length > max) return fail(at, `a list of at most ${max}`);
  return v.map((x, i) => item(x, `${at}[${i}]`));
};
export const nullable = <T>(inner: V<T>): V<T | null> => (v, at) => (v === null ? null : inner(v, at));
export const optional = <T>(inner: V<T>): V<T | undefined> => (v, at) => (v === undefined ? undefined : inner(v, at));

/** An object with exactly these fields (optional ones may be absent); anything else is refused. */
export const obj = <T>(shape: { [K in keyof T]-?: V<T[K]> }): V<T> => (v, at) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(at, 'an object');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!(k in shape)) throw new PayloadError(at ? `${at}.${k}` : k, 'is not a known field');
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(shape) as Array<keyof T & string>) {
    const r = (shape[k] as V<unknown>)(o[k], at ? `${at}.${k}` : k);
    if (r !== undefined) out[k] = r;
  }
  return out as T;
};

/** An absolute path (POSIX or Windows), no NUL bytes, no more than 4096 characters. */
export const absPath: V<string> = (v, at) => {
  const s = str({ min: 1, max: 4096 })(v, at);
  if (s.includes('\0')) return fail(at, 'a path without NUL characters');
  if (!(s.startsWith('/') || /^[A-Za-z]:[\\/]/.test(s) || s.startsWith('\\\\'))) return fail(at, 'an absolute path');
  return s;
};
const id: V<string> = (v, at) => {
  const s = str({ min: 1, max: 200 })(v, at);
  return /^[A-Za-z0-9._:-]+$/.test(s) ? s : fail(at, 'an identifier (letters, digits, . _ : -)');
};
const empty = obj<Record<string, never>>({});
/** A JSON-ish value of bounded size (the wizard's partial spec). */
const jsonObject: V<Record<string, unknown>> = (v, at) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(at, 'an object');
  if (JSON.stringify(v).length > 1_000_000) return fail(at, 'smaller than 1 MB');
  return v as Record<string, unknown>;
};

const mapping = (v: unknown, at: string) => {
  const kind = lit('classification', 'multiple-choice')((v as { kind?: unknown } | null)?.kind, `${at}.kind`);
  const tpl = optional(str({ max: 10_000 }));
  const col = str({ min: 1, max: 200 });
  return kind === 'classification'
    ? obj({ kind: lit('classification'), text: col, label: col, labelNames: optional(arr(str({ min: 1, max: 200 }), 100)), template: tpl })(v, at)
    : obj({ kind: lit('multiple-choice'), question: col, choices: ((x: unknown, a: string) => (Array.isArray(x) ? arr(col, 26)(x, a) : col(x, a))) as V<string | string[]>, answer: col, template: tpl })(v, at);
};
const taskRef = (v: unknown, at: string) =>
  typeof v === 'string' ? str({ min: 1, max: 200 })(v, at) : obj({ name: str({ min: 1, max: 200 }), file: absPath, mapping })(v, at);
const template = (v: unknown, at: string) =>
  typeof v === 'string' ? lit('task', 'alpaca')(v, at) : obj({ prompt: str({ min: 1, max: 20_000 }), completion: str({ min: 1, max: 20_000 }) })(v, at);
const lora = obj({
  rank: int(1, 1024), alpha: num(1e-6, 1e6), lr: num(1e-9, 1), epochs: int(1, 1000), batch: int(1, 4096), maxLen: int(2, 1 << 20),
  trainShots: int(1, 1_000_000), template,
  targets: (v: unknown, at: string) => {
    const t = arr(lit(...LORA_TARGETS), 7)(v, at);
    return t.length > 0 && new Set(t).size === t.length ? t : fail(at, 'a non-empty list of distinct projections');
  },
});
const layerRange = nullable((v: unknown, at: string) => {
  const r = arr(int(0, 100_000), 2)(v, at);
  if (r.length !== 2 || r[0] > r[1]) fail(at, '[first, last] with first ≤ last');
  return r as [number, number];
});
const dtype = lit('f32', 'f16', 'bf16', 'q8_0');
const spec = obj({
  name: str({ min: 1, max: 200 }), model: absPath, tasks: arr(taskRef, 50), outDir: optional(absPath), seed: int(0, 2 ** 31 - 1),
  eval: obj({ limit: nullable(int(1, 10_000_000)), shots: int(0, 64), perplexity: arr(absPath, 20) }),
  export: nullable(obj({ format: lit('gguf', 'hf'), dtype })),
  prune: obj({
    method: lit(...IMPORTANCE_METHODS), ratios: arr(num(0, 0.99), 20), targets: arr(int(1, Number.MAX_SAFE_INTEGER), 20), layers: layerRange,
    calibText: nullable(absPath), calibSamples: int(1, 100_000), calibSeqLen: int(2, 1 << 20), global: bool, calibTask: optional(bool),
    roundTo: optional(int(1, MAX_ROUND_TO)),
  }),
  lora,
  compute: optional(obj({ backend: lit('auto', 'cpu', 'cuda'), weights: lit('f32', 'bf16') })),
});
const source = (v: unknown, at: string) => {
  const kind = lit('model', 'run')((v as { kind?: unknown } | null)?.kind, `${at}.kind`);
  return kind === 'model' ? obj({ kind: lit('model'), path: absPath })(v, at) : obj({ kind: lit('run'), runId: id, ratio: num(0, 0.99), recovered: bool })(v, at);
};

const SCHEMAS: { [C in Channel]: V<Req<C>> } = {
  'app.info': empty,
  'models.list': empty,
  'models.add': obj({ path: absPath }),
  'models.remove': obj({ id }),
  'tasks.list': empty,
  'tasks.previewFile': obj({ file: absPath, rows: int(1, 1000) }),
  'tasks.check': obj({ task: taskRef, seed: int(0, 2 ** 31 - 1) }),
  'prompts.defaults': obj({ task: taskRef }),
  'prompts.preview': obj({ task: taskRef, template, n: int(1, 50), seed: int(0, 2 ** 31 - 1) }),
  'prune.plan': obj({ model: absPath, ratio: nullable(num(0, 0.99)), targetParams: nullable(int(1, Number.MAX_SAFE_INTEGER)), layers: layerRange, roundTo: optional(int(1, MAX_ROUND_TO)) }),
  'lora.estimate': obj({ model: absPath, ratio: num(0, 0.99), tasks: arr(taskRef, 50), lora, seed: int(0, 2 ** 31 - 1), roundTo: optional(int(1, MAX_ROUND_TO)) }),
  'drafts.get': empty,
  'drafts.save': obj({ spec: jsonObject, step: int(0, 100) }),
  'drafts.clear': empty,
  'runs.validate': obj({ spec }),
  'runs.start': obj({ spec }),
  'runs.cancel': obj({ runId: id }),
  'runs.resume': obj({ runId: id }),
  'runs.list': obj({ status: nullable(lit('running', 'done', 'failed', 'cancelled', 'interrupted')), kind: nullable(str({ min: 1, max: 50 })), query: str({ max: 200 }),
    sort: lit('newest', 'oldest', 'name', 'recovery') }),
  'runs.get': obj({ runId: id }),
  'runs.delete': obj({ runId: id, deleteFiles: bool }),
  'runs.compare': obj({ runIds: (v: unknown, at: string) => {
    const ids = arr(id, 8)(v, at);
    return ids.length >= 2 ? ids : fail(at, 'a list of 2 to 8 run ids');
  } }),
  'generate.start': obj({ source, prompt: str({ max: 100_000 }), maxTokens: int(1, 8192), temperature: num(0, 10), topK: int(0, 1_000_000), topP: num(0, 1), seed: int(0, 2 ** 31 - 1),
    side: lit('a', 'b') }),
  'export.start': obj({ source, format: lit('gguf', 'hf', 'peft'), dtype, out: absPath, force: bool }),
  'jobs.cancel': obj({ jobId: id }),
  'dialog.pick': obj({ kind: lit('file', 'folder', 'save'), title: str({ max: 200 }),
    filters: optional(arr(obj({ name: str({ max: 100 }), extensions: arr(str({ min: 1, max: 20 }), 20) }), 10)) }),
  'shell.showItem': obj({ path: absPath }),
};

export function isChannel(c: unknown): c is Channel {
  return typeof c === 'string' && (CHANNELS as readonly string[]).includes(c);
}

/** The payload of a channel, checked; throws PayloadError. */
export function validatePayload<C extends Channel>(channel: C, payload: unknown): Req<C> {
  return SCHEMAS[channel](payload ?? {}, '');
}
