// Malformed and hostile model files: each gets its typed EngineError from the loader — never a crash or
// an out-of-bounds read. The same files then go through the parsers built with AddressSanitizer and
// UndefinedBehaviorSanitizer (tailor_probe), which must report nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model, EngineError, inspectModel } from '../electron/core/engine/engine.js';
import { hostileCases, validCases } from './helpers/hostile.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';
import { sanitizerBuildAsync } from './helpers/sanitizers.js';

const dir = tempDir('tailor-hostile-');
// leaks too: a parser that gives up must free what it had read
const ASAN_ENV = { ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1:halt_on_error=1', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' };
const cases = hostileCases().map((c) => ({ ...c, path: c.make(path.join(dir, c.name)) }));
const valid = validCases().map((c) => ({ ...c, path: c.make(path.join(dir, c.name)) }));

test('the uncorrupted base files load (the control for every hostile case)', async () => {
  for (const v of valid) {
    const m = await Model.load(v.path, { noTokenizer: true });
    assert.ok(m.info.nParams > 0, v.name);
    m.dispose();
  }
});

test(`every hostile file (${cases.length}) is refused with its typed error`, async () => {
  assert.ok(cases.length >= 40);
  const wrong: string[] = [];
  for (const c of cases) {
    try {
      const m = await Model.load(c.path, { noTokenizer: true });
      m.dispose();
      wrong.push(`${c.name}: loaded without error`);
    } catch (e) {
      assert.ok(e instanceof EngineError, `${c.name}: ${String(e)} is not an EngineError`);
      if (e.code !== c.expectCode) wrong.push(`${c.name}: ${e.code} (${e.message}), expected ${c.expectCode}`);
      assert.ok(e.message.length > 10, `${c.name}: the message says what is wrong`);
    }
  }
  assert.deepEqual(wrong, []);
});

/** Seeded random mutations of the valid files: flipped bytes in the headers and random truncations. */
function mutants(count: number): string[] {
  let x = 0x9e3779b9;
  const rnd = (n: number) => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x % n;
  };
  const out: string[] = [];
  const mdir = path.join(dir, 'mutants');
  fs.mkdirSync(mdir, { recursive: true });
  const sources = valid.filter((v) => v.format !== 'hf').map((v) => v.path);
  const hf = valid.find((v) => v.name === 'valid-hf')!.path;
  for (let i = 0; i < count; i++) {
    const isHf = i % 3 === 2;
    const src = isHf ? path.join(hf, 'model.safetensors') : sources[i % sources.length];
    const bytes = new Uint8Array(fs.readFileSync(src));
    const headerEnd = Math.min(bytes.length, 4096);
    let data: Uint8Array = bytes;
    if (rnd(4) === 0) data = bytes.subarray(0, rnd(bytes.length));
    else for (let k = 0, n = 1 + rnd(8); k < n; k++) data[rnd(headerEnd)] = rnd(256);
    if (isHf) {
      const d = path.join(mdir, `hf${i}`);
      fs.mkdirSync(d);
      fs.copyFileSync(path.join(hf, 'config.json'), path.join(d, 'config.json'));
      fs.writeFileSync(path.join(d, 'model.safetensors'), data);
      out.push(d);
    } else {
      const f = path.join(mdir, `m${i}${path.extname(src)}`);
      fs.writeFileSync(f, data);
      out.push(f);
    }
  }
  return out;
}

test('inspectModel (how the library looks at a file: no weights decoded) refuses what a load refuses and describes what it loads', async () => {
  const wrong: string[] = [];
  for (const c of cases) {
    try {
      await inspectModel(c.path, { noTokenizer: true });
      wrong.push(`${c.name}: inspected without error`);
    } catch (e) {
      assert.ok(e instanceof EngineError, `${c.name}: ${String(e)} is not an EngineError`);
      if (e.code !== c.expectCode) wrong.push(`${c.name}: ${e.code} (${e.message}), expected ${c.expectCode}`);
    }
  }
  assert.deepEqual(wrong, []);
  for (const v of [...valid.map((x) => x.path), shared('models', 'stories260K', 'stories260K.gguf')]) {
    const m = await Model.load(v, { noTokenizer: true });
    try {
      const { backend: _b, threads: _t, backendKind: _k, backendRequested: _r, backendAutoPick: _a, backendNote: _n, kvBf16HeadDims: _kv, hostWeights: _h, hostResidentBytes: _hr, ...fromLoad } = m.info;
      assert.deepEqual(await inspectModel(v, { noTokenizer: true }), fromLoad, v);
    } finally {
      m.dispose();
    }
  }
  const g = await inspectModel(shared('models', 'stories260K', 'stories260K.gguf'));
  assert.equal(g.tokenizer, 'gguf-llama', 'the embedded tokenizer is found from the metadata');
});

test('hostile and valid files under AddressSanitizer + UBSan: no report, same verdicts', { timeout: 600_000 }, async () => {
  const run = await sanitizerBuildAsync('asan', ['tailor_probe']);
  const paths = [...valid.map((v) => v.path), ...cases.map((c) => c.path)];
  const r = await run('tailor_probe', ['load', ...paths], ASAN_ENV);
  assert.equal(r.stderr.includes('Sanitizer'), false, r.stderr.slice(0, 4000));
  assert.equal(r.status, 0, r.stderr.slice(0, 4000));
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, paths.length);
  valid.forEach((v, i) => assert.match(lines[i], /^OK /, v.name));
  cases.forEach((c, i) => assert.ok(lines[valid.length + i].startsWith(`ERROR ${c.expectCode} `), `${c.name}: ${lines[valid.length + i]}`));

  // 300 seeded mutations: any verdict is fine, a sanitizer report or a crash is not
  const muts = mutants(300);
  const f = await run('tailor_probe', ['load', ...muts], ASAN_ENV);
  assert.equal(f.stderr.includes('Sanitizer'), false, f.stderr.slice(0, 4000));
  assert.equal(f.status, 0, f.stderr.slice(0, 4000));
  const verdicts = f.stdout.trim().split('\n');
  assert.equal(verdicts.length, muts.length);
  for (const v of verdicts) assert.match(v, /^(OK \S+ \d+|ERROR E_(FORMAT|UNSUPPORTED|SHAPE|IO) .+)$/);
  assert.ok(verdicts.filter((v) => v.startsWith('ERROR')).length > 100, 'most mutants are refused');
});

// The loader's hooks (which the addon uses to copy each tensor to a GPU while the next is read): the same
// ASan + UBSan build checks their contract on every format, and a load cancelled from a hook stops there.
test('load hooks under AddressSanitizer + UBSan: progress to the last byte, each range final when reported, cancel; released host weights read back bit for bit; packed scoring batches refused unless whole', { timeout: 600_000 }, async () => {
  const run = await sanitizerBuildAsync('asan', ['tailor_probe']);
  const probe = (args: string[]) => run('tailor_probe', args, ASAN_ENV);
  // the real rotate-half HF model: its q/k rows are permuted before they are reported
  const paths = [...valid.map((v) => v.path), path.join(REPO_ROOT, 'resources', 'models', 'stories260K')];
  for (const p of paths) {
    const r = await probe(['hooks', p]);
    assert.equal(r.status, 0, r.stderr.slice(0, 4000));
    assert.match(r.stdout.trim(), /^HOOKS allocated=1 tensors=\d+ bytes=[1-9]\d* progress=ok final=ok disjoint=ok inside=ok uncovered=0$/, p);
    const c = await probe(['hooks', p, '2']);
    assert.equal(c.status, 0, c.stderr.slice(0, 4000));
    assert.match(c.stdout.trim(), /^ERROR E_CANCELLED after 2 tensors \(0 after the cancel\)/, p);
    // a load that hands its host pages back (as the addon's does on a GPU): each tensor read again from the file
    const rel = await probe(['release', p]);
    assert.equal(rel.status, 0, rel.stderr.slice(0, 4000) + rel.stdout);
    assert.match(rel.stdout.trim(), /^RELEASE released=ok resident=ok read=ok held=ok merged=ok restored=ok /, p);
  }
  // scoring's packed KV cache: a batch whose sequences are not whole, or whose shared prefixes are not copied
  // from rows that hold them, is a clear E_ARG before anything is computed
  const b = await probe(['batches', valid[0].path]);
  assert.equal(b.status, 0, b.stderr.slice(0, 4000));
  const verdicts = Object.fromEntries(b.stdout.trim().split('\n').map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)]));
  for (const ok of ['whole', 'shared-prefix', 'two-segments']) assert.equal(verdicts[ok], 'OK', ok);
  const refused = ['copy-of-copied-rows', 'gap-before-tokens', 'not-from-0', 'out-of-order', 'overlapping', 'past-the-rows', 'copy-from-later-rows',
    'copy-of-unwritten-rows', 'copy-onto-tokens', 'two-copies-one-slot', 'copy-past-the-rows', 'copies-without-packing'];
  for (const bad of refused) assert.match(verdicts[bad] ?? 'missing', /^ERROR E_ARG (a packed KV cache needs each sequence of a batch whole|KV-cache row copies need a packed cache)/, bad);
  assert.match(verdicts['negative-position'] ?? 'missing', /^ERROR E_ARG position -1 is negative/);
  assert.equal(Object.keys(verdicts).length, 16);
});

// A load that releases its host weights (CUDA) sizes its arena as an address range only: a model whose fp32
// weights exceed this machine's memory (LLaMA-7B's 25 GiB on a 16 GB desktop) still loads onto the GPU. A
// plain arena keeps the system's accounting, so that on the CPU a model too big for memory is a clean E_OOM.
test('a released arena is an address range: larger than memory and swap it is granted, a plain one is E_OOM', (t) => {
  const probe = path.join(REPO_ROOT, 'native', 'build', 'tailor_probe');
  const swap = Number(/SwapTotal:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  const gib = Math.ceil((os.totalmem() + swap) / 2 ** 30) + 8;
  const r = spawnSync(probe, ['reserve', String(gib)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const m = /^RESERVE bytes=(\d+) layers=\d+ plain=(\S+) reserve=(\S+) resident_after_one_tensor=(-?\d+)$/.exec(r.stdout.trim());
  assert.ok(m, r.stdout);
  t.diagnostic(r.stdout.trim());
  assert.ok(Number(m[1]) > os.totalmem() + swap, 'the arena is larger than memory and swap together');
  assert.equal(m[3], 'ok', 'the released load\'s arena is granted');
  assert.equal(Number(m[4]), 64 * 2 ** 20, 'and only the pages written are resident: one 4096 × 4096 fp32 tensor');
  const mode = fs.readFileSync('/proc/sys/vm/overcommit_memory', 'utf8').trim();
  if (mode === '0') assert.equal(m[2], 'E_OOM', 'heuristic overcommit refuses a plain arena this large: a clean E_OOM');
  else t.diagnostic(`vm.overcommit_memory=${mode}: the plain arena's verdict (${m[2]}) depends on the system's policy`);
});
