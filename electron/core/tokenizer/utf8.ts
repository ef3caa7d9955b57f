// UTF-8 helpers for the tokenizers: lossy decoding with SentencePiece's convention (every byte of an
// invalid sequence becomes one U+FFFD), detection of an incomplete sequence at the end of a buffer (for
// streaming), and "binary strings" (one char per byte) used as byte-exact map keys by the llama2.c tokenizer.

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/**
 * Length of the UTF-8 sequence starting at `i` (bytes before `end`):
 * n > 0 for a valid character of n bytes, 0 for an invalid lead/sequence, -1 when the bytes so far are a
 * valid prefix of a character that `end` cuts short.
 */
export function utf8SeqLen(bytes: Uint8Array, i: number, end: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 < 0xc2) return 0;
  if (b0 < 0xe0) need = 2;
  else if (b0 < 0xf0) {
    need = 3;
    if (b0 === 0xe0) lo = 0xa0;
    else if (b0 === 0xed) hi = 0x9f; // no encoded surrogates
  } else if (b0 < 0xf5) {
    need = 4;
    if (b0 === 0xf0) lo = 0x90;
    else if (b0 === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else return 0;
  for (let k = 1; k < need; k++) {
    if (i + k >= end) return -1;
    const b = bytes[i + k];
    if (k === 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf) return 0;
  }
  return need;
}

/**
 * Decodes bytes[start, end) as UTF-8; each byte that does not start a valid character becomes U+FFFD
 * (SentencePiece's rule, so "E6 95 41" gives "\uFFFD\uFFFDA").
 */
export function utf8DecodeLossy(bytes: Uint8Array, start = 0, end = bytes.length): string {
  if (start >= end) return '';
  const view = start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);
  try {
    return strictDecoder.decode(view);
  } catch {
    // fall through to the byte-by-byte path
  }
  let out = '';
  let chunk: number[] = [];
  let i = start;
  while (i < end) {
    const n = utf8SeqLen(bytes, i, end);
    if (n <= 0) {
      chunk.push(0xfffd);
      i += 1;
    } else {
      const b0 = bytes[i];
      let cp: number;
      if (n === 1) cp = b0;
      else if (n === 2) cp = ((b0 & 0x1f) << 6) | (bytes[i + 1] & 0x3f);
      else if (n === 3) cp = ((b0 & 0x0f) << 12) | ((bytes[i + 1] & 0x3f) << 6) | (bytes[i + 2] & 0x3f);
      else cp = ((b0 & 0x07) << 18) | ((bytes[i + 1] & 0x3f) << 12) | ((bytes[i + 2] & 0x3f) << 6) | (bytes[i + 3] & 0x3f);
      chunk.push(cp);
      i += n;
    }
    if (chunk.length >= 4096) {
      out += String.fromCodePoint(...chunk);
      chunk = [];
    }
  }
  return out + String.fromCodePoint(...chunk);
}

/**
 * Where the decodable part of bytes[0, end) stops: the index of a trailing valid-but-incomplete sequence,
 * or `end` when there is none. Scans left to right like utf8DecodeLossy, so decoding [0, cut) now and
 * [cut, ...) later gives the same text as decoding everything at once.
 */
export function utf8CompletePrefix(bytes: Uint8Array, end: number): number {
  // Only the last 3 bytes can hold an incomplete character; start a little earlier at a char boundary
  // reached by the same left-to-right scan.
  let i = Math.max(0, end - 4);
  // step back to a position the scanner could be at: a byte that is not a continuation byte
  while (i > 0 && (bytes[i] & 0xc0) === 0x80) i--;
  while (i < end) {
    const n = utf8SeqLen(bytes, i, end);
    if (n < 0) return i;
    i += n === 0 ? 1 : n;
  }
  return end;
}

/** A "binary string": one UTF-16 unit (0..255) per byte. Used as byte-exact Map keys. */
export function bytesToBinary(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let s = '';
  for (let i = start; i < end; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, Math.min(end, i + 8192)));
  }
  return s;
}

/** `<0xAB>` → 0xAB; anything else → -1. */
export function parseBytePiece(piece: string): number {
  if (piece.length !== 6 || !piece.startsWith('<0x') || piece[5] !== '>') return -1;
  const hex = piece.slice(3, 5);
  if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return -1;
  return parseInt(hex, 16);
}
