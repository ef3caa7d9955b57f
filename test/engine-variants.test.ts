// The engine against the float64 reference (test/reference/llama-ref.ts, itself checked against the
// golden files) on model variants the golden files don't cover: MHA and GQA, untied heads, per-layer
// shapes with whole sublayers pruned away, explicit head_dim, linear and llama3 RoPE scaling, every
// on-disk dtype, sharded safetensors, GGUF `llama` and `deci`, llama2.c.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { Model } from '../electron/core/engine/engine.js';
import { randomModel, toLayout, type ModelTensors, type RandomModelSpec } from '../electron/core/formats/model-tensors.js';
import { writeGguf } from '../electron/core/formats/gguf-write.js';
import { writeHfFolder } from '../electron/core/formats/safetensors-write.js';
import { writeLlama2c } from '../electron/core/formats/llama2c-write.js';
import { bf16ArrayToF32, dequantizeQ8_0, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16, quantizeQ8_0 } from '../electron/core/formats/dtype.js';
import { refForward } from './reference/llama-ref.js';
import { tempDir } from './helpers/paths.js';

const dir = tempDir('tailor-variants-');
let n = 0;
const file = (ext: string) => path.join(dir, `m${n++}${ext}`);

type Dtype = 'f32' | 'f16' | 'bf16' | 'q8_0';

/** The model as the engine sees it after the file's encoding: every matrix rounded through the dtype
 *  (GGUF keeps norms in F32 as llama.cpp does; safetensors stores them in the dtype too). */
function rounded(m: ModelTensors, dtype: Dtype, norms = false): ModelTensors {
  if (dtype === 'f32') return m;
  const r = (w: Float32Array, cols: number): Float32Array => {
    if (w.length === 0) return w;
    if (dtype === 'f16') return f16ArrayToF32(f32ArrayToF16(w));
    if (dtype === 'bf16') return bf16ArrayToF32(f32ArrayToBf16(w));
    return cols % 32 === 0 ? dequantizeQ8_0(quantizeQ8_0(w), w.length) : w;
  };
  const hd = m.headDim;
  const rn = (w: Float32Array) => (norms ? r(w, m.dim) : w);
  return {
    ...m,
    outNorm: rn(m.outNorm),
    tokEmb: r(m.tokEmb, m.dim),
    lmHead: m.lmHead ? r(m.lmHead, m.dim) : null,
    layers: m.layers.map((l) => ({
      ...l,
      attnNorm: rn(l.attnNorm), ffnNorm: rn(l.ffnNorm),
      wq: r(l.wq, m.dim), wk: r(l.wk, m.dim), wv: r(l.wv, m.dim), wo: r(l.wo, l.nHead * hd),
      wGate: r(l.wGate, m.dim), wUp: r(l.wUp, m.dim), wDown: r(l.wDown, l.ffn),
    })),
  };
}

const IDS = (vocab: number, len: number, seed: number) => Array.from({ length: len }, (_, i) => (i === 0 ? 1 : 3 + ((i * 7919 + seed * 104729) % (vocab - 3))));

/** Loads the file in the engine and compares every position's logits with the reference (float64). */
async function expectMatches(modelPath: string, ref: ModelTensors, label: string, tol = 1e-4): Promise<Float32Array[]> {
  const m = await Model.load(modelPath, { noTokenizer: true });
  const out: Float32Array[] = [];
  try {
    for (const [len, seed] of [[37, 1], [11, 2]]) {
      const ids = IDS(ref.vocabSize, len, seed);
      const want = refForward(ref, ids);
      const V = ref.vocabSize;
      // all positions' logits: score prefixes would be slow; instead compare the last-position logits of
      // every prefix length in one batched call (the engine scores sequences independently)
      const prefixes = ids.map((_, i) => ids.slice(0, i + 1));
      const got = await m.score(prefixes, { lastLogits: true });
      let worst = 0;
      for (let t = 0; t < ids.length; t++) {
        const g = got[t].lastLogits!;
        for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(g[v] - want[t * V + v]));
        out.push(g);
      }
      assert.ok(worst <= tol, `${label}: logits differ from the float64 reference by ${worst} (tolerance ${tol})`);
    }
  } finally {
    m.dispose();
  }
  return out;
}

const base: RandomModelSpec = { dim: 64, nLayers: 3, nHead: 4, nKvHead: 4, ffn: 96, vocabSize: 300, contextLength: 64, seed: 11 };

test('MHA, tied embeddings: HF, GGUF (llama) and llama2.c files all match the reference', async () => {
  const m = randomModel({ ...base, tied: true, ropeLayout: 'interleaved' });
  const hf = file('');
  writeHfFolder(hf, m);
  const gg = file('.gguf');
  writeGguf(gg, m, { arch: 'llama' });
  const l2 = file('.bin');
  writeLlama2c(l2, m);
  const a = await expectMatches(hf, m, 'HF');
  const b = await expectMatches(gg, m, 'GGUF');
  const c = await expectMatches(l2, m, 'llama2.c');
  // and the three agree closely with each other (both RoPE layouts handled)
  for (let i = 0; i < a.length; i++) for (let v = 0; v < a[i].length; v++) {
    assert.ok(Math.abs(a[i][v] - b[i][v]) < 1e-5 && Math.abs(a[i][v] - c[i][v]) < 1e-5);
  }
});

test('GQA with an untied lm_head, rotate-half source layout', async () => {
  const m = randomModel({ ...base, nHead: 8, nKvHead: 2, headDim: 8, tied: false, ropeLayout: 'rotate_half', seed: 12 });
  const hf = file('');
  writeHfFolder(hf, m);
  const gg = file('.gguf');
  writeGguf(gg, m);
  await expectMatches(hf, m, 'HF GQA');
  await expectMatches(gg, toLayout(m, 'interleaved'), 'GGUF GQA');
});

test('uneven per-layer shapes (pruned: a layer without attention, a layer without MLP) in HF and GGUF deci', async () => {
  const layers = [
    { nHead: 6, nKvHead: 2, ffn: 80 },
    { nHead: 0, nKvHead: 0, ffn: 33 },
    { nHead: 2, nKvHead: 1, ffn: 0 },
    { nHead: 4, nKvHead: 2, ffn: 96 },
  ];
  const m = randomModel({ ...base, nLayers: 4, layers, nHead: 6, nKvHead: 2, headDim: 16, tied: false, seed: 13 });
  const hf = file('');
  writeHfFolder(hf, m);
  const gg = file('.gguf');
  writeGguf(gg, m); // deci: per-layer arrays
  await expectMatches(hf, m, 'HF per-layer');
  await expectMatches(gg, m, 'GGUF deci');
  const loaded = await Model.load(gg, { noTokenizer: true });
  try {
    assert.equal(loaded.info.architecture, 'deci');
    assert.deepEqual(loaded.info.layers, layers);
  } finally {
    loaded.dispose();
  }
});

test('explicit head_dim different from hidden/heads (Llama 3.2 / Mistral style)', async () => {
  const m = randomModel({ ...base, dim: 48, nHead: 4, nKvHead: 2, headDim: 32, seed: 14 });
  const hf = file('');
  writeHfFolder(hf, m);
  const gg = file('.gguf');
  writeGguf(gg, m);
  await expectMatches(hf, m, 'HF head_dim');
  await expectMatches(gg, m, 'GGUF head_dim');
});

test('RoPE scaling: linear (HF and GGUF) and llama3 (HF rope_scaling and GGUF rope_freqs)', async () => {
  const lin = randomModel({ ...base, ropeScaling: { type: 'linear', factor: 4 }, ropeTheta: 500, seed: 15 });
  const l3 = randomModel({
    ...base, nHead: 4, nKvHead: 2, headDim: 32, ropeTheta: 50, seed: 16,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 },
  });
  for (const [m, label] of [[lin, 'linear'], [l3, 'llama3']] as const) {
    const hf = file('');
    writeHfFolder(hf, m);
    const gg = file('.gguf');
    writeGguf(gg, m);
    await expectMatches(hf, m, `HF ${label}`);
    await expectMatches(gg, m, `GGUF ${label}`);
  }
});

for (const dtype of ['f16', 'bf16', 'q8_0'] as const) {
  test(`GGUF ${dtype} weights decode exactly (logits = reference on the ${dtype}-rounded weights)`, async () => {
    const m = randomModel({ ...base, nHead: 4, nKvHead: 2, tied: false, seed: 17 });
    const gg = file('.gguf');
    writeGguf(gg, m, { dtype });
    await expectMatches(gg, rounded(m, dtype), `GGUF ${dtype}`);
  });
}

for (const dtype of ['f16', 'bf16'] as const) {
  test(`safetensors ${dtype} weights decode exactly`, async () => {
    const m = randomModel({ ...base, seed: 18 });
    const hf = file('');
    writeHfFolder(hf, m, { dtype });
    await expectMatches(hf, rounded(m, dtype, true), `HF ${dtype}`);
  });
}

test('sharded safetensors (model.safetensors.index.json) load to identical logits', async () => {
  const m = randomModel({ ...base, seed: 19, tied: false });
  const one = file('');
  writeHfFolder(one, m);
  const sharded = file('');
  const written = writeHfFolder(sharded, m, { shardBytes: 60_000 });
  assert.ok(written.some((p) => p.endsWith('model.safetensors.index.json')) && written.filter((p) => /model-\d+-of-\d+\.safetensors$/.test(p)).length >= 3);
  const a = await Model.load(one, { noTokenizer: true });
  const b = await Model.load(sharded, { noTokenizer: true });
  try {
    const ids = [IDS(m.vocabSize, 20, 3)];
    const [ra] = await a.score(ids, { lastLogits: true });
    const [rb] = await b.score(ids, { lastLogits: true });
    assert.deepEqual(Array.from(rb.lastLogits!), Array.from(ra.lastLogits!));
    assert.deepEqual(Array.from(rb.logprob), Array.from(ra.logprob));
  } finally {
    a.dispose();
    b.dispose();
  }
});

/** f on the engine's load of a random GQA model (4 heads over 2 KV heads) written as an HF folder */
async function withGqaModel(seed: number, f: (e: Model) => Promise<void>): Promise<void> {
  const hf = file('');
  writeHfFolder(hf, randomModel({ ...base, nHead: 4, nKvHead: 2, seed }));
  const e = await Model.load(hf, { noTokenizer: true });
  try {
    await f(e);
  } finally {
    e.dispose();
  }
}

test('batched scoring of sequences of different lengths equals scoring each alone', async () => {
  await withGqaModel(20, async (e) => {
    const seqs = [IDS(300, 5, 1), IDS(300, 40, 2), IDS(300, 1, 3), IDS(300, 17, 4)];
    const together = await e.score(seqs, { lastLogits: true, maxBatchTokens: 64 });
    for (let i = 0; i < seqs.length; i++) {
      const [alone] = await e.score([seqs[i]], { lastLogits: true });
      assert.deepEqual(Array.from(together[i].argmax), Array.from(alone.argmax));
      for (let k = 0; k < alone.logprob.length; k++) assert.ok(Math.abs(together[i].logprob[k] - alone.logprob[k]) < 1e-5);
      for (let v = 0; v < 300; v++) assert.ok(Math.abs(together[i].lastLogits![v] - alone.lastLogits![v]) < 1e-5);
    }
  });
});

test("scoring computes a prefix in common with the previous sequence once: each sequence's results as if scored alone", async () => {
  await withGqaModel(21, async (e) => {
    const ctx = IDS(300, 40, 5);
    const other = IDS(300, 30, 6);
    const seqs = [
      [...ctx, 7, 8, 9, 10, 11],  // an item's context and its choices
      [...ctx, 12, 13, 14],       // 40 positions in common: the first 39 are shared (the 40th predicts its own token)
      [...ctx, 15],               // one own token
      [...ctx.slice(0, 5), 16, 17, 18, 19, 20, 21, 22, 23],  // 5 in common: under 8, computed again
      other,
      [...other],                 // the same sequence again: all but its last position
      other.slice(0, 20),         // a prefix of the previous one
      [...ctx, 30],
      [...ctx, 31, 32, 33, 34],
      [...ctx, 31, 32, 33, 35],   // 42 shared: 39 computed by the first of these three, 3 by the second
    ];
    const expected = [0, 39, 39, 0, 0, 29, 19, 0, 39, 42];
    const together = await e.score(seqs, { lastLogits: true });
    assert.deepEqual(together.map((r) => r.sharedPrefix), expected);
    for (let i = 0; i < seqs.length; i++) {
      const [alone] = await e.score([seqs[i]], { lastLogits: true });
      assert.equal(alone.sharedPrefix, 0);
      assert.deepEqual(Array.from(together[i].argmax), Array.from(alone.argmax), `sequence ${i}: argmax`);
      for (let k = 0; k < alone.logprob.length; k++) assert.ok(Math.abs(together[i].logprob[k] - alone.logprob[k]) < 1e-5, `sequence ${i}, position ${k}`);
      for (let v = 0; v < 300; v++) assert.ok(Math.abs(together[i].lastLogits![v] - alone.lastLogits![v]) < 1e-5);
      assert.ok(Math.abs(together[i].nllSum - alone.nllSum) < 1e-4);
    }
    // a sequence that begins a batch shares nothing (its predecessor's keys and values are gone); nor does any when asked not to
    const small = await e.score(seqs, { maxBatchTokens: 45 });
    assert.deepEqual(small.map((r) => r.sharedPrefix), [0, 0, 39, 0, 0, 29, 19, 0, 0, 0]);  // batches of 45 computed tokens: 0 | 1 2 | 3 4 5 6 | 7 | 8 | 9
    // a batch holds at most 4 × maxBatchTokens positions, shared ones included: here 4 choices of 41 (200)
    const many = Array.from({ length: 6 }, (_, c) => [...ctx, 50 + c]);
    assert.deepEqual((await e.score(many, { maxBatchTokens: 50 })).map((r) => r.sharedPrefix), [0, 39, 39, 39, 0, 39]);
    const none = await e.score(seqs, { sharePrefixes: false });
    assert.deepEqual(none.map((r) => r.sharedPrefix), new Array(seqs.length).fill(0));
    for (let i = 0; i < seqs.length; i++) assert.deepEqual(Array.from(small[i].argmax), Array.from(none[i].argmax));
  });
});

