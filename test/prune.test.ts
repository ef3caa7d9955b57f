// Structural pruning: honest parameter accounting from config alone, exactness of the physical slicing
// (a pruned model computes what the unpruned one computes with those heads/channels zeroed), Taylor
// beating random, calibration from a task's training prompts, and pruned models that load, round-trip and
// train like any model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError, Model } from '../electron/core/engine/engine.js';
import { randomModel, type ModelTensors } from '../electron/core/formats/model-tensors.js';
import { writeHfFolder } from '../electron/core/formats/safetensors-write.js';
import { archFromHfConfig, keptChannels, planLocal, ratioForTarget } from '../electron/core/prune/plan.js';
import { calibrationFromExamples, calibrationFromText, archOf, pruneModel, roundedCounts, sliceLoaded, sliceModel, taskCalibrationRecords, writePruned, type KeptLayer } from '../electron/core/prune/prune.js';
import { parseSpec } from '../electron/core/pipeline/spec.js';
import { exportModel } from '../electron/core/export/export.js';
import { defaultTemplate, getTask, renderExample } from '../electron/core/tasks/index.js';
import { perplexity } from '../electron/core/text/perplexity.js';
import { DEFAULT_TRAIN, Trainer } from '../electron/core/train/trainer.js';
import { textExamples } from '../electron/core/train/data.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';

const dir = tempDir('tailor-prune-');
const CLI = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
const TEXT = fs.readFileSync(shared('datasets', 'tinystories', 'validation_head.txt'), 'utf8');
const LLAMA7B = { hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32, vocab_size: 32000, tie_word_embeddings: false, model_type: 'llama' };

test("LLaMA-7B plan from config.json alone: LLM-Pruner's parameter counts, ratio vs removed share, parameter targets", () => {
  const a = archFromHfConfig(LLAMA7B);
  const scope = { attnLayers: [4, 29] as [number, number], mlpLayers: [4, 29] as [number, number] };
  const half = planLocal(a, 0.5, scope);
  assert.equal(half.paramsBefore, 6_738_415_616);
  assert.equal(half.paramsAfter, 4_107_538_432);
  assert.ok(Math.abs(half.removedShare - 0.39) < 0.001, 'ratio 0.5 over layers 4-29 removes 39%, not 50%');
  assert.equal(planLocal(a, 0.25, scope).paramsAfter, 5_422_977_024);
  assert.deepEqual([half.layers[3].nHead, half.layers[4].nHead, half.layers[4].ffn, half.layers[30].ffn], [32, 16, 5504, 11008]);
  const r = ratioForTarget(a, 5_000_000_000, scope);
  assert.ok(planLocal(a, r, scope).paramsAfter <= 5e9 && planLocal(a, r - 0.002, scope).paramsAfter > 5e9);
  // the CLI prints the same, instantly
  const cfg = path.join(dir, 'llama7b.json');
  fs.writeFileSync(cfg, JSON.stringify(LLAMA7B));
  const c = spawnSync(process.execPath, [CLI, 'prune', '--plan', '--config', cfg, '--ratio', '0.5', '--layers', '4-29', '--json'], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  assert.equal(JSON.parse(c.stdout).params_after, 4_107_538_432);
  const t = spawnSync(process.execPath, [CLI, 'prune', '--plan', '--config', cfg, '--target-params', '5B', '--layers', '4-29', '--json'], { encoding: 'utf8' });
  assert.ok(JSON.parse(t.stdout).params_after <= 5e9);
});

test('--round-to: every pruned layer keeps a multiple of N MLP channels, rounded up within the layer; parameter targets still met', () => {
  // the rule alone: rounded up, never past the largest multiple the layer has, a layer pruning nothing stays whole
  assert.equal(keptChannels(7444, 11008, 1), 7444);
  assert.equal(keptChannels(7444, 11008, 8), 7448);
  assert.equal(keptChannels(7444, 11008, 32), 7456);
  assert.equal(keptChannels(7444, 11008, 256), 7680);
  assert.equal(keptChannels(170, 172, 8), 168, 'at most the largest multiple ≤ ffn');
  assert.equal(keptChannels(172, 172, 8), 172, 'ratio 0 prunes nothing');
  assert.equal(keptChannels(5, 6, 8), 5, 'a layer smaller than N keeps its count');
  assert.equal(keptChannels(0, 172, 8), 0);
  for (const n of [0, 1.5, 2000]) assert.throws(() => keptChannels(10, 100, n), /roundTo must be an integer from 1 to 1024/);
  let prev = Infinity;
  for (let k = 11008; k >= 0; k--) {
    const c = keptChannels(k, 11008, 256);
    assert.ok(c <= prev && c >= Math.min(k, 10752), `monotone at ${k}`);
    prev = c;
  }
  // LLaMA-7B in layers 4-29 to 5B and 4B: LLM-Pruner's counts are not multiples of 8; rounded ones are, and
  // each target still holds (the search over ratios is over the rounded plans)
  const a = archFromHfConfig(LLAMA7B);
  for (const [target, exact] of [[5e9, 7444], [4e9, 5338]]) {
    const plain = { attnLayers: [4, 29] as [number, number], mlpLayers: [4, 29] as [number, number] };
    assert.equal(planLocal(a, ratioForTarget(a, target, plain), plain).layers[4].ffn, exact);
    for (const roundTo of [8, 32, 256]) {
      const scope = { ...plain, roundTo };
      const p = planLocal(a, ratioForTarget(a, target, scope), scope);
      assert.ok(p.paramsAfter <= target, `${roundTo}: ${p.paramsAfter}`);
      for (const [i, l] of p.layers.entries()) assert.equal(l.ffn % roundTo, 0, `layer ${i}: ${l.ffn} channels, round-to ${roundTo}`);
      assert.ok(p.layers[4].ffn >= exact - roundTo && p.layers[4].ffn < exact + 2 * roundTo);
    }
  }
  // the CLI's plan, and a bad value a usage error
  const cfg = path.join(dir, 'llama7b-round.json');
  fs.writeFileSync(cfg, JSON.stringify(LLAMA7B));
  const c = spawnSync(process.execPath, [CLI, 'prune', '--plan', '--config', cfg, '--target-params', '4B', '--layers', '4-29', '--round-to', '32', '--json'], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const j = JSON.parse(c.stdout);
  assert.ok(j.params_after <= 4e9);
  assert.deepEqual([...new Set(j.layers.map((l: { ffn: number }) => l.ffn))].sort(), [11008, 5312]);
  const bad = spawnSync(process.execPath, [CLI, 'prune', '--plan', '--config', cfg, '--ratio', '0.5', '--round-to', '3000'], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--round-to must be an integer ≥ 1 and ≤ 1024/);
});

test('roundedCounts: a global ranking\'s per-layer counts made multiples, no more in all, the largest losses made up first', () => {
  assert.deepEqual(roundedCounts([52, 61, 45, 50], [96, 96, 96, 96], 8), [48, 64, 48, 48]);  // 208 → 208: +8 to 61 (5 lost) and 45 (5 lost, later)
  assert.deepEqual(roundedCounts([52, 61, 45, 50], [96, 96, 96, 96], 8).reduce((s, c) => s + c, 0), 208);
  assert.deepEqual(roundedCounts([13, 3], [16, 4], 8), [8, 3], 'a layer smaller than the multiple keeps its count; 5 left is less than 8');
  assert.deepEqual(roundedCounts([96, 90], [96, 96], 8), [96, 88], 'never more than the layer has');
  assert.deepEqual(roundedCounts([0, 7, 9], [32, 32, 32], 8), [0, 8, 8]);
});

test('--round-to with global ranking: each layer keeps its best channels, as many as the ranking gave it rounded, and the pruned model is exact', async () => {
  const base = randomModel({ dim: 64, nLayers: 4, nHead: 4, nKvHead: 4, headDim: 16, ffn: 96, vocabSize: 256, contextLength: 64, tied: false, seed: 9 });
  const src = path.join(dir, 'round-global');
  writeHfFolder(src, base);
  const m = await Model.load(src, { noTokenizer: true });
  try {
    const calib = [0, 1, 2].map((s) => ({ ids: Int32Array.from({ length: 33 }, (_, i) => (i ? 3 + ((i * 37 + s * 101) % 250) : 1)), weight: new Float32Array(32).fill(1) }));
    const scope = { attnLayers: [0, 3] as [number, number], mlpLayers: [0, 3] as [number, number] };
    const plain = await pruneModel(m, { ratio: 0.45, method: 'taylor', global: true, calib, scope });
    const round = await pruneModel(m, { ratio: 0.45, method: 'taylor', global: true, calib, scope: { ...scope, roundTo: 8 } });
    const counts = plain.kept.map((k) => k.channels.length);
    assert.ok(counts.some((n) => n % 8 !== 0), `the ranking alone gives counts off the multiple (${counts.join(' ')})`);
    // no more kept than the local plan at that ratio, rounded: its parameter count holds
    const local = planLocal(archOf(m), 0.45, { ...scope, roundTo: 8 });
    const total = round.kept.reduce((s, k) => s + k.channels.length, 0);
    assert.ok(total <= local.layers.reduce((s, l) => s + l.ffn, 0) && total > local.layers.reduce((s, l) => s + l.ffn, 0) - 8, `${total}`);
    assert.ok(round.plan.paramsAfter <= local.paramsAfter);
    round.kept.forEach((k, i) => {
      assert.equal(k.channels.length % 8, 0, `layer ${i}: ${k.channels.length}`);
      // the layer's top channels by the scores the ranking used (ties by index)
      const top = Array.from(round.scores.mlp[i], (v, c) => [v, c] as const).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, k.channels.length).map((x) => x[1]).sort((x, y) => x - y);
      assert.deepEqual(k.channels, top, `layer ${i}`);
      assert.deepEqual(k.attnGroups, plain.kept[i].attnGroups, 'heads are not rounded');
    });
    assert.equal(round.plan.layers.reduce((s, l) => s + l.ffn, 0), round.kept.reduce((s, k) => s + k.channels.length, 0));
    const out = path.join(dir, 'round-global-pruned');
    writePruned(out, round, src);
    const z = path.join(dir, 'round-global-zeroed');
    writeHfFolder(z, zeroed(base, round.kept));
    const a = await Model.load(out, { noTokenizer: true }), b = await Model.load(z, { noTokenizer: true });
    try {
      const ids = [Array.from({ length: 40 }, (_, i) => (i ? 3 + ((i * 13) % 250) : 1))];
      const [sa] = await a.score(ids), [sb] = await b.score(ids);
      let worst = 0;
      for (let k = 0; k < sa.logprob.length; k++) worst = Math.max(worst, Math.abs(sa.logprob[k] - sb.logprob[k]));
      assert.ok(worst <= 1e-5, `differ by ${worst}`);
      assert.deepEqual(a.info.layers.map((l) => l.ffn), round.kept.map((k) => k.channels.length));
      assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'pruning.json'), 'utf8')).settings.scope.roundTo, 8);
      // and the model card of its export says so
      const card = path.join(dir, 'round-global-hf');
      await exportModel(a, { format: 'hf', out: card });
      assert.match(fs.readFileSync(path.join(card, 'README.md'), 'utf8'), /^- layers: attention layers 0–3; MLP layers 0–3, each keeping a multiple of 8 channels$/m);
    } finally {
      a.dispose();
      b.dispose();
    }
  } finally {
    m.dispose();
  }
});

/** The unpruned model with every removed head's o_proj columns and removed channel's down_proj columns zeroed. */
function zeroed(m: ModelTensors, kept: KeptLayer[]): ModelTensors {
  const hd = m.headDim;
  return {
    ...m,
    layers: m.layers.map((l, i) => {
      const wo = l.wo.slice(), wd = l.wDown.slice(), qd = l.nHead * hd;
      for (let h = 0; h < l.nHead; h++) if (!kept[i].heads.includes(h)) for (let r = 0; r < m.dim; r++) wo.fill(0, r * qd + h * hd, r * qd + (h + 1) * hd);
      for (let c = 0; c < l.ffn; c++) if (!kept[i].channels.includes(c)) for (let r = 0; r < m.dim; r++) wd[r * l.ffn + c] = 0;
      return { ...l, wo, wDown: wd };
    }),
  };
}

for (const [label, nHead, nKvHead] of [['MHA', 4, 4], ['GQA', 8, 2]] as const) {
  test(`exactness (${label}): the pruned model's logits equal the zeroed unpruned model's, with uneven layers`, async () => {
    const base = randomModel({ dim: 64, nLayers: 4, nHead, nKvHead, headDim: 16, ffn: 96, vocabSize: 256, contextLength: 64, tied: false, seed: nHead });
    const src = path.join(dir, `exact-${label}`);
    writeHfFolder(src, base);
    const m = await Model.load(src, { noTokenizer: true });
    const calib = [0, 1, 2].map((s) => ({ ids: Int32Array.from({ length: 33 }, (_, i) => (i ? 3 + ((i * 37 + s * 101) % 250) : 1)), weight: new Float32Array(32).fill(1) }));
    const r = await pruneModel(m, { ratio: 0.5, method: 'taylor', global: true, calib, scope: { attnLayers: [0, 3], mlpLayers: [0, 3] } });
    const shapes = r.plan.layers.map((l) => `${l.nKvHead}/${l.ffn}`);
    assert.ok(new Set(shapes).size > 1, `global ranking gives uneven layers (${shapes.join(' ')})`);
    const pruned = path.join(dir, `exact-${label}-pruned`);
    writePruned(pruned, r, src);
    const z = path.join(dir, `exact-${label}-zeroed`);
    writeHfFolder(z, zeroed(base, r.kept));
    const a = await Model.load(pruned, { noTokenizer: true }), b = await Model.load(z, { noTokenizer: true });
    try {
      const ids = [Array.from({ length: 40 }, (_, i) => (i ? 3 + ((i * 13) % 250) : 1))];
      const [sa] = await a.score(ids, { lastLogits: true });
      const [sb] = await b.score(ids, { lastLogits: true });
      let worst = 0;
      for (let v = 0; v < 256; v++) worst = Math.max(worst, Math.abs(sa.lastLogits![v] - sb.lastLogits![v]));
      for (let k = 0; k < sa.logprob.length; k++) worst = Math.max(worst, Math.abs(sa.logprob[k] - sb.logprob[k]));
      assert.ok(worst <= 1e-5, `differ by ${worst}`);
      assert.ok(a.info.nParams < b.info.nParams);
      assert.equal(a.info.nParams, r.plan.paramsAfter);
      const report = JSON.parse(fs.readFileSync(path.join(pruned, 'pruning.json'), 'utf8'));
      assert.equal(report.params_after, r.plan.paramsAfter);
      assert.deepEqual(report.layers.map((l: { kept_channels: number[] }) => l.kept_channels), r.kept.map((k) => k.channels));
    } finally {
      a.dispose();
      b.dispose();
      m.dispose();
    }
  });
}

test('stories260K, all layers: informed importance beats random pruning (Taylor and Wanda-SP at 0.2 and 0.5)', async () => {
  // Random pruning is a distribution, so its floor is the mean over several seeds. With LLM-Pruner's calibration
  // (10 windows of 64 tokens) every Taylor calibration seed, at every calibration size measured, lands below
  // random's mean when all layers are pruned (bench/README.md: ≤ 0.76× at 0.2, ≤ 0.75× at 0.5). In layers 1-3
  // Taylor also wins on the mean, but within the seeds' spread, so those cells are measured there, not asserted.
  const m = await Model.load(shared('models', 'stories260K-hf'));
  try {
    const tok = m.requireTokenizer();
    const calib = calibrationFromText(tok.encode(TEXT.slice(0, 200_000)), 10, 64, 0, m.info.bosId);
    const evalText = TEXT.slice(400_000, 520_000);
    const ppl = async (method: 'taylor' | 'wanda-sp' | 'random', ratio: number, seed: number) => {
      const r = await pruneModel(m, { ratio, method, calib, seed, scope: { attnLayers: [0, 4], mlpLayers: [0, 4] } });
      const out = path.join(dir, `s260-${method}-${ratio}-${seed}`);
      writePruned(out, r, shared('models', 'stories260K-hf'));
      const p = await Model.load(out);
      try {
        return (await perplexity(p, evalText, { seqLen: 128 })).ppl;
      } finally {
        p.dispose();
      }
    };
    for (const ratio of [0.2, 0.5]) {
      const random: number[] = [];
      for (const seed of [1, 2, 3, 4, 5, 6]) random.push(await ppl('random', ratio, seed));
      const mean = random.reduce((a, b) => a + b, 0) / random.length;
      for (const method of ['taylor', 'wanda-sp'] as const) {
        const v = await ppl(method, ratio, 0);
        assert.ok(v < mean, `ratio ${ratio}: ${method} ${v.toFixed(2)} vs random ${random.map((x) => x.toFixed(2)).join(', ')}`);
      }
    }
  } finally {
    m.dispose();
  }
});

test('a pruned model round-trips with identical logits and trains with LoRA', async () => {
  const src = shared('models', 'stories260K-hf');
  const out = path.join(dir, 'rt');
  const imp = path.join(dir, 'importance.json');
  const c = spawnSync(process.execPath, [CLI, 'prune', src, '--ratio', '0.3', '--method', 'taylor', '--calib', shared('datasets', 'tinystories', 'validation_head.txt'),
    '--global', '--out', out, '--save-importance', imp, '--json'], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const saved = JSON.parse(fs.readFileSync(imp, 'utf8'));
  assert.equal(saved.layers.length, 5);
  assert.equal(saved.layers[0].attn.length, 4);
  assert.equal(saved.layers[0].mlp.length, 172);
  const m = await Model.load(out);
  try {
    const again = path.join(dir, 'rt2');
    writeHfFolder(again, m.tensors());
    fs.copyFileSync(path.join(out, 'tokenizer.model'), path.join(again, 'tokenizer.model'));
    const m2 = await Model.load(again);
    const ids = [[1, 403, 407, 261, 378, 432, 383, 286]];
    const [a] = await m.score(ids, { lastLogits: true });
    const [b] = await m2.score(ids, { lastLogits: true });
    m2.dispose();
    assert.deepEqual(Array.from(b.lastLogits!), Array.from(a.lastLogits!));
    const ex = textExamples(m.requireTokenizer(), TEXT.slice(0, 20_000), 64);
    const t = Trainer.create(m, { ...DEFAULT_TRAIN, optim: { ...DEFAULT_TRAIN.optim, lr: 3e-3 }, batch: 8, maxLen: 64, epochs: 2 }, ex);
    const before = await t.evalLoss(ex);
    await t.run();
    const after = await t.evalLoss(ex);
    t.dispose();
    assert.ok(after < before, `LoRA on the pruned model: ${before} → ${after}`);
  } finally {
    m.dispose();
  }
});

test("calibration from a text: seeded windows of [BOS] + encode(text) as LLM-Pruner slices them (a BOS only at offset 0)", () => {
  const ids = Array.from({ length: 500 }, (_, i) => 3 + ((i * 7919) % 509));
  const stream = [1, ...ids];
  const a = calibrationFromText(ids, 40, 32, 5, 1);
  assert.deepEqual(calibrationFromText(ids, 40, 32, 5, 1).map((e) => Array.from(e.ids)), a.map((e) => Array.from(e.ids)), 'deterministic for a seed');
  assert.notDeepEqual(calibrationFromText(ids, 40, 32, 6, 1).map((e) => Array.from(e.ids)), a.map((e) => Array.from(e.ids)));
  const at = (w: number[]) => stream.findIndex((_, o) => w.every((t, j) => stream[o + j] === t));
  for (const e of a) {
    assert.equal(e.ids.length, 32);
    assert.deepEqual(Array.from(e.weight), new Array(31).fill(1));
    const o = at(Array.from(e.ids));
    assert.ok(o >= 0 && o + 32 <= stream.length, 'a contiguous window of [BOS] + ids');
    assert.equal(e.ids[0] === 1, o === 0, 'BOS only in the window at offset 0');
  }
  assert.ok(new Set(a.map((e) => at(Array.from(e.ids)))).size > 30, 'offsets spread over the text');
  // a text exactly one window long: every window is the whole of [BOS] + ids
  assert.deepEqual(calibrationFromText(ids.slice(0, 31), 3, 32, 0, 1).map((e) => Array.from(e.ids)), [0, 1, 2].map(() => stream.slice(0, 32)));
  assert.throws(() => calibrationFromText(ids.slice(0, 20), 3, 32, 0, 1), /fewer than --seq-len 32/);
});

test("calibration from a task: seeded windows of exactly L tokens packed from [BOS] + the task's rendered training prompts", async () => {
  const m = await Model.load(shared('models', 'stories260K-hf'));
  try {
    const tok = m.requireTokenizer(), bos = m.info.bosId;
    const task = getTask('story_cloze');
    const tpl = defaultTemplate(task);
    const records = taskCalibrationRecords([{ items: task.trainItems(), template: tpl }], 0);
    assert.deepEqual(records, task.trainItems().map((it) => renderExample(tpl, it)), 'one task: every training item, rendered with its training template');
    const a = calibrationFromExamples(tok, records, 10, 64, 7, bos);
    const again = calibrationFromExamples(tok, records, 10, 64, 7, bos);
    const other = calibrationFromExamples(tok, records, 10, 64, 8, bos);
    assert.deepEqual(again.map((e) => [Array.from(e.ids), Array.from(e.weight)]), a.map((e) => [Array.from(e.ids), Array.from(e.weight)]), 'deterministic for a seed');
    assert.notDeepEqual(other.map((e) => Array.from(e.ids)), a.map((e) => Array.from(e.ids)), 'another seed, other windows');
    // every window: L ids from [BOS]; its records are each one [BOS] + encode(prompt + completion), the last one cut
    const encoded = records.map((r) => [bos, ...tok.encode(r.prompt + r.completion)]);
    const whole = new Map(encoded.map((e, i) => [e.join(','), i]));
    const used: number[] = [];
    for (const e of a) {
      assert.equal(e.ids.length, 64);
      assert.equal(e.weight.length, 63);
      assert.equal(e.ids[0], bos);
      const ids = Array.from(e.ids);
      const starts = ids.flatMap((t, p) => (t === bos ? [p] : []));
      assert.ok(starts.length >= 1);
      for (let k = 0; k < starts.length; k++) {
        const seg = ids.slice(starts[k], starts[k + 1] ?? ids.length);
        if (k + 1 < starts.length) {
          const i = whole.get(seg.join(','));
          assert.ok(i !== undefined, 'a whole record is the tokenization of a rendered training prompt');
          used.push(i);
        } else {
          assert.ok(encoded.some((x) => x.length >= seg.length && seg.every((t, j) => x[j] === t)), 'the last record is cut from one');
        }
      }
      // the boundary (predicting the next record's BOS) is not a prediction; every other token weighs 1
      e.weight.forEach((w, t) => assert.equal(w, starts.includes(t + 1) ? 0 : 1, `weight ${t}`));
    }
    assert.equal(new Set(used).size, used.length, 'no record twice while the task has more');
    // too little text for one window is an error; a small pool is reused in the same order
    assert.throws(() => calibrationFromExamples(tok, [{ prompt: 'Once', completion: ' upon' }], 2, 64, 0, bos), (e: Error & { code?: string }) => e.code === 'E_ARG' && /fewer than --seq-len 64/.test(e.message));
    const small = calibrationFromExamples(tok, records.slice(0, 3), 6, 64, 1, bos);
    assert.equal(small.length, 6);
    assert.ok(small.every((e) => e.ids.length === 64 && e.ids[0] === bos));
  } finally {
    m.dispose();
  }
});

test('tailor prune --calib-task: a built-in task or a custom file with the eval column flags; the same importance as in-process', async () => {
  const src = shared('models', 'stories260K-hf');
  const out = path.join(dir, 'calib-task');
  const imp = path.join(dir, 'calib-task-importance.json');
  const c = spawnSync(process.execPath, [CLI, 'prune', src, '--ratio', '0.5', '--calib-task', 'story_cloze', '--samples', '8', '--seq-len', '96', '--seed', '3',
    '--out', out, '--save-importance', imp, '--no-history'], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const report = JSON.parse(fs.readFileSync(path.join(out, 'pruning.json'), 'utf8'));
  assert.equal(report.settings.calibSource, 'task:story_cloze');
  assert.equal(report.settings.calibSamples, 8);
  assert.equal(report.settings.calibTokens, 8 * 95);
  const m = await Model.load(src);
  try {
    const task = getTask('story_cloze');
    const calib = calibrationFromExamples(m.requireTokenizer(), taskCalibrationRecords([{ items: task.trainItems(), template: defaultTemplate(task) }], 3), 8, 96, 3, m.info.bosId);
    const s = await m.groupImportance(calib, { method: 'taylor', agg: 'sum', seed: 3 });
    const saved = JSON.parse(fs.readFileSync(imp, 'utf8')) as { layers: Array<{ attn: number[]; mlp: number[] }> };
    const flat = (x: Array<ArrayLike<number>>) => x.flatMap((v) => Array.from(v));
    const want = [...flat(s.attn), ...flat(s.mlp)], got = [...flat(saved.layers.map((l) => l.attn)), ...flat(saved.layers.map((l) => l.mlp))];
    assert.equal(got.length, want.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-6 * Math.abs(want[i]) + 1e-12, `score ${i}: ${v} vs ${want[i]}`));
  } finally {
    m.dispose();
  }
  // a custom CSV task with tailor eval's column flags
  const rows = fs.readFileSync(shared('datasets', 'story_cloze', 'train.jsonl'), 'utf8').trim().split('\n').slice(0, 100).map((l) => JSON.parse(l) as { question: string; choices: string[]; label: number });
  const q = (x: string) => `"${x.replace(/"/g, '""')}"`;
  const csv = path.join(dir, 'calib-stories.csv');
  fs.writeFileSync(csv, ['story,a,b,c,d,answer', ...rows.map((r) => [r.question, ...r.choices, 'ABCD'[r.label]].map(q).join(','))].join('\n') + '\n');
  const out2 = path.join(dir, 'calib-custom');
  const c2 = spawnSync(process.execPath, [CLI, 'prune', src, '--ratio', '0.2', '--calib-task', csv, '--question-col', 'story', '--choices-col', 'a,b,c,d', '--answer-col', 'answer',
    '--out', out2, '--no-history', '--json'], { encoding: 'utf8' });
  assert.equal(c2.status, 0, c2.stderr);
  assert.match(JSON.parse(fs.readFileSync(path.join(out2, 'pruning.json'), 'utf8')).settings.calibSource, /^task:custom:calib-stories\.csv$/);
});

test('pipeline spec: prune.calibTask is a boolean (default false) and excludes prune.calibText', () => {
  const base = { model: 'm', tasks: ['story_cloze'], outDir: 'o' };
  assert.equal(parseSpec(base, '/x').prune.calibTask, false);
  assert.equal(parseSpec({ ...base, prune: { calibTask: true } }, '/x').prune.calibTask, true);
  assert.throws(() => parseSpec({ ...base, prune: { calibTask: 'yes' } }, '/x'), /spec: prune\.calibTask must be true .* or false/);
  assert.throws(() => parseSpec({ ...base, prune: { calibTask: true, calibText: 'a.txt' } }, '/x'), /prune\.calibTask .* and prune\.calibText .* exclude each other/);
});

test('pipeline spec: prune.roundTo is an integer from 1 to 1024 (default 1)', () => {
  const base = { model: 'm', tasks: ['story_cloze'], outDir: 'o' };
  assert.equal(parseSpec(base, '/x').prune.roundTo, 1);
  assert.equal(parseSpec({ ...base, prune: { roundTo: 32 } }, '/x').prune.roundTo, 32);
  for (const bad of [0, 2.5, 2048, '8'])
    assert.throws(() => parseSpec({ ...base, prune: { roundTo: bad } }, '/x'), /spec: prune\.roundTo must be an integer from 1 to 1024/, String(bad));
});

test('pipeline spec: compute chooses the backend and the GPU weight storage (default auto, f32), named in errors', () => {
  const base = { model: 'm', tasks: ['story_cloze'], outDir: 'o' };
  assert.deepEqual(parseSpec(base, '/x').compute, { backend: 'auto', weights: 'f32' });
  assert.deepEqual(parseSpec({ ...base, compute: { backend: 'cuda', weights: 'bf16' } }, '/x').compute, { backend: 'cuda', weights: 'bf16' });
  assert.deepEqual(parseSpec({ ...base, compute: { backend: 'cpu' } }, '/x').compute, { backend: 'cpu', weights: 'f32' });
  assert.throws(() => parseSpec({ ...base, compute: { backend: 'gpu' } }, '/x'), /spec: compute\.backend must be "auto", "cpu" or "cuda"/);
  assert.throws(() => parseSpec({ ...base, compute: { weights: 'fp8' } }, '/x'), /spec: compute\.weights must be "f32" or "bf16"/);
});

test('prune errors: unreachable targets, bad ratios and missing calibration are clear', () => {
  const src = shared('models', 'stories260K-hf');
  const cases: Array<[string[], number, RegExp]> = [
    [['prune', src, '--ratio', '0.5', '--out', path.join(dir, 'x1')], 2, /needs calibration data/],
    [['prune', src, '--ratio', '1.5', '--method', 'random', '--out', path.join(dir, 'x2')], 2, /--ratio must be a number/],
    [['prune', src, '--target-params', '10', '--method', 'random', '--out', path.join(dir, 'x3')], 1, /cannot be reached/],
    [['prune', src, '--ratio', '0.5', '--method', 'random', '--layers', '2-9', '--out', path.join(dir, 'x4')], 1, /outside the model's layers/],
    [['prune', src, '--ratio', '0.5', '--calib-task', 'story_cloze', '--calib', shared('datasets', 'tinystories', 'validation_head.txt'), '--out', path.join(dir, 'x5')], 2, /give one of --calib FILE, --calib-ids FILE\.json or --calib-task/],
    [['prune', src, '--ratio', '0.5', '--calib-task', 'no_such_task', '--out', path.join(dir, 'x6')], 1, /unknown task "no_such_task"/],
    [['prune', src, '--ratio', '0.5', '--calib-task', 'story_cloze', '--template-style', 'chat', '--out', path.join(dir, 'x7')], 2, /--template-style must be task or alpaca/],
  ];
  for (const [args, code, re] of cases) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.equal(fs.existsSync(args[args.length - 1]), false, 'nothing written');
  }
});

test('slicing a loaded model layer by layer gives the pruned tensors of slicing its full copy, bit for bit', async () => {
  const m = await Model.load(shared('models', 'stories260K-hf'), { noTokenizer: true });
  try {
    // uneven keeps: GQA groups of 2 heads, a layer losing all attention, one losing nothing
    const kept: KeptLayer[] = m.info.layers.map((l, i) => {
      const groups = i === 1 ? [] : i === 2 ? [...Array(l.nKvHead).keys()] : [0, l.nKvHead - 1];
      const per = l.nHead / l.nKvHead;
      return { attnGroups: groups, heads: groups.flatMap((g) => [...Array(per).keys()].map((k) => g * per + k)), channels: [...Array(l.ffn).keys()].filter((c) => (c + i) % 3 !== 0) };
    });
    const whole = m.tensors();
    assert.deepEqual(sliceLoaded(m, kept), sliceModel(whole, kept));
    const lazy0 = m.lazyTensors();
    assert.deepEqual(lazy0.tokEmb, whole.tokEmb);
    m.info.layers.forEach((_, i) => assert.deepEqual({ ...lazy0.layers[i] }, whole.layers[i]));
    assert.throws(() => m.rawHandle().tensors({ layer: m.info.nLayers, name: 'wq' }), (e: unknown) => (e as EngineError).code === 'E_ARG');
    // each read slices afresh from the model: nothing is kept between reads
    const lazy = sliceLoaded(m, kept);
    assert.notEqual(lazy.layers[0].wq, lazy.layers[0].wq);
    m.dispose();
    assert.throws(() => lazy.layers[0].wq, /disposed/);
  } finally {
    m.dispose();
  }
});
