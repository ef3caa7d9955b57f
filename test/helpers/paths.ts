// Test helper: where the repository, the shared read-only data and scratch folders are.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (tests run compiled from dist/test/..., so walk up to package.json). */
export const REPO_ROOT: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + dir);
    dir = up;
  }
  return dir;
})();

/** The read-only shared data folder (`../shared` beside the checkout; TAILOR_SHARED overrides). */
export const SHARED: string = process.env.TAILOR_SHARED ?? path.resolve(REPO_ROOT, '..', 'shared');

export function shared(...parts: string[]): string {
  return path.join(SHARED, ...parts);
}

/** A fresh temporary folder removed when the process exits. */
export function tempDir(prefix = 'tailor-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// CLI runs spawned by the tests record into a temporary history, never the user's data folder
if (!process.env.TAILOR_DB) {
  const db = path.join(os.tmpdir(), `tailor-test-history-${process.pid}.sqlite`);
  process.env.TAILOR_DB = db;
  process.on('exit', () => {
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(db + suffix, { force: true });
  });
}
