// Tokenizer from a GGUF file's embedded vocabulary (its key/value metadata as a plain object):
// 'llama' → SentencePiece BPE by score as llama.cpp's SPM tokenizer runs it (space prefix, no whitespace
// collapsing, <0xXX> byte fallback); 'gpt2' → byte-level BPE with merges, via an in-memory tokenizer.json
// handed to @huggingface/tokenizers, pre-tokenized with the regex `tokenizer.ggml.pre` names.

import { TokenizerError } from './errors.js';
import { LibraryTokenizer } from './hf-json.js';
import { ModelType, PieceType, defaultNormalizerSpec, defaultTrainerSpec, type ModelProto } from './proto.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import type { Tokenizer } from './types.js';
import { parseBytePiece } from './utf8.js';

/** GPT-2's pre-tokenizer regex (the default for byte-level vocabularies). */
export const GPT2_PRE_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/** Llama 3's pre-tokenizer regex (`tokenizer.ggml.pre` = 'llama-bpe'). */
export const LLAMA3_PRE_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen 2's pre-tokenizer regex (single digits). */
export const QWEN2_PRE_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const LLAMA3_PRE_NAMES = new Set(['llama-bpe', 'llama3', 'llama-v3', 'dbrx', 'smaug-bpe', 'falcon3']);
const QWEN2_PRE_NAMES = new Set(['qwen2', 'deepseek-r1-qwen']);

const K = 'tokenizer.ggml.';

function fmt(message: string): TokenizerError {
  return new TokenizerError('E_FORMAT', 'GGUF tokenizer metadata: ' + message);
}

function arrayOf(meta: Record<string, unknown>, key: string): unknown[] | undefined {
  const v = meta[K + key];
  if (v === undefined || v === null) return undefined;
  if (Array.isArray(v)) return v;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<unknown>);
  throw fmt(`${K + key} should be an array`);
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

function intKey(meta: Record<string, unknown>, key: string): number | undefined {
  const v = meta[K + key];
  if (v === undefined || v === null) return undefined;
  const n = num(v);
  if (n === undefined || !Number.isInteger(n)) throw fmt(`${K + key} should be an integer`);
  return n;
}

function boolKey(meta: Record<string, unknown>, key: string): boolean | undefined {
  const v = meta[K + key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  const n = num(v);
  if (n !== undefined) return n !== 0;
  throw fmt(`${K + key} should be a boolean`);
}

function numbersOf(meta: Record<string, unknown>, key: string, length: number): number[] | undefined {
  const arr = arrayOf(meta, key);
  if (arr === undefined) return undefined;
  if (arr.length !== length) throw fmt(`${K + key} has ${arr.length} entries for ${length} tokens`);
  return arr.map((v, i) => {
    const n = num(v);
    if (n === undefined) throw fmt(`${K + key}[${i}] is not a number`);
    return n;
  });
}

function tokensOf(meta: Record<string, unknown>): string[] {
  const arr = arrayOf(meta, 'tokens');
  if (arr === undefined || arr.length === 0) {
    throw new TokenizerError('E_NO_TOKENIZER', `GGUF metadata has no ${K}tokens: the file carries no vocabulary`);
  }
  return arr.map((t, i) => {
    if (typeof t !== 'string') throw fmt(`${K}tokens[${i}] is not a string`);
    return t;
  });
}

/** token_type when present; otherwise guessed: <0xXX> → BYTE, the special ids → CONTROL / UNKNOWN. */
function typesOf(meta: Record<string, unknown>, tokens: string[], special: { unk: number; bos: number; eos: number }): number[] {
  const given = numbersOf(meta, 'token_type', tokens.length);
  if (given !== undefined) return given.map((t) => (t >= 1 && t <= 6 ? t : PieceType.NORMAL));
  return tokens.map((t, id) => {
    if (id === special.unk) return PieceType.UNKNOWN;
    if (id === special.bos || id === special.eos) return PieceType.CONTROL;
    return parseBytePiece(t) >= 0 ? PieceType.BYTE : PieceType.NORMAL;
  });
}

function llamaTokenizer(meta: Record<string, unknown>): Tokenizer {
  const tokens = tokensOf(meta);
  const scores = numbersOf(meta, 'scores', tokens.length) ?? tokens.map(() => 0);
  // llama.cpp's SPM defaults: unk 0, bos 1, eos 2
  const unk = intKey(meta, 'unknown_token_id') ?? 0;
  const bos = intKey(meta, 'bos_token_id') ?? 1;
  const eos = intKey(meta, 'eos_token_id') ?? 2;
  const types = typesOf(meta, tokens, { unk, bos, eos });
  const trainerSpec = defaultTrainerSpec();
  trainerSpec.modelType = ModelType.BPE;
  trainerSpec.vocabSize = tokens.length;
  trainerSpec.byteFallback = types.some((t) => t === PieceType.BYTE);
  trainerSpec.unkId = unk;
  trainerSpec.bosId = bos;
  trainerSpec.eosId = eos;
  const normalizerSpec = defaultNormalizerSpec();
  normalizerSpec.name = 'identity';
  normalizerSpec.addDummyPrefix = boolKey(meta, 'add_space_prefix') ?? true;
  normalizerSpec.removeExtraWhitespaces = false; // llama.cpp never collapses whitespace
  normalizerSpec.escapeWhitespaces = true;
  const model: ModelProto = {
    pieces: tokens.map((piece, id) => ({ piece, score: scores[id], type: types[id] })),
    trainerSpec,
    normalizerSpec,
  };
  const inRange = (id: number): number => (id >= 0 && id < tokens.length ? id : -1);
  return new SentencePieceTokenizer(model, {
    kind: 'gguf-llama',
    strict: false,
    bosId: inRange(bos),
    eosId: inRange(eos),
    addBos: boolKey(meta, 'add_bos_token') ?? true,
  });
}

function preTokenizerFor(pre: string): Record<string, unknown> {
  const split = (regex: string): Record<string, unknown> => ({
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  });
  if (LLAMA3_PRE_NAMES.has(pre)) return split(LLAMA3_PRE_REGEX);
  if (QWEN2_PRE_NAMES.has(pre)) return split(QWEN2_PRE_REGEX);
  // 'gpt-2', 'default' and anything unknown: GPT-2's regex, built into the ByteLevel pre-tokenizer
  return { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
}

function gpt2Tokenizer(meta: Record<string, unknown>): Tokenizer {
  const tokens = tokensOf(meta);
  const mergesRaw = arrayOf(meta, 'merges');
  if (mergesRaw === undefined) throw fmt(`${K}merges is missing (needed for a 'gpt2' vocabulary)`);
  const merges = mergesRaw.map((m, i): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m !== 'string') throw fmt(`${K}merges[${i}] is not a string`);
    const sp = m.indexOf(' ', 1);
    if (sp < 0) throw fmt(`${K}merges[${i}] (${JSON.stringify(m)}) is not "left right"`);
    return [m.slice(0, sp), m.slice(sp + 1)];
  });
  const bos = intKey(meta, 'bos_token_id') ?? -1;
  const eos = intKey(meta, 'eos_token_id') ?? -1;
  const unk = intKey(meta, 'unknown_token_id');
  const types = numbersOf(meta, 'token_type', tokens.length) ?? tokens.map(() => PieceType.NORMAL);
  const pre = typeof meta[K + 'pre'] === 'string' ? (meta[K + 'pre'] as string) : 'default';

  const seen = new Set<string>();
  const entries: Array<[string, number]> = [];
  const added: Array<Record<string, unknown>> = [];
  tokens.forEach((t, id) => {
    if (!seen.has(t)) {
      seen.add(t);
      entries.push([t, id]);
    }
    const type = types[id];
    if (type === PieceType.CONTROL || type === PieceType.USER_DEFINED || id === bos || id === eos) {
      added.push({
        id,
        content: t,
        special: type !== PieceType.USER_DEFINED,
        normalized: false,
        lstrip: false,
        rstrip: false,
        single_word: false,
      });
    }
  });
  const llama3 = LLAMA3_PRE_NAMES.has(pre);
  const json: Record<string, unknown> = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: preTokenizerFor(pre),
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk !== undefined && unk >= 0 && unk < tokens.length ? tokens[unk] : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: llama3,
      vocab: Object.fromEntries(entries),
      merges,
    },
  };
  const inRange = (id: number): number => (id >= 0 && id < tokens.length ? id : -1);
  return new LibraryTokenizer({
    kind: 'gguf-gpt2',
    json,
    config: {},
    bosId: inRange(bos),
    eosId: inRange(eos),
    // llama.cpp turns BOS on for the Llama 3 pre-tokenizer family unless the file says otherwise
    addBos: boolKey(meta, 'add_bos_token') ?? llama3,
  });
}

/**
 * Builds the tokenizer a GGUF file embeds. `meta` is the GGUF key/value metadata (strings, numbers, bigints,
 * booleans, arrays of those). Throws TokenizerError: E_NO_TOKENIZER without a vocabulary, E_UNSUPPORTED for
 * other tokenizer.ggml.model values (bert, t5, rwkv, ...), E_FORMAT for inconsistent arrays.
 */
export function tokenizerFromGgufMetadata(meta: Record<string, unknown>): Tokenizer {
  if (typeof meta !== 'object' || meta === null) throw fmt('metadata must be an object');
  const model = meta[K + 'model'];
  if (model === undefined || model === 'none' || model === 'no_vocab') {
    throw new TokenizerError('E_NO_TOKENIZER', `GGUF metadata has no usable ${K}model (${String(model)})`);
  }
  if (model === 'llama') return llamaTokenizer(meta);
  if (model === 'gpt2') return gpt2Tokenizer(meta);
  throw new TokenizerError('E_UNSUPPORTED', `GGUF ${K}model '${String(model)}' is not supported (only 'llama' and 'gpt2')`);
}
