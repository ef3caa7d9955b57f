// runs.svelte.ts — runs: the history list (filters, search, sort, selection, delete), one run followed
// live (RunState: stages, loss, log from the pushed events; cancel, resume), and the comparison of runs.
import type { CompareView, RunStatus, RunSummary, RunView, StageStatus, WireError } from '../../../electron/core/api/contract';
import { api, toWire } from '../lib/api';
import { debounce } from '../lib/format';
import { Live } from '../lib/live.svelte';
import { app } from './app.svelte';

export type SortKey = 'newest' | 'oldest' | 'name' | 'recovery';
export const RUN_STATUSES: readonly RunStatus[] = ['running', 'done', 'failed', 'cancelled', 'interrupted'];

export class RunsState {
  status = $state<RunStatus | null>(null);
  kind = $state<string | null>(null);
  query = $state('');
  sort = $state<SortKey>('newest');
  list = new Live<RunSummary[]>();
  selected = $state<string[]>([]);
  /** every kind seen so far (for the filter) */
  kinds = $state<string[]>(['pipeline']);
  deleting = $state<string | null>(null);

  private loadLater = debounce(() => void this.load(), 250);

  async load() {
    const runs = await this.list.run(() => api.invoke('runs.list', { status: this.status, kind: this.kind, query: this.query.trim(), sort: this.sort }), true);
    if (runs) {
      const ks = new Set(this.kinds);
      for (const r of runs) ks.add(r.kind);
      if (ks.size !== this.kinds.length) this.kinds = [...ks].sort();
      const ids = new Set(runs.map((r) => r.id));
      this.selected = this.selected.filter((id) => ids.has(id));
    }
  }

  /** for typing in the search box */
  loadSoon() {
    this.loadLater();
  }

  isSelected(id: string) {
    return this.selected.includes(id);
  }

  toggle(id: string, on: boolean) {
    this.selected = on ? [...this.selected.filter((x) => x !== id), id] : this.selected.filter((x) => x !== id);
  }

  async remove(runId: string, deleteFiles: boolean): Promise<boolean> {
    this.deleting = runId;
    try {
      const r = await api.invoke('runs.delete', { runId, deleteFiles });
      app.toast(deleteFiles ? `Run deleted with ${r.removedFiles.length} file(s)` : 'Run deleted', 'success');
      this.selected = this.selected.filter((x) => x !== runId);
      await this.load();
      return true;
    } catch (e) {
      app.fail(e, 'Delete failed');
      return false;
    } finally {
      this.deleting = null;
    }
  }
}

export const runs = new RunsState();

export interface StageLive {
  name: string;
  status: StageStatus | 'skipped';
  fraction: number;
  etaSec: number | null;
  message: string | null;
  startedAt: number | null;
  finishedAt: number | null;
}

const MAX_LOG = 2000;

/** one run as the Run screen follows it */
export class RunState {
  readonly runId: string;
  view = $state<RunView | null>(null);
  error = $state<WireError | null>(null);
  loading = $state(false);
  stages = $state<StageLive[]>([]);
  loss = $state<Array<{ stage: string; step: number; value: number }>>([]);
  log = $state<string[]>([]);
  finishedError = $state<WireError | null>(null);
  busy = $state<'cancel' | 'resume' | null>(null);
  actionError = $state<WireError | null>(null);

  status = $derived(this.view?.status ?? null);
  active = $derived(this.view?.active ?? false);
  canResume = $derived(!!this.view && this.view.resumable && !this.view.active);

  constructor(runId: string) {
    this.runId = runId;
  }

  /** subscribes to the run's events; returns the unsubscribe */
  attach(): () => void {
    const offs = [
      api.on('run.progress', (p) => {
        if (p.runId !== this.runId) return;
        let st = this.stages.find((s) => s.name === p.stage);
        if (!st) {
          this.stages.push({ name: p.stage, status: 'pending', fraction: 0, etaSec: null, message: null, startedAt: null, finishedAt: null });
          st = this.stages[this.stages.length - 1];
        }
        st.fraction = p.status === 'done' || p.status === 'skipped' ? 1 : p.fraction;
        st.etaSec = p.status === 'progress' || p.status === 'start' ? p.etaSec : null;
        st.message = p.message;
        if (p.status === 'start') { st.status = 'running'; st.startedAt = Date.now(); st.finishedAt = null; }
        else if (p.status === 'progress') st.status = 'running';
        else if (p.status === 'skipped') st.status = st.status === 'done' ? 'done' : 'skipped';
        else { st.status = 'done'; if (st.startedAt !== null) st.finishedAt = Date.now(); }
        if (this.view && this.view.status !== 'running') { this.view.status = 'running'; this.view.active = true; }
      }),
      api.on('run.loss', (p) => {
        if (p.runId !== this.runId) return;
        // a resumed stage restarts from its checkpoint: its later points are replaced
        if (this.loss.some((l) => l.stage === p.stage && l.step >= p.step)) this.loss = this.loss.filter((l) => l.stage !== p.stage || l.step < p.step);
        this.loss.push({ stage: p.stage, step: p.step, value: p.loss });
      }),
      api.on('run.log', (p) => {
        if (p.runId !== this.runId) return;
        this.log.push(p.line);
        if (this.log.length > MAX_LOG) this.log.splice(0, this.log.length - MAX_LOG);
      }),
      api.on('run.finished', (p) => {
        if (p.runId !== this.runId) return;
        this.finishedError = p.error;
        if (this.view) { this.view.status = p.status; this.view.active = false; }
        void this.load();
      }),
    ];
    return () => offs.forEach((f) => f());
  }

  async load() {
    this.loading = true;
    try {
      const v = await api.invoke('runs.get', { runId: this.runId });
      this.view = v;
      this.error = null;
      const live = new Map(this.stages.map((s) => [s.name, s]));
      this.stages = v.stages.map((s) => {
        const l = live.get(s.name);
        // while it runs, the events know more than the record (progress, ETA, message)
        if (v.active && s.status === 'running' && l?.status === 'running') return { ...l, startedAt: s.startedAt };
        return { name: s.name, status: s.status, fraction: s.status === 'done' ? 1 : s.progress, etaSec: null, message: null, startedAt: s.startedAt, finishedAt: s.finishedAt };
      });
      // the recorded curve, plus points that arrived live and are not recorded yet
      const merged = new Map<string, { stage: string; step: number; value: number }>();
      for (const l of v.loss) merged.set(`${l.stage}\u0000${l.step}`, { ...l });
      if (v.active) for (const l of this.loss) if (!merged.has(`${l.stage}\u0000${l.step}`)) merged.set(`${l.stage}\u0000${l.step}`, l);
      this.loss = [...merged.values()];
      if (v.log.length >= this.log.length || !v.active) this.log = [...v.log];
    } catch (e) {
      this.error = toWire(e);
    } finally {
      this.loading = false;
    }
  }

  async cancel() {
    this.busy = 'cancel';
    this.actionError = null;
    try {
      const r = await api.invoke('runs.cancel', { runId: this.runId });
      if (!r.cancelled) app.toast('The run was not running', 'info');
    } catch (e) {
      this.actionError = toWire(e);
    } finally {
      this.busy = null;
    }
  }

  /** continues the run; returns the id it continues under */
  async resume(): Promise<string | null> {
    this.busy = 'resume';
    this.actionError = null;
    this.finishedError = null;
    try {
      const r = await api.invoke('runs.resume', { runId: this.runId });
      if (r.runId === this.runId) await this.load();
      return r.runId;
    } catch (e) {
      this.actionError = toWire(e);
      return null;
    } finally {
      this.busy = null;
    }
  }
}

/** a comparison of several runs */
export class CompareState {
  readonly runIds: string[];
  view = new Live<CompareView>();
  constructor(runIds: string[]) {
    this.runIds = runIds;
  }
  load() {
    return this.view.run(() => api.invoke('runs.compare', { runIds: this.runIds }));
  }
}
