// The engine against the golden outputs of an independent PyTorch implementation: stories260K in all
// three formats and tiny-random-llama3 (untied head, GQA 6/2, llama3 rope scaling).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Model } from '../electron/core/engine/engine.js';
import { perplexity } from '../electron/core/text/perplexity.js';
import { generateText } from '../electron/core/text/generate.js';
import { golden, maxAbsDiff } from './helpers/golden.js';
import { shared } from './helpers/paths.js';

const STORIES = {
  llama2c: shared('models', 'stories260K', 'stories260K.bin'),
  gguf: shared('models', 'stories260K', 'stories260K.gguf'),
  hf: shared('models', 'stories260K-hf'),
};

async function checkSequences(modelPath: string, name: 'stories260K' | 'tiny-random-llama3', opts: { blas?: boolean; threads?: number } = {}) {
  const g = golden(name);
  const m = await Model.load(modelPath, { ...opts, noTokenizer: true });
  try {
    const seqs = Object.values(g.sequences);
    const scores = await m.score(seqs.map((s) => s.ids), { lastLogits: true });
    for (const [k, s] of Object.entries(g.sequences)) {
      const r = scores[seqs.indexOf(s)];
      assert.deepEqual(Array.from(r.argmax), s.argmax, `${modelPath} ${k}: argmax at every position`);
      const d = maxAbsDiff(r.lastLogits!, s.last_logits);
      assert.ok(d <= 1e-4, `${modelPath} ${k}: last logits differ by ${d}`);
      const nll = r.nllSum / (s.ids.length - 1);
      assert.ok(Math.abs(nll - s.mean_nll) <= 1e-4, `${modelPath} ${k}: mean_nll ${nll} vs ${s.mean_nll}`);
    }
  } finally {
    m.dispose();
  }
}

for (const [fmt, p] of Object.entries(STORIES)) {
  test(`stories260K (${fmt}): argmax, last logits and mean NLL match the golden sequences`, async () => {
    await checkSequences(p, 'stories260K');
  });
}

test('tiny-random-llama3 (HF, untied, GQA, llama3 rope scaling) matches its golden sequences', async () => {
  await checkSequences(shared('fixtures', 'golden', 'tiny-random-llama3'), 'tiny-random-llama3');
});

test('the built-in GEMM and one thread give the golden results too (no BLAS)', async () => {
  await checkSequences(STORIES.hf, 'stories260K', { blas: false, threads: 1 });
  await checkSequences(shared('fixtures', 'golden', 'tiny-random-llama3'), 'tiny-random-llama3', { blas: false, threads: 2 });
});

for (const [fmt, p] of Object.entries(STORIES)) {
  test(`stories260K (${fmt}): greedy 80 tokens are the golden ids`, async () => {
    const g = golden('stories260K').greedy!;
    const m = await Model.load(p, { noTokenizer: true });
    try {
      const r = await m.generateIds(g.prompt_ids, { maxTokens: g.ids.length - g.prompt_ids.length, stopAtEos: false });
      assert.deepEqual([...g.prompt_ids, ...r.tokens], g.ids);
    } finally {
      m.dispose();
    }
  });
}

test('greedy text from the prompt string equals the golden text (tokenizer + engine + streaming decode)', async () => {
  const g = golden('stories260K').greedy!;
  const m = await Model.load(STORIES.hf);
  try {
    const tok = m.requireTokenizer();
    const prompt = tok.decode(g.prompt_ids);
    assert.equal(prompt, 'Once upon a time');
    let streamed = '';
    const r = await generateText(m, prompt, { maxTokens: g.ids.length - g.prompt_ids.length, onText: (d) => (streamed += d) });
    assert.deepEqual(r.promptIds, g.prompt_ids);
    assert.equal(prompt + r.text, g.text);
    assert.equal(streamed, r.text);
  } finally {
    m.dispose();
  }
});

test('perplexity of stories260K on TinyStories (seq-len 128) is within 0.1% of the golden value', async () => {
  const gp = golden('stories260K').perplexity!['tinystories/validation_head.txt'];
  const m = await Model.load(STORIES.hf);
  try {
    let updates = 0;
    const r = await perplexity(m, fs.readFileSync(shared('datasets', 'tinystories', 'validation_head.txt'), 'utf8'), {
      seqLen: gp.seq_len,
      onProgress: () => updates++,
    });
    assert.equal(r.windows, gp.windows);
    assert.equal(r.predicted_tokens, gp.predicted_tokens);
    assert.ok(Math.abs(r.ppl / gp.ppl - 1) < 1e-3, `ppl ${r.ppl} vs golden ${gp.ppl}`);
    assert.ok(Math.abs(r.mean_nll - gp.mean_nll) < 1e-4, `mean_nll ${r.mean_nll} vs ${gp.mean_nll}`);
    assert.ok(updates > 1, 'progress was reported');
  } finally {
    m.dispose();
  }
});

test('perplexity on the first 200 windows of WikiText-2 matches the golden value', async () => {
  const gp = golden('stories260K').perplexity!['wikitext2/test.txt (first 200 windows)'];
  const m = await Model.load(STORIES.hf);
  try {
    const r = await perplexity(m, fs.readFileSync(shared('datasets', 'wikitext2', 'test.txt'), 'utf8'), { seqLen: gp.seq_len, maxWindows: 200 });
    assert.equal(r.windows, gp.windows);
    assert.equal(r.predicted_tokens, gp.predicted_tokens);
    assert.ok(Math.abs(r.ppl / gp.ppl - 1) < 1e-3, `ppl ${r.ppl} vs golden ${gp.ppl}`);
  } finally {
    m.dispose();
  }
});
