// stats.ts — summaries of repeated measurements and the seeded prompt ids.
import { Rng } from '../electron/core/formats/model-tensors.js';

export interface Summary {
  /** median of the samples */
  median: number;
  min: number;
  max: number;
  /** (max − min) / 2 / median: the ± half-range, relative */
  spread: number;
  samples: number[];
}

/** Which summary the table reports: the best run (highest tok/s) or the median run. */
export type Stat = 'best' | 'median';

export function headline(s: Summary, stat: Stat): number {
  return stat === 'best' ? s.max : s.median;
}

export function summarize(samples: number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  const min = s[0];
  const max = s[s.length - 1];
  return { median, min, max, spread: median > 0 ? (max - min) / 2 / median : 0, samples };
}

/** BOS followed by n−1 seeded random ids in [3, vocab) (so no BOS/EOS/UNK inside the prompt). */
export function promptIds(n: number, vocab: number, seed: number, bos = 1): number[] {
  const rng = new Rng(seed);
  const ids = [bos];
  for (let i = 1; i < n; i++) ids.push(3 + Math.floor(rng.uniform() * (vocab - 3)));
  return ids;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
