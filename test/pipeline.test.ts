// The whole pipeline (tailor run) on stories260K with ratios 0.2 and 0.5: reports in three forms, the run
// in the history with its stages and loss curve, LoRA recovering what pruning lost — and a process
// killed mid-LoRA that resumes and finishes; pruning calibrated on the tasks' training prompts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { History } from '../electron/core/history/db.js';
import { Model } from '../electron/core/engine/engine.js';
import { calibrationFromExamples, taskCalibrationRecords } from '../electron/core/prune/calibration.js';
import { alpacaTemplate, getTask } from '../electron/core/tasks/index.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const dir = tempDir('tailor-pipeline-');
const CLI = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
const MODEL = path.join(REPO_ROOT, 'resources', 'models', 'stories260K');

function spec(name: string, extra: Record<string, unknown> = {}): string {
  const f = path.join(dir, `${name}.json`);
  fs.writeFileSync(f, JSON.stringify({
    name, model: MODEL, tasks: ['story_cloze'], outDir: path.join(dir, name), eval: { limit: 150 },
    prune: { method: 'taylor', ratios: [0.2, 0.5] }, lora: { trainShots: 400, epochs: 2, lr: 0.003, batch: 8, maxLen: 256 }, ...extra,
  }));
  return f;
}

test('tailor run: reports in JSON, Markdown and HTML; the run and its stages in the history; LoRA recovers at both ratios', () => {
  const db = path.join(dir, 'h1.sqlite');
  const pplFile = path.join(dir, 'tinystories-slice.txt');
  fs.writeFileSync(pplFile, fs.readFileSync(path.join(REPO_ROOT, 'resources', 'data', 'tinystories-validation-head.txt'), 'utf8').slice(300_000, 330_000));
  const r = spawnSync(process.execPath, [CLI, 'run', spec('full', { eval: { limit: 150, perplexity: [pplFile] }, export: { format: 'gguf', dtype: 'f32' } }), '--db', db, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  for (const f of ['report.json', 'report.md', 'report.html']) assert.ok(fs.statSync(path.join(dir, 'full', f)).size > 200, f);
  // where it ran: the spec's compute (default auto) and the backend the engine named
  assert.deepEqual(rep.spec.compute, { backend: 'auto', weights: 'f32' });
  assert.match(rep.compute, /^(cpu|cuda) \(/);
  assert.match(fs.readFileSync(path.join(dir, 'full', 'report.md'), 'utf8'), /^Computed on (cpu|cuda) \(/m);
  const html = fs.readFileSync(path.join(dir, 'full', 'report.html'), 'utf8');
  assert.match(html, /<svg[^>]+aria-label="accuracy per task"/);
  assert.match(html, /aria-label="LoRA loss"/);
  assert.doesNotMatch(html, /https?:\/\//, 'self-contained');
  assert.match(html, /aria-label="importance heat map at ratio 0.5"/);
  // perplexity sets at every stage; each recovered model exported as GGUF and loadable
  assert.equal(rep.perplexity.length, 2);
  for (const p of rep.perplexity) assert.ok(p.pruned > p.baseline && p.recovered > 0, JSON.stringify(p));
  for (const x of rep.ratios) {
    assert.ok(fs.existsSync(x.exported), x.exported);
    const info = spawnSync(process.execPath, [CLI, 'info', x.exported, '--json'], { encoding: 'utf8' });
    assert.equal(JSON.parse(info.stdout).nParams, x.paramsAfter);
  }
  assert.equal(rep.rows.length, 2);
  for (const row of rep.rows) {
    assert.ok(row.recovered > row.pruned, `ratio ${row.ratio}: recovered ${row.recovered} > pruned ${row.pruned}`);
    assert.ok(Math.abs(row.recovery - row.recovered / row.baseline) < 1e-12);
  }
  assert.ok(rep.ratios[1].paramsAfter < rep.ratios[0].paramsAfter);
  const h = History.open(db);
  try {
    const run = h.getRun(rep.runId);
    assert.equal(run.status, 'done');
    assert.equal(run.kind, 'pipeline');
    assert.deepEqual(run.stages.map((s) => s.name), ['baseline', 'prune ratio=0.2', 'eval-pruned ratio=0.2', 'lora ratio=0.2', 'eval-recovered ratio=0.2', 'export ratio=0.2',
      'prune ratio=0.5', 'eval-pruned ratio=0.5', 'lora ratio=0.5', 'eval-recovered ratio=0.5', 'export ratio=0.5']);
    assert.ok(run.stages.every((s) => s.status === 'done'));
    assert.ok(h.metrics(rep.runId, 'loss').length > 10);
    assert.ok(run.results.some((x) => x.phase === 'recovery'));
    assert.ok(run.artifacts.some((a) => a.kind === 'report') && run.artifacts.some((a) => a.kind === 'adapter'));
    assert.equal(h.integrityCheck(), 'ok');
  } finally {
    h.close();
  }
});

test('a run killed mid-LoRA is marked interrupted, resumes from its last finished stage, and finishes with the same report', async () => {
  const db = path.join(dir, 'h2.sqlite');
  const f = spec('killed');
  const child = spawn(process.execPath, [CLI, 'run', f, '--db', db, '--progress'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/lora ratio=0\.2: [1-9]/.test(err) && !child.killed) child.kill('SIGKILL');
    });
    child.on('exit', () => resolve());
    child.on('error', reject);
  });
  assert.ok(child.signalCode === 'SIGKILL', `killed mid-LoRA (stderr: ${err.slice(-300)})`);
  const h = History.open(db); // opening marks the dead process's run
  const [run] = h.listRuns();
  assert.equal(run.status, 'interrupted');
  assert.equal(h.getRun(run.id).stages.find((s) => s.name === 'lora ratio=0.2')?.status, 'interrupted');
  h.close();
  const again = spawnSync(process.execPath, [CLI, 'run', f, '--db', db, '--resume', '--json'], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  const rep = JSON.parse(again.stdout);
  assert.equal(rep.runId, run.id, 'the same run continues');
  const h2 = History.open(db);
  try {
    assert.equal(h2.getRun(run.id).status, 'done');
    assert.equal(h2.integrityCheck(), 'ok');
  } finally {
    h2.close();
  }
  // the uninterrupted run's report (same spec, same seed) has the same numbers
  const full = JSON.parse(fs.readFileSync(path.join(dir, 'full', 'report.json'), 'utf8'));
  assert.deepEqual(rep.rows, full.rows, 'the same accuracies as the uninterrupted run (which also had perplexity and export stages)');
});

test('prune.roundTo: a parameter target met with MLP channels in multiples of 8, said in the reports', () => {
  const r = spawnSync(process.execPath, [CLI, 'run', spec('round-to', { eval: { limit: 20 }, prune: { method: 'taylor', targets: [150_000], roundTo: 8 },
    lora: { trainShots: 16, epochs: 1, lr: 0.003, batch: 8, maxLen: 128 } }), '--no-history', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  assert.ok(rep.ratios[0].paramsAfter <= 150_000, String(rep.ratios[0].paramsAfter));
  const pruned = path.join(dir, 'round-to', `pruned-${rep.ratios[0].ratio}`);
  const cfg = JSON.parse(fs.readFileSync(path.join(pruned, 'config.json'), 'utf8'));
  const ffn: number[] = cfg.layer_intermediate_sizes ?? Array(cfg.num_hidden_layers).fill(cfg.intermediate_size);
  for (const f of ffn) assert.equal(f % 8, 0, `${ffn.join(' ')}`);  // without it, 89 a layer
  assert.match(fs.readFileSync(path.join(dir, 'round-to', 'report.md'), 'utf8'), /pruning by taylor, MLP channels in multiples of 8, run /);
  assert.match(fs.readFileSync(path.join(dir, 'round-to', 'report.html'), 'utf8'), /pruning by taylor, MLP channels in multiples of 8, run /);
});

test("prune.calibTask: the prune stage calibrates on the tasks' training prompts, rendered with the LoRA template", async () => {
  const r = spawnSync(process.execPath, [CLI, 'run', spec('calib-task', { eval: { limit: 20 }, prune: { method: 'taylor', ratios: [0.5], calibTask: true, calibSamples: 8, calibSeqLen: 96 },
    lora: { trainShots: 16, epochs: 1, lr: 0.003, batch: 8, maxLen: 128, template: 'alpaca' }, seed: 2 }), '--no-history', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout);
  const pruning = JSON.parse(fs.readFileSync(path.join(dir, 'calib-task', 'pruned-0.5', 'pruning.json'), 'utf8'));
  assert.equal(pruning.settings.calibSource, 'task:story_cloze');
  assert.equal(pruning.settings.calibTokens, 8 * 95);
  // the same scores as the calibration built in-process from story_cloze's training items in the Alpaca template
  const m = await Model.load(MODEL);
  try {
    const task = getTask('story_cloze');
    const calib = calibrationFromExamples(m.requireTokenizer(), taskCalibrationRecords([{ items: task.trainItems(), template: alpacaTemplate(task) }], 2), 8, 96, 2, m.info.bosId);
    const s = await m.groupImportance(calib, { method: 'taylor', agg: 'sum', seed: 2 });
    const want = s.mlp.flatMap((v) => Array.from(v)), got = (rep.ratios[0].importance.layers as Array<{ mlp: number[] }>).flatMap((l) => l.mlp);
    assert.equal(got.length, want.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) <= 1e-6 * Math.abs(want[i]) + 1e-12, `channel ${i}: ${v} vs ${want[i]}`));
  } finally {
    m.dispose();
  }
});

test('bad specs and unknown tasks get clear errors and no finished run', () => {
  const db = path.join(dir, 'h3.sqlite');
  const bad = path.join(dir, 'bad.json');
  fs.writeFileSync(bad, JSON.stringify({ model: MODEL, tasks: ['story_cloze'], outDir: path.join(dir, 'bad'), prune: { ratios: [1.5] } }));
  const r1 = spawnSync(process.execPath, [CLI, 'run', bad, '--db', db], { encoding: 'utf8' });
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /prune\.ratios must be a list of ratios/);
  const r2 = spawnSync(process.execPath, [CLI, 'run', spec('unknown', { tasks: ['no_such_task'] }), '--db', db], { encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /no_such_task/);
  const h = History.open(db);
  try {
    assert.equal(h.listRuns().filter((x) => x.status === 'done').length, 0);
  } finally {
    h.close();
  }
});

test('a custom CSV task goes through the whole pipeline; a malformed one is refused before any work', () => {
  const rows = fs.readFileSync(path.join(REPO_ROOT, 'resources', 'datasets', 'story_cloze', 'train.jsonl'), 'utf8').trim().split('\n').slice(0, 300)
    .map((l) => JSON.parse(l) as { question: string; choices: string[]; label: number });
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const csv = path.join(dir, 'mystories.csv');
  fs.writeFileSync(csv, ['story,a,b,c,d,answer', ...rows.map((r) => [r.question, ...r.choices, 'ABCD'[r.label]].map(q).join(','))].join('\n') + '\n');
  const mapping = { kind: 'multiple-choice', question: 'story', choices: ['a', 'b', 'c', 'd'], answer: 'answer', template: '{question}' };
  const db = path.join(dir, 'h4.sqlite');
  // pruned to a parameter target rather than a ratio
  const ok = spawnSync(process.execPath, [CLI, 'run', spec('custom', { tasks: [{ name: 'my-stories', file: csv, mapping }], prune: { method: 'taylor', ratios: [], targets: [200_000] } }), '--db', db, '--json'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  const rep = JSON.parse(ok.stdout);
  assert.deepEqual(rep.tasks, ['my-stories']);
  assert.equal(rep.rows[0].n, 60, '20% of 300 rows held out for evaluation');
  assert.ok(rep.ratios[0].paramsAfter <= 200_000 && rep.ratios[0].paramsAfter > 180_000, `${rep.ratios[0].paramsAfter} parameters for a 200,000 target`);
  const badCsv = path.join(dir, 'bad.csv');
  fs.writeFileSync(badCsv, 'story,a,b\n"x","y","z"\n');
  const bad = spawnSync(process.execPath, [CLI, 'run', spec('custom-bad', { tasks: [{ file: badCsv, mapping }] }), '--db', db], { encoding: 'utf8' });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /bad\.csv.*(c|d|answer)/);
  const h = History.open(db);
  try {
    assert.equal(h.listRuns().length, 1, 'only the good run is in the history');
  } finally {
    h.close();
  }
});

test('the baseline model is released before each pruned model is loaded, and nothing stays loaded after the run', async () => {
  const { runPipeline } = await import('../electron/core/pipeline/pipeline.js');
  const { parseSpec } = await import('../electron/core/pipeline/spec.js');
  const s = parseSpec(JSON.parse(fs.readFileSync(spec('release', { eval: { limit: 20 }, lora: { trainShots: 16, epochs: 1, lr: 0.003, batch: 8, maxLen: 128 } }), 'utf8')));
  const before = Model.liveCount();
  const live: Record<string, number> = {};
  await runPipeline(s, { db: null, onEvent: (e) => { if (e.status === 'start') live[e.stage] = Model.liveCount() - before; } });
  // the pruned model alone while it is evaluated and tuned (a 7B baseline beside it would not fit a 24 GB GPU)
  for (const r of ['0.2', '0.5']) {
    assert.equal(live[`eval-pruned ratio=${r}`], 1, `eval-pruned ${r}: ${JSON.stringify(live)}`);
    assert.equal(live[`lora ratio=${r}`], 1, `lora ${r}: ${JSON.stringify(live)}`);
    assert.equal(live[`eval-recovered ratio=${r}`], 0, `eval-recovered ${r} loads the merged model alone: ${JSON.stringify(live)}`);
  }
  assert.equal(live.baseline, 1);
  assert.equal(Model.liveCount(), before, 'every model the run loaded is disposed');
});
