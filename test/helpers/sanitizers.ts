// Test helper: native tools built with a sanitizer, one build tree per sanitizer under native/, configured
// and built on first use (incrementally after). AddressSanitizer + UBSan is native/build-asan: the parsers'
// probe (test/engine-hostile.test.ts) and the CUDA emulator's harness (test/cuda.test.ts) link one build of
// the engine there. ThreadSanitizer is native/build-tsan. Neither compiles the CUDA kernels with nvcc: the
// emulator compiles the same sources with the host compiler, which is what the sanitizers instrument.
// Builds and runs do not block the event loop, so that test/cuda.test.ts builds one tree while the other's
// runs go on.
import * as path from 'node:path';
import { REPO_ROOT } from './paths.js';
import { runAsync } from './spawn.js';

export type Sanitizer = 'asan' | 'tsan';

const OPTION: Record<Sanitizer, string> = { asan: 'TAILOR_ASAN', tsan: 'TAILOR_TSAN' };

export interface SanitizedRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

// the tree's folder, and the cmake command lines that configure it and build `targets` there
function commands(kind: Sanitizer, targets: string[]) {
  const build = path.join(REPO_ROOT, 'native', `build-${kind}`);
  return {
    build,
    configure: ['-S', path.join(REPO_ROOT, 'native'), '-B', build, `-D${OPTION[kind]}=ON`, '-DTAILOR_CUDA=OFF', '-DCMAKE_BUILD_TYPE=RelWithDebInfo'],
    compile: ['--build', build, '--target', ...targets, '-j', '2'],
  };
}

/** Builds `targets` in the sanitizer's tree without blocking: resolves once they are built (rejects, with
 * cmake's output, if they fail to), with a runner of one of them (extra environment) whose runs resolve when
 * they end. */
export async function sanitizerBuildAsync(kind: Sanitizer, targets: string[]) {
  const c = commands(kind, targets);
  for (const args of [c.configure, c.compile]) {
    const r = await runAsync('cmake', args);
    if (r.status !== 0) throw new Error(`cmake ${args.join(' ')} failed (${r.status ?? r.signal}):\n${(r.stdout + r.stderr).slice(-4000)}`);
  }
  return async (exe: string, args: string[], env: Record<string, string> = {}): Promise<SanitizedRun> => {
    const r = await runAsync(path.join(c.build, exe), args, { timeoutMs: 600_000, env: { ...process.env, ...env } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
}
