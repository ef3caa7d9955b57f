// CUDA: what engineInfo says about the build and the machine, the `backend` load option (without a usable
// device 'auto' runs on the CPU and 'cuda' is a clear E_UNSUPPORTED saying why; with one both run inference
// on the CUDA backend, matching the CPU within 1e-4), and the CUDA kernels and whole models against the CPU
// backend (tailor_cudacheck, built with the CUDA kernels). On a machine without a usable GPU the parity
// check is skipped, visibly, with the reason; on a GPU machine it must pass. Everywhere, the same CUDA
// sources also run on the CPU emulator (native/test/cuemu: tailor_cuemu_selftest for the emulator itself,
// tailor_cudacheck_emu for the kernels' indexing, bounds, barriers and whole-model parity, as sm_80 and
// as sm_75), which catches logic errors without a GPU but says nothing of speed or the hardware; its
// AddressSanitizer build stands in for compute-sanitizer's memcheck and its ThreadSanitizer build for racecheck.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EngineError, Model, engineInfo } from '../electron/core/engine/engine.js';
import { DEFAULT_TRAIN, Trainer } from '../electron/core/train/trainer.js';
import { promptCompletionExamples } from '../electron/core/train/data.js';
import { REPO_ROOT, shared } from './helpers/paths.js';
import { type Sanitizer, sanitizerBuildAsync } from './helpers/sanitizers.js';
import { type Finished, runAsync, startedOnce } from './helpers/spawn.js';

const CLI = path.join(REPO_ROOT, 'dist', 'electron', 'core', 'cli', 'main.js');
const CUDACHECK = path.join(REPO_ROOT, 'native', 'build', 'tailor_cudacheck');
const CUDACHECK_EMU = path.join(REPO_ROOT, 'native', 'build', 'tailor_cudacheck_emu');
const CUEMU_SELFTEST = path.join(REPO_ROOT, 'native', 'build', 'tailor_cuemu_selftest');
const HF = shared('models', 'stories260K-hf');
// `npm run test:gpu` (bench/test-gpu.sh) sets TAILOR_TEST_GPU=1: the emulator's rows, which every `npm test` runs
// already and which take minutes of CPU, are skipped there, visibly, so that a lent GPU's minutes go to the GPU
const ON_EMULATOR = process.env.TAILOR_TEST_GPU === '1' ? 'emulator rows: run by npm test; skipped under npm run test:gpu to keep the device time for the device' : false;
const TEXT = path.join(REPO_ROOT, 'resources', 'data', 'tinystories-validation-head.txt');
// every kernel the two emulator runs below launch, with its block size (the emulator's CUEMU_LAUNCH_LOG), for
// the resources test after them; ptxas's account of the same kernels is filed by the build (test/ptxas-log.sh)
const LAUNCH_LOG = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tailor-launches-')), 'launches.txt');
process.on('exit', () => fs.rmSync(path.dirname(LAUNCH_LOG), { recursive: true, force: true }));
const RESOURCES = path.join(REPO_ROOT, 'native', 'build', 'cuda-resources');

function tailor(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The message a 'cuda' request must fail with on this machine, from engineInfo's own account (null: it runs). */
function expectedCudaRefusal(): RegExp | null {
  const c = engineInfo().cuda;
  if (!c.built) return /CUDA backend is not available: not built with CUDA/;
  if (!c.available) return /CUDA backend is not available: /;
  return null;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** What engineInfo's architectures (CMake's list, "-real" dropped, commas) must be: the shipped five, or under
 * `npm run test:gpu`, which builds for its GPU alone and says so in TAILOR_TEST_CUDA_ARCHS (e.g. "90-real"),
 * that list; for CMake's "native" the word itself or whatever numbers CMake put in its place. */
function builtArchitectures(): RegExp {
  const asked = process.env.TAILOR_TEST_CUDA_ARCHS;
  if (!asked) return /^75,80,86,89,90$/;
  if (asked === 'native') return /^(native|\d+(,\d+)*)$/;
  return new RegExp(`^${asked.split(';').map((a) => a.replace(/-real$/, '')).join(',')}$`);
}

test('engineInfo reports the CUDA build and, when it cannot be used, why', () => {
  const e = engineInfo();
  const c = e.cuda;
  assert.equal(typeof c.built, 'boolean');
  assert.equal(e.cudaBuilt, c.built, 'cudaBuilt is kept for compatibility and equals cuda.built');
  assert.equal(c.available, c.devices.some((d) => d.supported));
  if (c.available) {
    assert.equal(c.reason, null);
    for (const d of c.devices) {
      assert.match(d.computeCapability, /^\d+\.\d+$/);
      assert.ok(d.totalMemory > 0 && d.freeMemory > 0 && d.freeMemory <= d.totalMemory, `${d.name}: memory ${d.freeMemory}/${d.totalMemory}`);
    }
  } else {
    assert.ok(typeof c.reason === 'string' && c.reason.length > 0, 'a reason when CUDA is not available');
  }
  if (c.built) {
    assert.match(c.architectures ?? '', builtArchitectures(), 'the kernels\' architectures: sm_75 … sm_90, or what test:gpu built for its GPU');
    assert.match(c.runtimeVersion ?? '', /^\d+\.\d+$/);
    // a machine without the NVIDIA driver: the CUDA build still loads and runs (static cudart), and says why
    // (the emulator's addon, which rehearses these tests' device branches, has its device without a driver)
    if (!fs.existsSync('/dev/nvidiactl') && !fs.existsSync('/dev/nvidia0') && c.architectures !== 'emulated') {
      assert.equal(c.available, false);
      assert.equal(c.driverVersion, null);
      assert.match(c.reason ?? '', /no CUDA driver|no device|older than|CUDA error/);
    }
  } else {
    assert.match(c.reason ?? '', /^not built with CUDA \(/);
    assert.equal(c.architectures, null);
  }
});

test("backend 'cuda' is a clear E_UNSUPPORTED without a device (never a crash); 'auto' says what it picked", async () => {
  const refusal = expectedCudaRefusal();
  const ids = [[1, 403, 407, 261, 378, 429, 411, 283, 300, 2]];
  if (refusal) {
    await assert.rejects(Model.load(HF, { backend: 'cuda' }), (e: unknown) => {
      assert.ok(e instanceof EngineError);
      assert.equal(e.code, 'E_UNSUPPORTED');
      assert.match(e.message, refusal);
      assert.match(e.message, /use backend 'cpu' or 'auto'/);
      return true;
    });
  } else {
    // a usable device: 'cuda' runs inference there, within 1e-4 of the CPU
    const gpu = await Model.load(HF, { backend: 'cuda' });
    const cpu = await Model.load(HF, { backend: 'cpu' });
    try {
      assert.equal(gpu.info.backendKind, 'cuda');
      assert.match(gpu.info.backend, /^cuda \(device \d+, /);
      const [a] = await gpu.score(ids);
      const [b] = await cpu.score(ids);
      assert.ok(maxAbsDiff(a.logprob, b.logprob) <= 1e-4, `log-probs within 1e-4 of the CPU (${maxAbsDiff(a.logprob, b.logprob)})`);
    } finally {
      gpu.dispose();
      cpu.dispose();
    }
  }
  await assert.rejects(Model.load(HF, { backend: 'gpu' as never }), (e: unknown) => e instanceof EngineError && e.code === 'E_ARG' && /'auto', 'cpu' or 'cuda'/.test(e.message));

  const cpu = await Model.load(HF, { backend: 'cpu' });
  const auto = await Model.load(HF, { backend: 'auto' });
  const dflt = await Model.load(HF);
  try {
    assert.equal(cpu.info.backendKind, 'cpu');
    assert.equal(cpu.info.backendRequested, 'cpu');
    assert.equal(cpu.info.backendNote, null);
    const onGpu = engineInfo().cuda.available;
    for (const m of [auto, dflt]) {
      assert.equal(m.info.backendKind, onGpu ? 'cuda' : 'cpu', 'auto runs on CUDA when a device is usable, else on the CPU');
      assert.equal(m.info.backendRequested, 'auto');
      assert.equal(m.info.backendAutoPick, onGpu ? 'cuda' : 'cpu');
      assert.match(m.info.backendNote ?? '', onGpu ? /^auto chose CUDA \(/ : /^auto chose the CPU; /);
    }
    const [a] = await auto.score(ids);
    const [b] = await cpu.score(ids);
    if (onGpu) {
      assert.ok(maxAbsDiff(a.logprob, b.logprob) <= 1e-4, 'auto (CUDA) within 1e-4 of the CPU');
    } else {
      assert.deepEqual(Array.from(a.logprob), Array.from(b.logprob), 'auto is the CPU backend, bit for bit');
      assert.deepEqual(Array.from(a.argmax), Array.from(b.argmax));
    }
  } finally {
    cpu.dispose();
    auto.dispose();
    dflt.dispose();
  }
});

test('tailor --backend: info shows the backend and the CUDA status; without a device cuda fails clearly on info, generate, perplexity, eval', () => {
  const c = engineInfo().cuda;
  const onGpu = c.available;
  const info = tailor('info', HF, '--backend', 'auto');
  assert.equal(info.code, 0, info.err);
  assert.match(info.out, onGpu ? /^backend\s+cuda \(.*\), \d+ threads \(--backend auto: chose CUDA\)$/m : /^backend\s+cpu \(.*\), \d+ threads \(--backend auto: CUDA not available\)$/m);
  assert.match(info.out, c.built ? new RegExp(`^cuda\\s+built for sm ${c.architectures} \\(CUDA \\d+\\.\\d+\\)[;,] `, 'm') : /^cuda\s+not available: not built with CUDA/m);
  const js = tailor('info', HF, '--json');
  assert.equal(js.code, 0, js.err);
  const j = JSON.parse(js.out);
  assert.equal(j.backendKind, onGpu ? 'cuda' : 'cpu');
  assert.equal(typeof j.engine.cuda.built, 'boolean');

  const refusal = expectedCudaRefusal();
  const runs: string[][] = [
    ['info', HF],
    ['generate', HF, '--prompt', 'Once upon a time', '--max-tokens', '4'],
    ['perplexity', HF, '--text', TEXT, '--max-windows', '1'],
    ['eval', HF, '--task', 'story_cloze', '--limit', '2', '--no-history'],
  ];
  for (const args of runs) {
    const r = tailor(...args, '--backend', 'cuda');
    if (!refusal) {
      assert.equal(r.code, 0, `${args[0]} runs on CUDA: ${r.err}`);
      continue;
    }
    assert.equal(r.code, 1, `${args[0]}: ${r.err}`);
    assert.match(r.err, /error \[E_UNSUPPORTED\]/, args[0]);
    assert.match(r.err, refusal, args[0]);
    assert.doesNotMatch(r.err, /Error:|at .*\.js:\d+/, `${args[0]}: no stack trace`);
  }
  const badw = tailor('info', HF, '--weights', 'fp8');
  assert.equal(badw.code, 2);
  assert.match(badw.err, /--weights must be f32 or bf16/);
  const bfj = tailor('info', HF, '--weights', 'bf16', '--json');
  assert.equal(bfj.code, 0, bfj.err);
  const bi = JSON.parse(bfj.out);
  if (onGpu) assert.match(bi.backend, /bf16 weights/);
  else assert.match(bi.backendNote ?? '', /bf16 weights apply to CUDA only: the CPU computes in fp32/);
  const bad = tailor('perplexity', HF, '--text', TEXT, '--backend', 'gpu');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--backend must be auto, cpu or cuda/);

  const pa = tailor('perplexity', HF, '--text', TEXT, '--max-windows', '2', '--backend', 'auto', '--json');
  const pc = tailor('perplexity', HF, '--text', TEXT, '--max-windows', '2', '--backend', 'cpu', '--json');
  assert.equal(pa.code, 0, pa.err);
  assert.equal(pc.code, 0, pc.err);
  if (onGpu) {
    const [x, y] = [JSON.parse(pa.out), JSON.parse(pc.out)];
    assert.ok(Math.abs(x.mean_nll - y.mean_nll) <= 1e-4, "perplexity with 'auto' (CUDA) within 1e-4 of the CPU's");
  } else {
    assert.deepEqual(JSON.parse(pa.out), JSON.parse(pc.out), "perplexity with 'auto' is the CPU's");
  }
});

test('CUDA kernels and whole models against the CPU backend (tailor_cudacheck)', (t) => {
  const c = engineInfo().cuda;
  if (!c.built) {
    t.skip(c.reason ?? 'not built with CUDA');
    return;
  }
  if (c.architectures === 'emulated') {
    t.skip('the emulator addon: its own harness, tailor_cudacheck_emu, runs every row in the tests below');
    return;
  }
  assert.ok(fs.existsSync(CUDACHECK), `${CUDACHECK} is built with the CUDA kernels (npm run build:native)`);
  const r = spawnSync(CUDACHECK, ['--model', HF, '--golden', shared('fixtures', 'golden', 'stories260K.json'), '--random-model'], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
    timeout: 300_000,
  });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  if (r.status === 77) {
    const line = out.split('\n').find((l) => l.startsWith('no CUDA device:')) ?? out.trim();
    assert.equal(c.available, false, 'the harness skips only where engineInfo sees no usable device');
    t.skip(line);
    return;
  }
  for (const l of out.trimEnd().split('\n')) t.diagnostic(l);
  assert.equal(r.status, 0, `tailor_cudacheck failed:\n${out}`);
  assert.match(out, /\n\d+ checks, 0 failed\n/);
});

test('the CUDA emulator keeps CUDA semantics: barriers, shuffles, atomics, launch and memory errors, deadlocks, streams and events, WMMA alignment, asynchronous copies', { skip: ON_EMULATOR }, (t) => {
  assert.ok(fs.existsSync(CUEMU_SELFTEST), `${CUEMU_SELFTEST} is built (npm run build:native)`);
  const r = spawnSync(CUEMU_SELFTEST, [], { encoding: 'utf8', timeout: 60_000 });
  for (const l of (r.stdout ?? '').trimEnd().split('\n')) t.diagnostic(l);
  assert.equal(r.status, 0, `tailor_cuemu_selftest failed:\n${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /\n23 checks, 0 failed\n/);
});

// the emulator harness as sm_80 and as sm_75: each run is one thread, so both start with the first of their
// two tests and run side by side on the machine's two cores; each test awaits its own
const emulatorRun = startedOnce((cc: '80' | '75'): Promise<Finished> => {
  // sm_80: every row, stories260K and the random GQA model, products through the emulated cuBLASLt; sm_75 (no
  // bf16 tensor cores): the random model, cuBLASLt off, so whole models also run on our own kernels alone
  const args = cc === '80' ? ['--model', HF, '--random-model', '--golden', shared('fixtures', 'golden', 'stories260K.json')] : ['--random-model'];
  return runAsync(CUDACHECK_EMU, args, {
    timeoutMs: 400_000,
    env: { ...process.env, TAILOR_CUEMU_CC: cc, TAILOR_CUBLASLT: cc === '80' ? '1' : '0', CUEMU_LAUNCH_LOG: LAUNCH_LOG },
  });
});

for (const cc of ['80', '75'] as const) {
  test(`CUDA kernels, whole models, LoRA training and pruning statistics on the CPU emulator as sm_${cc} (tailor_cudacheck_emu)`, { skip: ON_EMULATOR }, async (t) => {
    assert.ok(fs.existsSync(CUDACHECK_EMU), `${CUDACHECK_EMU} is built (npm run build:native)`);
    emulatorRun('80');
    emulatorRun('75');
    const r = await emulatorRun(cc);
    const out = r.stdout + r.stderr;
    for (const l of out.trimEnd().split('\n')) t.diagnostic(l);
    assert.equal(r.status, 0, `tailor_cudacheck_emu failed:\n${out}`);
    assert.match(out, /Tailor CUDA emulator/, 'the harness ran on the emulated device');
    assert.match(out, /\n\d+ checks, 0 failed\n/);
    // the copy stream's uploads and downloads, with their event edges to the default stream, from page-locked staging only
    assert.match(out, /^copy stream\s+download after a kernel; the upload kept x_old for it .* ok$/m);
    assert.match(out, /^copy stream\s+async copies from pageable memory\s+0\s+0\s+ok$/m);
    // sampling from the device's candidates: exactly the CPU's, and the host sampler's tokens in a whole model
    assert.match(out, /^topk_scaled\s+V=128256 k=64 .* ids, ties by id \(exact\) .* ok$/m);
    assert.match(out, /^sampled generation\s+random GQA .* top_k=40: device picks = host sampler .* ok$/m);
    // the pruner's sums on the device
    assert.match(out, /^wg_term_sums\s+bf16 w \(w·g\)² per column .* ok$/m);
    // cuBLASLt (emulated by test/cuemu/cublaslt_emu.cpp): active, its products against the CPU and our kernels, every entry point ran
    if (cc === '80') {
      assert.match(out, /^cuBLASLt\s+active /m);
      assert.match(out, /^matmul cuBLASLt\s+.* ok$/m);
      assert.match(out, /^cuBLASLt vs kernels\s+.* ok$/m);
      assert.match(out, /^cuBLASLt calls\s+.*ok \(all ran\)$/m);
    } else {
      assert.match(out, /^cuBLASLt\s+not active .*TAILOR_CUBLASLT=0/m);
    }
    if (cc === '75') assert.match(out, /matmul_bf16 wmma .*n\/a \(sm_75 has no bf16 tensor cores\)/);
    else {
      // the tensor-core kernel's two block tiles, forward and the backward's dx, and operands it reads element by
      // element, or 4 bytes at a time (an even inner dimension, as pruned FFNs often have) — each way of them run
      for (const r of [/^matmul_bf16 wmma 128 .* ok$/m, /^matmul_bf16 wmma 64 .* ok$/m, /^matmul_bf16 wmma\s+.* x, W at odd addresses, element loads .* ok$/m,
        /^matmul_bf16 wmma 128 .* in=130 .*, 4-byte copies vs bf16 in .* ok$/m, /^matmul_bwd_dx_bf16w .* wmma 64, 4-byte copies dx \+= .* ok$/m,
        /^matmul wmma copies\s+element loads, 4-byte and 16-byte copies all run .* ok$/m,
        /^matmul_bwd_dx_bf16w .* wmma 128.* dx \+= .* ok$/m, /^matmul_bwd_dx_bf16w .* wmma 64.* dx \+= .* ok$/m]) assert.match(out, r);
    }
    // the training attention on bf16 tensor cores (the bf16 mode's): on sm_80 every shape, forward and backward,
    // within bf16 rounding of fp32 and close to a float64 model of its own roundings; on sm_75 not used
    if (cc === '75') assert.match(out, /^attention_tc\s+usable below sm_80 \(must not be\) .* ok/m);
    else {
      for (const hd of [16, 32, 48, 64, 80, 128]) {
        for (const part of ['out', 'lse', 'dq \\+=', 'dk \\+=', 'dv \\+=']) {
          for (const ref of ['vs fp32', 'vs bf16 model']) assert.match(out, new RegExp(`^attention_tc\\s+\\w+ \\d+/\\d+ hd=${hd} .* ${part} ${ref}\\s.* ok$`, 'm'), `attention_tc hd=${hd} ${part} ${ref}`);
        }
      }
      // and over the KV cache (prompts in the bf16 mode), a block of two slots on the fp32 path among them
      for (const hd of [16, 48, 64, 128]) {
        for (const ref of ['vs fp32', 'vs bf16 model']) assert.match(out, new RegExp(`^attention_forward_tc\\s+\\w+ \\d+/\\d+ hd=${hd} .* ${ref}\\s.* ok$`, 'm'), `attention_forward_tc hd=${hd} ${ref}`);
      }
    }
    // every attention op checks its sizes before it launches (the tensor-core ones where they are usable)
    const argOps = ['attention_forward', 'attention_forward_train', 'attention_backward', ...(cc === '75' ? [] : ['attention_forward_tc', 'attention_forward_train_tc', 'attention_backward_tc'])];
    for (const op of argOps) assert.match(out, new RegExp(`^${op}\\s+bad sizes: E_ARG, E_UNSUPPORTED, or nothing\\s.* ok$`, 'm'), `${op} argument checks`);
    // every training op has rows, and the whole-model rows ran (inference, LoRA training, pruning, allocator)
    for (const op of ['rmsnorm_forward_train', 'rmsnorm_backward', 'rope_apply', 'attention_fwd_train', 'attention_backward', 'swiglu_backward',
      'embedding_backward', 'lora_dropout', 'sum_squares', 'adamw_step']) {
      assert.match(out, new RegExp(`^${op}\\b.* ok$`, 'm'), `${op} rows`);
    }
    const models = cc === '80' ? ['stories260K-hf', 'random GQA'] : ['random GQA'];
    for (const m of models) {
      for (const row of ['greedy generation', 'LoRA training', 'LoRA on bf16 weights', 'pruning statistics', 'pruning selection']) {
        assert.match(out, new RegExp(`^${row}\\s+${m}.* ok( \\(.*\\))?$`, 'm'), `${row} on ${m}`);
      }
    }
    // weights copied while the model loads (the addon's load): the same device copy as binding after the load
    if (cc === '80') {
      for (const w of ['fp32', 'bf16']) assert.match(out, new RegExp(`^streamed load\\s+stories260K-hf ${w}: logits vs bound after the load\\s+0\\.000e\\+00 .* ok \\(\\d+ parts\\)$`, 'm'));
      assert.match(out, /^streamed load\s+stories260K-hf cancelled after 3 tensors .* ok \(E_CANCELLED, copy refused: yes\)$/m);
    }
    for (const w of ['fp32', 'bf16']) assert.match(out, new RegExp(`^streamed load\\s+random GQA .* ${w}: parts last-first vs whole\\s+0\\.000e\\+00 .* ok`, 'm'));
    assert.match(out, /^caching allocator\s+a request beyond the device is E_OOM .* ok$/m);
    // bf16 weights: each product exact (op rows), the model within bf16 rounding, golden argmax identical
    assert.match(out, /^matmul_bf16w (tiled|wmma) .* ok$/m);
    // and its KV cache in bf16: half the bytes; prompts (tensor cores) and decoding (the fp32 kernel widening the
    // cache's values) within bf16 rounding of a CPU whose cache rounds the same way
    for (const m of models) {
      for (const what of ['logits', 'decoded']) {
        assert.match(out, new RegExp(`^bf16 weights\\s+${m}[^\\n]* ${what} (\\|GPU − CPU bf16 ref\\||vs CPU bf16 ref).* ok`, 'm'), `${m} ${what}`);
      }
      // halved where the tensor-core attention takes the head size (the random model's 16 on sm_80), not for
      // stories260K's head_dim 8 nor on sm_75, where nothing else rounds the keys and values
      const halved = m === 'random GQA' && cc !== '75';
      assert.match(out, new RegExp(`^bf16 weights\\s+${m}[^\\n]* KV cache bytes / fp32 cache's\\s+${halved ? '5\\.000e-01' : '1\\.000e\\+00'} .* ok \\((bf16|fp32) cache`, 'm'));
    }
    for (const r of [/^kv_store\s+.*, bf16 cache .* ok$/m, /^kv_copy\s+.*, bf16 cache .* ok$/m, /^attention_forward\s+GQA 32\/8 hd=128 decode T=1 @100, bf16 cache .* ok$/m,
      // decoding over a long cache, its keys split among blocks and merged (flash-decoding), both caches
      /^attention_forward\s+GQA 32\/8 hd=128 decode T=1 @1500 \(ctx 2048\), 8 splits .* ok$/m, /^attention_forward\s+GQA 32\/8 hd=128 decode T=1 @1500 \(ctx 2048\), bf16 cache, 8 splits .* ok$/m,
      /^attention_forward\s+GQA 8\/2 hd=64 decode 3 slots T=3 @700,40,1023 \(ctx 1024\), 4 splits .* ok$/m]) {
      assert.match(out, r);
    }
    if (cc !== '75') {
      assert.match(out, /^attention_forward_tc\s+GQA 4\/2 hd=64 prefill T=120 \(slot 1\), bf16 cache = fp32 cache \(blocks of one slot\)\s+0\.000e\+00 .* ok$/m);
      assert.match(out, /^attention_forward_tc\s+GQA 6\/3 hd=48 .* bf16 cache \(blocks of several slots\) vs CPU .* ok$/m);
    }
    // the bf16 weights' products go through cuBLASLt where it is active (the emulated one is, on sm_80): inference,
    // and training's forward and dx; elsewhere the rows say which kernel ran
    for (const m of models) {
      if (cc === '80') {
        assert.match(out, new RegExp(`^bf16 weights\\s+${m} .*weight products through cuBLASLt .* ok`, 'm'));
        assert.match(out, new RegExp(`^LoRA on bf16 weights\\s+${m} .*products through cuBLASLt .* ok`, 'm'));
      } else {
        assert.match(out, new RegExp(`^bf16 weights\\s+${m} .*weight products\\s+the tiled kernel \\(cuBLASLt: off`, 'm'));
      }
    }
    if (cc === '80') {
      for (const g of ['once_upon_a_time', 'tinystories_64', 'random_96']) {
        assert.match(out, new RegExp(`^bf16 weights\\s+stories260K-hf golden ${g} argmax differing .* ok$`, 'm'));
      }
    }
  });
}

// test:gpu measures the 7B memory plan (docs/memory-plan.md) with tailor_cudacheck --memory-plan 7b on the GPU;
// the same code (a random model bound in bf16, one LoRA step, a Taylor pass, an evaluation batch with a shared
// prefix, the allocator's accounting of each) runs here on the emulator at its tiny shape, so that it cannot
// rot where no GPU is
test('the memory plan\'s measurement (tailor_cudacheck --memory-plan) on the emulator at its tiny shape: every part measured', { skip: ON_EMULATOR }, async (t) => {
  assert.ok(fs.existsSync(CUDACHECK_EMU), `${CUDACHECK_EMU} is built (npm run build:native)`);
  const r = await runAsync(CUDACHECK_EMU, ['--memory-plan', 'tiny'], { timeoutMs: 120_000, env: { ...process.env, TAILOR_CUBLASLT: '0' } });
  const out = r.stdout + r.stderr;
  for (const l of out.trimEnd().split('\n')) t.diagnostic(l);
  assert.equal(r.status, 0, `tailor_cudacheck_emu --memory-plan tiny failed:\n${out}`);
  assert.match(out, /^memory plan: one LoRA step, loss \d+\.\d+, /m);
  assert.match(out, /^memory plan: evaluation batch of 250 computed tokens over 400 positions \(150 shared\)/m);
  for (const part of ['weights \\(bf16, norms fp32\\)', 'LoRA params \\+ grads', 'one training step above', 'Taylor importance pass', 'evaluation batch, all included']) {
    const m = new RegExp(`^${part}.*?\\s(\\d+\\.\\d+)\\s+-$`, 'm').exec(out);
    assert.ok(m, `${part}: a measured line`);
    assert.ok(Number(m[1]) > 0, `${part}: measured ${m[1]} GiB`);
  }
});

// What the emulator cannot see: each kernel's registers and static shared memory against the hardware's per-block
// limits, for every architecture built. The build files ptxas's account of every kernel (nvcc --resource-usage,
// native/build/cuda-resources/); the emulator runs above logged the block size of every launch. A block whose warps
// need more than the 65,536 registers an SM gives one block (registers go to a warp in units of 256), or more than
// 48 KiB of static shared memory, is refused on a GPU ("too many resources requested for launch"): here it fails,
// before a GPU's minutes are spent on it. Every compiled kernel must also have been launched (none unchecked).
test("every CUDA kernel fits the hardware's per-block limits at every architecture built (ptxas's registers and shared memory, the emulator's block sizes)", (t) => {
  if (ON_EMULATOR) return t.skip(ON_EMULATOR);
  if (!fs.existsSync(RESOURCES)) return t.skip(`no ${RESOURCES}: the engine was built without CUDA (nvcc)`);
  assert.ok(fs.existsSync(LAUNCH_LOG), 'the emulator runs above logged their launches');
  const threads = new Map<string, number>(); // kernel → the largest block it is launched with
  for (const l of fs.readFileSync(LAUNCH_LOG, 'utf8').trim().split('\n')) {
    const m = /^(.*) (\d+)$/.exec(l);
    assert.ok(m, `launch log line: ${l}`);
    const name = m[1].replace(/[()]/g, '').replace(/<.*$/, '').trim();
    threads.set(name, Math.max(threads.get(name) ?? 0, Number(m[2])));
  }
  // ptxas: "Compiling entry function 'MANGLED' for 'sm_XX'", then its spills and "Used N registers, … M bytes smem"
  const usage: { arch: string; mangled: string; regs: number; smem: number; spills: number }[] = [];
  for (const f of fs.readdirSync(RESOURCES).filter((x) => x.endsWith('.txt'))) {
    for (const l of fs.readFileSync(path.join(RESOURCES, f), 'utf8').split('\n')) {
      const e = /Compiling entry function '([^']+)' for 'sm_(\d+)'/.exec(l);
      if (e) usage.push({ arch: e[2], mangled: e[1], regs: NaN, smem: 0, spills: 0 });
      const cur = usage.at(-1);
      if (!cur) continue;
      const sp = /(\d+) bytes spill stores/.exec(l);
      if (sp) cur.spills = Number(sp[1]);
      const u = /Used (\d+) registers/.exec(l);
      if (u) cur.regs = Number(u[1]);
      const sm = /(\d+) bytes smem/.exec(l);
      if (u && sm) cur.smem = Number(sm[1]);
    }
  }
  const archs = new Set(usage.map((u) => u.arch));
  for (const a of (engineInfo().cuda.architectures ?? '').split(',').filter(Boolean)) assert.ok(archs.has(a.trim()), `ptxas's account for sm_${a}`);
  // the kernel's own name: "void tailor::cuda::(anonymous namespace)::gemm_tiled_kernel<float, float>(float*, …)" → gemm_tiled_kernel
  const demangled = spawnSync('c++filt', { input: usage.map((u) => u.mangled).join('\n'), encoding: 'utf8' }).stdout.split('\n');
  const nameOf = (i: number): string => {
    const m = /([A-Za-z_]\w*)(<[^()]*>)?\(/.exec((demangled[i] || usage[i].mangled).replace(/\(anonymous namespace\)::/g, ''));
    return m ? m[1] : usage[i].mangled;
  };
  const REGS_PER_BLOCK = 65536, SMEM_STATIC = 48 * 1024;
  const problems: string[] = [];
  const unlaunched = new Set<string>();
  const byName = new Map<string, { regs: number; smem: number; spills: number }>();
  usage.forEach((u, i) => {
    const name = nameOf(i);
    assert.ok(Number.isFinite(u.regs), `ptxas gave no register count for ${u.mangled} (sm_${u.arch})`);
    const e = byName.get(name) ?? { regs: 0, smem: 0, spills: 0 };
    byName.set(name, { regs: Math.max(e.regs, u.regs), smem: Math.max(e.smem, u.smem), spills: Math.max(e.spills, u.spills) });
    const n = threads.get(name);
    if (n === undefined) return void unlaunched.add(name);
    const regs = Math.ceil(n / 32) * Math.ceil((u.regs * 32) / 256) * 256;
    if (regs > REGS_PER_BLOCK) problems.push(`${name} (sm_${u.arch}): ${u.regs} registers × ${n} threads = ${regs} > ${REGS_PER_BLOCK}`);
    if (u.smem > SMEM_STATIC) problems.push(`${name} (sm_${u.arch}): ${u.smem} bytes of static shared memory > ${SMEM_STATIC}`);
  });
  for (const [name, e] of [...byName].sort()) {
    const n = threads.get(name) ?? 0;
    const share = n ? `${((100 * Math.ceil(n / 32) * Math.ceil((e.regs * 32) / 256) * 256) / REGS_PER_BLOCK).toFixed(0)} % of a block's registers` : 'not launched';
    t.diagnostic(`${name.padEnd(32)} ${String(n || '-').padStart(4)} threads  ≤${String(e.regs).padStart(3)} regs (${share})  ${String(e.smem).padStart(5)} B smem  spills ≤${e.spills} B`);
  }
  t.diagnostic(`architectures: sm ${[...archs].sort().join(', ')}`);
  assert.deepEqual(problems, [], problems.join('\n'));
  assert.deepEqual([...unlaunched].sort(), [], 'kernels compiled but never launched by the emulator runs (unchecked)');
  assert.ok(byName.size >= 30, `${byName.size} kernels found`);
});

test('LoRA training on the CUDA backend follows the CPU loss curve (GPU machines only)', async (t) => {
  const c = engineInfo().cuda;
  if (!c.available) {
    t.skip(`no usable CUDA device: ${c.reason}`);
    return;
  }
  const gpu = await Model.load(HF, { backend: 'cuda' });
  const cpu = await Model.load(HF, { backend: 'cpu' });
  try {
    const recs = [{ prompt: 'The cat is', completion: ' red.' }, { prompt: 'The dog is', completion: ' blue.' }, { prompt: 'The bird is', completion: ' green.' }];
    const ex = promptCompletionExamples(cpu.requireTokenizer(), recs, { eos: false });
    const settings = { ...DEFAULT_TRAIN, lora: { ...DEFAULT_TRAIN.lora, dropout: 0.1 }, optim: { ...DEFAULT_TRAIN.optim, lr: 1e-2 }, epochs: 6, batch: 2, microBatch: 1, seed: 3 };
    const curves: number[][] = [];
    for (const m of [cpu, gpu]) {
      const tr = Trainer.create(m, settings, ex);
      const losses: number[] = [];
      await tr.run({ onStep: (s) => losses.push(s.loss) });
      assert.match(tr.info().backend, m === gpu ? /^cuda / : /^cpu /);
      tr.dispose();
      curves.push(losses);
    }
    const bf = await Model.load(HF, { backend: 'cuda', weights: 'bf16' });
    try {
      assert.match(bf.info.backend, /bf16 weights/);
      const ids = [[1, 403, 407, 261, 378, 429, 411, 283, 300, 2]];
      const [a] = await bf.score(ids);
      const [b] = await cpu.score(ids);
      assert.deepEqual(Array.from(a.argmax), Array.from(b.argmax), 'bf16 weights: argmax identical');
    } finally {
      bf.dispose();
    }
    for (let i = 0; i < curves[0].length; i++) {
      const rel = Math.abs(curves[1][i] - curves[0][i]) / Math.abs(curves[0][i]);
      assert.ok(rel <= 1e-4, `step ${i + 1}: GPU loss ${curves[1][i]} vs CPU ${curves[0][i]} (rel ${rel})`);
    }
  } finally {
    gpu.dispose();
    cpu.dispose();
  }
});

// the emulator's programs built with a sanitizer (test/helpers/sanitizers.ts); a run gives its exit status and
// its output, stdout and stderr together. Each run is one thread: the two ASan runs go side by side, and the
// ThreadSanitizer tree builds while they do (the two trees' builds and runs were half of this file's time)
type TreeRun = (exe: string, args: string[], env: Record<string, string>) => Promise<{ status: number | null; out: string }>;
const TREE_TARGETS: Record<Sanitizer, string[]> = { asan: ['tailor_cudacheck_emu'], tsan: ['tailor_cuemu_selftest', 'tailor_cudacheck_emu'] };
const sanitizerTree = startedOnce((kind: Sanitizer): Promise<TreeRun> =>
  sanitizerBuildAsync(kind, TREE_TARGETS[kind]).then((run) => async (exe: string, args: string[], env: Record<string, string>) => {
    const r = await run(exe, args, env);
    return { status: r.status, out: r.stdout + r.stderr };
  }));

test('every CUDA kernel under AddressSanitizer + UBSan on the emulator: no out-of-bounds access (memcheck without a GPU)', { timeout: 900_000, skip: ON_EMULATOR }, async (t) => {
  // device memory is host memory on the emulator, allocated to the byte: a kernel reading or writing past a
  // buffer is a heap-buffer-overflow report; our own kernels (cuBLASLt off), and the products with it on.
  // --memcheck leaves out the two LLaMA-sized cases (T=64 in=2048 out=5632, fp32 and bf16): their paths are the
  // smaller cases' (tiles, 16-byte copies), they took half of each run, and the emulator's plain run computes them
  const run = await sanitizerTree('asan');
  sanitizerTree('tsan'); // the next test's tree, built while the runs below use a core each
  // the harness under the sanitizers: no report, a clean exit, its output
  const sanitized = async (args: string[], cublaslt: '0' | '1'): Promise<string> => {
    const { status, out } = await run('tailor_cudacheck_emu', args, {
      TAILOR_CUBLASLT: cublaslt,
      ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
      UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1',
    });
    assert.equal(out.includes('Sanitizer'), false, out.slice(out.indexOf('Sanitizer') - 200, out.indexOf('Sanitizer') + 3000));
    assert.equal(status, 0, out.slice(-4000));
    return out;
  };
  // the matrix products again with cuBLASLt on: the run-time loader, the self-check and the plans under the
  // sanitizers too (the emulated library is built with them)
  const [out, lout] = await Promise.all([sanitized(['--memcheck'], '0'), sanitized(['--products', '--memcheck'], '1')]);
  const summary = out.match(/\n(\d+) checks, 0 failed \((\d+) larger cases left out for the sanitizer\)\n/);
  assert.ok(summary, out.slice(-2000));
  assert.equal(summary[2], '2', 'the two LLaMA-sized cases are all that --memcheck leaves out');
  t.diagnostic(`${summary[1]} kernel rows under AddressSanitizer + UBSan, no report (${summary[2]} LLaMA-sized cases left out)`);
  assert.match(lout, /^cuBLASLt\s+active /m);
  assert.match(lout, /^cuBLASLt calls\s+.*ok \(all ran\)$/m);
  const ls = lout.match(/\n(\d+) checks, 0 failed \(the matrix products only\) \((\d+) larger cases left out for the sanitizer\)\n/);
  assert.ok(ls, lout.slice(-2000));
  assert.equal(ls[2], '2', lout.slice(-2000));
  t.diagnostic(`${ls[1]} matrix-product rows with cuBLASLt on under AddressSanitizer + UBSan, no report (${ls[2]} left out)`);
});

test('every CUDA kernel under ThreadSanitizer on the emulator: no data race (racecheck without a GPU)', { timeout: 900_000, skip: ON_EMULATOR }, async (t) => {
  // each emulated CUDA thread is a ThreadSanitizer fiber and the only happens-before edges are CUDA's
  // (launch, __syncthreads, __syncwarp, kernel end: native/test/cuemu/cuemu.cpp), so two threads touching
  // one byte between barriers, one writing, is reported whatever order the fibers happened to run in
  const tree = await sanitizerTree('tsan');
  const run = (exe: string, args: string[]) => tree(exe, args, { TAILOR_CUBLASLT: '0', TSAN_OPTIONS: 'halt_on_error=0' });
  // every kernel of native/cuda on the harness's smaller rows (our kernels: cuBLASLt off), in two halves side by
  // side (each run is one thread; whole, it was the longest run), beside the detector's own checks
  const halves = [run('tailor_cudacheck_emu', ['--races', '--half', '1']), run('tailor_cudacheck_emu', ['--races', '--half', '2'])];
  // the detector: each missing barrier is reported in its kernel, each correctly ordered twin is not
  const demos: [string, string | null][] = [
    ['no-barrier', 'neighbour_kernel<false>'],
    ['barrier', null],
    ['tile-reuse', 'tile_reuse_kernel<false>'],
    ['tile-reuse-ordered', null],
    ['warp-shuffle', 'warp_pair_kernel<false>'], // a shuffle orders no shared memory between lanes
    ['warp-syncwarp', null],
    ['global', 'global_word_kernel<false>'],
    ['atomic', null],
    ['blocks', 'blocks_add_kernel<false>'], // two blocks adding into one word: right on the emulator, lost updates on a GPU
    ['blocks-atomic', null],
    ['blocks-apart', 'blocks_apart_kernel<false>'], // blocks two apart adding into one word, neighbours never
    ['blocks-apart-atomic', null],
    ['async-unwaited', 'async_copy_kernel<2>'], // others read an asynchronous copy's destination before its thread waited
    ['async-waited', null],
  ];
  for (const [name, kernel] of demos) {
    const r = await run('tailor_cuemu_selftest', ['--race', name]);
    assert.match(r.out, new RegExp(`^ran ${name}: `, 'm'), r.out.slice(-2000));
    if (kernel) {
      assert.match(r.out, new RegExp(`SUMMARY: ThreadSanitizer: data race \\S+selftest\\.cpp:\\d+ in ${kernel}$`, 'm'), `${name}: no race reported\n${r.out.slice(-3000)}`);
      // both threads named by their CUDA indices (for the blocks race: one thread of each block)
      assert.match(r.out, /Thread T\d+ 'd\.kernel block \(0,0,0\) thread \(\d+,0,0\)'/, r.out.slice(-3000));
      if (name === 'blocks') assert.match(r.out, /Thread T\d+ 'd\.kernel block \(1,0,0\) thread \(\d+,0,0\)'/, r.out.slice(-3000));
      if (name === 'blocks-apart') assert.match(r.out, /Thread T\d+ 'd\.kernel block \([246],0,0\) thread \(\d+,0,0\)'/, r.out.slice(-3000));
      assert.equal(r.status, 66, r.out.slice(-2000));
    } else {
      assert.equal(r.out.includes('ThreadSanitizer'), false, `${name}: ${r.out.slice(0, 3000)}`);
      assert.equal(r.status, 0, r.out.slice(-2000));
    }
  }
  let rows = 0, leftOut = 0;
  for (const [i, h] of (await Promise.all(halves)).entries()) {
    const at = h.out.indexOf('ThreadSanitizer');
    assert.equal(at, -1, h.out.slice(Math.max(0, at - 200), at + 4000));
    assert.equal(h.status, 0, h.out.slice(-4000));
    const summary = h.out.match(new RegExp(`\\n(\\d+) checks, 0 failed \\(half ${i + 1} of the rows\\) \\((\\d+) larger cases left out for the sanitizer\\)\\n`));
    assert.ok(summary, h.out.slice(-2000));
    rows += Number(summary[1]), leftOut += Number(summary[2]);
  }
  t.diagnostic(`${rows} kernel rows under ThreadSanitizer, no race (${leftOut} larger cases left out); ${demos.filter((d) => d[1]).length} planted races all reported`);
});
