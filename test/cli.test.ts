// The `tailor` command line, run as a user runs it (a child process), against the golden outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';
import { golden, maxAbsDiff } from './helpers/golden.js';
import { Model, kvCacheOf } from '../electron/core/engine/engine.js';

const CLI = path.join(REPO_ROOT, 'dist', 'electron', 'core', 'cli', 'main.js');
const HF = shared('models', 'stories260K-hf');

function tailor(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('tailor info --json: architecture, parameters, per-layer shapes, tokenizer', () => {
  const r = tailor('info', HF, '--json');
  assert.equal(r.code, 0, r.err);
  const i = JSON.parse(r.out);
  assert.equal(i.nParams, 260032);
  assert.equal(i.nLayers, 5);
  assert.equal(i.vocabSize, 512);
  assert.equal(i.contextLength, 512);
  assert.equal(i.tokenizer, 'sentencepiece');
  assert.deepEqual(i.layers[0], { nHead: 8, nKvHead: 4, ffn: 172 });
  // a generation's cache on the CPU: fp32 keys and values of 4 KV heads × head dim 8 in each of 5 layers
  assert.deepEqual(i.kvBf16HeadDims, []);
  assert.deepEqual(i.kvCache, { dtype: 'f32', bytesPerToken: 5 * 2 * 4 * 8 * 4 });
  const text = tailor('info', shared('models', 'stories260K', 'stories260K.bin'));
  assert.equal(text.code, 0, text.err);
  assert.match(text.out, /format\s+llama2c/);
  assert.match(text.out, /all 5: 8 heads, 4 KV heads, FFN 172/);
  assert.match(text.out, /^kv cache {6}fp32, 1\.25 KiB per token \(640 KiB for the 512-token context\)$/m);
});

test('tailor info reads the header without loading, and says exactly what a load says', async () => {
  for (const p of [HF, shared('models', 'stories260K', 'stories260K.gguf'), shared('models', 'stories260K', 'stories260K.bin')]) {
    const r = tailor('info', p, '--json');
    assert.equal(r.code, 0, r.err);
    const { engine: _e, kvCache, ...fromInfo } = JSON.parse(r.out) as Record<string, unknown>;
    const m = await Model.load(p);
    try {
      // everything but where a loaded model's host weights are (a state of the load, not of the file)
      const { hostWeights: _h, hostResidentBytes: _r, ...loaded } = JSON.parse(JSON.stringify(m.info)) as Record<string, unknown>;
      assert.equal(_h, 'resident');
      assert.deepEqual(fromInfo, loaded, p);
      assert.deepEqual(kvCache, kvCacheOf(m.info), p);
    } finally {
      m.dispose();
    }
  }
});

test('tailor tokenize gives the golden ids (no BOS unless --bos)', () => {
  const cases = JSON.parse(fs.readFileSync(shared('fixtures', 'golden', 'tokenizers.json'), 'utf8')).tok512.cases as Array<{ text: string; ids: number[] }>;
  const c = cases[1];
  const r = tailor('tokenize', HF, '--text', c.text, '--json');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out).ids, c.ids);
  const b = tailor('tokenize', HF, '--text', c.text, '--bos');
  assert.equal(b.out.trim(), [1, ...c.ids].join(' '));
});

test('tailor score --json matches the golden sequence', () => {
  const s = golden('stories260K').sequences.tinystories_64;
  const r = tailor('score', shared('models', 'stories260K', 'stories260K.gguf'), '--ids', s.ids.join(','), '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(j.argmax, s.argmax);
  assert.ok(maxAbsDiff(j.last_logits, s.last_logits) <= 1e-4);
  assert.ok(Math.abs(j.mean_nll - s.mean_nll) <= 1e-4);
});

test('tailor generate writes the golden greedy story; sampling is seeded', () => {
  const g = golden('stories260K').greedy!;
  const r = tailor('generate', HF, '--prompt', 'Once upon a time', '--max-tokens', String(g.ids.length - g.prompt_ids.length));
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, g.text + '\n');
  const a = tailor('generate', HF, '--prompt', 'Once upon a time', '--max-tokens', '30', '--temperature', '0.9', '--top-k', '40', '--top-p', '0.9', '--seed', '3', '--json');
  const b = tailor('generate', HF, '--prompt', 'Once upon a time', '--max-tokens', '30', '--temperature', '0.9', '--top-k', '40', '--top-p', '0.9', '--seed', '3', '--json');
  assert.equal(a.code, 0, a.err);
  assert.deepEqual(JSON.parse(a.out).ids, JSON.parse(b.out).ids);
  const s = tailor('generate', HF, '--prompt', 'Once upon a time', '--stop', 'Lily', '--json');
  assert.equal(JSON.parse(s.out).text, ', there was a little girl named ');
});

test('tailor perplexity --json on the first 200 WikiText-2 windows matches the golden value', () => {
  const gp = golden('stories260K').perplexity!['wikitext2/test.txt (first 200 windows)'];
  const r = tailor('perplexity', HF, '--text', shared('datasets', 'wikitext2', 'test.txt'), '--seq-len', '128', '--max-windows', '200', '--json');
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.deepEqual(Object.keys(j).sort(), ['mean_nll', 'ppl', 'predicted_tokens', 'seq_len', 'tokens', 'windows']);
  assert.equal(j.windows, 200);
  assert.equal(j.predicted_tokens, gp.predicted_tokens);
  assert.ok(Math.abs(j.ppl / gp.ppl - 1) < 1e-3);
});

test('errors: a clear message on stderr, exit 1 for bad input, exit 2 for bad usage', () => {
  const dir = tempDir('tailor-cli-');
  const bad = path.join(dir, 'broken.gguf');
  fs.writeFileSync(bad, Buffer.from('GGUF\x03\x00\x00\x00 truncated'));
  const cases: Array<[string[], number, RegExp]> = [
    [['info', path.join(dir, 'nope')], 1, /\[E_IO\].*no such file/],
    [['info', bad], 1, /\[E_FORMAT\].*truncated/],
    [['perplexity', HF, '--text', path.join(dir, 'missing.txt')], 1, /\[E_IO\].*cannot read/],
    [['perplexity', HF, '--text', shared('datasets', 'ptb', 'ptb.test.txt'), '--seq-len', '4096'], 1, /\[E_ARG\].*exceeds the model's context/],
    [['score', HF, '--ids', '1,999999'], 1, /\[E_ARG\].*outside the vocabulary/],
    [['generate', HF], 2, /--prompt is required/],
    [['generate', HF, '--prompt', 'x', '--top-p', '2'], 2, /--top-p must be a number/],
    [['info'], 2, /MODEL .* is required/],
    [['frobnicate'], 2, /unknown command "frobnicate"/],
    [['info', HF, '--bogus'], 2, /Unknown option '--bogus'/],
  ];
  for (const [args, code, re] of cases) {
    const r = tailor(...args);
    assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}, stderr ${r.err}`);
    assert.match(r.err, re, args.join(' '));
    assert.equal(r.out, '', `${args.join(' ')}: nothing on stdout`);
  }
  const h = tailor('--help');
  assert.equal(h.code, 0);
  for (const verb of ['info', 'tokenize', 'generate', 'perplexity', 'score', 'finetune', 'merge', 'prune', 'export', 'eval', 'run', 'runs', 'demo']) assert.match(h.out, new RegExp(`^  ${verb}`, 'm'));
});
