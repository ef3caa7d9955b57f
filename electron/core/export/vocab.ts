// vocab.ts — the vocabulary a GGUF export embeds, from whatever the model ships: its own GGUF metadata,
// a SentencePiece tokenizer.model (GGUF 'llama': pieces, scores, types), or a Hugging Face tokenizer.json
// with a BPE model — byte-level (GPT-2, Llama 3: GGUF 'gpt2' with merges and llama.cpp's pre-tokenizer
// name) or SentencePiece-style (Llama 2: byte fallback and ▁ pieces: GGUF 'llama' with scores from the
// merge ranks). Special and added tokens become control / user-defined tokens; BOS/EOS and add_bos come
// from tokenizer_config.json or the post-processor template, as Tailor's own tokenizer reads them.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import type { GgufTokenizerMeta } from '../formats/gguf-write.js';
import { GPT2_PRE_REGEX, LLAMA3_PRE_REGEX, QWEN2_PRE_REGEX } from '../tokenizer/gguf-vocab.js';
import { LibraryTokenizer } from '../tokenizer/hf-json.js';
import { parseModelProto, PieceType } from '../tokenizer/proto.js';
import { parseBytePiece } from '../tokenizer/utf8.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** GGUF's `llama` tokenizer vocabulary from a SentencePiece model file. */
export function ggufVocabFromSentencePiece(bytes: Uint8Array, addBos = true): GgufTokenizerMeta {
  const proto = parseModelProto(bytes);
  const ts = proto.trainerSpec;
  return {
    model: 'llama',
    tokens: proto.pieces.map((p) => p.piece),
    scores: proto.pieces.map((p) => p.score),
    tokenTypes: proto.pieces.map((p) => (p.type >= PieceType.NORMAL && p.type <= PieceType.BYTE ? p.type : PieceType.NORMAL)),
    bosId: ts.bosId >= 0 ? ts.bosId : 1,
    eosId: ts.eosId >= 0 ? ts.eosId : 2,
    unkId: ts.unkId >= 0 ? ts.unkId : undefined,
    addBos,
    addSpacePrefix: proto.normalizerSpec.addDummyPrefix,
  };
}

/** Every component of a (possibly nested `Sequence`) tokenizer.json section. */
function parts(v: unknown): Json[] {
  if (!isObject(v)) return [];
  if (v.type === 'Sequence') {
    const inner = (v.pretokenizers ?? v.normalizers ?? v.decoders ?? v.processors) as unknown;
    return Array.isArray(inner) ? inner.flatMap(parts) : [];
  }
  return [v];
}

/** llama.cpp's `tokenizer.ggml.pre` for a byte-level pre-tokenizer, or an E_UNSUPPORTED error. */
function preTokenizerName(pre: unknown): string {
  const ps = parts(pre);
  const byteLevel = ps.find((p) => p.type === 'ByteLevel');
  if (!byteLevel) throw new EngineError('E_UNSUPPORTED', 'tokenizer.json: a byte-level BPE vocabulary needs a ByteLevel pre-tokenizer');
  if (byteLevel.add_prefix_space === true)
    throw new EngineError('E_UNSUPPORTED', "tokenizer.json: ByteLevel add_prefix_space is not supported by llama.cpp's byte-level BPE; export to hf instead");
  const splits = ps.filter((p) => p.type === 'Split');
  if (splits.length === 0 && ps.length === 1 && byteLevel.use_regex !== false) return 'gpt-2';
  const regex = splits.length === 1 && isObject(splits[0].pattern) ? splits[0].pattern.Regex : undefined;
  if (ps.length === 2 && typeof regex === 'string' && byteLevel.use_regex === false) {
    if (regex === LLAMA3_PRE_REGEX) return 'llama-bpe';
    if (regex === QWEN2_PRE_REGEX) return 'qwen2';
    if (regex === GPT2_PRE_REGEX) return 'gpt-2';
  }
  throw new EngineError('E_UNSUPPORTED', `tokenizer.json: this pre-tokenizer (${JSON.stringify(pre).slice(0, 200)}) has no llama.cpp equivalent Tailor knows (GPT-2, Llama 3, Qwen 2); export to hf instead`);
}

/** Whether a SentencePiece-style BPE prepends ▁ to the text (normalizer Prepend, or a Metaspace pre-tokenizer). */
function spmAddsSpacePrefix(json: Json): boolean {
  if (parts(json.normalizer).some((p) => p.type === 'Prepend' && p.prepend === '\u2581')) return true;
  const meta = parts(json.pre_tokenizer).find((p) => p.type === 'Metaspace');
  if (meta) return meta.prepend_scheme !== undefined ? meta.prepend_scheme !== 'never' : meta.add_prefix_space !== false;
  return false;
}

/**
 * GGUF vocabulary from a Hugging Face tokenizer.json (+ tokenizer_config.json). BPE only: byte-level →
 * 'gpt2' (tokens, merges, pre-tokenizer name); SentencePiece-style (byte fallback / ▁ pieces) → 'llama'
 * with each merged token scored by its first merge's rank (-rank, so earlier merges win as in
 * SentencePiece), other tokens below every merge. Ids missing from the vocabulary become `[PADn]` unused.
 */
export function ggufVocabFromTokenizerJson(json: Json, config: Json = {}): GgufTokenizerMeta {
  const model = json.model;
  if (!isObject(model)) throw new EngineError('E_FORMAT', 'tokenizer.json has no "model" object');
  if (model.type !== 'BPE' && !(model.type === undefined && isObject(model.vocab) && Array.isArray(model.merges)))
    throw new EngineError('E_UNSUPPORTED', `tokenizer.json model type ${String(model.type)}: only BPE vocabularies can be embedded in a GGUF (export to hf instead)`);
  if (!isObject(model.vocab) || !Array.isArray(model.merges)) throw new EngineError('E_FORMAT', 'tokenizer.json BPE model needs "vocab" and "merges"');
  const merges = model.merges.map((m, i): [string, string] => {
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    if (typeof m === 'string') {
      const sp = m.indexOf(' ', 1);
      if (sp > 0) return [m.slice(0, sp), m.slice(sp + 1)];
    }
    throw new EngineError('E_FORMAT', `tokenizer.json merges[${i}] is not a pair`);
  });
  const added = (Array.isArray(json.added_tokens) ? json.added_tokens : []).filter(isObject)
    .filter((t): t is Json & { id: number; content: string } => Number.isInteger(t.id) && (t.id as number) >= 0 && typeof t.content === 'string');
  let n = 0;
  for (const id of Object.values(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new EngineError('E_FORMAT', 'tokenizer.json vocab ids must be non-negative integers');
    n = Math.max(n, (id as number) + 1);
  }
  for (const t of added) n = Math.max(n, t.id + 1);
  const tokens: Array<string | undefined> = new Array(n);
  for (const [piece, id] of Object.entries(model.vocab)) tokens[id as number] = piece;
  for (const t of added) tokens[t.id] = t.content;
  const types: number[] = tokens.map((t) => (t === undefined ? PieceType.UNUSED : PieceType.NORMAL));
  for (const t of added) types[t.id] = t.special === false ? PieceType.USER_DEFINED : PieceType.CONTROL;
  const byteLevel = parts(json.pre_tokenizer).some((p) => p.type === 'ByteLevel') || parts(json.decoder).some((p) => p.type === 'ByteLevel');
  const spm = !byteLevel && (model.byte_fallback === true || spmAddsSpacePrefix(json) || Object.keys(model.vocab).some((p) => p.startsWith('\u2581')));
  if (!byteLevel && !spm) throw new EngineError('E_UNSUPPORTED', 'tokenizer.json: a BPE vocabulary that is neither byte-level nor SentencePiece-style has no GGUF equivalent; export to hf instead');
  const unkId = typeof model.unk_token === 'string' && typeof model.vocab[model.unk_token] === 'number' ? (model.vocab[model.unk_token] as number) : undefined;
  if (unkId !== undefined && types[unkId] !== PieceType.UNUSED) types[unkId] = PieceType.UNKNOWN;
  // BOS/EOS and add_bos exactly as Tailor's tokenizer.json tokenizer reads them (config, then template)
  const lib = new LibraryTokenizer({ kind: 'hf-json', json, config });
  const common = {
    tokens: tokens.map((t, i) => t ?? `[PAD${i}]`),
    bosId: lib.bosId,
    eosId: lib.eosId,
    unkId,
    addBos: lib.addBos,
  };
  if (lib.bosId >= 0) types[lib.bosId] = PieceType.CONTROL;
  if (lib.eosId >= 0) types[lib.eosId] = PieceType.CONTROL;
  if (byteLevel) {
    return { ...common, model: 'gpt2', scores: tokens.map(() => 0), tokenTypes: types, merges: merges.map(([l, r]) => `${l} ${r}`), pre: preTokenizerName(json.pre_tokenizer) };
  }
  // SentencePiece-style: llama.cpp merges the adjacent pair whose concatenation scores highest
  const scores = new Array<number>(n).fill(Number.NaN);
  const vocab = model.vocab as Record<string, number>;
  merges.forEach(([l, r], rank) => {
    const id = vocab[l + r];
    if (id !== undefined && Number.isNaN(scores[id])) scores[id] = -rank;
  });
  for (let id = 0; id < n; id++) {
    if (model.byte_fallback === true && types[id] === PieceType.NORMAL && parseBytePiece(common.tokens[id]) >= 0) types[id] = PieceType.BYTE;
    if (Number.isNaN(scores[id])) scores[id] = types[id] === PieceType.NORMAL ? -(merges.length + id) : 0;
  }
  return { ...common, model: 'llama', scores, tokenTypes: types, addSpacePrefix: spmAddsSpacePrefix(json) };
}

/** Pads a vocabulary to the model's embedding rows with unused `[PADn]` tokens (models often round it up). */
function padTo(v: GgufTokenizerMeta, n: number, src: string): GgufTokenizerMeta {
  if (v.tokens.length === n) return v;
  if (v.tokens.length > n) throw new EngineError('E_SHAPE', `the tokenizer of ${src} has ${v.tokens.length} tokens, the model only ${n} embedding rows`);
  const k = n - v.tokens.length;
  const pad = Array.from({ length: k }, (_, i) => `[PAD${v.tokens.length + i}]`);
  return { ...v, tokens: [...v.tokens, ...pad], scores: [...v.scores, ...pad.map(() => 0)], tokenTypes: [...v.tokenTypes, ...pad.map(() => PieceType.UNUSED)] };
}

function readJsonFile(file: string): Json {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    if (!isObject(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new EngineError('E_FORMAT', `cannot read ${file}: ${(e as Error).message}`);
  }
}

/** The vocabulary of a loaded model for embedding in GGUF: its own GGUF metadata, else the SentencePiece
 *  model beside it, else its tokenizer.json (BPE). */
export function ggufVocabFor(model: Model): GgufTokenizerMeta {
  const src = model.info.path;
  const n = model.info.vocabSize;
  if (model.info.format === 'gguf') {
    const m = model.metadata();
    const arr = (k: string) => (Array.isArray(m[k]) ? (m[k] as unknown[]) : undefined);
    const tokens = arr('tokenizer.ggml.tokens');
    if (!tokens) throw new EngineError('E_NO_TOKENIZER', `${src} has no embedded vocabulary to carry over`);
    const unk = m['tokenizer.ggml.unknown_token_id'];
    return padTo({
      model: m['tokenizer.ggml.model'] === 'gpt2' ? 'gpt2' : 'llama',
      tokens: tokens.map(String),
      scores: (arr('tokenizer.ggml.scores') ?? tokens.map(() => 0)).map(Number),
      tokenTypes: (arr('tokenizer.ggml.token_type') ?? tokens.map(() => 1)).map(Number),
      merges: arr('tokenizer.ggml.merges')?.map(String),
      pre: typeof m['tokenizer.ggml.pre'] === 'string' ? m['tokenizer.ggml.pre'] : undefined,
      bosId: Number(m['tokenizer.ggml.bos_token_id'] ?? model.info.bosId),
      eosId: Number(m['tokenizer.ggml.eos_token_id'] ?? model.info.eosId),
      unkId: unk !== undefined ? Number(unk) : undefined,
      addBos: m['tokenizer.ggml.add_bos_token'] !== false,
      addSpacePrefix: m['tokenizer.ggml.add_space_prefix'] !== false,
    }, n, src);
  }
  const dir = fs.statSync(src).isDirectory() ? src : path.dirname(src);
  const spm = ['tokenizer.model', ...fs.readdirSync(dir).filter((f) => /^tok.*\.model$/.test(f)).sort()].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (spm) {
    const buf = fs.readFileSync(spm);
    return padTo(ggufVocabFromSentencePiece(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), model.tokenizer?.addBos ?? true), n, src);
  }
  const tj = path.join(dir, 'tokenizer.json');
  if (fs.existsSync(tj)) {
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    return padTo(ggufVocabFromTokenizerJson(readJsonFile(tj), fs.existsSync(cfgFile) ? readJsonFile(cfgFile) : {}), n, src);
  }
  throw new EngineError('E_NO_TOKENIZER', `no tokenizer.model or tokenizer.json beside ${src} to embed in the GGUF`);
}
