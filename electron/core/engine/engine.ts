// engine.ts — the typed TypeScript face of the native engine: load a model (any supported format) with
// its tokenizer, score sequences, generate tokens. Every call returns a promise (the work runs on engine
// threads, never on Node's event loop), long calls take an AbortSignal and report progress, and every
// failure is an EngineError with a code.
import { addon, type BackendRequest, type DeviceMemory, type EngineInfo, type RawAddonModel, type RawBackendInfo, type RawFileInfo, type RawLayerTensors, type RawExample, type RawGenerateResult, type RawGroupScores, type RawModelInfo, type RawTaylorStats, type RawTensors } from './native.js';
import type { LayerTensors, ModelTensors } from '../formats/model-tensors.js';
import { EngineError, toEngineError, wrap, wrapSync } from './errors.js';
import { loadTokenizerFor, type Tokenizer } from '../tokenizer/index.js';

export { EngineError } from './errors.js';
export type { EngineErrorCode } from './errors.js';
export type { BackendRequest, CudaDeviceInfo, CudaInfo, DeviceMemory, EngineInfo } from './native.js';

export interface LoadOptions {
  /** engine threads (default: all cores) */
  threads?: number;
  /** use the BLAS library for matrix products when the build has one (default true) */
  blas?: boolean;
  /**
   * the compute backend of inference (default 'auto'): 'auto' runs scoring and generation on the first supported
   * CUDA device when there is one, else on the CPU, and says which in `info.backendNote`; 'cuda' requires a device
   * and rejects with E_UNSUPPORTED saying why not (not built, no driver, no supported device). LoRA training and
   * the pruner's gradient passes run on the same backend; full fine-tuning runs on the CPU
   */
  backend?: BackendRequest;
  /**
   * how a CUDA backend stores the weights (default 'f32'): 'bf16' halves their device memory and runs the matrix
   * products on tensor cores (sm_80+), and attention too where head_dim is a multiple of 16 up to 128 (training,
   * and prompts of 32 tokens or more); norm vectors, activations, LoRA parameters and optimizer state stay fp32.
   * The CPU backend always computes in fp32 (the choice is then noted in `info.backendNote`)
   */
  weights?: 'f32' | 'bf16';
  /**
   * the host's copy of the weights when a CUDA backend holds them (default 'auto'): 'auto' and 'release' hand the
   * host pages of each tensor back as soon as it is on the device, keep the file mapped, and decode a tensor again
   * from it whenever one is read (exports, pruning, LoRA merges: the same values bit for bit), so LLaMA-7B does not
   * also need 25 GiB of host memory; 'keep' keeps the fp32 arena. On the CPU the arena is what computes and stays.
   * While a released model lives its files must stay in place (Windows: they cannot be deleted meanwhile)
   */
  hostWeights?: 'auto' | 'keep' | 'release';
  /** skip looking for a tokenizer (score/generate by ids only) */
  noTokenizer?: boolean;
  /** stops the load between two tensors (E_CANCELLED); nothing is kept */
  signal?: AbortSignal;
  /** the file's weight bytes decoded so far and in all, after each tensor (on CUDA each is on the device by then) */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

export interface ModelInfo extends RawModelInfo {
  path: string;
  tokenizer: string | null;
}

export interface SeqScore {
  /** log p(ids[t+1] | ids[..t]) for t = 0..n-2 (natural log) */
  logprob: Float32Array;
  /** argmax of the logits at each of the n positions */
  argmax: Int32Array;
  /** logits at the last position, when asked for */
  lastLogits?: Float32Array;
  /** −Σ logprob */
  nllSum: number;
  /** the leading positions computed once with the previous sequence, which has the same tokens there (sharePrefixes) */
  sharedPrefix: number;
}

export interface ScoreOptions {
  lastLogits?: boolean;
  /** computed tokens per batch (default 2048) */
  maxBatchTokens?: number;
  /**
   * compute a prefix a sequence has in common with the previous one once (default true): the choices of a
   * multiple-choice item share their context, about half of the paper's tasks' tokens
   */
  sharePrefixes?: boolean;
  signal?: AbortSignal;
  onProgress?: (tokensDone: number, tokensTotal: number) => void;
}

export interface GenerateIdsOptions {
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** stop when the model emits EOS (default true) */
  stopAtEos?: boolean;
  /** further token ids that end generation like EOS (the stop token is included in the result) */
  stopIds?: number[];
  /** the KV cache to allocate, in positions (default: the prompt and maxTokens, up to the model's context) */
  nCtx?: number;
  signal?: AbortSignal;
  /** called for every token as it is produced, in order */
  onToken?: (id: number, index: number) => void;
  /** return early (without error) when this returns true; checked after each token */
  shouldStop?: () => boolean;
}

export type GenerateIdsResult = RawGenerateResult;

/** A cancel flag the engine threads read: element 0 becomes nonzero on abort (1) or early stop (2). */
function cancelFlag(signal?: AbortSignal): { flag: Int32Array; done: () => void } {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  if (!signal) return { flag, done: () => {} };
  if (signal.aborted) throw new EngineError('E_CANCELLED', 'cancelled');
  const onAbort = () => Atomics.store(flag, 0, 1);
  signal.addEventListener('abort', onAbort, { once: true });
  return { flag, done: () => signal.removeEventListener('abort', onAbort) };
}

export function cancelFlagFor(signal?: AbortSignal): { flag: Int32Array; done: () => void } {
  return cancelFlag(signal);
}

/** The build and the machine: BLAS, hardware threads, and CUDA (built? available? devices, or why not). */
export function engineInfo(): EngineInfo {
  return addon().engineInfo();
}

/**
 * Tailor's GPU memory over all its CUDA models, from the allocator's accounting; null when no model has run on
 * CUDA in this process. With resetPeak, the peak starts again from what is in use (a pipeline stage's peak).
 */
export function deviceMemory(opts: { resetPeak?: boolean } = {}): DeviceMemory | null {
  return addon().deviceMemory(opts);
}

const GIB = 1024 ** 3;

/** One line on CUDA for `tailor info`: the devices, or why CUDA is not available. */
export function cudaStatusLine(c: EngineInfo['cuda']): string {
  if (!c.built) return `not available: ${c.reason ?? 'not built with CUDA'}`;
  const build = `built for sm ${c.architectures ?? '?'} (CUDA ${c.runtimeVersion ?? '?'})`;
  if (!c.available) return `${build}; not available: ${c.reason ?? 'unknown'}`;
  const devs = c.devices.map((d) => `${d.index}: ${d.name} (sm ${d.computeCapability}, ${(d.totalMemory / GIB).toFixed(1)} GiB, ${(d.freeMemory / GIB).toFixed(1)} GiB free)`);
  return `${build}, driver CUDA ${c.driverVersion ?? '?'}; ${devs.join('; ')}${c.cublasLt ? `; cuBLASLt ${c.cublasLt}` : ''}`;
}

/** A model's KV cache on a backend: its element type, and the bytes one cached position takes. */
export interface KvCacheInfo {
  dtype: 'f32' | 'bf16';
  /** keys and values of every layer for one position (a layer whose heads are all pruned stores none) */
  bytesPerToken: number;
}

/** The KV cache a generation allocates, from the model's shapes and its backend's kvBf16HeadDims (no load needed). */
export function kvCacheOf(i: Pick<RawModelInfo, 'headDim' | 'layers' | 'kvBf16HeadDims'>): KvCacheInfo {
  const dtype = i.kvBf16HeadDims.includes(i.headDim) ? 'bf16' : 'f32';
  const kvHeads = i.layers.reduce((s, l) => s + l.nKvHead, 0);
  return { dtype, bytesPerToken: 2 * kvHeads * i.headDim * (dtype === 'bf16' ? 2 : 4) };
}

export interface ModelFileInfo extends RawFileInfo {
  path: string;
  tokenizer: string | null;
}

/**
 * What a model is without loading it: the file (any supported format) checked as a load checks it — every
 * tensor's shape, dtype and bounds against the config — and its config and tokenizer kind, with no weights
 * decoded (a 7B GGUF is not turned into 25 GiB of fp32 to list it). Rejects as Model.load would, including
 * E_NO_TOKENIZER unless `noTokenizer`.
 */
export async function inspectModel(modelPath: string, opts: { noTokenizer?: boolean } = {}): Promise<ModelFileInfo> {
  const r = await wrap(() => addon().AddonModel.inspect(modelPath));
  let tokenizer: string | null = null;
  if (!opts.noTokenizer) {
    const t = await loadTokenizerFor(modelPath, { vocabSize: r.info.vocabSize, ggufMetadata: r.info.format === 'gguf' ? r.metadata : undefined }).catch((e: unknown) => {
      throw new EngineError('E_NO_TOKENIZER', (e as Error).message, { cause: e });
    });
    tokenizer = t.kind;
  }
  return { ...r.info, path: modelPath, tokenizer };
}

/**
 * The backend a load with these options would run on — chosen as a load chooses ('cuda' rejects with
 * E_UNSUPPORTED saying why), created, named — without reading a model. With inspectModel, a model's whole
 * info without loading it.
 */
export async function describeBackend(opts: LoadOptions = {}): Promise<RawBackendInfo> {
  return wrap(() => addon().AddonModel.describeBackend({ threads: opts.threads ?? 0, blas: opts.blas ?? true, backend: opts.backend ?? 'auto', weights: opts.weights ?? 'f32' }));
}

let liveModels = 0;

export class Model {
  private raw: RawAddonModel | null;

  /** Models loaded in this process and not yet disposed (each holds its weights, on a GPU too). */
  static liveCount(): number {
    return liveModels;
  }
  readonly info: ModelInfo;
  readonly tokenizer: Tokenizer | null;

  private constructor(raw: RawAddonModel, info: ModelInfo, tokenizer: Tokenizer | null) {
    this.raw = raw;
    liveModels++;
    this.info = info;
    this.tokenizer = tokenizer;
  }

  /** Loads a Hugging Face folder, a GGUF file or a llama2.c checkpoint, and the tokenizer that goes with it. */
  static async load(modelPath: string, opts: LoadOptions = {}): Promise<Model> {
    const { flag, done } = cancelFlag(opts.signal);
    let raw: RawAddonModel;
    try {
      raw = await wrap(() => addon().AddonModel.load(modelPath, {
        threads: opts.threads ?? 0, blas: opts.blas ?? true, backend: opts.backend ?? 'auto', weights: opts.weights ?? 'f32', hostWeights: opts.hostWeights ?? 'auto', cancel: flag, onProgress: opts.onProgress,
      }));
    } finally {
      done();
    }
    try {
      const rawInfo = raw.info();
      let tokenizer: Tokenizer | null = null;
      if (!opts.noTokenizer) {
        const meta = rawInfo.format === 'gguf' ? raw.metadata() : undefined;
        tokenizer = await loadTokenizerFor(modelPath, { vocabSize: rawInfo.vocabSize, ggufMetadata: meta }).catch((e: unknown) => {
          throw new EngineError('E_NO_TOKENIZER', (e as Error).message, { cause: e });
        });
      }
      return new Model(raw, { ...rawInfo, path: modelPath, tokenizer: tokenizer ? tokenizer.kind : null }, tokenizer);
    } catch (e) {
      raw.dispose();
      throw toEngineError(e);
    }
  }

  private handle(): RawAddonModel {
    if (!this.raw) throw new EngineError('E_ARG', 'the model has been disposed');
    return this.raw;
  }

  /** The tokenizer, or an E_NO_TOKENIZER error saying how to get one. */
  requireTokenizer(): Tokenizer {
    if (!this.tokenizer) throw new EngineError('E_NO_TOKENIZER', `no tokenizer was loaded for ${this.info.path}`);
    return this.tokenizer;
  }

  /** The file's metadata (GGUF key/values; empty for other formats). */
  metadata(): Record<string, unknown> {
    return this.handle().metadata();
  }

  /** Scores each sequence from position 0: per-position log-probabilities of the next id and argmax. */
  async score(seqs: ReadonlyArray<ReadonlyArray<number>>, opts: ScoreOptions = {}): Promise<SeqScore[]> {
    const raw = this.handle();
    const { flag, done } = cancelFlag(opts.signal);
    try {
      return await wrap(() =>
        raw.score(seqs.map((s) => Int32Array.from(s)), {
          lastLogits: opts.lastLogits ?? false,
          maxBatchTokens: opts.maxBatchTokens,
          sharePrefixes: opts.sharePrefixes ?? true,
          cancel: flag,
          onProgress: opts.onProgress,
        }),
      );
    } finally {
      done();
    }
  }

  /** Generates up to maxTokens ids after the prompt ids (streamed through onToken). */
  async generateIds(prompt: ReadonlyArray<number>, opts: GenerateIdsOptions = {}): Promise<GenerateIdsResult> {
    const raw = this.handle();
    const { flag, done } = cancelFlag(opts.signal);
    let delivered = 0;
    const deliver = (id: number, index: number) => {
      if (index !== delivered) return; // late duplicates after the promise settled are ignored
      delivered++;
      opts.onToken?.(id, index);
      if (opts.shouldStop?.()) Atomics.store(flag, 0, 2);
    };
    try {
      const stopIds = [...(opts.stopAtEos === false || this.info.eosId < 0 ? [] : [this.info.eosId]), ...(opts.stopIds ?? [])];
      const res = await wrap(() =>
        raw.generate(Int32Array.from(prompt), {
          maxTokens: opts.maxTokens ?? 128,
          nCtx: opts.nCtx,
          temperature: opts.temperature ?? 0,
          topK: opts.topK ?? 0,
          topP: opts.topP ?? 1,
          seed: opts.seed ?? 0,
          stopIds,
          cancel: flag,
          onToken: deliver,
        }),
      );
      // tokens whose callbacks had not arrived yet when the promise settled
      for (let i = delivered; i < res.tokens.length; i++) deliver(res.tokens[i], i);
      if (opts.signal?.aborted) throw new EngineError('E_CANCELLED', 'cancelled');
      return res;
    } finally {
      done();
    }
  }

  /** The raw addon handle (for the training layer in electron/core/train). */
  rawHandle(): RawAddonModel {
    return this.handle();
  }

  /** A copy of every weight as the neutral in-memory model the writers take (lazyTensors: one at a time). */
  tensors(): ModelTensors {
    const t: RawTensors = wrapSync(() => this.handle().tensors());  // (E_IO: a released model's file changed on disk)
    return {
      ...this.header(),
      tokEmb: t.tokEmb, outNorm: t.outNorm, lmHead: t.lmHead,
      layers: t.layers.map((l, k) => ({ ...this.info.layers[k], ...l })),
    };
  }

  /** ModelTensors' fields other than the weights */
  private header(): Omit<ModelTensors, 'tokEmb' | 'outNorm' | 'lmHead' | 'layers'> {
    const i = this.info;
    const s = i.ropeScaling;
    return {
      dim: i.dim, headDim: i.headDim, vocabSize: i.vocabSize, contextLength: i.contextLength,
      normEps: i.normEps, ropeTheta: i.ropeTheta, ropeLayout: i.ropeLayout,
      ropeScaling: s.type === 'linear' ? { type: 'linear', factor: s.factor }
        : s.type === 'llama3' ? { type: 'llama3', factor: s.factor, lowFreqFactor: s.lowFreqFactor!, highFreqFactor: s.highFreqFactor!, originalMaxPositionEmbeddings: s.originalMaxPositionEmbeddings! }
        : undefined,
      bosId: i.bosId, eosId: i.eosId,
    };
  }

  /**
   * The weights as the writers take them, each tensor copied from the engine when it is read — again at each
   * read, nothing kept — so a writer streaming the model (they take each tensor through a thunk when it is
   * written) holds one tensor at a time, not a copy of all of them (25 GiB for LLaMA-7B). Shapes are plain
   * fields. Writing into a returned array changes nothing: for edits, use tensors().
   */
  lazyTensors(): ModelTensors {
    const raw = this.handle();
    const i = this.info;
    const lazy = <T extends object>(o: T, names: readonly string[], get: (name: string) => Float32Array | null): T => {
      for (const n of names) Object.defineProperty(o, n, { enumerable: true, configurable: false, get: () => get(n) });
      return o;
    };
    const model = lazy({ ...this.header(), layers: [] as LayerTensors[] } as ModelTensors, ['tokEmb', 'outNorm', 'lmHead'], (n) =>
      wrapSync(() => this.alive(raw).tensors({ name: n as 'tokEmb' | 'outNorm' | 'lmHead' })));
    model.layers = i.layers.map((shape, layer) =>
      lazy({ ...shape } as LayerTensors, ['attnNorm', 'wq', 'wk', 'wv', 'wo', 'ffnNorm', 'wGate', 'wUp', 'wDown'], (n) =>
        wrapSync(() => this.alive(raw).tensors({ layer, name: n as keyof RawLayerTensors }))));
    return model;
  }

  /** raw, if this model is still loaded (a lazy view read after dispose is an E_ARG error, not a crash) */
  private alive(raw: RawAddonModel): RawAddonModel {
    if (this.raw !== raw) this.handle();
    return raw;
  }

  /**
   * One full-gradient pass over the base weights for the calibration examples (all in one batch: the
   * gradient of the weighted mean next-token loss), holding one layer's gradients at a time; returns
   * per-tensor Σ|w·g|, Σ w·g and Σ g² (the element-wise first-order Taylor terms) and the pass's time.
   */
  async taylorStats(examples: RawExample[], signal?: AbortSignal): Promise<RawTaylorStats> {
    const raw = this.handle();
    const { flag, done } = cancelFlag(signal);
    try {
      return await wrap(() => raw.taylorStats(examples, { cancel: flag }));
    } finally {
      done();
    }
  }

  /** Per-layer importance of every attention group (KV head with its query heads) and MLP channel. */
  async groupImportance(examples: RawExample[], opts: { method?: string; agg?: string; seed?: number; signal?: AbortSignal } = {}): Promise<RawGroupScores> {
    const raw = this.handle();
    const { flag, done } = cancelFlag(opts.signal);
    try {
      return await wrap(() => raw.groupImportance(examples, { method: opts.method, agg: opts.agg, seed: opts.seed, cancel: flag }));
    } finally {
      done();
    }
  }

  /** W += s·B·A for a LoRA arena in Tailor's slot order (see train/lora.ts); irreversible for this object. */
  mergeLora(cfg: { rank: number; alpha: number; rslora?: boolean; targets: number }, params: Float32Array): void {
    wrapSync(() => this.handle().mergeLora(cfg, params));
  }

  /** Where the host's copy of the weights is now (info has it as it was at load): see LoadOptions.hostWeights. */
  hostWeights(): { state: 'resident' | 'released'; residentBytes: number | null } {
    const i = this.handle().info();
    return { state: i.hostWeights, residentBytes: i.hostResidentBytes };
  }

  dispose(): void {
    if (this.raw) {
      this.raw.dispose();
      this.raw = null;
      liveModels--;
    }
  }
}
