// LoRA fine-tuning end to end: it learns (held-out loss falls; answer-only training reproduces the
// completions), it is reproducible bit for bit, a cancelled run resumes to exactly the uninterrupted
// result, adapters round-trip through PEFT's format, and merging equals base + adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Model, EngineError } from '../electron/core/engine/engine.js';
import { DEFAULT_TRAIN, Trainer, applyAdapter, finetune, type TrainSettings } from '../electron/core/train/trainer.js';
import { promptCompletionExamples, textExamples } from '../electron/core/train/data.js';
import { loraSlots, readPeftAdapter, writePeftAdapter } from '../electron/core/train/lora.js';
import { generateText } from '../electron/core/text/generate.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';

const HF = shared('models', 'stories260K-hf');
const dir = tempDir('tailor-train-');
const RECS = [
  { prompt: 'The cat is', completion: ' red.' },
  { prompt: 'The dog is', completion: ' blue.' },
  { prompt: 'The bird is', completion: ' green.' },
  { prompt: 'The fish is', completion: ' happy.' },
];
const settings = (over: Partial<TrainSettings> = {}): TrainSettings => ({
  ...DEFAULT_TRAIN,
  lora: { ...DEFAULT_TRAIN.lora, dropout: 0.05 },
  optim: { ...DEFAULT_TRAIN.optim, lr: 1e-2, schedule: 'constant' },
  epochs: 40, batch: 4, microBatch: 2, seed: 1,
  ...over,
});

test('prompt/completion examples longer than the window lose the start of the prompt, never the completion', async () => {
  const m = await Model.load(HF);
  try {
    const tok = m.requireTokenizer();
    const rec = { prompt: 'Once upon a time there was a little girl named Lily who loved to play in the park with her dog. Question: who?', completion: ' Lily and her dog' };
    const [whole] = promptCompletionExamples(tok, [rec], { eos: true });
    const [cut] = promptCompletionExamples(tok, [rec], { eos: true, maxLen: 12 });
    assert.equal(cut.ids.length, 13);
    assert.equal(cut.ids[0], tok.bosId);
    const n = whole.weight.reduce((a, w) => a + w, 0);
    assert.equal(cut.weight.reduce((a, w) => a + w, 0), n, 'every completion token (and EOS) keeps its loss');
    assert.deepEqual([...cut.ids.slice(1)], [...whole.ids.slice(whole.ids.length - 12)], 'the window is the end of the sequence');
    const [tiny] = promptCompletionExamples(tok, [rec], { eos: true, maxLen: 3 });
    assert.equal(tiny.ids.length, 4);
    assert.ok(tiny.weight.reduce((a, w) => a + w, 0) >= 1);
  } finally {
    m.dispose();
  }
});

test('answer-only LoRA is learned: the completion loss collapses and greedy generation reproduces the completions', async () => {
  const m = await Model.load(HF);
  try {
    // stories260K never saw EOS in training (its stories end with BOS), so no EOS is appended here
    const ex = promptCompletionExamples(m.requireTokenizer(), RECS, { eos: false });
    assert.ok(ex.every((e) => e.weight[0] === 0 && e.weight[e.weight.length - 1] === 1), 'prompt tokens carry no loss');
    const t = Trainer.create(m, settings(), ex);
    const before = await t.evalLoss(ex);
    const losses: number[] = [];
    await t.run({ onStep: (s) => losses.push(s.loss) });
    const after = await t.evalLoss(ex);
    assert.equal(losses.length, t.totalSteps);
    assert.ok(after < before * 0.05, `completion loss ${before.toFixed(3)} → ${after.toFixed(4)}`);
    t.mergeIntoModel();
    t.dispose();
    for (const r of RECS) {
      const g = await generateText(m, r.prompt, { maxTokens: 8 });
      assert.ok(g.text.startsWith(r.completion), `${r.prompt} → ${JSON.stringify(g.text)}`);
    }
  } finally {
    m.dispose();
  }
});

test('LoRA on TinyStories lowers the loss on held-out TinyStories text', async () => {
  const m = await Model.load(HF);
  try {
    const text = fs.readFileSync(shared('datasets', 'tinystories', 'validation_head.txt'), 'utf8');
    const train = textExamples(m.requireTokenizer(), text.slice(0, 60_000), 64);
    const held = textExamples(m.requireTokenizer(), text.slice(400_000, 430_000), 64);
    const r = await finetune(m, {
      settings: settings({ epochs: 1, batch: 16, microBatch: 8, maxLen: 64, optim: { ...DEFAULT_TRAIN.optim, lr: 3e-3, warmupSteps: 5 } }),
      examples: train, evalExamples: held, outDir: path.join(dir, 'tinystories'),
    });
    assert.ok(r.evalLossAfter! < r.evalLossBefore! - 0.01, `held-out loss ${r.evalLossBefore} → ${r.evalLossAfter}`);
    assert.ok(fs.existsSync(path.join(r.adapterDir, 'adapter_model.safetensors')));
  } finally {
    m.dispose();
  }
});

test('the same seed gives the same loss curve bit for bit; another seed does not', async () => {
  const m = await Model.load(HF);
  try {
    const ex = promptCompletionExamples(m.requireTokenizer(), RECS, { eos: false });
    const curve = async (seed: number) => {
      const t = Trainer.create(m, settings({ epochs: 5, seed }), ex);
      const l: number[] = [];
      await t.run({ onStep: (s) => l.push(s.loss) });
      const p = t.state().params;
      t.dispose();
      return { l, p };
    };
    const a = await curve(7), b = await curve(7), c = await curve(8);
    assert.deepEqual(a.l, b.l);
    assert.deepEqual(Array.from(a.p), Array.from(b.p));
    assert.notDeepEqual(a.l, c.l);
  } finally {
    m.dispose();
  }
});

test('a cancelled run resumes from its checkpoint to exactly the uninterrupted result', async () => {
  const m = await Model.load(HF);
  try {
    const ex = promptCompletionExamples(m.requireTokenizer(), [...RECS, ...RECS.map((r) => ({ prompt: r.prompt.replace('The', 'A'), completion: r.completion }))], { eos: false });
    const s = settings({ epochs: 6, batch: 2, microBatch: 1, lora: { ...DEFAULT_TRAIN.lora, dropout: 0.1 } });
    const full = await finetune(m, { settings: s, examples: ex, outDir: path.join(dir, 'full'), checkpointEvery: 4 });
    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(
      finetune(m, { settings: s, examples: ex, outDir: path.join(dir, 'resumed'), checkpointEvery: 4, signal: ac.signal, onProgress: () => { if (++seen === 9) ac.abort(); } }),
      (e: unknown) => e instanceof EngineError && e.code === 'E_CANCELLED',
    );
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'resumed', 'checkpoint', 'trainer_state.json'), 'utf8'));
    assert.ok(state.step >= 9 && state.step < full.steps, `checkpoint at cancel (step ${state.step})`);
    const res = await finetune(m, { settings: s, examples: ex, outDir: path.join(dir, 'resumed'), checkpointEvery: 4, resume: true });
    assert.equal(res.resumedFrom, state.step);
    const a = readPeftAdapter(full.adapterDir, m.info), b = readPeftAdapter(res.adapterDir, m.info);
    assert.deepEqual(Array.from(b.params), Array.from(a.params));
    assert.deepEqual(res.losses.map((x) => x.loss), full.losses.map((x) => x.loss));
    // resuming with other settings is refused
    await assert.rejects(finetune(m, { settings: { ...s, seed: 99 }, examples: ex, outDir: path.join(dir, 'resumed'), resume: true }),
      (e: unknown) => e instanceof EngineError && e.code === 'E_ARG');
  } finally {
    m.dispose();
  }
});

test('PEFT adapters round-trip exactly; the layout matches the engine; a wrong base is refused', async () => {
  const m = await Model.load(HF);
  try {
    const ex = promptCompletionExamples(m.requireTokenizer(), RECS, { eos: false });
    const t = Trainer.create(m, settings({ epochs: 3, lora: { ...DEFAULT_TRAIN.lora, targets: ['q_proj', 'v_proj', 'down_proj'], rank: 4 } }), ex);
    await t.run();
    const info = t.info();
    const { slots, size } = loraSlots(m.info, 4, ['q_proj', 'v_proj', 'down_proj']);
    assert.equal(size, info.nParams);
    assert.deepEqual(slots.map((s) => [s.layer, s.target, s.a, s.b, s.in, s.out]), info.slots.map((s) => [s.layer, s.target, s.a, s.b, s.in, s.out]));
    const params = t.state().params;
    t.dispose();
    const out = path.join(dir, 'peft');
    writePeftAdapter(out, m.info, { settings: { rank: 4, alpha: 16, rslora: false, dropout: 0.05, targets: ['q_proj', 'v_proj', 'down_proj'] }, params, baseModel: 'stories260K' });
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.peft_type, 'LORA');
    assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'down_proj']);
    const back = readPeftAdapter(out, m.info);
    assert.deepEqual(Array.from(back.params), Array.from(params));
    assert.throws(() => writePeftAdapter(out, m.info, back), /already exists/);
    const other = await Model.load(shared('fixtures', 'golden', 'tiny-random-llama3'), { noTokenizer: true });
    try {
      assert.throws(() => readPeftAdapter(out, other.info), (e: unknown) => e instanceof EngineError && e.code === 'E_SHAPE');
    } finally {
      other.dispose();
    }
  } finally {
    m.dispose();
  }
});

test('a merged model scores as base + adapter; tailor merge writes a model that loads with identical logits', async () => {
  const m = await Model.load(HF);
  const ex = promptCompletionExamples(m.requireTokenizer(), RECS, { eos: false });
  const t = Trainer.create(m, settings({ epochs: 10, lora: { ...DEFAULT_TRAIN.lora, dropout: 0 } }), ex);
  await t.run();
  const withAdapter = await t.evalLoss(ex); // unmerged: LoRA branch in the training graph
  const adapterDir = path.join(dir, 'merge-adapter');
  writePeftAdapter(adapterDir, m.info, { settings: t.settings.lora, params: t.state().params, baseModel: 'stories260K' });
  t.dispose();
  m.dispose();
  const merged = await Model.load(HF);
  try {
    applyAdapter(merged, adapterDir);
    const scores = await merged.score(ex.map((e) => Array.from(e.ids)), { lastLogits: true });
    let num = 0, den = 0;
    scores.forEach((s, i) => s.logprob.forEach((lp, k) => { num -= lp * ex[i].weight[k]; den += ex[i].weight[k]; }));
    assert.ok(Math.abs(num / den - withAdapter) < 1e-5, `merged ${num / den} vs base+adapter ${withAdapter}`);
    // the CLI merge writes a HF folder that loads with the same logits
    const out = path.join(dir, 'merged-model');
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist/electron/core/cli/main.js'), 'merge', HF, '--adapter', adapterDir, '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const reloaded = await Model.load(out);
    try {
      const again = await reloaded.score(ex.map((e) => Array.from(e.ids)), { lastLogits: true });
      for (let i = 0; i < ex.length; i++)
        for (let v = 0; v < again[i].lastLogits!.length; v++) assert.ok(Math.abs(again[i].lastLogits![v] - scores[i].lastLogits![v]) < 1e-5);
      assert.equal(reloaded.info.tokenizer, 'sentencepiece');
    } finally {
      reloaded.dispose();
    }
    const s = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist/electron/core/cli/main.js'), 'score', HF, '--adapter', adapterDir, '--ids', Array.from(ex[0].ids).join(','), '--json'], { encoding: 'utf8' });
    assert.equal(s.status, 0, s.stderr);
    const js = JSON.parse(s.stdout);
    for (let v = 0; v < js.last_logits.length; v++) assert.ok(Math.abs(js.last_logits[v] - scores[0].lastLogits![v]) < 1e-5);
  } finally {
    merged.dispose();
  }
});

test('tailor finetune on a JSONL file writes an adapter; bad data files get clear errors', () => {
  const data = path.join(dir, 'train.jsonl');
  fs.writeFileSync(data, RECS.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const out = path.join(dir, 'cli-ft');
  const cli = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
  const r = spawnSync(process.execPath, [cli, 'finetune', HF, '--data', data, '--out', out, '--epochs', '20', '--batch', '4', '--lr', '1e-2', '--no-eos', '--seed', '3', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.steps, 20);
  assert.ok(j.final_loss < j.first_loss / 3, `${j.first_loss} → ${j.final_loss}`);
  const g = spawnSync(process.execPath, [cli, 'generate', HF, '--adapter', path.join(out, 'adapter'), '--prompt', 'The dog is', '--max-tokens', '8', '--json'], { encoding: 'utf8' });
  assert.equal(g.status, 0, g.stderr);
  assert.ok(JSON.parse(g.stdout).text.startsWith(' blue'), g.stdout);
  // the run is in the history with its loss curve and adapter
  const runs = JSON.parse(spawnSync(process.execPath, [cli, 'runs', '--json'], { encoding: 'utf8' }).stdout) as Array<{ id: string; kind: string; status: string }>;
  const ft = runs.find((x) => x.kind === 'finetune' && x.status === 'done')!;
  const shown = JSON.parse(spawnSync(process.execPath, [cli, 'runs', 'show', ft.id, '--json'], { encoding: 'utf8' }).stdout);
  assert.equal(shown.loss.length, 20);
  assert.equal(shown.artifacts[0].kind, 'adapter');
  const bad = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(bad, '{"prompt": "x", "completion": "y"}\n{"prompt": 3}\n');
  const e = spawnSync(process.execPath, [cli, 'finetune', HF, '--data', bad, '--out', path.join(dir, 'bad-out')], { encoding: 'utf8' });
  assert.equal(e.status, 1);
  assert.match(e.stderr, /\[E_FORMAT\].*bad\.jsonl:2: each line needs string fields "prompt" and "completion"/);
  assert.equal(fs.existsSync(path.join(dir, 'bad-out', 'adapter')), false);
  const after = JSON.parse(spawnSync(process.execPath, [cli, 'runs', '--json'], { encoding: 'utf8' }).stdout) as Array<{ status: string }>;
  assert.equal(after.filter((x) => x.status === 'done').length, 1, 'the failed run is not recorded as finished');
});

test('the importance pass (base-weight gradients, one layer at a time) gives Σ|w·g| consistent with the loss', async () => {
  const m = await Model.load(HF);
  try {
    const text = fs.readFileSync(shared('datasets', 'tinystories', 'validation_head.txt'), 'utf8');
    const calib = textExamples(m.requireTokenizer(), text.slice(0, 4000), 64).slice(0, 10);
    const st = await m.taylorStats(calib);
    assert.equal(st.layers.length, 5);
    // the loss equals the engine's inference NLL over the same tokens
    const scores = await m.score(calib.map((e) => Array.from(e.ids)));
    const n = calib.reduce((a, e) => a + e.weight.length, 0);
    const nll = scores.reduce((a, s) => a + s.nllSum, 0) / n;
    assert.ok(Math.abs(st.loss - nll) < 1e-4, `${st.loss} vs ${nll}`);
    for (const l of st.layers) for (const t of Object.values(l)) {
      assert.ok(t.sumAbsWG > 0 && t.gradSq > 0 && Math.abs(t.sumWG) <= t.sumAbsWG);
    }
    // a first-order check of Σ w·g: scaling layer 2's down_proj by (1+ε) changes the loss by ≈ ε·Σ w·g
    const eps = 1e-3;
    const tensors = m.tensors();
    const w = tensors.layers[2].wDown;
    for (let i = 0; i < w.length; i++) w[i] *= 1 + eps;
    const dir2 = path.join(dir, 'scaled');
    (await import('../electron/core/formats/safetensors-write.js')).writeHfFolder(dir2, tensors);
    const scaled = await Model.load(dir2, { noTokenizer: true });
    const s2 = await scaled.score(calib.map((e) => Array.from(e.ids)));
    scaled.dispose();
    const nll2 = s2.reduce((a, s) => a + s.nllSum, 0) / n;
    const predicted = eps * st.layers[2].wDown.sumWG;
    assert.ok(Math.abs(nll2 - nll - predicted) < 0.05 * Math.abs(predicted) + 1e-6, `Δloss ${nll2 - nll} vs ε·Σw·g ${predicted}`);
  } finally {
    m.dispose();
  }
});

test('full fine-tuning (every base weight, no LoRA) learns, writes a loadable model, and resumes exactly', async () => {
  const s = settings({ full: true, epochs: 12, optim: { ...DEFAULT_TRAIN.optim, lr: 3e-3, schedule: 'constant' } });
  const run = async (out: string, extra: { signal?: AbortSignal; onProgress?: () => void; resume?: boolean } = {}) => {
    const m = await Model.load(HF); // a fresh base each time: full fine-tuning writes the weights in place
    try {
      const ex = promptCompletionExamples(m.requireTokenizer(), RECS, { eos: false });
      return await finetune(m, { settings: s, examples: ex, outDir: path.join(dir, out), checkpointEvery: 3, ...extra });
    } finally {
      m.dispose();
    }
  };
  const full = await run('full-ft');
  assert.ok(full.losses.at(-1)!.loss < full.losses[0].loss / 4, `${full.losses[0].loss} → ${full.losses.at(-1)!.loss}`);
  const tuned = await Model.load(full.adapterDir);
  try {
    const g = await generateText(tuned, 'The bird is', { maxTokens: 8 });
    assert.ok(g.text.startsWith(' green.'), JSON.stringify(g.text));
  } finally {
    tuned.dispose();
  }
  const ac = new AbortController();
  let n = 0;
  await assert.rejects(run('full-ft-resumed', { signal: ac.signal, onProgress: () => { if (++n === 5) ac.abort(); } }), (e: unknown) => e instanceof EngineError && e.code === 'E_CANCELLED');
  // resuming starts from a fresh base and the checkpoint's weights: the same final model as uninterrupted
  const res = await run('full-ft-resumed', { resume: true });
  assert.deepEqual(res.losses.map((x) => x.loss), full.losses.map((x) => x.loss));
  const a = await Model.load(full.adapterDir, { noTokenizer: true }), b = await Model.load(res.adapterDir, { noTokenizer: true });
  try {
    assert.deepEqual(Array.from(b.tensors().layers[2].wDown), Array.from(a.tensors().layers[2].wDown));
  } finally {
    a.dispose();
    b.dispose();
  }
});
