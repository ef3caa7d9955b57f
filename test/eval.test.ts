// Few-shot evaluation in lm-eval-harness's formulation: for stories260K on each of the paper's seven
// tasks (200 items), acc and acc_norm equal an independent re-computation from the engine's raw
// per-token log-likelihoods, item by item.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { Model } from '../electron/core/engine/engine.js';
import { evaluateItems } from '../electron/core/eval/eval.js';
import { getTask } from '../electron/core/tasks/registry.js';
import { REPO_ROOT, shared } from './helpers/paths.js';

const TASKS = ['boolq', 'piqa', 'hellaswag', 'winogrande', 'arc_easy', 'arc_challenge', 'openbookqa'];

test('acc and acc_norm on the seven tasks equal a straightforward re-implementation from raw log-likelihoods', async () => {
  const m = await Model.load(shared('models', 'stories260K-hf'));
  try {
    const tok = m.requireTokenizer();
    for (const name of TASKS) {
      const items = getTask(name).evalItems({ limit: 200 });
      assert.equal(items.length, 200, name);
      const r = await evaluateItems(m, name, items);
      // independent: tokenize each (context, continuation) the lm-eval way, score the whole sequence,
      // sum the continuation's per-token log-probabilities, take argmax (and per-character argmax)
      let acc = 0, accNorm = 0;
      for (let i = 0; i < items.length; i++) {
        const it = items[i];
        const seqs: number[][] = [], starts: number[] = [];
        for (let c = 0; c < it.continuations.length; c++) {
          const ctx = [1, ...tok.encode(it.contexts[c])];
          const whole = [1, ...tok.encode(it.contexts[c] + it.continuations[c])];
          let k = 0;
          while (k < ctx.length && whole[k] === ctx[k]) k++;
          const cut = Math.max(0, whole.length - m.info.contextLength);
          seqs.push(cut ? [1, ...whole.slice(1 + cut)] : whole);
          starts.push(k - cut);
        }
        const sc = await m.score(seqs);
        const ll = sc.map((s, c) => s.logprob.slice(starts[c] - 1).reduce((a, b) => a + b, 0));
        const norm = ll.map((v, c) => v / it.continuations[c].trimStart().length);
        const best = ll.indexOf(Math.max(...ll)), bestN = norm.indexOf(Math.max(...norm));
        assert.equal(r.items[i].pred, best, `${name} item ${i}: the same choice`);
        assert.equal(r.items[i].predNorm, bestN, `${name} item ${i}: the same normalised choice`);
        // the engine batches requests differently from this loop, which moves float32 GEMM rounding (~1e-7
        // relative per log-probability); the sums agree to float32 precision and the choices exactly
        for (let c = 0; c < ll.length; c++)
          assert.ok(Math.abs(r.items[i].ll[c] - ll[c]) <= 1e-5 * Math.max(1, Math.abs(ll[c])), `${name} item ${i} choice ${c}: ${r.items[i].ll[c]} vs ${ll[c]}`);
        acc += best === it.label ? 1 : 0;
        accNorm += bestN === it.label ? 1 : 0;
      }
      assert.equal(r.acc, acc / items.length, `${name} acc`);
      assert.equal(r.acc_norm, accNorm / items.length, `${name} acc_norm`);
    }
  } finally {
    m.dispose();
  }
});

test('tailor eval --json prints {task, n, acc, acc_norm}; few-shot demonstrations change the context', () => {
  const cli = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
  const r = spawnSync(process.execPath, [cli, 'eval', shared('models', 'stories260K-hf'), '--task', 'story_cloze', '--limit', '60', '--json', '--no-history'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.task, 'story_cloze');
  assert.equal(j.n, 60);
  assert.ok(j.acc > 0.3 && j.acc_norm > 0.3, `stories260K is above chance (0.25) on its own domain: ${j.acc} / ${j.acc_norm}`);
  const s = spawnSync(process.execPath, [cli, 'eval', shared('models', 'stories260K-hf'), '--task', 'story_cloze', '--limit', '60', '--shots', '2', '--json', '--no-history'], { encoding: 'utf8' });
  assert.equal(s.status, 0, s.stderr);
  assert.equal(JSON.parse(s.stdout).shots, 2);
  const bad = spawnSync(process.execPath, [cli, 'eval', shared('models', 'stories260K-hf'), '--task', 'no_such_task', '--no-history'], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no_such_task/);
});

test('tailor eval --preview shows the training prompts LoRA would see (task template or Alpaca)', () => {
  const cli = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
  const r = spawnSync(process.execPath, [cli, 'eval', '--task', 'boolq', '--preview', '4', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { examples: Array<{ prompt: string; completion: string }> };
  assert.equal(j.examples.length, 4);
  assert.ok(j.examples.every((e) => /^Passage: [\s\S]+\nQuestion: [\s\S]+\?\nAnswer:$/.test(e.prompt) && /^ (True|False)$/.test(e.completion)), JSON.stringify(j.examples[0]));
  assert.equal(new Set(j.examples.map((e) => e.completion)).size, 2, 'stratified: both answers among the shots');
  const a = spawnSync(process.execPath, [cli, 'eval', '--task', 'boolq', '--preview', '1', '--template-style', 'alpaca'], { encoding: 'utf8' });
  assert.match(a.stdout, /### Instruction:/);
});
