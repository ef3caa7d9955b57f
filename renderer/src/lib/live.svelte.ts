// live.svelte.ts — Live<T>: the latest result of a repeated request (value, error, loading), dropping
// answers that arrive after a newer request was made.
import type { WireError } from '../../../electron/core/api/contract';
import { toWire } from './api';

export class Live<T> {
  value = $state<T | null>(null);
  error = $state<WireError | null>(null);
  loading = $state(false);
  private seq = 0;

  /** runs the request; on failure the error is set and the value cleared, unless `keep` (a list that stays readable) */
  async run(fn: () => Promise<T>, keep = false): Promise<T | null> {
    const n = ++this.seq;
    this.loading = true;
    try {
      const v = await fn();
      if (n !== this.seq) return null;
      this.value = v;
      this.error = null;
      return v;
    } catch (e) {
      if (n !== this.seq) return null;
      if (!keep) this.value = null;
      this.error = toWire(e);
      return null;
    } finally {
      if (n === this.seq) this.loading = false;
    }
  }

  clear() {
    this.seq++;
    this.value = null;
    this.error = null;
    this.loading = false;
  }
}
