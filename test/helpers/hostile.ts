// Hostile (malformed) model files for the engine's robustness tests: each case corrupts the output of the
// writers for a small valid random model in exactly one way and names the error code the loader must give.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomModel, ModelTensors } from '../../electron/core/formats/model-tensors.js';
import { GgufKv, GgufTokenizerMeta, encodeGguf, ggufSpec, readGgufHeader, GgufSpec, GGML_TYPE } from '../../electron/core/formats/gguf-write.js';
import {
  writeHfFolder, hfTensors, hfConfig, encodeSafetensors, encodeSafetensorsRaw, readSafetensorsHeader, SafetensorsEntry,
} from '../../electron/core/formats/safetensors-write.js';
import { llama2cBytes, encodeLlama2cHeader, llama2cFileSize, Llama2cHeader } from '../../electron/core/formats/llama2c-write.js';

export type HostileCode = 'E_FORMAT' | 'E_UNSUPPORTED' | 'E_SHAPE' | 'E_IO';

export interface HostileCase {
  name: string;
  format: 'gguf' | 'hf' | 'llama2c';
  expectCode: HostileCode;
  /** Writes the file(s) under `dir` and returns the path to load (a file for gguf/llama2c, a folder for hf). */
  make(dir: string): string;
}

/** A valid file in each format, built from the same base model (the control for every hostile case). */
export interface ValidCase {
  name: string;
  format: 'gguf' | 'hf' | 'llama2c';
  make(dir: string): string;
}

/** dim 64, 2 layers, 4 query / 2 KV heads of 16, FFN 96, vocab 320, context 128, untied head. */
export function hostileBaseModel(): ModelTensors {
  return randomModel({ dim: 64, nLayers: 2, nHead: 4, nKvHead: 2, ffn: 96, vocabSize: 320, contextLength: 128, tied: false, seed: 1234 });
}

/** A SentencePiece-style vocabulary of `n` pieces: <unk> <s> </s>, the 256 byte pieces, then synthetic words. */
export function syntheticTokenizer(n: number): GgufTokenizerMeta {
  const tokens = ['<unk>', '<s>', '</s>'];
  const tokenTypes = [2, 3, 3];
  for (let b = 0; b < 256 && tokens.length < n; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    tokenTypes.push(6);
  }
  while (tokens.length < n) {
    tokens.push(`\u2581w${tokens.length}`);
    tokenTypes.push(1);
  }
  const scores = tokens.map((_, i) => (tokenTypes[i] === 1 ? -i : 0));
  return { model: 'llama', tokens, scores, tokenTypes, bosId: 1, eosId: 2, addBos: true, addSpacePrefix: true };
}

// ---------------------------------------------------------------------------------------------
// helpers

const B64 = (x: number | bigint): bigint => BigInt(x);

function writeFile(dir: string, name: string, bytes: Uint8Array): string {
  fs.mkdirSync(dir, { recursive: true });
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

function patched(bytes: Uint8Array, f: (dv: DataView, b: Uint8Array) => void): Uint8Array {
  const b = bytes.slice();
  f(new DataView(b.buffer), b);
  return b;
}

function ggufBaseSpec(): GgufSpec {
  const m = hostileBaseModel();
  return ggufSpec(m, { name: 'hostile-base', tokenizer: syntheticTokenizer(m.vocabSize) });
}

function ggufBase(): Uint8Array {
  return encodeGguf(ggufBaseSpec());
}

/** A GGUF case made by editing the spec before serialization. */
function ggufFromSpec(name: string, code: HostileCode, edit: (s: GgufSpec) => void): HostileCase {
  return {
    name, format: 'gguf', expectCode: code,
    make: (dir) => {
      const s = ggufBaseSpec();
      edit(s);
      return writeFile(dir, `${name}.gguf`, encodeGguf(s));
    },
  };
}

/** A GGUF case made by patching the bytes of the valid file. */
function ggufPatch(name: string, code: HostileCode, edit: (b: Uint8Array) => Uint8Array): HostileCase {
  return { name, format: 'gguf', expectCode: code, make: (dir) => writeFile(dir, `${name}.gguf`, edit(ggufBase())) };
}

function tensorIdx(s: GgufSpec, name: string): number {
  const i = s.tensors.findIndex((t) => t.name === name);
  if (i < 0) throw new Error(`hostile: no tensor ${name}`);
  return i;
}

/** `depth` levels of array-of-array, innermost a one-element u8 array (value bytes after the outer type id). */
function nestedArrayBytes(depth: number): Uint8Array {
  const b = new Uint8Array(12 * (depth - 1) + 13);
  const dv = new DataView(b.buffer);
  for (let i = 0; i < depth - 1; i++) {
    dv.setUint32(12 * i, 9, true); // item type: array
    dv.setBigUint64(12 * i + 4, 1n, true);
  }
  const o = 12 * (depth - 1);
  dv.setUint32(o, 0, true); // item type: u8
  dv.setBigUint64(o + 4, 1n, true);
  return b;
}

function ggufCases(): HostileCase[] {
  const hdr = (): ReturnType<typeof readGgufHeader> => readGgufHeader(ggufBase());
  const kvAt = (key: string) => {
    const kv = hdr().kvs.find((k) => k.key === key);
    if (!kv) throw new Error(`hostile: no key ${key}`);
    return kv;
  };
  const tinfo = (name: string) => {
    const t = hdr().tensors.find((x) => x.name === name);
    if (!t) throw new Error(`hostile: no tensor ${name}`);
    return t;
  };
  return [
    ggufPatch('gguf-bad-magic', 'E_FORMAT', (b) => patched(b, (_, x) => void (x[3] = 0x58))),
    ggufPatch('gguf-version-1', 'E_UNSUPPORTED', (b) => patched(b, (dv) => dv.setUint32(4, 1, true))),
    ggufPatch('gguf-version-99', 'E_UNSUPPORTED', (b) => patched(b, (dv) => dv.setUint32(4, 99, true))),
    ggufPatch('gguf-truncated-header', 'E_FORMAT', (b) => b.slice(0, 13)),
    ggufPatch('gguf-truncated-mid-kv', 'E_FORMAT', (b) => {
      const kv = kvAt('tokenizer.ggml.tokens');
      return b.slice(0, Math.floor((kv.valueOffset + kv.end) / 2));
    }),
    ggufPatch('gguf-truncated-mid-tensor-info', 'E_FORMAT', (b) => b.slice(0, tinfo('blk.0.attn_k.weight').infoOffset + 20)),
    ggufPatch('gguf-truncated-mid-data', 'E_FORMAT', (b) => {
      const h = hdr();
      return b.slice(0, h.dataOffset + Math.floor((b.length - h.dataOffset) / 2));
    }),
    ggufPatch('gguf-tensor-count-2^62', 'E_FORMAT', (b) => patched(b, (dv) => dv.setBigUint64(8, 1n << 62n, true))),
    ggufPatch('gguf-kv-count-2^62', 'E_FORMAT', (b) => patched(b, (dv) => dv.setBigUint64(16, 1n << 62n, true))),
    ggufPatch('gguf-string-length-past-end', 'E_FORMAT', (b) =>
      patched(b, (dv) => dv.setBigUint64(24, B64(b.length), true)), // the first key's length
    ),
    ggufPatch('gguf-non-utf8-key', 'E_FORMAT', (b) =>
      patched(b, (_, x) => void (x[kvAt('general.name').keyOffset + 8 + 8] = 0xff)), // "general.\xffame"
    ),
    ggufPatch('gguf-non-utf8-string-value', 'E_FORMAT', (b) =>
      patched(b, (_, x) => void (x[kvAt('general.name').valueOffset + 8 + 2] = 0xff)),
    ),
    ggufPatch('gguf-tensor-offset-past-end', 'E_FORMAT', (b) => {
      const h = hdr();
      const last = h.tensors[h.tensors.length - 1];
      const past = B64(Math.ceil((b.length - h.dataOffset) / h.alignment) * h.alignment + 64 * h.alignment);
      return patched(b, (dv) => dv.setBigUint64(last.offsetOffset, past, true));
    }),
    ggufPatch('gguf-tensors-overlap', 'E_FORMAT', (b) => {
      const a = tinfo('blk.0.attn_q.weight');
      return patched(b, (dv) => dv.setBigUint64(tinfo('blk.0.attn_k.weight').offsetOffset, a.offset, true));
    }),
    ggufPatch('gguf-unknown-ggml-type-77', 'E_UNSUPPORTED', (b) =>
      patched(b, (dv) => dv.setUint32(tinfo('blk.0.attn_k.weight').typeOffset, 77, true)),
    ),
    ggufFromSpec('gguf-ndims-9', 'E_FORMAT', (s) => {
      s.tensors[tensorIdx(s, 'output_norm.weight')].ne = [64, 1, 1, 1, 1, 1, 1, 1, 1];
    }),
    ggufFromSpec('gguf-dims-product-overflows', 'E_FORMAT', (s) => {
      s.tensors[tensorIdx(s, 'output_norm.weight')].ne = [1n << 33n, 1n << 33n, 1n << 33n];
    }),
    ggufFromSpec('gguf-attn-q-rows-mismatch', 'E_SHAPE', (s) => {
      const i = tensorIdx(s, 'blk.0.attn_q.weight');
      const data = (s.tensors[i].data as () => Uint8Array)().slice(0, 48 * 64 * 4); // 3 heads of 16 instead of 4
      s.tensors[i] = { name: 'blk.0.attn_q.weight', type: GGML_TYPE.F32, ne: [64, 48], nbytes: data.length, data };
    }),
    ggufFromSpec('gguf-missing-tensor', 'E_SHAPE', (s) => {
      s.tensors.splice(tensorIdx(s, 'blk.1.ffn_up.weight'), 1);
    }),
    ggufPatch('gguf-array-2^40-elements', 'E_FORMAT', (b) =>
      patched(b, (dv) => dv.setBigUint64(kvAt('tokenizer.ggml.tokens').valueOffset + 4, 1n << 40n, true)),
    ),
    ggufFromSpec('gguf-nested-arrays-too-deep', 'E_FORMAT', (s) => {
      const kv: GgufKv = { key: 'tailor.nested', type: 'raw', typeId: 9, bytes: nestedArrayBytes(10000) };
      s.kvs.push(kv);
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// HF / safetensors

/** Writes the valid base folder and returns [folder, model.safetensors bytes, parsed header]. */
function hfBase(dir: string, name: string) {
  const folder = path.join(dir, name);
  writeHfFolder(folder, hostileBaseModel());
  const file = path.join(folder, 'model.safetensors');
  const bytes = new Uint8Array(fs.readFileSync(file));
  return { folder, file, bytes, header: readSafetensorsHeader(bytes) };
}

/** Rewrites model.safetensors with a new header JSON object (data section unchanged unless given). */
function hfEditHeader(name: string, code: HostileCode, edit: (h: Record<string, any>, dataLen: number) => string | void, cut = 0): HostileCase {
  return {
    name, format: 'hf', expectCode: code,
    make: (dir) => {
      const { folder, file, bytes, header } = hfBase(dir, name);
      const json = JSON.parse(Buffer.from(bytes.subarray(8, header.dataOffset)).toString('utf8')) as Record<string, any>;
      const data = bytes.subarray(header.dataOffset, bytes.length - cut);
      const text = edit(json, bytes.length - header.dataOffset) ?? JSON.stringify(json);
      fs.writeFileSync(file, encodeSafetensorsRaw(text + ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8), data));
      return folder;
    },
  };
}

function hfPatch(name: string, code: HostileCode, edit: (b: Uint8Array, dataOffset: number) => Uint8Array): HostileCase {
  return {
    name, format: 'hf', expectCode: code,
    make: (dir) => {
      const { folder, file, bytes, header } = hfBase(dir, name);
      fs.writeFileSync(file, edit(bytes, header.dataOffset));
      return folder;
    },
  };
}

/** A folder whose safetensors file is built from the base tensor list after `edit`. */
function hfTensorsCase(name: string, code: HostileCode, edit: (t: SafetensorsEntry[]) => void): HostileCase {
  return {
    name, format: 'hf', expectCode: code,
    make: (dir) => {
      const m = hostileBaseModel();
      const folder = path.join(dir, name);
      fs.mkdirSync(folder, { recursive: true });
      const ts = hfTensors(m);
      edit(ts);
      fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(hfConfig(m), null, 2));
      fs.writeFileSync(path.join(folder, 'model.safetensors'), encodeSafetensors(ts, { format: 'pt' }));
      return folder;
    },
  };
}

function replaceTensor(ts: SafetensorsEntry[], name: string, dtype: string, shape: number[], bytesPerElem: number): void {
  const i = ts.findIndex((t) => t.name === name);
  if (i < 0) throw new Error(`hostile: no tensor ${name}`);
  ts[i] = { name, dtype, shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 1) * bytesPerElem).fill(0x11) };
}

function sharded(dir: string, name: string): { folder: string; index: { weight_map: Record<string, string> } } {
  const folder = path.join(dir, name);
  writeHfFolder(folder, hostileBaseModel(), { shardBytes: 100_000 });
  const index = JSON.parse(fs.readFileSync(path.join(folder, 'model.safetensors.index.json'), 'utf8'));
  return { folder, index };
}

function hfCases(): HostileCase[] {
  const lastByOffset = (h: Record<string, any>): string =>
    Object.keys(h).filter((k) => k !== '__metadata__').sort((a, b) => h[b].data_offsets[0] - h[a].data_offsets[0])[0];
  return [
    hfPatch('hf-header-length-past-end', 'E_FORMAT', (b) =>
      patched(b, (dv) => dv.setBigUint64(0, B64(b.length), true))),
    hfPatch('hf-header-length-2^63', 'E_FORMAT', (b) => patched(b, (dv) => dv.setBigUint64(0, 1n << 63n, true))),
    hfPatch('hf-header-not-json', 'E_FORMAT', (b, off) =>
      patched(b, (_, x) => x.set(Buffer.from('this is not json'.padEnd(off - 8, ' ')), 8))),
    hfPatch('hf-header-truncated-json', 'E_FORMAT', (b, off) => {
      const text = Buffer.from(b.subarray(8, off)).toString('utf8').trimEnd();
      return patched(b, (_, x) => x.set(Buffer.from(text.slice(0, Math.floor(text.length / 2)).padEnd(off - 8, ' ')), 8));
    }),
    hfEditHeader('hf-header-json-nested-10000', 'E_FORMAT', (h) => {
      delete h.__metadata__; // replaced by the deep one (no duplicate key)
      const rest = JSON.stringify(h).slice(1); // '"name":{...},...}'
      return `{"__metadata__":{"deep":${'['.repeat(10000)}${']'.repeat(10000)}},${rest}`;
    }),
    hfEditHeader('hf-offsets-past-end', 'E_FORMAT', (h, dataLen) => {
      const t = h[lastByOffset(h)];
      const size = t.data_offsets[1] - t.data_offsets[0];
      t.data_offsets = [dataLen + 64, dataLen + 64 + size];
    }),
    hfEditHeader('hf-offsets-begin-after-end', 'E_FORMAT', (h) => {
      const t = h['model.layers.0.self_attn.q_proj.weight'];
      t.data_offsets = [t.data_offsets[1], t.data_offsets[0]];
    }),
    hfEditHeader('hf-offsets-overlap', 'E_FORMAT', (h) => {
      h['model.layers.0.post_attention_layernorm.weight'].data_offsets = [...h['model.layers.0.input_layernorm.weight'].data_offsets];
    }),
    // The last tensor's range is 4 bytes short of shape x dtype, and the file ends where the range ends.
    hfEditHeader('hf-size-not-shape-times-dtype', 'E_FORMAT', (h) => {
      h[lastByOffset(h)].data_offsets[1] -= 4;
    }, 4),
    hfTensorsCase('hf-dtype-f8-e4m3', 'E_UNSUPPORTED', (ts) =>
      replaceTensor(ts, 'model.layers.0.self_attn.q_proj.weight', 'F8_E4M3', [64, 64], 1)),
    hfTensorsCase('hf-dtype-i64', 'E_UNSUPPORTED', (ts) => replaceTensor(ts, 'model.layers.0.mlp.up_proj.weight', 'I64', [96, 64], 8)),
    hfTensorsCase('hf-q-proj-shape-vs-config', 'E_SHAPE', (ts) => {
      const i = ts.findIndex((t) => t.name === 'model.layers.1.self_attn.q_proj.weight');
      const full = (ts[i].data as () => Uint8Array)();
      ts[i] = { name: ts[i].name, dtype: 'F32', shape: [48, 64], data: full.slice(0, 48 * 64 * 4) };
    }),
    {
      name: 'hf-config-missing', format: 'hf', expectCode: 'E_FORMAT',
      make: (dir) => {
        const { folder } = hfBase(dir, 'hf-config-missing');
        fs.rmSync(path.join(folder, 'config.json'));
        return folder;
      },
    },
    {
      name: 'hf-config-invalid-json', format: 'hf', expectCode: 'E_FORMAT',
      make: (dir) => {
        const { folder } = hfBase(dir, 'hf-config-invalid-json');
        fs.writeFileSync(path.join(folder, 'config.json'), '{"hidden_size": 64, "num_hidden_layers": ');
        return folder;
      },
    },
    {
      name: 'hf-index-missing-shard', format: 'hf', expectCode: 'E_IO',
      make: (dir) => {
        const { folder, index } = sharded(dir, 'hf-index-missing-shard');
        const shards = [...new Set(Object.values(index.weight_map))].sort();
        fs.rmSync(path.join(folder, shards[shards.length - 1]));
        return folder;
      },
    },
    {
      // The escaping shard exists (one level up), so only the path check can reject it.
      name: 'hf-index-shard-escapes-folder', format: 'hf', expectCode: 'E_FORMAT',
      make: (dir) => {
        const { folder, index } = sharded(path.join(dir, 'hf-index-shard-escapes-folder'), 'model');
        const first = [...new Set(Object.values(index.weight_map))].sort()[0];
        fs.renameSync(path.join(folder, first), path.join(folder, '..', 'escaped.safetensors'));
        for (const k of Object.keys(index.weight_map)) if (index.weight_map[k] === first) index.weight_map[k] = '../escaped.safetensors';
        fs.writeFileSync(path.join(folder, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
        return folder;
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// llama2c

function l2cBase(): Uint8Array {
  return llama2cBytes(hostileBaseModel());
}

function l2cPatch(name: string, code: HostileCode, edit: (b: Uint8Array) => Uint8Array): HostileCase {
  return { name, format: 'llama2c', expectCode: code, make: (dir) => writeFile(dir, `${name}.bin`, edit(l2cBase())) };
}

/** A file with this header and exactly the size run.c's arithmetic expects (weights all 0.01). */
function l2cExact(name: string, code: HostileCode, h: Llama2cHeader): HostileCase {
  return {
    name, format: 'llama2c', expectCode: code,
    make: (dir) => {
      const size = Number(llama2cFileSize(h));
      const b = new Uint8Array(size);
      b.set(encodeLlama2cHeader(h), 0);
      new Float32Array(b.buffer, 28).fill(0.01);
      return writeFile(dir, `${name}.bin`, b);
    },
  };
}

function llama2cCases(): HostileCase[] {
  const base: Llama2cHeader = { dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 320, seqLen: 128 };
  const setHeader = (i: number, v: number) => (b: Uint8Array) => patched(b, (dv) => dv.setInt32(4 * i, v, true));
  const max = 0x7fffffff;
  return [
    l2cPatch('llama2c-truncated-header', 'E_FORMAT', (b) => b.slice(0, 12)),
    l2cPatch('llama2c-truncated-weights', 'E_FORMAT', (b) => b.slice(0, Math.floor(b.length * 0.6))),
    l2cPatch('llama2c-zero-dim', 'E_FORMAT', setHeader(0, 0)),
    l2cPatch('llama2c-negative-layers', 'E_FORMAT', setHeader(2, -2)),
    l2cPatch('llama2c-negative-heads', 'E_FORMAT', setHeader(3, -4)),
    l2cExact('llama2c-heads-not-dividing-dim', 'E_SHAPE', { ...base, nHeads: 6, nKvHeads: 6 }),
    l2cExact('llama2c-kv-heads-not-dividing-heads', 'E_SHAPE', { ...base, nHeads: 8, nKvHeads: 3 }),
    {
      name: 'llama2c-dims-product-overflows', format: 'llama2c', expectCode: 'E_FORMAT',
      make: (dir) => {
        const h: Llama2cHeader = { dim: max, hiddenDim: max, nLayers: max, nHeads: 1, nKvHeads: 1, vocabSize: max, seqLen: max };
        const b = new Uint8Array(4096);
        b.set(encodeLlama2cHeader(h), 0);
        return writeFile(dir, 'llama2c-dims-product-overflows.bin', b);
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------

export function hostileCases(): HostileCase[] {
  return [
    ...ggufCases(),
    ...hfCases(),
    ...llama2cCases(),
    { name: 'empty-file', format: 'gguf', expectCode: 'E_IO', make: (dir) => writeFile(dir, 'empty.gguf', new Uint8Array(0)) },
    { name: 'missing-directory', format: 'hf', expectCode: 'E_IO', make: (dir) => path.join(dir, 'no-such-model-folder') },
  ];
}

/** The uncorrupted base model in each format (to check that the loader accepts what the hostile cases start from). */
export function validCases(): ValidCase[] {
  return [
    { name: 'valid-gguf', format: 'gguf', make: (dir) => writeFile(dir, 'valid.gguf', ggufBase()) },
    { name: 'valid-hf', format: 'hf', make: (dir) => hfBase(dir, 'valid-hf').folder },
    { name: 'valid-hf-sharded', format: 'hf', make: (dir) => sharded(dir, 'valid-hf-sharded').folder },
    { name: 'valid-llama2c', format: 'llama2c', make: (dir) => writeFile(dir, 'valid.bin', l2cBase()) },
  ];
}
