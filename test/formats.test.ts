// Tests for the format layer: dtype codecs, RoPE layout permutation, GGUF / safetensors / llama2c writers
// (checked with bounds-checked header readers and against the published stories260K files), the float64
// reference forward against the golden fixtures, and the hostile-file generators.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shared, tempDir } from './helpers/paths.js';
import {
  f16BitsToF32Bits, f32BitsToF16Bits, f16ToF32, f32ToF16, bf16BitsToF32Bits, f32BitsToBf16Bits, bitsToF32, f32ToBits,
  quantizeQ8_0, dequantizeQ8_0, f16ArrayToF32, bf16ArrayToF32, f32ToBf16,
} from '../electron/core/formats/dtype.js';
import { randomModel, permuteRows, toLayout, paramCount, ModelTensors, LayerTensors, llama3RopeFactors } from '../electron/core/formats/model-tensors.js';
import { writeGguf, ggufBytes, readGgufHeader, GgufHeader, GGML_TYPE, ggmlTypeBlock } from '../electron/core/formats/gguf-write.js';
import { writeHfFolder, writeSafetensors, readSafetensorsHeader } from '../electron/core/formats/safetensors-write.js';
import { writeLlama2c, llama2cBytes, llama2cFileSize, decodeLlama2cHeader } from '../electron/core/formats/llama2c-write.js';
import { refForward, refLogSoftmaxNll, refArgmax, loadHfModel, refInvFreq } from './reference/llama-ref.js';
import { hostileCases, validCases, syntheticTokenizer, hostileBaseModel } from './helpers/hostile.js';

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

const small = (over: Partial<Parameters<typeof randomModel>[0]> = {}): ModelTensors =>
  randomModel({ dim: 64, nLayers: 2, nHead: 4, nKvHead: 2, ffn: 96, vocabSize: 100, seed: 5, ...over });

const IDS = [1, 17, 42, 99, 3, 64, 8, 8, 50, 23];

// ----------------------------------------------------------------------------------- dtype

test('f16: every bit pattern round-trips through f32 (NaN payloads included)', () => {
  for (let h = 0; h < 0x10000; h++) assert.equal(f32BitsToF16Bits(f16BitsToF32Bits(h)), h, `h=${h.toString(16)}`);
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x0400), 2 ** -14);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Object.is(f16ToF32(0x8000), -0));
});

test('f16: round to nearest even at every midpoint, overflow to inf, underflow to zero', () => {
  for (let h = 0; h < 0x7c00; h++) {
    const lo = f16ToF32(h);
    const hi = f16ToF32(h + 1); // 0x7bff + 1 = inf: midpoint taken as 65520
    const mid = h === 0x7bff ? 65520 : (lo + hi) / 2;
    const even = (h & 1) === 0 ? h : h + 1;
    assert.equal(f32ToF16(mid), even, `mid of ${h.toString(16)}`);
    const b = f32ToBits(mid);
    assert.equal(f32BitsToF16Bits(b - 1), h, `below mid of ${h.toString(16)}`);
    assert.equal(f32BitsToF16Bits(b + 1), h + 1, `above mid of ${h.toString(16)}`);
    assert.equal(f32ToF16(-lo), h | 0x8000);
  }
  assert.equal(f32ToF16(1e6), 0x7c00);
  assert.equal(f32ToF16(2 ** -26), 0);
  assert.equal(f32ToF16(Infinity), 0x7c00);
  assert.ok(Number.isNaN(f16ToF32(f32ToF16(NaN))));
});

test('bf16: every bit pattern round-trips, rounding is nearest-even', () => {
  for (let h = 0; h < 0x10000; h++) assert.equal(f32BitsToBf16Bits(bf16BitsToF32Bits(h)), h);
  for (let h = 0; h < 0x7f7f; h += 7) {
    const b = bf16BitsToF32Bits(h);
    const mid = b + 0x8000;
    assert.equal(f32BitsToBf16Bits(mid), (h & 1) === 0 ? h : h + 1);
    assert.equal(f32BitsToBf16Bits(mid - 1), h);
    assert.equal(f32BitsToBf16Bits(mid + 1), h + 1);
  }
  assert.equal(f32ToBf16(3.4e38), 0x7f80); // rounds past the largest finite bf16
  assert.ok(Number.isNaN(bitsToF32(bf16BitsToF32Bits(f32BitsToBf16Bits(0x7f800001)))));
});

test('Q8_0: 34-byte blocks, scale = amax/127, error within half a step', () => {
  const x = new Float32Array(96);
  for (let i = 0; i < 96; i++) x[i] = Math.sin(i * 1.7) * (i < 32 ? 1 : i < 64 ? 1000 : 0);
  const q = quantizeQ8_0(x);
  assert.equal(q.length, 3 * 34);
  const y = dequantizeQ8_0(q, 96);
  for (let b = 0; b < 3; b++) {
    const d = f16ToF32(new DataView(q.buffer).getUint16(b * 34, true));
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[b * 32 + j]));
    assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 1e-3 + 1e-12);
    // half a step, plus the f16 rounding of d (<= 2^-11 relative) times |q| <= 127
    for (let j = 0; j < 32; j++) assert.ok(Math.abs(y[b * 32 + j] - x[b * 32 + j]) <= d * (0.5 + 127 / 2048) + 1e-9);
  }
  assert.ok(y.subarray(64).every((v) => v === 0));
  const exact = Float32Array.from({ length: 32 }, (_, i) => i - 16); // amax 16: d = 16/127
  assert.equal(new Int8Array(quantizeQ8_0(exact).buffer)[2], -127);
  assert.throws(() => quantizeQ8_0(new Float32Array(33)));
});

// ----------------------------------------------------------------------------------- model / layout

test('permuteRows: maps interleaved 2j+p <-> rotate_half p*hd/2+j, and round-trips', () => {
  const w = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]); // 2 heads, hd 4, 1 column, rotate_half rows
  assert.deepEqual([...permuteRows(w, 2, 4, 1, 'interleaved')], [0, 2, 1, 3, 10, 12, 11, 13]);
  const m = small();
  const big = m.layers[0].wq;
  const there = permuteRows(big, 4, 16, 64, 'rotate_half');
  assert.notDeepEqual(there, big);
  assert.deepEqual(permuteRows(there, 4, 16, 64, 'interleaved'), big);
  const back = toLayout(toLayout(m, 'rotate_half'), 'interleaved');
  m.layers.forEach((l, i) => {
    assert.deepEqual(back.layers[i].wq, l.wq);
    assert.deepEqual(back.layers[i].wk, l.wk);
  });
});

test('randomModel: seeded, validated, paramCount', () => {
  assert.deepEqual(small().layers[1].wDown, small().layers[1].wDown);
  assert.notDeepEqual(small({ seed: 6 }).tokEmb, small().tokEmb);
  const m = small({ tied: false });
  const perLayer = 64 * 2 + 64 * 64 * 2 + 32 * 64 * 2 + 96 * 64 * 3;
  assert.equal(paramCount(m), 100 * 64 * 2 + 64 + 2 * perLayer);
  const wq = m.layers[0].wq; // N(0, 1/sqrt(64))
  const mean = wq.reduce((a, b) => a + b, 0) / wq.length;
  const sd = Math.sqrt(wq.reduce((a, b) => a + (b - mean) ** 2, 0) / wq.length);
  assert.ok(Math.abs(mean) < 0.005 && Math.abs(sd - 0.125) < 0.005, `mean ${mean} sd ${sd}`);
  assert.ok(m.layers[0].attnNorm.every((v) => Math.abs(v - 1) < 0.3));
  assert.throws(() => small({ nKvHead: 3 }));
  const mixed = small({ layers: [{ nHead: 4, nKvHead: 2, ffn: 0 }, { nHead: 0, nKvHead: 0, ffn: 40 }] });
  assert.equal(mixed.layers[1].wq.length, 0);
});

// ----------------------------------------------------------------------------------- GGUF

function ggufTensorF32(bytes: Uint8Array, h: GgufHeader, name: string): Float32Array {
  const t = h.tensors.find((x) => x.name === name);
  assert.ok(t, `missing ${name}`);
  const n = t.ne.reduce((a, b) => a * Number(b), 1);
  const [be, bb] = ggmlTypeBlock(t.type);
  const start = h.dataOffset + Number(t.offset);
  const raw = bytes.slice(start, start + (n / be) * bb);
  if (t.type === GGML_TYPE.F32) return new Float32Array(raw.buffer);
  if (t.type === GGML_TYPE.F16) return f16ArrayToF32(new Uint16Array(raw.buffer));
  if (t.type === GGML_TYPE.BF16) return bf16ArrayToF32(new Uint16Array(raw.buffer));
  return dequantizeQ8_0(raw, n);
}

/** Test-side GGUF -> ModelTensors (interleaved), enough for the writer round trip. */
function ggufToModel(bytes: Uint8Array): ModelTensors {
  const h = readGgufHeader(bytes);
  const arch = h.kv.get('general.architecture') as string;
  const k = (s: string): any => h.kv.get(`${arch}.${s}`);
  const L: number = k('block_count');
  const per = (v: unknown): number[] => (Array.isArray(v) ? v : Array(L).fill(v));
  const [heads, kvs, ffns] = [per(k('attention.head_count')), per(k('attention.head_count_kv')), per(k('feed_forward_length'))];
  const get = (name: string): Float32Array => ggufTensorF32(bytes, h, name);
  const opt = (name: string, n: number): Float32Array => (n === 0 ? new Float32Array(0) : get(name));
  const layers: LayerTensors[] = [];
  for (let i = 0; i < L; i++) {
    const p = `blk.${i}.`;
    layers.push({
      nHead: heads[i], nKvHead: kvs[i], ffn: ffns[i],
      attnNorm: heads[i] ? get(p + 'attn_norm.weight') : new Float32Array(k('embedding_length')).fill(1),
      wq: opt(p + 'attn_q.weight', heads[i]), wk: opt(p + 'attn_k.weight', heads[i]),
      wv: opt(p + 'attn_v.weight', heads[i]), wo: opt(p + 'attn_output.weight', heads[i]),
      ffnNorm: ffns[i] ? get(p + 'ffn_norm.weight') : new Float32Array(k('embedding_length')).fill(1),
      wGate: opt(p + 'ffn_gate.weight', ffns[i]), wUp: opt(p + 'ffn_up.weight', ffns[i]), wDown: opt(p + 'ffn_down.weight', ffns[i]),
    });
  }
  return {
    dim: k('embedding_length'), headDim: k('attention.key_length'), vocabSize: k('vocab_size'), contextLength: k('context_length'),
    normEps: k('attention.layer_norm_rms_epsilon'), ropeTheta: k('rope.freq_base'), ropeLayout: 'interleaved',
    bosId: h.kv.get('tokenizer.ggml.bos_token_id') as number, eosId: h.kv.get('tokenizer.ggml.eos_token_id') as number,
    tokEmb: get('token_embd.weight'), layers, outNorm: get('output_norm.weight'),
    lmHead: h.tensors.some((t) => t.name === 'output.weight') ? get('output.weight') : null,
  };
}

function assertGgufLayout(bytes: Uint8Array, h: GgufHeader): void {
  let prevEnd = 0n;
  for (const t of [...h.tensors].sort((a, b) => Number(a.offset - b.offset))) {
    assert.equal(t.offset % BigInt(h.alignment), 0n, `${t.name} offset aligned`);
    assert.ok(t.offset >= prevEnd, `${t.name} does not overlap`);
    const [be, bb] = ggmlTypeBlock(t.type);
    prevEnd = t.offset + (t.ne.reduce((a, b) => a * b, 1n) / BigInt(be)) * BigInt(bb);
  }
  assert.ok(BigInt(h.dataOffset) + prevEnd <= BigInt(bytes.length));
  assert.equal(h.dataOffset % h.alignment, 0);
}

test('GGUF: llama f32 file parses, is aligned, and reproduces the model exactly', () => {
  const m = toLayout(small({ tied: false, ropeTheta: 500000 }), 'rotate_half');
  const file = path.join(tempDir(), 'm.gguf');
  writeGguf(file, m, { name: 'unit', tokenizer: syntheticTokenizer(100) });
  const bytes = new Uint8Array(fs.readFileSync(file));
  assert.deepEqual(bytes, ggufBytes(m, { name: 'unit', tokenizer: syntheticTokenizer(100) }));
  const h = readGgufHeader(bytes);
  assert.equal(h.version, 3);
  assert.equal(h.kv.get('general.architecture'), 'llama');
  assert.equal(h.kv.get('llama.attention.head_count'), 4);
  assert.equal(h.kv.get('llama.rope.dimension_count'), 16);
  assert.equal((h.kv.get('tokenizer.ggml.tokens') as string[]).length, 100);
  assert.deepEqual(h.tensors.find((t) => t.name === 'blk.1.attn_k.weight')?.ne, [64n, 32n]);
  assert.equal(h.tensors.length, 1 + 2 * 9 + 2);
  assertGgufLayout(bytes, h);
  const back = ggufToModel(bytes);
  assert.deepEqual(back.layers[0].wq, toLayout(m, 'interleaved').layers[0].wq);
  assert.ok(maxAbsDiff(refForward(back, IDS), refForward(m, IDS)) < 1e-9);
});

test('GGUF: alignment option, f16 / bf16 / q8_0 encodings and the Q8_0 fallback to F32', () => {
  const m = small({ ffn: 40 }); // ffn_down rows have 40 values: not a multiple of 32
  for (const dtype of ['f16', 'bf16', 'q8_0'] as const) {
    const bytes = ggufBytes(m, { dtype, alignment: 64 });
    const h = readGgufHeader(bytes);
    assert.equal(h.kv.get('general.alignment'), 64);
    assertGgufLayout(bytes, h);
    const type = (n: string): number | undefined => h.tensors.find((t) => t.name === n)?.type;
    const want = { f16: GGML_TYPE.F16, bf16: GGML_TYPE.BF16, q8_0: GGML_TYPE.Q8_0 }[dtype];
    assert.equal(type('blk.0.ffn_up.weight'), want);
    assert.equal(type('blk.0.attn_norm.weight'), GGML_TYPE.F32);
    assert.equal(type('blk.0.ffn_down.weight'), dtype === 'q8_0' ? GGML_TYPE.F32 : want);
    const back = ggufToModel(bytes);
    const tol = dtype === 'bf16' ? 0.05 : 0.02;
    assert.ok(maxAbsDiff(back.layers[1].wUp, m.layers[1].wUp) < tol);
    if (dtype === 'q8_0') assert.deepEqual(back.layers[1].wUp, dequantizeQ8_0(quantizeQ8_0(m.layers[1].wUp), 40 * 64));
  }
  assert.equal(readGgufHeader(ggufBytes(m)).kv.has('general.alignment'), false);
  const extra = readGgufHeader(ggufBytes(m, { extraKv: [
    { key: 'general.name', type: 'string', value: 'renamed' },
    { key: 'tailor.sizes', type: 'array', itemType: 'u64', value: [1n, 2n] },
  ] }));
  assert.equal(extra.kv.get('general.name'), 'renamed');
  assert.equal(extra.kvs.filter((k) => k.key === 'general.name').length, 1);
  assert.deepEqual(extra.kv.get('tailor.sizes'), [1n, 2n]);
});

test('GGUF: deci for per-layer shapes (arrays, zero-count layers omitted) and rope scaling', () => {
  const m = small({
    nLayers: 3,
    layers: [{ nHead: 4, nKvHead: 2, ffn: 96 }, { nHead: 0, nKvHead: 0, ffn: 32 }, { nHead: 2, nKvHead: 1, ffn: 0 }],
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 },
  });
  const bytes = ggufBytes(m);
  const h = readGgufHeader(bytes);
  assert.equal(h.kv.get('general.architecture'), 'deci');
  assert.deepEqual(h.kv.get('deci.attention.head_count'), [4, 0, 2]);
  assert.deepEqual(h.kv.get('deci.attention.head_count_kv'), [2, 0, 1]);
  assert.deepEqual(h.kv.get('deci.feed_forward_length'), [96, 32, 0]);
  const names = h.tensors.map((t) => t.name);
  assert.ok(!names.some((n) => n.startsWith('blk.1.attn')));
  assert.ok(!names.some((n) => n.startsWith('blk.2.ffn')));
  const rf = ggufTensorF32(bytes, h, 'rope_freqs.weight');
  assert.equal(rf.length, 8);
  assert.deepEqual(rf, llama3RopeFactors(16, 10000, m.ropeScaling as any));
  assert.equal(rf[0], 1);
  assert.equal(rf[7], 8);
  const hfInv = refInvFreq(16, 10000, m.ropeScaling); // llama.cpp divides theta_j by rope_freqs[j]
  for (let j = 0; j < 8; j++) assert.ok(Math.abs(10000 ** (-j / 8) / rf[j] / hfInv[j] - 1) < 1e-6, `rope_freqs[${j}]`);
  const mid = llama3RopeFactors(128, 500000, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  const hfMid = refInvFreq(128, 500000, { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.ok(mid.some((f) => f > 1 && f < 8)); // the smooth band is exercised (Llama 3.1 8B parameters)
  for (let j = 0; j < 64; j++) assert.ok(Math.abs(500000 ** (-j / 64) / mid[j] / hfMid[j] - 1) < 1e-6);
  const back = { ...ggufToModel(bytes), ropeScaling: m.ropeScaling };
  assert.ok(maxAbsDiff(refForward(back, IDS), refForward(m, IDS)) < 1e-5); // rope_freqs are f32 factors
  assert.throws(() => ggufBytes(m, { arch: 'llama' }));
  const lin = readGgufHeader(ggufBytes(small({ ropeScaling: { type: 'linear', factor: 4 } })));
  assert.equal(lin.kv.get('llama.rope.scaling.type'), 'linear');
  assert.equal(lin.kv.get('llama.rope.scaling.factor'), 4);
});

test('GGUF: header reader accepts the published stories260K.gguf; our tensors match its bytes', () => {
  const pub = new Uint8Array(fs.readFileSync(shared('models', 'stories260K', 'stories260K.gguf')));
  const ph = readGgufHeader(pub);
  const hf = loadHfModel(shared('models', 'stories260K-hf'));
  const ours = ggufBytes(hf);
  const oh = readGgufHeader(ours);
  for (const t of oh.tensors) assert.deepEqual(ggufTensorF32(ours, oh, t.name), ggufTensorF32(pub, ph, t.name), t.name);
  assert.equal(oh.kv.get('llama.feed_forward_length'), ph.kv.get('llama.feed_forward_length'));
});

// ----------------------------------------------------------------------------------- safetensors / HF

test('safetensors: header padded to 8, offsets contiguous, metadata kept', () => {
  const file = path.join(tempDir(), 'x.safetensors');
  const a = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  writeSafetensors(file, [{ name: 'a', dtype: 'F32', shape: [2], data: a }, { name: 'b', dtype: 'F16', shape: [1], data: a.slice(0, 2) }], { k: 'v' });
  const b = new Uint8Array(fs.readFileSync(file));
  const h = readSafetensorsHeader(b);
  assert.equal(h.dataOffset % 8, 0);
  assert.deepEqual(h.metadata, { k: 'v' });
  assert.deepEqual(h.tensors.map((t) => [t.name, t.begin, t.end]), [['a', 0, 8], ['b', 8, 10]]);
  assert.equal(b.length, h.dataOffset + 10);
});

test('HF folder: config with per-layer lists, rotate_half q/k, exact round trip (f32) and f16', () => {
  const m = small({ tied: false, layers: [{ nHead: 4, nKvHead: 2, ffn: 96 }, { nHead: 2, nKvHead: 2, ffn: 0 }] });
  const dir = path.join(tempDir(), 'hf');
  writeHfFolder(dir, m, { tokenizerFiles: [shared('models', 'stories260K-hf', 'tokenizer.model')] });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.equal(cfg.num_attention_heads, 4);
  assert.equal(cfg.intermediate_size, 96);
  assert.deepEqual(cfg.layer_num_attention_heads, [4, 2]);
  assert.deepEqual(cfg.layer_intermediate_sizes, [96, 0]);
  assert.equal(cfg.tie_word_embeddings, false);
  assert.ok(fs.existsSync(path.join(dir, 'tokenizer.model')));
  const back = loadHfModel(dir);
  assert.deepEqual(back.layers[0].wq, toLayout(m, 'rotate_half').layers[0].wq);
  assert.ok(maxAbsDiff(refForward(back, IDS), refForward(m, IDS)) < 1e-9);
  const d16 = path.join(tempDir(), 'hf16');
  writeHfFolder(d16, m, { dtype: 'f16' });
  assert.equal(JSON.parse(fs.readFileSync(path.join(d16, 'config.json'), 'utf8')).torch_dtype, 'float16');
  assert.ok(maxAbsDiff(loadHfModel(d16).tokEmb, m.tokEmb) < 1e-3);
});

test('HF folder: sharding writes numbered shards and an index covering every tensor', () => {
  const m = small({ tied: false, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } });
  const dir = path.join(tempDir(), 'sharded');
  writeHfFolder(dir, m, { shardBytes: 60_000 });
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
  const shards = [...new Set(Object.values(index.weight_map) as string[])].sort();
  assert.ok(shards.length >= 3);
  shards.forEach((s, i) => assert.equal(s, `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
  let total = 0;
  for (const s of shards) {
    const h = readSafetensorsHeader(new Uint8Array(fs.readFileSync(path.join(dir, s))));
    for (const t of h.tensors) {
      assert.equal(index.weight_map[t.name], s);
      total += t.end - t.begin;
    }
  }
  assert.equal(index.metadata.total_size, total);
  assert.equal(Object.keys(index.weight_map).length, 1 + 2 * 9 + 2);
  assert.ok(!fs.existsSync(path.join(dir, 'model.safetensors')));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  assert.deepEqual(cfg.rope_scaling, { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 });
  assert.ok(maxAbsDiff(refForward(loadHfModel(dir), IDS), refForward(m, IDS)) < 1e-9);
});

// ----------------------------------------------------------------------------------- llama2c

test('llama2c: reproduces the published stories260K.bin (freq_cis within 1 ulp)', () => {
  const pub = new Uint8Array(fs.readFileSync(shared('models', 'stories260K', 'stories260K.bin')));
  const m = toLayout(loadHfModel(shared('models', 'stories260K-hf')), 'interleaved');
  const ours = llama2cBytes(m);
  assert.equal(ours.length, pub.length);
  assert.equal(BigInt(pub.length), llama2cFileSize(decodeLlama2cHeader(pub)));
  const hd = 8;
  const freqStart = pub.length - 2 * 512 * (hd / 2) * 4;
  assert.deepEqual(ours.subarray(0, freqStart), pub.subarray(0, freqStart));
  const a = new Float32Array(ours.buffer, freqStart);
  const b = new Float32Array(pub.slice(freqStart).buffer);
  assert.ok(maxAbsDiff(a, b) < 1e-6);
});

test('llama2c: untied head gives negative vocab; non-representable models throw', () => {
  const m = toLayout(small({ tied: false }), 'rotate_half');
  const file = path.join(tempDir(), 'm.bin');
  writeLlama2c(file, m);
  const b = new Uint8Array(fs.readFileSync(file));
  const h = decodeLlama2cHeader(b);
  assert.deepEqual(h, { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: -100, seqLen: 256 });
  assert.equal(BigInt(b.length), llama2cFileSize(h));
  const wq0 = new Float32Array(b.buffer.slice(28 + (100 * 64 + 2 * 64) * 4, 28 + (100 * 64 + 2 * 64 + 64 * 64) * 4));
  assert.deepEqual(wq0, toLayout(m, 'interleaved').layers[0].wq);
  assert.throws(() => llama2cBytes(small({ layers: [{ nHead: 4, nKvHead: 2, ffn: 96 }, { nHead: 4, nKvHead: 2, ffn: 64 }] })));
  assert.throws(() => llama2cBytes(small({ ropeTheta: 500000 })));
  assert.throws(() => llama2cBytes(small({ headDim: 8 })));
});

// ----------------------------------------------------------------------------------- reference

interface GoldenSeq { ids: number[]; argmax: number[]; last_logits: number[]; mean_nll: number }

function checkGolden(model: ModelTensors, goldenFile: string): void {
  const g = JSON.parse(fs.readFileSync(goldenFile, 'utf8')) as { sequences: Record<string, GoldenSeq> };
  const inter = toLayout(model, 'interleaved');
  for (const [name, s] of Object.entries(g.sequences)) {
    const T = s.ids.length;
    const V = model.vocabSize;
    const logits = refForward(model, s.ids);
    assert.deepEqual(refArgmax(logits, T), s.argmax, `${name} argmax`);
    assert.ok(maxAbsDiff(logits.subarray((T - 1) * V), s.last_logits) < 1e-4, `${name} last_logits`);
    assert.ok(Math.abs(refLogSoftmaxNll(logits, s.ids) - s.mean_nll) < 1e-4, `${name} mean_nll`);
    assert.ok(maxAbsDiff(refForward(inter, s.ids), logits) < 1e-9, `${name} layout invariance`);
  }
}

test('reference: reproduces stories260K golden logits, argmax and NLL', () => {
  checkGolden(loadHfModel(shared('models', 'stories260K-hf')), shared('fixtures', 'golden', 'stories260K.json'));
});

test('reference: reproduces tiny-random-llama3 (untied, GQA 6/2, theta 5e5, llama3 scaling)', () => {
  const m = loadHfModel(shared('fixtures', 'golden', 'tiny-random-llama3'));
  assert.equal(m.ropeScaling?.type, 'llama3');
  assert.ok(m.lmHead);
  checkGolden(m, shared('fixtures', 'golden', 'tiny-random-llama3.json'));
});

test('reference: a zero-count layer equals the same layer with its output projection zeroed', () => {
  const full = small({ tied: false });
  const pruned: ModelTensors = {
    ...full,
    layers: [
      { ...full.layers[0], nHead: 0, nKvHead: 0, wq: new Float32Array(0), wk: new Float32Array(0), wv: new Float32Array(0), wo: new Float32Array(0) },
      { ...full.layers[1], ffn: 0, wGate: new Float32Array(0), wUp: new Float32Array(0), wDown: new Float32Array(0) },
    ],
  };
  const zeroed: ModelTensors = {
    ...full,
    layers: [{ ...full.layers[0], wo: new Float32Array(full.layers[0].wo.length) }, { ...full.layers[1], wDown: new Float32Array(full.layers[1].wDown.length) }],
  };
  assert.ok(maxAbsDiff(refForward(pruned, IDS), refForward(zeroed, IDS)) < 1e-12);
  const lin = refForward(small({ ropeScaling: { type: 'linear', factor: 4 } }), IDS);
  assert.ok(maxAbsDiff(lin, refForward(small(), IDS)) > 1e-6);
});

// ----------------------------------------------------------------------------------- hostile

test('hostile: every case writes its file(s); header-level defects are caught by the readers', () => {
  const dir = tempDir('tailor-hostile-');
  const cases = hostileCases();
  assert.equal(new Set(cases.map((c) => c.name)).size, cases.length);
  for (const c of cases) {
    const p = c.make(dir);
    if (c.name === 'missing-directory') {
      assert.ok(!fs.existsSync(p));
      continue;
    }
    assert.ok(fs.existsSync(p), `${c.name}: ${p}`);
    if (c.format === 'hf') assert.ok(fs.statSync(p).isDirectory(), c.name);
    else assert.ok(fs.statSync(p).isFile(), c.name);
  }
  const gguf = (n: string): Uint8Array => new Uint8Array(fs.readFileSync(path.join(dir, `${n}.gguf`)));
  for (const n of ['bad-magic', 'version-1', 'version-99', 'truncated-header', 'truncated-mid-kv', 'truncated-mid-tensor-info',
    'tensor-count-2^62', 'kv-count-2^62', 'string-length-past-end', 'non-utf8-key', 'non-utf8-string-value', 'ndims-9',
    'array-2^40-elements', 'nested-arrays-too-deep'])
    assert.throws(() => readGgufHeader(gguf(`gguf-${n}`)), `gguf-${n}`);
  for (const n of ['tensor-offset-past-end', 'tensors-overlap', 'unknown-ggml-type-77', 'dims-product-overflows', 'attn-q-rows-mismatch', 'missing-tensor'])
    readGgufHeader(gguf(`gguf-${n}`)); // structurally parseable: the defect is in the tensor table
  const st = (n: string): Uint8Array => new Uint8Array(fs.readFileSync(path.join(dir, n, 'model.safetensors')));
  for (const n of ['header-length-past-end', 'header-length-2^63', 'header-not-json', 'header-truncated-json', 'offsets-past-end',
    'header-json-nested-10000', 'offsets-begin-after-end', 'offsets-overlap', 'size-not-shape-times-dtype'])
    assert.throws(() => readSafetensorsHeader(st(`hf-${n}`)), `hf-${n}`);
  for (const n of ['dtype-f8-e4m3', 'dtype-i64', 'q-proj-shape-vs-config']) readSafetensorsHeader(st(`hf-${n}`));
  const v = tempDir('tailor-valid-');
  for (const c of validCases()) {
    const p = c.make(v);
    if (c.format === 'gguf') assertGgufLayout(new Uint8Array(fs.readFileSync(p)), readGgufHeader(new Uint8Array(fs.readFileSync(p))));
    if (c.format === 'hf') assert.ok(maxAbsDiff(refForward(loadHfModel(p), IDS), refForward(hostileBaseModel(), IDS)) < 1e-9);
    if (c.format === 'llama2c') {
      const b = new Uint8Array(fs.readFileSync(p));
      assert.equal(BigInt(b.length), llama2cFileSize(decodeLlama2cHeader(b)));
    }
  }
});
