// llama2c `.bin` writer (legacy v0 format as llama2c's export.py `legacy_export` writes it) and the file-size
// arithmetic that run.c's memory_map_weights implies, shared with the hostile-file generators.
import * as fs from 'node:fs';
import { ModelTensors, checkModel, isUniform, permuteRows } from './model-tensors.js';
import { assertLittleEndian, bytesOf, writeAllSync } from './dtype.js';

/** The 7 int32 header fields; vocabSize < 0 means an untied classifier follows the weights. */
export interface Llama2cHeader {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
}

export const LLAMA2C_HEADER_BYTES = 28;

export function encodeLlama2cHeader(h: Llama2cHeader): Uint8Array {
  const a = new Int32Array([h.dim, h.hiddenDim, h.nLayers, h.nHeads, h.nKvHeads, h.vocabSize, h.seqLen]);
  return new Uint8Array(a.buffer);
}

export function decodeLlama2cHeader(b: Uint8Array): Llama2cHeader {
  if (b.length < LLAMA2C_HEADER_BYTES) throw new Error('llama2c: truncated header');
  const dv = new DataView(b.buffer, b.byteOffset, LLAMA2C_HEADER_BYTES);
  const g = (i: number): number => dv.getInt32(i * 4, true);
  return { dim: g(0), hiddenDim: g(1), nLayers: g(2), nHeads: g(3), nKvHeads: g(4), vocabSize: g(5), seqLen: g(6) };
}

/**
 * Total file size run.c expects for this header, with its integer arithmetic (head_size = dim / n_heads,
 * kv_dim = n_kv_heads * head_size), in BigInt so absurd headers cannot overflow here.
 */
export function llama2cFileSize(h: Llama2cHeader): bigint {
  const B = BigInt;
  const dim = B(h.dim);
  const hidden = B(h.hiddenDim);
  const L = B(h.nLayers);
  const vocab = B(Math.abs(h.vocabSize));
  const headSize = B(Math.trunc(h.dim / h.nHeads));
  const qDim = B(h.nHeads) * headSize;
  const kvDim = B(h.nKvHeads) * headSize;
  let floats = vocab * dim; // token_embedding_table
  floats += L * dim; // rms_att_weight
  floats += L * dim * qDim; // wq
  floats += 2n * L * dim * kvDim; // wk, wv
  floats += L * qDim * dim; // wo
  floats += L * dim; // rms_ffn_weight
  floats += 3n * L * dim * hidden; // w1, w2, w3
  floats += dim; // rms_final_weight
  floats += 2n * ((B(h.seqLen) * headSize) / 2n); // freq_cis_real, freq_cis_imag (unused by run.c)
  if (h.vocabSize < 0) floats += vocab * dim; // wcls
  return B(LLAMA2C_HEADER_BYTES) + 4n * floats;
}

/** The RoPE tables llama2c's export wrote: cos/sin of pos * 10000^(-2j/hd), float32, [seqLen, hd/2] each. */
export function llama2cFreqCis(headDim: number, seqLen: number): { real: Float32Array; imag: Float32Array } {
  const half = headDim / 2;
  const real = new Float32Array(seqLen * half);
  const imag = new Float32Array(seqLen * half);
  const freqs = new Float32Array(half);
  // export.py: freqs = 1 / (theta ** (arange(0, dim, 2)[: dim // 2].float() / dim)), all in float32
  for (let j = 0; j < half; j++) freqs[j] = 1 / Math.fround(Math.pow(10000, Math.fround((2 * j) / headDim)));
  for (let t = 0; t < seqLen; t++) {
    for (let j = 0; j < half; j++) {
      const a = Math.fround(t * freqs[j]);
      real[t * half + j] = Math.cos(a);
      imag[t * half + j] = Math.sin(a);
    }
  }
  return { real, imag };
}

/** Header for `m`, or throws when the model cannot be represented in the v0 format. */
export function llama2cHeaderFor(m: ModelTensors): Llama2cHeader {
  checkModel(m);
  if (!isUniform(m)) throw new Error('llama2c: every layer must have the same non-zero head and FFN counts');
  const l0 = m.layers[0];
  if (l0.nHead * m.headDim !== m.dim) throw new Error(`llama2c: needs nHead*headDim == dim (${l0.nHead}*${m.headDim} != ${m.dim})`);
  if (m.ropeTheta !== 10000) throw new Error(`llama2c: run.c hard-codes rope theta 10000 (model has ${m.ropeTheta})`);
  if (m.ropeScaling) throw new Error('llama2c: rope scaling cannot be represented');
  if (Math.abs(m.normEps - 1e-5) > 1e-12) throw new Error(`llama2c: run.c hard-codes rms eps 1e-5 (model has ${m.normEps})`);
  return {
    dim: m.dim,
    hiddenDim: l0.ffn,
    nLayers: m.layers.length,
    nHeads: l0.nHead,
    nKvHeads: l0.nKvHead,
    vocabSize: m.lmHead ? -m.vocabSize : m.vocabSize,
    seqLen: m.contextLength,
  };
}

/** The sections of the file after the header, in order (q/k rows in the interleaved layout). */
function sections(m: ModelTensors): Array<() => Float32Array> {
  const inter = m.ropeLayout === 'interleaved';
  const L = m.layers;
  const hd = m.headDim;
  const each = (f: (l: (typeof L)[number]) => Float32Array) => L.map((l) => () => f(l));
  const fc = llama2cFreqCis(hd, m.contextLength);
  return [
    () => m.tokEmb,
    ...each((l) => l.attnNorm),
    ...each((l) => (inter ? l.wq : permuteRows(l.wq, l.nHead, hd, m.dim, 'interleaved'))),
    ...each((l) => (inter ? l.wk : permuteRows(l.wk, l.nKvHead, hd, m.dim, 'interleaved'))),
    ...each((l) => l.wv),
    ...each((l) => l.wo),
    ...each((l) => l.ffnNorm),
    ...each((l) => l.wGate), // w1
    ...each((l) => l.wDown), // w2
    ...each((l) => l.wUp), // w3
    () => m.outNorm,
    () => fc.real,
    () => fc.imag,
    ...(m.lmHead ? [() => m.lmHead as Float32Array] : []),
  ];
}

/** Writes `m` as a llama2c v0 `.bin`. Throws for non-uniform layers, theta != 10000, eps != 1e-5 or rope scaling. */
export function writeLlama2c(file: string, m: ModelTensors): void {
  assertLittleEndian();
  const h = llama2cHeaderFor(m);
  const fd = fs.openSync(file, 'w');
  try {
    writeAllSync(fd, encodeLlama2cHeader(h));
    for (const s of sections(m)) writeAllSync(fd, bytesOf(s()));
  } finally {
    fs.closeSync(fd);
  }
}

/** `writeLlama2c` into memory. */
export function llama2cBytes(m: ModelTensors): Uint8Array {
  const h = llama2cHeaderFor(m);
  const parts = [encodeLlama2cHeader(h), ...sections(m).map((s) => bytesOf(s()))];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  if (BigInt(out.length) !== llama2cFileSize(h)) throw new Error('llama2c: internal size mismatch');
  return out;
}
