// The neutral in-memory LLaMA model that every writer (GGUF, HF safetensors, llama2c) and the float64
// reference forward consume: shapes, RoPE layout conversion, a seeded random-model generator, validation.

/** GGUF, llama2c and Meta checkpoints rotate interleaved pairs (2j, 2j+1); HF rotates halves (j, j+hd/2). */
export type RopeLayout = 'interleaved' | 'rotate_half';

export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export interface LayerTensors {
  /** Head and FFN counts may differ per layer and may be 0 (pruned away). */
  nHead: number;
  nKvHead: number;
  ffn: number;
  attnNorm: Float32Array; // [dim]
  wq: Float32Array; // [nHead*headDim, dim]   row-major [out, in]
  wk: Float32Array; // [nKvHead*headDim, dim]
  wv: Float32Array; // [nKvHead*headDim, dim]
  wo: Float32Array; // [dim, nHead*headDim]
  ffnNorm: Float32Array; // [dim]
  wGate: Float32Array; // [ffn, dim]
  wUp: Float32Array; // [ffn, dim]
  wDown: Float32Array; // [dim, ffn]
}

export interface ModelTensors {
  dim: number;
  headDim: number;
  vocabSize: number;
  contextLength: number;
  normEps: number;
  ropeTheta: number;
  ropeLayout: RopeLayout;
  ropeScaling?: RopeScaling;
  bosId: number;
  eosId: number;
  tokEmb: Float32Array; // [vocab, dim]
  layers: LayerTensors[];
  outNorm: Float32Array; // [dim]
  lmHead: Float32Array | null; // [vocab, dim]; null = tied to tokEmb
}

export interface LayerShape {
  nHead: number;
  nKvHead: number;
  ffn: number;
}

export interface RandomModelSpec {
  dim: number;
  headDim?: number;
  nLayers: number;
  /** Per-layer shapes; when absent every layer uses nHead / nKvHead / ffn. */
  layers?: LayerShape[];
  nHead: number;
  nKvHead: number;
  ffn: number;
  vocabSize: number;
  contextLength?: number;
  tied?: boolean;
  ropeLayout?: RopeLayout;
  ropeScaling?: RopeScaling;
  ropeTheta?: number;
  normEps?: number;
  bosId?: number;
  eosId?: number;
  seed: number;
  /** When given, every weight matrix (and the embedding) is N(0, std); otherwise std = 1/sqrt(fan_in). */
  std?: number;
}

// ---------------------------------------------------------------------------------------------
// Seeded PRNG: splitmix32 seeds xoshiro128**; Box-Muller for normals.

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5;
    const lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal (Box-Muller, caching the second value). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u <= 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /**
   * Fills `a` with N(0, std): xoshiro128** inlined, two 32-bit uniforms per Box-Muller pair
   * (u1 in (0, 1], so the log is finite). Much faster than normal() per element.
   */
  fillNormal(a: Float32Array, std: number): void {
    let s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    const INV = 1 / 4294967296;
    const TWO_PI = 2 * Math.PI;
    for (let i = 0; i < a.length; i += 2) {
      let r1 = Math.imul(s1, 5) >>> 0;
      r1 = Math.imul(((r1 << 7) | (r1 >>> 25)) >>> 0, 9) >>> 0;
      let t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
      let r2 = Math.imul(s1, 5) >>> 0;
      r2 = Math.imul(((r2 << 7) | (r2 >>> 25)) >>> 0, 9) >>> 0;
      t = s1 << 9;
      s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
      const rad = std * Math.sqrt(-2 * Math.log((r1 + 1) * INV));
      const ang = TWO_PI * r2 * INV;
      a[i] = rad * Math.cos(ang);
      if (i + 1 < a.length) a[i + 1] = rad * Math.sin(ang);
    }
    this.s0 = s0 >>> 0; this.s1 = s1 >>> 0; this.s2 = s2 >>> 0; this.s3 = s3 >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function gaussian(rng: Rng, n: number, std: number): Float32Array {
  const a = new Float32Array(n);
  rng.fillNormal(a, std);
  return a;
}

function nearOne(rng: Rng, n: number): Float32Array {
  const a = gaussian(rng, n, 0.05);
  for (let i = 0; i < n; i++) a[i] += 1;
  return a;
}

/** A seeded random LLaMA. Norm weights are 1 + N(0, 0.05); linear layers N(0, 1/sqrt(in)) unless `std` is given. */
export function randomModel(spec: RandomModelSpec): ModelTensors {
  const dim = spec.dim;
  const headDim = spec.headDim ?? Math.floor(dim / spec.nHead);
  const shapes: LayerShape[] =
    spec.layers ?? Array.from({ length: spec.nLayers }, () => ({ nHead: spec.nHead, nKvHead: spec.nKvHead, ffn: spec.ffn }));
  if (shapes.length !== spec.nLayers) throw new Error(`randomModel: ${shapes.length} layer shapes for nLayers=${spec.nLayers}`);
  const rng = new Rng(spec.seed);
  const lin = (out: number, inp: number): Float32Array =>
    out * inp === 0 ? new Float32Array(0) : gaussian(rng, out * inp, spec.std ?? 1 / Math.sqrt(inp));
  // Embedding scale dim^-1/4 keeps tied logits at a moderate spread (std ~ dim^1/4) instead of sqrt(dim).
  const tokEmb = gaussian(rng, spec.vocabSize * dim, spec.std ?? Math.pow(dim, -0.25));
  const layers: LayerTensors[] = shapes.map((s) => {
    const qd = s.nHead * headDim;
    const kvd = s.nKvHead * headDim;
    return {
      nHead: s.nHead,
      nKvHead: s.nKvHead,
      ffn: s.ffn,
      attnNorm: nearOne(rng, dim),
      wq: lin(qd, dim),
      wk: lin(kvd, dim),
      wv: lin(kvd, dim),
      wo: lin(dim, qd),
      ffnNorm: nearOne(rng, dim),
      wGate: lin(s.ffn, dim),
      wUp: lin(s.ffn, dim),
      wDown: lin(dim, s.ffn),
    };
  });
  const outNorm = nearOne(rng, dim);
  const lmHead = spec.tied === false ? lin(spec.vocabSize, dim) : null;
  const m: ModelTensors = {
    dim,
    headDim,
    vocabSize: spec.vocabSize,
    contextLength: spec.contextLength ?? 256,
    normEps: spec.normEps ?? 1e-5,
    ropeTheta: spec.ropeTheta ?? 10000,
    ropeLayout: spec.ropeLayout ?? 'interleaved',
    ropeScaling: spec.ropeScaling,
    bosId: spec.bosId ?? 1,
    eosId: spec.eosId ?? 2,
    tokEmb,
    layers,
    outNorm,
    lmHead,
  };
  if (m.ropeScaling === undefined) delete m.ropeScaling;
  checkModel(m);
  return m;
}

/** Throws a descriptive Error when shapes or counts are inconsistent. */
export function checkModel(m: ModelTensors): void {
  const fail = (msg: string): never => {
    throw new Error(`invalid model: ${msg}`);
  };
  const posInt = (v: number, what: string): void => {
    if (!Number.isInteger(v) || v <= 0) fail(`${what} must be a positive integer (got ${v})`);
  };
  posInt(m.dim, 'dim');
  posInt(m.headDim, 'headDim');
  posInt(m.vocabSize, 'vocabSize');
  posInt(m.contextLength, 'contextLength');
  if (m.headDim % 2 !== 0) fail(`headDim ${m.headDim} must be even for RoPE`);
  if (!(m.normEps > 0)) fail('normEps must be > 0');
  if (!(m.ropeTheta > 0)) fail('ropeTheta must be > 0');
  if (m.tokEmb.length !== m.vocabSize * m.dim) fail('tokEmb size');
  if (m.outNorm.length !== m.dim) fail('outNorm size');
  if (m.lmHead && m.lmHead.length !== m.vocabSize * m.dim) fail('lmHead size');
  if (m.layers.length === 0) fail('no layers');
  m.layers.forEach((l, i) => {
    for (const [k, v] of [['nHead', l.nHead], ['nKvHead', l.nKvHead], ['ffn', l.ffn]] as const) {
      if (!Number.isInteger(v) || v < 0) fail(`layer ${i} ${k}=${v}`);
    }
    if (l.nHead === 0 && l.nKvHead !== 0) fail(`layer ${i}: nKvHead must be 0 when nHead is 0`);
    if (l.nHead > 0 && (l.nKvHead === 0 || l.nHead % l.nKvHead !== 0))
      fail(`layer ${i}: nKvHead ${l.nKvHead} must divide nHead ${l.nHead}`);
    const qd = l.nHead * m.headDim;
    const kvd = l.nKvHead * m.headDim;
    const want: Array<[string, Float32Array, number]> = [
      ['attnNorm', l.attnNorm, m.dim],
      ['wq', l.wq, qd * m.dim],
      ['wk', l.wk, kvd * m.dim],
      ['wv', l.wv, kvd * m.dim],
      ['wo', l.wo, m.dim * qd],
      ['ffnNorm', l.ffnNorm, m.dim],
      ['wGate', l.wGate, l.ffn * m.dim],
      ['wUp', l.wUp, l.ffn * m.dim],
      ['wDown', l.wDown, m.dim * l.ffn],
    ];
    for (const [name, a, n] of want) if (a.length !== n) fail(`layer ${i} ${name} has ${a.length} values, want ${n}`);
  });
}

/** True when every layer has the same (non-zero) head and FFN counts: representable as plain `llama`. */
export function isUniform(m: ModelTensors): boolean {
  const f = m.layers[0];
  return m.layers.every(
    (l) => l.nHead === f.nHead && l.nKvHead === f.nKvHead && l.ffn === f.ffn && l.nHead > 0 && l.ffn > 0,
  );
}

/**
 * Reorders q/k rows between RoPE layouts, per head: interleaved row 2j+p <-> rotate_half row p*(hd/2)+j.
 * `to` is the layout of the result (the input is assumed to be in the other one).
 */
export function permuteRows(w: Float32Array, nHeads: number, headDim: number, cols: number, to: RopeLayout): Float32Array {
  if (w.length !== nHeads * headDim * cols) throw new Error(`permuteRows: ${w.length} != ${nHeads}*${headDim}*${cols}`);
  if (headDim % 2 !== 0) throw new Error('permuteRows: headDim must be even');
  const half = headDim / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim;
    for (let j = 0; j < half; j++) {
      for (let p = 0; p < 2; p++) {
        const inter = base + 2 * j + p;
        const rot = base + p * half + j;
        const [dst, src] = to === 'interleaved' ? [inter, rot] : [rot, inter];
        out.set(w.subarray(src * cols, (src + 1) * cols), dst * cols);
      }
    }
  }
  return out;
}

/** The same model with q/k rows in `layout` (a shallow copy sharing all other arrays). */
export function toLayout(m: ModelTensors, layout: RopeLayout): ModelTensors {
  if (m.ropeLayout === layout) return { ...m, layers: m.layers.map((l) => ({ ...l })) };
  return {
    ...m,
    ropeLayout: layout,
    layers: m.layers.map((l) => ({
      ...l,
      wq: permuteRows(l.wq, l.nHead, m.headDim, m.dim, layout),
      wk: permuteRows(l.wk, l.nKvHead, m.headDim, m.dim, layout),
    })),
  };
}

/** Number of stored parameters (a tied head counts once). */
export function paramCount(m: ModelTensors): number {
  let n = m.tokEmb.length + m.outNorm.length + (m.lmHead ? m.lmHead.length : 0);
  for (const l of m.layers) {
    n += l.attnNorm.length + l.wq.length + l.wk.length + l.wv.length + l.wo.length;
    n += l.ffnNorm.length + l.wGate.length + l.wUp.length + l.wDown.length;
  }
  return n;
}

/** The llama3 per-frequency divisors that llama.cpp stores as `rope_freqs.weight` (length headDim/2). */
export function llama3RopeFactors(headDim: number, theta: number, s: Extract<RopeScaling, { type: 'llama3' }>): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let j = 0; j < half; j++) {
    const freq = Math.pow(theta, -(2 * j) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[j] = 1;
    else if (wavelen > lowWavelen) out[j] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[j] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}
