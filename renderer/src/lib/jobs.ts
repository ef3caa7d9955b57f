// jobs.ts — routes the pushed job events (job.text, job.progress, job.finished) to whoever follows a job
// id, buffering events that arrive before the start call has returned that id.
import type { Events, WireError } from '../../../electron/core/api/contract';
import { api, toWire } from './api';

export type JobEvent =
  | { type: 'text'; p: Events['job.text'] }
  | { type: 'progress'; p: Events['job.progress'] }
  | { type: 'finished'; p: Events['job.finished'] };

const KEEP_MS = 60_000;

class JobRouter {
  private readonly handlers = new Map<string, (e: JobEvent) => void>();
  private readonly buffer = new Map<string, { at: number; events: JobEvent[] }>();

  constructor() {
    api.on('job.text', (p) => this.route(p.jobId, { type: 'text', p }));
    api.on('job.progress', (p) => this.route(p.jobId, { type: 'progress', p }));
    api.on('job.finished', (p) => this.route(p.jobId, { type: 'finished', p }));
  }

  private route(jobId: string, e: JobEvent) {
    const h = this.handlers.get(jobId);
    if (h) return h(e);
    const now = Date.now();
    for (const [id, b] of this.buffer) if (now - b.at > KEEP_MS) this.buffer.delete(id);
    const b = this.buffer.get(jobId) ?? { at: now, events: [] };
    b.events.push(e);
    this.buffer.set(jobId, b);
  }

  /** delivers the job's events (those already buffered first); returns the unfollow */
  follow(jobId: string, handler: (e: JobEvent) => void): () => void {
    this.handlers.set(jobId, handler);
    const b = this.buffer.get(jobId);
    if (b) {
      this.buffer.delete(jobId);
      for (const e of b.events) handler(e);
    }
    return () => {
      if (this.handlers.get(jobId) === handler) this.handlers.delete(jobId);
    };
  }
}

export const jobs = new JobRouter();

/** asks the back end to cancel a job; returns the error to show, or null */
export async function cancelJob(jobId: string): Promise<WireError | null> {
  try {
    await api.invoke('jobs.cancel', { jobId });
    return null;
  } catch (e) {
    return toWire(e);
  }
}
