// The addon's CUDA paths end to end on the CPU emulator: native/build/Release/tailor_emu.node is the same
// addon sources linked with the CUDA backend compiled against native/test/cuemu, loaded (TAILOR_ADDON, in
// this test process only) through the same TypeScript engine wrapper the app uses. So the lines a GPU
// machine runs between Model.load and the kernels — the streamed load, the release of the host weights,
// scoring, generation and sampling on the device, LoRA training, merges, the pruner's statistics, exports
// read back from a released model, out-of-memory — run in CI without a GPU, against the CPU backend of the
// same build. It says nothing of speed or the hardware (cuda.test.ts and `npm run test:gpu` do, on a GPU).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Model as M } from '../electron/core/engine/engine.js';
import { maxAbsDiff } from './helpers/golden.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';
import { nestedTestEnv } from './helpers/spawn.js';

const EMU = path.join(REPO_ROOT, 'native', 'build', 'Release', 'tailor_emu.node');
const built = fs.existsSync(EMU);
if (built) process.env.TAILOR_ADDON = EMU;
// imported after TAILOR_ADDON is set: the engine loads the addon it names
const { EngineError, Model, deviceMemory, engineInfo, kvCacheOf } = await import('../electron/core/engine/engine.js');
const { DEFAULT_TRAIN, Trainer } = await import('../electron/core/train/trainer.js');
const { promptCompletionExamples } = await import('../electron/core/train/data.js');
const { calibrationFromText, pruneModel, writePruned } = await import('../electron/core/prune/prune.js');
const { exportModel } = await import('../electron/core/export/export.js');
const { randomModel } = await import('../electron/core/formats/model-tensors.js');
const { writeHfFolder } = await import('../electron/core/formats/safetensors-write.js');
const { Library } = await import('../electron/core/service/library.js');
const { History } = await import('../electron/core/history/db.js');

const HF = shared('models', 'stories260K-hf');
const GGUF = shared('models', 'stories260K', 'stories260K.gguf');
const L2C = shared('models', 'stories260K', 'stories260K.bin');
const IDS = [1, 403, 407, 261, 378, 429, 411, 283, 300, 2];
const LAYER_NAMES = ['attnNorm', 'wq', 'wk', 'wv', 'wo', 'ffnNorm', 'wGate', 'wUp', 'wDown'] as const;


function sameBits(a: Float32Array | null, b: Float32Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
/** the names of the tensors where two models' weights differ in any bit ([] when identical) */
function tensorDiffs(a: M, b: M): string[] {
  const ta = a.tensors(), tb = b.tensors();
  const out: string[] = [];
  for (const n of ['tokEmb', 'outNorm', 'lmHead'] as const) if (!sameBits(ta[n], tb[n])) out.push(n);
  ta.layers.forEach((L: (typeof ta.layers)[number], i: number) => { for (const n of LAYER_NAMES) if (!sameBits(L[n], tb.layers[i][n])) out.push(`${n}[${i}]`); });
  return out;
}
async function withModels<T>(specs: Array<[string, Parameters<typeof Model.load>[1]]>, f: (...ms: M[]) => Promise<T>): Promise<T> {
  const ms: M[] = [];
  try {
    for (const [p, o] of specs) ms.push(await Model.load(p, o));
    return await f(...ms);
  } finally {
    for (const m of ms) m.dispose();
  }
}

test('the emulated device is what the addon sees (skipped, visibly, where the emulator addon is not built)', (t) => {
  if (!built) return t.skip(`${EMU} not built (TAILOR_CUEMU off or an MSVC build)`);
  assert.equal(deviceMemory(), null, 'no model on CUDA yet: no device memory to report (and the driver is not touched)');
  const c = engineInfo().cuda;
  assert.equal(c.available, true);
  assert.match(c.devices[0].name, /emulator/);
  assert.equal(c.architectures, 'emulated');
});

test('a load streams to the device, hands the host pages back, reports progress and can be cancelled', { skip: !built }, async () => {
  const progress: Array<[number, number]> = [];
  await withModels([[HF, { backend: 'cuda', onProgress: (d, t) => progress.push([d, t]) }], [HF, { backend: 'cuda', hostWeights: 'keep' }], [HF, { backend: 'cpu' }]], async (rel, keep, cpu) => {
    assert.equal(rel.info.backendKind, 'cuda');
    assert.match(rel.info.backend, /^cuda \(device 0, Tailor CUDA emulator/);
    const arenaBytes = cpu.hostWeights().residentBytes!;
    assert.ok(arenaBytes >= 4 * rel.info.nParams, `the CPU model's arena is resident (${arenaBytes} bytes for ${rel.info.nParams} parameters)`);
    // released: only pages shared by two tensors stay (stories260K has 47 tensors of a few KiB each)
    assert.equal(rel.info.hostWeights, 'released');
    assert.equal(rel.hostWeights().state, 'released');
    assert.ok(rel.hostWeights().residentBytes! <= 0.2 * arenaBytes, `released: ${rel.hostWeights().residentBytes} of ${arenaBytes} bytes resident`);
    assert.equal(keep.info.hostWeights, 'resident');
    assert.ok(keep.hostWeights().residentBytes! >= 4 * rel.info.nParams, "'keep' keeps the fp32 arena");
    assert.equal(cpu.info.hostWeights, 'resident', 'on the CPU the arena is what computes');
    assert.deepEqual(progress[0], [0, progress[0][1]]);
    assert.equal(progress.at(-1)![0], progress.at(-1)![1]);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i][0] >= progress[i - 1][0]);
    // released or kept, the device holds the same weights: the same log-probs bit for bit
    const held = deviceMemory({ resetPeak: true })!;
    assert.ok(held.inUse >= 2 * 4 * rel.info.nParams, `the allocator accounts for both models' fp32 weights (${held.inUse} bytes)`);
    assert.equal(held.peak, held.inUse, 'the peak starts again from what is in use');
    assert.match(String(held.total), /^\d+$/);
    const [a] = await rel.score([IDS]);
    const [b] = await keep.score([IDS]);
    assert.ok(sameBits(a.logprob, b.logprob));
    const after = deviceMemory()!;
    assert.ok(after.peak > held.inUse, 'scoring needed activations beyond the weights');
    assert.ok(after.inUse <= held.inUse, 'and gave them back (to the cache)');
  });
  // (a cancel between two tensors, with the device's half-made copy refused, is tailor_cudacheck_emu's
  // "streamed load" row: here the progress callback arrives after so small a load is done)
  await assert.rejects(Model.load(HF, { backend: 'cuda', signal: AbortSignal.abort() }), (e: unknown) => e instanceof EngineError && e.code === 'E_CANCELLED');
  assert.equal(Model.liveCount(), 0);
  await assert.rejects(Model.load(HF, { backend: 'cuda', hostWeights: 'sometimes' as never }), (e: unknown) => e instanceof EngineError && e.code === 'E_ARG' && /hostWeights/.test(e.message));
  assert.equal(deviceMemory()!.inUse, 0, 'disposed models hold no device memory');
});

test('a released model reads back the weights of its file bit for bit: HF (rotate-half), GGUF, llama2.c', { skip: !built }, async () => {
  for (const p of [HF, GGUF, L2C]) {
    await withModels([[p, { backend: 'cuda' }], [p, { backend: 'cpu' }]], async (rel, cpu) => {
      assert.equal(rel.info.hostWeights, 'released', p);
      assert.deepEqual(tensorDiffs(rel, cpu), [], p);
      // one tensor at a time, as the writers read them (lazyTensors)
      const lz = rel.lazyTensors(), lc = cpu.lazyTensors();
      assert.ok(sameBits(lz.layers[1].wk, lc.layers[1].wk) && sameBits(lz.tokEmb, lc.tokEmb), p);
      assert.ok(rel.hostWeights().residentBytes! <= 0.2 * cpu.hostWeights().residentBytes!, `${p}: reading decodes into fresh buffers, the arena stays released`);
    });
  }
});

test('a released model notices its file changed on disk: written in place or truncated is a clear E_IO (never a crash or other weights); replaced by a rename, it still reads the old one', { skip: !built }, async () => {
  const dir = tempDir('tailor-changed-');
  const renamed = path.join(dir, 'renamed.gguf'), written = path.join(dir, 'written.gguf');
  fs.copyFileSync(GGUF, renamed);
  fs.copyFileSync(GGUF, written);
  const scribble = (file: string, at: number) => {
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(4096, 0x7f), 0, 4096, Math.floor(fs.statSync(file).size * at));
    fs.closeSync(fd);
  };
  await withModels([[renamed, { backend: 'cuda' }], [written, { backend: 'cuda' }], [GGUF, { backend: 'cpu' }]], async (a, b, cpu) => {
    assert.equal(a.info.hostWeights, 'released');
    assert.equal(b.info.hostWeights, 'released');
    const [ref] = await cpu.score([IDS]);
    // replaced by a rename: the mapping is the old file, whose bytes are still the ones loaded
    const other = path.join(dir, 'other.gguf');
    fs.copyFileSync(GGUF, other);
    scribble(other, 0.5);
    fs.renameSync(other, renamed);
    assert.deepEqual(tensorDiffs(a, cpu), [], 'after a rename over it: the weights that were loaded');
    // written in place (the same size): the weights it would read now are not the ones loaded
    scribble(written, 0.5);
    const changed = (e: unknown) => e instanceof EngineError && e.code === 'E_IO' && /written\.gguf was changed on disk after the model was loaded from it \(written in place\).*load the model again/.test(e.message);
    assert.throws(() => b.tensors(), changed);
    assert.throws(() => b.lazyTensors().layers[0].wq, changed);
    // the device still holds what was loaded
    const [after] = await b.score([IDS]);
    assert.ok(maxAbsDiff(after.logprob, ref.logprob) <= 1e-4, 'scoring from the device copy is unaffected');
    // an adapter merged now cannot be built into the device copy: every later use says so, none computes without it
    const ex = promptCompletionExamples(cpu.requireTokenizer(), [{ prompt: 'The cat is', completion: ' red.' }], { eos: false });
    const tr = Trainer.create(b, { ...DEFAULT_TRAIN, epochs: 1, batch: 1, microBatch: 1 }, ex);
    const adapter = tr.state().params.map((_, i) => ((i * 7919) % 13) / 1300 - 0.005);
    tr.dispose();
    b.mergeLora({ rank: DEFAULT_TRAIN.lora.rank, alpha: DEFAULT_TRAIN.lora.alpha, targets: 127 }, adapter);
    for (let i = 0; i < 2; i++) await assert.rejects(b.score([IDS]), changed, `use ${i + 1} after the merge`);
    // truncated: reading past the end of a mapping would fault the process; it is the same clear error instead
    const size = fs.statSync(written).size;
    fs.truncateSync(written, Math.floor(size / 2));
    assert.throws(() => b.tensors(), (e: unknown) => e instanceof EngineError && e.code === 'E_IO' && e.message.includes(`(${size} bytes then, ${Math.floor(size / 2)} now)`));
  });
});

test('scoring and generation on the device match the CPU (fp32 within 1e-4, greedy tokens identical; bf16 argmax identical)', { skip: !built }, async () => {
  await withModels([[HF, { backend: 'cuda' }], [HF, { backend: 'cuda', weights: 'bf16' }], [HF, { backend: 'cpu' }]], async (gpu, bf, cpu) => {
    const [a] = await gpu.score([IDS], { lastLogits: true });
    const [b] = await cpu.score([IDS], { lastLogits: true });
    assert.ok(maxAbsDiff(a.logprob, b.logprob) <= 1e-4, `log-probs ${maxAbsDiff(a.logprob, b.logprob)}`);
    assert.ok(maxAbsDiff(a.lastLogits!, b.lastLogits!) <= 1e-4);
    const [c] = await bf.score([IDS]);
    assert.match(bf.info.backend, /bf16 weights/);
    assert.deepEqual(Array.from(c.argmax), Array.from(b.argmax));
    const prompt = cpu.requireTokenizer().encode('Once upon a time', { bos: true });
    const g = await gpu.generateIds(prompt, { maxTokens: 24, temperature: 0 });
    const h = await cpu.generateIds(prompt, { maxTokens: 24, temperature: 0 });
    assert.deepEqual(g.tokens, h.tokens, 'greedy generation: the same tokens');
    // sampling on the device (top-k / top-p) with a seed: the same draw as the CPU's sampler
    const s1 = await gpu.generateIds(prompt, { maxTokens: 16, temperature: 0.9, topK: 40, topP: 0.9, seed: 7 });
    const s2 = await cpu.generateIds(prompt, { maxTokens: 16, temperature: 0.9, topK: 40, topP: 0.9, seed: 7 });
    assert.deepEqual(s1.tokens, s2.tokens, 'seeded sampling: the same tokens');
  });
});

test("the KV cache holds what a call needs: scoring each token's keys and values once (no padding, one layer's, shared prefixes copied), generation its prompt and maxTokens", { skip: !built }, async () => {
  await withModels([[HF, { backend: 'cuda' }], [HF, { backend: 'cpu' }]], async (gpu, cpu) => {
    const { headDim, layers, contextLength, dim } = gpu.info;
    const maxKv = Math.max(...layers.map((l) => l.nKvHead)), maxHeads = Math.max(...layers.map((l) => l.nHead)), maxFfn = Math.max(...layers.map((l) => l.ffn));
    const kvPerPosition = maxKv * headDim * 4 * 2; // fp32 keys and values of one layer
    // the forward's activations per token: x, xn and the final h [dim], q, att [heads·hd], k, v [kv·hd], g, u [ffn]; token, position, slot
    const actPerToken = 4 * (3 * dim + 2 * maxHeads * headDim + 2 * maxKv * headDim + 2 * maxFfn) + 3 * 4;
    let r = 12345;
    const rand = () => 3 + ((r = (r * 1103515245 + 12345) % 2 ** 31) % (gpu.info.vocabSize - 3));
    const seq = (n: number) => [1, ...Array.from({ length: n - 1 }, rand)];
    // the device memory a scoring call adds to a freshly loaded model's (so no block is reused from an earlier call)
    const scoringPeak = (ss: number[][]) => withModels([[HF, { backend: 'cuda' }]], async (m) => {
      const base = deviceMemory({ resetPeak: true })!.inUse;
      const res = await m.score(ss);
      return { extra: deviceMemory()!.peak - base, res };
    });
    // 41 sequences of 540 tokens in all, in one batch: padded to the longest they would hold 41 × 300 positions
    const seqs = [seq(300), ...Array.from({ length: 40 }, () => seq(6))];
    const mixed = await scoringPeak(seqs);
    const two = await scoringPeak([seq(300), seq(240)]);
    assert.equal(mixed.extra, two.extra, `41 sequences of 540 tokens take what 2 of 540 take (padding would add ${(41 - 2) * 300 * kvPerPosition} bytes)`);
    // 220 tokens more add their activations and one layer's keys and values, not every layer's
    const fewer = await scoringPeak([seq(300), seq(20)]);  // each call has a sequence ≥ 256: the same logits block
    const perToken = (two.extra - fewer.extra) / 220;
    assert.ok(perToken > actPerToken + kvPerPosition / 2 && perToken < actPerToken + 2 * kvPerPosition,  // (allocations round to 512 bytes)
      `a token costs its activations (${actPerToken} bytes) and one layer's keys and values (${kvPerPosition}), not every layer's (${layers.length * kvPerPosition}): ${perToken} bytes`);
    const scored = mixed.res;
    // every layer read back what it stored itself: the CPU's log-probs, in the batch and each sequence alone
    const onCpu = await cpu.score(seqs);
    for (let i = 0; i < seqs.length; i++) assert.ok(maxAbsDiff(scored[i].logprob, onCpu[i].logprob) <= 1e-4, `sequence ${i}`);
    for (const i of [0, 1, 40]) {
      const [alone] = await cpu.score([seqs[i]]);
      assert.ok(maxAbsDiff(alone.logprob, onCpu[i].logprob) <= 1e-4, `sequence ${i} alone`);
    }
    // an item's choices share their context: copied on the device from the first choice's rows, in every layer
    const ctx = seq(24);
    const choices = [[...ctx, 5, 6, 7], [...ctx, 8], [...ctx, 9, 10]];
    const sharing = await gpu.score(choices, { lastLogits: true });
    assert.deepEqual(sharing.map((s) => s.sharedPrefix), [0, 23, 23]);
    const unshared = await cpu.score(choices, { lastLogits: true, sharePrefixes: false });
    for (let i = 0; i < choices.length; i++) {
      assert.deepEqual(Array.from(sharing[i].argmax), Array.from(unshared[i].argmax));
      assert.ok(maxAbsDiff(sharing[i].logprob, unshared[i].logprob) <= 1e-4 && maxAbsDiff(sharing[i].lastLogits!, unshared[i].lastLogits!) <= 1e-4, `choice ${i}`);
    }
    // generation: a cache of prompt + maxTokens positions by default, of nCtx when asked
    const peakOf = async (nCtx?: number) => {
      const held = deviceMemory({ resetPeak: true })!.inUse;
      const g = await gpu.generateIds(IDS, { maxTokens: 6, nCtx, stopAtEos: false });
      return { extra: deviceMemory()!.peak - held, tokens: g.tokens };
    };
    const reach = await peakOf();
    const whole = await peakOf(contextLength);
    assert.deepEqual(reach.tokens, whole.tokens);
    const saved = (contextLength - (IDS.length + 6)) * layers.length * kvPerPosition;
    assert.ok(whole.extra - reach.extra >= 0.9 * saved,
      `the default cache is ${IDS.length + 6} positions, not the model's ${contextLength}: ${reach.extra} bytes against ${whole.extra}`);
  });
});

test('bf16 weights keep the KV cache in bf16 where the tensor cores take the head size: a long generation holds half the keys and values, and splitting them gives the same tokens', { skip: !built }, async () => {
  // stories260K's head_dim 8 has no tensor-core attention (its cache stays fp32): a random model of head_dim 16
  const dir = tempDir('tailor-kv16-');
  try {
    const layers = 2, nKvHead = 2, headDim = 16;
    writeHfFolder(dir, randomModel({ dim: 64, nLayers: layers, nHead: 4, nKvHead, headDim, ffn: 128, vocabSize: 512, contextLength: 1024, tied: false, seed: 21 }));
    fs.copyFileSync(path.join(HF, 'tokenizer.model'), path.join(dir, 'tokenizer.model'));  // stories260K's, for tailor info
    const prompt = [1, 17, 93, 200, 5, 44, 120, 7];
    // the device memory a generation adds, and its tokens: nCtx 1024 splits each step's keys among blocks
    const run = (m: M, nCtx?: number) => async () => {
      const held = deviceMemory({ resetPeak: true })!.inUse;
      const g = await m.generateIds(prompt, { maxTokens: 6, nCtx, stopAtEos: false, temperature: 0 });
      return { extra: deviceMemory()!.peak - held, tokens: g.tokens };
    };
    await withModels([[dir, { backend: 'cuda', noTokenizer: true }], [dir, { backend: 'cuda', weights: 'bf16', noTokenizer: true }]], async (f32, bf16) => {
      const a = await run(f32, 1024)(), b = await run(bf16, 1024)();
      const fp32Cache = layers * 1024 * nKvHead * headDim * 2 * 4; // keys and values of every layer, fp32
      const saved = a.extra - b.extra;
      assert.ok(Math.abs(saved - fp32Cache / 2) <= 4096, `bf16 saves half the cache (${fp32Cache / 2} bytes): ${saved} (${a.extra} against ${b.extra})`);
      // what the models say of their caches before any is allocated (kvCacheOf: tailor info's line)
      assert.deepEqual(kvCacheOf(f32.info), { dtype: 'f32', bytesPerToken: fp32Cache / 1024 });
      assert.deepEqual(kvCacheOf(bf16.info), { dtype: 'bf16', bytesPerToken: fp32Cache / 2048 });
      // the same model with a cache of prompt + maxTokens positions: one block a head, not split; greedy tokens equal
      for (const m of [f32, bf16]) assert.deepEqual((await run(m)()).tokens, (m === f32 ? a : b).tokens);
    });
    // tailor info says so, and says why stories260K's cache (head_dim 8) and sm_75's stay fp32
    const info = (model: string, env: Record<string, string> = {}) => {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'electron', 'core', 'cli', 'main.js'), 'info', model, '--backend', 'cuda', '--weights', 'bf16'],
        { encoding: 'utf8', env: { ...process.env, TAILOR_ADDON: EMU, ...env } });
      assert.equal(r.status, 0, r.stderr);
      return /^kv cache {6}(.*)$/m.exec(r.stdout)![1];
    };
    assert.equal(info(dir), 'bf16 (bf16 weights), 256 bytes per token (256 KiB for the 1,024-token context)');
    assert.equal(info(HF), 'fp32 (bf16 weights, but the tensor-core attention takes head dims 16, 32, 48, 64, 80, 96, 112, 128, not 8), 1.25 KiB per token (640 KiB for the 512-token context)');
    assert.equal(info(dir, { TAILOR_CUEMU_CC: '75' }), 'fp32 (bf16 weights, but this device has no bf16 tensor-core attention), 512 bytes per token (512 KiB for the 1,024-token context)');
    // the app's Models screen: each model's fp32 cache, and its bf16 one where this device keeps it so
    const h = History.open(path.join(dir, 'history.db'));
    try {
      const lib = new Library(h);
      assert.deepEqual((await lib.add(dir)).kvCache, { bytesPerToken: 512, bf16BytesPerToken: 256 });
      assert.deepEqual((await lib.add(HF)).kvCache, { bytesPerToken: 1280, bf16BytesPerToken: null });
      assert.deepEqual((await lib.list()).map((m) => m.kvCache.bf16BytesPerToken), [256, null]);
    } finally {
      h.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('LoRA on the device follows the CPU loss curve; merged into a released model it equals the CPU merge bit for bit', { skip: !built }, async () => {
  await withModels([[HF, { backend: 'cuda' }], [HF, { backend: 'cpu' }]], async (gpu, cpu) => {
    const recs = [{ prompt: 'The cat is', completion: ' red.' }, { prompt: 'The dog is', completion: ' blue.' }, { prompt: 'The bird is', completion: ' green.' }];
    const ex = promptCompletionExamples(cpu.requireTokenizer(), recs, { eos: false });
    const settings = { ...DEFAULT_TRAIN, lora: { ...DEFAULT_TRAIN.lora, dropout: 0.1 }, optim: { ...DEFAULT_TRAIN.optim, lr: 1e-2 }, epochs: 4, batch: 2, microBatch: 1, seed: 3 };
    const curves: number[][] = [];
    const params: Float32Array[] = [];
    for (const m of [cpu, gpu]) {
      const tr = Trainer.create(m, settings, ex);
      const losses: number[] = [];
      await tr.run({ onStep: (s) => losses.push(s.loss) });
      assert.match(tr.info().backend, m === gpu ? /^cuda / : /^cpu /);
      params.push(tr.state().params);
      tr.dispose();
      curves.push(losses);
    }
    for (let i = 0; i < curves[0].length; i++) {
      const rel = Math.abs(curves[1][i] - curves[0][i]) / Math.abs(curves[0][i]);
      assert.ok(rel <= 1e-4, `step ${i + 1}: device loss ${curves[1][i]} vs CPU ${curves[0][i]}`);
    }
    // the CPU's adapter merged into both: the released model records it and decodes W + s·B·A on each read
    const cfg = { rank: settings.lora.rank, alpha: settings.lora.alpha, targets: 127 };
    cpu.mergeLora(cfg, params[0]);
    gpu.mergeLora(cfg, params[0]);
    assert.equal(gpu.hostWeights().state, 'released');
    assert.deepEqual(tensorDiffs(gpu, cpu), [], 'merged weights read back alike');
    const [a] = await gpu.score([IDS]);
    const [b] = await cpu.score([IDS]);
    assert.ok(maxAbsDiff(a.logprob, b.logprob) <= 1e-4, `after the merge the device copy was rebuilt (${maxAbsDiff(a.logprob, b.logprob)})`);
    assert.ok(gpu.hostWeights().residentBytes! <= 0.2 * cpu.hostWeights().residentBytes!, 'the rebuild decoded one tensor at a time');
    // the tailored model exported from the released model: the CPU's files byte for byte
    const dir = tempDir('tailor-emu-export-');
    for (const [format, dtype] of [['gguf', 'q8_0'], ['hf', 'bf16']] as const) {
      const outs = [path.join(dir, `cpu-${format}`), path.join(dir, `gpu-${format}`)];
      await exportModel(cpu, { format, dtype, out: outs[0] });
      await exportModel(gpu, { format, dtype, out: outs[1] });
      const file = format === 'gguf' ? '' : 'model.safetensors';
      assert.ok(fs.readFileSync(path.join(outs[0], file)).equals(fs.readFileSync(path.join(outs[1], file))), `${format} ${dtype} export`);
    }
  });
});

test('full fine-tuning of a released model brings its host weights back first, then trains them as the CPU does', { skip: !built }, async () => {
  await withModels([[HF, { backend: 'cuda' }], [HF, { backend: 'cpu' }]], async (gpu, cpu) => {
    const ex = promptCompletionExamples(cpu.requireTokenizer(), [{ prompt: 'The sun is', completion: ' hot.' }], { eos: false });
    const settings = { ...DEFAULT_TRAIN, full: true, optim: { ...DEFAULT_TRAIN.optim, lr: 1e-3 }, epochs: 2, batch: 1, microBatch: 1 };
    const losses: number[][] = [];
    for (const m of [cpu, gpu]) {
      const tr = Trainer.create(m, settings, ex);
      const l: number[] = [];
      await tr.run({ onStep: (s) => l.push(s.loss) });
      tr.dispose();
      losses.push(l);
    }
    assert.equal(gpu.hostWeights().state, 'resident');
    assert.deepEqual(losses[1], losses[0], 'the same steps on the same host weights');
    assert.deepEqual(tensorDiffs(gpu, cpu), []);
    const [a] = await gpu.score([IDS]);
    const [b] = await cpu.score([IDS]);
    assert.ok(maxAbsDiff(a.logprob, b.logprob) <= 1e-4, 'the device copy follows the trained weights');
  });
});

test('pruning a released model picks the groups the CPU picks and writes the same pruned folder', { skip: !built }, async () => {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'resources', 'data', 'tinystories-validation-head.txt'), 'utf8');
  const dir = tempDir('tailor-emu-prune-');
  await withModels([[HF, { backend: 'cuda' }], [HF, { backend: 'cpu' }]], async (gpu, cpu) => {
    const tok = cpu.requireTokenizer();
    const calib = calibrationFromText(tok.encode(text, { bos: false }), 4, 32, 1, cpu.info.bosId);
    for (const method of ['taylor', 'magnitude', 'wanda-sp'] as const) {
      const outs: string[] = [];
      for (const m of [cpu, gpu]) {
        const r = await pruneModel(m, { ratio: 0.5, method, calib, scope: { attnLayers: [0, 4], mlpLayers: [0, 4] } });
        const out = path.join(dir, `${method}-${m === gpu ? 'gpu' : 'cpu'}`);
        writePruned(out, r, HF);
        outs.push(out);
      }
      const kept = outs.map((o) => JSON.parse(fs.readFileSync(path.join(o, 'pruning.json'), 'utf8')).layers);
      assert.deepEqual(kept[1], kept[0], `${method}: the same heads and channels kept`);
      const w = outs.map((o) => fs.readFileSync(path.join(o, 'model.safetensors')));
      assert.ok(w[0].equals(w[1]), `${method}: the pruned weights, sliced from the released model, are the CPU's bit for bit`);
    }
    assert.equal(gpu.hostWeights().state, 'released');
  });
});

test("tailor run on the device: the CPU's accuracies and pruned groups, its loss curve within 1e-4, a GPU peak per stage", { skip: !built }, () => {
  // a tiny two-choice task keeps every sequence short: the emulator's attention is slow on long ones
  const dir = tempDir('tailor-emu-run-');
  const animals = ['cat', 'dog', 'bird', 'fish', 'cow', 'pig', 'fox', 'owl', 'bee', 'ant'], words = ['red', 'blue', 'green', 'big', 'small'];
  const csv = path.join(dir, 'tiny.csv');
  fs.writeFileSync(csv, 'q,a,b,answer\n' + animals.concat(animals).map((a, i) => {
    const [c, d] = [words[i % 5], words[(i + 2) % 5]];
    return i % 2 ? `"The ${a} was",${d},${c},B` : `"The ${a} was",${c},${d},A`;
  }).join('\n') + '\n');
  const run = (backend: 'cpu' | 'cuda', env: NodeJS.ProcessEnv) => {
    const spec = path.join(dir, `${backend}.json`);
    fs.writeFileSync(spec, JSON.stringify({
      name: `tiny-${backend}`, model: path.join(REPO_ROOT, 'resources', 'models', 'stories260K'), outDir: path.join(dir, backend),
      tasks: [{ name: 'tiny', file: csv, mapping: { kind: 'multiple-choice', question: 'q', choices: ['a', 'b'], answer: 'answer', template: '{question}' } }],
      prune: { method: 'taylor', ratios: [0.5], calibSamples: 2, calibSeqLen: 16 }, lora: { epochs: 1, batch: 4, maxLen: 32, lr: 0.003 },
      export: { format: 'gguf', dtype: 'f32' }, compute: { backend },
    }));
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'electron', 'core', 'cli', 'main.js'), 'run', spec], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    // each finished stage on the terminal, with its GPU peak on CUDA
    assert.match(r.stderr, backend === 'cuda' ? /^✔ baseline \(GPU peak [\d.]+ (KiB|MiB)\)$/m : /^✔ baseline$/m);
    return JSON.parse(fs.readFileSync(path.join(dir, backend, 'report.json'), 'utf8'));
  };
  const { TAILOR_ADDON: _a, ...plain } = process.env;
  const cpu = run('cpu', plain), gpu = run('cuda', { ...process.env, TAILOR_ADDON: EMU });
  assert.match(gpu.compute, /^cuda \(device 0, Tailor CUDA emulator/);
  assert.deepEqual(gpu.rows, cpu.rows, 'baseline, pruned and recovered accuracies');
  const kept = (b: string) => JSON.parse(fs.readFileSync(path.join(dir, b, 'pruned-0.5', 'pruning.json'), 'utf8')).layers;
  assert.deepEqual(kept('cuda'), kept('cpu'), 'the same heads and channels pruned');
  const [lg, lc] = [gpu.ratios[0].loss as number[], cpu.ratios[0].loss as number[]];
  assert.equal(lg.length, lc.length);
  lg.forEach((l, i) => assert.ok(Math.abs(l - lc[i]) <= 1e-4 * Math.abs(lc[i]), `LoRA step ${i + 1}: ${l} vs ${lc[i]}`));
  assert.equal(cpu.stageDevicePeakBytes, undefined, 'no GPU figures for a CPU run');
  assert.deepEqual(Object.keys(gpu.stageDevicePeakBytes).sort(), Object.keys(gpu.stageSeconds).sort());
  for (const [k, b] of Object.entries(gpu.stageDevicePeakBytes as Record<string, number>)) assert.ok(b > 0, `${k}: ${b}`);
  // the baseline's fp32 weights (1 MiB) are on the device while it is evaluated; pruning adds its gradients
  assert.ok(gpu.stageDevicePeakBytes.baseline >= 4 * gpu.paramsBefore);
  assert.ok(gpu.stageDevicePeakBytes['prune ratio=0.5'] > gpu.stageDevicePeakBytes.baseline);
  assert.match(fs.readFileSync(path.join(dir, 'cuda', 'report.md'), 'utf8'), /Stages: baseline [\d.]+ s \(GPU peak [\d.]+ (KiB|MiB)\), prune ratio=0\.5 /);
  const info = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'electron', 'core', 'cli', 'main.js'), 'info', gpu.ratios[0].exported, '--json'], { encoding: 'utf8' });
  assert.equal(JSON.parse(info.stdout).nParams, gpu.ratios[0].paramsAfter, 'the tailored model exported from the device run loads');
});

// the emulator addon in a fresh process with extra environment (the cuBLASLt library is chosen once per
// process, at the first product): which library it took, the backend's name, and one sequence's log-probs
function ltProbe(env: Record<string, string>) {
  const script = `
    const { Model, engineInfo } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'electron', 'core', 'engine', 'engine.js'))});
    const m = await Model.load(${JSON.stringify(HF)}, { backend: 'cuda' });
    const [s] = await m.score([${JSON.stringify(IDS)}]);
    console.log(JSON.stringify({ backend: m.info.backend, lt: engineInfo().cuda.cublasLt, logprob: Array.from(s.logprob) }));
    m.dispose();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, TAILOR_ADDON: EMU, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { backend: string; lt: string; logprob: number[] };
}
// `tailor info MODEL --backend cuda` on the emulator addon
function ltInfo(env: Record<string, string>) {
  const cli = path.join(REPO_ROOT, 'dist', 'electron', 'core', 'cli', 'main.js');
  return spawnSync(process.execPath, [cli, 'info', HF, '--backend', 'cuda'], { encoding: 'utf8', env: { ...process.env, TAILOR_ADDON: EMU, ...env } });
}

test('cuBLASLt is opened at run time: used where it is found, and where it is absent, incomplete or refuses the device, our kernels give the same numbers and tailor info says why', { skip: !built }, () => {
  const libm = ['/lib/x86_64-linux-gnu/libm.so.6', '/usr/lib/x86_64-linux-gnu/libm.so.6', '/lib64/libm.so.6'].find((p) => fs.existsSync(p));
  const on = ltProbe({});
  assert.match(on.lt, /^on \(.*libtailor_cublaslt_emu\.so \(version 0\.0\.0\)\)$/, 'the library the build made, opened by dlopen like libcublasLt');
  assert.match(on.backend, /, cuBLASLt\)$/);
  // the search a real machine gets: the bare name through the loader's own path, then $CUDA_HOME/lib64
  const lib = /^on \((\/.*libtailor_cublaslt_emu\.so) /.exec(on.lt)![1];
  assert.match(ltProbe({ LD_LIBRARY_PATH: path.dirname(lib) }).lt, /^on \(libtailor_cublaslt_emu\.so \(version 0\.0\.0\)\)$/);
  const home = tempDir('tailor-cuda-home-');
  fs.mkdirSync(path.join(home, 'lib64'));
  fs.copyFileSync(lib, path.join(home, 'lib64', 'libtailor_cublaslt_emu.so'));
  assert.equal(ltProbe({ CUDA_HOME: home }).lt, `on (${path.join(home, 'lib64', 'libtailor_cublaslt_emu.so')} (version 0.0.0))`);
  // TAILOR_CUBLASLT naming a folder: the library's names in it
  assert.equal(ltProbe({ TAILOR_CUBLASLT: path.join(home, 'lib64') }).lt, `on (${path.join(home, 'lib64', 'libtailor_cublaslt_emu.so')} (version 0.0.0))`);
  assert.equal(ltProbe({ TAILOR_CUBLASLT: home }).lt, `off (TAILOR_CUBLASLT=${home} not usable: a folder without libtailor_cublaslt_emu.so)`);
  const cases: Array<[string, Record<string, string>, RegExp]> = [
    ['turned off', { TAILOR_CUBLASLT: '0' }, /^off \(turned off by TAILOR_CUBLASLT=0\)$/],
    ['a file that is not there', { TAILOR_CUBLASLT: '/nonexistent/libcublasLt.so.12' }, /^off \(TAILOR_CUBLASLT=\/nonexistent\/libcublasLt\.so\.12 not usable: \/nonexistent\/libcublasLt\.so\.12: cannot open shared object file/],
    ['a library whose products are wrong', { TAILOR_CUEMU_LT_WRONG: '1' }, /^off \(.*libtailor_cublaslt_emu\.so \(version 0\.0\.0\): its products are wrong on a test \(forward f32 \[0,0\] is .*, expected .*\): not used\)/],
    ['a library that refuses this device', { TAILOR_CUEMU_LT_REFUSE: '1' }, /^off \(no usable cuBLASLt library \(tried libtailor_cublaslt_emu\.so\); .*libtailor_cublaslt_emu\.so: cublasLtCreate returned status 8; set TAILOR_CUBLASLT to its path\)$/],
  ];
  if (libm) cases.push(['a library without its entry points', { TAILOR_CUBLASLT: libm }, new RegExp(`^off \\(TAILOR_CUBLASLT=${libm.replace(/[.]/g, '\\.')} not usable; ${libm.replace(/[.]/g, '\\.')} has no cublasLtCreate\\)$`)]);
  for (const [what, env, why] of cases) {
    const off = ltProbe(env);
    assert.match(off.lt, why, what);
    assert.doesNotMatch(off.backend, /cuBLASLt/, `${what}: the backend does not claim cuBLASLt`);
    assert.ok(maxAbsDiff(off.logprob, on.logprob) <= 1e-4, `${what}: our kernels' log-probs against cuBLASLt's: ${maxAbsDiff(off.logprob, on.logprob)}`);
  }
  // and tailor info's cuda line tells the analyst
  const a = ltInfo({});
  assert.equal(a.status, 0, a.stderr);
  assert.match(a.stdout, /^cuda .*; cuBLASLt on \(.*libtailor_cublaslt_emu\.so/m);
  const b = ltInfo({ TAILOR_CUBLASLT: '/nonexistent/libcublasLt.so.12' });
  assert.match(b.stdout, /^cuda .*; cuBLASLt off \(TAILOR_CUBLASLT=\/nonexistent\/libcublasLt\.so\.12 not usable/m);
});

// Real cuBLASLt libraries on a machine without a GPU: CUDA 11.8's and 12.4's, each with the headers that
// declare it, unpacked from Debian's archive by native/test/fetch-cublaslt.sh (npm run fetch:cublaslt; CI runs
// it) into .tmp/cublaslt/<major>. Our declarations (native/cuda/cublaslt_api.h) are compiled against each
// cublasLt.h by tailor_ltabi, the check gpu-check.sh runs against a toolkit's header; each library is opened
// by the addon as a user's would be.
const REAL_LT = path.join(REPO_ROOT, '.tmp', 'cublaslt');
const realLt = ['11', '12'].filter((m) => fs.existsSync(path.join(REAL_LT, m, 'lib', `libcublasLt.so.${m}`)) && fs.existsSync(path.join(REAL_LT, m, 'include', 'cublasLt.h')));
const realLtSkip = !built ? `${EMU} not built`
  : realLt.length === 0 ? `no real cuBLASLt in ${REAL_LT} (npm run fetch:cublaslt fetches Debian's, where apt can)`
  : /libcuda\.so\.1\b/.test(spawnSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '') ? 'this machine has a CUDA driver: the real cuBLASLt runs on its GPU under npm run test:gpu, not inside the emulator'
  : false;

test("real cuBLASLt (CUDA 11.8's and 12.4's, from Debian): our declarations compile against each one's cublasLt.h, and each library opens with every entry point; without a driver it refuses, tailor info says so, and our kernels compute", { skip: realLtSkip }, (t) => {
  assert.deepEqual(realLt, ['11', '12'], `both fetched (npm run fetch:cublaslt): ${realLt}`);
  const ours = ltProbe({ TAILOR_CUBLASLT: '0' });
  // the headers: tailor_ltabi in a tree of its own (nvcc configures it; no kernel is compiled)
  const nvcc = /^CMAKE_CUDA_COMPILER:\w+=(\S+)$/m.exec(fs.readFileSync(path.join(REPO_ROOT, 'native', 'build', 'CMakeCache.txt'), 'utf8'))?.[1];
  const tree = path.join(REPO_ROOT, 'native', 'build-ltabi');
  const ltabi = (include: string) => {
    const c = spawnSync('cmake', ['-S', path.join(REPO_ROOT, 'native'), '-B', tree, '-DTAILOR_CUDA=ON', `-DCMAKE_CUDA_COMPILER=${nvcc}`, '-DCMAKE_CUDA_ARCHITECTURES=75',
      '-DTAILOR_CUEMU=OFF', `-DTAILOR_CUBLASLT_INCLUDE=${include}`, '-UTAILOR_CUBLASLT_HEADER'], { encoding: 'utf8' });
    assert.equal(c.status, 0, c.stdout + c.stderr);
    assert.ok(c.stdout.includes(`cuBLASLt header for the ABI check: ${path.join(include, 'cublasLt.h')}\n`), c.stdout);
    const b = spawnSync('cmake', ['--build', tree, '--target', 'tailor_ltabi'], { encoding: 'utf8' });
    return { status: b.status, out: b.stdout + b.stderr };
  };
  if (!nvcc) t.diagnostic('the header checks need nvcc (this build has no CUDA): skipped');
  else {
    // the control: one value of a header changed, and the check names it
    const mutant = tempDir('tailor-ltabi-');
    const header = fs.readFileSync(path.join(REAL_LT, '12', 'include', 'cublasLt.h'), 'utf8');
    assert.match(header, /CUBLASLT_MATMUL_DESC_TRANSA = 3,/);
    fs.writeFileSync(path.join(mutant, 'cublasLt.h'), header.replace('CUBLASLT_MATMUL_DESC_TRANSA = 3,', 'CUBLASLT_MATMUL_DESC_TRANSA = 30,'));
    fs.copyFileSync(path.join(REAL_LT, '12', 'include', 'cublas_api.h'), path.join(mutant, 'cublas_api.h'));
    const bad = ltabi(mutant);
    assert.notEqual(bad.status, 0, 'a changed value is caught');
    assert.match(bad.out, /static assertion failed: CUBLASLT_MATMUL_DESC_TRANSA/);
  }
  for (const major of realLt) {
    const dir = path.join(REAL_LT, major);
    t.diagnostic(fs.readFileSync(path.join(dir, 'VERSION'), 'utf8').trim());
    if (nvcc) {
      const real = ltabi(path.join(dir, 'include'));
      assert.equal(real.status, 0, `${major}: ${real.out.slice(-3000)}`);
    }
    // the library, through the addon: opened, every entry point found (else it would say which is missing),
    // and cublasLtCreate refuses with CUBLAS_STATUS_NOT_INITIALIZED (no driver); the products are ours
    const lib = path.join(dir, 'lib', `libcublasLt.so.${major}`);
    const notInitialized = /CUBLAS_STATUS_NOT_INITIALIZED = (\d+),/.exec(fs.readFileSync(path.join(dir, 'include', 'cublas_api.h'), 'utf8'))![1];
    const why = `TAILOR_CUBLASLT=${lib} not usable; ${lib}: cublasLtCreate returned status ${notInitialized}`;
    const refused = ltProbe({ TAILOR_CUBLASLT: lib });
    assert.equal(refused.lt, `off (${why})`, major);
    assert.doesNotMatch(refused.backend, /cuBLASLt/);
    assert.deepEqual(refused.logprob, ours.logprob, `${major}: the products our kernels computed`);
    const info = ltInfo({ TAILOR_CUBLASLT: lib });
    assert.equal(info.status, 0, info.stderr);
    assert.ok(info.stdout.split('\n').some((l) => l.startsWith('cuda ') && l.includes(`; cuBLASLt off (${why})`)), info.stdout);
  }
});

test('a model larger than the device is a clear E_OOM with the numbers and the advice, and the addon goes on working', { skip: !built }, () => {
  // in a fresh process, so that the device holds nothing yet (the cuBLASLt workspace stays for a process's life)
  const script = `
    const { Model } = await import(${JSON.stringify(path.join(REPO_ROOT, 'dist', 'electron', 'core', 'engine', 'engine.js'))});
    const out = {};
    try { await Model.load(${JSON.stringify(HF)}, { backend: 'cuda' }); out.loaded = true; } catch (e) { out.code = e.code; out.message = e.message; }
    out.live = Model.liveCount();
    process.env.TAILOR_CUEMU_MEMORY = String(8 * 2 ** 30);
    const m = await Model.load(${JSON.stringify(HF)}, { backend: 'cuda' });
    out.after = (await m.score([${JSON.stringify(IDS)}]))[0].argmax.length;
    console.log(JSON.stringify(out));`;
  // a 512 KiB device; stories260K's fp32 weights need 1 MiB
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, TAILOR_ADDON: EMU, TAILOR_CUEMU_MEMORY: String(512 << 10) } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  assert.equal(out.code, 'E_OOM', JSON.stringify(out));
  // the fp32 arena (1043264 bytes), all of the device free, nothing of Tailor's on it yet
  assert.match(out.message, /^out of GPU memory on cuda \(device 0, Tailor CUDA emulator .*\): 1019 KiB more needed, 512 KiB free of 512 KiB \(Tailor holds 0 KiB\)\. /);
  assert.match(out.message, /The model's weights do not fit: load them in bf16 \(weights 'bf16', --weights bf16\)/, 'advice about the weights, not about training');
  assert.equal(out.live, 0, 'nothing is left held');
  assert.equal(out.after, IDS.length, 'a load on a larger device then works');
});

// `npm run test:gpu` runs cuda.test.js on a GPU, where its device branches (inference and LoRA on 'cuda', the
// CLI's --backend cuda, engineInfo's devices) run; no GPU is in CI, so here they run with the emulator as that
// GPU, as test:gpu would run them (TAILOR_TEST_GPU=1, the built architectures named), so that a lent GPU's
// few minutes are not lost to a branch that never ran
const testEnv = nestedTestEnv(process.env);
test("npm run test:gpu's device branches, rehearsed with the emulator as the GPU: cuda.test.js passes with none of them skipped, and the GPU benchmark writes its table", { skip: !built }, (t) => {
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', path.join(REPO_ROOT, 'dist', 'test', 'cuda.test.js')], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 1 << 24,
    env: { ...testEnv, TAILOR_ADDON: EMU, TAILOR_TEST_GPU: '1', TAILOR_TEST_CUDA_ARCHS: 'emulated' },
  });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  assert.equal(r.status, 0, `cuda.test.js with the emulator as the GPU:\n${out.slice(-4000)}`);
  const results = out.split('\n').filter((l) => /^(not )?ok \d+ - /.test(l));
  for (const l of results) t.diagnostic(l);
  // the tests whose device branch test:gpu exists for: each ran, not skipped
  for (const name of ['engineInfo reports the CUDA build', "backend 'cuda' is a clear E_UNSUPPORTED", 'tailor --backend: info shows', 'LoRA training on the CUDA backend follows the CPU loss curve']) {
    const l = results.find((x) => x.includes(name));
    assert.ok(l, `${name}: in the results`);
    assert.match(l, /^ok /, l);
    assert.doesNotMatch(l, /# SKIP/, `${name}: ran its device branch`);
  }
  // and its benchmark's device branch, at sizes the emulator does in seconds: the products' table (the emulator's
  // harness, its tiny shapes), and LoRA on bf16 weights through train-bench --backend cuda, 2×32 tokens, one
  // timed step (no PyTorch here: Tailor's side alone)
  const out2 = tempDir('tailor-gpu-bench-');
  const harness = path.join(REPO_ROOT, 'native', 'build', 'tailor_cudacheck_emu');
  const b = spawnSync(process.execPath, [path.join(REPO_ROOT, 'dist', 'bench', 'gpu-bench.js'), '--parts', 'matmul,bf16', '--cudacheck', harness, '--models', '260K', '--steps', '1', '--batch', '2', '--seq-len', '32'], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 1 << 24,
    env: { ...testEnv, TAILOR_ADDON: EMU, OUT: out2 },
  });
  const bout = (b.stdout ?? '') + (b.stderr ?? '');
  assert.equal(b.status, 0, `gpu-bench.js with the emulator as the GPU:\n${bout.slice(-4000)}`);
  const md = fs.readFileSync(path.join(out2, 'gpu-bench.md'), 'utf8');
  assert.match(md, /^Device 0: Tailor CUDA emulator \(CPU\) \(sm 8\.0, /m);
  assert.match(md, /^\| matmul_forward_bf16, tensor-core kernel, tile 128 \(picked\) \| 64 × 256 × 256 \| tiny \(emulator\) \| \d+\.\d+ \| /m, 'the products\' table');
  assert.match(md, /^\| bf16 tensor cores \(attention_tc\) \| 1 × 64, 2\/2, 64 \| /m, 'the training attention\'s table');
  assert.match(md, /^attention 32\/8 hd=128 T=32 .* bf16 tensor cores/m, 'the inference attention lines');
  assert.match(md, /^\| stories260K \| 260K \| 2×32 \| 1 \| \d+\.\d \| /m, 'a measured Tailor-CUDA tok/s');
  assert.match(md, /backend cuda \(device 0, .*bf16 weights/);
  const json = JSON.parse(fs.readFileSync(path.join(out2, 'gpu-bench.json'), 'utf8')) as { bf16?: unknown; matmul?: unknown };
  assert.ok(json.bf16 && json.matmul, 'both parts in the JSON');
  // what it also wrote under out/gpu-bench/ (the benchmark's own record) is not this test's to keep
  for (const f of /^written: (.*)$/m.exec(b.stdout ?? '')?.[1].split(', ') ?? []) if (f.startsWith('out/')) fs.rmSync(path.join(REPO_ROOT, f), { force: true });
});
