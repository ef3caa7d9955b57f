// Safe exports: streamed writes produce the same bytes as the one-shot writers; progress counts bytes
// (monotone, throttled, a final 1 once complete); a cancel mid-export (in-process through an
// AbortController, or Ctrl-C on `tailor export`), a failing write or any throw leaves nothing behind —
// and with --force the old output survives such a failure untouched; an existing output is never
// replaced without force.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Model } from '../electron/core/engine/engine.js';
import { exportModel, ggufVocabFor, type ExportFormat, type ExportProgress } from '../electron/core/export/export.js';
import { bytesOf, f32ArrayToBf16, f32ArrayToF16, quantizeQ8_0 } from '../electron/core/formats/dtype.js';
import { ggufBytes } from '../electron/core/formats/gguf-write.js';
import { randomModel, paramCount } from '../electron/core/formats/model-tensors.js';
import { writeHfFolder } from '../electron/core/formats/safetensors-write.js';
import { encodeRows } from '../electron/core/formats/sink.js';
import { DEFAULT_LORA, loraSlots, writePeftAdapter } from '../electron/core/train/lora.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';

const dir = tempDir('tailor-export-safety-');
const CLI = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
const TOK = shared('models', 'stories260K-hf', 'tokenizer.model');

/** A random model with the tok512 vocabulary (so GGUF can embed it), about `dim`-sized. */
function modelFolder(name: string, dim: number, nLayers: number, ffn: number): string {
  const d = path.join(dir, name);
  writeHfFolder(d, randomModel({ dim, nLayers, nHead: 8, nKvHead: 4, ffn, vocabSize: 512, contextLength: 128, tied: false, seed: 5 }));
  fs.copyFileSync(TOK, path.join(d, 'tokenizer.model'));
  return d;
}

// 256-wide, 4 layers: about 13 MB in F32, several 4 MiB writes
const MID = modelFolder('mid', 256, 4, 768);
let adapter = '';

const leftovers = (parent: string, name: string): string[] => (fs.existsSync(parent) ? fs.readdirSync(parent).filter((f) => f.startsWith(name)) : []);
const sha = (p: string): string => {
  const h = crypto.createHash('sha256');
  const walk = (q: string): void => {
    if (fs.statSync(q).isDirectory()) for (const f of fs.readdirSync(q).sort()) walk(path.join(q, f));
    else h.update(path.relative(p, q)).update(fs.readFileSync(q));
  };
  walk(p);
  return h.digest('hex');
};
const sizeOf = (p: string): number => (fs.statSync(p).isDirectory() ? fs.readdirSync(p).reduce((a, f) => a + sizeOf(path.join(p, f)), 0) : fs.statSync(p).size);

async function withModel<T>(fn: (m: Model) => Promise<T>): Promise<T> {
  const m = await Model.load(MID);
  try {
    return await fn(m);
  } finally {
    m.dispose();
  }
}

function peftAdapter(m: Model): string {
  if (adapter) return adapter;
  adapter = path.join(dir, 'adapter');
  const params = new Float32Array(loraSlots(m.info, DEFAULT_LORA.rank, DEFAULT_LORA.targets).size).map((_, i) => Math.cos(i) * 0.01);
  writePeftAdapter(adapter, m.info, { settings: DEFAULT_LORA, params, baseModel: MID });
  return adapter;
}

test('encodeRows: blocks of rows concatenate to the whole tensor converted at once, in every dtype', () => {
  const rows = 37, cols = 64;
  const src = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 11)));
  const whole = { f32: bytesOf(src), f16: bytesOf(f32ArrayToF16(src)), bf16: bytesOf(f32ArrayToBf16(src)), q8_0: quantizeQ8_0(src) };
  for (const dtype of ['f32', 'f16', 'bf16', 'q8_0'] as const) {
    const blocks = [...encodeRows(src, rows, cols, dtype, 300)];
    assert.ok(blocks.length > 5, `${dtype}: several blocks`);
    assert.deepEqual(Buffer.concat(blocks), Buffer.from(whole[dtype]), dtype);
  }
});

test('streamed GGUF exports are byte for byte the one-shot writer’s file; progress is monotone, throttled, and ends at 1', async () => {
  await withModel(async (m) => {
    for (const dtype of ['f32', 'f16', 'q8_0'] as const) {
      const out = path.join(dir, `stream-${dtype}.gguf`);
      const calls: Array<ExportProgress & { t: number }> = [];
      const r = await exportModel(m, { format: 'gguf', out, dtype, onProgress: (p) => calls.push({ ...p, t: performance.now() }) });
      const expected = ggufBytes(m.tensors(), { arch: 'llama', dtype, name: path.basename(MID), tokenizer: ggufVocabFor(m) });
      assert.ok(Buffer.from(expected).equals(fs.readFileSync(out)), `${dtype}: same bytes as writeGguf`);
      assert.equal(r.bytes, fs.statSync(out).size);
      const last = calls.at(-1)!;
      assert.equal(last.fraction, 1);
      assert.equal(last.bytesWritten, r.bytes);
      assert.equal(calls.filter((c) => c.fraction === 1).length, 1, 'one final call');
      for (let i = 1; i < calls.length; i++) {
        assert.ok(calls[i].bytesWritten >= calls[i - 1].bytesWritten, 'monotone bytes');
        assert.equal(calls[i].totalBytes, r.bytes);
        if (i < calls.length - 1) assert.ok(calls[i].t - calls[i - 1].t >= 99, 'at most about 10 calls a second');
      }
      assert.ok(calls[0].fraction < 1, 'the first call comes with the first bytes');
    }
    // a Hugging Face folder: the bytes reported are the folder's
    const hf = path.join(dir, 'stream-hf');
    let lastP: ExportProgress | undefined;
    const r = await exportModel(m, { format: 'hf', out: hf, shardBytes: 4e6, onProgress: (p) => { lastP = p; } });
    assert.equal(r.bytes, sizeOf(hf));
    assert.deepEqual(lastP, { bytesWritten: r.bytes, totalBytes: r.bytes, fraction: 1 });
    assert.ok(fs.readdirSync(hf).filter((f) => f.endsWith('.safetensors')).length >= 3, 'sharded');
    const back = await Model.load(hf);
    assert.equal(back.info.nParams, paramCount(m.tensors()));
    back.dispose();
  });
});

test('a cancel mid-export (AbortController from onProgress) leaves nothing, in every format; with force the old output survives', async () => {
  await withModel(async (m) => {
    const formats: Array<[ExportFormat, string]> = [['gguf', 'cancel.gguf'], ['hf', 'cancel-hf'], ['peft', 'cancel-peft']];
    for (const [format, name] of formats) {
      const ac = new AbortController();
      const seen: number[] = [];
      const out = path.join(dir, name);
      await assert.rejects(
        exportModel(m, { format, out, shardBytes: 4e6, adapterDir: format === 'peft' ? peftAdapter(m) : undefined, signal: ac.signal,
          onProgress: (p) => { seen.push(p.fraction); ac.abort(); } }),
        (e: { code?: string }) => e.code === 'E_CANCELLED',
      );
      assert.ok(seen.length >= 1 && seen[0] < 1, `${format}: aborted mid-export (at ${seen[0]})`);
      assert.deepEqual(leftovers(dir, name), [], `${format}: nothing left`);
    }
    // --force over an existing output: the cancelled export never touches it
    const out = path.join(dir, 'keep.gguf');
    await exportModel(m, { format: 'gguf', out, dtype: 'q8_0' });
    const before = sha(out);
    const ac = new AbortController();
    await assert.rejects(exportModel(m, { format: 'gguf', out, force: true, signal: ac.signal, onProgress: () => ac.abort() }), (e: { code?: string }) => e.code === 'E_CANCELLED');
    assert.equal(sha(out), before, 'the old output is intact');
    assert.deepEqual(leftovers(dir, 'keep.gguf'), ['keep.gguf']);
    // an export cancelled before it starts writes nothing at all
    const pre = new AbortController();
    pre.abort();
    await assert.rejects(exportModel(m, { format: 'hf', out: path.join(dir, 'never'), signal: pre.signal }), (e: { code?: string }) => e.code === 'E_CANCELLED');
    assert.deepEqual(leftovers(dir, 'never'), []);
  });
});

test('a failing write or any throw leaves nothing behind; the folders an export created are removed too', async () => {
  await withModel(async (m) => {
    // the parent "folder" is a file: the write fails (E_IO) before any byte
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    await assert.rejects(exportModel(m, { format: 'gguf', out: path.join(file, 'sub', 'm.gguf') }), (e: { code?: string; message?: string }) => e.code === 'E_IO' && /a-file/.test(e.message ?? ''));
    assert.equal(fs.readFileSync(file, 'utf8'), 'x');
    // a throw in the middle (here from the progress callback) propagates as is and removes everything,
    // including the parent folders this export had to create
    const nested = path.join(dir, 'new-parent', 'deeper');
    for (const format of ['gguf', 'hf', 'peft'] as const) {
      await assert.rejects(
        exportModel(m, { format, out: path.join(nested, `boom-${format}`), adapterDir: format === 'peft' ? peftAdapter(m) : undefined, onProgress: () => { throw new Error('disk on fire'); } }),
        /disk on fire/,
      );
      assert.ok(!fs.existsSync(path.join(dir, 'new-parent')), `${format}: no parent folders left`);
    }
    // with force over an existing folder, a failure leaves the old folder as it was
    const hf = path.join(dir, 'keep-hf');
    await exportModel(m, { format: 'hf', out: hf });
    const before = sha(hf);
    await assert.rejects(exportModel(m, { format: 'hf', out: hf, force: true, dtype: 'bf16', onProgress: (p) => { if (p.fraction > 0) throw new Error('midway'); } }), /midway/);
    assert.equal(sha(hf), before);
    assert.deepEqual(leftovers(dir, 'keep-hf'), ['keep-hf']);
    // and a finished forced export does replace it
    await exportModel(m, { format: 'hf', out: hf, force: true, dtype: 'bf16' });
    assert.match(fs.readFileSync(path.join(hf, 'config.json'), 'utf8'), /"torch_dtype": "bfloat16"/);
    assert.deepEqual(leftovers(dir, 'keep-hf'), ['keep-hf']);
  });
});

test('overwrite protection: an existing output is refused without force and left untouched', async () => {
  await withModel(async (m) => {
    const out = path.join(dir, 'exists.gguf');
    fs.writeFileSync(out, 'precious');
    for (const format of ['gguf', 'hf'] as const)
      await assert.rejects(exportModel(m, { format, out }), (e: { code?: string; message?: string }) => e.code === 'E_IO' && /already exists \(use --force/.test(e.message ?? ''));
    assert.equal(fs.readFileSync(out, 'utf8'), 'precious');
    assert.deepEqual(leftovers(dir, 'exists.gguf'), ['exists.gguf']);
  });
});

test('tailor export: progress with bytes on stderr; Ctrl-C mid-export exits 130 and leaves nothing', async () => {
  // 512-wide, 6 layers: about 85 MB of F32 weights, quantized to Q8_0 in JavaScript: long enough to interrupt
  const big = modelFolder('big', 512, 6, 1536);
  const out = path.join(dir, 'interrupted.gguf');
  const child = spawn(process.execPath, [CLI, 'export', big, '--format', 'gguf', '--dtype', 'q8_0', '--out', out, '--progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let interrupted = false;
  const code = await new Promise<number | null>((resolve, reject) => {
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (!interrupted && /export\s+[\d.]+%\s+[\d.]+ [kMG]?B \/ [\d.]+ MB/.test(err)) {
        interrupted = true;
        // hold the process still while Ctrl-C is queued, so it is delivered mid-write, then let it run on
        child.kill('SIGSTOP');
        child.kill('SIGINT');
        child.kill('SIGCONT');
      }
    });
    child.on('exit', (c) => resolve(c));
    child.on('error', reject);
  });
  assert.ok(interrupted, `progress with bytes was shown (stderr: ${err.slice(-300)})`);
  assert.equal(code, 130, err.slice(-300));
  assert.match(err, /cancelled/);
  assert.deepEqual(leftovers(dir, 'interrupted.gguf'), []);
  // uninterrupted, the same command finishes with a final 100% line
  const done = spawn(process.execPath, [CLI, 'export', MID, '--format', 'gguf', '--dtype', 'f16', '--out', out, '--progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err2 = '';
  done.stderr.on('data', (d: Buffer) => { err2 += d.toString(); });
  assert.equal(await new Promise((resolve) => done.on('exit', resolve)), 0, err2);
  assert.match(err2, /export\s+100\.0%\s+([\d.]+ MB) \/ \1/);
});

test('lazyTensors (what exports, merges and full fine-tuning write from): the weights of tensors(), read one tensor at a time', async () => {
  const m = await Model.load(shared('models', 'stories260K', 'stories260K.gguf'), { noTokenizer: true });  // untied head
  const lazy = m.lazyTensors();
  const eager = m.tensors();
  assert.deepEqual({ ...lazy, layers: lazy.layers.map((l) => ({ ...l })) }, eager);
  assert.ok(lazy.lmHead !== null && lazy.lmHead.length === m.info.vocabSize * m.info.dim);
  // nothing is kept: each read is a fresh copy, and writing into one changes neither the model nor the next read
  const a = lazy.layers[2].wq, b = lazy.layers[2].wq;
  assert.notEqual(a, b);
  a.fill(0);
  assert.deepEqual(lazy.layers[2].wq, eager.layers[2].wq);
  assert.deepEqual(m.tensors().layers[2].wq, eager.layers[2].wq);
  const raw = m.rawHandle();
  assert.throws(() => raw.tensors({ layer: 0, name: 'bogus' as 'wq' }), (e: unknown) => (e as { code?: string }).code === 'E_ARG');
  assert.throws(() => raw.tensors({ layer: 99, name: 'wq' }), (e: unknown) => (e as { code?: string }).code === 'E_ARG');
  m.dispose();
  assert.throws(() => lazy.layers[0].wq, /disposed/);
});
