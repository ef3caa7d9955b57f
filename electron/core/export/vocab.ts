// vocab.ts — the vocabulary a GGUF export embeds, from what the model ships: its own GGUF metadata or a
// SentencePiece tokenizer.model (GGUF 'llama': pieces, scores, types), padded to the model's embedding rows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import type { GgufTokenizerMeta } from '../formats/gguf-write.js';
import { parseModelProto, PieceType } from '../tokenizer/proto.js';

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

/** Pads a vocabulary to the model's embedding rows with unused `[PADn]` tokens (models often round it up). */
function padTo(v: GgufTokenizerMeta, n: number, src: string): GgufTokenizerMeta {
  if (v.tokens.length === n) return v;
  if (v.tokens.length > n) throw new EngineError('E_SHAPE', `the tokenizer of ${src} has ${v.tokens.length} tokens, the model only ${n} embedding rows`);
  const k = n - v.tokens.length;
  const pad = Array.from({ length: k }, (_, i) => `[PAD${v.tokens.length + i}]`);
  return { ...v, tokens: [...v.tokens, ...pad], scores: [...v.scores, ...pad.map(() => 0)], tokenTypes: [...v.tokenTypes, ...pad.map(() => PieceType.UNUSED)] };
}

/** The vocabulary of a loaded model for embedding in GGUF: its own GGUF metadata, else the SentencePiece
 *  model beside it. */
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
  throw new EngineError('E_NO_TOKENIZER', `no SentencePiece tokenizer.model beside ${src} to embed in the GGUF (tokenizer.json-only models: export to hf instead)`);
}
