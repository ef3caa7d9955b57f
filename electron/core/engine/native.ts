// native.ts — loads the compiled addon (native/build/Release/tailor.node) and declares its raw shape.
// Only engine.ts talks to these types; everything else uses the typed wrapper there.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface RawLayerInfo { nHead: number; nKvHead: number; ffn: number }
export interface RawModelInfo {
  format: 'hf' | 'gguf' | 'llama2c';
  architecture: string;
  sourceDtype: string;
  dim: number; nLayers: number; headDim: number; vocabSize: number; contextLength: number;
  normEps: number; ropeTheta: number; ropeLayout: 'interleaved' | 'rotate_half';
  ropeScaling: { type: 'none' | 'linear' | 'llama3'; factor: number; lowFreqFactor?: number; highFreqFactor?: number; originalMaxPositionEmbeddings?: number };
  ropeFreqFactors: boolean;
  tiedEmbeddings: boolean;
  bosId: number; eosId: number;
  layers: RawLayerInfo[];
  nParams: number;
  backend: string;
  threads: number;
}
export interface RawSeqScore { logprob: Float32Array; argmax: Int32Array; lastLogits?: Float32Array; nllSum: number }
export interface RawGenerateResult { tokens: number[]; promptTokens: number; promptMs: number; generateMs: number; stopReason: 'eos' | 'length' | 'stopped' | 'context' }
export interface RawAddonModel {
  info(): RawModelInfo;
  metadata(): Record<string, unknown>;
  score(seqs: Array<Int32Array | number[]>, opts: { lastLogits?: boolean; maxBatchTokens?: number; cancel?: Int32Array; onProgress?: (done: number, total: number) => void }): Promise<RawSeqScore[]>;
  generate(prompt: Int32Array | number[], opts: { maxTokens?: number; nCtx?: number; nBatch?: number; temperature?: number; topK?: number; topP?: number; seed?: number; stopIds?: number[]; cancel?: Int32Array; onToken?: (id: number, index: number) => void }): Promise<RawGenerateResult>;
  dispose(): void;
}
export interface RawAddon {
  AddonModel: { load(path: string, opts?: { threads?: number; blas?: boolean }): Promise<RawAddonModel> };
  engineInfo(): { blas: string; hardwareThreads: number; cudaBuilt: boolean };
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
