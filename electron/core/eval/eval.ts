// eval.ts — zero-/few-shot multiple-choice evaluation in lm-eval-harness's manner, so the numbers compare
// with LLM-Pruner's and the paper's tables: each choice is a (context, continuation) request; the
// continuation's tokens are those of encode(context + continuation) after encode(context) (BOS first);
// its score is the summed log-likelihood; acc takes the argmax, acc_norm the argmax of log-likelihood
// per character of the continuation (without its leading space).
import type { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import { Eta, type StageProgress } from '../text/progress.js';
import type { ChoiceItem } from '../tasks/types.js';

export interface Request { item: number; choice: number; ids: number[]; contStart: number }

/** Token ids of every (item, choice) request; contexts too long for the model are cut from the left. */
export function buildRequests(tok: Tokenizer, items: ChoiceItem[], maxLen: number, prefix = ''): Request[] {
  const out: Request[] = [];
  const bos = tok.bosId >= 0 ? [tok.bosId] : [];
  items.forEach((it, i) => {
    it.continuations.forEach((cont, c) => {
      const ctx = prefix + it.contexts[c];
      const ctxIds = [...bos, ...tok.encode(ctx)];
      const whole = [...bos, ...tok.encode(ctx + cont)];
      let split = 0;
      while (split < ctxIds.length && split < whole.length && ctxIds[split] === whole[split]) split++;
      split = Math.min(split, whole.length - 1);
      let ids = whole;
      let contStart = Math.max(1, split);
      if (ids.length > maxLen) {
        const cut = ids.length - maxLen;
        if (cut >= contStart) throw new EngineError('E_ARG', `item ${it.id}: its continuation alone is longer than the model's context`);
        ids = [...bos, ...ids.slice(bos.length + cut)];
        contStart -= cut;
      }
      out.push({ item: i, choice: c, ids, contStart });
    });
  });
  return out;
}

export interface ItemResult { id: string; label: number; ll: number[]; pred: number; predNorm: number }
export interface TaskResult { task: string; n: number; acc: number; acc_norm: number; items: ItemResult[]; seconds: number }

export interface EvalOptions {
  signal?: AbortSignal;
  onProgress?: (p: StageProgress) => void;
  batchTokens?: number;
  /** compute the context an item's choices share once (default true; false for the benchmark's comparison) */
  sharePrefixes?: boolean;
}

/** Requests per scoring call (progress and cancellation between calls), and the engine's batch size in tokens. */
export const EVAL_CHUNK = 64;
export const EVAL_BATCH_TOKENS = 4096;

/** Summed continuation log-likelihood of every request. */
export async function scoreRequests(model: Model, reqs: Request[], o: EvalOptions = {}): Promise<number[]> {
  const ll = new Array<number>(reqs.length).fill(0);
  const eta = new Eta(reqs.length);
  const per = EVAL_CHUNK;
  for (let i = 0; i < reqs.length; i += per) {
    const chunk = reqs.slice(i, i + per);
    const scores = await model.score(chunk.map((r) => r.ids), { signal: o.signal, maxBatchTokens: o.batchTokens ?? EVAL_BATCH_TOKENS, sharePrefixes: o.sharePrefixes });
    scores.forEach((s, k) => {
      const r = chunk[k];
      let sum = 0;
      for (let t = r.contStart - 1; t < r.ids.length - 1; t++) sum += s.logprob[t];
      ll[i + k] = sum;
    });
    o.onProgress?.(eta.update(Math.min(reqs.length, i + per)));
  }
  return ll;
}

const argmax = (v: number[]) => v.reduce((b, x, i) => (x > v[b] ? i : b), 0);

export function accuracy(items: ChoiceItem[], reqs: Request[], ll: number[]): Omit<TaskResult, 'task' | 'seconds'> {
  const per: number[][] = items.map((it) => new Array(it.continuations.length).fill(0));
  reqs.forEach((r, k) => (per[r.item][r.choice] = ll[k]));
  const res = items.map((it, i): ItemResult => {
    const norm = per[i].map((v, c) => v / Math.max(1, it.continuations[c].replace(/^ /, '').length));
    return { id: it.id, label: it.label, ll: per[i], pred: argmax(per[i]), predNorm: argmax(norm) };
  });
  const n = res.length;
  return {
    n,
    acc: n ? res.filter((r) => r.pred === r.label).length / n : 0,
    acc_norm: n ? res.filter((r) => r.predNorm === r.label).length / n : 0,
    items: res,
  };
}

/** k in-context demonstrations (context + correct continuation), each followed by a blank line. */
export function demonstrations(demos: ChoiceItem[]): string {
  return demos.map((d) => d.contexts[d.label] + d.continuations[d.label] + '\n\n').join('');
}

export async function evaluateItems(model: Model, task: string, items: ChoiceItem[], o: EvalOptions & { demos?: ChoiceItem[] } = {}): Promise<TaskResult> {
  const t0 = performance.now();
  if (items.length === 0) throw new EngineError('E_ARG', `${task}: no items to evaluate`);
  const reqs = buildRequests(model.requireTokenizer(), items, model.info.contextLength, o.demos?.length ? demonstrations(o.demos) : '');
  const ll = await scoreRequests(model, reqs, o);
  return { task, ...accuracy(items, reqs, ll), seconds: (performance.now() - t0) / 1000 };
}
