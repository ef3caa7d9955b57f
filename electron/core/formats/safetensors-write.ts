// Hugging Face folder writer (config.json + model.safetensors, or shards + model.safetensors.index.json)
// from a ModelTensors, the generic safetensors file writer, and a bounds-checked safetensors header reader.
// Folders are written synchronously (tests, training, pruning) or planned as files streamed through a
// ByteSink in chunks (exports: cancellable, with progress).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelTensors, checkModel, permuteRows } from './model-tensors.js';
import { assertLittleEndian, bytesOf, f32ArrayToBf16, f32ArrayToF16, writeAllSync } from './dtype.js';
import { encodeRows, plannedBytes, plannedCopy, writeChunks, type ByteSink, type PlannedFile } from './sink.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | (string & {});

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Raw little-endian bytes, or a function producing them (then `nbytes` is required). */
  data: Uint8Array | (() => Uint8Array);
  nbytes?: number;
  /** The same bytes as blocks of rows (streamed writes never build the whole encoded tensor). */
  chunks?: () => Iterable<Uint8Array>;
}

export interface HfWriteOptions {
  dtype?: 'f32' | 'f16' | 'bf16';
  /** When the tensor bytes exceed this, write model-0000i-of-0000N.safetensors shards + index. */
  shardBytes?: number;
  /** Files copied into the folder (tokenizer.model, tokenizer.json, tokenizer_config.json, ...). */
  tokenizerFiles?: string[];
}

const entryBytes = (e: SafetensorsEntry): number => {
  if (typeof e.data !== 'function') return e.data.byteLength;
  if (e.nbytes === undefined) throw new Error(`safetensors: lazy tensor ${e.name} needs nbytes`);
  return e.nbytes;
};

/** The JSON header text (spaces-padded so 8 + length is a multiple of 8) for these entries. */
export function safetensorsHeaderJson(tensors: SafetensorsEntry[], metadata?: Record<string, string>): string {
  const h: Record<string, unknown> = {};
  if (metadata) h.__metadata__ = metadata;
  let off = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || Object.prototype.hasOwnProperty.call(h, t.name)) throw new Error(`safetensors: duplicate/reserved name ${t.name}`);
    const n = entryBytes(t);
    h[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + n] };
    off += n;
  }
  const json = JSON.stringify(h);
  const len = Buffer.byteLength(json, 'utf8');
  return json + ' '.repeat((8 - (len % 8)) % 8);
}

/** Header (u64 LE length + JSON) + data, in one buffer. */
export function encodeSafetensorsRaw(headerJson: string, data: Uint8Array, declaredLength?: bigint): Uint8Array {
  const hj = Buffer.from(headerJson, 'utf8');
  const out = new Uint8Array(8 + hj.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(hj.length), true);
  out.set(hj, 8);
  out.set(data, 8 + hj.length);
  return out;
}

/** Whole safetensors file in memory (small tensors only). */
export function encodeSafetensors(tensors: SafetensorsEntry[], metadata?: Record<string, string>): Uint8Array {
  const parts = tensors.map((t) => (typeof t.data === 'function' ? t.data() : t.data));
  const data = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    data.set(p, o);
    o += p.length;
  }
  return encodeSafetensorsRaw(safetensorsHeaderJson(tensors, metadata), data);
}

/** Streams a safetensors file, materialising one tensor at a time. */
export function writeSafetensors(file: string, tensors: SafetensorsEntry[], metadata?: Record<string, string>): void {
  assertLittleEndian();
  const hj = Buffer.from(safetensorsHeaderJson(tensors, metadata), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hj.length));
  const fd = fs.openSync(file, 'w');
  try {
    writeAllSync(fd, len);
    writeAllSync(fd, hj);
    for (const t of tensors) {
      const b = typeof t.data === 'function' ? t.data() : t.data;
      if (b.byteLength !== entryBytes(t)) throw new Error(`safetensors: ${t.name} produced ${b.byteLength} bytes, declared ${entryBytes(t)}`);
      writeAllSync(fd, b);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** A safetensors file as one planned write: its exact size, and a writer streaming one tensor at a time. */
export function safetensorsPlan(tensors: SafetensorsEntry[], metadata?: Record<string, string>): { bytes: number; write(sink: ByteSink): Promise<void> } {
  assertLittleEndian();
  const hj = Buffer.from(safetensorsHeaderJson(tensors, metadata), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(hj.length));
  return {
    bytes: 8 + hj.length + tensors.reduce((a, t) => a + entryBytes(t), 0),
    write: async (sink) => {
      await sink.write(len);
      await sink.write(hj);
      for (const t of tensors)
        await writeChunks(sink, t.chunks ? t.chunks() : [typeof t.data === 'function' ? t.data() : t.data], entryBytes(t), `safetensors ${t.name}`);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Model -> HF tensors and config

/** `get` runs when the tensor is written, so conversions/permutations are never all held at once. */
function encoded(name: string, get: () => Float32Array, shape: number[], dtype: 'f32' | 'f16' | 'bf16'): SafetensorsEntry {
  const n = shape.reduce((a, b) => a * b, 1);
  const cols = shape[shape.length - 1];
  const chunks = () => encodeRows(get(), cols ? n / cols : 0, cols, dtype);
  if (dtype === 'f16') return { name, dtype: 'F16', shape, nbytes: n * 2, data: () => bytesOf(f32ArrayToF16(get())), chunks };
  if (dtype === 'bf16') return { name, dtype: 'BF16', shape, nbytes: n * 2, data: () => bytesOf(f32ArrayToBf16(get())), chunks };
  return { name, dtype: 'F32', shape, nbytes: n * 4, data: () => bytesOf(get()), chunks };
}

/**
 * HF-named tensors with q/k rows in the rotate_half layout. A layer with nHead = 0 has no attention tensors
 * (and no input_layernorm); one with ffn = 0 has no MLP tensors (and no post_attention_layernorm).
 */
export function hfTensors(m: ModelTensors, dtype: 'f32' | 'f16' | 'bf16' = 'f32'): SafetensorsEntry[] {
  checkModel(m);
  const d = m.dim;
  const hd = m.headDim;
  const rot = m.ropeLayout === 'rotate_half';
  const out: SafetensorsEntry[] = [encoded('model.embed_tokens.weight', () => m.tokEmb, [m.vocabSize, d], dtype)];
  m.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    if (l.nHead > 0) {
      const wq = (): Float32Array => (rot ? l.wq : permuteRows(l.wq, l.nHead, hd, d, 'rotate_half'));
      const wk = (): Float32Array => (rot ? l.wk : permuteRows(l.wk, l.nKvHead, hd, d, 'rotate_half'));
      out.push(encoded(p + 'input_layernorm.weight', () => l.attnNorm, [d], dtype));
      out.push(encoded(p + 'self_attn.q_proj.weight', wq, [l.nHead * hd, d], dtype));
      out.push(encoded(p + 'self_attn.k_proj.weight', wk, [l.nKvHead * hd, d], dtype));
      out.push(encoded(p + 'self_attn.v_proj.weight', () => l.wv, [l.nKvHead * hd, d], dtype));
      out.push(encoded(p + 'self_attn.o_proj.weight', () => l.wo, [d, l.nHead * hd], dtype));
    }
    if (l.ffn > 0) {
      out.push(encoded(p + 'post_attention_layernorm.weight', () => l.ffnNorm, [d], dtype));
      out.push(encoded(p + 'mlp.gate_proj.weight', () => l.wGate, [l.ffn, d], dtype));
      out.push(encoded(p + 'mlp.up_proj.weight', () => l.wUp, [l.ffn, d], dtype));
      out.push(encoded(p + 'mlp.down_proj.weight', () => l.wDown, [d, l.ffn], dtype));
    }
  });
  out.push(encoded('model.norm.weight', () => m.outNorm, [d], dtype));
  // read again when written (a lazy model's tensors are not held while others are written)
  if (m.lmHead) out.push(encoded('lm_head.weight', () => m.lmHead as Float32Array, [m.vocabSize, d], dtype));
  return out;
}

const TORCH_DTYPE = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' } as const;

/** config.json contents: LlamaForCausalLM plus Tailor's per-layer lists (uniform fields hold the max). */
export function hfConfig(m: ModelTensors, dtype: 'f32' | 'f16' | 'bf16' = 'f32'): Record<string, unknown> {
  const L = m.layers;
  const max = (f: (l: (typeof L)[number]) => number): number => Math.max(...L.map(f));
  const cfg: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: m.dim,
    intermediate_size: max((l) => l.ffn),
    num_hidden_layers: L.length,
    num_attention_heads: max((l) => l.nHead),
    num_key_value_heads: max((l) => l.nKvHead),
    head_dim: m.headDim,
    vocab_size: m.vocabSize,
    max_position_embeddings: m.contextLength,
    rms_norm_eps: m.normEps,
    rope_theta: m.ropeTheta,
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    tie_word_embeddings: m.lmHead === null,
    bos_token_id: m.bosId,
    eos_token_id: m.eosId,
    torch_dtype: TORCH_DTYPE[dtype],
    layer_num_attention_heads: L.map((l) => l.nHead),
    layer_num_key_value_heads: L.map((l) => l.nKvHead),
    layer_intermediate_sizes: L.map((l) => l.ffn),
  };
  const s = m.ropeScaling;
  if (s?.type === 'linear') cfg.rope_scaling = { rope_type: 'linear', type: 'linear', factor: s.factor };
  else if (s?.type === 'llama3')
    cfg.rope_scaling = {
      rope_type: 'llama3',
      factor: s.factor,
      low_freq_factor: s.lowFreqFactor,
      high_freq_factor: s.highFreqFactor,
      original_max_position_embeddings: s.originalMaxPositionEmbeddings,
    };
  else cfg.rope_scaling = null;
  return cfg;
}

interface HfLayout {
  config: string;
  /** model.safetensors, or the shards in order */
  files: Array<{ name: string; tensors: SafetensorsEntry[] }>;
  /** model.safetensors.index.json when sharded */
  index: string | null;
}

/** What a HF folder holds: config.json, one safetensors file or shards (above `shardBytes`) and their index. */
function hfLayout(m: ModelTensors, opts: HfWriteOptions): HfLayout {
  const dtype = opts.dtype ?? 'f32';
  const tensors = hfTensors(m, dtype);
  const config = JSON.stringify(hfConfig(m, dtype), null, 2) + '\n';
  const total = tensors.reduce((a, t) => a + entryBytes(t), 0);
  if (opts.shardBytes === undefined || total <= opts.shardBytes) return { config, files: [{ name: 'model.safetensors', tensors }], index: null };
  const shards: SafetensorsEntry[][] = [];
  let cur: SafetensorsEntry[] = [];
  let curBytes = 0;
  for (const t of tensors) {
    const n = entryBytes(t);
    if (cur.length > 0 && curBytes + n > opts.shardBytes) {
      shards.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(t);
    curBytes += n;
  }
  if (cur.length) shards.push(cur);
  const N = shards.length;
  const pad5 = (i: number): string => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  const files = shards.map((sh, i) => {
    const name = `model-${pad5(i + 1)}-of-${pad5(N)}.safetensors`;
    for (const t of sh) weightMap[t.name] = name;
    return { name, tensors: sh };
  });
  return { config, files, index: JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + '\n' };
}

/** Writes a HF LlamaForCausalLM folder (created if missing). Returns the files written. */
export function writeHfFolder(dir: string, m: ModelTensors, opts: HfWriteOptions = {}): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const layout = hfLayout(m, opts);
  const written: string[] = [];
  const cfgPath = path.join(dir, 'config.json');
  fs.writeFileSync(cfgPath, layout.config);
  written.push(cfgPath);
  for (const f of layout.files) {
    writeSafetensors(path.join(dir, f.name), f.tensors, { format: 'pt' });
    written.push(path.join(dir, f.name));
  }
  if (layout.index !== null) {
    const idx = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(idx, layout.index);
    written.push(idx);
  }
  for (const src of opts.tokenizerFiles ?? []) {
    const dst = path.join(dir, path.basename(src));
    fs.copyFileSync(src, dst);
    written.push(dst);
  }
  return written;
}

/** The files of a HF folder as planned writes under `prefix` (e.g. 'base/'), for a streamed export. */
export function hfFolderPlan(m: ModelTensors, opts: HfWriteOptions = {}, prefix = ''): PlannedFile[] {
  const layout = hfLayout(m, opts);
  const out: PlannedFile[] = [plannedBytes(prefix + 'config.json', layout.config)];
  for (const f of layout.files) out.push({ rel: prefix + f.name, ...safetensorsPlan(f.tensors, { format: 'pt' }) });
  if (layout.index !== null) out.push(plannedBytes(prefix + 'model.safetensors.index.json', layout.index));
  for (const src of opts.tokenizerFiles ?? []) out.push(plannedCopy(prefix + path.basename(src), src));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Bounds-checked header reader

export interface SafetensorsTensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  begin: number; // relative to the data section
  end: number;
}

export interface SafetensorsHeader {
  headerLength: number;
  dataOffset: number; // 8 + headerLength
  metadata: Record<string, string> | undefined;
  tensors: SafetensorsTensorInfo[];
}

export const SAFETENSORS_DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

/** Validates the header of a whole safetensors file (or at least its header + data) in `bytes`. */
export function readSafetensorsHeader(bytes: Uint8Array): SafetensorsHeader {
  if (bytes.length < 8) throw new Error('safetensors: shorter than 8 bytes');
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(bytes.length - 8)) throw new Error(`safetensors: header length ${n64} past the end`);
  const n = Number(n64);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`safetensors: header is not JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('safetensors: header is not an object');
  const dataLen = bytes.length - 8 - n;
  const tensors: SafetensorsTensorInfo[] = [];
  let metadata: Record<string, string> | undefined;
  for (const [name, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string'))
        throw new Error('safetensors: __metadata__ must map strings to strings');
      metadata = v as Record<string, string>;
      continue;
    }
    const t = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const elt = typeof t.dtype === 'string' ? SAFETENSORS_DTYPE_BYTES[t.dtype] : undefined;
    if (elt === undefined) throw new Error(`safetensors: ${name} has unknown dtype ${String(t.dtype)}`);
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((x) => Number.isSafeInteger(x) && x >= 0)) throw new Error(`safetensors: ${name} bad shape`);
    const off = t.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isSafeInteger(x) && x >= 0))
      throw new Error(`safetensors: ${name} bad data_offsets`);
    const [begin, end] = off as number[];
    if (begin > end || end > dataLen) throw new Error(`safetensors: ${name} offsets [${begin}, ${end}] outside data (${dataLen})`);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (count * elt !== end - begin) throw new Error(`safetensors: ${name} size ${end - begin} != ${count} x ${elt}`);
    tensors.push({ name, dtype: t.dtype as string, shape: shape as number[], begin, end });
  }
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i].begin < sorted[i - 1].end) throw new Error(`safetensors: ${sorted[i].name} overlaps ${sorted[i - 1].name}`);
  return { headerLength: n, dataOffset: 8 + n, metadata, tensors };
}
