// io.ts — file reading helpers for tasks: (gzipped) text, JSON lines and RFC-4180 CSV/TSV, all with line numbers.
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { TaskError } from './types.js';

/** Reads a UTF-8 text file (gunzipping `.gz`), dropping a BOM. Throws TaskError E_IO naming the file. */
export function readText(file: string): string {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new TaskError('E_IO', `cannot read ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (file.toLowerCase().endsWith('.gz')) {
    try {
      buf = zlib.gunzipSync(buf);
    } catch (e) {
      throw new TaskError('E_IO', `cannot gunzip ${file}: ${(e as Error).message}`, { cause: e });
    }
  }
  let text = buf.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text;
}

export interface Line { line: number; text: string }

/** Non-blank lines of a text file, 1-based line numbers, trailing CR removed. */
export function readLines(file: string): Line[] {
  const out: Line[] = [];
  const lines = readText(file).split('\n');
  for (let i = 0; i < lines.length; i++) {
    let t = lines[i];
    if (t.endsWith('\r')) t = t.slice(0, -1);
    if (t.trim() === '') continue;
    out.push({ line: i + 1, text: t });
  }
  return out;
}

export interface JsonRow { line: number; value: Record<string, unknown> }

/** JSON lines: one object per non-blank line; a bad line is TaskError E_TASK_FORMAT naming file and line. */
export function readJsonl(file: string): JsonRow[] {
  return readLines(file).map(({ line, text }) => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new TaskError('E_TASK_FORMAT', `${file}:${line}: bad JSON line: ${(e as Error).message}`, { cause: e });
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new TaskError('E_TASK_FORMAT', `${file}:${line}: expected a JSON object on each line`);
    }
    return { line, value: v as Record<string, unknown> };
  });
}

export interface Record_ { line: number; cells: string[] }

/**
 * RFC-4180 parser (quoted fields, "" escapes, delimiters and newlines inside quotes, CRLF or LF).
 * `line` is the 1-based physical line a record starts on. Blank lines are skipped.
 */
export function parseDelimited(text: string, delimiter: string, file: string): Record_[] {
  const out: Record_[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false; // inside a quoted field
  let wasQuoted = false; // some cell of this record was quoted (so a line holding only "" is not blank)
  let cellQuoted = false; // the current cell was quoted
  let line = 1;
  let start = 1;
  let fieldStart = true;
  const endRecord = (): void => {
    cells.push(cell);
    const blank = cells.length === 1 && cells[0] === '' && !wasQuoted;
    if (!blank) out.push({ line: start, cells });
    cells = [];
    cell = '';
    wasQuoted = false;
    cellQuoted = false;
    fieldStart = true;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') { cell += '"'; i++; } else quoted = false;
      } else {
        if (c === '\n') line++;
        cell += c;
      }
      continue;
    }
    if (c === '"' && fieldStart) { quoted = true; wasQuoted = true; cellQuoted = true; fieldStart = false; continue; }
    if (c === delimiter) { cells.push(cell); cell = ''; fieldStart = true; cellQuoted = false; continue; }
    if (c === '\r' && text[i + 1] === '\n') continue;
    if (c === '\n') { endRecord(); line++; start = line; continue; }
    if (c === '"' && cellQuoted) {
      throw new TaskError('E_TASK_FORMAT', `${file}:${line}: unexpected '"' after a quoted field`);
    }
    // (a quote in the middle of an unquoted field is kept literally, as most CSV writers' readers do)
    cell += c;
    fieldStart = false;
  }
  if (quoted) throw new TaskError('E_TASK_FORMAT', `${file}:${start}: unterminated quoted field`);
  if (cell !== '' || cells.length > 0 || wasQuoted) endRecord();
  return out;
}

/** mulberry32: a small deterministic PRNG returning floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded Fisher–Yates shuffle of a copy. */
export function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = xs.slice();
  const r = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = out[i]; out[i] = out[j]; out[j] = t;
  }
  return out;
}
