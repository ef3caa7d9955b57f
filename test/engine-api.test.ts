// The engine's contract with its callers: promises that never block the event loop, cancellation within
// a second through AbortSignal, progress, seeded sampling, stop strings, typed errors for bad calls.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Model, EngineError } from '../electron/core/engine/engine.js';
import { randomModel } from '../electron/core/formats/model-tensors.js';
import { writeGguf } from '../electron/core/formats/gguf-write.js';
import { generateText } from '../electron/core/text/generate.js';
import { perplexity } from '../electron/core/text/perplexity.js';
import { shared, tempDir } from './helpers/paths.js';
import { syntheticTokenizer } from './helpers/hostile.js';

const STORIES = shared('models', 'stories260K-hf');
const dir = tempDir('tailor-api-');

/** A model big enough that scoring many windows takes seconds on two cores. */
function slowModel(): string {
  const p = path.join(dir, 'slow.gguf');
  const m = randomModel({ dim: 256, nLayers: 4, nHead: 8, nKvHead: 8, ffn: 688, vocabSize: 2000, contextLength: 256, seed: 5 });
  writeGguf(p, m, { tokenizer: syntheticTokenizer(2000) });
  return p;
}

const windows = (n: number, len: number, vocab: number) =>
  Array.from({ length: n }, (_, w) => Array.from({ length: len }, (_, i) => (i === 0 ? 1 : 3 + ((w * 131 + i * 17) % (vocab - 3)))));

test('a long score runs off the event loop, reports progress, and cancels within a second', async () => {
  const m = await Model.load(slowModel(), { noTokenizer: true });
  try {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    const progress: number[] = [];
    const ac = new AbortController();
    const job = m.score(windows(400, 256, 2000), { signal: ac.signal, maxBatchTokens: 1024, onProgress: (d) => progress.push(d) });
    await new Promise((r) => setTimeout(r, 700));
    const abortedAt = performance.now();
    ac.abort();
    await assert.rejects(job, (e: unknown) => e instanceof EngineError && e.code === 'E_CANCELLED');
    const latency = performance.now() - abortedAt;
    clearInterval(timer);
    assert.ok(latency < 1000, `cancelled after ${latency.toFixed(0)} ms`);
    assert.ok(ticks >= 30, `the event loop kept running (${ticks} timer ticks in ~0.7 s)`);
    assert.ok(progress.length >= 1 && progress.every((v, i) => i === 0 || v > progress[i - 1]), 'progress increases');
    // the model is still usable after a cancel
    const [r] = await m.score([[1, 5, 6, 7]]);
    assert.equal(r.argmax.length, 4);
  } finally {
    m.dispose();
  }
});

test('an already-aborted signal rejects at once; perplexity cancels too', async () => {
  const m = await Model.load(STORIES);
  try {
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(m.score([[1, 2, 3]], { signal: ac.signal }), (e: unknown) => e instanceof EngineError && e.code === 'E_CANCELLED');
    const ac2 = new AbortController();
    const text = 'Once upon a time there was a cat. '.repeat(20000);
    const job = perplexity(m, text, { signal: ac2.signal, windowsPerCall: 4, onProgress: (p) => { if (p.done >= 8) ac2.abort(); } });
    await assert.rejects(job, (e: unknown) => e instanceof EngineError && e.code === 'E_CANCELLED');
  } finally {
    m.dispose();
  }
});

test('a load reports progress in file bytes, from 0 to all the weights, and an aborted signal stops it', async () => {
  const file = slowModel();
  const seen: Array<[number, number]> = [];
  const m = await Model.load(file, { noTokenizer: true, onProgress: (d, t) => seen.push([d, t]) });
  try {
    // progress calls arrive through the event loop, and may come after the promise settles
    for (let i = 0; i < 2000 && !(seen.length && seen[seen.length - 1][0] === seen[seen.length - 1][1]); i++) await new Promise((r) => setTimeout(r, 1));
    assert.ok(seen.length > 10, `progress after each tensor (${seen.length} calls)`);
    const total = seen[0][1];
    assert.deepEqual(seen[0], [0, total]);
    assert.deepEqual(seen[seen.length - 1], [total, total]);
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0] && seen[i][1] === total);
    // an f32 GGUF: every parameter's 4 bytes are decoded, and nothing beyond the file
    assert.ok(total >= 4 * m.info.nParams && total <= fs.statSync(file).size, `${total} bytes for ${m.info.nParams} parameters`);
  } finally {
    m.dispose();
  }
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(Model.load(file, { noTokenizer: true, signal: ac.signal }), (e: unknown) => e instanceof EngineError && e.code === 'E_CANCELLED');
});

test('sampling: the same seed repeats, another seed differs, top-k 1 is greedy, tokens stream in order', async () => {
  const m = await Model.load(STORIES, { noTokenizer: true });
  try {
    const prompt = [1, 403, 407, 261, 378];
    const opts = { maxTokens: 40, temperature: 1.0, topP: 0.95, stopAtEos: false };
    const a = await m.generateIds(prompt, { ...opts, seed: 42 });
    const streamed: number[] = [];
    const b = await m.generateIds(prompt, { ...opts, seed: 42, onToken: (id, i) => { assert.equal(i, streamed.length); streamed.push(id); } });
    const c = await m.generateIds(prompt, { ...opts, seed: 43 });
    assert.deepEqual(a.tokens, b.tokens);
    assert.deepEqual(streamed, b.tokens);
    assert.notDeepEqual(a.tokens, c.tokens);
    const greedy = await m.generateIds(prompt, { maxTokens: 40, stopAtEos: false });
    const topk1 = await m.generateIds(prompt, { maxTokens: 40, temperature: 0.8, topK: 1, seed: 7, stopAtEos: false });
    assert.deepEqual(topk1.tokens, greedy.tokens);
    assert.equal(a.stopReason, 'length');
  } finally {
    m.dispose();
  }
});

test('generation stops at a stop token, at a stop string (cut before it), and at max tokens', async () => {
  const m = await Model.load(STORIES);
  try {
    const greedy = await m.generateIds([1, 403, 407, 261, 378], { maxTokens: 60, stopAtEos: false });
    const stopTok = greedy.tokens[12];
    const first = greedy.tokens.indexOf(stopTok);
    const st = await m.generateIds([1, 403, 407, 261, 378], { maxTokens: 60, stopIds: [stopTok] });
    assert.equal(st.stopReason, 'eos');
    assert.deepEqual(st.tokens, greedy.tokens.slice(0, first + 1));
    const full = await generateText(m, 'Once upon a time', { maxTokens: 300 });
    let streamed = '';
    const cut = await generateText(m, 'Once upon a time', { maxTokens: 300, stop: ['Lily'], onText: (d) => (streamed += d) });
    assert.equal(cut.stopReason, 'stop');
    assert.equal(cut.text, full.text.slice(0, full.text.indexOf('Lily')));
    assert.equal(streamed, cut.text, 'no part of the stop string was streamed');
    assert.ok(cut.ids.length < full.ids.length, 'generation stopped early in the engine');
    const short = await generateText(m, 'Once upon a time', { maxTokens: 5 });
    assert.equal(short.stopReason, 'length');
    assert.equal(short.ids.length, 5);
  } finally {
    m.dispose();
  }
});

test('bad calls are typed errors: ids outside the vocabulary, over-long sequences, disposed or busy models', async () => {
  const m = await Model.load(STORIES, { noTokenizer: true });
  await assert.rejects(m.score([[1, 99999]]), (e: unknown) => e instanceof EngineError && e.code === 'E_ARG' && /vocabulary/.test(e.message));
  await assert.rejects(m.score([new Array(600).fill(5)]), (e: unknown) => e instanceof EngineError && e.code === 'E_ARG' && /context/.test(e.message));
  await assert.rejects(m.score([[]]), (e: unknown) => e instanceof EngineError && e.code === 'E_ARG');
  await assert.rejects(m.generateIds([1], { topP: 0 }), (e: unknown) => e instanceof EngineError && e.code === 'E_ARG');
  const job = m.score(windows(64, 128, 512));
  assert.throws(() => m.dispose(), (e: unknown) => (e as { code?: string }).code === 'E_ARG');
  await job;
  m.dispose();
  await assert.rejects(m.score([[1, 2]]), (e: unknown) => e instanceof EngineError && e.code === 'E_ARG');
  await assert.rejects(Model.load('/no/such/model'), (e: unknown) => e instanceof EngineError && e.code === 'E_IO');
});

test('a GGUF carries its tokenizer: stories260K.gguf tokenizes like llama.cpp and generates the golden story', async () => {
  const m = await Model.load(shared('models', 'stories260K', 'stories260K.gguf'));
  try {
    assert.equal(m.info.tokenizer, 'gguf-llama');
    const r = await generateText(m, 'Once upon a time', { maxTokens: 30 });
    assert.ok(r.text.startsWith(', there was a little girl named Lily.'), r.text);
  } finally {
    m.dispose();
  }
});
