// source.svelte.ts — SourceChoice: what a job works on, chosen by the user: a model from the list, or one
// ratio of a finished pipeline run (recovered, or pruned only), as the contract's ModelSource.
import type { ModelSource, RunSummary } from '../../../electron/core/api/contract';
import { api } from '../lib/api';
import { Live } from '../lib/live.svelte';
import { app } from './app.svelte';

export class SourceChoice {
  kind = $state<'model' | 'run'>('model');
  modelPath = $state('');
  runId = $state('');
  ratio = $state<number | null>(null);
  recovered = $state(true);
  finishedRuns = new Live<RunSummary[]>();
  /** the base model of the chosen run (its spec.model), once known */
  runBase = $state<string | null>(null);

  run = $derived(this.finishedRuns.value?.find((r) => r.id === this.runId));

  source = $derived.by((): ModelSource | null => {
    if (this.kind === 'model') return this.modelPath ? { kind: 'model', path: this.modelPath } : null;
    if (!this.runId || this.ratio === null) return null;
    return { kind: 'run', runId: this.runId, ratio: this.ratio, recovered: this.recovered };
  });

  problem = $derived.by((): string | null => {
    if (this.kind === 'model') return this.modelPath ? null : 'Choose a model.';
    if (!this.runId) return 'Choose a finished run.';
    if (this.ratio === null) return 'Choose one of the run’s ratios.';
    return null;
  });

  /** a short description of the source for labels */
  label = $derived.by((): string => {
    if (this.kind === 'model') return app.modelByPath(this.modelPath)?.name ?? this.modelPath;
    const r = this.run;
    return r ? `${r.name} @ ${this.ratio ?? '?'} (${this.recovered ? 'recovered' : 'pruned only'})` : '';
  });

  async loadRuns() {
    const list = await this.finishedRuns.run(() => api.invoke('runs.list', { status: 'done', kind: null, query: '', sort: 'newest' }));
    if (list) this.finishedRuns.value = list.filter((r) => r.ratios.length > 0);
    if (!this.modelPath && app.models.length) this.modelPath = app.models[0].path;
  }

  selectRun(id: string) {
    this.runId = id;
    const r = this.finishedRuns.value?.find((x) => x.id === id);
    this.ratio = r?.ratios[0] ?? null;
    this.runBase = r?.model ?? null;
    if (id) void this.loadBase(id);
  }

  private async loadBase(id: string) {
    try {
      const v = await api.invoke('runs.get', { runId: id });
      const spec = v.spec as { model?: unknown } | null;
      if (this.runId === id && spec && typeof spec.model === 'string') this.runBase = spec.model;
    } catch {
      /* RunSummary.model stays the fallback */
    }
  }
}
