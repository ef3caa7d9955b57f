// runs.ts — tailoring runs started from the workbench: a spec from the wizard is checked completely
// (fields, model, tasks, ratios) before anything is written, then the pipeline runs in this process on
// the engine's threads while its stages stream to the front end as events (progress with ETA, loss,
// log lines, the finish). One pipeline at a time; cancel is honoured within a second; a cancelled,
// failed or crashed run resumes from its last finished stage. Also the history views: list, detail,
// compare, delete.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CompareView, ReportView, RunStatus, RunSummary, RunView, SpecInput } from '../api/contract.js';
import { History, HistoryError, type RunRow } from '../history/db.js';
import { resolveTask, runPipeline, type PipelineEvent } from '../pipeline/pipeline.js';
import { gpuPeakNote } from '../pipeline/report.js';
import { parseSpec, type PipelineSpec } from '../pipeline/spec.js';
import { planLocal, ratioForTarget } from '../prune/plan.js';
import { archOfInfo, type Library, type ModelCache } from './library.js';
import { ServiceError, Throttle, toWireError, type Emit } from './events.js';

interface Active {
  runId: string; ac: AbortController; done: Promise<void>; stageStart: Map<string, number>;
  /** what the history learns only when a stage ends: the running stage's progress and its loss so far */
  progress: Map<string, number>; loss: Array<{ stage: string; step: number; value: number }>;
}

const LOG_LINES = 500;

export class RunManager {
  private active: Active | null = null;
  private readonly logs = new Map<string, string[]>();
  private readonly throttle = new Throttle(100);

  constructor(private readonly o: { history: History; dbPath: string; dataDir: string; source: 'app' | 'serve'; emit: Emit; library: Library; cache: ModelCache }) {}

  /** The spec parsed and checked against the model and tasks, without running anything. */
  async validate(input: SpecInput): Promise<{ spec: PipelineSpec; ratios: number[] }> {
    const { outDir: given, ...rest } = input;
    const outDir = given ?? path.join(this.o.dataDir, 'runs', `${slug(input.name)}-${stamp()}`);
    const spec = parseSpec({ ...rest, outDir }, this.o.dataDir);
    if (!fs.existsSync(spec.model)) throw new ServiceError('E_IO', `the model ${spec.model} does not exist`, 'spec.model');
    const info = await this.o.library.info(spec.model);
    const arch = archOfInfo(info);
    for (const [i, t] of spec.tasks.entries()) {
      try {
        const task = resolveTask(t, spec.seed);
        if (task.evalItems({ limit: 1 }).length === 0) throw new ServiceError('E_TASK_FORMAT', `task ${task.info.name} has no evaluation items`);
      } catch (e) {
        const w = toWireError(e);
        throw new ServiceError(w.code, w.message, `spec.tasks[${i}]`);
      }
    }
    for (const f of [...spec.eval.perplexity, ...(spec.prune.calibText ? [spec.prune.calibText] : [])])
      if (!fs.existsSync(f)) throw new ServiceError('E_IO', `${f} does not exist`, 'spec.eval.perplexity');
    const layers = spec.prune.layers ?? [0, info.nLayers - 1];
    if (layers[1] >= info.nLayers) throw new ServiceError('E_ARG', `the layer range ${layers[0]}-${layers[1]} is outside the model's layers 0-${info.nLayers - 1}`, 'spec.prune.layers');
    const scope = { attnLayers: layers, mlpLayers: layers, roundTo: spec.prune.roundTo };
    const ratios = [...spec.prune.ratios];
    for (const [i, t] of spec.prune.targets.entries()) {
      if (t >= info.nParams) throw new ServiceError('E_ARG', `a target of ${t.toLocaleString('en-US')} parameters is not smaller than the model (${info.nParams.toLocaleString('en-US')})`, `spec.prune.targets[${i}]`);
      try {
        ratios.push(ratioForTarget(arch, t, scope));
      } catch (e) {
        throw new ServiceError('E_ARG', (e as Error).message, `spec.prune.targets[${i}]`);
      }
    }
    for (const r of ratios) planLocal(arch, r, scope);
    if (new Set(ratios).size !== ratios.length) throw new ServiceError('E_ARG', 'the same pruning ratio is listed twice', 'spec.prune.ratios');
    if (fs.existsSync(path.join(spec.outDir, 'pipeline-state.json')))
      throw new ServiceError('E_IO', `${spec.outDir} holds another run already; choose another output folder`, 'spec.outDir');
    return { spec, ratios };
  }

  async start(input: SpecInput): Promise<string> {
    this.ensureIdle();
    const { spec } = await this.validate(input);
    this.ensureIdle();
    const runId = `${stamp()}-${crypto.randomBytes(3).toString('hex')}`;
    this.launch(runId, spec, false);
    return runId;
  }

  async resume(runId: string): Promise<string> {
    this.ensureIdle();
    const run = this.o.history.getRun(runId);
    const spec = this.stateSpec(run);
    if (!spec) throw new ServiceError('E_ARG', `run ${runId} cannot be resumed (${run.status === 'done' ? 'it finished' : 'nothing was saved to resume from'})`, 'runId');
    this.launch(runId, spec, true);
    return runId;
  }

  cancel(runId: string): boolean {
    if (this.active?.runId !== runId) return false;
    this.active.ac.abort();
    return true;
  }

  isActive(runId: string): boolean {
    return this.active?.runId === runId;
  }

  /** Waits for the active run (used on shutdown and by tests). */
  async idle(): Promise<void> {
    await this.active?.done;
  }

  private ensureIdle(): void {
    if (this.active) throw new ServiceError('E_BUSY', `run ${this.active.runId} is still running; wait for it or cancel it first`);
  }

  private stateSpec(run: RunRow): PipelineSpec | null {
    if (run.kind !== 'pipeline' || run.status === 'done' || run.status === 'running') return null;
    const spec = run.spec as PipelineSpec;
    const f = path.join(spec.outDir ?? '', 'pipeline-state.json');
    if (!spec.outDir || !fs.existsSync(f)) return null;
    try {
      return parseSpec((JSON.parse(fs.readFileSync(f, 'utf8')) as { spec: unknown }).spec);
    } catch {
      return null;
    }
  }

  private log(runId: string, line: string): void {
    const l = this.logs.get(runId) ?? [];
    l.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    if (l.length > LOG_LINES) l.splice(0, l.length - LOG_LINES);
    this.logs.set(runId, l);
    this.o.emit('run.log', { runId, time: Date.now(), line });
  }

  private launch(runId: string, spec: PipelineSpec, resume: boolean): void {
    const ac = new AbortController();
    const stageStart = new Map<string, number>();
    const progress = new Map<string, number>();
    const liveLoss: Active['loss'] = [];
    const { emit } = this.o;
    let lastLossStep = -1;
    const onEvent = (e: PipelineEvent) => {
      const key = `${runId}:${e.stage}`;
      if (e.status === 'progress') {
        const t0 = stageStart.get(e.stage) ?? Date.now();
        const f = Math.max(0, Math.min(1, e.fraction ?? 0));
        const elapsed = (Date.now() - t0) / 1000;
        const etaSec = f > 0.01 ? (elapsed * (1 - f)) / f : null;
        const m = /step (\d+)\/\d+ loss ([\d.eE+-]+)/.exec(e.message ?? '');
        progress.set(e.stage, f);
        if (m && Number(m[1]) !== lastLossStep) {
          lastLossStep = Number(m[1]);
          liveLoss.push({ stage: e.stage, step: lastLossStep, value: Number(m[2]) });
          emit('run.loss', { runId, stage: e.stage, step: lastLossStep, loss: Number(m[2]) });
        }
        this.throttle.push(key, () => emit('run.progress', { runId, stage: e.stage, status: 'progress', fraction: f, etaSec, message: e.message ?? null }));
        return;
      }
      this.throttle.flush(key);
      if (e.status === 'start') stageStart.set(e.stage, Date.now());
      const secs = e.status === 'done' ? ` in ${((Date.now() - (stageStart.get(e.stage) ?? Date.now())) / 1000).toFixed(1)} s${gpuPeakNote(e.devicePeakBytes)}` : '';
      this.log(runId, `${e.stage}: ${e.status === 'start' ? 'started' : e.status === 'skipped' ? 'already done (resumed)' : `done${secs}`}`);
      emit('run.progress', { runId, stage: e.stage, status: e.status, fraction: e.status === 'start' ? 0 : 1, etaSec: e.status === 'start' ? null : 0, message: null });
    };
    this.o.cache.dropIdle();  // the Playground's idle models give their memory to the run
    this.log(runId, resume ? `resuming "${spec.name}" from its last finished stage` : `starting "${spec.name}" → ${spec.outDir}`);
    const done = runPipeline(spec, { db: this.o.dbPath, resume, signal: ac.signal, onEvent, runId: resume ? undefined : runId, source: this.o.source })
      .then((r) => {
        this.log(runId, `finished in ${r.seconds.toFixed(1)} s; mean recovery ${r.ratios.map((x) => `${x.ratio}: ${(x.meanRecovery * 100).toFixed(2)}%`).join(', ')}`);
        return { status: 'done' as RunStatus, error: null };
      }, (e: unknown) => {
        const w = toWireError(e);
        this.log(runId, w.code === 'E_CANCELLED' ? 'cancelled' : `failed: ${w.message}`);
        return { status: (w.code === 'E_CANCELLED' ? 'cancelled' : 'failed') as RunStatus, error: w };
      })
      .then((r) => {
        this.throttle.flushAll(`${runId}:`);
        this.active = null;
        this.o.cache.dropRun(runId);
        emit('run.finished', { runId, status: r.status, error: r.error });
      });
    this.active = { runId, ac, done, stageStart, progress, loss: liveLoss };
  }

  // --- the history's views ---------------------------------------------------------------------------

  private summary(r: RunRow): RunSummary {
    const s = (r.spec ?? {}) as Partial<PipelineSpec>;
    const rec = r.kind === 'pipeline' && r.status === 'done'
      ? (this.o.history.db.prepare(`SELECT AVG(value) AS v FROM results WHERE run_id = ? AND phase = 'recovery'`).get(r.id) as { v: number | null }).v : null;
    const model = typeof s.model === 'string' ? s.model : typeof (s as { modelPath?: unknown }).modelPath === 'string' ? String((s as { modelPath: string }).modelPath) : null;
    return {
      id: r.id, name: r.name, kind: r.kind, status: r.status, source: r.source, error: r.error, createdAt: r.created_at, updatedAt: r.updated_at,
      model, method: s.prune?.method ?? null, ratios: [...(s.prune?.ratios ?? [])], tasks: (s.tasks ?? []).map((t) => (typeof t === 'string' ? t : t.name)),
      meanRecovery: rec ?? null,
    };
  }

  list(q: { status: RunStatus | null; kind: string | null; query: string; sort: 'newest' | 'oldest' | 'name' | 'recovery' }): RunSummary[] {
    const needle = q.query.trim().toLowerCase();
    const rows = this.o.history.listRuns({ status: q.status ?? undefined, kind: q.kind ?? undefined }).map((r) => this.summary(r))
      .filter((r) => !needle || [r.id, r.name, r.model ?? '', r.method ?? '', ...r.tasks].some((x) => x.toLowerCase().includes(needle)));
    const by: Record<typeof q.sort, (a: RunSummary, b: RunSummary) => number> = {
      newest: (a, b) => b.createdAt - a.createdAt, oldest: (a, b) => a.createdAt - b.createdAt, name: (a, b) => a.name.localeCompare(b.name),
      recovery: (a, b) => (b.meanRecovery ?? -1) - (a.meanRecovery ?? -1),
    };
    return rows.sort(by[q.sort]);
  }

  get(runId: string): RunView {
    const d = this.o.history.getRun(runId);
    const spec = d.spec as Partial<PipelineSpec>;
    const outDir = d.kind === 'pipeline' && typeof spec.outDir === 'string' ? spec.outDir : null;
    let report: ReportView | null = null;
    if (outDir && fs.existsSync(path.join(outDir, 'report.json'))) {
      try {
        const { spec: _s, ...r } = JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as ReportView & { spec: unknown };
        void _s;
        report = r;
      } catch { /* a damaged report: the results table still has the numbers */ }
    }
    const active = this.isActive(runId);
    const live = active ? this.active : null;
    const stored = this.o.history.metrics(runId, 'loss');
    const stages = new Set(stored.map((p) => p.stage));
    return {
      ...this.summary(d), spec: d.spec, machine: d.machine,
      stages: d.stages.map((s) => ({ ordinal: s.ordinal, name: s.name, status: s.status,
        progress: s.status === 'running' && live ? (live.progress.get(s.name) ?? s.progress) : s.progress, startedAt: s.started_at, finishedAt: s.finished_at })),
      results: d.results, artifacts: d.artifacts.map((a) => ({ kind: a.kind, path: a.path, sha256: a.sha256, bytes: a.bytes, createdAt: a.created_at })),
      loss: [...stored, ...(live?.loss.filter((p) => !stages.has(p.stage)) ?? [])], report, active, resumable: !active && this.stateSpec(d) !== null, outDir, log: this.logs.get(runId) ?? [],
    };
  }

  delete(runId: string, deleteFiles: boolean): string[] {
    if (this.isActive(runId)) throw new ServiceError('E_BUSY', `run ${runId} is running; cancel it before deleting it`, 'runId');
    const d = this.o.history.getRun(runId);
    this.o.cache.dropRun(runId);
    const artifacts = this.o.history.deleteRun(runId);
    this.logs.delete(runId);
    if (!deleteFiles) return [];
    const removed: string[] = [];
    const outDir = d.kind === 'pipeline' ? (d.spec as PipelineSpec).outDir : null;
    // a pipeline's folder is removed whole only when it is clearly the run's own (it holds the run's state)
    if (outDir && fs.existsSync(path.join(outDir, 'pipeline-state.json'))) {
      fs.rmSync(outDir, { recursive: true, force: true });
      removed.push(outDir);
    }
    for (const a of artifacts)
      if (fs.existsSync(a.path) && !(outDir && a.path.startsWith(outDir + path.sep))) {
        fs.rmSync(a.path, { recursive: true, force: true });
        removed.push(a.path);
      }
    return removed;
  }

  compare(ids: string[]): CompareView {
    const runs = ids.map((id) => this.o.history.getRun(id));
    const flat = runs.map((r) => flatten(r.spec));
    const keys = [...new Set(flat.flatMap((f) => Object.keys(f)))].sort();
    const settingsDiff = keys.map((key) => ({ key, values: flat.map((f) => (key in f ? f[key] : '—')) }))
      .filter((d) => new Set(d.values).size > 1 && d.key !== 'outDir');
    const rowKey = (r: { task: string; setting: string; phase: string; metric: string }) => `${r.task}\u0000${r.setting}\u0000${r.phase}\u0000${r.metric}`;
    const order = [...new Set(runs.flatMap((r) => r.results.map(rowKey)))];
    const metrics = order.map((k) => {
      const [task, setting, phase, metric] = k.split('\u0000');
      return { task, setting, phase, metric, values: runs.map((r) => r.results.find((x) => rowKey(x) === k)?.value ?? null) };
    });
    const loss = runs.flatMap((r) => {
      const pts = this.o.history.metrics(r.id, 'loss');
      return [...new Set(pts.map((p) => p.stage))].map((stage) => ({ runId: r.id, stage, points: pts.filter((p) => p.stage === stage).map((p) => ({ step: p.step, value: p.value })) }));
    });
    return { runs: runs.map((r) => this.summary(r)), settingsDiff, metrics, loss };
  }
}

function flatten(v: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) {
    out[prefix] = JSON.stringify(v);
  }
  return out;
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'run';
const stamp = () => new Date().toISOString().replace(/[-:T]/g, '').replace(/\..*/, '').slice(0, 14);

export { HistoryError };
