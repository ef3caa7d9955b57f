// perplexity.ts — LLM-Pruner's perplexity protocol: token stream = [BOS] + encode(whole text), cut into
// non-overlapping windows of seqLen tokens (the last partial window dropped); each window is scored on
// its own from position 0, predicting its tokens 1..seqLen-1; ppl = exp(total NLL / predicted tokens).
import { EngineError } from '../engine/errors.js';
import type { Model } from '../engine/engine.js';
import { Eta, type StageProgress } from './progress.js';

export interface PerplexityOptions {
  seqLen?: number;
  /** score only the first N windows */
  maxWindows?: number;
  /** windows scored per engine call (progress and cancel granularity) */
  windowsPerCall?: number;
  signal?: AbortSignal;
  onProgress?: (p: StageProgress) => void;
}

export interface PerplexityResult {
  ppl: number;
  mean_nll: number;
  windows: number;
  predicted_tokens: number;
  seq_len: number;
  tokens: number;
}

export function perplexityWindows(ids: readonly number[], seqLen: number, maxWindows?: number): number[][] {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new EngineError('E_ARG', `seq-len must be an integer ≥ 2 (got ${seqLen})`);
  let n = Math.floor(ids.length / seqLen);
  if (maxWindows !== undefined) n = Math.min(n, maxWindows);
  const out: number[][] = [];
  for (let w = 0; w < n; w++) out.push(ids.slice(w * seqLen, (w + 1) * seqLen));
  return out;
}

export async function perplexity(model: Model, text: string, opts: PerplexityOptions = {}): Promise<PerplexityResult> {
  const seqLen = opts.seqLen ?? 128;
  if (seqLen > model.info.contextLength)
    throw new EngineError('E_ARG', `seq-len ${seqLen} exceeds the model's context of ${model.info.contextLength} tokens`);
  const tok = model.requireTokenizer();
  const ids = tok.encode(text, { bos: true });
  const windows = perplexityWindows(ids, seqLen, opts.maxWindows);
  if (windows.length === 0)
    throw new EngineError('E_ARG', `the text has ${ids.length} tokens, fewer than one window of ${seqLen}; use a longer text or a smaller --seq-len`);
  const per = Math.max(1, opts.windowsPerCall ?? Math.max(1, Math.floor(4096 / seqLen)));
  const eta = new Eta(windows.length);
  let nll = 0;
  for (let w = 0; w < windows.length; w += per) {
    const chunk = windows.slice(w, w + per);
    const scores = await model.score(chunk, { signal: opts.signal, maxBatchTokens: Math.max(seqLen, 2048) });
    for (const s of scores) nll += s.nllSum;
    opts.onProgress?.(eta.update(w + chunk.length));
  }
  const predicted = windows.length * (seqLen - 1);
  const mean = nll / predicted;
  return { ppl: Math.exp(mean), mean_nll: mean, windows: windows.length, predicted_tokens: predicted, seq_len: seqLen, tokens: ids.length };
}
