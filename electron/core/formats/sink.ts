// sink.ts — streaming writes for the exporters. A ByteSink takes a file's bytes in pieces of at most a few
// megabytes and awaits the disk between pieces, so a long write notices an AbortSignal within one piece
// (E_CANCELLED) and reports its bytes as it goes. The chunked encoders turn an F32 tensor into its on-disk
// dtype a block of rows at a time, so no whole converted tensor is ever built. A PlannedFile is one file of
// an export with its exact size known before anything is written (for progress against the total).
import * as fs from 'node:fs';
import { EngineError } from '../engine/errors.js';
import { bytesOf, f32ArrayToBf16, f32ArrayToF16, quantizeQ8_0, QK8_0, Q8_0_BLOCK_BYTES } from './dtype.js';

/** The largest piece handed to the disk in one write (and the size of one encoded block of rows). */
export const CHUNK_BYTES = 4 << 20;

export interface ByteSink {
  write(b: Uint8Array): Promise<void>;
}

/** One file of a multi-file output: its path relative to the output, its exact size, how to write it. */
export interface PlannedFile {
  rel: string;
  bytes: number;
  write(sink: ByteSink): Promise<void>;
}

export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new EngineError('E_CANCELLED', 'cancelled');
}

export type EncodeDtype = 'f32' | 'f16' | 'bf16' | 'q8_0';

/** Bytes of one row of `cols` values in `dtype` (q8_0 needs cols % 32 == 0). */
export function rowBytes(cols: number, dtype: EncodeDtype): number {
  if (dtype === 'f32') return cols * 4;
  if (dtype === 'q8_0') return (cols / QK8_0) * Q8_0_BLOCK_BYTES;
  return cols * 2;
}

/** A [rows, cols] F32 tensor in `dtype`, as blocks of whole rows of about `maxBytes` each. */
export function* encodeRows(src: Float32Array, rows: number, cols: number, dtype: EncodeDtype, maxBytes = CHUNK_BYTES): Generator<Uint8Array> {
  if (src.length !== rows * cols) throw new Error(`encodeRows: ${src.length} values for [${rows}, ${cols}]`);
  if (dtype === 'q8_0' && cols % QK8_0 !== 0) throw new Error(`Q8_0 rows need a multiple of ${QK8_0} values (got ${cols})`);
  const per = Math.max(1, Math.floor(maxBytes / Math.max(1, rowBytes(cols, dtype))));
  for (let r = 0; r < rows; r += per) {
    const sub = src.subarray(r * cols, Math.min(rows, r + per) * cols);
    if (dtype === 'f32') yield bytesOf(sub);
    else if (dtype === 'f16') yield bytesOf(f32ArrayToF16(sub));
    else if (dtype === 'bf16') yield bytesOf(f32ArrayToBf16(sub));
    else yield quantizeQ8_0(sub);
  }
}

/** Writes `chunks` to the sink and checks that exactly `nbytes` came out. */
export async function writeChunks(sink: ByteSink, chunks: Iterable<Uint8Array>, nbytes: number, what: string): Promise<void> {
  let n = 0;
  for (const c of chunks) {
    n += c.byteLength;
    await sink.write(c);
  }
  if (n !== nbytes) throw new EngineError('E_INTERNAL', `${what}: ${n} bytes written, ${nbytes} declared`);
}

/** A small file whose contents are known up front (JSON, a model card). */
export function plannedBytes(rel: string, data: string | Uint8Array): PlannedFile {
  const b = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return { rel, bytes: b.byteLength, write: (sink) => sink.write(b) };
}

/** A copy of an existing file (a tokenizer file); its size is taken now, its bytes read when written. */
export function plannedCopy(rel: string, src: string): PlannedFile {
  const bytes = fs.statSync(src).size;
  return {
    rel,
    bytes,
    write: async (sink) => {
      const b = await fs.promises.readFile(src);
      if (b.byteLength !== bytes) throw new EngineError('E_IO', `${src} changed size while it was being exported`);
      await sink.write(b);
    },
  };
}

/** An errno failure as E_IO naming the file (disk full said plainly); anything else unchanged. */
export function ioError(e: unknown, what: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof EngineError || typeof err?.code !== 'string' || !/^E[A-Z]+$/.test(err.code)) return e;
  const why = err.code === 'ENOSPC' ? 'no space left on device' : err.code === 'EDQUOT' ? 'disk quota exceeded' : err.message;
  return new EngineError('E_IO', `${what}: ${why}`, { cause: e });
}

/** A new file (never an existing one) written in pieces of at most `chunkBytes`, with abort checks between. */
export class FileSink implements ByteSink {
  written = 0;
  private constructor(
    private fh: fs.promises.FileHandle | null,
    readonly file: string,
    private readonly o: { signal?: AbortSignal; onBytes?: (n: number) => void; chunkBytes: number },
  ) {}

  static async create(file: string, o: { signal?: AbortSignal; onBytes?: (n: number) => void; chunkBytes?: number } = {}): Promise<FileSink> {
    throwIfAborted(o.signal);
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, 'wx');
    } catch (e) {
      throw ioError(e, `cannot create ${file}`);
    }
    return new FileSink(fh, file, { ...o, chunkBytes: o.chunkBytes ?? CHUNK_BYTES });
  }

  async write(b: Uint8Array): Promise<void> {
    const fh = this.fh;
    if (!fh) throw new EngineError('E_INTERNAL', `${this.file} is already closed`);
    for (let off = 0; off < b.byteLength; off += this.o.chunkBytes) {
      throwIfAborted(this.o.signal);
      const piece = b.subarray(off, Math.min(b.byteLength, off + this.o.chunkBytes));
      let done = 0;
      try {
        while (done < piece.byteLength) done += (await fh.write(piece, done, piece.byteLength - done)).bytesWritten;
      } catch (e) {
        throw ioError(e, `writing ${this.file} failed`);
      }
      this.written += piece.byteLength;
      this.o.onBytes?.(piece.byteLength);
    }
  }

  /** Flushes to the disk (fsync) and closes. */
  async finish(): Promise<void> {
    const fh = this.fh;
    if (!fh) return;
    this.fh = null;
    try {
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw ioError(e, `flushing ${this.file} failed`);
    }
    try {
      await fh.close();
    } catch (e) {
      throw ioError(e, `closing ${this.file} failed`);
    }
  }

  /** Closes without flushing (the file is about to be removed). */
  async abandon(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close().catch(() => undefined);
  }
}
