// `tailor export RUN_ID` end to end on a tiny pipeline run (stories260K, story_cloze, ratios 0.2 and 0.5):
// the run's pruned model with its LoRA adapter merged (gguf, hf) or beside it (peft) scores exactly as the
// pruned model + adapter does in memory; the model card states the base model, the pruning and LoRA
// settings and the run's evaluation table with recovery rates; each export is an artifact of the run;
// several ratios need --ratio, and unknown runs or ratios get clear errors. Plus modelCardFor on its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Model } from '../electron/core/engine/engine.js';
import { modelCardFor } from '../electron/core/export/export.js';
import { History } from '../electron/core/history/db.js';
import { applyAdapter } from '../electron/core/train/trainer.js';
import { golden } from './helpers/golden.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const dir = tempDir('tailor-export-run-');
const CLI = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
const MODEL = path.join(REPO_ROOT, 'resources', 'models', 'stories260K');
const IDS = [golden('stories260K').sequences.tinystories_64.ids];
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;

const tailor = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

async function lastLogits(model: string, adapter?: string): Promise<Float32Array> {
  const m = await Model.load(model);
  try {
    if (adapter) applyAdapter(m, adapter);
    return (await m.score(IDS, { lastLogits: true }))[0].lastLogits!;
  } finally {
    m.dispose();
  }
}

const worst = (a: Float32Array, b: Float32Array) => a.reduce((w, v, i) => Math.max(w, Math.abs(v - b[i])), 0);

test('modelCardFor: base model, pruning and LoRA settings, evaluation table with recovery', () => {
  const layers = [{ nHead: 8, nKvHead: 4, ffn: 172 }, { nHead: 4, nKvHead: 2, ffn: 86 }];
  const card = modelCardFor({
    name: 'my model', baseModel: 'models/base', source: 'out/pruned-0.5', format: 'hf', dtype: 'bf16', params: 146_752, dim: 64, headDim: 8, vocabSize: 512, contextLength: 512, layers,
    pruning: { method: 'taylor', ratio: 0.5, paramsBefore: 260_032, paramsAfter: 146_752, removedShare: 0.43564, attnLayers: [0, 4], mlpLayers: [1, 3], global: true, agg: 'sum', calibSamples: 10, calibTokens: 630, seed: 0 },
    lora: { rank: 8, alpha: 16, rslora: false, dropout: 0.05, targets: ['q_proj', 'v_proj'], lr: 0.003, schedule: 'cosine', epochs: 2, batch: 8, maxLen: 256, steps: 50, firstLoss: 2.5, finalLoss: 1.25 },
    evaluation: [{ task: 'story_cloze', baseline: 0.5, pruned: 0.4, recovered: 0.45, recovery: 0.9, n: 150 }, { task: 'boolq', baseline: 0.6, pruned: 0.5, recovered: 0.63, recovery: 1.05 }],
    perplexity: [{ set: 'tiny.txt', baseline: 5.4, pruned: 9.1, recovered: 6.2 }],
    runId: 'run-1',
  });
  assert.match(card, /^---\nlibrary_name: transformers\n[\s\S]*tags: \[llama, tailor, pruned, lora\]\n---\n/);
  assert.match(card, /base model: `models\/base`/);
  assert.match(card, /per-layer shapes \(structurally pruned\): heads 8, 4; KV heads 4, 2; FFN 172, 86/);
  assert.match(card, /method: taylor importance .*one global ranking/);
  assert.match(card, /pruning ratio: 0\.5 /);
  assert.match(card, /layers: attention layers 0–4; MLP layers 1–3/);
  assert.match(card, /parameters: 260,032 → 146,752 \(43\.56% of all parameters really removed\)/);
  assert.match(card, /rank 8, alpha 16, dropout 0\.05, targets q_proj, v_proj/);
  assert.match(card, /learning rate 0\.003 \(cosine\), 2 epoch\(s\), batch 8, max length 256/);
  assert.match(card, /50 steps, loss 2\.5000 → 1\.2500/);
  assert.match(card, /\| task \| baseline \| pruned \| recovered \| recovery \|/);
  assert.match(card, /\| story_cloze \(n = 150\) \| 50\.00% \| 40\.00% \| 45\.00% \| 90\.00% \|/);
  assert.match(card, /\| boolq \| 60\.00% \| 50\.00% \| 63\.00% \| 105\.00% \|/);
  assert.match(card, /Mean recovery: 97\.50%/);
  assert.match(card, /\| tiny\.txt \| 5\.400 \| 9\.100 \| 6\.200 \|/);
  // an untailored model: no pruning, LoRA or evaluation sections
  const plain = modelCardFor({ name: 'plain', source: 'm', format: 'hf', dtype: 'f32', params: 10, dim: 8, headDim: 4, vocabSize: 16, contextLength: 32, layers: [layers[0]] });
  assert.doesNotMatch(plain, /## (Pruning|LoRA|Evaluation)/);
  assert.match(plain, /every layer: 8 heads, 4 KV heads, FFN 172/);
});

test('tailor export RUN_ID: the run’s pruned model + LoRA as gguf, hf and peft, with the evaluation on the model card', async () => {
  const db = path.join(dir, 'history.sqlite');
  const spec = path.join(dir, 'spec.json');
  fs.writeFileSync(spec, JSON.stringify({ name: 'tiny tailoring', model: MODEL, tasks: ['story_cloze'], outDir: path.join(dir, 'run'), eval: { limit: 40 },
    prune: { method: 'taylor', ratios: [0.2, 0.5] }, lora: { trainShots: 32, epochs: 1, lr: 0.003, batch: 8, maxLen: 128 } }));
  const run = tailor('run', spec, '--db', db, '--json');
  assert.equal(run.status, 0, run.stderr);
  const rep = JSON.parse(run.stdout) as { runId: string; paramsBefore: number; rows: Array<{ ratio: number; task: string; baseline: number; pruned: number; recovered: number; recovery: number; n: number }>; ratios: Array<{ ratio: number; paramsAfter: number }> };
  const id = rep.runId;
  const pruned = (r: number) => path.join(dir, 'run', `pruned-${r}`);
  const adapter = (r: number) => path.join(dir, 'run', `lora-${r}`, 'adapter');

  // two ratios: --ratio is required, and the error lists them
  const noRatio = tailor('export', id, '--format', 'gguf', '--out', path.join(dir, 'x.gguf'), '--db', db);
  assert.equal(noRatio.status, 1);
  assert.match(noRatio.stderr, /E_ARG.*several pruning ratios \(0\.2, 0\.5\); choose one with --ratio/);
  const badRatio = tailor('export', id, '--ratio', '0.3', '--format', 'gguf', '--out', path.join(dir, 'x.gguf'), '--db', db);
  assert.match(badRatio.stderr, /E_ARG.*no ratio 0\.3; its ratios are 0\.2, 0\.5/);
  const unknown = tailor('export', 'no-such-run', '--format', 'gguf', '--out', path.join(dir, 'x.gguf'), '--db', db);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /E_ARG.*no-such-run is neither an existing model path nor a run/);
  assert.equal(tailor('export', id, '--ratio', '0.2', '--adapter', adapter(0.2), '--format', 'hf', '--out', path.join(dir, 'x'), '--db', db).status, 2);
  assert.ok(!fs.existsSync(path.join(dir, 'x.gguf')) && !fs.existsSync(path.join(dir, 'x')));

  // hf at 0.5: merged weights, model card with the pruning, LoRA and evaluation of the run; progress in bytes
  const hf = path.join(dir, 'export-hf');
  const r1 = tailor('export', id, '--ratio', '0.5', '--format', 'hf', '--out', hf, '--db', db, '--progress');
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stderr, /export\s+100\.0%\s+([\d.]+ kB) \/ \1/);
  assert.ok(worst(await lastLogits(hf), await lastLogits(pruned(0.5), adapter(0.5))) === 0, 'hf = pruned + adapter');
  const card = fs.readFileSync(path.join(hf, 'README.md'), 'utf8');
  const row = rep.rows.find((r) => r.ratio === 0.5)!;
  assert.match(card, new RegExp(`base model: \`${MODEL.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\``));
  assert.match(card, new RegExp(`\\(run \`${id}\`\\)`));
  assert.match(card, /method: taylor importance/);
  assert.match(card, /pruning ratio: 0\.5 /);
  assert.match(card, /layers: attention layers 0–4; MLP layers 0–4/);
  const after = rep.ratios.find((r) => r.ratio === 0.5)!.paramsAfter;
  assert.match(card, new RegExp(`parameters: ${rep.paramsBefore.toLocaleString('en-US')} → ${after.toLocaleString('en-US')} \\(\\d+\\.\\d\\d% of all parameters really removed\\)`));
  assert.match(card, /adapter merged into the weights\n- rank 8, alpha 16, dropout 0\.05, targets q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/);
  assert.match(card, /training: learning rate 0\.003 \(cosine\), 1 epoch\(s\), batch 8, max length 128/);
  assert.ok(card.includes(`| story_cloze (n = ${row.n}) | ${pct(row.baseline)} | ${pct(row.pruned)} | ${pct(row.recovered)} | ${pct(row.recovery)} |`), card);
  assert.match(card, /recovery = recovered \/ baseline/);

  // gguf at 0.2: the same logits as pruned + adapter in Tailor
  const gguf = path.join(dir, 'export.gguf');
  const r2 = tailor('export', id, '--ratio', '0.2', '--format', 'gguf', '--out', gguf, '--db', db, '--json');
  assert.equal(r2.status, 0, r2.stderr);
  assert.deepEqual({ ...JSON.parse(r2.stdout), bytes: 0 }, { out: gguf, run: id, ratio: 0.2, format: 'gguf', dtype: 'f32', bytes: 0, architecture: 'llama' });
  const merged = await lastLogits(pruned(0.2), adapter(0.2));
  assert.ok(worst(await lastLogits(gguf), merged) === 0, 'gguf = pruned + adapter');
  assert.equal(tailor('export', id, '--ratio', '0.2', '--format', 'gguf', '--out', gguf, '--db', db).stderr.match(/already exists \(use --force/)?.length, 1);

  // peft at 0.2: the adapter unmerged with its pruned base beside it, and the card with the note
  const peft = path.join(dir, 'export-peft');
  const r3 = tailor('export', id, '--ratio', '0.2', '--format', 'peft', '--out', peft, '--db', db);
  assert.equal(r3.status, 0, r3.stderr);
  assert.ok(worst(await lastLogits(path.join(peft, 'base'), path.join(peft, 'adapter')), merged) === 0, 'base + adapter = the merged export');
  const peftCard = fs.readFileSync(path.join(peft, 'README.md'), 'utf8');
  assert.match(peftCard, /library_name: peft/);
  assert.match(peftCard, /It fits only the model in `base\/`/);
  assert.match(peftCard, /adapter shipped unmerged in `adapter\/`/);
  assert.match(peftCard, /\| story_cloze \(n = 40\) \|/);

  // each export is an artifact of the run, with its size
  const h = History.open(db);
  try {
    const exports = h.getRun(id).artifacts.filter((a) => a.kind === 'export');
    const size = (p: string): number => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).reduce((s, f) => s + size(path.join(p, f)), 0) : fs.statSync(p).size);
    assert.deepEqual(exports.map((a) => [a.path, a.bytes]).sort(), [hf, gguf, peft].map((p) => [p, size(p)]).sort());
  } finally {
    h.close();
  }
});
