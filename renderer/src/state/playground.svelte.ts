// playground.svelte.ts — the Playground: source, prompt and sampling controls; Generate streams side 'a'
// (and side 'b' on the run's base model when comparing) from job.text events; Stop cancels the jobs.
import type { GenerateDone, GenerateRequest, ModelSource, WireError } from '../../../electron/core/api/contract';
import { api, toWire } from '../lib/api';
import { cancelJob, jobs, type JobEvent } from '../lib/jobs';
import { SourceChoice } from './source.svelte';

export class Pane {
  readonly side: 'a' | 'b';
  jobId = $state<string | null>(null);
  text = $state('');
  running = $state(false);
  error = $state<WireError | null>(null);
  done = $state<GenerateDone | null>(null);
  label = $state('');
  /** the prompt this output continues */
  prompt = $state('');
  private unfollow: (() => void) | null = null;

  constructor(side: 'a' | 'b') {
    this.side = side;
  }

  async start(req: GenerateRequest, label: string) {
    this.unfollow?.();
    this.text = '';
    this.error = null;
    this.done = null;
    this.label = label;
    this.prompt = req.prompt;
    this.running = true;
    this.jobId = null;
    try {
      const { jobId } = await api.invoke('generate.start', req);
      this.jobId = jobId;
      this.unfollow = jobs.follow(jobId, (e) => this.onEvent(e));
    } catch (e) {
      this.running = false;
      this.error = toWire(e);
    }
  }

  private onEvent(e: JobEvent) {
    if (e.type === 'text') {
      if (e.p.side === this.side) this.text += e.p.delta;
    } else if (e.type === 'finished') {
      this.running = false;
      if (e.p.ok && e.p.result && 'tokens' in e.p.result) {
        this.done = e.p.result;
        if (!this.text && e.p.result.text) this.text = e.p.result.text;
      }
      if (!e.p.ok) this.error = e.p.error ?? { code: 'E_INTERNAL', message: 'generation failed' };
      this.unfollow?.();
      this.unfollow = null;
    }
  }

  async stop() {
    if (!this.jobId || !this.running) return;
    this.error = (await cancelJob(this.jobId)) ?? this.error;
  }
}

export class PlaygroundState {
  source = new SourceChoice();
  prompt = $state('Once upon a time');
  maxTokens = $state<number | null>(64);
  temperature = $state<number | null>(0.8);
  topK = $state<number | null>(40);
  topP = $state<number | null>(0.95);
  seed = $state<number | null>(0);
  compareBase = $state(false);
  a = new Pane('a');
  b = new Pane('b');

  running = $derived(this.a.running || this.b.running);
  /** compare with base is offered for a run's result (its base is the run's spec.model) */
  canCompare = $derived(this.source.kind === 'run' && !!this.source.runBase);

  problems = $derived.by((): Record<string, string> => {
    const e: Record<string, string> = {};
    const int = (v: number | null, min: number) => v !== null && Number.isInteger(v) && v >= min;
    if (this.source.problem) e.source = this.source.problem;
    if (!this.prompt) e.prompt = 'Write a prompt.';
    if (!int(this.maxTokens, 1)) e.maxTokens = 'Max tokens: a whole number, at least 1.';
    if (this.temperature === null || this.temperature < 0) e.temperature = 'Temperature: 0 (greedy) or more.';
    if (!int(this.topK, 0)) e.topK = 'Top-k: a whole number, 0 (off) or more.';
    if (this.topP === null || this.topP <= 0 || this.topP > 1) e.topP = 'Top-p: above 0, at most 1.';
    if (!int(this.seed, 0)) e.seed = 'Seed: a whole number, 0 or more.';
    return e;
  });

  async generate() {
    const src = this.source.source;
    if (!src || Object.keys(this.problems).length || this.running) return;
    const base = {
      prompt: this.prompt, maxTokens: this.maxTokens!, temperature: this.temperature!, topK: this.topK!, topP: this.topP!, seed: this.seed!,
    };
    const reqA: GenerateRequest = { ...base, source: $state.snapshot(src) as ModelSource, side: 'a' };
    const tasks = [this.a.start(reqA, this.source.label)];
    if (this.compareBase && this.canCompare && this.source.runBase) {
      const path = this.source.runBase;
      tasks.push(this.b.start({ ...base, source: { kind: 'model', path }, side: 'b' }, `base: ${path.split('/').pop() ?? path}`));
    } else {
      this.b.text = '';
      this.b.done = null;
      this.b.error = null;
    }
    await Promise.all(tasks);
  }

  async stop() {
    await Promise.all([this.a.stop(), this.b.stop()]);
  }
}

export const playground = new PlaygroundState();
