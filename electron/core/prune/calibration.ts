// calibration.ts — the calibration examples of structural pruning (what the importance pass's gradients are
// taken on): N seeded windows of L tokens of a text (LLM-Pruner's 10 × 64, no BOS before mid-text windows),
// exact token ids from JSON, or a task's training items rendered as the LoRA stage renders them (prompt +
// completion), tokenized with BOS and packed into windows of L tokens — Tailored-LLaMA's task-specific
// compression.
import { EngineError } from '../engine/errors.js';
import type { RawExample } from '../engine/native.js';
import { fewShot, renderExample, type ChoiceItem, type PromptTemplate } from '../tasks/index.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { PromptCompletion } from '../train/data.js';

/** xorshift32 from a seed (the stream calibrationFromText has always used). */
function rng(seed: number): () => number {
  let x = (seed >>> 0) ^ 0x9e3779b9;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}

/**
 * N windows of L tokens of [BOS] + encode(text) at seeded random offsets (LLM-Pruner: 10 × 64). As LLM-Pruner's
 * get_bookcorpus/get_c4 slice a tokenized document at a random offset, a window holds a BOS only when it starts
 * at offset 0: a BOS in front of mid-text tokens is a context the model never saw, whose first predictions
 * (≈ 14 nats on stories260K) would dominate the gradients (see bench/README.md).
 */
export function calibrationFromText(ids: number[], samples: number, seqLen: number, seed: number, bos: number): RawExample[] {
  const stream = bos >= 0 ? [bos, ...ids] : ids;
  if (stream.length < seqLen) throw new EngineError('E_ARG', `the calibration text has ${stream.length} tokens (with BOS), fewer than --seq-len ${seqLen}`);
  const rnd = rng(seed);
  const out: RawExample[] = [];
  for (let s = 0; s < samples; s++) {
    const off = rnd() % (stream.length - seqLen + 1);
    const win = stream.slice(off, off + seqLen);
    out.push({ ids: Int32Array.from(win), weight: new Float32Array(win.length - 1).fill(1) });
  }
  return out;
}

/** Exact calibration ids ([[1, 403, …], …]); every predicted token weighs 1. */
export function calibrationFromIds(seqs: unknown, vocab: number): RawExample[] {
  if (!Array.isArray(seqs) || seqs.length === 0 || seqs.some((s) => !Array.isArray(s) || s.length < 2 || s.some((t) => !Number.isInteger(t) || t < 0 || t >= vocab)))
    throw new EngineError('E_FORMAT', `calibration ids must be a JSON array of sequences of ≥ 2 token ids below ${vocab}`);
  return (seqs as number[][]).map((s) => ({ ids: Int32Array.from(s), weight: new Float32Array(s.length - 1).fill(1) }));
}

/**
 * N windows of exactly L tokens packed from rendered training examples: the records in a seeded order, each
 * [BOS] + encode(prompt + completion) (as the LoRA stage tokenizes them); every window starts at a record's
 * BOS and takes the following records until it holds L tokens (the last one cut); the next window starts at
 * the next record. When the records run out they are taken again in the same order. Every predicted token
 * weighs 1 except a record's BOS (the boundary between two records is not a prediction). Only the records
 * used are tokenized.
 */
export function calibrationFromExamples(tok: Pick<Tokenizer, 'encode'>, records: PromptCompletion[], samples: number, seqLen: number, seed: number, bos: number): RawExample[] {
  if (records.length === 0) throw new EngineError('E_ARG', 'no training examples to calibrate on');
  if (!Number.isInteger(samples) || samples < 1 || !Number.isInteger(seqLen) || seqLen < 2)
    throw new EngineError('E_ARG', `calibration needs ≥ 1 sample of ≥ 2 tokens (got ${samples} × ${seqLen})`);
  const order = [...records.keys()];
  const rnd = rng(seed);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rnd() % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const cache = new Map<number, number[]>();
  const idsOf = (k: number): number[] => {
    let ids = cache.get(k);
    if (!ids) {
      const r = records[k];
      ids = [...(bos >= 0 ? [bos] : []), ...tok.encode(r.prompt + r.completion)];
      cache.set(k, ids);
    }
    return ids;
  };
  const out: RawExample[] = [];
  let cursor = 0;
  for (let s = 0; s < samples; s++) {
    const win: number[] = [];
    const starts: number[] = [];
    for (let taken = 0; win.length < seqLen; taken++) {
      if (taken === order.length)
        throw new EngineError('E_ARG', `the ${records.length} training examples hold only ${win.length} tokens, fewer than --seq-len ${seqLen}`);
      starts.push(win.length);
      win.push(...idsOf(order[cursor++ % order.length]));
    }
    win.length = seqLen;
    const weight = new Float32Array(seqLen - 1).fill(1);
    if (bos >= 0) for (const p of starts) if (p > 0) weight[p - 1] = 0;
    out.push({ ids: Int32Array.from(win), weight });
  }
  return out;
}

/**
 * The calibration pool of one or more tasks: each task's training items rendered with its training template.
 * With several tasks each contributes as many items as the smallest has (picked by fewShot: seeded and
 * stratified by label), so no task outweighs the others.
 */
export function taskCalibrationRecords(parts: Array<{ items: ChoiceItem[]; template: PromptTemplate }>, seed: number): PromptCompletion[] {
  if (parts.length === 1) return parts[0].items.map((it) => renderExample(parts[0].template, it));
  const n = Math.min(...parts.map((p) => p.items.length));
  return parts.flatMap((p) => fewShot(p.items, n, seed).map((it) => renderExample(p.template, it)));
}
