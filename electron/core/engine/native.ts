// native.ts — loads the compiled addon (native/build/Release/tailor.node) and declares its raw shape.
// Only engine.ts talks to these types; everything else uses the typed wrapper there.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tailor's GPU memory over all its CUDA models in this process, in bytes (the allocator's own accounting). */
export interface DeviceMemory {
  /** handed out to tensors now */
  inUse: number;
  /** the most in use at once since the last reset */
  peak: number;
  /** freed by Tailor but kept for reuse (the caching allocator) */
  cached: number;
  /** held by libraries outside the allocator (cuBLASLt's workspace) */
  library: number;
  /** the device's memory, and what is free on it now (all processes) */
  total: number;
  free: number;
}

export interface RawLayerInfo { nHead: number; nKvHead: number; ffn: number }
export interface RawModelInfo {
  format: 'hf' | 'gguf' | 'llama2c';
  architecture: string;
  sourceDtype: string;
  dim: number; nLayers: number; headDim: number; vocabSize: number; contextLength: number;
  normEps: number; ropeTheta: number; ropeLayout: 'interleaved' | 'rotate_half'; sourceRopeLayout: 'interleaved' | 'rotate_half';
  ropeScaling: { type: 'none' | 'linear' | 'llama3'; factor: number; lowFreqFactor?: number; highFreqFactor?: number; originalMaxPositionEmbeddings?: number };
  ropeFreqFactors: boolean;
  tiedEmbeddings: boolean;
  bosId: number; eosId: number;
  layers: RawLayerInfo[];
  nParams: number;
  backend: string;
  threads: number;
  /** what runs this model's scoring, generation, LoRA training and pruning statistics (full fine-tuning runs on the CPU) */
  backendKind: 'cpu' | 'cuda';
  /** the `backend` load option */
  backendRequested: 'auto' | 'cpu' | 'cuda';
  /** what 'auto' picks on this machine ('cuda' when a supported device is usable) */
  backendAutoPick: 'cpu' | 'cuda';
  /** why 'auto' chose what it chose (null for an explicit 'cpu') */
  backendNote: string | null;
  /**
   * the head sizes whose KV cache this backend keeps in bf16 (CUDA with bf16 weights, where its tensor-core
   * attention takes the head size); every other head size, and every CPU backend, keeps fp32 (kvCacheOf)
   */
  kvBf16HeadDims: number[];
  /** the host's copy of the weights: the fp32 arena ('resident'), or handed back once a device held its copy and decoded from the file when read ('released') */
  hostWeights: 'resident' | 'released';
  /** bytes of the fp32 arena resident in host memory (null where the system cannot say) */
  hostResidentBytes: number | null;
}
/** What a model file says of itself (AddonModel.inspect): the info of a load without the backend's fields. */
export type RawFileInfo = Omit<RawModelInfo, RawBackendKey>;
type RawBackendKey = 'backend' | 'threads' | 'backendKind' | 'backendRequested' | 'backendAutoPick' | 'backendNote' | 'kvBf16HeadDims' | RawHostKey;
type RawHostKey = 'hostWeights' | 'hostResidentBytes';
/** The backend part of a load's info (AddonModel.describeBackend: what a load with those options runs on). */
export type RawBackendInfo = Pick<RawModelInfo, Exclude<RawBackendKey, RawHostKey>>;
export interface RawSeqScore { logprob: Float32Array; argmax: Int32Array; lastLogits?: Float32Array; nllSum: number; sharedPrefix: number }
export interface RawGenerateResult { tokens: number[]; promptTokens: number; promptMs: number; generateMs: number; stopReason: 'eos' | 'length' | 'stopped' | 'context' }
export interface RawAddonModel {
  info(): RawModelInfo;
  metadata(): Record<string, unknown>;
  score(seqs: Array<Int32Array | number[]>, opts: { lastLogits?: boolean; maxBatchTokens?: number; sharePrefixes?: boolean; cancel?: Int32Array; onProgress?: (done: number, total: number) => void }): Promise<RawSeqScore[]>;
  generate(prompt: Int32Array | number[], opts: { maxTokens?: number; nCtx?: number; nBatch?: number; temperature?: number; topK?: number; topP?: number; seed?: number; stopIds?: number[]; cancel?: Int32Array; onToken?: (id: number, index: number) => void }): Promise<RawGenerateResult>;
  dispose(): void;
  tensors(): RawTensors;
  tensors(opts: { name: 'tokEmb' | 'outNorm' | 'lmHead' }): Float32Array | null;
  tensors(opts: { layer: number; name: keyof RawLayerTensors }): Float32Array;
  mergeLora(cfg: { rank: number; alpha: number; rslora?: boolean; targets: number }, params: Float32Array): void;
  taylorStats(examples: RawExample[], opts: { cancel?: Int32Array }): Promise<RawTaylorStats>;
  groupImportance(examples: RawExample[], opts: { method?: string; agg?: string; seed?: number; cancel?: Int32Array }): Promise<RawGroupScores>;
}
export interface RawGroupScores { attn: Float64Array[]; mlp: Float64Array[]; loss: number; ms: number }
export interface RawLayerTensors { attnNorm: Float32Array; wq: Float32Array; wk: Float32Array; wv: Float32Array; wo: Float32Array; ffnNorm: Float32Array; wGate: Float32Array; wUp: Float32Array; wDown: Float32Array }
export interface RawTensors {
  tokEmb: Float32Array; outNorm: Float32Array; lmHead: Float32Array | null;
  layers: RawLayerTensors[];
  ropeFreqFactors?: Float32Array;
}
export interface RawTrainConfig {
  rank?: number; alpha?: number; rslora?: boolean; dropout?: number; targets?: number;
  lr?: number; beta1?: number; beta2?: number; eps?: number; weightDecay?: number; warmupSteps?: number; cosine?: boolean; minLrRatio?: number; clip?: number;
  epochs?: number; batch?: number; microBatch?: number; maxLen?: number; seed?: number; checkpointActivations?: boolean; full?: boolean;
}
export interface RawExample { ids: Int32Array; weight: Float32Array }
export interface RawStepStats { step: number; loss: number; lr: number; gradNorm: number; tokens: number }
export interface RawLoraSlot { layer: number; target: string; module: string; a: number; b: number; in: number; out: number }
export interface RawTrainerState { params: Float32Array; m?: Float32Array; v?: Float32Array; step?: number }
export interface RawAddonTrainer {
  /** backend: where the trainer computes (the model's backend for LoRA; the CPU for full fine-tuning) */
  info(): { totalSteps: number; step: number; backend: string; nParams: number; rank: number; alpha: number; scale: number; slots: RawLoraSlot[] };
  run(opts: { maxSteps?: number; cancel?: Int32Array; onStep?: (s: RawStepStats) => void }): Promise<{ steps: number; step: number; done: boolean; cancelled: boolean; stats: RawStepStats[] }>;
  evalLoss(examples: RawExample[], opts: { cancel?: Int32Array }): Promise<number>;
  getState(): Required<RawTrainerState>;
  setState(s: RawTrainerState): void;
  mergeInto(): void;
  dispose(): void;
}
export interface RawTensorTaylor { sumAbsWG: number; sumWG: number; gradSq: number }
export type RawLayerTaylor = Record<'attnNorm' | 'wq' | 'wk' | 'wv' | 'wo' | 'ffnNorm' | 'wGate' | 'wUp' | 'wDown', RawTensorTaylor>;
export interface RawTaylorStats { loss: number; ms: number; layers: RawLayerTaylor[]; tokEmb: RawTensorTaylor; outNorm: RawTensorTaylor; lmHead: RawTensorTaylor }
export interface CudaDeviceInfo {
  index: number;
  name: string;
  /** e.g. "9.0" */
  computeCapability: string;
  multiprocessors: number;
  /** bytes */
  totalMemory: number;
  /** bytes */
  freeMemory: number;
  /** this build has code for it (sm_75 and newer) */
  supported: boolean;
}
export interface CudaInfo {
  /** the engine was compiled with the CUDA kernels */
  built: boolean;
  /** a supported device answered */
  available: boolean;
  devices: CudaDeviceInfo[];
  /** why CUDA is not available ("not built with CUDA (…)", "no CUDA driver (…)", "no device (…)", a CUDA error); null when available */
  reason: string | null;
  /** compiled-in SM architectures, e.g. "75,80,86,89,90" */
  architectures: string | null;
  /** CUDA runtime linked in, e.g. "13.0" */
  runtimeVersion: string | null;
  /** CUDA version the driver supports; null without a driver */
  driverVersion: string | null;
  /**
   * cuBLASLt for the matrix products, opened at run time where the machine has it: "on (<library> (version
   * x.y.z))" or "off (<why>)", with the first call it refused if any; null when CUDA is not available
   */
  cublasLt: string | null;
}
export interface EngineInfo {
  blas: string;
  hardwareThreads: number;
  /** = cuda.built (kept for compatibility) */
  cudaBuilt: boolean;
  cuda: CudaInfo;
}
export type BackendRequest = 'auto' | 'cpu' | 'cuda';
export interface RawAddon {
  AddonModel: {
    load(path: string, opts?: { threads?: number; blas?: boolean; backend?: BackendRequest; weights?: 'f32' | 'bf16'; hostWeights?: 'auto' | 'keep' | 'release'; cancel?: Int32Array; onProgress?: (bytesDone: number, bytesTotal: number) => void }): Promise<RawAddonModel>;
    /** the file checked as a load checks it, its config and metadata; no weights are decoded */
    inspect(path: string): Promise<{ info: RawFileInfo; metadata: Record<string, unknown> }>;
    /** the backend a load with these options would run on, created without a model ('cuda' rejects as load does) */
    describeBackend(opts?: { threads?: number; blas?: boolean; backend?: BackendRequest; weights?: 'f32' | 'bf16' }): Promise<RawBackendInfo>;
  };
  engineInfo(): EngineInfo;
  deviceMemory(opts?: { resetPeak?: boolean }): DeviceMemory | null;
  createTrainer(model: RawAddonModel, cfg: RawTrainConfig, examples: RawExample[]): RawAddonTrainer;
}

function findAddon(): string {
  // dist/electron/core/engine → repository root holds native/build; TAILOR_ADDON overrides
  if (process.env.TAILOR_ADDON) return process.env.TAILOR_ADDON;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    for (const cand of ['native/build/Release/tailor.node', 'native/build/tailor.node']) {
      const p = path.join(dir, cand);
      if (fs.existsSync(p)) return p;
    }
    dir = path.dirname(dir);
  }
  throw new Error('The Tailor native engine is not built: run `npm run build` (needs cmake and a C++17 compiler).');
}

let cached: RawAddon | undefined;
export function addon(): RawAddon {
  if (!cached) cached = createRequire(import.meta.url)(findAddon()) as RawAddon;
  return cached;
}
