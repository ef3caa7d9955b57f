// generate.ts — text generation over the engine: tokenise the prompt (BOS first), stream decoded text as
// tokens arrive (incomplete UTF-8 held back), stop at EOS, at max tokens or at any stop string (the text
// is cut before it, and text that could still become a stop string is held back until it can't).
import type { Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';

export interface GenerateTextOptions {
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  signal?: AbortSignal;
  /** newly available text, in order */
  onText?: (delta: string) => void;
}

export interface GenerateTextResult {
  prompt: string;
  /** the generated continuation (without the prompt) */
  text: string;
  promptIds: number[];
  ids: number[];
  stopReason: 'eos' | 'length' | 'stop' | 'context';
  promptTokensPerSec: number;
  tokensPerSec: number;
}

export async function generateText(model: Model, prompt: string, opts: GenerateTextOptions = {}): Promise<GenerateTextResult> {
  const tok = model.requireTokenizer();
  const promptIds = tok.encode(prompt, { bos: tok.addBos || tok.bosId >= 0 });
  if (promptIds.length === 0) throw new EngineError('E_ARG', 'the prompt is empty and the tokenizer has no BOS token');
  const stops = (opts.stop ?? []).filter((s) => s.length > 0);
  // decode the continuation as the prompt's text would continue: SentencePiece's leading space of the
  // first generated piece is real text here, so the decoder must not strip it
  const dec = tok.createDecoder({ skipLeadingSpace: prompt.length === 0 });
  let text = '';      // decoded continuation so far
  let emitted = 0;    // how much of `text` was handed to onText
  let stopAt = -1;    // index of the first stop string in text
  const flush = (final: boolean) => {
    let safe = stopAt >= 0 ? stopAt : text.length;
    if (!final && stopAt < 0) {
      // hold back a suffix that is a prefix of some stop string
      for (const s of stops)
        for (let k = Math.min(s.length - 1, text.length); k > 0; k--)
          if (text.endsWith(s.slice(0, k))) { safe = Math.min(safe, text.length - k); break; }
    }
    if (safe > emitted) {
      opts.onText?.(text.slice(emitted, safe));
      emitted = safe;
    }
  };
  const res = await model.generateIds(promptIds, {
    maxTokens: opts.maxTokens ?? 128,
    temperature: opts.temperature,
    topK: opts.topK,
    topP: opts.topP,
    seed: opts.seed,
    signal: opts.signal,
    onToken: (id) => {
      if (stopAt >= 0) return;
      if (id === model.info.eosId) return;
      text += dec.push(id);
      for (const s of stops) {
        const i = text.indexOf(s, Math.max(0, emitted - s.length));
        if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
      }
      flush(false);
    },
    shouldStop: () => stopAt >= 0,
  });
  if (stopAt < 0) text += dec.flush();
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (stopAt < 0 || i < stopAt)) stopAt = i;
  }
  flush(true);
  const finalText = stopAt >= 0 ? text.slice(0, stopAt) : text;
  const reason = stopAt >= 0 ? 'stop' : res.stopReason === 'stopped' ? 'stop' : res.stopReason;
  return {
    prompt,
    text: finalText,
    promptIds,
    ids: res.tokens,
    stopReason: reason,
    promptTokensPerSec: res.promptMs > 0 ? (res.promptTokens / res.promptMs) * 1000 : 0,
    tokensPerSec: res.generateMs > 0 ? (res.tokens.length / res.generateMs) * 1000 : 0,
  };
}
