// llama2.c tokenizer (`tokenizer.bin`, `tok512.bin`): the file format (int32 max_token_length, then per
// token float32 score, int32 byte length, bytes; pieces store spaces, not '▁') and run.c's encode():
// a " " dummy prefix token, one token per UTF-8 character (else its bytes as <0xXX> = byte + 3), then
// repeatedly merge the best-scoring adjacent pair. Unlike SentencePiece it never collapses whitespace.

import * as fs from 'node:fs/promises';
import { TokenizerError } from './errors.js';
import { DecodeKind, PieceTokenizerBase } from './piece-base.js';
import { SegmentCache, mergeByScore, piecesCrossSpace, splitBeforeSpaces, type MergeVocab } from './segment.js';
import { bytesToBinary, parseBytePiece, utf8DecodeLossy, utf8Encode } from './utf8.js';

export interface Llama2cVocab {
  maxTokenLength: number;
  /** raw bytes of each piece */
  pieces: Uint8Array[];
  scores: Float32Array;
}

/** Longest piece we accept; llama2.c vocabularies have pieces of a few dozen bytes. */
const MAX_PIECE_BYTES = 1 << 16;

/**
 * Parses a llama2.c tokenizer file. The format does not store the vocabulary size: without `vocabSize` all
 * records up to the end are read (a partial record at the end is an error); with it exactly that many.
 */
export function parseLlama2cTokenizer(buf: Uint8Array, vocabSize?: number): Llama2cVocab {
  const fail = (msg: string): never => {
    throw new TokenizerError('E_FORMAT', 'malformed llama2.c tokenizer: ' + msg);
  };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 4) fail('shorter than its 4-byte header');
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > MAX_PIECE_BYTES) fail(`max_token_length ${maxTokenLength} is implausible`);
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let pos = 4;
  while (vocabSize === undefined ? pos < buf.length : pieces.length < vocabSize) {
    const i = pieces.length;
    if (buf.length - pos < 8) fail(`token ${i} is truncated at byte ${pos} (file has ${buf.length} bytes)`);
    const score = view.getFloat32(pos, true);
    const len = view.getInt32(pos + 4, true);
    pos += 8;
    if (len < 0 || len > MAX_PIECE_BYTES) fail(`token ${i} has length ${len}`);
    if (buf.length - pos < len) fail(`token ${i} needs ${len} bytes at byte ${pos}, file has ${buf.length - pos} left`);
    pieces.push(buf.slice(pos, pos + len));
    scores.push(score);
    pos += len;
  }
  if (pieces.length === 0) fail('no tokens');
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

export interface Llama2cOptions {
  /** read exactly this many tokens (the model's vocab_size) */
  vocabSize?: number;
}

export class Llama2cTokenizer extends PieceTokenizerBase {
  readonly maxTokenLength: number;
  /** binary string (one char per byte) → id; the first of duplicates wins */
  private readonly lookupMap = new Map<string, number>();
  private readonly mergeVocab: MergeVocab;
  /** symbol used for a byte with no character token: the piece of id byte + 3 (null past the vocab) */
  private readonly byteSymbols: Array<string | null> = new Array(256).fill(null);
  private readonly dummyPrefix: string | null;
  private readonly canSplit: boolean;
  private readonly cache = new SegmentCache();

  constructor(vocab: Llama2cVocab) {
    const n = vocab.pieces.length;
    const kinds = new Uint8Array(n);
    const bytes: Uint8Array[] = new Array(n);
    const names: string[] = new Array(n);
    for (let id = 0; id < n; id++) {
      const raw = vocab.pieces[id];
      const name = utf8DecodeLossy(raw);
      names[id] = name;
      const b = parseBytePiece(name);
      if (id === 1 || id === 2) {
        kinds[id] = DecodeKind.Skip; // run.c hard-codes BOS = 1, EOS = 2
        bytes[id] = new Uint8Array(0);
      } else if (b >= 0) {
        kinds[id] = DecodeKind.Byte;
        bytes[id] = Uint8Array.of(b);
      } else {
        kinds[id] = id === 0 ? DecodeKind.Literal : DecodeKind.Text; // <unk> printed as is, like run.c
        bytes[id] = raw;
      }
    }
    super({
      kind: 'llama2c',
      table: { pieces: names, kinds, bytes },
      bosId: n > 1 ? 1 : -1,
      eosId: n > 2 ? 2 : -1,
      addBos: true,
      stripLeadingSpace: true,
    });
    this.maxTokenLength = vocab.maxTokenLength;
    for (let id = 0; id < n; id++) {
      const key = bytesToBinary(vocab.pieces[id]);
      if (!this.lookupMap.has(key)) this.lookupMap.set(key, id);
    }
    // run.c merges through any vocab entry whose score beats its initial best of -1e10
    this.mergeVocab = { mergeable: this.lookupMap, scores: vocab.scores, minScore: -1e10 };
    for (let b = 0; b < 256 && b + 3 < n; b++) this.byteSymbols[b] = bytesToBinary(vocab.pieces[b + 3]);
    this.dummyPrefix = this.lookupMap.has(' ') ? ' ' : null;
    this.canSplit = !piecesCrossSpace(this.lookupMap.keys(), ' ');
  }

  static fromBuffer(buf: Uint8Array, opts: Llama2cOptions = {}): Llama2cTokenizer {
    return new Llama2cTokenizer(parseLlama2cTokenizer(buf, opts.vocabSize));
  }

  static async load(path: string, opts: Llama2cOptions = {}): Promise<Llama2cTokenizer> {
    let buf: Uint8Array;
    try {
      buf = await fs.readFile(path);
    } catch (err) {
      throw new TokenizerError('E_IO', `cannot read llama2.c tokenizer ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return Llama2cTokenizer.fromBuffer(buf, opts);
    } catch (err) {
      if (err instanceof TokenizerError) throw new TokenizerError(err.code, `${path}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  protected encodeText(text: string): number[] {
    if (text.length === 0) return [];
    // Work on bytes as a binary string so lookups are byte-exact, as in C.
    const src = bytesToBinary(utf8Encode(text));
    const full = this.dummyPrefix !== null ? this.dummyPrefix + src : src;
    const segments = this.canSplit ? splitBeforeSpaces(full, ' ') : [full];
    const ids: number[] = [];
    this.cache.encodeInto(segments, (seg) => this.encodeSegment(seg), ids);
    return ids;
  }

  /** run.c's character loop: a UTF-8 character (lead byte + up to 3 continuation bytes) per token. */
  private initialSymbols(seg: string): string[] {
    const symbols: string[] = [];
    let start = 0;
    for (let i = 0; i < seg.length; i++) {
      const c = seg.charCodeAt(i);
      if ((c & 0xc0) !== 0x80) start = i;
      const next = i + 1 < seg.length ? seg.charCodeAt(i + 1) : 0;
      if ((next & 0xc0) === 0x80 && i + 1 - start < 4) continue;
      const ch = seg.slice(start, i + 1);
      if (this.lookupMap.has(ch)) symbols.push(ch);
      else {
        // byte fallback: run.c emits byte + 3 (the <0xXX> pieces follow <unk>, <s>, </s>)
        for (let k = 0; k < ch.length; k++) {
          const sym = this.byteSymbols[ch.charCodeAt(k)];
          if (sym !== null) symbols.push(sym);
        }
      }
      start = i + 1;
    }
    return symbols;
  }

  private encodeSegment(seg: string): number[] {
    const out: number[] = [];
    // every symbol is a vocab entry (a character token, a byte token, or a merge result)
    for (const piece of mergeByScore(this.initialSymbols(seg), null, this.mergeVocab)) {
      const id = this.lookupMap.get(piece);
      if (id !== undefined) out.push(id);
    }
    return out;
  }
}
