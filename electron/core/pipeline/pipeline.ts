// pipeline.ts — Tailored-LLaMA as one command: baseline evaluation → for each ratio: prune → evaluate →
// task-prompted LoRA → evaluate → report with per-task recovery (recovered / baseline). Every stage is a
// row in the run history; each finished stage's result is saved to outDir/pipeline-state.json, so a
// cancelled or crashed run resumes from its last finished stage (and LoRA from its last checkpoint).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { deviceMemory, Model } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import { evaluateItems } from '../eval/eval.js';
import { History } from '../history/db.js';
import { archOf, importanceJson, pruneModel, writePruned } from '../prune/prune.js';
import { calibrationFromExamples, calibrationFromText, taskCalibrationRecords } from '../prune/calibration.js';
import type { RawExample } from '../engine/native.js';
import { ratioForTarget } from '../prune/plan.js';
import { perplexity } from '../text/perplexity.js';
import { exportModel } from '../export/export.js';
import { getTask, loadCustomTask, fewShot, renderExample, templateFor, type Task, type CustomMapping } from '../tasks/index.js';
import type { StageProgress } from '../text/progress.js';
import { atomicWriteFile } from '../train/atomic.js';
import { promptCompletionExamples } from '../train/data.js';
import { applyAdapter, DEFAULT_TRAIN, finetune } from '../train/trainer.js';
import { packageRoot, version } from '../cli/version.js';
import { parseSpec, type PipelineSpec, type TaskRef } from './spec.js';
import { writeReports, type PipelineReport } from './report.js';

export interface PipelineEvent {
  stage: string; status: 'start' | 'progress' | 'done' | 'skipped'; fraction?: number; message?: string;
  /** with 'done', on CUDA: the stage's peak of Tailor's GPU memory in bytes */
  devicePeakBytes?: number;
}

interface State { version: 1; runId: string; spec: PipelineSpec; done: Record<string, unknown> }

type Scores = Record<string, { acc: number; acc_norm: number; n: number }>;
const PPL = 'ppl:';

const taskCache = new Map<string, Task>();
/** A built-in task, or a custom task file with its mapping (loaded once; errors name the file and row). */
export function resolveTask(t: TaskRef, seed: number): Task {
  const key = typeof t === 'string' ? t : `${t.file}#${JSON.stringify(t.mapping)}`;
  let task = taskCache.get(key);
  if (!task) {
    task = typeof t === 'string' ? getTask(t) : loadCustomTask(t.file, t.mapping as unknown as CustomMapping, { name: t.name, seed });
    taskCache.set(key, task);
  }
  return task;
}
const taskName = (t: TaskRef) => (typeof t === 'string' ? t : t.name);

async function evalAll(model: Model, spec: PipelineSpec, signal?: AbortSignal, onFraction?: (f: number, what: string) => void): Promise<Scores> {
  const out: Scores = {};
  const parts = spec.tasks.length + spec.eval.perplexity.length;
  let part = 0;
  const progress = (what: string) => (p: StageProgress) => onFraction?.((part + p.fraction) / parts, what);
  for (const ref of spec.tasks) {
    const task = resolveTask(ref, spec.seed);
    const name = taskName(ref);
    const demos = spec.eval.shots > 0 ? fewShot(task.trainItems(), spec.eval.shots, spec.seed) : undefined;
    const r = await evaluateItems(model, name, task.evalItems({ limit: spec.eval.limit ?? undefined }), { signal, demos, onProgress: progress(name) });
    out[name] = { acc: r.acc, acc_norm: r.acc_norm, n: r.n };
    part++;
  }
  for (const f of spec.eval.perplexity) {
    const r = await perplexity(model, fs.readFileSync(f, 'utf8'), { seqLen: Math.min(128, model.info.contextLength), signal, onProgress: progress(path.basename(f)) });
    out[PPL + path.basename(f)] = { acc: r.ppl, acc_norm: r.mean_nll, n: r.windows };
    part++;
  }
  return out;
}

/**
 * The prune stage's calibration: the spec's tasks (their training items rendered with the LoRA template,
 * packed into windows) with prune.calibTask, else the spec's text or the shipped TinyStories sample.
 */
function pruneCalibration(spec: PipelineSpec, base: Model): { calib: RawExample[]; source: string } {
  const { calibSamples: n, calibSeqLen: len } = spec.prune;
  if (spec.prune.calibTask) {
    const parts = spec.tasks.map((ref) => {
      const task = resolveTask(ref, spec.seed);
      return { items: task.trainItems(), template: templateFor(task, spec.lora.template) };
    });
    const records = taskCalibrationRecords(parts, spec.seed);
    return { calib: calibrationFromExamples(base.requireTokenizer(), records, n, len, spec.seed, base.info.bosId), source: `task:${spec.tasks.map(taskName).join(',')}` };
  }
  const file = spec.prune.calibText ?? path.join(packageRoot(), 'resources', 'data', 'tinystories-validation-head.txt');
  const text = fs.readFileSync(file, 'utf8');
  return { calib: calibrationFromText(base.requireTokenizer().encode(text.slice(0, 400_000)), n, len, spec.seed, base.info.bosId), source: `text:${file}` };
}

export interface PipelineOptions {
  db: string | null;
  resume?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: PipelineEvent) => void;
  /** the history id of a new run (default: generated) and who started it */
  runId?: string;
  source?: 'cli' | 'app' | 'serve';
}

export async function runPipeline(spec: PipelineSpec, o: PipelineOptions): Promise<PipelineReport> {
  const t0 = performance.now();
  fs.mkdirSync(spec.outDir, { recursive: true });
  const stateFile = path.join(spec.outDir, 'pipeline-state.json');
  let state: State | null = null;
  if (fs.existsSync(stateFile)) {
    if (!o.resume) throw new EngineError('E_IO', `${spec.outDir} holds a run already (resume it with --resume, or choose another outDir)`);
    state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as State;
    // a state written by an older Tailor lacks fields added since (their defaults keep its meaning)
    state.spec = parseSpec(state.spec);
    if (JSON.stringify(state.spec) !== JSON.stringify(spec)) throw new EngineError('E_ARG', `${stateFile} was started with another spec; resume with the same spec`);
  } else if (o.resume) {
    throw new EngineError('E_IO', `nothing to resume in ${spec.outDir}`);
  }
  for (const t of spec.tasks) resolveTask(t, spec.seed); // unknown tasks and malformed task files fail before any work
  const history = o.db ? History.open(o.db) : null;
  let runId: string;
  if (state) {
    runId = state.runId;
    history?.claimRun(runId);
  } else {
    runId = history?.createRun({ id: o.runId, name: spec.name, kind: 'pipeline', source: o.source ?? 'cli', spec, versions: { tailor: version(), node: process.version } }) ?? o.runId ?? `local-${Date.now()}`;
    state = { version: 1, runId, spec, done: {} };
    atomicWriteFile(stateFile, JSON.stringify(state, null, 1));
  }
  const st = state;
  let ordinal = 0;
  const evalProgress = (key: string) => (fraction: number, what: string) => o.onEvent?.({ stage: key, status: 'progress', fraction, message: `evaluating ${what}` });
  const stage = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const ord = ordinal++;
    if (key in st.done) {
      o.onEvent?.({ stage: key, status: 'skipped' });
      history?.setStage(runId, ord, key, 'done');
      return st.done[key] as T;
    }
    o.onEvent?.({ stage: key, status: 'start' });
    history?.setStage(runId, ord, key, 'running');
    const s0 = performance.now();
    deviceMemory({ resetPeak: true });  // the stage's own GPU peak (null, and nothing to reset, on the CPU)
    try {
      const r = await fn();
      st.done[key] = r;
      st.done[`${key}#seconds`] = (performance.now() - s0) / 1000;
      const dm = deviceMemory();
      if (dm) st.done[`${key}#devicePeak`] = dm.peak;
      atomicWriteFile(stateFile, JSON.stringify(st, null, 1));
      history?.setStage(runId, ord, key, 'done', 1, { seconds: (performance.now() - s0) / 1000 });
      o.onEvent?.({ stage: key, status: 'done', ...(dm ? { devicePeakBytes: dm.peak } : {}) });
      return r;
    } catch (e) {
      history?.setStage(runId, ord, key, (e as { code?: string }).code === 'E_CANCELLED' ? 'cancelled' : 'failed');
      throw e;
    }
  };
  try {
    const load = { backend: spec.compute.backend, weights: spec.compute.weights, signal: o.signal };  // a 7B load is cancellable too
    // The baseline is loaded for its evaluation and for each ratio's pruning only: it is disposed before the
    // pruned model is loaded, so the two are never held together (on a 24 GB GPU, LLaMA-7B's bf16 weights
    // beside the 5B model's and its LoRA training would not fit; on the host, 25 GiB beside 18.6 GiB).
    const base = await Model.load(spec.model, load);  // its info and tokenizer stay usable once it is released
    let baseModel: Model | null = base;
    const loadedBase = async (): Promise<Model> => (baseModel ??= await Model.load(spec.model, load));
    const releaseBase = () => {
      baseModel?.dispose();
      baseModel = null;
    };
    st.done['#compute'] = base.info.backend;
    const baseParams = base.info.nParams;
    let baseline: Scores;
    try {
      baseline = await stage('baseline', async () => evalAll(await loadedBase(), spec, o.signal, evalProgress('baseline')));
      for (const [t, v] of Object.entries(baseline)) history?.setResult(runId, { task: t, setting: 'ratio=0', phase: 'baseline', metric: t.startsWith(PPL) ? 'ppl' : 'acc', value: v.acc });
      const layersAll: [number, number] = spec.prune.layers ?? [0, base.info.nLayers - 1];
      const ratios = [...spec.prune.ratios, ...spec.prune.targets.map((t) => ratioForTarget(archOf(base), t, { attnLayers: layersAll, mlpLayers: layersAll, roundTo: spec.prune.roundTo }))];
      st.done['#ratios'] = ratios;
      for (const ratio of ratios) {
        const tag = `ratio=${ratio}`;
        const prunedDir = path.join(spec.outDir, `pruned-${ratio}`);
        const pruneInfo = await stage(`prune ${tag}`, async () => {
          const { calib, source: calibSource } = pruneCalibration(spec, base);
          const layers = spec.prune.layers ?? [0, base.info.nLayers - 1];
          const r = await pruneModel(await loadedBase(), { ratio, method: spec.prune.method, calib, calibSource, seed: spec.seed, global: spec.prune.global, signal: o.signal, scope: { attnLayers: layers, mlpLayers: layers, roundTo: spec.prune.roundTo } });
          writePruned(prunedDir, r, spec.model, { force: true });
          history?.addArtifact(runId, 'model', prunedDir);
          return { params: r.plan.paramsAfter, removedShare: r.plan.removedShare, importance: importanceJson(r.scores) };
        });
        releaseBase();
        const pruned = await Model.load(prunedDir, load);
        try {
          const prunedScores = await stage(`eval-pruned ${tag}`, () => evalAll(pruned, spec, o.signal, evalProgress(`eval-pruned ${tag}`)));
          for (const [t, v] of Object.entries(prunedScores)) history?.setResult(runId, { task: t, setting: tag, phase: 'pruned', metric: t.startsWith(PPL) ? 'ppl' : 'acc', value: v.acc });
          const lora = await stage(`lora ${tag}`, async () => {
            const tok = pruned.requireTokenizer();
            const recs = spec.tasks.flatMap((ref) => {
              const task = resolveTask(ref, spec.seed);
              const tpl = templateFor(task, spec.lora.template);
              return fewShot(task.trainItems(), spec.lora.trainShots, spec.seed).map((it) => renderExample(tpl, it));
            });
            const ex = promptCompletionExamples(tok, recs, { eos: false, maxLen: Math.min(spec.lora.maxLen, pruned.info.contextLength) });
            const loraDir = path.join(spec.outDir, `lora-${ratio}`);
            const r = await finetune(pruned, {
              settings: { ...DEFAULT_TRAIN, lora: { ...DEFAULT_TRAIN.lora, rank: spec.lora.rank, alpha: spec.lora.alpha, targets: [...spec.lora.targets] }, optim: { ...DEFAULT_TRAIN.optim, lr: spec.lora.lr },
                epochs: spec.lora.epochs, batch: spec.lora.batch, microBatch: spec.lora.batch, maxLen: Math.min(spec.lora.maxLen, pruned.info.contextLength), seed: spec.seed },
              examples: ex, outDir: loraDir, checkpointEvery: 5, force: true, resume: fs.existsSync(path.join(loraDir, 'checkpoint', 'trainer_state.json')), signal: o.signal,
              onProgress: (p) => o.onEvent?.({ stage: `lora ${tag}`, status: 'progress', fraction: p.fraction, message: `step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)}` }),
            });
            history?.addMetrics(runId, `lora ${tag}`, 'loss', r.losses.map((l) => ({ step: l.step, value: l.loss })));
            history?.addArtifact(runId, 'adapter', r.adapterDir);
            return { adapterDir: r.adapterDir, losses: r.losses.map((l) => l.loss), seconds: r.seconds, examples: ex.length };
          });
          pruned.dispose();  // the next stages load it again with the adapter merged: never two copies at once
          const recovered = await stage(`eval-recovered ${tag}`, async () => {
            const m = await Model.load(prunedDir, load);
            try {
              applyAdapter(m, lora.adapterDir);
              return await evalAll(m, spec, o.signal, evalProgress(`eval-recovered ${tag}`));
            } finally {
              m.dispose();
            }
          });
          for (const [t, v] of Object.entries(recovered)) history?.setResult(runId, { task: t, setting: tag, phase: 'recovered', metric: t.startsWith(PPL) ? 'ppl' : 'acc', value: v.acc });
          if (spec.export) {
            const ex = spec.export;
            const stageName = `export ${tag}`;
            await stage(stageName, async () => {
              const m = await Model.load(prunedDir, load);
              try {
                applyAdapter(m, lora.adapterDir);
                const out = path.join(spec.outDir, `tailored-${ratio}${ex.format === 'gguf' ? '.gguf' : ''}`);
                // the model card gets this ratio's evaluation (the report itself is written at the end)
                const tasks = spec.tasks.map(taskName);
                const evaluation = tasks.map((t) => ({ task: t, baseline: baseline[t].acc, pruned: prunedScores[t].acc, recovered: recovered[t].acc,
                  recovery: baseline[t].acc > 0 ? recovered[t].acc / baseline[t].acc : 0, n: baseline[t].n }));
                const perplexitySets = Object.keys(baseline).filter((k) => k.startsWith(PPL))
                  .map((k) => ({ set: k.slice(PPL.length), baseline: baseline[k].acc, pruned: prunedScores[k].acc, recovered: recovered[k].acc }));
                await exportModel(m, { format: ex.format, dtype: ex.dtype, out, force: true, name: `${spec.name} (ratio ${ratio})`,
                  description: `Tailored by Tailor: ${spec.prune.method} pruning at ratio ${ratio}, task-prompted LoRA (rank ${spec.lora.rank}) on ${tasks.join(', ')}`,
                  card: { baseModel: spec.model, runId, evaluation, perplexity: perplexitySets, mergedAdapter: lora.adapterDir },
                  signal: o.signal, onProgress: (p) => o.onEvent?.({ stage: stageName, status: 'progress', fraction: p.fraction, message: `${p.bytesWritten}/${p.totalBytes} bytes` }) });
                history?.addArtifact(runId, 'export', out);
                return { out };
              } finally {
                m.dispose();
              }
            });
          }
          void pruneInfo;
        } finally {
          pruned.dispose();
        }
      }
    } finally {
      releaseBase();
    }
    const report = buildReport(spec, st, baseParams, (performance.now() - t0) / 1000);
    const files = writeReports(spec.outDir, report);
    for (const f of files) history?.addArtifact(runId, 'report', f);
    for (const r of report.rows) history?.setResult(runId, { task: r.task, setting: `ratio=${r.ratio}`, phase: 'recovery', metric: 'acc', value: r.recovery });
    history?.finishRun(runId, 'done');
    return report;
  } catch (e) {
    history?.finishRun(runId, (e as { code?: string }).code === 'E_CANCELLED' ? 'cancelled' : 'failed', (e as Error).message);
    throw e;
  } finally {
    history?.close();
  }
}

function buildReport(spec: PipelineSpec, st: State, baseParams: number, seconds: number): PipelineReport {
  const baseline = st.done.baseline as Scores;
  const rows: PipelineReport['rows'] = [];
  const ratios: PipelineReport['ratios'] = [];
  const ppl: PipelineReport['perplexity'] = [];
  for (const ratio of st.done['#ratios'] as number[]) {
    const tag = `ratio=${ratio}`;
    const pruned = st.done[`eval-pruned ${tag}`] as Scores, rec = st.done[`eval-recovered ${tag}`] as Scores;
    const p = st.done[`prune ${tag}`] as { params: number; removedShare: number; importance: PipelineReport['ratios'][number]['importance'] };
    for (const k of Object.keys(baseline).filter((k) => k.startsWith(PPL)))
      ppl.push({ set: k.slice(PPL.length), ratio, baseline: baseline[k].acc, pruned: pruned[k].acc, recovered: rec[k].acc });
    const l = st.done[`lora ${tag}`] as { losses: number[]; seconds: number };
    for (const t of spec.tasks.map(taskName))
      rows.push({ task: t, ratio, baseline: baseline[t].acc, pruned: pruned[t].acc, recovered: rec[t].acc, recovery: baseline[t].acc > 0 ? rec[t].acc / baseline[t].acc : 0, n: baseline[t].n });
    const rs = rows.filter((r) => r.ratio === ratio);
    ratios.push({ ratio, paramsAfter: p.params, removedShare: p.removedShare, meanRecovery: rs.reduce((a, r) => a + r.recovery, 0) / rs.length, loraSeconds: l.seconds, loss: l.losses,
      importance: p.importance, exported: (st.done[`export ${tag}`] as { out: string } | undefined)?.out ?? null });
  }
  const per = (suffix: string) => Object.fromEntries(Object.entries(st.done).filter(([k]) => k.endsWith(suffix)).map(([k, v]) => [k.slice(0, -suffix.length), v as number]));
  const peaks = per('#devicePeak');
  return { name: spec.name, runId: st.runId, model: spec.model, paramsBefore: baseParams, tasks: spec.tasks.map(taskName), method: spec.prune.method, rows, ratios, perplexity: ppl,
    stageSeconds: per('#seconds'), ...(Object.keys(peaks).length ? { stageDevicePeakBytes: peaks } : {}), seconds, spec,
    compute: typeof st.done['#compute'] === 'string' ? (st.done['#compute'] as string) : undefined };
}
