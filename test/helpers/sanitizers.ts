// Test helper: native tools built with a sanitizer, one build tree per sanitizer under native/, configured
// and built on first use (incrementally after). AddressSanitizer + UBSan is native/build-asan: the parsers'
// probe (test/engine-hostile.test.ts) and the CUDA emulator's harness (test/cuda.test.ts) link one build of
// the engine there. ThreadSanitizer is native/build-tsan. Neither compiles the CUDA kernels with nvcc: the
// emulator compiles the same sources with the host compiler, which is what the sanitizers instrument.
import { execFileSync, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT } from './paths.js';

export type Sanitizer = 'asan' | 'tsan';

const OPTION: Record<Sanitizer, string> = { asan: 'TAILOR_ASAN', tsan: 'TAILOR_TSAN' };

export interface SanitizedRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Builds `targets` in the sanitizer's tree; the result runs one of them with extra environment. */
export function sanitizerBuild(kind: Sanitizer, targets: string[]) {
  const build = path.join(REPO_ROOT, 'native', `build-${kind}`);
  execFileSync('cmake', ['-S', path.join(REPO_ROOT, 'native'), '-B', build, `-D${OPTION[kind]}=ON`, '-DTAILOR_CUDA=OFF', '-DCMAKE_BUILD_TYPE=RelWithDebInfo'], { stdio: 'pipe' });
  execFileSync('cmake', ['--build', build, '--target', ...targets, '-j', '2'], { stdio: 'pipe' });
  return (exe: string, args: string[], env: Record<string, string> = {}): SanitizedRun => {
    const r = spawnSync(path.join(build, exe), args, { encoding: 'utf8', maxBuffer: 1 << 26, timeout: 600_000, env: { ...process.env, ...env } });
    return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
}
