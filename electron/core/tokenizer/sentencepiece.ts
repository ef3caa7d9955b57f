// SentencePiece tokenizer built from a parsed ModelProto (tokenizer.model): normalization, then BPE
// (merge by piece score, Llama 2 style, with <0xXX> byte fallback), Unigram (Viterbi), WORD or CHAR
// segmentation, matching the official library's ids. Also used, with a synthetic ModelProto, for GGUF
// 'llama' vocabularies (gguf-vocab.ts).

import * as fs from 'node:fs/promises';
import { TokenizerError } from './errors.js';
import { DecodeKind, PieceTokenizerBase, type PieceTable } from './piece-base.js';
import { ModelType, PieceType, parseModelProto, type ModelProto, type NormalizerSpec } from './proto.js';
import {
  SegmentCache,
  mergeByScore,
  piecesCrossSpace,
  splitBeforeSpaces,
  viterbiUnigram,
  type MergeVocab,
  type UnigramVocab,
} from './segment.js';
import { parseBytePiece, utf8Encode } from './utf8.js';

/** U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's escaped space */
export const SPACE_SYMBOL = '\u2581';

export interface SentencePieceOptions {
  /** reported kind (default 'sentencepiece'; gguf-vocab.ts passes 'gguf-llama') */
  kind?: 'sentencepiece' | 'gguf-llama';
  /** the model's BOS convention (default: true when there is a BOS piece, as for LLaMA) */
  addBos?: boolean;
  /** override the trainer spec's BOS / EOS ids (-1 for none) */
  bosId?: number;
  eosId?: number;
  /** reject duplicate pieces like the C++ loader does (default true; GGUF vocabularies keep the first) */
  strict?: boolean;
}

// The "nmt" part of nmt_nfkc: whitespace-like code points → space, ASCII/C1 controls removed
// (sentencepiece builder.cc, MergeNmtMap).
const NMT_TO_SPACE = new Set([
  0x09, 0x0a, 0x0c, 0x0d, 0x1680, 0x200b, 0x200c, 0x200e, 0x200f, 0x2028, 0x2029, 0x2581, 0xfeff, 0xfffd,
]);
function nmtRemoved(cp: number): boolean {
  return (cp >= 0x01 && cp <= 0x08) || cp === 0x0b || (cp >= 0x0e && cp <= 0x1f) || cp === 0x7f || cp === 0x8f || cp === 0x9f;
}

/**
 * Text normalization as SentencePiece's Normalizer does it. The precompiled charsmap is NOT interpreted:
 * for normalizer names containing "nfkc" we approximate it with String.prototype.normalize('NFKC') (plus the
 * nmt whitespace/control rules for "nmt_*" and toLowerCase for "*_cf"); "identity" (Llama 2, tok512) is
 * exact. Then: remove_extra_whitespaces (drop leading/trailing spaces, collapse runs of U+0020), the dummy
 * prefix (or suffix when treat_whitespace_as_suffix) and escape_whitespaces (' ' → '▁').
 */
export function normalizeText(text: string, spec: NormalizerSpec, treatWhitespaceAsSuffix = false): string {
  if (text.length === 0) return '';
  const name = spec.name.toLowerCase();
  let t = text;
  if (name.includes('nfkc')) {
    if (name.startsWith('nmt')) {
      let mapped = '';
      for (const ch of t) {
        const cp = ch.codePointAt(0) as number;
        if (NMT_TO_SPACE.has(cp)) mapped += ' ';
        else if (!nmtRemoved(cp)) mapped += ch;
      }
      t = mapped;
    }
    t = t.normalize('NFKC');
    if (name.endsWith('_cf')) t = t.toLowerCase();
  }
  const removeExtra = spec.removeExtraWhitespaces;
  const space = spec.escapeWhitespaces ? SPACE_SYMBOL : ' ';
  let i = 0;
  if (removeExtra) while (i < t.length && t.charCodeAt(i) === 0x20) i++;
  if (i >= t.length) return '';
  const parts: string[] = [];
  if (spec.addDummyPrefix && !treatWhitespaceAsSuffix) parts.push(space);
  let isPrevSpace = removeExtra;
  let runStart = i;
  // copy runs of non-space text in one go; handle spaces one by one
  for (; i < t.length; i++) {
    if (t.charCodeAt(i) !== 0x20) {
      isPrevSpace = false;
      continue;
    }
    if (runStart < i) parts.push(t.slice(runStart, i));
    runStart = i + 1;
    if (!(isPrevSpace && removeExtra)) parts.push(space);
    isPrevSpace = removeExtra;
  }
  if (runStart < t.length) parts.push(t.slice(runStart));
  let out = parts.join('');
  if (removeExtra) {
    let end = out.length;
    while (end >= space.length && out.endsWith(space, end)) end -= space.length;
    out = out.slice(0, end);
  }
  if (treatWhitespaceAsSuffix && spec.addDummyPrefix && out.length > 0) out += space;
  return out;
}

function decodeTableFor(model: ModelProto): PieceTable {
  const { pieces, normalizerSpec, trainerSpec } = model;
  const n = pieces.length;
  const kinds = new Uint8Array(n);
  const bytes: Uint8Array[] = new Array(n);
  const unkSurface = utf8Encode(trainerSpec.unkSurface);
  const unescape = normalizerSpec.escapeWhitespaces;
  for (let id = 0; id < n; id++) {
    const { piece, type } = pieces[id];
    if (type === PieceType.CONTROL) {
      kinds[id] = DecodeKind.Skip;
      bytes[id] = new Uint8Array(0);
    } else if (type === PieceType.UNKNOWN) {
      kinds[id] = DecodeKind.Literal;
      bytes[id] = unkSurface;
    } else if (type === PieceType.BYTE && parseBytePiece(piece) >= 0) {
      kinds[id] = DecodeKind.Byte;
      bytes[id] = Uint8Array.of(parseBytePiece(piece));
    } else {
      kinds[id] = DecodeKind.Text;
      bytes[id] = utf8Encode(unescape ? piece.replaceAll(SPACE_SYMBOL, ' ') : piece);
    }
  }
  return { pieces: pieces.map((p) => p.piece), kinds, bytes };
}

export class SentencePieceTokenizer extends PieceTokenizerBase {
  /** TrainerSpec.ModelType of the model (1 Unigram, 2 BPE, 3 Word, 4 Char) */
  readonly modelType: number;
  readonly normalizerSpec: NormalizerSpec;
  private readonly treatWsAsSuffix: boolean;
  private readonly space: string;
  /** CONTROL / UNKNOWN / BYTE pieces (looked up first, never produced by merges) */
  private readonly reserved = new Map<string, number>();
  /** NORMAL / USER_DEFINED / UNUSED pieces */
  private readonly normal = new Map<string, number>();
  private readonly unkId: number;
  private readonly byteFallback: boolean;
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** user-defined pieces by first UTF-16 unit, longest first */
  private readonly userDefined = new Map<string, string[]>();
  private readonly mergeVocab: MergeVocab | null = null;
  private readonly unigramVocab: UnigramVocab | null = null;
  private readonly canSplit: boolean;
  private readonly cache = new SegmentCache();

  constructor(model: ModelProto, opts: SentencePieceOptions = {}) {
    const { trainerSpec, normalizerSpec, pieces } = model;
    const inRange = (id: number): number => (id >= 0 && id < pieces.length ? id : -1);
    const bosId = opts.bosId ?? inRange(trainerSpec.bosId);
    super({
      kind: opts.kind ?? 'sentencepiece',
      table: decodeTableFor(model),
      bosId,
      eosId: opts.eosId ?? inRange(trainerSpec.eosId),
      addBos: opts.addBos ?? bosId >= 0,
      stripLeadingSpace:
        !trainerSpec.treatWhitespaceAsSuffix && (normalizerSpec.addDummyPrefix || normalizerSpec.removeExtraWhitespaces),
      // current sentencepiece: with remove_extra_whitespaces every leading ▁ goes while the text is empty,
      // otherwise only the first one (llama.cpp, which never removes whitespace, does the same)
      stripMode: normalizerSpec.removeExtraWhitespaces ? 'while-empty' : 'first',
    });
    this.modelType = trainerSpec.modelType;
    this.normalizerSpec = normalizerSpec;
    this.treatWsAsSuffix = trainerSpec.treatWhitespaceAsSuffix;
    this.space = normalizerSpec.escapeWhitespaces ? SPACE_SYMBOL : ' ';
    const strict = opts.strict ?? true;

    const scores = new Float32Array(pieces.length);
    let unused: Uint8Array | null = null;
    let unkId = -1;
    let minNormal = Infinity;
    let maxNormal = -Infinity;
    for (let id = 0; id < pieces.length; id++) {
      const { piece, score, type } = pieces[id];
      if (piece.length === 0) throw new TokenizerError('E_FORMAT', `piece ${id} is empty`);
      scores[id] = score;
      const isReserved = type === PieceType.CONTROL || type === PieceType.UNKNOWN || type === PieceType.BYTE;
      const map = isReserved ? this.reserved : this.normal;
      if (map.has(piece)) {
        if (strict) throw new TokenizerError('E_FORMAT', `piece ${JSON.stringify(piece)} is defined twice (ids ${map.get(piece)} and ${id})`);
        continue;
      }
      map.set(piece, id);
      if (type === PieceType.UNKNOWN && unkId < 0) unkId = id;
      if (type === PieceType.BYTE) {
        const b = parseBytePiece(piece);
        if (b >= 0 && this.byteIds[b] < 0) this.byteIds[b] = id;
      }
      if (type === PieceType.UNUSED) (unused ??= new Uint8Array(pieces.length))[id] = 1;
      if (type === PieceType.USER_DEFINED) {
        const list = this.userDefined.get(piece[0]) ?? [];
        list.push(piece);
        this.userDefined.set(piece[0], list);
      }
      if (type === PieceType.NORMAL || !(type >= 1 && type <= 6)) {
        minNormal = Math.min(minNormal, score);
        maxNormal = Math.max(maxNormal, score);
      }
    }
    for (const list of this.userDefined.values()) list.sort((a, b) => b.length - a.length);
    const declaredUnk = trainerSpec.unkId;
    this.unkId = declaredUnk >= 0 && declaredUnk < pieces.length ? declaredUnk : unkId;
    this.byteFallback = trainerSpec.byteFallback;

    switch (this.modelType) {
      case ModelType.BPE:
        this.mergeVocab = { mergeable: this.normal, scores, unused };
        break;
      case ModelType.UNIGRAM: {
        const lattice = new Map<string, number>();
        const latticeScores = new Float32Array(pieces.length);
        let maxLen = 1;
        for (const [piece, id] of this.normal) {
          if (unused !== null && unused[id] === 1) continue;
          lattice.set(piece, id);
          maxLen = Math.max(maxLen, piece.length);
          latticeScores[id] =
            pieces[id].type === PieceType.USER_DEFINED
              ? Math.fround(utf8Encode(piece).length * maxNormal - 0.1)
              : scores[id];
        }
        this.unigramVocab = {
          pieces: lattice,
          scores: latticeScores,
          maxPieceLength: maxLen,
          unkId: this.unkId,
          unkScore: Math.fround((Number.isFinite(minNormal) ? minNormal : 0) - 10),
        };
        break;
      }
      case ModelType.WORD:
      case ModelType.CHAR:
        break;
      default:
        throw new TokenizerError('E_UNSUPPORTED', `SentencePiece model_type ${this.modelType} is not supported`);
    }
    this.canSplit = !this.treatWsAsSuffix && !piecesCrossSpace(this.normal.keys(), this.space);
  }

  static fromBuffer(buf: Uint8Array, opts?: SentencePieceOptions): SentencePieceTokenizer {
    return new SentencePieceTokenizer(parseModelProto(buf), opts);
  }

  static async load(path: string, opts?: SentencePieceOptions): Promise<SentencePieceTokenizer> {
    let buf: Uint8Array;
    try {
      buf = await fs.readFile(path);
    } catch (err) {
      throw new TokenizerError('E_IO', `cannot read SentencePiece model ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      return SentencePieceTokenizer.fromBuffer(buf, opts);
    } catch (err) {
      if (err instanceof TokenizerError) {
        throw new TokenizerError(err.code, `${path}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /** The normalized text the segmenter sees (spaces as ▁, dummy prefix added). */
  normalize(text: string): string {
    return normalizeText(text, this.normalizerSpec, this.treatWsAsSuffix);
  }

  protected encodeText(text: string): number[] {
    const norm = this.normalize(text);
    if (norm.length === 0) return [];
    const ids: number[] = [];
    if (this.modelType === ModelType.WORD) {
      for (const w of splitBeforeSpaces(norm, this.space)) this.pushPiece(w, this.lookup(w), ids);
    } else {
      const segments = this.canSplit ? splitBeforeSpaces(norm, this.space) : [norm];
      this.cache.encodeInto(segments, (seg) => this.encodeSegment(seg), ids);
    }
    if (this.byteFallback || this.unkId < 0) return ids;
    // without byte fallback, runs of unknown pieces become one <unk> (as SentencePiece does)
    const out: number[] = [];
    for (const id of ids) if (!(id === this.unkId && out.length > 0 && out[out.length - 1] === this.unkId)) out.push(id);
    return out;
  }

  private lookup(piece: string): number {
    return this.reserved.get(piece) ?? this.normal.get(piece) ?? this.unkId;
  }

  /** Emits the id of a final piece, or its bytes when it is unknown and byte fallback is on. */
  private pushPiece(piece: string, id: number, out: number[]): void {
    if (id === this.unkId && this.byteFallback) {
      for (const b of utf8Encode(piece)) {
        const bid = this.byteIds[b];
        if (bid >= 0) out.push(bid);
        else if (this.unkId >= 0) out.push(this.unkId);
      }
    } else if (id >= 0) out.push(id);
  }

  /** Initial symbols: one per code point, user-defined pieces kept whole (and frozen). */
  private initialSymbols(seg: string): { symbols: string[]; frozen: Uint8Array | null } {
    const symbols: string[] = [];
    const frozenList: number[] = [];
    for (let i = 0; i < seg.length; ) {
      const cands = this.userDefined.size > 0 ? this.userDefined.get(seg[i]) : undefined;
      const hit = cands?.find((c) => seg.startsWith(c, i));
      if (hit !== undefined) {
        frozenList.push(symbols.length);
        symbols.push(hit);
        i += hit.length;
        continue;
      }
      const c = seg.charCodeAt(i);
      const len = c >= 0xd800 && c <= 0xdbff && i + 1 < seg.length ? 2 : 1;
      symbols.push(seg.slice(i, i + len));
      i += len;
    }
    let frozen: Uint8Array | null = null;
    if (frozenList.length > 0) {
      frozen = new Uint8Array(symbols.length);
      for (const f of frozenList) frozen[f] = 1;
    }
    return { symbols, frozen };
  }

  private encodeSegment(seg: string): number[] {
    const out: number[] = [];
    if (this.mergeVocab !== null) {
      const { symbols, frozen } = this.initialSymbols(seg);
      for (const piece of mergeByScore(symbols, frozen, this.mergeVocab)) this.pushPiece(piece, this.lookup(piece), out);
    } else if (this.unigramVocab !== null) {
      for (const [piece, id] of viterbiUnigram(seg, this.unigramVocab)) this.pushPiece(piece, id, out);
    } else {
      // CHAR
      for (const piece of this.initialSymbols(seg).symbols) this.pushPiece(piece, this.lookup(piece), out);
    }
    return out;
  }
}
