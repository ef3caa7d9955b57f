// Test helper: the golden reference outputs (independent PyTorch) and comparisons against them.
import * as fs from 'node:fs';
import assert from 'node:assert/strict';
import { shared } from './paths.js';

export interface GoldenSequence { ids: number[]; argmax: number[]; last_logits: number[]; mean_nll: number }
export interface GoldenFile {
  model: string;
  sequences: Record<string, GoldenSequence>;
  greedy?: { prompt_ids: number[]; ids: number[]; text: string };
  perplexity?: Record<string, { seq_len: number; windows: number; predicted_tokens: number; mean_nll: number; ppl: number }>;
}

export function golden(name: 'stories260K' | 'tiny-random-llama3'): GoldenFile {
  return JSON.parse(fs.readFileSync(shared('fixtures', 'golden', `${name}.json`), 'utf8')) as GoldenFile;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'length');
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
