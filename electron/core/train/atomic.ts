// atomic.ts — atomic writes: a file or a whole folder is written under a temporary name beside its
// destination, flushed, then renamed into place, so a crash or a cancel never leaves a half-written result
// and an existing result is only replaced when asked (force).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../engine/errors.js';

/** Flushes a file or folder to disk (folders cannot be fsynced everywhere: then it does nothing). */
export function fsyncPath(p: string): void {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // directories cannot be fsynced on every platform; the rename is still atomic
  }
}

/** Writes a folder through `fill(tmpDir)`, then renames it to `dir` (replacing it only when force). */
export function atomicWriteDir(dir: string, force: boolean, fill: (tmp: string) => void): void {
  if (fs.existsSync(dir) && !force) throw new EngineError('E_IO', `${dir} already exists (use --force to replace it)`);
  fs.mkdirSync(path.dirname(path.resolve(dir)), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}-${Date.now()}`;
  fs.mkdirSync(tmp);
  try {
    fill(tmp);
    for (const f of fs.readdirSync(tmp)) fsyncPath(path.join(tmp, f));
    if (fs.existsSync(dir)) {
      const old = `${dir}.old-${process.pid}-${Date.now()}`;
      fs.renameSync(dir, old);
      fs.renameSync(tmp, dir);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, dir);
    }
    fsyncPath(path.dirname(path.resolve(dir)));
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Writes one file atomically. */
export function atomicWriteFile(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    fs.writeFileSync(tmp, data);
    fsyncPath(tmp);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
