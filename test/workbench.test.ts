// The workbench's back end (what Electron's main process and `tailor serve` run), in plain Node with the
// real engine and a real SQLite file: payload validation, the model library, refused specs leaving the
// history clean, a run from the wizard streaming its events to the end, cancel-and-resume, history
// views (list, compare, delete), playground streaming, and the IPC sender check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EventName, Events, SpecInput } from '../electron/core/api/contract.js';
import { PayloadError, validatePayload } from '../electron/core/api/validate.js';
import { Throttle } from '../electron/core/service/events.js';
import { Workbench } from '../electron/core/service/workbench.js';
import { infoFromHfConfig } from '../electron/core/service/library.js';
import { randomModel } from '../electron/core/formats/model-tensors.js';
import { writeHfFolder } from '../electron/core/formats/safetensors-write.js';
import { spawnSync } from 'node:child_process';
import { handleInvoke, senderAllowed, trustedPage } from '../electron/main/ipc.js';
import { Model } from '../electron/core/engine/engine.js';
import { generateText } from '../electron/core/text/generate.js';
import { defaultTemplate, fewShot, getTask, renderExample } from '../electron/core/tasks/index.js';
import { promptCompletionExamples } from '../electron/core/train/data.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';

const MODEL = path.join(REPO_ROOT, 'resources', 'models', 'stories260K');
const dir = tempDir('tailor-workbench-');

type Got = { [E in EventName]: Array<Events[E]> };
async function open(name: string): Promise<{ w: Workbench; got: Got; dataDir: string }> {
  const got = { 'run.progress': [], 'run.loss': [], 'run.log': [], 'run.finished': [], 'job.progress': [], 'job.text': [], 'job.finished': [] } as Got;
  const dataDir = path.join(dir, name);
  const w = await Workbench.open({ dbPath: path.join(dataDir, 'history.sqlite'), dataDir, mode: 'serve',
    emit: (e, p) => (got[e] as unknown[]).push(p) });
  return { w, got, dataDir };
}

function until<T>(f: () => T | undefined, ms = 120_000): Promise<T> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = f();
      if (v !== undefined) return resolve(v);
      if (Date.now() - t0 > ms) return reject(new Error('timed out waiting'));
      setTimeout(tick, 20);
    };
    tick();
  });
}

const spec = (name: string, extra: Partial<SpecInput> = {}): SpecInput => ({
  name, model: MODEL, tasks: ['story_cloze'], seed: 0, eval: { limit: 60, shots: 0, perplexity: [] }, export: null,
  prune: { method: 'taylor', ratios: [0.5], targets: [], layers: null, calibText: null, calibSamples: 10, calibSeqLen: 64, global: false },
  lora: { rank: 8, alpha: 16, lr: 0.003, epochs: 1, batch: 8, maxLen: 256, trainShots: 80, template: 'task', targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] }, ...extra,
});

test('every payload is checked before anything acts: wrong types, ranges, enums, unknown fields and relative paths are refused naming the field', async () => {
  const bad: Array<[string, unknown, string]> = [
    ['prune.plan', { model: 'relative/path', ratio: 0.2, targetParams: null, layers: null }, 'model'],
    ['prune.plan', { model: MODEL, ratio: 1.5, targetParams: null, layers: null }, 'ratio'],
    ['prune.plan', { model: MODEL, ratio: 0.2, targetParams: null, layers: [3, 1] }, 'layers'],
    ['prune.plan', { model: MODEL, ratio: 0.2, targetParams: null, layers: null, roundTo: 0 }, 'roundTo'],
    ['runs.list', { status: 'bogus', kind: null, query: '', sort: 'newest' }, 'status'],
    ['runs.get', { runId: '../../etc' }, 'runId'],
    ['models.add', { path: '/x\0y' }, 'path'],
    ['models.add', { path: '/x', extra: 1 }, 'extra'],
    ['generate.start', { source: { kind: 'model', path: MODEL }, prompt: 'x', maxTokens: 0, temperature: 0, topK: 0, topP: 1, seed: 0, side: 'a' }, 'maxTokens'],
    ['runs.compare', { runIds: ['a'] }, 'runIds'],
    ['runs.start', { spec: { ...spec('x'), lora: { ...spec('x').lora, targets: [] } } }, 'spec.lora.targets'],
    ['runs.start', { spec: { ...spec('x'), lora: { ...spec('x').lora, targets: ['q_proj', 'wq'] } } }, 'spec.lora.targets[1]'],
    ['runs.start', { spec: { ...spec('x'), prune: { ...spec('x').prune, method: 'psychic' } } }, 'spec.prune.method'],
    ['runs.start', { spec: { ...spec('x'), compute: { backend: 'tpu', weights: 'f32' } } }, 'spec.compute.backend'],
    ['runs.validate', { spec: { ...spec('x'), compute: { backend: 'auto', weights: 'int4' } } }, 'spec.compute.weights'],
  ];
  for (const [ch, p, field] of bad)
    assert.throws(() => validatePayload(ch as 'prune.plan', p), (e: unknown) => e instanceof PayloadError && e.code === 'E_PAYLOAD' && e.field === field, `${ch} ${field}`);
  assert.deepEqual(validatePayload('prune.plan', { model: MODEL, ratio: 0.2, targetParams: null, layers: [1, 3] }), { model: MODEL, ratio: 0.2, targetParams: null, layers: [1, 3] });
  const { w } = await open('payloads');
  try {
    assert.deepEqual(await w.call('no.such', {}), { ok: false, error: { code: 'E_UNKNOWN_CHANNEL', message: 'unknown channel "no.such"' } });
    // the app shows the engine as it is: CUDA either usable or with the reason it is not
    const info = await w.invoke('app.info', {});
    assert.equal(info.engine.cuda.built, info.engine.cudaBuilt);
    assert.equal(info.engine.cuda.available, info.engine.cuda.reason === null);
    assert.equal(info.engine.backend, 'cpu');
    assert.equal(info.engine.cuda.cublasLt, null, 'no usable device here: cuBLASLt is not looked for');
    const r = await w.call('runs.get', { runId: 'nope' });
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.error.code, 'E_NOT_FOUND');
  } finally {
    await w.shutdown();
  }
});

test('the model library: stories260K is there on first start; models are added with their shapes and removed; the bundled one stays', async () => {
  const { w, dataDir } = await open('library');
  try {
    const first = await w.invoke('models.list', {});
    assert.equal(first.length, 1);
    assert.equal(first[0].bundled, true);
    assert.equal(first[0].params, 260032);
    assert.deepEqual(first[0].layers[0], { nHead: 8, nKvHead: 4, ffn: 172 });
    // 5 layers × 4 KV heads × head dim 8, keys and values in fp32; no device here to keep them in bf16
    assert.deepEqual(first[0].kvCache, { bytesPerToken: 1280, bf16BytesPerToken: null });
    const m = await w.invoke('models.add', { path: shared('models', 'stories260K', 'stories260K.gguf') });
    assert.equal(m.format, 'gguf');
    assert.equal(m.tokenizer !== null, true);
    assert.equal((await w.invoke('models.list', {})).length, 2);
    assert.deepEqual(await w.invoke('models.remove', { id: m.id }), { removed: true });
    assert.equal((await w.invoke('models.list', {})).length, 1);
    await assert.rejects(w.invoke('models.remove', { id: first[0].id }), /bundled model cannot be removed/);
    // a Hugging Face folder is added from its config.json alone (no weights read): the same shapes and
    // counts the engine reads, for a uniform model and for a pruned one with per-layer lists
    const prunedDir = path.join(dataDir, 'pruned');
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist/electron/core/cli/main.js'), 'prune', MODEL, '--ratio', '0.4', '--global', '--method', 'magnitude', '--out', prunedDir, '--no-history'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    for (const p of [MODEL, shared('models', 'stories260K-hf'), prunedDir]) {
      const fromConfig = infoFromHfConfig(p)!;
      const engine = await Model.load(p);
      try {
        const pick = (i: typeof fromConfig) => ({ params: i.nParams, dim: i.dim, nLayers: i.nLayers, headDim: i.headDim, vocab: i.vocabSize, ctx: i.contextLength,
          tied: i.tiedEmbeddings, layers: i.layers.map((l) => [l.nHead, l.nKvHead, l.ffn]), tokenizer: i.tokenizer, bos: i.bosId, eos: i.eosId });
        assert.deepEqual(pick(fromConfig), pick(engine.info), p);
      } finally {
        engine.dispose();
      }
    }
    assert.equal(infoFromHfConfig(shared('models', 'stories260K', 'stories260K.gguf')), null, 'not a folder: the engine reads it');
    await assert.rejects(w.invoke('models.add', { path: path.join(dataDir, 'missing') }), (e: { code?: string }) => e.code === 'E_IO');
    const plan = await w.invoke('prune.plan', { model: MODEL, ratio: 0.5, targetParams: null, layers: null });
    assert.equal(plan.paramsAfter, 146752);
    const byTarget = await w.invoke('prune.plan', { model: MODEL, ratio: null, targetParams: 211072, layers: null });
    assert.equal(byTarget.paramsAfter, 211072);
    // kept MLP channels in multiples of 8: 86 a layer become 88
    const rounded = await w.invoke('prune.plan', { model: MODEL, ratio: 0.5, targetParams: null, layers: null, roundTo: 8 });
    assert.deepEqual([rounded.paramsAfter, ...new Set(rounded.layers.map((l) => l.ffn))], [148672, 88]);
    await assert.rejects(w.invoke('prune.plan', { model: MODEL, ratio: null, targetParams: 10_000_000, layers: null }), (e: { field?: string }) => e.field === 'targetParams');
    // the LoRA estimate counts the training tokens exactly as the pipeline will build the examples
    const lora = { ...spec('x').lora, trainShots: 50, epochs: 2, maxLen: 64 };
    const est = await w.invoke('lora.estimate', { model: MODEL, ratio: 0.5, tasks: ['story_cloze'], lora, seed: 0 });
    const loaded = await Model.load(MODEL);
    try {
      const task = getTask('story_cloze');
      const recs = fewShot(task.trainItems(), 50, 0).map((it) => renderExample(defaultTemplate(task), it));
      const ex = promptCompletionExamples(loaded.requireTokenizer(), recs, { eos: false, maxLen: 64 });
      assert.deepEqual([est.examples, est.steps, est.trainTokens], [50, 14, 2 * ex.reduce((s, e) => s + e.ids.length, 0)]);
      assert.ok(est.seconds > 0 && est.bytes > 146752 * 4);
    } finally {
      loaded.dispose();
    }
  } finally {
    await w.shutdown();
  }
});

test('an invalid task file and an impossible target are refused with clear messages, and the history stays clean', async () => {
  const { w, dataDir } = await open('refused');
  try {
    const bad = path.join(dataDir, 'bad.csv');
    fs.writeFileSync(bad, 'text,label\n"unterminated,1\n');
    const custom = { name: 'mine', file: bad, mapping: { kind: 'classification' as const, text: 'text', label: 'label' } };
    await assert.rejects(w.invoke('runs.start', { spec: spec('bad task', { tasks: [custom] }) }), (e: { code?: string; field?: string; message: string }) =>
      e.code === 'E_TASK_FORMAT' && e.field === 'spec.tasks[0]' && /bad\.csv/.test(e.message));
    await assert.rejects(w.invoke('runs.start', { spec: spec('too small', { prune: { ...spec('x').prune, ratios: [], targets: [10_000_000] } }) }), (e: { code?: string; field?: string }) =>
      e.code === 'E_ARG' && e.field === 'spec.prune.targets[0]');
    await assert.rejects(w.invoke('runs.start', { spec: spec('unreachable', { prune: { ...spec('x').prune, ratios: [], targets: [1000] } }) }), (e: { field?: string; message: string }) =>
      e.field === 'spec.prune.targets[0]' && /cannot be reached/.test(e.message));
    await assert.rejects(w.invoke('runs.start', { spec: spec('no model', { model: path.join(dataDir, 'nothing') }) }), (e: { field?: string }) => e.field === 'spec.model');
    assert.equal((await w.invoke('runs.list', { status: null, kind: null, query: '', sort: 'newest' })).length, 0);
    assert.equal(fs.existsSync(path.join(dataDir, 'runs')), false, 'no run folder was created');
  } finally {
    await w.shutdown();
  }
});

test('a run from the wizard streams its stages, loss and log to the end; the history lists, compares and deletes it', async () => {
  const { w, got, dataDir } = await open('run');
  try {
    await w.invoke('drafts.save', { spec: { name: 'draft' }, step: 3 });
    assert.equal((await w.invoke('drafts.get', {}))?.step, 3);
    const { runId } = await w.invoke('runs.start', { spec: spec('wizard run') });
    assert.equal(await w.invoke('drafts.get', {}), null, 'the draft is cleared once its run starts');
    await assert.rejects(w.invoke('runs.start', { spec: spec('second') }), (e: { code?: string }) => e.code === 'E_BUSY');
    const fin = await until(() => got['run.finished'].find((e) => e.runId === runId));
    assert.equal(fin.status, 'done', JSON.stringify(fin.error));
    const stages = got['run.progress'].filter((e) => e.runId === runId);
    for (const s of ['baseline', 'prune ratio=0.5', 'eval-pruned ratio=0.5', 'lora ratio=0.5', 'eval-recovered ratio=0.5']) {
      assert.ok(stages.some((e) => e.stage === s && e.status === 'start'), `${s} started`);
      assert.ok(stages.some((e) => e.stage === s && e.status === 'done'), `${s} done`);
    }
    const prog = stages.filter((e) => e.status === 'progress');
    assert.ok(prog.length > 3 && prog.every((e) => e.fraction >= 0 && e.fraction <= 1), 'progress arrives');
    assert.ok(prog.some((e) => e.etaSec !== null && e.etaSec >= 0), 'with an ETA');
    assert.ok(got['run.loss'].length >= 5 && got['run.loss'].every((l) => Number.isFinite(l.loss)));
    assert.ok(got['run.log'].some((l) => /finished/.test(l.line)));
    const view = await w.invoke('runs.get', { runId });
    assert.equal(view.status, 'done');
    assert.equal(view.source, 'serve');
    assert.equal(view.report?.rows.length, 1);
    assert.ok(view.report!.rows[0].recovered >= view.report!.rows[0].pruned);
    assert.ok(view.outDir!.startsWith(path.join(dataDir, 'runs')));
    assert.equal(view.resumable, false);
    assert.ok(view.loss.length >= 5);
    // a second run with other settings, then compare
    const second = await w.invoke('runs.start', { spec: spec('other rank', { lora: { ...spec('x').lora, rank: 4, targets: ['q_proj', 'v_proj'] } }) });
    await until(() => got['run.finished'].find((e) => e.runId === second.runId));
    const secondDir = (await w.invoke('runs.get', { runId: second.runId })).outDir!;
    const adapterCfg = JSON.parse(fs.readFileSync(path.join(secondDir, 'lora-0.5', 'adapter', 'adapter_config.json'), 'utf8')) as { r: number; target_modules: string[] };
    assert.deepEqual([adapterCfg.r, [...adapterCfg.target_modules].sort()], [4, ['q_proj', 'v_proj']], 'the wizard\'s LoRA targets reach the adapter');
    const list = await w.invoke('runs.list', { status: 'done', kind: 'pipeline', query: 'rank', sort: 'newest' });
    assert.deepEqual(list.map((r) => r.id), [second.runId]);
    const cmp = await w.invoke('runs.compare', { runIds: [runId, second.runId] });
    assert.deepEqual(cmp.settingsDiff.find((d) => d.key === 'lora.rank')?.values, ['8', '4']);
    assert.ok(cmp.metrics.some((m) => m.phase === 'recovered' && m.values.every((v) => v !== null)));
    assert.equal(cmp.loss.length, 2);
    // playground on the run's recovered model streams what the engine generates
    const { jobId } = await w.invoke('generate.start', { source: { kind: 'run', runId, ratio: 0.5, recovered: true }, prompt: 'Once upon a time', maxTokens: 40,
      temperature: 0, topK: 0, topP: 1, seed: 0, side: 'a' });
    const done = await until(() => got['job.finished'].find((e) => e.jobId === jobId));
    assert.ok(done.ok, JSON.stringify(done.error));
    const streamed = got['job.text'].filter((e) => e.jobId === jobId).map((e) => e.delta).join('');
    assert.equal(streamed, (done.result as { text: string }).text);
    assert.ok(streamed.length > 20);
    // export the run's recovered model as GGUF: progress in bytes, the file, the artifact; no silent overwrite
    const out = path.join(dataDir, 'tailored.gguf');
    const ex = await w.invoke('export.start', { source: { kind: 'run', runId, ratio: 0.5, recovered: true }, format: 'gguf', dtype: 'f32', out, force: false });
    const exDone = await until(() => got['job.finished'].find((e) => e.jobId === ex.jobId));
    assert.ok(exDone.ok, JSON.stringify(exDone.error));
    const exProg = got['job.progress'].filter((e) => e.jobId === ex.jobId);
    assert.ok(exProg.length >= 1 && exProg[exProg.length - 1].fraction === 1 && exProg[exProg.length - 1].bytes === fs.statSync(out).size);
    assert.equal((exDone.result as { architecture: string }).architecture, 'llama', 'local pruning of every layer keeps the layers alike');
    assert.ok((await w.invoke('runs.get', { runId })).artifacts.some((a) => a.kind === 'export' && a.path === out));
    const again = await w.invoke('export.start', { source: { kind: 'run', runId, ratio: 0.5, recovered: true }, format: 'gguf', dtype: 'f32', out, force: false });
    const againDone = await until(() => got['job.finished'].find((e) => e.jobId === again.jobId));
    assert.equal(againDone.ok, false);
    assert.equal(againDone.error?.code, 'E_IO');
    await assert.rejects(w.invoke('export.start', { source: { kind: 'run', runId, ratio: 0.5, recovered: true }, format: 'peft', dtype: 'f32', out: out + '.peft', force: false }),
      (e: { field?: string }) => e.field === 'format');
    // delete with files: the run's folder goes, the other run stays
    const removed = await w.invoke('runs.delete', { runId: second.runId, deleteFiles: true });
    assert.ok(removed.removedFiles.length >= 1 && removed.removedFiles.every((f) => !fs.existsSync(f)));
    assert.deepEqual((await w.invoke('runs.list', { status: null, kind: null, query: '', sort: 'newest' })).map((r) => r.id), [runId]);
  } finally {
    await w.shutdown();
  }
});

test('cancel stops a run within a second; resume continues from its last finished stage and finishes', async () => {
  const { w, got } = await open('cancel');
  try {
    const { runId } = await w.invoke('runs.start', { spec: spec('cancel me', { lora: { ...spec('x').lora, epochs: 6, trainShots: 200 } }) });
    await until(() => (got['run.loss'].filter((e) => e.runId === runId).length >= 2 ? true : undefined));
    // a reload mid-run sees the live state: the running stage's progress and the loss so far
    const mid = await w.invoke('runs.get', { runId });
    assert.equal(mid.active, true);
    assert.ok(mid.loss.length >= 2, `loss so far: ${mid.loss.length}`);
    assert.ok(mid.stages.find((s) => s.name === 'lora ratio=0.5' && s.status === 'running')!.progress > 0);
    const baselineDone = mid.stages.find((s) => s.name === 'baseline')!.finishedAt;
    const t0 = Date.now();
    assert.deepEqual(await w.invoke('runs.cancel', { runId }), { cancelled: true });
    const fin = await until(() => got['run.finished'].find((e) => e.runId === runId));
    assert.ok(Date.now() - t0 < 1000, `cancelled in ${Date.now() - t0} ms`);
    assert.equal(fin.status, 'cancelled');
    const v = await w.invoke('runs.get', { runId });
    assert.equal(v.status, 'cancelled');
    assert.equal(v.resumable, true);
    // as a run saved by an earlier Tailor, before lora.targets, prune.calibTask and prune.roundTo existed: still resumable
    const stateFile = path.join(v.outDir!, 'pipeline-state.json');
    const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as { spec: { lora: Record<string, unknown>; prune: Record<string, unknown> } };
    delete state.spec.lora.targets;
    delete state.spec.prune.calibTask;
    delete state.spec.prune.roundTo;
    fs.writeFileSync(stateFile, JSON.stringify(state));
    got['run.progress'].length = 0;
    await w.invoke('runs.resume', { runId });
    const fin2 = await until(() => got['run.finished'].filter((e) => e.runId === runId)[1]);
    assert.equal(fin2.status, 'done', JSON.stringify(fin2.error));
    const skipped = got['run.progress'].filter((e) => e.status === 'skipped').map((e) => e.stage);
    assert.deepEqual(skipped, ['baseline', 'prune ratio=0.5', 'eval-pruned ratio=0.5']);
    const after = await w.invoke('runs.get', { runId });
    assert.equal(after.status, 'done');
    assert.equal(after.stages.find((s) => s.name === 'baseline')!.finishedAt, baselineDone, 'a stage skipped on resume keeps its times');
  } finally {
    await w.shutdown();
  }
});

test('the playground streams exactly the text the engine generates for a model', async () => {
  const { w, got } = await open('playground');
  try {
    const { jobId } = await w.invoke('generate.start', { source: { kind: 'model', path: MODEL }, prompt: 'Lily saw a', maxTokens: 60, temperature: 0, topK: 0, topP: 1, seed: 1, side: 'b' });
    const done = await until(() => got['job.finished'].find((e) => e.jobId === jobId));
    const m = await Model.load(MODEL);
    try {
      const ref = await generateText(m, 'Lily saw a', { maxTokens: 60 });
      assert.equal((done.result as { text: string }).text, ref.text);
      assert.equal(got['job.text'].filter((e) => e.jobId === jobId).map((e) => e.delta).join(''), ref.text);
      assert.ok(got['job.text'].every((e) => e.side === 'b'));
    } finally {
      m.dispose();
    }
  } finally {
    await w.shutdown();
  }
});

test('Playground Stop cancels a long generation within a second, and its job ends once, cancelled', async () => {
  const { w, got, dataDir } = await open('stop');
  try {
    // a random model wide and long enough that 4 000 tokens take many seconds on the CPU
    const big = path.join(dataDir, 'random-wide');
    writeHfFolder(big, randomModel({ dim: 512, nLayers: 8, nHead: 8, nKvHead: 8, ffn: 1408, vocabSize: 512, contextLength: 4096, seed: 7 }));
    fs.copyFileSync(path.join(MODEL, 'tokenizer.model'), path.join(big, 'tokenizer.model'));
    const { jobId } = await w.invoke('generate.start', { source: { kind: 'model', path: big }, prompt: 'Once', maxTokens: 4000, temperature: 1, topK: 0, topP: 1, seed: 3, side: 'a' });
    await until(() => (got['job.text'].some((e) => e.jobId === jobId) ? true : undefined), 60_000);
    const t0 = Date.now();
    assert.deepEqual(await w.invoke('jobs.cancel', { jobId }), { cancelled: true });
    const fin = await until(() => got['job.finished'].find((e) => e.jobId === jobId));
    assert.ok(Date.now() - t0 < 1000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(fin.ok, false);
    assert.equal(fin.error?.code, 'E_CANCELLED');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(got['job.finished'].filter((e) => e.jobId === jobId).length, 1);
    assert.deepEqual(await w.invoke('jobs.cancel', { jobId }), { cancelled: false }, 'a finished job is not cancelled again');
  } finally {
    await w.shutdown();
  }
});

test('IPC: only our own page in the top frame may call; the throttle keeps ~10 events a second and the latest value', async () => {
  const page = trustedPage('/opt/Tailor/resources/app/dist/renderer/index.html');
  assert.equal(senderAllowed(`${page}#/runs`, true, page), true);
  assert.equal(senderAllowed(page, false, page), false);
  assert.equal(senderAllowed('https://example.com/', true, page), false);
  assert.equal(senderAllowed('file:///tmp/evil/index.html', true, page), false);
  const r = await handleInvoke(null as unknown as Workbench, { url: 'https://example.com/', isMainFrame: true }, page, 'app.info', {});
  assert.deepEqual(r, { ok: false, error: { code: 'E_AUTH', message: 'this page may not use the Tailor bridge' } });
  const th = new Throttle(100);
  const seen: number[] = [];
  const t0 = Date.now();
  for (let i = 0; i < 1000; i++) {
    th.push('k', () => seen.push(i));
    await new Promise((res) => setTimeout(res, 1));
  }
  await new Promise((res) => setTimeout(res, 150));
  const secs = (Date.now() - t0) / 1000;
  assert.ok(seen.length <= secs * 10 + 2, `${seen.length} events in ${secs.toFixed(2)} s`);
  assert.equal(seen[seen.length - 1], 999, 'the latest value is delivered');
});

test('starting a run frees the models the Playground keeps loaded, so the run has their memory', async () => {
  const dataDir = path.join(dir, 'free-cache');
  let liveAtBaseline = -1;
  const finished: string[] = [];
  const jobs: string[] = [];
  const before = Model.liveCount();
  const w = await Workbench.open({ dbPath: path.join(dataDir, 'history.sqlite'), dataDir, mode: 'serve', emit: (e, p) => {
    const q = p as { stage?: string; status?: string; runId?: string; jobId?: string };
    if (e === 'run.progress' && q.stage === 'baseline' && q.status === 'start') liveAtBaseline = Model.liveCount() - before;
    if (e === 'run.finished') finished.push(q.runId!);
    if (e === 'job.finished') jobs.push(q.jobId!);
  } });
  try {
    const { jobId } = await w.invoke('generate.start', { source: { kind: 'model', path: MODEL }, prompt: 'Once', maxTokens: 4, temperature: 0, topK: 0, topP: 1, seed: 0, side: 'a' });
    await until(() => (jobs.includes(jobId) ? true : undefined));
    assert.equal(Model.liveCount() - before, 1, 'the Playground keeps its model loaded between generations');
    const { runId } = await w.invoke('runs.start', { spec: { ...spec('free-cache'), eval: { limit: 10, shots: 0, perplexity: [] }, lora: { ...spec('x').lora, trainShots: 8 } } });
    await until(() => (finished.includes(runId) ? true : undefined));
    assert.equal(liveAtBaseline, 1, 'only the baseline of the run is loaded when it starts');
  } finally {
    await w.shutdown();
  }
  assert.equal(Model.liveCount(), before);
});
