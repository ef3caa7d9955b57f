// atomic-output.ts — how an export reaches the disk: every planned file is streamed in chunks into a
// temporary name beside the destination (a file, or a folder holding the files), fsynced, and only then
// renamed into place. A cancel, a full disk or any throw removes the temporary output (and any parent
// folders this export created), so nothing partial is ever left. An existing output is refused unless
// `force`, and with `force` it is replaced only once the new one is complete. Progress counts bytes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../engine/errors.js';
import { FileSink, ioError, throwIfAborted, type PlannedFile } from '../formats/sink.js';
import { fsyncPath } from '../train/atomic.js';

export interface WriteProgress {
  bytesWritten: number;
  totalBytes: number;
  /** bytesWritten / totalBytes; exactly 1 in the last call, once everything is written and flushed */
  fraction: number;
}

export interface AtomicOutputOptions {
  /** `out` is one file (the single planned file) rather than a folder of them */
  single?: boolean;
  force?: boolean;
  signal?: AbortSignal;
  /** at most about every `progressIntervalMs` (default 100 ms), then a final call with fraction 1 */
  onProgress?: (p: WriteProgress) => void;
  progressIntervalMs?: number;
  /** the largest single write (default 4 MiB) */
  chunkBytes?: number;
}

const exists = (p: string): boolean => {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
};

/** Refuses an existing output unless force (E_IO, before any work). */
export function checkOverwrite(out: string, force: boolean | undefined): void {
  if (exists(out) && !force) throw new EngineError('E_IO', `${out} already exists (use --force to replace it)`);
}

/** Writes `files` to `out` atomically; returns the bytes written. */
export async function writeAtomically(out: string, files: PlannedFile[], o: AtomicOutputOptions = {}): Promise<number> {
  const abs = path.resolve(out);
  if (o.single && files.length !== 1) throw new EngineError('E_INTERNAL', `a single-file output needs one planned file (got ${files.length})`);
  checkOverwrite(abs, o.force);
  throwIfAborted(o.signal);
  const total = files.reduce((a, f) => a + f.bytes, 0);
  const parent = path.dirname(abs);
  let created: string | undefined;
  try {
    created = fs.mkdirSync(parent, { recursive: true });
  } catch (e) {
    throw ioError(e, `cannot create the folder ${parent}`);
  }
  const stamp = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = `${abs}.tmp-${stamp}`;
  let written = 0;
  let last = -Infinity;
  const interval = o.progressIntervalMs ?? 100;
  const onBytes = (n: number): void => {
    written += n;
    if (!o.onProgress || written >= total) return; // the last call (fraction 1) comes once everything is flushed
    const now = performance.now();
    if (now - last < interval) return;
    last = now;
    o.onProgress({ bytesWritten: written, totalBytes: total, fraction: total > 0 ? written / total : 0 });
  };
  let sink: FileSink | null = null;
  const writeOne = async (file: string, f: PlannedFile): Promise<void> => {
    sink = await FileSink.create(file, { signal: o.signal, onBytes, chunkBytes: o.chunkBytes });
    await f.write(sink);
    if (sink.written !== f.bytes) throw new EngineError('E_INTERNAL', `${f.rel}: ${sink.written} bytes written, ${f.bytes} planned`);
    await sink.finish();
    sink = null;
  };
  try {
    if (o.single) {
      await writeOne(tmp, files[0]);
    } else {
      fs.mkdirSync(tmp);
      const dirs = new Set<string>([tmp]);
      for (const f of files) {
        const dst = path.join(tmp, f.rel);
        if (!dst.startsWith(tmp + path.sep)) throw new EngineError('E_INTERNAL', `planned file ${f.rel} escapes the output folder`);
        if (!dirs.has(path.dirname(dst))) {
          fs.mkdirSync(path.dirname(dst), { recursive: true });
          dirs.add(path.dirname(dst));
        }
        await writeOne(dst, f);
      }
      for (const d of dirs) fsyncPath(d);
    }
    if (written !== total) throw new EngineError('E_INTERNAL', `${written} bytes written, ${total} planned`);
    throwIfAborted(o.signal);
    o.onProgress?.({ bytesWritten: written, totalBytes: total, fraction: 1 });
    throwIfAborted(o.signal);
    // commit: the new output takes the name; an old one (force) is set aside first and removed after
    if (exists(abs)) {
      if (!o.force) throw new EngineError('E_IO', `${out} appeared while it was being exported (use --force to replace it)`);
      const old = `${abs}.old-${stamp}`;
      fs.renameSync(abs, old);
      try {
        fs.renameSync(tmp, abs);
      } catch (e) {
        fs.renameSync(old, abs);
        throw e;
      }
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, abs);
    }
    fsyncPath(parent);
    return written;
  } catch (e) {
    await (sink as FileSink | null)?.abandon();
    fs.rmSync(tmp, { recursive: true, force: true });
    if (created) removeEmptyDirs(parent, created);
    throw ioError(e, `exporting to ${out} failed`);
  }
}

/** Removes `from` and its parents up to and including `upTo` while they are empty (folders this export made). */
function removeEmptyDirs(from: string, upTo: string): void {
  let d = from;
  for (;;) {
    try {
      fs.rmdirSync(d);
    } catch {
      return;
    }
    if (d === upTo || path.dirname(d) === d) return;
    d = path.dirname(d);
  }
}
