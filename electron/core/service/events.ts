// events.ts — how the workbench's back end pushes events to its front end: one typed emit function, a
// throttle that lets a job's progress through at most ~10 times a second (keeping the latest value and
// never dropping a stage's start or finish), and the conversion of any thrown error to a WireError.
import type { ErrorCode, EventName, Events, WireError } from '../api/contract.js';

export type Emit = <E extends EventName>(event: E, payload: Events[E]) => void;

/** Per key, at most one event per `intervalMs`; the latest pending value is delivered at the end of the
 *  interval (trailing), and `flush(key)` delivers it at once (before a stage's 'done', say). */
export class Throttle {
  private readonly last = new Map<string, number>();
  private readonly pending = new Map<string, { fn: () => void; timer: ReturnType<typeof setTimeout> }>();
  constructor(private readonly intervalMs = 100) {}

  push(key: string, fn: () => void): void {
    const now = Date.now();
    const last = this.last.get(key) ?? 0;
    const p = this.pending.get(key);
    if (now - last >= this.intervalMs && !p) {
      this.last.set(key, now);
      fn();
      return;
    }
    if (p) {
      p.fn = fn;
      return;
    }
    const timer = setTimeout(() => this.flush(key), Math.max(0, this.intervalMs - (now - last)));
    timer.unref?.();
    this.pending.set(key, { fn, timer });
  }

  flush(key: string): void {
    const p = this.pending.get(key);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(key);
    this.last.set(key, Date.now());
    p.fn();
  }

  /** Delivers every pending event of keys starting with `prefix`. */
  flushAll(prefix = ''): void {
    for (const k of [...this.pending.keys()]) if (k.startsWith(prefix)) this.flush(k);
  }
}

const KNOWN = new Set<string>([
  'E_IO', 'E_FORMAT', 'E_UNSUPPORTED', 'E_SHAPE', 'E_ARG', 'E_CANCELLED', 'E_OOM', 'E_INTERNAL', 'E_NO_TOKENIZER', 'E_TASK_UNKNOWN',
  'E_TASK_FORMAT', 'E_DB', 'E_DB_NEWER', 'E_NOT_FOUND', 'E_PAYLOAD', 'E_UNKNOWN_CHANNEL', 'E_AUTH', 'E_BUSY',
] satisfies ErrorCode[]);

/** Anything thrown → the wire's {code, message, field?}; unknown errors are E_INTERNAL with their message. */
export function toWireError(e: unknown): WireError {
  const err = e as { code?: unknown; message?: unknown; field?: unknown };
  const code = typeof err?.code === 'string' && KNOWN.has(err.code) ? (err.code as ErrorCode)
    : typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code) ? 'E_IO' // a Node system error (ENOENT, EACCES, ENOSPC…)
    : 'E_INTERNAL';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return typeof err?.field === 'string' ? { code, message, field: err.field } : { code, message };
}

/** A typed error the service throws itself. */
export class ServiceError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly field?: string) {
    super(message);
    this.name = 'ServiceError';
  }
}
