// Segmentation engines shared by the SentencePiece, GGUF-'llama' and llama2.c tokenizers:
// - mergeByScore: SentencePiece-style BPE (repeatedly merge the adjacent pair whose concatenation is a vocab
//   piece with the highest score, leftmost on ties) with a binary heap and a linked list, O(n log n);
// - viterbiUnigram: SentencePiece's Unigram best path;
// - splitBeforeSpaces / SegmentCache: an exact speed-up — when no vocab piece contains "X<space>" with X not a
//   space, no merge (or lattice node) can cross the boundary in front of such a space, so the text can be cut
//   there, the parts encoded independently (giving the same result as the whole) and their results cached.

/** A binary max-heap of candidate pairs ordered by (score desc, left asc), in parallel typed arrays. */
class PairHeap {
  private score: Float64Array;
  private left: Int32Array;
  private right: Int32Array;
  private len: Int32Array;
  size = 0;

  constructor(capacity: number) {
    const c = Math.max(16, capacity);
    this.score = new Float64Array(c);
    this.left = new Int32Array(c);
    this.right = new Int32Array(c);
    this.len = new Int32Array(c);
  }

  private before(i: number, j: number): boolean {
    const a = this.score[i];
    const b = this.score[j];
    return a > b || (a === b && this.left[i] < this.left[j]);
  }

  private swap(i: number, j: number): void {
    const s = this.score[i]; this.score[i] = this.score[j]; this.score[j] = s;
    const l = this.left[i]; this.left[i] = this.left[j]; this.left[j] = l;
    const r = this.right[i]; this.right[i] = this.right[j]; this.right[j] = r;
    const n = this.len[i]; this.len[i] = this.len[j]; this.len[j] = n;
  }

  private grow(): void {
    const c = this.score.length * 2;
    const s = new Float64Array(c); s.set(this.score); this.score = s;
    const l = new Int32Array(c); l.set(this.left); this.left = l;
    const r = new Int32Array(c); r.set(this.right); this.right = r;
    const n = new Int32Array(c); n.set(this.len); this.len = n;
  }

  push(score: number, left: number, right: number, len: number): void {
    if (this.size === this.score.length) this.grow();
    let i = this.size++;
    this.score[i] = score; this.left[i] = left; this.right[i] = right; this.len[i] = len;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Pops the top into out[0..2] = [left, right, len]. */
  pop(out: Int32Array): void {
    out[0] = this.left[0]; out[1] = this.right[0]; out[2] = this.len[0];
    const last = --this.size;
    if (last > 0) {
      this.score[0] = this.score[last]; this.left[0] = this.left[last];
      this.right[0] = this.right[last]; this.len[0] = this.len[last];
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= last) break;
        const r = l + 1;
        const c = r < last && this.before(r, l) ? r : l;
        if (!this.before(c, i)) break;
        this.swap(c, i);
        i = c;
      }
    }
  }
}

export interface MergeVocab {
  /** piece → id for the pieces a merge may produce */
  readonly mergeable: Map<string, number>;
  readonly scores: ArrayLike<number>;
  /** merges whose piece scores <= this are ignored (llama2.c: -1e10); default -Infinity */
  readonly minScore?: number;
  /** ids of UNUSED pieces: merged through, then split back (SentencePiece's resegmentation) */
  readonly unused?: Uint8Array | null;
}

/**
 * BPE by score over `symbols` (the initial pieces, e.g. one per character). `frozen[i]` marks symbols that
 * never merge (user-defined pieces). Returns the final pieces, with merges into UNUSED pieces undone.
 */
export function mergeByScore(symbols: string[], frozen: Uint8Array | null, vocab: MergeVocab): string[] {
  const n = symbols.length;
  if (n < 2) return symbols.slice();
  const sym = symbols.slice();
  const prev = new Int32Array(n);
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  const { mergeable, scores } = vocab;
  const minScore = vocab.minScore ?? -Infinity;
  const unused = vocab.unused ?? null;
  let revMerge: Map<string, [string, string]> | null = null;
  const heap = new PairHeap(2 * n);

  const tryAdd = (l: number, r: number): void => {
    if (l < 0 || r < 0) return;
    if (frozen !== null && (frozen[l] === 1 || frozen[r] === 1)) return;
    const a = sym[l];
    const b = sym[r];
    const piece = a + b;
    const id = mergeable.get(piece);
    if (id === undefined) return;
    const score = scores[id];
    if (!(score > minScore)) return;
    heap.push(score, l, r, piece.length);
    if (unused !== null && unused[id] === 1) {
      if (revMerge === null) revMerge = new Map();
      revMerge.set(piece, [a, b]);
    }
  };

  for (let i = 1; i < n; i++) tryAdd(i - 1, i);
  const top = new Int32Array(3);
  while (heap.size > 0) {
    heap.pop(top);
    const l = top[0];
    const r = top[1];
    const a = sym[l];
    const b = sym[r];
    // stale entry: one side was merged away or grew since the pair was queued
    if (a === '' || b === '' || next[l] !== r || a.length + b.length !== top[2]) continue;
    sym[l] = a + b;
    sym[r] = '';
    const nr = next[r];
    next[l] = nr;
    if (nr >= 0) prev[nr] = l;
    tryAdd(prev[l], l);
    tryAdd(l, nr);
  }

  const out: string[] = [];
  const rm = revMerge as Map<string, [string, string]> | null;
  const emit = (piece: string, depth: number): void => {
    if (rm !== null && unused !== null && depth < 64) {
      const id = mergeable.get(piece);
      const parts = id !== undefined && unused[id] === 1 ? rm.get(piece) : undefined;
      if (parts !== undefined) {
        emit(parts[0], depth + 1);
        emit(parts[1], depth + 1);
        return;
      }
    }
    out.push(piece);
  };
  for (let i = 0; i !== -1; i = next[i]) emit(sym[i], 0);
  return out;
}

export interface UnigramVocab {
  /** piece → id for NORMAL and USER_DEFINED pieces (UNUSED pieces left out) */
  readonly pieces: Map<string, number>;
  /** lattice score of each id (already adjusted for user-defined pieces) */
  readonly scores: ArrayLike<number>;
  /** longest piece, in UTF-16 code units */
  readonly maxPieceLength: number;
  readonly unkId: number;
  /** score of an unknown character (SentencePiece: min normal score - 10) */
  readonly unkScore: number;
}

/**
 * SentencePiece Unigram Viterbi over `text`: returns [piece, id] pairs; characters no piece covers come out
 * as single-character pieces with id = unkId. Path scores are accumulated in float32 like the C++ code.
 */
export function viterbiUnigram(text: string, vocab: UnigramVocab): Array<[string, number]> {
  // code point start offsets
  const starts: number[] = [];
  for (let i = 0; i < text.length; ) {
    starts.push(i);
    const c = text.charCodeAt(i);
    i += c >= 0xd800 && c <= 0xdbff && i + 1 < text.length ? 2 : 1;
  }
  const n = starts.length;
  starts.push(text.length);
  const bestScore = new Float64Array(n + 1);
  const bestFrom = new Int32Array(n + 1).fill(-1);
  const bestId = new Int32Array(n + 1).fill(-1);
  const { pieces, scores, maxPieceLength, unkId, unkScore } = vocab;
  for (let s = 0; s < n; s++) {
    if (s > 0 && bestFrom[s] === -1) continue; // unreachable (cannot happen: unk nodes cover every char)
    const base = bestScore[s];
    let hasSingle = false;
    for (let e = s + 1; e <= n && starts[e] - starts[s] <= maxPieceLength; e++) {
      const id = pieces.get(text.slice(starts[s], starts[e]));
      if (id === undefined) continue;
      const cand = Math.fround(base + scores[id]);
      if (bestFrom[e] === -1 || cand > bestScore[e]) {
        bestScore[e] = cand;
        bestFrom[e] = s;
        bestId[e] = id;
      }
      if (e === s + 1) hasSingle = true;
    }
    if (!hasSingle) {
      const cand = Math.fround(base + unkScore);
      if (bestFrom[s + 1] === -1 || cand > bestScore[s + 1]) {
        bestScore[s + 1] = cand;
        bestFrom[s + 1] = s;
        bestId[s + 1] = unkId;
      }
    }
  }
  const out: Array<[string, number]> = [];
  for (let e = n; e > 0; e = bestFrom[e]) out.push([text.slice(starts[bestFrom[e]], starts[e]), bestId[e]]);
  return out.reverse();
}

/** True when some piece has `space` right after a character that is not `space` (then cutting is unsafe). */
export function piecesCrossSpace(pieces: Iterable<string>, space: string): boolean {
  for (const p of pieces) {
    for (let i = p.indexOf(space, 1); i > 0; i = p.indexOf(space, i + 1)) {
      if (p[i - 1] !== space) return true;
    }
  }
  return false;
}

/** Cuts `text` in front of every `space` that follows a non-space character. */
export function splitBeforeSpaces(text: string, space: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = text.indexOf(space, 1); i > 0; i = text.indexOf(space, i + 1)) {
    if (text[i - 1] !== space) {
      out.push(text.slice(start, i));
      start = i;
    }
  }
  out.push(text.slice(start));
  return out;
}

/** A bounded memo of segment → ids (cleared when full; segments are short, so the cap is generous). */
export class SegmentCache {
  private readonly map = new Map<string, number[]>();

  constructor(private readonly maxEntries = 100_000, private readonly maxKeyLength = 256) {}

  get(key: string): number[] | undefined {
    return this.map.get(key);
  }

  set(key: string, ids: number[]): void {
    if (key.length > this.maxKeyLength) return;
    if (this.map.size >= this.maxEntries) this.map.clear();
    this.map.set(key, ids);
  }

  /** Appends the ids of every segment to `out`, encoding each through the memo. */
  encodeInto(segments: string[], encode: (seg: string) => number[], out: number[]): void {
    for (const seg of segments) {
      let ids = this.get(seg);
      if (ids === undefined) {
        ids = encode(seg);
        this.set(seg, ids);
      }
      for (const id of ids) out.push(id);
    }
  }
}
