// data.ts — training data: prompt/completion records (JSONL) and plain text turned into token examples
// with a loss weight per predicted token (0 on prompt tokens: the loss is on the completion only).
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { EngineError } from '../engine/errors.js';
import type { Tokenizer } from '../tokenizer/index.js';
import type { RawExample } from '../engine/native.js';

export interface PromptCompletion { prompt: string; completion: string }

function readText(file: string): string {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new EngineError('E_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  return (file.endsWith('.gz') ? zlib.gunzipSync(buf) : buf).toString('utf8');
}

/** Reads `{prompt, completion}` records, one JSON object per line; says which line is wrong. */
export function readPromptCompletionJsonl(file: string): PromptCompletion[] {
  const out: PromptCompletion[] = [];
  readText(file).split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new EngineError('E_FORMAT', `${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const r = rec as Record<string, unknown>;
    if (typeof r?.prompt !== 'string' || typeof r?.completion !== 'string')
      throw new EngineError('E_FORMAT', `${file}:${i + 1}: each line needs string fields "prompt" and "completion"`);
    if (r.completion.length === 0) throw new EngineError('E_FORMAT', `${file}:${i + 1}: empty completion`);
    out.push({ prompt: r.prompt, completion: r.completion });
  });
  if (out.length === 0) throw new EngineError('E_FORMAT', `${file}: no records`);
  return out;
}

/**
 * [BOS] + encode(prompt + completion) (+ EOS), loss weight 1 on the completion's tokens (those after
 * encode(prompt), as lm-eval splits a continuation) and on EOS, 0 on the prompt's. Longer than maxLen + 1
 * tokens: the start of the prompt is dropped, never the completion (unless it alone is too long).
 */
export function promptCompletionExamples(tok: Tokenizer, recs: PromptCompletion[], opts: { eos?: boolean; maxLen?: number } = {}): RawExample[] {
  return recs.map((r) => {
    const bos = tok.bosId >= 0 ? [tok.bosId] : [];
    const full = [...bos, ...tok.encode(r.prompt + r.completion)];
    const ctx = [...bos, ...tok.encode(r.prompt)];
    let split = 0;
    while (split < ctx.length && split < full.length && ctx[split] === full[split]) split++;
    if (opts.eos !== false && tok.eosId >= 0) full.push(tok.eosId);
    // too long: drop the prompt's oldest tokens (after BOS) so the completion, which carries the loss,
    // stays; only a completion longer than the window itself is cut at its end
    let ids = full;
    const limit = opts.maxLen ? opts.maxLen + 1 : Infinity;
    if (ids.length > limit) {
      const drop = Math.min(ids.length - limit, Math.max(0, split - bos.length - 1));
      ids = [...ids.slice(0, bos.length), ...ids.slice(bos.length + drop)];
      split -= drop;
      if (ids.length > limit) ids = ids.slice(0, limit);
    }
    const weight = new Float32Array(ids.length - 1);
    for (let t = 0; t < weight.length; t++) weight[t] = t + 1 >= split ? 1 : 0;
    return { ids: Int32Array.from(ids), weight };
  });
}

/** Plain language-model examples: [BOS] + encode(text) cut into chunks of maxLen + 1 tokens. */
export function textExamples(tok: Tokenizer, text: string, maxLen: number): RawExample[] {
  const ids = tok.encode(text, { bos: tok.bosId >= 0 });
  const out: RawExample[] = [];
  for (let i = 0; i + 2 <= ids.length; i += maxLen) {
    const chunk = ids.slice(i, i + maxLen + 1);
    if (chunk.length < 2) break;
    out.push({ ids: Int32Array.from(chunk), weight: new Float32Array(chunk.length - 1).fill(1) });
  }
  if (out.length === 0) throw new EngineError('E_ARG', 'the text is too short to train on');
  return out;
}

export function readTextFile(file: string): string {
  return readText(file);
}
