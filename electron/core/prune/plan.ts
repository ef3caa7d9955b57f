// plan.ts — what structural pruning keeps, from the architecture alone: LLM-Pruner's groups (attention:
// one group per KV head with the query heads that share it; MLP: one group per channel), layer ranges,
// local ratios (keep ⌊n·(1−ratio)⌋ groups in every chosen layer), and honest parameter accounting —
// the pruning ratio is not the share of parameters removed. Instant for any model size: this is what
// the wizard shows while the ratio slider moves.
import { MAX_ROUND_TO } from '../api/contract.js';
import { EngineError } from '../engine/errors.js';

export interface LayerShape { nHead: number; nKvHead: number; ffn: number }
export interface ArchConfig { dim: number; headDim: number; vocabSize: number; tied: boolean; layers: LayerShape[] }

export interface PruneScope {
  /** inclusive layer ranges where attention / MLP groups are pruned (null = that part is not pruned) */
  attnLayers: [number, number] | null;
  mlpLayers: [number, number] | null;
  /**
   * a pruned layer keeps a multiple of this many MLP channels (1, the default: LLM-Pruner's counts, exactly):
   * 8 lets GPU tensor cores read the down projection's rows 16 bytes at a time, 32 lets a q8_0 GGUF quantize
   * it, 256 lets llama.cpp's k-quants (Q4_K…) take it. The kept count is rounded up, and never past the
   * largest multiple the layer has (keptChannels).
   */
  roundTo?: number;
}

export interface LayerPlan extends LayerShape { params: number; prunedAttn: boolean; prunedMlp: boolean }
export interface PrunePlan {
  ratio: number;
  layers: LayerPlan[];
  paramsBefore: number;
  paramsAfter: number;
  /** share of all parameters removed (not the pruning ratio) */
  removedShare: number;
}

/** Reads a LLaMA config.json (with Tailor's per-layer lists when present). */
export function archFromHfConfig(cfg: Record<string, unknown>): ArchConfig {
  const int = (k: string, d?: number): number => {
    const v = cfg[k] ?? d;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new EngineError('E_FORMAT', `config.json: "${k}" must be a non-negative integer`);
    return v;
  };
  const dim = int('hidden_size'), n = int('num_hidden_layers'), nh = int('num_attention_heads');
  const nkv = int('num_key_value_heads', nh), ffn = int('intermediate_size');
  const headDim = cfg.head_dim !== undefined && cfg.head_dim !== null ? int('head_dim') : dim / nh;
  if (!Number.isInteger(headDim)) throw new EngineError('E_FORMAT', 'config.json: hidden_size is not a multiple of num_attention_heads');
  const list = (k: string, d: number): number[] => {
    const v = cfg[k];
    if (v === undefined || v === null) return new Array(n).fill(d);
    if (!Array.isArray(v) || v.length !== n || v.some((x) => !Number.isInteger(x) || x < 0)) throw new EngineError('E_FORMAT', `config.json: "${k}" must list one count per layer`);
    return v as number[];
  };
  const h = list('layer_num_attention_heads', nh), kv = list('layer_num_key_value_heads', nkv), f = list('layer_intermediate_sizes', ffn);
  return {
    dim, headDim, vocabSize: int('vocab_size'), tied: cfg.tie_word_embeddings === true,
    layers: h.map((x, i) => ({ nHead: x, nKvHead: kv[i], ffn: f[i] })),
  };
}

export function layerParams(a: Pick<ArchConfig, 'dim' | 'headDim'>, l: LayerShape): number {
  const { dim, headDim: hd } = a;
  return 2 * dim + dim * hd * (2 * l.nHead + 2 * l.nKvHead) + 3 * dim * l.ffn;
}

export function paramCount(a: ArchConfig, layers: LayerShape[] = a.layers): number {
  return a.vocabSize * a.dim * (a.tied ? 1 : 2) + a.dim + layers.reduce((s, l) => s + layerParams(a, l), 0);
}

/** "4-29" → [4, 29]; "all" → the whole model */
export function parseLayerRange(s: string, nLayers: number): [number, number] {
  if (s === 'all') return [0, nLayers - 1];
  const m = /^(\d+)-(\d+)$/.exec(s.trim()) ?? /^(\d+)$/.exec(s.trim());
  if (!m) throw new EngineError('E_ARG', `layer range "${s}" must look like 4-29`);
  const a = Number(m[1]), b = Number(m[2] ?? m[1]);
  if (a > b || b >= nLayers) throw new EngineError('E_ARG', `layer range ${s} is outside the model's layers 0-${nLayers - 1}`);
  return [a, b];
}

const inRange = (l: number, r: [number, number] | null) => r !== null && l >= r[0] && l <= r[1];

/**
 * The channels a pruned layer of `ffn` keeps when its ratio leaves `keep`: `keep` rounded up to a multiple
 * of roundTo, but at most the largest multiple ≤ ffn (a layer that prunes nothing, keep = ffn, stays whole;
 * one smaller than roundTo keeps `keep`). As `keep` shrinks this never grows: a parameter target's search
 * stays a bisection.
 */
export function keptChannels(keep: number, ffn: number, roundTo = 1): number {
  if (!Number.isInteger(roundTo) || roundTo < 1 || roundTo > MAX_ROUND_TO) throw new EngineError('E_ARG', `roundTo must be an integer from 1 to ${MAX_ROUND_TO} (got ${roundTo})`);
  const most = Math.floor(ffn / roundTo) * roundTo;
  if (roundTo === 1 || keep >= ffn || most === 0) return keep;
  return Math.min(Math.ceil(keep / roundTo) * roundTo, most);
}

/** Local pruning: every chosen layer keeps ⌊n·(1−ratio)⌋ of its groups (MLP channels rounded: keptChannels). */
export function planLocal(a: ArchConfig, ratio: number, scope: PruneScope): PrunePlan {
  if (!(ratio >= 0 && ratio < 1)) throw new EngineError('E_ARG', `the pruning ratio must be in [0, 1) (got ${ratio})`);
  const layers = a.layers.map((l, i): LayerPlan => {
    const pa = inRange(i, scope.attnLayers) && l.nKvHead > 0, pm = inRange(i, scope.mlpLayers) && l.ffn > 0;
    const groups = pa ? Math.floor(l.nKvHead * (1 - ratio)) : l.nKvHead;
    const perGroup = l.nKvHead > 0 ? l.nHead / l.nKvHead : 0;
    const shape = { nHead: groups * perGroup, nKvHead: groups, ffn: pm ? keptChannels(Math.floor(l.ffn * (1 - ratio)), l.ffn, scope.roundTo) : l.ffn };
    return { ...shape, params: layerParams(a, shape), prunedAttn: pa, prunedMlp: pm };
  });
  return finish(a, ratio, layers);
}

export function finish(a: ArchConfig, ratio: number, layers: LayerPlan[]): PrunePlan {
  const before = paramCount(a), after = paramCount(a, layers);
  return { ratio, layers, paramsBefore: before, paramsAfter: after, removedShare: 1 - after / before };
}

/** The smallest local ratio whose plan has at most `target` parameters (as much of the model kept as the target allows). */
export function ratioForTarget(a: ArchConfig, target: number, scope: PruneScope): number {
  const full = paramCount(a);
  if (target >= full) return 0;
  const most = planLocal(a, 0.999999, scope).paramsAfter;
  if (target < most)
    throw new EngineError('E_ARG', `a target of ${target.toLocaleString('en-US')} parameters cannot be reached in these layers (the least is ${most.toLocaleString('en-US')}); widen the layer range`);
  let lo = 0, hi = 0.999999;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (planLocal(a, mid, scope).paramsAfter <= target) hi = mid;
    else lo = mid;
  }
  return hi;
}
