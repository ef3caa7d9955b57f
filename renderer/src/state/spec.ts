// spec.ts — the wizard's pure spec logic: defaults, per-step validation (field → message), the readable
// summary, and turning a stored run's spec (or a draft) back into a complete SpecInput.
import type { ExportDtype, ImportanceMethod, LoraSettings, ModelEntry, SpecInput, TaskRef, TemplateChoice } from '../../../electron/core/api/contract';
import { IMPORTANCE_METHODS, LORA_TARGETS, MAX_ROUND_TO } from '../../../electron/core/api/contract';
import { fmtParams } from '../lib/format';

export const STEPS = [
  { key: 'model', title: 'Model' },
  { key: 'tasks', title: 'Tasks' },
  { key: 'prompt', title: 'Prompt' },
  { key: 'prune', title: 'Pruning' },
  { key: 'lora', title: 'LoRA' },
  { key: 'eval', title: 'Evaluation' },
  { key: 'review', title: 'Review' },
] as const;

/** which error keys (prefixes) belong to which step */
const STEP_FIELDS: string[][] = [['model'], ['tasks'], ['lora.template'], ['prune'], ['lora.rank', 'lora.alpha', 'lora.lr', 'lora.epochs', 'lora.batch', 'lora.maxLen', 'lora.trainShots', 'lora.targets'], ['eval', 'export', 'seed'], ['name', 'outDir']];

export const DTYPES: readonly ExportDtype[] = ['f32', 'f16', 'bf16', 'q8_0'];

/** The wizard's choices of prune.roundTo: a pruned layer keeps a multiple of this many MLP channels. */
export const ROUND_TO: ReadonlyArray<{ value: number; label: string }> = [
  { value: 1, label: "any count (LLM-Pruner's, exactly)" },
  { value: 8, label: 'multiples of 8 (GPU tensor cores read whole rows)' },
  { value: 32, label: 'multiples of 32 (q8_0 GGUF quantizes every projection)' },
  { value: 256, label: "multiples of 256 (llama.cpp's k-quants, Q4_K…)" },
];
export function roundToLabel(v: number): string {
  return ROUND_TO.find((c) => c.value === v)?.label ?? `multiples of ${v}`;
}

export function defaultSpec(): SpecInput {
  return {
    name: 'tailoring run',
    model: '',
    tasks: [],
    seed: 0,
    eval: { limit: null, shots: 0, perplexity: [] },
    export: null,
    prune: { method: 'taylor', ratios: [0.2, 0.5], targets: [], layers: null, calibText: null, calibTask: false, calibSamples: 10, calibSeqLen: 64, global: false, roundTo: 1 },
    lora: { rank: 8, alpha: 16, lr: 2e-4, epochs: 2, batch: 8, maxLen: 256, trainShots: 50, template: 'task', targets: [...LORA_TARGETS] },
    compute: { backend: 'auto', weights: 'f32' },
  };
}

export function taskName(t: TaskRef): string {
  return typeof t === 'string' ? t : t.name;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);

function template(v: unknown): TemplateChoice {
  if (v === 'task' || v === 'alpaca') return v;
  if (isObj(v) && typeof v.prompt === 'string' && typeof v.completion === 'string') return { prompt: v.prompt, completion: v.completion };
  return 'task';
}

/** a complete SpecInput from anything spec-shaped (a draft's partial spec, a stored run's spec) */
export function normalizeSpec(raw: unknown): SpecInput {
  const d = defaultSpec();
  if (!isObj(raw)) return d;
  const ev = isObj(raw.eval) ? raw.eval : {}, pr = isObj(raw.prune) ? raw.prune : {}, lo = isObj(raw.lora) ? raw.lora : {};
  const co = isObj(raw.compute) ? raw.compute : {};
  const tasks = Array.isArray(raw.tasks)
    ? raw.tasks.flatMap((t): TaskRef[] => (typeof t === 'string' ? [t] : isObj(t) && typeof t.file === 'string' && isObj(t.mapping)
      ? [{ name: String(t.name ?? t.file), file: t.file, mapping: t.mapping as never }] : []))
    : [];
  const ex = isObj(raw.export) && (raw.export.format === 'gguf' || raw.export.format === 'hf')
    ? { format: raw.export.format as 'gguf' | 'hf', dtype: (DTYPES.includes(raw.export.dtype as ExportDtype) ? raw.export.dtype : 'f32') as ExportDtype }
    : null;
  const layers = Array.isArray(pr.layers) && pr.layers.length === 2 ? [num(pr.layers[0], 0), num(pr.layers[1], 0)] as [number, number] : null;
  const nums = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : null);
  const out: SpecInput = {
    name: typeof raw.name === 'string' && raw.name ? raw.name : d.name,
    model: typeof raw.model === 'string' ? raw.model : '',
    tasks,
    seed: num(raw.seed, 0),
    eval: {
      limit: typeof ev.limit === 'number' ? ev.limit : null,
      shots: num(ev.shots, 0),
      perplexity: Array.isArray(ev.perplexity) ? ev.perplexity.filter((p): p is string => typeof p === 'string') : [],
    },
    export: ex,
    prune: {
      method: IMPORTANCE_METHODS.includes(pr.method as ImportanceMethod) ? (pr.method as ImportanceMethod) : 'taylor',
      ratios: nums(pr.ratios) ?? d.prune.ratios,
      targets: nums(pr.targets) ?? [],
      layers,
      calibText: typeof pr.calibText === 'string' && pr.calibText && pr.calibTask !== true ? pr.calibText : null,
      calibTask: pr.calibTask === true,
      calibSamples: num(pr.calibSamples, 10),
      calibSeqLen: num(pr.calibSeqLen, 64),
      global: pr.global === true,
      roundTo: isInt(pr.roundTo, 1) && (pr.roundTo as number) <= MAX_ROUND_TO ? (pr.roundTo as number) : 1,
    },
    lora: {
      rank: num(lo.rank, 8), alpha: num(lo.alpha, 16), lr: num(lo.lr, 2e-4), epochs: num(lo.epochs, 2), batch: num(lo.batch, 8),
      maxLen: num(lo.maxLen, 256), trainShots: num(lo.trainShots, 50), template: template(lo.template),
      targets: Array.isArray(lo.targets) ? LORA_TARGETS.filter((x) => (lo.targets as unknown[]).includes(x)) : [...LORA_TARGETS],
    },
    compute: {
      backend: co.backend === 'cpu' || co.backend === 'cuda' ? co.backend : 'auto',
      weights: co.weights === 'bf16' ? 'bf16' : 'f32',
    },
  };
  if (typeof raw.outDir === 'string' && raw.outDir) out.outDir = raw.outDir;
  return out;
}

const isInt = (v: unknown, min: number) => typeof v === 'number' && Number.isInteger(v) && v >= min;

/** the message for one pruning ratio, or null when it is usable */
export function ratioProblem(r: unknown): string | null {
  if (typeof r !== 'number' || !Number.isFinite(r)) return 'Enter a ratio between 0 and 0.99.';
  if (r >= 1) return `A ratio of ${r} would remove the whole model; use a value below 1 (at most 0.99).`;
  if (r > 0.99) return 'The largest ratio is 0.99.';
  if (r <= 0) return 'A ratio must be above 0 (0 prunes nothing).';
  return null;
}

/** the message for one parameter target, or null when it is usable */
export function targetProblem(t: number | null, model: ModelEntry | undefined): string | null {
  if (t === null || !Number.isInteger(t) || t < 1) return 'Enter a parameter count, e.g. 150K, 3.5B or 200000.';
  if (model && t >= model.params) return `A target of ${fmtParams(t)} parameters is not smaller than the model (${fmtParams(model.params)}).`;
  return null;
}

/** every problem of the spec, keyed by dotted field (see STEP_FIELDS for which step shows which) */
export function validateSpec(s: SpecInput, model: ModelEntry | undefined): Record<string, string> {
  const e: Record<string, string> = {};
  if (!s.model) e.model = 'Choose a model.';
  if (s.tasks.length === 0) e.tasks = 'Choose at least one task (a built-in one or your own file).';
  const t = s.lora.template;
  if (typeof t === 'object') {
    if (!t.prompt.trim()) e['lora.template.prompt'] = 'The prompt template is empty.';
    if (!t.completion.trim()) e['lora.template.completion'] = 'The completion template is empty.';
  }
  const p = s.prune;
  if (p.ratios.length + p.targets.length === 0) e['prune.ratios'] = 'Add at least one pruning ratio or parameter target.';
  for (const r of p.ratios) {
    const m = ratioProblem(r);
    if (m) { e['prune.ratios'] = m; break; }
  }
  for (const x of p.targets) {
    const m = targetProblem(x, model);
    if (m) { e['prune.targets'] = m; break; }
  }
  if (p.layers) {
    const [a, b] = p.layers;
    const n = model?.nLayers;
    if (!isInt(a, 0) || !isInt(b, 0)) e['prune.layers'] = 'First and last layer must be whole numbers from 0.';
    else if (a > b) e['prune.layers'] = 'The first layer must not come after the last.';
    else if (n !== undefined && b >= n) e['prune.layers'] = `The model has layers 0 to ${n - 1}.`;
  }
  if (!isInt(p.calibSamples, 1)) e['prune.calibSamples'] = 'Calibration samples: a whole number, at least 1.';
  if (!isInt(p.calibSeqLen, 2)) e['prune.calibSeqLen'] = 'Calibration length: a whole number, at least 2.';
  else if (model && p.calibSeqLen > model.contextLength) e['prune.calibSeqLen'] = `The model's context is ${model.contextLength} tokens.`;
  const l = s.lora;
  if (!isInt(l.rank, 1)) e['lora.rank'] = 'Rank: a whole number, at least 1.';
  if (!(typeof l.alpha === 'number' && l.alpha > 0)) e['lora.alpha'] = 'Alpha must be above 0.';
  if (!(typeof l.lr === 'number' && l.lr > 0 && l.lr <= 10)) e['lora.lr'] = 'Learning rate: above 0 (e.g. 0.0002).';
  if (!isInt(l.epochs, 1)) e['lora.epochs'] = 'Epochs: a whole number, at least 1.';
  if (!isInt(l.batch, 1)) e['lora.batch'] = 'Batch: a whole number, at least 1.';
  if (!isInt(l.maxLen, 2)) e['lora.maxLen'] = 'Max length: a whole number, at least 2.';
  if (!isInt(l.trainShots, 1)) e['lora.trainShots'] = 'Training examples per task: a whole number, at least 1.';
  if (!l.targets.length) e['lora.targets'] = 'Choose at least one projection to adapt.';
  if (s.eval.limit !== null && !isInt(s.eval.limit, 1)) e['eval.limit'] = 'Items per task: a whole number, at least 1 (or empty for all).';
  if (!isInt(s.eval.shots, 0)) e['eval.shots'] = 'Shots: a whole number, 0 or more.';
  if (s.eval.perplexity.some((f) => !f.trim())) e['eval.perplexity'] = 'A perplexity file path is empty.';
  if (!isInt(s.seed, 0)) e.seed = 'Seed: a whole number, 0 or more.';
  if (!s.name.trim()) e.name = 'Give the run a name.';
  return e;
}

/** the wizard step that holds a field the back end named (e.g. "spec.eval.perplexity"), or null */
export function stepOfField(field: string | undefined): number | null {
  if (!field) return null;
  const f = field.replace(/^spec\./, '');
  if (f.startsWith('lora.template')) return 2;
  for (let i = STEP_FIELDS.length - 1; i >= 0; i--) if (STEP_FIELDS[i].some((p) => f === p || f.startsWith(`${p}.`) || p.startsWith(`${f}.`))) return i;
  return null;
}

export function errorsOfStep(errors: Record<string, string>, step: number): string[] {
  const pre = STEP_FIELDS[step] ?? [];
  return Object.entries(errors).filter(([k]) => pre.some((p) => k === p || k.startsWith(`${p}.`))).map(([, v]) => v);
}

export function templateLabel(t: TemplateChoice): string {
  return t === 'task' ? 'task default' : t === 'alpaca' ? 'Alpaca' : 'custom';
}

/** the spec as readable sections of (label, value) rows */
export function summarize(s: SpecInput, model: ModelEntry | undefined): Array<{ title: string; rows: Array<[string, string]> }> {
  const l: LoraSettings = s.lora;
  return [
    { title: 'Run', rows: [['Name', s.name], ['Output folder', s.outDir || 'a new folder in the data folder'], ['Seed', String(s.seed)]] },
    { title: 'Model', rows: [['Model', model ? `${model.name} (${fmtParams(model.params)} parameters)` : s.model], ['Path', s.model]] },
    { title: 'Tasks', rows: s.tasks.map((t): [string, string] => (typeof t === 'string' ? [t, 'built-in'] : [t.name, `${t.file} (${t.mapping.kind})`])) },
    { title: 'Pruning', rows: [
      ['Method', s.prune.method],
      ['Ratios', s.prune.ratios.length ? s.prune.ratios.join(', ') : '—'],
      ['Parameter targets', s.prune.targets.length ? s.prune.targets.map(fmtParams).join(', ') : '—'],
      ['Layers', s.prune.layers ? `${s.prune.layers[0]}–${s.prune.layers[1]}` : 'all'],
      ['Calibration', `${s.prune.calibSamples} samples × ${s.prune.calibSeqLen} tokens ${s.prune.calibTask ? "from the tasks' training prompts" : s.prune.calibText ? `from ${s.prune.calibText}` : 'from the built-in TinyStories sample'}`],
      ['Ranking', s.prune.global ? 'global' : 'per layer'],
      ['MLP channels kept', roundToLabel(s.prune.roundTo ?? 1)],
    ] },
    { title: 'LoRA', rows: [
      ['Rank / alpha', `${l.rank} / ${l.alpha}`], ['Adapted projections', l.targets.length === LORA_TARGETS.length ? 'all (q, k, v, o, gate, up, down)' : l.targets.join(', ')], ['Learning rate', String(l.lr)], ['Epochs', String(l.epochs)], ['Batch', String(l.batch)],
      ['Max length', `${l.maxLen} tokens`], ['Training examples per task', String(l.trainShots)], ['Prompt template', templateLabel(l.template)],
    ] },
    { title: 'Evaluation', rows: [
      ['Items per task', s.eval.limit === null ? 'all' : String(s.eval.limit)], ['Shots', String(s.eval.shots)],
      ['Perplexity files', s.eval.perplexity.length ? s.eval.perplexity.join(', ') : '—'],
      ['Export', s.export ? `${s.export.format} (${s.export.dtype})` : 'no'],
    ] },
    { title: 'Compute', rows: [
      ['Backend', { auto: 'auto (CUDA when a GPU is usable, else the CPU)', cpu: 'CPU', cuda: 'CUDA' }[s.compute?.backend ?? 'auto']],
      ['Weights on the GPU', (s.compute?.weights ?? 'f32') === 'bf16' ? 'bf16 (half the memory, tensor cores)' : 'fp32'],
    ] },
  ];
}
