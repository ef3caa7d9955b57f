// library.ts — the workbench's models: the library the user builds (kept in the history database, with
// what the engine read of each model so the wizard can plan without loading weights), the bundled
// stories260K added on first start, the resolution of a pipeline run's result (pruned folder, adapter)
// to a loadable source, and a small cache of loaded models shared by the playground and export.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelEntry, ModelSource } from '../api/contract.js';
import { packageRoot } from '../cli/version.js';
import { describeBackend, inspectModel, kvCacheOf, Model, type ModelInfo } from '../engine/engine.js';
import type { History } from '../history/db.js';
import type { PipelineSpec } from '../pipeline/spec.js';
import { archFromHfConfig, paramCount, type ArchConfig } from '../prune/plan.js';
import { applyAdapter } from '../train/trainer.js';
import { ServiceError } from './events.js';

export const BUNDLED_MODEL = () => path.join(packageRoot(), 'resources', 'models', 'stories260K');

type StoredInfo = Omit<ModelInfo, 'path' | 'hostWeights' | 'hostResidentBytes'>;

// kvBf16HeadDims: the head sizes this machine's device keeps its KV cache in bf16 for, with bf16 weights
function entryOf(row: { id: string; path: string; name: string; bundled: boolean; info: unknown; added_at: number }, kvBf16HeadDims: number[]): ModelEntry {
  const i = row.info as StoredInfo;
  const bf16 = kvCacheOf({ ...i, kvBf16HeadDims });
  const uniform = i.layers.every((l) => l.nHead === i.layers[0].nHead && l.nKvHead === i.layers[0].nKvHead && l.ffn === i.layers[0].ffn);
  return {
    id: row.id, name: row.name, path: row.path, format: i.format, architecture: i.architecture, params: i.nParams, dim: i.dim, nLayers: i.nLayers,
    headDim: i.headDim, vocabSize: i.vocabSize, contextLength: i.contextLength, layers: i.layers.map((l) => ({ nHead: l.nHead, nKvHead: l.nKvHead, ffn: l.ffn })),
    uniform, tokenizer: i.tokenizer, bundled: row.bundled, addedAt: row.added_at,
    kvCache: { bytesPerToken: kvCacheOf({ ...i, kvBf16HeadDims: [] }).bytesPerToken, bf16BytesPerToken: bf16.dtype === 'bf16' ? bf16.bytesPerToken : null },
  };
}

/**
 * What a Hugging Face LLaMA folder's config.json says, without reading its weights (a 7B model is 13 GB and
 * the library, the plan and the estimate need only the shapes); null when the folder is not one (GGUF and
 * llama2.c files, other model types: the engine reads those and gives its own typed errors).
 */
export function infoFromHfConfig(dir: string): StoredInfo | null {
  const cfgFile = path.join(dir, 'config.json');
  if (!fs.existsSync(cfgFile) || !fs.statSync(dir).isDirectory()) return null;
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new ServiceError('E_FORMAT', `${cfgFile} is not valid JSON: ${(e as Error).message}`, 'path');
  }
  if (!['llama', 'mistral'].includes(String(cfg.model_type ?? 'llama'))) return null;
  if (!['model.safetensors', 'model.safetensors.index.json'].some((f) => fs.existsSync(path.join(dir, f))))
    throw new ServiceError('E_IO', `${dir} has a config.json but no model.safetensors (or its shard index)`, 'path');
  let a: ArchConfig;
  try {
    a = archFromHfConfig(cfg);
  } catch (e) {
    throw new ServiceError('E_FORMAT', `${cfgFile}: ${(e as Error).message}`, 'path');
  }
  const num = (k: string, d: number) => (typeof cfg[k] === 'number' ? (cfg[k] as number) : d);
  const tokenizer = fs.existsSync(path.join(dir, 'tokenizer.model')) || fs.readdirSync(dir).some((f) => /^tok.*\.model$/.test(f)) ? 'sentencepiece'
    : fs.existsSync(path.join(dir, 'tokenizer.json')) ? 'hf-json' : null;
  return {
    format: 'hf', architecture: 'llama', sourceDtype: String(cfg.torch_dtype ?? 'unknown'), dim: a.dim, nLayers: a.layers.length, headDim: a.headDim,
    vocabSize: a.vocabSize, contextLength: num('max_position_embeddings', 2048), normEps: num('rms_norm_eps', 1e-6), ropeTheta: num('rope_theta', 10000),
    ropeLayout: 'interleaved', sourceRopeLayout: 'rotate_half', ropeScaling: { type: 'none', factor: 1 }, ropeFreqFactors: false, tiedEmbeddings: a.tied,
    bosId: num('bos_token_id', 1), eosId: num('eos_token_id', 2), layers: a.layers, nParams: paramCount(a), backend: 'cpu', threads: 0, tokenizer,
    // read from the config, not loaded: no backend has run it yet
    backendKind: 'cpu', backendRequested: 'auto', backendAutoPick: 'cpu', backendNote: 'shapes read from config.json; not loaded yet', kvBf16HeadDims: [],
  };
}

export function archOfInfo(i: Pick<ModelInfo, 'dim' | 'headDim' | 'vocabSize' | 'tiedEmbeddings' | 'layers'>): ArchConfig {
  return { dim: i.dim, headDim: i.headDim, vocabSize: i.vocabSize, tied: i.tiedEmbeddings, layers: i.layers.map((l) => ({ nHead: l.nHead, nKvHead: l.nKvHead, ffn: l.ffn })) };
}

function ensureExists(p: string, field: string): void {
  if (!fs.existsSync(p)) throw new ServiceError('E_IO', `${p} does not exist`, field);
}

export class Library {
  // what a load with bf16 weights would run on here (the backend 'auto' picks), asked once: its bf16 KV head sizes
  private kvBf16: Promise<number[]> | null = null;

  constructor(private readonly history: History) {}

  private kvBf16HeadDims(): Promise<number[]> {
    this.kvBf16 ??= describeBackend({ backend: 'auto', weights: 'bf16' }).then((b) => b.kvBf16HeadDims, () => []);
    return this.kvBf16;
  }

  /** Adds the bundled model on first start (and keeps its entry current). */
  async ensureBundled(): Promise<void> {
    const p = BUNDLED_MODEL();
    if (!fs.existsSync(p)) return;
    if (this.history.listModels().some((m) => m.path === p)) return;
    await this.add(p, { bundled: true, name: 'stories260K (bundled)' });
  }

  async list(): Promise<ModelEntry[]> {
    const kv = await this.kvBf16HeadDims();
    return this.history.listModels().map((row) => entryOf(row, kv));
  }

  async add(p: string, o: { bundled?: boolean; name?: string } = {}): Promise<ModelEntry> {
    ensureExists(p, 'path');
    const name = o.name ?? (path.basename(p).replace(/\.(gguf|bin)$/i, '') || p);
    const fromConfig = infoFromHfConfig(p);
    const kv = await this.kvBf16HeadDims();
    if (fromConfig) return entryOf(this.history.upsertModel({ path: p, name, bundled: !!o.bundled, info: fromConfig }), kv);
    // GGUF and llama2.c: the file's own header, checked as a load checks it, without decoding its weights
    const { path: _p, ...file } = await inspectModel(p);
    void _p;
    const info: StoredInfo = { ...file, backend: 'cpu', threads: 0, backendKind: 'cpu', backendRequested: 'auto', backendAutoPick: 'cpu', backendNote: 'shapes read from the file; not loaded yet', kvBf16HeadDims: [] };
    return entryOf(this.history.upsertModel({ path: p, name, bundled: !!o.bundled, info }), kv);
  }

  remove(id: string): boolean {
    const m = this.history.listModels().find((r) => r.id === id);
    if (!m) throw new ServiceError('E_NOT_FOUND', `no model ${id} in the library`, 'id');
    if (m.bundled) throw new ServiceError('E_ARG', 'the bundled model cannot be removed', 'id');
    return this.history.removeModel(id);
  }

  /** What the engine knows of a model: from the library, else by loading it once (and adding it). */
  async info(p: string): Promise<StoredInfo> {
    const row = this.history.listModels().find((m) => m.path === p);
    if (row) return row.info as StoredInfo;
    await this.add(p);
    return this.history.listModels().find((m) => m.path === p)!.info as StoredInfo;
  }
}

/** A pipeline run's result for one ratio: its pruned model folder and LoRA adapter. */
export function runResult(history: History, runId: string, ratio: number): { spec: PipelineSpec; prunedDir: string; adapterDir: string } {
  const run = history.getRun(runId);
  if (run.kind !== 'pipeline') throw new ServiceError('E_ARG', `run ${runId} is a ${run.kind} run, not a tailoring pipeline`, 'source.runId');
  const spec = run.spec as PipelineSpec;
  const prunedDir = path.join(spec.outDir, `pruned-${ratio}`);
  const adapterDir = path.join(spec.outDir, `lora-${ratio}`, 'adapter');
  if (!fs.existsSync(prunedDir)) throw new ServiceError('E_NOT_FOUND', `run ${runId} has no pruned model for ratio ${ratio} (yet)`, 'source.ratio');
  return { spec, prunedDir, adapterDir };
}

/** Loaded models, kept while in use and for a little while after (the playground generates repeatedly). */
export class ModelCache {
  private readonly entries = new Map<string, { model: Promise<Model>; users: number; lastUsed: number }>();
  constructor(private readonly history: History, private readonly keep = 2) {}

  private key(s: ModelSource): string {
    return s.kind === 'model' ? `model:${s.path}` : `run:${s.runId}:${s.ratio}:${s.recovered}`;
  }

  /** Where a source's weights live (and its adapter, for a recovered run result). */
  locate(s: ModelSource): { modelPath: string; adapterDir: string | null; baseModel: string | null } {
    if (s.kind === 'model') {
      ensureExists(s.path, 'source.path');
      return { modelPath: s.path, adapterDir: null, baseModel: null };
    }
    const r = runResult(this.history, s.runId, s.ratio);
    if (s.recovered && !fs.existsSync(path.join(r.adapterDir, 'adapter_config.json')))
      throw new ServiceError('E_NOT_FOUND', `run ${s.runId} has no LoRA adapter for ratio ${s.ratio} (yet)`, 'source.ratio');
    return { modelPath: r.prunedDir, adapterDir: s.recovered ? r.adapterDir : null, baseModel: r.spec.model };
  }

  /** Runs fn with the source loaded (the adapter merged for a recovered run result). */
  async use<T>(s: ModelSource, fn: (m: Model) => Promise<T>): Promise<T> {
    const k = this.key(s);
    let e = this.entries.get(k);
    if (!e) {
      const where = this.locate(s);
      const model = Model.load(where.modelPath).then((m) => {
        try {
          if (where.adapterDir) applyAdapter(m, where.adapterDir);
          return m;
        } catch (err) {
          m.dispose();
          throw err;
        }
      });
      e = { model, users: 0, lastUsed: Date.now() };
      this.entries.set(k, e);
      model.catch(() => this.entries.delete(k));
    }
    e.users++;
    try {
      return await fn(await e.model);
    } finally {
      e.users--;
      e.lastUsed = Date.now();
      this.evict();
    }
  }

  private evict(): void {
    const idle = [...this.entries.entries()].filter(([, e]) => e.users === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    while (this.entries.size > this.keep && idle.length) {
      const [k, e] = idle.shift()!;
      this.entries.delete(k);
      void e.model.then((m) => m.dispose(), () => undefined);
    }
  }

  /**
   * Frees every cached model no job is using: a run about to start gets the memory (a LLaMA-7B pipeline needs
   * all of a 24 GB GPU; an idle Playground model would hold 13 GB of it, and 25 GiB of host memory).
   */
  dropIdle(): void {
    for (const [k, e] of [...this.entries.entries()])
      if (e.users === 0) {
        this.entries.delete(k);
        void e.model.then((m) => m.dispose(), () => undefined);
      }
  }

  /** Forgets (and frees) every cached model of a run, e.g. before its files are deleted. */
  dropRun(runId: string): void {
    for (const [k, e] of [...this.entries.entries()])
      if (k.startsWith(`run:${runId}:`) && e.users === 0) {
        this.entries.delete(k);
        void e.model.then((m) => m.dispose(), () => undefined);
      }
  }

  dispose(): void {
    for (const e of this.entries.values()) void e.model.then((m) => m.dispose(), () => undefined);
    this.entries.clear();
  }
}
