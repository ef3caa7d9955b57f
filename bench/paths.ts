// paths.ts — where the repository, the shared data and the benchmark's model cache are.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (the benchmark runs compiled from dist/bench/, so walk up to package.json). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + dir);
    dir = up;
  }
  return dir;
}

/** The read-only shared data folder (`../shared` beside the checkout; TAILOR_SHARED overrides). */
export function sharedDir(): string {
  return process.env.TAILOR_SHARED ?? path.resolve(repoRoot(), '..', 'shared');
}

/** Where generated benchmark models are cached: TAILOR_BENCH_CACHE, else $TMPDIR/tailor-bench (outside the repository). */
export function defaultCacheDir(): string {
  return process.env.TAILOR_BENCH_CACHE ?? path.join(os.tmpdir(), 'tailor-bench');
}
