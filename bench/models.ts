// models.ts — the benchmark's models: the real stories260K from shared/, and random-weight F32 LLaMAs in
// the llama2.c "stories15M" and "stories110M" shapes that the benchmark writes once (with the real Llama 2
// SentencePiece vocabulary, so llama.cpp loads them) and caches outside the repository.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomModel, type RandomModelSpec } from '../electron/core/formats/model-tensors.js';
import { writeGguf, type GgufTokenizerMeta } from '../electron/core/formats/gguf-write.js';
import { ggufVocabFromSentencePiece } from '../electron/core/export/export.js';
import { sharedDir } from './paths.js';

export interface BenchModel {
  /** short name printed in the table */
  name: string;
  /** GGUF path (both engines load this same file) */
  path: string;
  /** context length both engines allocate */
  contextLength: number;
  vocabSize: number;
  /** true when the weights are random (the benchmark wrote the file) */
  synthetic: boolean;
  /** prompt lengths (tokens, BOS included) to time prompt processing at */
  ppSizes: number[];
  /** generated tokens to time (decode steps after a short prompt) */
  tgTokens: number;
}

interface SyntheticDef {
  name: string;
  spec: Omit<RandomModelSpec, 'vocabSize'>;
  ppSizes: number[];
  tgTokens: number;
}

/** llama2.c's stories15M and stories110M shapes (tied embeddings, MHA), with random N(0, 1/sqrt(fan_in)) weights. */
const SYNTHETIC: Record<'15M' | '110M', SyntheticDef> = {
  '15M': {
    name: 'stories15M-shape',
    spec: { dim: 288, nLayers: 6, nHead: 6, nKvHead: 6, ffn: 768, contextLength: 512, tied: true, seed: 15 },
    ppSizes: [128, 512],
    tgTokens: 128,
  },
  '110M': {
    name: 'stories110M-shape',
    spec: { dim: 768, nLayers: 12, nHead: 12, nKvHead: 12, ffn: 2048, contextLength: 1024, tied: true, seed: 110 },
    ppSizes: [128, 512],
    tgTokens: 64,
  },
};

/** Bumped whenever the way the files are made changes, so stale caches are not reused. */
const RECIPE_VERSION = 1;

export function stories260K(): BenchModel {
  const p = path.join(sharedDir(), 'models', 'stories260K', 'stories260K.gguf');
  if (!fs.existsSync(p)) throw new Error(`missing ${p} (the shared data folder)`);
  return { name: 'stories260K', path: p, contextLength: 512, vocabSize: 512, synthetic: false, ppSizes: [128, 512], tgTokens: 128 };
}

/** The Llama 2 SentencePiece vocabulary as GGUF tokenizer metadata (the same pieces, scores and types). */
export function llama2TokenizerMeta(): { meta: GgufTokenizerMeta; digest: string } {
  const p = path.join(sharedDir(), 'models', 'llama2-tokenizer', 'tokenizer.model');
  const buf = fs.readFileSync(p);
  const meta: GgufTokenizerMeta = ggufVocabFromSentencePiece(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
  const digest = crypto.createHash('sha256').update(buf).digest('hex').slice(0, 12);
  return { meta, digest };
}

/**
 * Returns the cached GGUF for a synthetic shape, writing it first when it is missing. `log` reports the
 * (slow, one-time) generation.
 */
export function syntheticModel(which: '15M' | '110M', cacheDir: string, log: (msg: string) => void): BenchModel {
  const def = SYNTHETIC[which];
  const tok = llama2TokenizerMeta();
  const vocabSize = tok.meta.tokens.length;
  const spec: RandomModelSpec = { ...def.spec, vocabSize };
  const key = crypto
    .createHash('sha256')
    .update(JSON.stringify({ RECIPE_VERSION, spec, tokenizer: tok.digest, dtype: 'f32' }))
    .digest('hex')
    .slice(0, 10);
  fs.mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, `${def.name}-f32-${key}.gguf`);
  if (!fs.existsSync(file)) {
    const t0 = performance.now();
    log(`writing ${file} (random weights, once) ...`);
    const m = randomModel(spec);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      writeGguf(tmp, m, { dtype: 'f32', tokenizer: tok.meta, name: `tailor-bench ${def.name}` });
      fs.renameSync(tmp, file);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s (${(fs.statSync(file).size / 1e6).toFixed(0)} MB)`);
  }
  return {
    name: def.name,
    path: file,
    contextLength: spec.contextLength ?? 256,
    vocabSize,
    synthetic: true,
    ppSizes: def.ppSizes,
    tgTokens: def.tgTokens,
  };
}
