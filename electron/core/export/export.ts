// export.ts — a model (tailored or not) out to the tools analysts use: GGUF for llama.cpp / Ollama /
// LM Studio (architecture `llama` when every layer has the same shape, `deci` with per-layer arrays
// otherwise; the tokenizer embedded), a Hugging Face folder (safetensors, optionally sharded, config with
// per-layer lists, tokenizer files, generation_config.json, a model card), or a PEFT adapter beside the
// pruned base it fits. Exports are asynchronous and streamed in chunks: cancellable through an
// AbortSignal, with progress in bytes, and atomic (temporary name, fsync, rename) — a failed or cancelled
// export leaves nothing, and an existing output is replaced only with force, once the new one is complete.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import { isUniform, paramCount, type ModelTensors } from '../formats/model-tensors.js';
import { ggufPlan, ggufSpec, type GgufDtype } from '../formats/gguf-write.js';
import { hfFolderPlan } from '../formats/safetensors-write.js';
import { plannedBytes, plannedCopy, throwIfAborted, type PlannedFile } from '../formats/sink.js';
import { checkOverwrite, writeAtomically, type WriteProgress } from './atomic-output.js';
import { modelCardFor, readLoraInfo, readPruningInfo, type EvalRow, type PerplexityRow } from './model-card.js';
import { ggufVocabFor } from './vocab.js';

export { ggufVocabFor, ggufVocabFromSentencePiece, ggufVocabFromTokenizerJson } from './vocab.js';
export { modelCardFor, readLoraInfo, readPruningInfo, type EvalRow, type LoraInfo, type ModelCardInput, type PerplexityRow, type PruningInfo } from './model-card.js';

export type ExportFormat = 'gguf' | 'hf' | 'peft';
export type ExportProgress = WriteProgress;

/** Where the exported model came from, for its model card (a pipeline run, the adapter merged into it). */
export interface CardContext {
  /** the model the tailored one was made from (default: pruning.json's source, else the model path) */
  baseModel?: string;
  runId?: string;
  /** the evaluation table (baseline / pruned / recovered / recovery per task) */
  evaluation?: EvalRow[];
  perplexity?: PerplexityRow[];
  /** the PEFT adapter already merged into the model (its LoRA settings go on the card) */
  mergedAdapter?: string;
}

export interface ExportOptions {
  format: ExportFormat;
  out: string;
  dtype?: GgufDtype;
  force?: boolean;
  name?: string;
  /** how the model was tailored, for the GGUF description and the model card */
  description?: string;
  /** Hugging Face: shard above this many bytes */
  shardBytes?: number;
  /** PEFT: the adapter folder to export (the base is exported beside it) */
  adapterDir?: string;
  /** model card sections (extra Markdown) */
  cardExtra?: string;
  card?: CardContext;
  /** cancels the export (E_CANCELLED) within one chunk; nothing is left behind */
  signal?: AbortSignal;
  /** bytes written so far, about 10 times a second, then once with fraction 1 when complete */
  onProgress?: (p: ExportProgress) => void;
}

export interface ExportResult { paths: string[]; bytes: number; format: ExportFormat; architecture?: string }

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json'];

/** The tokenizer files beside the model, as planned copies (tok*.model is renamed tokenizer.model). */
function tokenizerFiles(model: Model, prefix = ''): PlannedFile[] {
  const src = model.info.path;
  const dir = fs.statSync(src).isDirectory() ? src : path.dirname(src);
  const files = TOKENIZER_FILES.map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
  if (!files.some((f) => /tokenizer\.(json|model)$/.test(f))) {
    const tm = fs.readdirSync(dir).filter((f) => /^tok.*\.model$/.test(f)).sort()[0];
    if (tm) files.push(path.join(dir, tm));
  }
  return files.map((f) => plannedCopy(prefix + (/^tok.*\.model$/.test(path.basename(f)) ? 'tokenizer.model' : path.basename(f)), f));
}

function modelDir(model: Model): string {
  const src = model.info.path;
  return fs.existsSync(src) && fs.statSync(src).isDirectory() ? src : path.dirname(src);
}

function card(model: Model, t: ModelTensors, o: ExportOptions, dtype: string): string {
  const i = model.info;
  const pruning = readPruningInfo(modelDir(model));
  const adapter = o.format === 'peft' ? o.adapterDir : o.card?.mergedAdapter;
  return modelCardFor({
    name: o.name ?? path.basename(i.path),
    baseModel: o.card?.baseModel ?? pruning?.source ?? i.path,
    source: i.path,
    format: o.format,
    dtype,
    params: paramCount(t),
    dim: i.dim, headDim: i.headDim, vocabSize: i.vocabSize, contextLength: i.contextLength,
    layers: t.layers.map((l) => ({ nHead: l.nHead, nKvHead: l.nKvHead, ffn: l.ffn })),
    description: o.description,
    pruning,
    lora: adapter ? readLoraInfo(adapter) : null,
    loraMerged: o.format !== 'peft',
    evaluation: o.card?.evaluation,
    perplexity: o.card?.perplexity,
    runId: o.card?.runId,
    extra: o.cardExtra,
  });
}

/**
 * llama.cpp cannot load a `deci` GGUF whose first layer has no attention at all (its loader asserts on a
 * zero-sized dimension there; later layers may have none). Such a layer gets one attention head whose q,
 * k, v rows and o columns are all zero: its output is o·(softmax(0)·v) = 0, exactly what a layer without
 * attention adds, at the cost of 4·dim·head_dim zero weights.
 */
export function withFirstLayerAttention(t: ModelTensors): ModelTensors {
  const l0 = t.layers[0];
  if (!l0 || l0.nKvHead > 0 || l0.nHead > 0) return t;
  const n = t.dim * t.headDim;
  const first = { ...l0, nHead: 1, nKvHead: 1, wq: new Float32Array(n), wk: new Float32Array(n), wv: new Float32Array(n), wo: new Float32Array(n) };
  return { ...t, layers: [first, ...t.layers.slice(1)] };
}

/** Exports `model` (its weights as loaded, with any merged adapter) to `o.out` in `o.format`. */
export async function exportModel(model: Model, o: ExportOptions): Promise<ExportResult> {
  checkOverwrite(path.resolve(o.out), o.force);
  throwIfAborted(o.signal);
  const io = { force: o.force, signal: o.signal, onProgress: o.onProgress };
  if (o.format === 'gguf') {
    const vocab = ggufVocabFor(model);
    const t = withFirstLayerAttention(model.lazyTensors());
    const arch = isUniform(t) ? 'llama' : 'deci';
    const spec = ggufSpec(t, { arch, dtype: o.dtype ?? 'f32', name: o.name ?? path.basename(model.info.path), tokenizer: vocab,
      extraKv: o.description ? [{ key: 'general.description', type: 'string', value: o.description }] : [] });
    const bytes = await writeAtomically(o.out, [{ rel: path.basename(o.out), ...ggufPlan(spec) }], { ...io, single: true });
    return { paths: [o.out], bytes, format: 'gguf', architecture: arch };
  }
  if (o.format === 'hf') {
    if (o.dtype === 'q8_0') throw new EngineError('E_ARG', 'Hugging Face safetensors exports are f32, f16 or bf16');
    const dtype = o.dtype ?? 'f32';
    const t = model.lazyTensors();
    const files = [
      ...hfFolderPlan(t, { dtype, shardBytes: o.shardBytes }),
      ...tokenizerFiles(model),
      plannedBytes('generation_config.json', JSON.stringify({ bos_token_id: model.info.bosId, eos_token_id: model.info.eosId, do_sample: false }, null, 2) + '\n'),
      plannedBytes('README.md', card(model, t, o, dtype)),
    ];
    const bytes = await writeAtomically(o.out, files, io);
    return { paths: [o.out], bytes, format: 'hf' };
  }
  // PEFT: the adapter with its base beside it (an adapter fits only the exact pruned base it was trained on)
  if (!o.adapterDir) throw new EngineError('E_ARG', 'a PEFT export needs --adapter DIR');
  const adapter = o.adapterDir;
  for (const f of ['adapter_config.json', 'adapter_model.safetensors'])
    if (!fs.existsSync(path.join(adapter, f))) throw new EngineError('E_IO', `${adapter} is not a PEFT adapter (no ${f})`);
  const t = model.lazyTensors();
  const dtype = o.dtype === 'q8_0' ? 'f32' : o.dtype ?? 'f32';
  const adapterFiles = fs.readdirSync(adapter).filter((f) => fs.statSync(path.join(adapter, f)).isFile()).sort().map((f) => {
    if (f !== 'adapter_config.json') return plannedCopy(`adapter/${f}`, path.join(adapter, f));
    const cfg = JSON.parse(fs.readFileSync(path.join(adapter, f), 'utf8')) as Record<string, unknown>;
    cfg.base_model_name_or_path = '../base';
    return plannedBytes(`adapter/${f}`, JSON.stringify(cfg, null, 2) + '\n');
  });
  const note = `\`adapter/\` is a PEFT LoRA adapter. It fits only the model in \`base/\` (${paramCount(t).toLocaleString('en-US')} parameters${isUniform(t) ? '' : ', structurally pruned: per-layer shapes differ'}), on which it was trained; apply it to that base, not to the original model.`;
  const files = [
    ...adapterFiles,
    ...hfFolderPlan(t, { dtype }, 'base/'),
    ...tokenizerFiles(model, 'base/'),
    plannedBytes('README.md', card(model, t, { ...o, description: [note, o.description].filter(Boolean).join('\n\n') }, dtype)),
  ];
  const bytes = await writeAtomically(o.out, files, io);
  return { paths: [o.out], bytes, format: 'peft' };
}
