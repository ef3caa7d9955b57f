// errors.ts — EngineError: the one error type the engine surfaces to TypeScript, with a stable code.
export type EngineErrorCode =
  | 'E_IO' | 'E_FORMAT' | 'E_UNSUPPORTED' | 'E_SHAPE' | 'E_ARG' | 'E_CANCELLED' | 'E_OOM' | 'E_INTERNAL'
  | 'E_NO_TOKENIZER';

const CODES = new Set<string>(['E_IO', 'E_FORMAT', 'E_UNSUPPORTED', 'E_SHAPE', 'E_ARG', 'E_CANCELLED', 'E_OOM', 'E_INTERNAL', 'E_NO_TOKENIZER']);

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EngineError';
    this.code = code;
  }
}

/** Converts whatever the addon (or a tokenizer) threw into an EngineError, keeping its code. */
export function toEngineError(e: unknown): EngineError {
  if (e instanceof EngineError) return e;
  const err = e as { code?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' && CODES.has(err.code) ? (err.code as EngineErrorCode) : 'E_INTERNAL';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return new EngineError(code, message, { cause: e });
}

/** Runs fn, rethrowing anything as an EngineError. */
export async function wrap<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toEngineError(e);
  }
}

/** The same for a synchronous call into the addon. */
export function wrapSync<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toEngineError(e);
  }
}
