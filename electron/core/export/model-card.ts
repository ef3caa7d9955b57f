// model-card.ts — the README.md of a Hugging Face or PEFT export: what the model is (base model, shape,
// parameters), how it was tailored (pruning method, ratio, layers, parameters before/after and the share
// really removed, from the pruned folder's pruning.json; LoRA rank, alpha, targets and training settings,
// from adapter_config.json and training_log.json), and how well it does (the evaluation table with
// recovery rates, from the pipeline's report). `modelCardFor` is a pure function of its input.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LayerShape } from '../formats/model-tensors.js';

export interface PruningInfo {
  method: string;
  ratio: number;
  paramsBefore: number;
  paramsAfter: number;
  removedShare: number;
  /** [first, last] layers whose attention / MLP groups were pruned (null: none) */
  attnLayers: [number, number] | null;
  mlpLayers: [number, number] | null;
  global: boolean;
  /** kept MLP channels rounded to a multiple of this (absent: 1, LLM-Pruner's counts) */
  roundTo?: number;
  agg?: string;
  calibSamples?: number;
  calibTokens?: number;
  seed?: number;
  source?: string;
}

export interface LoraInfo {
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  targets: string[];
  lr?: number;
  schedule?: string;
  epochs?: number;
  batch?: number;
  maxLen?: number;
  seed?: number;
  steps?: number;
  firstLoss?: number;
  finalLoss?: number;
}

/** One row of the evaluation table: accuracies before pruning, after it, after LoRA; recovery = recovered / baseline. */
export interface EvalRow { task: string; baseline: number; pruned: number; recovered: number; recovery: number; n?: number }
export interface PerplexityRow { set: string; baseline: number; pruned: number; recovered: number }

export interface ModelCardInput {
  name: string;
  /** the model the tailored one was made from */
  baseModel?: string;
  /** the folder or file the exported weights were read from */
  source: string;
  format: 'hf' | 'peft' | 'gguf';
  dtype: string;
  params: number;
  dim: number;
  headDim: number;
  vocabSize: number;
  contextLength: number;
  layers: LayerShape[];
  description?: string;
  pruning?: PruningInfo | null;
  lora?: LoraInfo | null;
  /** true: the LoRA adapter is merged into the weights; false: shipped beside them (PEFT) */
  loraMerged?: boolean;
  evaluation?: EvalRow[];
  perplexity?: PerplexityRow[];
  runId?: string;
  extra?: string;
}

type Json = Record<string, unknown>;

function readJson(file: string): Json | null {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;
  } catch {
    return null;
  }
}

const numOr = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const range = (v: unknown): [number, number] | null => (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x)) ? [v[0], v[1]] : null);

/** The pruning settings of a pruned model folder (its pruning.json), or null when it has none. */
export function readPruningInfo(modelDir: string): PruningInfo | null {
  const j = readJson(path.join(modelDir, 'pruning.json'));
  if (!j || j.tool !== 'tailor') return null;
  const s = (j.settings ?? {}) as Json;
  const scope = (s.scope ?? {}) as Json;
  return {
    method: String(j.method ?? s.method ?? 'unknown'),
    ratio: Number(j.pruning_ratio ?? s.ratio),
    paramsBefore: Number(j.params_before),
    paramsAfter: Number(j.params_after),
    removedShare: Number(j.params_removed_share),
    attnLayers: range(scope.attnLayers),
    mlpLayers: range(scope.mlpLayers),
    global: s.global === true,
    roundTo: numOr(scope.roundTo),
    agg: typeof s.agg === 'string' ? s.agg : undefined,
    calibSamples: numOr(s.calibSamples),
    calibTokens: numOr(s.calibTokens),
    seed: numOr(s.seed),
    source: typeof j.source === 'string' ? j.source : undefined,
  };
}

/** The LoRA settings of a PEFT adapter folder (adapter_config.json; training_log.json beside the folder
 *  when Tailor trained it), or null when it is not an adapter. */
export function readLoraInfo(adapterDir: string): LoraInfo | null {
  const c = readJson(path.join(adapterDir, 'adapter_config.json'));
  if (!c || c.peft_type !== 'LORA') return null;
  const info: LoraInfo = {
    rank: Number(c.r), alpha: Number(c.lora_alpha), rslora: c.use_rslora === true, dropout: Number(c.lora_dropout ?? 0),
    targets: Array.isArray(c.target_modules) ? c.target_modules.map(String) : [],
  };
  const log = readJson(path.join(path.dirname(path.resolve(adapterDir)), 'training_log.json')) ?? readJson(path.join(adapterDir, 'training_log.json'));
  if (log) {
    const st = (log.settings ?? {}) as Json;
    const optim = (st.optim ?? {}) as Json;
    const losses = Array.isArray(log.losses) ? (log.losses as Json[]) : [];
    Object.assign(info, {
      lr: numOr(optim.lr), schedule: typeof optim.schedule === 'string' ? optim.schedule : undefined, epochs: numOr(st.epochs), batch: numOr(st.batch),
      maxLen: numOr(st.maxLen), seed: numOr(st.seed), steps: losses.length || undefined, firstLoss: numOr(losses[0]?.loss), finalLoss: numOr(losses.at(-1)?.loss),
    });
  }
  return info;
}

const int = (n: number): string => n.toLocaleString('en-US');
const pct = (x: number): string => `${(x * 100).toFixed(2)}%`;
const layersText = (r: [number, number] | null): string => (r === null ? 'none' : r[0] === r[1] ? `layer ${r[0]}` : `layers ${r[0]}–${r[1]}`);

/** The model card (Markdown with a small YAML header) for an export. */
export function modelCardFor(c: ModelCardInput): string {
  const L = c.layers;
  const uniform = L.every((l) => l.nHead === L[0].nHead && l.nKvHead === L[0].nKvHead && l.ffn === L[0].ffn);
  const tags = ['llama', 'tailor', ...(c.pruning ? ['pruned'] : []), ...(c.lora ? ['lora'] : [])];
  const out: string[] = [
    '---',
    `library_name: ${c.format === 'peft' ? 'peft' : 'transformers'}`,
    'pipeline_tag: text-generation',
    `tags: [${tags.join(', ')}]`,
    '---',
    '',
    `# ${c.name}`,
    '',
    `A LLaMA-architecture model exported by Tailor${c.baseModel ? ` from the base model \`${c.baseModel}\`` : ''}${c.runId ? ` (run \`${c.runId}\`)` : ''}.`,
    '',
  ];
  if (c.description) out.push(c.description, '');
  out.push(
    '## Model',
    '',
    `- base model: ${c.baseModel ? `\`${c.baseModel}\`` : 'unknown'}`,
    `- weights read from: \`${c.source}\`, written as ${c.format === 'peft' ? 'a PEFT adapter with its base' : 'Hugging Face safetensors'} (${c.dtype})`,
    `- parameters: ${int(c.params)}`,
    `- hidden size ${c.dim}, ${L.length} layers, head dim ${c.headDim}, vocabulary ${c.vocabSize}, context ${c.contextLength}`,
    uniform ? `- every layer: ${L[0].nHead} heads, ${L[0].nKvHead} KV heads, FFN ${L[0].ffn}`
      : `- per-layer shapes (structurally pruned): heads ${L.map((l) => l.nHead).join(', ')}; KV heads ${L.map((l) => l.nKvHead).join(', ')}; FFN ${L.map((l) => l.ffn).join(', ')} — \`config.json\` lists them in \`layer_num_attention_heads\`, \`layer_num_key_value_heads\` and \`layer_intermediate_sizes\`; stock \`transformers\` expects uniform layers, Tailor and llama.cpp (GGUF \`deci\`) load these directly`,
    '',
  );
  const p = c.pruning;
  if (p) {
    out.push(
      '## Pruning',
      '',
      `- method: ${p.method} importance${p.agg ? ` (aggregated by ${p.agg} over each group's coupled tensors)` : ''}, ${p.global ? 'one global ranking across the chosen layers' : 'the same ratio in every chosen layer'}`,
      `- pruning ratio: ${p.ratio} of the attention groups and MLP channels in the chosen layers`,
      `- layers: attention ${layersText(p.attnLayers)}; MLP ${layersText(p.mlpLayers)}${p.roundTo && p.roundTo > 1 ? `, each keeping a multiple of ${p.roundTo} channels` : ''}`,
      `- parameters: ${int(p.paramsBefore)} → ${int(p.paramsAfter)} (${pct(p.removedShare)} of all parameters really removed)`,
    );
    if (p.calibSamples !== undefined) out.push(`- calibration: ${p.calibSamples} samples${p.calibTokens !== undefined ? `, ${int(p.calibTokens)} tokens` : ''}${p.seed !== undefined ? `, seed ${p.seed}` : ''}`);
    out.push('');
  }
  const l = c.lora;
  if (l) {
    out.push(
      '## LoRA tuning',
      '',
      `- ${c.loraMerged === false ? 'adapter shipped unmerged in `adapter/` (PEFT); it fits only the base in `base/`' : 'adapter merged into the weights'}`,
      `- rank ${l.rank}, alpha ${l.alpha}${l.rslora ? ' (rsLoRA scaling)' : ''}, dropout ${l.dropout}, targets ${l.targets.join(', ') || 'none'}`,
    );
    const train = [l.lr !== undefined ? `learning rate ${l.lr}${l.schedule ? ` (${l.schedule})` : ''}` : '', l.epochs !== undefined ? `${l.epochs} epoch(s)` : '',
      l.batch !== undefined ? `batch ${l.batch}` : '', l.maxLen !== undefined ? `max length ${l.maxLen}` : '', l.seed !== undefined ? `seed ${l.seed}` : ''].filter(Boolean);
    if (train.length) out.push(`- training: ${train.join(', ')}`);
    if (l.steps !== undefined) out.push(`- ${l.steps} steps, loss ${l.firstLoss?.toFixed(4) ?? '?'} → ${l.finalLoss?.toFixed(4) ?? '?'}`);
    out.push('');
  }
  if (c.evaluation?.length) {
    out.push(
      '## Evaluation',
      '',
      'Accuracy of the base model (baseline), after pruning, and after LoRA recovery; recovery = recovered / baseline.',
      '',
      '| task | baseline | pruned | recovered | recovery |',
      '|---|---|---|---|---|',
      ...c.evaluation.map((r) => `| ${r.task}${r.n !== undefined ? ` (n = ${r.n})` : ''} | ${pct(r.baseline)} | ${pct(r.pruned)} | ${pct(r.recovered)} | ${pct(r.recovery)} |`),
      '',
    );
    const mean = c.evaluation.reduce((a, r) => a + r.recovery, 0) / c.evaluation.length;
    out.push(`Mean recovery: ${pct(mean)}.`, '');
  }
  if (c.perplexity?.length) {
    out.push('| perplexity set | baseline | pruned | recovered |', '|---|---|---|---|',
      ...c.perplexity.map((r) => `| ${r.set} | ${r.baseline.toFixed(3)} | ${r.pruned.toFixed(3)} | ${r.recovered.toFixed(3)} |`), '');
  }
  if (c.extra) out.push(c.extra, '');
  return out.join('\n');
}
