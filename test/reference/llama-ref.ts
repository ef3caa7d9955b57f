// Independent float64 LLaMA forward pass, written straight from the definition, used to judge the C++ engine,
// plus a small test-side loader that turns a HF folder (config.json + safetensors) into a ModelTensors.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelTensors, LayerTensors, RopeScaling } from '../../electron/core/formats/model-tensors.js';
import { readSafetensorsHeader } from '../../electron/core/formats/safetensors-write.js';
import { bf16ArrayToF32, f16ArrayToF32 } from '../../electron/core/formats/dtype.js';

/** out[r] = sum_c w[r*cols + c] * x[c] for r < rows (w row-major [rows, cols]). */
function matVec(w: Float32Array, rows: number, cols: number, x: Float64Array, out: Float64Array): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += w[o + c] * x[c];
    out[r] = s;
  }
}

function rmsNorm(x: Float64Array, w: Float32Array, eps: number): Float64Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = x[i] * inv * w[i];
  return out;
}

/** Inverse frequencies theta^(-2j/hd), adjusted for rope scaling as HF's rope init functions do. */
export function refInvFreq(headDim: number, theta: number, scaling?: RopeScaling): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let j = 0; j < half; j++) inv[j] = 1 / Math.pow(theta, (2 * j) / headDim);
  if (scaling?.type === 'llama3') {
    // transformers' _compute_llama3_parameters
    const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: orig } = scaling;
    const lowWavelen = orig / low;
    const highWavelen = orig / high;
    for (let j = 0; j < half; j++) {
      const wavelen = (2 * Math.PI) / inv[j];
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) inv[j] = inv[j] / factor;
      else {
        const smooth = (orig / wavelen - low) / (high - low);
        inv[j] = ((1 - smooth) * inv[j]) / factor + smooth * inv[j];
      }
    }
  }
  return inv;
}

/** Rotates every head of `v` (nHeads*hd values) in place for position `pos`. */
function rope(v: Float64Array, nHeads: number, hd: number, pos: number, inv: Float64Array, m: ModelTensors): void {
  const half = hd / 2;
  const p = m.ropeScaling?.type === 'linear' ? pos / m.ropeScaling.factor : pos;
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < half; j++) {
      const ang = p * inv[j];
      const c = Math.cos(ang);
      const s = Math.sin(ang);
      const i0 = m.ropeLayout === 'interleaved' ? h * hd + 2 * j : h * hd + j;
      const i1 = m.ropeLayout === 'interleaved' ? i0 + 1 : i0 + half;
      const a = v[i0];
      const b = v[i1];
      v[i0] = a * c - b * s;
      v[i1] = a * s + b * c;
    }
  }
}

function attention(m: ModelTensors, l: LayerTensors, xs: Float64Array[], inv: Float64Array): Float64Array[] {
  const hd = m.headDim;
  const T = xs.length;
  const qd = l.nHead * hd;
  const kvd = l.nKvHead * hd;
  const group = l.nHead / l.nKvHead;
  const qs: Float64Array[] = [];
  const ks: Float64Array[] = [];
  const vs: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const xn = rmsNorm(xs[t], l.attnNorm, m.normEps);
    const q = new Float64Array(qd);
    const k = new Float64Array(kvd);
    const v = new Float64Array(kvd);
    matVec(l.wq, qd, m.dim, xn, q);
    matVec(l.wk, kvd, m.dim, xn, k);
    matVec(l.wv, kvd, m.dim, xn, v);
    rope(q, l.nHead, hd, t, inv, m);
    rope(k, l.nKvHead, hd, t, inv, m);
    qs.push(q);
    ks.push(k);
    vs.push(v);
  }
  const scale = 1 / Math.sqrt(hd);
  const outs: Float64Array[] = [];
  for (let t = 0; t < T; t++) {
    const ctx = new Float64Array(qd);
    for (let h = 0; h < l.nHead; h++) {
      const kh = Math.floor(h / group);
      const scores = new Float64Array(t + 1);
      let mx = -Infinity;
      for (let u = 0; u <= t; u++) {
        let s = 0;
        for (let i = 0; i < hd; i++) s += qs[t][h * hd + i] * ks[u][kh * hd + i];
        scores[u] = s * scale;
        if (scores[u] > mx) mx = scores[u];
      }
      let z = 0;
      for (let u = 0; u <= t; u++) z += scores[u] = Math.exp(scores[u] - mx);
      for (let u = 0; u <= t; u++) {
        const p = scores[u] / z;
        for (let i = 0; i < hd; i++) ctx[h * hd + i] += p * vs[u][kh * hd + i];
      }
    }
    const o = new Float64Array(m.dim);
    matVec(l.wo, m.dim, qd, ctx, o);
    outs.push(o);
  }
  return outs;
}

function mlp(m: ModelTensors, l: LayerTensors, x: Float64Array): Float64Array {
  const xn = rmsNorm(x, l.ffnNorm, m.normEps);
  const g = new Float64Array(l.ffn);
  const u = new Float64Array(l.ffn);
  matVec(l.wGate, l.ffn, m.dim, xn, g);
  matVec(l.wUp, l.ffn, m.dim, xn, u);
  for (let i = 0; i < l.ffn; i++) g[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
  const out = new Float64Array(m.dim);
  matVec(l.wDown, m.dim, l.ffn, g, out);
  return out;
}

/** Logits [ids.length, vocab] row-major, float64 throughout. */
export function refForward(m: ModelTensors, ids: number[]): Float64Array {
  const d = m.dim;
  const inv = refInvFreq(m.headDim, m.ropeTheta, m.ropeScaling);
  const xs: Float64Array[] = ids.map((id) => {
    if (!Number.isInteger(id) || id < 0 || id >= m.vocabSize) throw new Error(`token id ${id} out of range`);
    return Float64Array.from(m.tokEmb.subarray(id * d, (id + 1) * d));
  });
  for (const l of m.layers) {
    if (l.nHead > 0) {
      const att = attention(m, l, xs, inv);
      for (let t = 0; t < xs.length; t++) for (let i = 0; i < d; i++) xs[t][i] += att[t][i];
    }
    if (l.ffn > 0) {
      for (let t = 0; t < xs.length; t++) {
        const f = mlp(m, l, xs[t]);
        for (let i = 0; i < d; i++) xs[t][i] += f[i];
      }
    }
  }
  const head = m.lmHead ?? m.tokEmb;
  const V = m.vocabSize;
  const logits = new Float64Array(ids.length * V);
  const row = new Float64Array(V);
  for (let t = 0; t < xs.length; t++) {
    matVec(head, V, d, rmsNorm(xs[t], m.outNorm, m.normEps), row);
    logits.set(row, t * V);
  }
  return logits;
}

/** Mean negative log-likelihood (natural log) of ids[1:] given the logits of the positions before. */
export function refLogSoftmaxNll(logits: Float64Array, ids: number[]): number {
  const V = logits.length / ids.length;
  if (!Number.isInteger(V)) throw new Error('logits length is not a multiple of ids.length');
  let total = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const o = t * V;
    let mx = -Infinity;
    for (let i = 0; i < V; i++) if (logits[o + i] > mx) mx = logits[o + i];
    let z = 0;
    for (let i = 0; i < V; i++) z += Math.exp(logits[o + i] - mx);
    total += mx + Math.log(z) - logits[o + ids[t + 1]];
  }
  return total / Math.max(1, ids.length - 1);
}

/** Index of the largest logit in each row. */
export function refArgmax(logits: Float64Array, rows: number): number[] {
  const V = logits.length / rows;
  const out: number[] = [];
  for (let t = 0; t < rows; t++) {
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[t * V + i] > logits[t * V + best]) best = i;
    out.push(best);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Test-side HF folder loader (F32/F16/BF16 safetensors, single file or sharded index)

function loadSafetensorsTensors(file: string, into: Map<string, Float32Array>): void {
  const bytes = new Uint8Array(fs.readFileSync(file));
  const h = readSafetensorsHeader(bytes);
  for (const t of h.tensors) {
    const raw = bytes.slice(h.dataOffset + t.begin, h.dataOffset + t.end);
    let f: Float32Array;
    if (t.dtype === 'F32') f = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    else if (t.dtype === 'F16') f = f16ArrayToF32(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2));
    else if (t.dtype === 'BF16') f = bf16ArrayToF32(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2));
    else throw new Error(`${file}: ${t.name} has dtype ${t.dtype}`);
    into.set(t.name, f);
  }
}

/** Reads a HF LlamaForCausalLM folder (as written by writeHfFolder or transformers) into rotate_half ModelTensors. */
export function loadHfModel(dir: string): ModelTensors {
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as Record<string, any>;
  const tensors = new Map<string, Float32Array>();
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    const wm = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    for (const f of new Set(Object.values(wm))) loadSafetensorsTensors(path.join(dir, f), tensors);
  } else loadSafetensorsTensors(path.join(dir, 'model.safetensors'), tensors);
  const dim: number = cfg.hidden_size;
  const nLayers: number = cfg.num_hidden_layers;
  const headDim: number = cfg.head_dim ?? dim / cfg.num_attention_heads;
  const per = (key: string, fallback: number): number[] =>
    Array.isArray(cfg[key]) ? (cfg[key] as number[]) : Array.from({ length: nLayers }, () => fallback);
  const heads = per('layer_num_attention_heads', cfg.num_attention_heads);
  const kvHeads = per('layer_num_key_value_heads', cfg.num_key_value_heads ?? cfg.num_attention_heads);
  const ffns = per('layer_intermediate_sizes', cfg.intermediate_size);
  const empty = new Float32Array(0);
  const get = (name: string, n: number): Float32Array => {
    if (n === 0) return empty;
    const t = tensors.get(name);
    if (!t) throw new Error(`${dir}: missing ${name}`);
    if (t.length !== n) throw new Error(`${dir}: ${name} has ${t.length} values, want ${n}`);
    return t;
  };
  const ones = (): Float32Array => new Float32Array(dim).fill(1);
  const layers: LayerTensors[] = [];
  for (let i = 0; i < nLayers; i++) {
    const p = `model.layers.${i}.`;
    const [nh, nkv, ffn] = [heads[i], kvHeads[i], ffns[i]];
    layers.push({
      nHead: nh,
      nKvHead: nkv,
      ffn,
      attnNorm: nh > 0 ? get(p + 'input_layernorm.weight', dim) : ones(),
      wq: get(p + 'self_attn.q_proj.weight', nh * headDim * dim),
      wk: get(p + 'self_attn.k_proj.weight', nkv * headDim * dim),
      wv: get(p + 'self_attn.v_proj.weight', nkv * headDim * dim),
      wo: get(p + 'self_attn.o_proj.weight', dim * nh * headDim),
      ffnNorm: ffn > 0 ? get(p + 'post_attention_layernorm.weight', dim) : ones(),
      wGate: get(p + 'mlp.gate_proj.weight', ffn * dim),
      wUp: get(p + 'mlp.up_proj.weight', ffn * dim),
      wDown: get(p + 'mlp.down_proj.weight', dim * ffn),
    });
  }
  const vocab: number = cfg.vocab_size;
  const tied = cfg.tie_word_embeddings !== false && !tensors.has('lm_head.weight');
  const rs = cfg.rope_scaling as Record<string, number | string> | null | undefined;
  let ropeScaling: RopeScaling | undefined;
  const rtype = rs ? (rs.rope_type ?? rs.type) : undefined;
  if (rs && rtype === 'linear') ropeScaling = { type: 'linear', factor: Number(rs.factor) };
  else if (rs && rtype === 'llama3')
    ropeScaling = {
      type: 'llama3',
      factor: Number(rs.factor),
      lowFreqFactor: Number(rs.low_freq_factor),
      highFreqFactor: Number(rs.high_freq_factor),
      originalMaxPositionEmbeddings: Number(rs.original_max_position_embeddings),
    };
  else if (rs && rtype !== 'default') throw new Error(`${dir}: unsupported rope_scaling ${String(rtype)}`);
  const m: ModelTensors = {
    dim,
    headDim,
    vocabSize: vocab,
    contextLength: cfg.max_position_embeddings,
    normEps: cfg.rms_norm_eps,
    ropeTheta: cfg.rope_theta ?? 10000,
    ropeLayout: 'rotate_half',
    bosId: cfg.bos_token_id ?? 1,
    eosId: cfg.eos_token_id ?? 2,
    tokEmb: get('model.embed_tokens.weight', vocab * dim),
    layers,
    outNorm: get('model.norm.weight', dim),
    lmHead: tied ? null : get('lm_head.weight', vocab * dim),
  };
  if (ropeScaling) m.ropeScaling = ropeScaling;
  return m;
}
