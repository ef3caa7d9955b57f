// GGUF v3 writer (architectures `llama` and `deci`) from a ModelTensors, plus a low-level spec serializer
// (used by hostile-file generators) and a bounds-checked header reader for round-trip tests. Files are
// written synchronously (tests, tools) or streamed through a ByteSink in chunks (exports: cancellable,
// with progress).
import * as fs from 'node:fs';
import { ModelTensors, checkModel, isUniform, permuteRows, llama3RopeFactors } from './model-tensors.js';
import { assertLittleEndian, bytesOf, f32ArrayToBf16, f32ArrayToF16, quantizeQ8_0, QK8_0, writeAllSync } from './dtype.js';
import { encodeRows, writeChunks, type ByteSink } from './sink.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as u32 LE
export const GGUF_TYPE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
export type GgufScalarType = Exclude<keyof typeof GGUF_TYPE, 'array'>;
export type GgufScalar = number | bigint | boolean | string;
export type GgufKv =
  | { key: string; type: GgufScalarType; value: GgufScalar }
  | { key: string; type: 'array'; itemType: GgufScalarType; value: ArrayLike<GgufScalar> }
  /** Pre-encoded value bytes with an explicit type id (for deliberately malformed files). */
  | { key: string; type: 'raw'; typeId: number; bytes: Uint8Array };

export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8, BF16: 30 } as const;

export interface GgufTensorSpec {
  name: string;
  /** ggml type id (may be anything for hostile files). */
  type: number;
  /** ggml order: ne[0] is the row length (innermost). */
  ne: Array<number | bigint>;
  nbytes: number;
  /** Encoded on demand, so large models are never held twice in memory. */
  data: Uint8Array | (() => Uint8Array);
  /** The same bytes as blocks of rows (streamed writes never build the whole encoded tensor). */
  chunks?: () => Iterable<Uint8Array>;
  /** Offset override (relative to the data section); default: next aligned position. */
  offset?: bigint;
}

export interface GgufSpec {
  version?: number;
  alignment?: number;
  kvs: GgufKv[];
  tensors: GgufTensorSpec[];
}

export interface GgufTokenizerMeta {
  model: 'llama' | 'gpt2';
  tokens: string[];
  scores: number[];
  tokenTypes: number[];
  merges?: string[];
  /** llama.cpp's pre-tokenizer name for 'gpt2' vocabularies (`gpt-2`, `llama-bpe`, `qwen2`, …) */
  pre?: string;
  bosId: number;
  eosId: number;
  unkId?: number;
  addBos?: boolean;
  addSpacePrefix?: boolean;
}

export type GgufDtype = 'f32' | 'f16' | 'bf16' | 'q8_0';

export interface GgufWriteOptions {
  arch?: 'llama' | 'deci';
  dtype?: GgufDtype;
  name?: string;
  tokenizer?: GgufTokenizerMeta;
  /** Appended after the standard keys; a key that already exists is replaced in place. */
  extraKv?: GgufKv[];
  alignment?: number;
}

const alignUp = (x: number, a: number): number => Math.ceil(x / a) * a;

// ---------------------------------------------------------------------------------------------
// Little-endian byte writer / bounds-checked reader

export class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  pos = 0;
  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
    this.dv = new DataView(nb.buffer);
  }
  u8(v: number): void { this.room(1); this.dv.setUint8(this.pos, v); this.pos += 1; }
  i8(v: number): void { this.room(1); this.dv.setInt8(this.pos, v); this.pos += 1; }
  u16(v: number): void { this.room(2); this.dv.setUint16(this.pos, v, true); this.pos += 2; }
  i16(v: number): void { this.room(2); this.dv.setInt16(this.pos, v, true); this.pos += 2; }
  u32(v: number): void { this.room(4); this.dv.setUint32(this.pos, v, true); this.pos += 4; }
  i32(v: number): void { this.room(4); this.dv.setInt32(this.pos, v, true); this.pos += 4; }
  f32(v: number): void { this.room(4); this.dv.setFloat32(this.pos, v, true); this.pos += 4; }
  f64(v: number): void { this.room(8); this.dv.setFloat64(this.pos, v, true); this.pos += 8; }
  u64(v: bigint): void { this.room(8); this.dv.setBigUint64(this.pos, v, true); this.pos += 8; }
  i64(v: bigint): void { this.room(8); this.dv.setBigInt64(this.pos, v, true); this.pos += 8; }
  bytes(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  /** GGUF string: u64 byte length + UTF-8 bytes (no terminator). */
  str(s: string): void {
    const b = utf8.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  pad(alignment: number): void {
    const n = alignUp(this.pos, alignment) - this.pos;
    this.room(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }
  finish(): Uint8Array { return this.buf.slice(0, this.pos); }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export class ByteReader {
  private dv: DataView;
  pos = 0;
  constructor(private readonly b: Uint8Array) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  get remaining(): number { return this.b.length - this.pos; }
  private need(n: number): number {
    if (n > this.remaining) throw new Error(`GGUF: read of ${n} bytes at ${this.pos} runs past the end (${this.b.length})`);
    const p = this.pos;
    this.pos += n;
    return p;
  }
  u8(): number { return this.dv.getUint8(this.need(1)); }
  i8(): number { return this.dv.getInt8(this.need(1)); }
  u16(): number { return this.dv.getUint16(this.need(2), true); }
  i16(): number { return this.dv.getInt16(this.need(2), true); }
  u32(): number { return this.dv.getUint32(this.need(4), true); }
  i32(): number { return this.dv.getInt32(this.need(4), true); }
  f32(): number { return this.dv.getFloat32(this.need(4), true); }
  f64(): number { return this.dv.getFloat64(this.need(8), true); }
  u64(): bigint { return this.dv.getBigUint64(this.need(8), true); }
  i64(): bigint { return this.dv.getBigInt64(this.need(8), true); }
  /** A u64 element count whose items (at least `minItemBytes` each) must fit in the rest of the buffer. */
  count(minItemBytes: number): number {
    const at = this.pos;
    const n = this.u64();
    if (n * BigInt(minItemBytes) > BigInt(this.remaining)) throw new Error(`GGUF: count ${n} at ${at} exceeds the file`);
    return Number(n);
  }
  str(): string {
    const n = this.count(1);
    const p = this.need(n);
    try {
      return utf8Strict.decode(this.b.subarray(p, p + n));
    } catch {
      throw new Error(`GGUF: string at ${p} is not valid UTF-8`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Model -> spec

function f32Tensor(name: string, a: Float32Array, ne: number[]): GgufTensorSpec {
  return { name, type: GGML_TYPE.F32, ne, nbytes: a.byteLength, data: () => bytesOf(a), chunks: () => [bytesOf(a)] };
}

/** A [rows, cols] weight; `get` runs at write time (so q/k permutations are never all held at once). */
function weightTensor(name: string, get: () => Float32Array, rows: number, cols: number, dtype: GgufDtype): GgufTensorSpec {
  const ne = [cols, rows];
  const n = rows * cols;
  const chunks = (d: 'f32' | 'f16' | 'bf16' | 'q8_0') => () => encodeRows(get(), rows, cols, d);
  if (dtype === 'f16') return { name, type: GGML_TYPE.F16, ne, nbytes: n * 2, data: () => bytesOf(f32ArrayToF16(get())), chunks: chunks('f16') };
  if (dtype === 'bf16') return { name, type: GGML_TYPE.BF16, ne, nbytes: n * 2, data: () => bytesOf(f32ArrayToBf16(get())), chunks: chunks('bf16') };
  if (dtype === 'q8_0' && cols % QK8_0 === 0) return { name, type: GGML_TYPE.Q8_0, ne, nbytes: (n / QK8_0) * 34, data: () => quantizeQ8_0(get()), chunks: chunks('q8_0') };
  // f32, or q8_0 rows that are not a multiple of 32 (llama.cpp's rule: leave them unquantized)
  return { name, type: GGML_TYPE.F32, ne, nbytes: n * 4, data: () => bytesOf(get()), chunks: chunks('f32') };
}

const FILE_TYPE: Record<GgufDtype, number> = { f32: 0, f16: 1, q8_0: 7, bf16: 32 };

/** The keys and tensors `writeGguf` would write (q/k rows already in the interleaved layout). */
export function ggufSpec(m: ModelTensors, opts: GgufWriteOptions = {}): GgufSpec {
  checkModel(m);
  const uniform = isUniform(m);
  const arch = opts.arch ?? (uniform ? 'llama' : 'deci');
  if (arch === 'llama' && !uniform) throw new Error("GGUF arch 'llama' needs identical non-empty layers; use 'deci'");
  const dtype = opts.dtype ?? 'f32';
  const alignment = opts.alignment ?? 32;
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) throw new Error(`bad alignment ${alignment}`);
  const L = m.layers;
  const kvs: GgufKv[] = [];
  const u32 = (key: string, value: number): void => void kvs.push({ key, type: 'u32', value });
  const f32 = (key: string, value: number): void => void kvs.push({ key, type: 'f32', value });
  const perLayer = (key: string, pick: (l: (typeof L)[number]) => number): void => {
    if (arch === 'llama') u32(key, pick(L[0]));
    else kvs.push({ key, type: 'array', itemType: 'i32', value: L.map(pick) });
  };
  kvs.push({ key: 'general.architecture', type: 'string', value: arch });
  kvs.push({ key: 'general.name', type: 'string', value: opts.name ?? 'tailor-model' });
  if (alignment !== 32) u32('general.alignment', alignment);
  u32('general.file_type', FILE_TYPE[dtype]);
  if (dtype === 'q8_0') u32('general.quantization_version', 2);
  u32(`${arch}.vocab_size`, m.vocabSize);
  u32(`${arch}.context_length`, m.contextLength);
  u32(`${arch}.embedding_length`, m.dim);
  u32(`${arch}.block_count`, L.length);
  perLayer(`${arch}.feed_forward_length`, (l) => l.ffn);
  perLayer(`${arch}.attention.head_count`, (l) => l.nHead);
  perLayer(`${arch}.attention.head_count_kv`, (l) => l.nKvHead);
  u32(`${arch}.attention.key_length`, m.headDim);
  u32(`${arch}.attention.value_length`, m.headDim);
  u32(`${arch}.rope.dimension_count`, m.headDim);
  f32(`${arch}.rope.freq_base`, m.ropeTheta);
  f32(`${arch}.attention.layer_norm_rms_epsilon`, m.normEps);
  if (m.ropeScaling?.type === 'linear') {
    kvs.push({ key: `${arch}.rope.scaling.type`, type: 'string', value: 'linear' });
    f32(`${arch}.rope.scaling.factor`, m.ropeScaling.factor);
  }
  const tok = opts.tokenizer;
  if (tok) {
    if (tok.tokens.length !== m.vocabSize) throw new Error(`tokenizer has ${tok.tokens.length} tokens, model vocab ${m.vocabSize}`);
    kvs.push({ key: 'tokenizer.ggml.model', type: 'string', value: tok.model });
    kvs.push({ key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: tok.tokens });
    kvs.push({ key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: tok.scores });
    kvs.push({ key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: tok.tokenTypes });
    if (tok.merges) kvs.push({ key: 'tokenizer.ggml.merges', type: 'array', itemType: 'string', value: tok.merges });
    if (tok.pre !== undefined) kvs.push({ key: 'tokenizer.ggml.pre', type: 'string', value: tok.pre });
  }
  u32('tokenizer.ggml.bos_token_id', tok?.bosId ?? m.bosId);
  u32('tokenizer.ggml.eos_token_id', tok?.eosId ?? m.eosId);
  if (tok?.unkId !== undefined && tok.unkId >= 0) u32('tokenizer.ggml.unknown_token_id', tok.unkId);
  if (tok?.addBos !== undefined) kvs.push({ key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: tok.addBos });
  if (tok?.addSpacePrefix !== undefined)
    kvs.push({ key: 'tokenizer.ggml.add_space_prefix', type: 'bool', value: tok.addSpacePrefix });
  for (const kv of opts.extraKv ?? []) {
    const i = kvs.findIndex((k) => k.key === kv.key);
    if (i >= 0) kvs[i] = kv;
    else kvs.push(kv);
  }

  const d = m.dim;
  const hd = m.headDim;
  const tensors: GgufTensorSpec[] = [weightTensor('token_embd.weight', () => m.tokEmb, m.vocabSize, d, dtype)];
  if (m.ropeScaling?.type === 'llama3') {
    tensors.push(f32Tensor('rope_freqs.weight', llama3RopeFactors(hd, m.ropeTheta, m.ropeScaling), [hd / 2]));
  }
  const inter = m.ropeLayout === 'interleaved';
  L.forEach((l, i) => {
    const p = `blk.${i}.`;
    // llama.cpp's deci loader: nHead == 0 -> no attention tensors at all; ffn == 0 -> no FFN tensors at all.
    if (l.nHead > 0) {
      const wq = (): Float32Array => (inter ? l.wq : permuteRows(l.wq, l.nHead, hd, d, 'interleaved'));
      const wk = (): Float32Array => (inter ? l.wk : permuteRows(l.wk, l.nKvHead, hd, d, 'interleaved'));
      tensors.push(f32Tensor(p + 'attn_norm.weight', l.attnNorm, [d]));
      tensors.push(weightTensor(p + 'attn_q.weight', wq, l.nHead * hd, d, dtype));
      tensors.push(weightTensor(p + 'attn_k.weight', wk, l.nKvHead * hd, d, dtype));
      tensors.push(weightTensor(p + 'attn_v.weight', () => l.wv, l.nKvHead * hd, d, dtype));
      tensors.push(weightTensor(p + 'attn_output.weight', () => l.wo, d, l.nHead * hd, dtype));
    }
    if (l.ffn > 0) {
      tensors.push(f32Tensor(p + 'ffn_norm.weight', l.ffnNorm, [d]));
      tensors.push(weightTensor(p + 'ffn_gate.weight', () => l.wGate, l.ffn, d, dtype));
      tensors.push(weightTensor(p + 'ffn_up.weight', () => l.wUp, l.ffn, d, dtype));
      tensors.push(weightTensor(p + 'ffn_down.weight', () => l.wDown, d, l.ffn, dtype));
    }
  });
  tensors.push(f32Tensor('output_norm.weight', m.outNorm, [d]));
  // read again when written (a lazy model's tensors are not held while others are written)
  if (m.lmHead) tensors.push(weightTensor('output.weight', () => m.lmHead as Float32Array, m.vocabSize, d, dtype));
  return { version: 3, alignment, kvs, tensors };
}

// ---------------------------------------------------------------------------------------------
// Spec -> bytes

function writeScalar(w: ByteWriter, type: GgufScalarType, v: GgufScalar): void {
  const num = (): number => {
    if (typeof v !== 'number') throw new Error(`GGUF ${type} needs a number (got ${typeof v})`);
    return v;
  };
  switch (type) {
    case 'u8': return w.u8(num());
    case 'i8': return w.i8(num());
    case 'u16': return w.u16(num());
    case 'i16': return w.i16(num());
    case 'u32': return w.u32(num());
    case 'i32': return w.i32(num());
    case 'f32': return w.f32(num());
    case 'f64': return w.f64(num());
    case 'bool': return w.u8(v ? 1 : 0);
    case 'u64': return w.u64(BigInt(v as number | bigint));
    case 'i64': return w.i64(BigInt(v as number | bigint));
    case 'string': return w.str(String(v));
  }
}

function writeKv(w: ByteWriter, kv: GgufKv): void {
  w.str(kv.key);
  if (kv.type === 'raw') {
    w.u32(kv.typeId);
    w.bytes(kv.bytes);
  } else if (kv.type === 'array') {
    w.u32(GGUF_TYPE.array);
    w.u32(GGUF_TYPE[kv.itemType]);
    w.u64(BigInt(kv.value.length));
    for (let i = 0; i < kv.value.length; i++) writeScalar(w, kv.itemType, kv.value[i]);
  } else {
    w.u32(GGUF_TYPE[kv.type]);
    writeScalar(w, kv.type, kv.value);
  }
}

interface Layout {
  header: Uint8Array; // magic .. end of tensor infos, padded to the alignment
  offsets: bigint[]; // per tensor, relative to the data section
  dataBytes: number; // size of the data section (each tensor padded to the alignment)
}

function layoutGguf(spec: GgufSpec): Layout {
  const alignment = spec.alignment ?? 32;
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(spec.version ?? 3);
  w.u64(BigInt(spec.tensors.length));
  w.u64(BigInt(spec.kvs.length));
  for (const kv of spec.kvs) writeKv(w, kv);
  const offsets: bigint[] = [];
  let pos = 0;
  for (const t of spec.tensors) {
    const off = t.offset ?? BigInt(pos);
    offsets.push(off);
    pos = alignUp(pos + t.nbytes, alignment);
    w.str(t.name);
    w.u32(t.ne.length);
    for (const n of t.ne) w.u64(BigInt(n));
    w.u32(t.type);
    w.u64(off);
  }
  w.pad(alignment);
  return { header: w.finish(), offsets, dataBytes: pos };
}

function tensorBytes(t: GgufTensorSpec): Uint8Array {
  const b = typeof t.data === 'function' ? t.data() : t.data;
  if (b.byteLength !== t.nbytes) throw new Error(`tensor ${t.name}: ${b.byteLength} bytes, declared ${t.nbytes}`);
  return b;
}

/** Serializes a spec into one buffer (small files, tests, hostile cases). */
export function encodeGguf(spec: GgufSpec): Uint8Array {
  assertLittleEndian();
  const alignment = spec.alignment ?? 32;
  const { header, dataBytes } = layoutGguf(spec);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header, 0);
  let pos = header.length;
  for (const t of spec.tensors) {
    out.set(tensorBytes(t), pos);
    pos += alignUp(t.nbytes, alignment);
  }
  return out;
}

/** Streams a spec to a file, converting one tensor at a time. */
export function writeGgufSpec(path: string, spec: GgufSpec): void {
  assertLittleEndian();
  const alignment = spec.alignment ?? 32;
  const { header } = layoutGguf(spec);
  const fd = fs.openSync(path, 'w');
  try {
    writeAllSync(fd, header);
    const zeros = new Uint8Array(alignment);
    for (const t of spec.tensors) {
      writeAllSync(fd, tensorBytes(t));
      writeAllSync(fd, zeros.subarray(0, alignUp(t.nbytes, alignment) - t.nbytes));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A spec as one planned file: its exact size, and a writer that streams it tensor by tensor, in blocks of rows. */
export function ggufPlan(spec: GgufSpec): { bytes: number; write(sink: ByteSink): Promise<void> } {
  assertLittleEndian();
  const alignment = spec.alignment ?? 32;
  const { header, dataBytes } = layoutGguf(spec);
  return {
    bytes: header.length + dataBytes,
    write: async (sink) => {
      await sink.write(header);
      const zeros = new Uint8Array(alignment);
      for (const t of spec.tensors) {
        await writeChunks(sink, t.chunks ? t.chunks() : [tensorBytes(t)], t.nbytes, `tensor ${t.name}`);
        await sink.write(zeros.subarray(0, alignUp(t.nbytes, alignment) - t.nbytes));
      }
    },
  };
}

/** Writes `m` as a GGUF v3 file. */
export function writeGguf(path: string, m: ModelTensors, opts: GgufWriteOptions = {}): void {
  writeGgufSpec(path, ggufSpec(m, opts));
}

/** `writeGguf` into memory. */
export function ggufBytes(m: ModelTensors, opts: GgufWriteOptions = {}): Uint8Array {
  return encodeGguf(ggufSpec(m, opts));
}

// ---------------------------------------------------------------------------------------------
// Bounds-checked header reader

export interface GgufKvInfo {
  key: string;
  typeId: number;
  /** Scalars as number/boolean/string (u64/i64 as bigint); arrays as JS arrays with `itemType`. */
  value: unknown;
  itemType?: number;
  keyOffset: number; // position of the key's u64 length
  valueOffset: number; // position of the value (after the u32 type)
  end: number;
}

export interface GgufTensorInfo {
  name: string;
  ne: bigint[];
  type: number;
  offset: bigint;
  infoOffset: number; // position of the name's u64 length
  typeOffset: number; // position of the u32 ggml type
  offsetOffset: number; // position of the u64 data offset
}

export interface GgufHeader {
  version: number;
  kvs: GgufKvInfo[];
  kv: Map<string, unknown>;
  tensors: GgufTensorInfo[];
  alignment: number;
  dataOffset: number;
}

const SCALAR_BY_ID: Record<number, GgufScalarType> = Object.fromEntries(
  Object.entries(GGUF_TYPE).filter(([k]) => k !== 'array').map(([k, v]) => [v, k as GgufScalarType]),
);

function readScalar(r: ByteReader, typeId: number): unknown {
  switch (SCALAR_BY_ID[typeId]) {
    case 'u8': return r.u8();
    case 'i8': return r.i8();
    case 'u16': return r.u16();
    case 'i16': return r.i16();
    case 'u32': return r.u32();
    case 'i32': return r.i32();
    case 'f32': return r.f32();
    case 'f64': return r.f64();
    case 'bool': return r.u8() !== 0;
    case 'u64': return r.u64();
    case 'i64': return r.i64();
    case 'string': return r.str();
    default: throw new Error(`GGUF: unknown value type ${typeId} at ${r.pos}`);
  }
}

/** Parses magic, KVs and tensor infos; throws on anything out of bounds or unknown. Nested arrays are rejected. */
export function readGgufHeader(bytes: Uint8Array): GgufHeader {
  const r = new ByteReader(bytes);
  if (r.u32() !== GGUF_MAGIC) throw new Error('GGUF: bad magic');
  const version = r.u32();
  if (version !== 3 && version !== 2) throw new Error(`GGUF: unsupported version ${version}`);
  const nTensors = r.count(8 + 4 + 4 + 8); // a tensor info is at least 24 bytes
  const nKv = r.count(8 + 4 + 1);
  const kvs: GgufKvInfo[] = [];
  const kv = new Map<string, unknown>();
  for (let i = 0; i < nKv; i++) {
    const keyOffset = r.pos;
    const key = r.str();
    const typeId = r.u32();
    const valueOffset = r.pos;
    let value: unknown;
    let itemType: number | undefined;
    if (typeId === GGUF_TYPE.array) {
      itemType = r.u32();
      if (itemType === GGUF_TYPE.array) throw new Error(`GGUF: nested array in ${key}`);
      const n = r.count(itemType === GGUF_TYPE.string ? 8 : 1);
      const arr: unknown[] = new Array(n);
      for (let j = 0; j < n; j++) arr[j] = readScalar(r, itemType);
      value = arr;
    } else value = readScalar(r, typeId);
    if (kv.has(key)) throw new Error(`GGUF: duplicate key ${key}`);
    kv.set(key, value);
    kvs.push({ key, typeId, value, itemType, keyOffset, valueOffset, end: r.pos });
  }
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const infoOffset = r.pos;
    const name = r.str();
    const nd = r.u32();
    if (nd < 1 || nd > 4) throw new Error(`GGUF: tensor ${name} has ${nd} dims`);
    const ne: bigint[] = [];
    for (let j = 0; j < nd; j++) ne.push(r.u64());
    const typeOffset = r.pos;
    const type = r.u32();
    const offsetOffset = r.pos;
    const offset = r.u64();
    tensors.push({ name, ne, type, offset, infoOffset, typeOffset, offsetOffset });
  }
  const al = kv.get('general.alignment');
  const alignment = typeof al === 'number' ? al : 32;
  if (!(alignment > 0) || alignment % 8 !== 0) throw new Error(`GGUF: bad alignment ${String(al)}`);
  const dataOffset = alignUp(r.pos, alignment);
  if (dataOffset > bytes.length) throw new Error('GGUF: data section starts past the end');
  return { version, kvs, kv, tensors, alignment, dataOffset };
}

/** Bytes per element block for the ggml types the writers produce: [block elements, block bytes]. */
export function ggmlTypeBlock(type: number): [number, number] {
  switch (type) {
    case GGML_TYPE.F32: return [1, 4];
    case GGML_TYPE.F16: return [1, 2];
    case GGML_TYPE.BF16: return [1, 2];
    case GGML_TYPE.Q8_0: return [32, 34];
    default: throw new Error(`unsupported ggml type ${type}`);
  }
}
