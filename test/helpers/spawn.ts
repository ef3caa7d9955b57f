// Test helper: a child process run to its end without blocking the event loop, so that a test can run two
// single-threaded programs at once (the emulator's runs each keep one core busy; the machine has two).
import { spawn } from 'node:child_process';

export interface Finished {
  status: number | null; // the exit status (null: killed by a signal, as by the timeout)
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `file` with `args` to its end (killed after `timeoutMs`), resolving with its status and output. */
export function runAsync(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/**
 * `start` memoized by key: the first call for a key starts it, later calls get the same promise. For work a
 * test starts for itself and for a later test (to run beside it on the other core); each awaits its own. A
 * rejection is marked handled until then, so that a failure waiting for its test is not an unhandled one.
 */
export function startedOnce<K, V>(start: (key: K) => Promise<V>): (key: K) => Promise<V> {
  const started = new Map<K, Promise<V>>();
  return (key) => {
    let p = started.get(key);
    if (!p) {
      p = start(key);
      p.catch(() => {});
      started.set(key, p);
    }
    return p;
  };
}

/** `env` without NODE_TEST_CONTEXT: the runner sets it for a test file's process, and a `node --test` started from
 * a test with it would report to this runner in its binary protocol instead of printing its results. */
export function nestedTestEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { NODE_TEST_CONTEXT: _ctx, ...rest } = env;
  return rest;
}
