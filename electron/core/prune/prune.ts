// prune.ts — structural pruning of a loaded model: calibration samples → per-group importance from the
// engine → kept groups per layer (local: the same ratio in every chosen layer; global: one ranking across
// the chosen layers) → physically smaller tensors → a Hugging Face folder with per-layer shapes, the
// tokenizer, and pruning.json (method, settings, kept indices, parameter counts, time).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import type { RawExample, RawGroupScores } from '../engine/native.js';
import type { LayerShape, LayerTensors, ModelTensors } from '../formats/model-tensors.js';
import { writeHfFolder } from '../formats/safetensors-write.js';
import { atomicWriteDir } from '../train/atomic.js';
export { calibrationFromExamples, calibrationFromIds, calibrationFromText, taskCalibrationRecords } from './calibration.js';
import { finish, layerParams, paramCount, planLocal, ratioForTarget, type ArchConfig, type LayerPlan, type PrunePlan, type PruneScope } from './plan.js';

export type ImportanceMethod = 'taylor' | 'taylor-vector' | 'taylor-second' | 'magnitude' | 'magnitude-l2' | 'wanda-sp' | 'random';
export const METHODS: ImportanceMethod[] = ['taylor', 'taylor-vector', 'taylor-second', 'magnitude', 'magnitude-l2', 'wanda-sp', 'random'];

export interface PruneOptions {
  ratio?: number;
  targetParams?: number;
  method: ImportanceMethod;
  agg?: 'sum' | 'mean' | 'max';
  scope: PruneScope;
  global?: boolean;
  calib: RawExample[];
  seed?: number;
  /** where the calibration came from (recorded in pruning.json), e.g. "text:FILE", "task:story_cloze" */
  calibSource?: string;
  signal?: AbortSignal;
}

export interface KeptLayer { attnGroups: number[]; heads: number[]; channels: number[] }

export interface PruneResult {
  /** the pruned weights, sliced from the loaded model as they are read (sliceLoaded): write them before disposing it */
  tensors: ModelTensors;
  plan: PrunePlan;
  kept: KeptLayer[];
  scores: RawGroupScores;
  settings: Omit<PruneOptions, 'calib' | 'signal'> & { calibSamples: number; calibTokens: number };
  seconds: number;
}

export function archOf(model: Model): ArchConfig {
  const i = model.info;
  return { dim: i.dim, headDim: i.headDim, vocabSize: i.vocabSize, tied: i.tiedEmbeddings, layers: i.layers };
}

const topK = (scores: Float64Array | number[], k: number): number[] =>
  Array.from(scores, (v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, k).map((x) => x[1]).sort((a, b) => a - b);

/**
 * Per-layer channel counts of a global ranking made multiples of m with no more kept in all: each count
 * rounded down (a layer smaller than m keeps its count), then m more to the layers that lost the most to the
 * rounding (ties: the earlier layer) while the ranking's total allows and the layer has room.
 */
export function roundedCounts(counts: number[], ffns: number[], m: number): number[] {
  const most = ffns.map((f) => Math.floor(f / m) * m);
  const out = counts.map((c, i) => (most[i] === 0 ? c : Math.min(Math.floor(c / m) * m, most[i])));
  let budget = counts.reduce((s, c) => s + c, 0) - out.reduce((s, c) => s + c, 0);
  const order = counts.map((c, i) => i).filter((i) => most[i] > 0).sort((x, y) => counts[y] - out[y] - (counts[x] - out[x]) || x - y);
  for (const i of order) {
    if (budget < m) break;
    if (counts[i] === out[i] || out[i] + m > most[i]) continue;
    out[i] += m;
    budget -= m;
  }
  return out;
}

/** Which groups each layer keeps. */
export function chooseKept(a: ArchConfig, scores: RawGroupScores, plan: PrunePlan, global: boolean, scope: PruneScope): KeptLayer[] {
  const kept: KeptLayer[] = a.layers.map((l) => ({ attnGroups: [...Array(l.nKvHead).keys()], heads: [], channels: [...Array(l.ffn).keys()] }));
  if (!global) {
    a.layers.forEach((_, i) => {
      if (plan.layers[i].prunedAttn) kept[i].attnGroups = topK(scores.attn[i], plan.layers[i].nKvHead);
      if (plan.layers[i].prunedMlp) kept[i].channels = topK(scores.mlp[i], plan.layers[i].ffn);
    });
  } else {
    // one ranking across the chosen layers, attention and MLP separately, same total counts as local
    for (const part of ['attn', 'mlp'] as const) {
      const cand: Array<[number, number, number]> = [];
      let keep = 0;
      a.layers.forEach((l, i) => {
        const pruned = part === 'attn' ? plan.layers[i].prunedAttn : plan.layers[i].prunedMlp;
        if (!pruned) return;
        const s = part === 'attn' ? scores.attn[i] : scores.mlp[i];
        s.forEach((v, g) => cand.push([v, i, g]));
        keep += part === 'attn' ? plan.layers[i].nKvHead : plan.layers[i].ffn;
        if (part === 'attn') kept[i].attnGroups = [];
        else kept[i].channels = [];
      });
      cand.sort((x, y) => y[0] - x[0] || x[1] - y[1] || x[2] - y[2]).slice(0, keep).forEach(([, i, g]) => (part === 'attn' ? kept[i].attnGroups : kept[i].channels).push(g));
      kept.forEach((k) => (part === 'attn' ? k.attnGroups : k.channels).sort((x, y) => x - y));
    }
    // with roundTo, the ranking's count in each layer becomes a multiple, the total kept no larger: each
    // layer's best channels (its top ones by the scores the ranking used), as many as roundedCounts gives it
    const m = scope.roundTo ?? 1;
    if (m > 1) {
      const pruned = a.layers.flatMap((_, i) => (plan.layers[i].prunedMlp ? [i] : []));
      const counts = roundedCounts(pruned.map((i) => kept[i].channels.length), pruned.map((i) => a.layers[i].ffn), m);
      pruned.forEach((i, j) => (kept[i].channels = topK(scores.mlp[i], counts[j])));
    }
  }
  a.layers.forEach((l, i) => {
    const per = l.nKvHead > 0 ? l.nHead / l.nKvHead : 0;
    kept[i].heads = kept[i].attnGroups.flatMap((g) => [...Array(per).keys()].map((k) => g * per + k));
  });
  return kept;
}

type Weight = 'wq' | 'wk' | 'wv' | 'wo' | 'wGate' | 'wUp' | 'wDown';
const WEIGHTS: readonly Weight[] = ['wq', 'wk', 'wv', 'wo', 'wGate', 'wUp', 'wDown'];

/** One weight of layer l without the groups it does not keep (D: model dim, hd: head dim). */
function sliceWeight(name: Weight, w: Float32Array, l: LayerShape, k: KeptLayer, D: number, hd: number): Float32Array {
  const rows = (cols: number, idx: number[], block: number) => {
    const out = new Float32Array(idx.length * block * cols);
    idx.forEach((r, j) => out.set(w.subarray(r * block * cols, (r + 1) * block * cols), j * block * cols));
    return out;
  };
  const cols = (nRows: number, nCols: number, idx: number[], block: number) => {
    const out = new Float32Array(nRows * idx.length * block);
    for (let r = 0; r < nRows; r++) idx.forEach((c, j) => out.set(w.subarray(r * nCols + c * block, r * nCols + (c + 1) * block), r * idx.length * block + j * block));
    return out;
  };
  switch (name) {
    case 'wq': return rows(D, k.heads, hd);
    case 'wk': case 'wv': return rows(D, k.attnGroups, hd);
    case 'wo': return cols(D, l.nHead * hd, k.heads, hd);
    case 'wGate': case 'wUp': return rows(D, k.channels, 1);
    case 'wDown': return cols(D, l.ffn, k.channels, 1);
  }
}

const keptShape = (k: KeptLayer): LayerShape => ({ nHead: k.heads.length, nKvHead: k.attnGroups.length, ffn: k.channels.length });

/** Physically removes the groups a layer does not keep (D: model dim, hd: head dim). */
export function sliceLayer(l: LayerTensors, k: KeptLayer, D: number, hd: number): LayerTensors {
  const out = { ...l, ...keptShape(k) };
  for (const n of WEIGHTS) out[n] = sliceWeight(n, l[n], l, k, D, hd);
  return out;
}

/** Physically removes the groups each layer does not keep. */
export function sliceModel(m: ModelTensors, kept: KeptLayer[]): ModelTensors {
  return { ...m, layers: m.layers.map((l, i) => sliceLayer(l, kept[i], m.dim, m.headDim)) };
}

/**
 * The same, read from a loaded model as it is read: each weight is copied from the engine and sliced when a
 * writer takes it (see Model.lazyTensors), so pruning LLaMA-7B holds the model and one tensor with its
 * slice, not a copy of every weight (25 GiB) nor the whole pruned model (18.6 GiB at 5B). Valid while
 * `model` is loaded; a read after that is an error.
 */
export function sliceLoaded(model: Model, kept: KeptLayer[]): ModelTensors {
  const src = model.lazyTensors();
  const out = Object.defineProperties({}, Object.getOwnPropertyDescriptors(src)) as ModelTensors;  // its getters, not their values
  out.layers = src.layers.map((l, i) => {
    const k = kept[i];
    const layer = keptShape(k) as LayerTensors;  // the weights are getters, defined below
    Object.defineProperty(layer, 'attnNorm', { enumerable: true, get: () => l.attnNorm });
    Object.defineProperty(layer, 'ffnNorm', { enumerable: true, get: () => l.ffnNorm });
    for (const n of WEIGHTS) Object.defineProperty(layer, n, { enumerable: true, get: () => sliceWeight(n, l[n], l, k, src.dim, src.headDim) });
    return layer;
  });
  return out;
}

export async function pruneModel(model: Model, o: PruneOptions): Promise<PruneResult> {
  const t0 = performance.now();
  const a = archOf(model);
  if ((o.ratio === undefined) === (o.targetParams === undefined)) throw new EngineError('E_ARG', 'give exactly one of a ratio or a parameter target');
  const ratio = o.ratio ?? ratioForTarget(a, o.targetParams!, o.scope);
  let plan = planLocal(a, ratio, o.scope);
  const scores = await model.groupImportance(o.calib, { method: o.method, agg: o.agg ?? 'sum', seed: o.seed ?? 0, signal: o.signal });
  const kept = chooseKept(a, scores, plan, !!o.global, o.scope);
  if (o.global) {
    const layers: LayerPlan[] = a.layers.map((l, i) => {
      const shape = { nHead: kept[i].heads.length, nKvHead: kept[i].attnGroups.length, ffn: kept[i].channels.length };
      return { ...shape, params: layerParams(a, shape), prunedAttn: plan.layers[i].prunedAttn, prunedMlp: plan.layers[i].prunedMlp };
    });
    plan = finish(a, ratio, layers);
  }
  const tensors = sliceLoaded(model, kept);
  const { calib: _c, signal: _s, ...rest } = o;
  void _c; void _s;
  return {
    tensors, plan, kept, scores,
    settings: { ...rest, ratio, agg: o.agg ?? 'sum', calibSamples: o.calib.length, calibTokens: o.calib.reduce((s, e) => s + e.weight.length, 0) },
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Writes the pruned model as a HF folder (+ tokenizer files from the source, + pruning.json). */
export function writePruned(outDir: string, r: PruneResult, sourcePath: string, opts: { force?: boolean; importanceFile?: string } = {}): void {
  const srcDir = fs.existsSync(sourcePath) && fs.statSync(sourcePath).isDirectory() ? sourcePath : path.dirname(sourcePath);
  const tokFiles = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json'].map((f) => path.join(srcDir, f)).filter((f) => fs.existsSync(f));
  if (!tokFiles.some((f) => f.endsWith('.model') || f.endsWith('tokenizer.json'))) {
    const tm = fs.readdirSync(srcDir).find((f) => /^tok.*\.model$/.test(f));
    if (tm) tokFiles.push(path.join(srcDir, tm));
  }
  atomicWriteDir(outDir, !!opts.force, (tmp) => {
    writeHfFolder(tmp, r.tensors, {});
    for (const f of tokFiles) fs.copyFileSync(f, path.join(tmp, /^tok.*\.model$/.test(path.basename(f)) ? 'tokenizer.model' : path.basename(f)));
    const report = {
      tool: 'tailor',
      source: sourcePath,
      method: r.settings.method,
      settings: r.settings,
      pruning_ratio: r.plan.ratio,
      params_before: r.plan.paramsBefore,
      params_after: r.plan.paramsAfter,
      params_removed_share: r.plan.removedShare,
      calibration_loss: r.scores.loss,
      seconds: r.seconds,
      importance_seconds: r.scores.ms / 1000,
      layers: r.kept.map((k, i) => ({ layer: i, heads: r.plan.layers[i].nHead, kv_heads: r.plan.layers[i].nKvHead, ffn: r.plan.layers[i].ffn, kept_kv_groups: k.attnGroups, kept_heads: k.heads, kept_channels: k.channels })),
    };
    fs.writeFileSync(path.join(tmp, 'pruning.json'), JSON.stringify(report, null, 1) + '\n');
  });
  if (opts.importanceFile) fs.writeFileSync(opts.importanceFile, JSON.stringify(importanceJson(r.scores)) + '\n');
}

export function importanceJson(s: RawGroupScores): { layers: Array<{ attn: number[]; mlp: number[] }> } {
  return { layers: s.attn.map((a, i) => ({ attn: Array.from(a), mlp: Array.from(s.mlp[i]) })) };
}

export { paramCount };
