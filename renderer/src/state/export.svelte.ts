// export.svelte.ts — the Export screen: source, format, dtype, output path and force; export.start, then
// job.progress (bytes written of the total) and job.finished (paths and size, or the error).
import type { ExportDone, ExportDtype, ExportFormat, ModelSource, WireError } from '../../../electron/core/api/contract';
import { api, toWire } from '../lib/api';
import { cancelJob, jobs, type JobEvent } from '../lib/jobs';
import { SourceChoice } from './source.svelte';

export const EXPORT_FORMATS: ReadonlyArray<{ value: ExportFormat; label: string }> = [
  { value: 'gguf', label: 'GGUF (llama.cpp, Ollama, LM Studio)' },
  { value: 'hf', label: 'Hugging Face folder (safetensors)' },
  { value: 'peft', label: 'PEFT adapter (LoRA only, with its base)' },
];

export class ExportState {
  source = new SourceChoice();
  format = $state<ExportFormat>('gguf');
  dtype = $state<ExportDtype>('f16');
  out = $state('');
  force = $state(false);

  jobId = $state<string | null>(null);
  running = $state(false);
  fraction = $state(0);
  bytes = $state<number | null>(null);
  totalBytes = $state<number | null>(null);
  etaSec = $state<number | null>(null);
  done = $state<ExportDone | null>(null);
  error = $state<WireError | null>(null);
  private unfollow: (() => void) | null = null;

  problems = $derived.by((): Record<string, string> => {
    const e: Record<string, string> = {};
    if (this.source.problem) e.source = this.source.problem;
    if (this.format === 'peft' && this.source.kind !== 'run') e.format = 'A PEFT adapter comes from a run’s result (its LoRA adapter): choose a finished run.';
    if (!this.out.trim()) e.out = this.format === 'gguf' ? 'Enter the output file, e.g. /home/me/model.gguf.' : 'Enter the output folder.';
    return e;
  });

  async start() {
    let src = this.source.source;
    if (!src || Object.keys(this.problems).length || this.running) return;
    // PEFT: the adapter itself, written beside its pruned base — the unmerged result
    if (this.format === 'peft' && src.kind === 'run') src = { ...src, recovered: false };
    this.unfollow?.();
    this.running = true;
    this.fraction = 0;
    this.bytes = null;
    this.totalBytes = null;
    this.etaSec = null;
    this.done = null;
    this.error = null;
    this.jobId = null;
    try {
      const { jobId } = await api.invoke('export.start', {
        source: $state.snapshot(src) as ModelSource, format: this.format, dtype: this.dtype, out: this.out.trim(), force: this.force,
      });
      this.jobId = jobId;
      this.unfollow = jobs.follow(jobId, (e) => this.onEvent(e));
    } catch (e) {
      this.running = false;
      this.error = toWire(e);
    }
  }

  private onEvent(e: JobEvent) {
    if (e.type === 'progress') {
      this.fraction = e.p.fraction;
      this.bytes = e.p.bytes;
      this.totalBytes = e.p.totalBytes;
      this.etaSec = e.p.etaSec;
    } else if (e.type === 'finished') {
      this.running = false;
      this.etaSec = null;
      if (e.p.ok && e.p.result && 'paths' in e.p.result) {
        this.done = e.p.result;
        this.fraction = 1;
      } else {
        this.error = e.p.error ?? { code: 'E_INTERNAL', message: 'export failed' };
      }
      this.unfollow?.();
      this.unfollow = null;
    }
  }

  async cancel() {
    if (!this.jobId || !this.running) return;
    this.error = (await cancelJob(this.jobId)) ?? this.error;
  }
}

export const exporter = new ExportState();
