// Float encoders/decoders shared by the writers: IEEE half (f16), bfloat16 and ggml's Q8_0 blocks.
// All bit-level functions round to nearest, ties to even, and keep infinities and NaNs.
import * as fs from 'node:fs';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Bits of a float32 (the number is first rounded to float32). */
export function f32ToBits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0];
}

export function bitsToF32(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0];
}

/** float32 bit pattern -> half bit pattern, round-to-nearest-even, subnormals, ±inf, NaN (payload kept when possible). */
export function f32BitsToF16Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const m = mant >>> 13;
    return sign | 0x7c00 | (m === 0 ? 0x200 : m);
  }
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // may carry into the exponent / to inf: correct
    return sign | h;
  }
  // Result is subnormal (or zero): value = M * 2^(e-14) units of 2^-24, M the 24-bit significand.
  const s = 14 - e;
  if (s > 24) return sign;
  const M = mant | 0x800000;
  let h = M >>> s;
  const rem = M & ((1 << s) - 1);
  const halfway = 1 << (s - 1);
  if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
  return sign | h;
}

/** half bit pattern -> float32 bit pattern (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: normalise
  let m = mant;
  let e = 113;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

export function f32ToF16(x: number): number {
  return f32BitsToF16Bits(f32ToBits(x));
}

export function f16ToF32(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h));
}

/** float32 bit pattern -> bfloat16 bit pattern (round-to-nearest-even; NaN stays NaN). */
export function f32BitsToBf16Bits(b: number): number {
  b >>>= 0;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) {
    const h = b >>> 16; // NaN: keep the top payload bits, force a payload bit if truncation would make it inf
    return (h & 0x7f) !== 0 ? h : h | 0x40;
  }
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

export function f32ToBf16(x: number): number {
  return f32BitsToBf16Bits(f32ToBits(x));
}

export function bf16ToF32(h: number): number {
  return bitsToF32(bf16BitsToF32Bits(h));
}

function bitsView(src: Float32Array): Uint32Array {
  return new Uint32Array(src.buffer, src.byteOffset, src.length);
}

export function f32ArrayToF16(src: Float32Array): Uint16Array {
  const bits = bitsView(src);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

export function f16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const ob = bitsView(out);
  for (let i = 0; i < src.length; i++) ob[i] = f16BitsToF32Bits(src[i]);
  return out;
}

export function f32ArrayToBf16(src: Float32Array): Uint16Array {
  const bits = bitsView(src);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]);
  return out;
}

export function bf16ArrayToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const ob = bitsView(out);
  for (let i = 0; i < src.length; i++) ob[i] = bf16BitsToF32Bits(src[i]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// ggml Q8_0: blocks of 32 values -> { f16 d; int8 q[32] } (34 bytes); x ≈ d * q.

export const QK8_0 = 32;
export const Q8_0_BLOCK_BYTES = 34;

/** C's roundf: halves away from zero. */
function roundAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** Quantizes like ggml's reference quantize_row_q8_0 (d = amax/127 in f32, q = roundf(x * (1/d))). */
export function quantizeQ8_0(src: Float32Array): Uint8Array {
  if (src.length % QK8_0 !== 0) throw new Error(`Q8_0 needs a multiple of ${QK8_0} values (got ${src.length})`);
  const nb = src.length / QK8_0;
  const out = new Uint8Array(nb * Q8_0_BLOCK_BYTES);
  const dv = new DataView(out.buffer);
  const fr = Math.fround;
  for (let b = 0; b < nb; b++) {
    const x0 = b * QK8_0;
    let amax = 0;
    for (let j = 0; j < QK8_0; j++) {
      const a = Math.abs(src[x0 + j]);
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    dv.setUint16(o, f32ToF16(d), true);
    for (let j = 0; j < QK8_0; j++) dv.setInt8(o + 2 + j, roundAway(fr(src[x0 + j] * id)));
  }
  return out;
}

/** Dequantizes `n` values (n a multiple of 32) from Q8_0 blocks: x = f32(d) * q. */
export function dequantizeQ8_0(bytes: Uint8Array, n: number): Float32Array {
  if (n % QK8_0 !== 0) throw new Error(`Q8_0 needs a multiple of ${QK8_0} values (got ${n})`);
  const nb = n / QK8_0;
  if (bytes.length < nb * Q8_0_BLOCK_BYTES) throw new Error('Q8_0 data too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(n);
  for (let b = 0; b < nb; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = f16ToF32(dv.getUint16(o, true));
    for (let j = 0; j < QK8_0; j++) out[b * QK8_0 + j] = d * dv.getInt8(o + 2 + j);
  }
  return out;
}

/** Little-endian byte view of a typed array (no copy). */
export function bytesOf(a: Float32Array | Uint16Array | Uint8Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** fs.writeSync until every byte is written (one write(2) may be short for very large buffers). */
export function writeAllSync(fd: number, b: Uint8Array): void {
  let o = 0;
  while (o < b.length) o += fs.writeSync(fd, b, o, Math.min(b.length - o, 1 << 30));
}

/** The writers emit little-endian files straight from typed arrays. */
export function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error('big-endian hosts are not supported');
}
