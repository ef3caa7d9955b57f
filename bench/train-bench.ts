// train-bench.ts — LoRA training throughput and peak memory: Tailor vs plain PyTorch (bench/torch_lora.py)
// on the same HF folder, the same B×T random batches and the same thread count. Each engine runs in its
// own child process so that its peak RSS is its own. Prints a Markdown table; the numbers are measured
// and reported, never asserted. A second table times one importance (full-gradient) pass — the gradient
// of the mean next-token loss over one calibration batch w.r.t. every base weight, as LLM-Pruner's
// Taylor importance needs — in Tailor (Model.taylorStats) and PyTorch (torch_lora.py --importance).
//
//
// --backend cuda runs Tailor on the CUDA backend (Model.load(dir, {backend: 'cuda'}); the trainer and the
// importance pass run on the model's backend) and PyTorch on the GPU (torch_lora.py --device cuda), both in
// fp32 (PyTorch with TF32 off), on the same model and batches; it adds GPU memory columns. With --weights bf16
// (CUDA only, training only) both sides hold the base weights in bf16 and LoRA + AdamW in fp32: Tailor's
// Model.load(dir, {weights: 'bf16'}) against torch_lora.py --dtype bf16 (a bf16 model as PEFT trains it).
// Without a usable CUDA device it prints "no CUDA device: …" and exits 77; without CUDA-enabled PyTorch it
// says so and prints Tailor's numbers alone. PyTorch's attention is F.scaled_dot_product_attention where its
// version has it (the footer says which ran).
//
//   npx tsc -p tsconfig.json && node dist/bench/train-bench.js [--backend cpu|cuda] [--weights f32|bf16] [--threads N]
//        [--models 260K,15M,110M] [--steps N] [--batch B] [--seq-len T] [--python python3] [--cache DIR]
//        [--json FILE] [--parts train,importance] [--calib-samples 10] [--calib-len 64] [--repeats 3]
//        [--timeout S] [--torch-untuned]
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomModel, Rng, type RandomModelSpec } from '../electron/core/formats/model-tensors.js';
import { writeHfFolder } from '../electron/core/formats/safetensors-write.js';
import { defaultCacheDir, repoRoot, sharedDir } from './paths.js';
import { parseArgs } from './args.js';

const RANK = 8;
const ALPHA = 16;
const LR = 2e-4;
const CLIP = 1;
const RECIPE_VERSION = 1;

interface TrainModel {
  key: '260K' | '15M' | '110M';
  name: string;
  /** HF folder */
  dir: string;
  vocabSize: number;
  params: number;
  batch: number;
  seqLen: number;
  steps: number;
}

type Backend = 'cpu' | 'cuda';
type Weights = 'f32' | 'bf16';

/** B×T and steps per model on the GPU: more tokens per step than on the CPU, so a step is not all launch overhead. */
const GPU_BATCH: Record<TrainModel['key'], { batch: number; seqLen: number; steps: number }> = {
  '260K': { batch: 16, seqLen: 256, steps: 10 },
  '15M': { batch: 16, seqLen: 256, steps: 10 },
  '110M': { batch: 16, seqLen: 256, steps: 10 },
};

const SHAPES: Record<'15M' | '110M', { name: string; spec: RandomModelSpec; batch: number; steps: number }> = {
  '15M': {
    name: 'stories15M-shape',
    spec: { dim: 288, nLayers: 6, nHead: 6, nKvHead: 6, ffn: 768, vocabSize: 32000, contextLength: 512, tied: true, seed: 15 },
    batch: 8,
    steps: 4,
  },
  '110M': {
    name: 'stories110M-shape',
    spec: { dim: 768, nLayers: 12, nHead: 12, nKvHead: 12, ffn: 2048, vocabSize: 32000, contextLength: 1024, tied: true, seed: 110 },
    batch: 4,
    steps: 3,
  },
};

function hfParamCount(dir: string): number {
  const buf = fs.readFileSync(path.join(dir, 'model.safetensors'));
  const hlen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')) as Record<string, { shape?: number[] }>;
  let n = 0;
  for (const [k, v] of Object.entries(header)) if (k !== '__metadata__' && v.shape) n += v.shape.reduce((a, b) => a * b, 1);
  return n;
}

interface BatchOverride {
  steps?: number;
  batch?: number;
  seqLen?: number;
}

function trainModel(key: TrainModel['key'], cacheDir: string, backend: Backend, o: BatchOverride, log: (s: string) => void): TrainModel {
  const gpu = backend === 'cuda' ? GPU_BATCH[key] : undefined;
  const T = o.seqLen ?? gpu?.seqLen ?? 128;
  if (key === '260K') {
    // the shared copy, else the one bundled in resources/ (the same files; a GPU machine has no ../shared)
    let dir = path.join(sharedDir(), 'models', 'stories260K-hf');
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) dir = path.join(repoRoot(), 'resources', 'models', 'stories260K');
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) throw new Error(`missing ${dir} (the shared data folder)`);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { vocab_size: number };
    return { key, name: 'stories260K', dir, vocabSize: cfg.vocab_size, params: hfParamCount(dir), batch: o.batch ?? gpu?.batch ?? 8, seqLen: T, steps: o.steps ?? gpu?.steps ?? 10 };
  }
  const def = SHAPES[key];
  const hash = crypto.createHash('sha256').update(JSON.stringify({ RECIPE_VERSION, spec: def.spec, dtype: 'f32', hf: true })).digest('hex').slice(0, 10);
  fs.mkdirSync(cacheDir, { recursive: true });
  const dir = path.join(cacheDir, `${def.name}-hf-f32-${hash}`);
  if (!fs.existsSync(path.join(dir, 'model.safetensors'))) {
    const t0 = performance.now();
    log(`writing ${dir} (random weights, once) ...`);
    const tmp = `${dir}.${process.pid}.tmp`;
    try {
      writeHfFolder(tmp, randomModel(def.spec));
      fs.rmSync(dir, { recursive: true, force: true });
      fs.renameSync(tmp, dir);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    log(`  done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  return {
    key,
    name: def.name,
    dir,
    vocabSize: def.spec.vocabSize,
    params: hfParamCount(dir),
    batch: o.batch ?? gpu?.batch ?? def.batch,
    seqLen: T,
    steps: o.steps ?? gpu?.steps ?? def.steps,
  };
}

/** (steps + 1) × batch rows of T + 1 seeded random ids (row block 0 is the warm-up batch), as raw int32. */
function writeData(m: TrainModel, cacheDir: string): { file: string; n: number; len: number } {
  const n = (m.steps + 1) * m.batch;
  const len = m.seqLen + 1;
  const rng = new Rng(1234 + m.vocabSize);
  const ids = new Int32Array(n * len);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.nextU32() % m.vocabSize;
  const file = path.join(cacheDir, `train-data-${m.key}-${n}x${len}.bin`);
  fs.writeFileSync(file, new Uint8Array(ids.buffer));
  return { file, n, len };
}

/** The calibration batch: `samples` rows of `len` seeded random ids (LLM-Pruner's default is 10 × 64). */
function writeCalib(m: TrainModel, cacheDir: string, samples: number, len: number): string {
  const rng = new Rng(4321 + m.vocabSize);
  const ids = new Int32Array(samples * len);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.nextU32() % m.vocabSize;
  const file = path.join(cacheDir, `calib-data-${m.key}-${samples}x${len}.bin`);
  fs.writeFileSync(file, new Uint8Array(ids.buffer));
  return file;
}

interface ImportanceResult {
  engine: string;
  /** where it ran: Tailor's backend string, PyTorch's device */
  backend?: string;
  ms: number;
  all_ms: number[];
  loss: number;
  sum_abs_wg_total: number;
  peak_rss_mb: number;
  [k: string]: unknown;
}

interface EngineResult {
  engine: string;
  /** where it ran: Tailor's Trainer.info().backend, PyTorch's device */
  backend?: string;
  /** Tailor on CUDA: device memory taken while it ran (free memory before load − after the run: weights, activations, LoRA/optimizer state and the caching allocator's reserve); PyTorch: max_memory_allocated */
  gpu_mb?: number;
  /** PyTorch: max_memory_reserved */
  gpu_reserved_mb?: number;
  tokens_per_sec: number;
  seconds: number;
  steps: number;
  tokens: number;
  loss0: number;
  losses: number[];
  peak_rss_mb: number;
  [k: string]: unknown;
}

function lastJson(stdout: string, what: string, stderr: string): EngineResult {
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`${what} printed no result\n--- stdout\n${stdout}\n--- stderr\n${stderr}`);
  return JSON.parse(line) as EngineResult;
}

// ---- the Tailor child ---------------------------------------------------------------------------

/** Free memory (bytes) of the device the CUDA backend picks (the first supported one); NaN on the CPU. */
async function deviceFree(backend: Backend): Promise<number> {
  if (backend !== 'cuda') return NaN;
  const { engineInfo } = await import('../electron/core/engine/engine.js');
  const d = engineInfo().cuda.devices.find((x) => x.supported);
  return d ? d.freeMemory : NaN;
}

async function tailorChild(a: Map<string, string>): Promise<void> {
  const { Model } = await import('../electron/core/engine/engine.js');
  const backend = (a.get('backend') ?? 'cpu') as Backend;
  const weights = (a.get('weights') ?? 'f32') as Weights;
  const { Trainer, DEFAULT_TRAIN } = await import('../electron/core/train/trainer.js');
  const threads = Number(a.get('threads'));
  const n = Number(a.get('n'));
  const len = Number(a.get('len'));
  const B = Number(a.get('batch'));
  const steps = Number(a.get('steps'));
  const buf = fs.readFileSync(a.get('data')!);
  const all = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const examples = [];
  for (let i = 0; i < n; i++) examples.push({ ids: all.slice(i * len, (i + 1) * len), weight: new Float32Array(len - 1).fill(1) });
  const free0 = await deviceFree(backend);
  const m = await Model.load(a.get('dir')!, { threads, noTokenizer: true, backend, weights });
  // bf16 weights are a CUDA backend's storage: make sure that is what ran (the CPU would compute in fp32)
  if (weights === 'bf16' && !/bf16 weights/.test(m.info.backend)) throw new Error(`asked for bf16 weights but the model runs on ${m.info.backend}`);
  const t = Trainer.create(
    m,
    {
      ...DEFAULT_TRAIN,
      lora: { ...DEFAULT_TRAIN.lora, rank: RANK, alpha: ALPHA, dropout: 0 },
      optim: { ...DEFAULT_TRAIN.optim, lr: LR, clip: CLIP, weightDecay: 0 },
      epochs: 1,
      batch: B,
      microBatch: B,
      maxLen: len - 1,
      seed: 0,
    },
    examples,
  );
  // base-model loss on rows [0, B) (LoRA B = 0 at init): the batch PyTorch's warm-up step sees
  const loss0 = await t.evalLoss(examples.slice(0, B));
  let firstStepLoss = NaN;
  await t.run({ maxSteps: 1, onStep: (s) => (firstStepLoss = s.loss) }); // warm-up
  const losses: number[] = [];
  let tokens = 0;
  const t0 = performance.now();
  await t.run({
    maxSteps: steps,
    onStep: (s) => {
      losses.push(s.loss);
      tokens += s.tokens;
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const info = t.info();
  const free1 = await deviceFree(backend);
  t.dispose();
  m.dispose();
  if (!info.backend.startsWith(backend)) throw new Error(`asked for backend '${backend}' but the trainer ran on ${info.backend}`);
  const res: EngineResult = {
    engine: 'tailor',
    backend: info.backend,
    gpu_mb: (free0 - free1) / 2 ** 20,
    tokens_per_sec: tokens / seconds,
    seconds,
    steps: losses.length,
    tokens,
    loss0,
    firstStepLoss,
    losses,
    lora_params: info.nParams,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(res));
}

async function tailorImportanceChild(a: Map<string, string>): Promise<void> {
  const { Model } = await import('../electron/core/engine/engine.js');
  const threads = Number(a.get('threads'));
  const n = Number(a.get('n'));
  const len = Number(a.get('len'));
  const repeats = Number(a.get('repeats') ?? 3);
  const backend = (a.get('backend') ?? 'cpu') as Backend;
  const buf = fs.readFileSync(a.get('data')!);
  const all = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const examples = [];
  for (let i = 0; i < n; i++) examples.push({ ids: all.slice(i * len, (i + 1) * len), weight: new Float32Array(len - 1).fill(1) });
  const free0 = await deviceFree(backend);
  const m = await Model.load(a.get('dir')!, { threads, noTokenizer: true, backend });
  if (m.info.backendKind !== backend) throw new Error(`asked for backend '${backend}' but the model runs on ${m.info.backend}`);
  const where = m.info.backend;
  await m.taylorStats(examples); // warm-up (untimed)
  let best: Awaited<ReturnType<typeof m.taylorStats>> | null = null;
  const allMs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const st = await m.taylorStats(examples);
    allMs.push(st.ms);
    if (!best || st.ms < best.ms) best = st;
  }
  const free1 = await deviceFree(backend);
  m.dispose();
  const st = best!;
  let total = 0;
  for (const l of st.layers) for (const t of Object.values(l)) total += t.sumAbsWG;
  total += st.tokEmb.sumAbsWG + st.outNorm.sumAbsWG + st.lmHead.sumAbsWG;
  const res: ImportanceResult = {
    engine: 'tailor',
    backend: where,
    gpu_mb: (free0 - free1) / 2 ** 20,
    ms: st.ms,
    all_ms: allMs,
    loss: st.loss,
    sum_abs_wg_total: total,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(res));
}

// ---- the parent ---------------------------------------------------------------------------------


const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const fmtRatio = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a');
const fmtParams = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(0)}K`);

interface TorchProbe {
  ok: boolean;
  python: string;
  version?: string;
  cuda?: boolean;
  cudaVersion?: string | null;
  device?: string | null;
  why?: string;
}

/** The first Python whose torch imports (with CUDA, when `wantCuda`, if any has it). */
function probeTorch(candidates: string[], wantCuda: boolean): TorchProbe {
  const code =
    'import json, torch; c = torch.cuda.is_available(); ' +
    'print(json.dumps({"version": torch.__version__, "cuda": c, "cudaVersion": torch.version.cuda, "device": torch.cuda.get_device_name(0) if c else None}))';
  const found: TorchProbe[] = [];
  let first: TorchProbe | null = null;
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', code], { encoding: 'utf8', timeout: 180_000 });
    const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
    if (r.status === 0 && line.startsWith('{')) {
      const p: TorchProbe = { ok: true, python: py, ...(JSON.parse(line) as Omit<TorchProbe, 'ok' | 'python'>) };
      if (!wantCuda || p.cuda) return p;
      found.push(p);
    } else {
      first ??= { ok: false, python: py, why: (r.stderr || String(r.error ?? `exit ${r.status}`)).trim().split('\n').pop() };
    }
  }
  return found[0] ?? first ?? { ok: false, python: candidates[0], why: 'no python' };
}

type ChildRun = { ok: true; stdout: string; stderr: string } | { ok: false; why: string };

/** One engine's child process, killed after `timeoutS` (a hung GPU kernel must not eat the run). */
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutS: number): ChildRun {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, env, timeout: timeoutS * 1000, killSignal: 'SIGKILL' });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT') return { ok: false, why: `timed out after ${timeoutS} s` };
  if (r.status !== 0) {
    const err = (r.stderr ?? '').trim().split('\n');
    // the error line itself (an EngineError's message, a Python exception), not the stack under it
    const msg = err.find((l) => /^\w*(Error|Exception)\b/.test(l)) ?? err.at(-1) ?? String(r.error);
    return { ok: false, why: `exit ${r.status ?? r.signal}: ${msg.trim()}` };
  }
  return { ok: true, stdout: r.stdout, stderr: r.stderr };
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.get('child') === 'tailor') return tailorChild(a);
  if (a.get('child') === 'tailor-importance') return tailorImportanceChild(a);

  const backend = (a.get('backend') ?? 'cpu') as Backend;
  if (backend !== 'cpu' && backend !== 'cuda') throw new Error(`--backend must be cpu or cuda (got ${backend})`);
  const gpu = backend === 'cuda';
  const weights = (a.get('weights') ?? 'f32') as Weights;
  if (weights !== 'f32' && weights !== 'bf16') throw new Error(`--weights must be f32 or bf16 (got ${weights})`);
  const bf16 = weights === 'bf16';
  if (bf16 && !gpu) throw new Error('--weights bf16 needs --backend cuda: bf16 weights are how a CUDA backend stores them (the CPU computes in fp32)');
  const threads = Number(a.get('threads') ?? os.availableParallelism());
  const keys = (a.get('models') ?? (gpu ? '15M,110M' : '260K,15M,110M')).split(',') as TrainModel['key'][];
  const num = (k: string): number | undefined => (a.has(k) ? Number(a.get(k)) : undefined);
  const override: BatchOverride = { steps: num('steps'), batch: num('batch'), seqLen: num('seq-len') };
  const cacheDir = a.get('cache') ?? defaultCacheDir();
  fs.mkdirSync(cacheDir, { recursive: true }); // the data files go there even when no model has to be written
  const log = (s: string): void => void process.stderr.write(s + '\n');
  const self = fileURLToPath(import.meta.url);
  const torchScript = path.join(repoRoot(), 'bench', 'torch_lora.py');
  const parts = new Set((a.get('parts') ?? (bf16 ? 'train' : 'train,importance')).split(','));
  if (bf16 && parts.has('importance')) throw new Error('--weights bf16 times LoRA training only (--parts train): the importance pass is compared in fp32');
  const calibSamples = Number(a.get('calib-samples') ?? 10);
  const calibLen = Number(a.get('calib-len') ?? 64);
  const repeats = Number(a.get('repeats') ?? 3);
  const timeoutS = Number(a.get('timeout') ?? 600);
  // see the PyTorch training child below for why OMP_WAIT_POLICY=PASSIVE
  const torchEnv = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), ...(a.has('torch-untuned') ? {} : { OMP_WAIT_POLICY: 'PASSIVE' }) };
  const T = gpu ? 'Tailor-CUDA' : 'Tailor';
  const P = gpu ? 'PyTorch-CUDA' : 'PyTorch';

  // the CUDA run needs a usable device: say why not, plainly, and stop (77: skipped, as tailor_cudacheck)
  let deviceName = '';
  if (gpu) {
    const { engineInfo } = await import('../electron/core/engine/engine.js');
    const c = engineInfo().cuda;
    if (!c.available) {
      console.log(`no CUDA device: ${c.reason ?? 'unknown'} — the CUDA training benchmark cannot run here (use --backend cpu)`);
      process.exit(77);
    }
    const d = c.devices.find((x) => x.supported)!;
    deviceName = `${d.name} (sm ${d.computeCapability}, ${(d.totalMemory / 2 ** 30).toFixed(0)} GiB), CUDA runtime ${c.runtimeVersion}, driver CUDA ${c.driverVersion}`;
    log(`CUDA device: ${deviceName}`);
  }

  // Debian's torch at /usr/bin/python3 on the CPU machines; on a GPU machine the python3 on PATH (its image's torch)
  const candidates = a.has('python') ? [a.get('python')!] : gpu ? ['python3', '/usr/bin/python3'] : ['/usr/bin/python3', 'python3'];
  const torchInfo = probeTorch([...new Set(candidates)], gpu);
  const python = torchInfo.python;
  let haveTorch = torchInfo.ok;
  let torchNote = '';
  if (!torchInfo.ok) torchNote = `PyTorch not available through ${candidates.join(' or ')} (${torchInfo.why}): ${T} numbers only`;
  else if (gpu && !torchInfo.cuda) {
    haveTorch = false;
    torchNote = `PyTorch ${torchInfo.version} at ${python} has no usable CUDA (torch.cuda.is_available() is False; built for CUDA ${torchInfo.cudaVersion ?? 'none'}): ${T} numbers only`;
  }
  if (torchNote) log(torchNote);
  else log(`PyTorch ${torchInfo.version} at ${python}${gpu ? ` on ${torchInfo.device} (CUDA ${torchInfo.cudaVersion})` : ''}`);
  const torchDesc = `PyTorch ${torchInfo.version}${gpu ? ` (CUDA ${torchInfo.cudaVersion}, ${torchInfo.device})` : ''}`;

  let failed = 0;
  const rows: { m: TrainModel; tailor: EngineResult | null; tailorWhy?: string; torch: EngineResult | null; torchWhy?: string }[] = [];
  const imp: { m: TrainModel; tailor: ImportanceResult | null; tailorWhy?: string; torch: ImportanceResult | null; torchWhy?: string }[] = [];
  for (const key of keys) {
    const m = trainModel(key, cacheDir, backend, override, log);
    if (parts.has('importance')) {
      const file = writeCalib(m, cacheDir, calibSamples, calibLen);
      const common = ['--dir', m.dir, '--data', file, '--n', String(calibSamples), '--len', String(calibLen), '--threads', String(threads), '--repeats', String(repeats)];
      log(`${m.name}: importance pass, ${calibSamples}×${calibLen} calibration ids — ${T} ...`);
      const tr = runChild(process.execPath, [self, '--child', 'tailor-importance', '--backend', backend, ...common], process.env, timeoutS);
      let tailor: ImportanceResult | null = null;
      let tailorWhy: string | undefined;
      if (tr.ok) {
        tailor = lastJson(tr.stdout, 'Tailor', tr.stderr) as unknown as ImportanceResult;
        log(`  ${T} ${fmt(tailor.ms, 1)} ms, ${fmt(tailor.peak_rss_mb)} MB RSS`);
      } else {
        failed++;
        tailorWhy = tr.why;
        log(`  ${T} FAILED: ${tr.why}`);
      }
      let torch: ImportanceResult | null = null;
      let torchWhy: string | undefined;
      if (haveTorch) {
        log(`  ${P} ...`);
        const pr = runChild(python, [torchScript, '--importance', '--device', backend, ...common], torchEnv, timeoutS);
        if (!pr.ok) log(`  ${P} failed: ${(torchWhy = pr.why)}`);
        else {
          torch = lastJson(pr.stdout, 'PyTorch', pr.stderr) as unknown as ImportanceResult;
          log(`  ${P} ${fmt(torch.ms, 1)} ms, ${fmt(torch.peak_rss_mb)} MB RSS`);
        }
      }
      imp.push({ m, tailor, tailorWhy, torch, torchWhy });
    }
    if (!parts.has('train')) continue;
    const data = writeData(m, cacheDir);
    const common = ['--dir', m.dir, '--data', data.file, '--n', String(data.n), '--len', String(data.len), '--batch', String(m.batch), '--steps', String(m.steps), '--threads', String(threads)];
    log(`${m.name}: B=${m.batch} T=${m.seqLen}, ${m.steps} timed steps, ${gpu ? 'CUDA' : `${threads} threads`} — ${T} ...`);
    const tr = runChild(process.execPath, [self, '--child', 'tailor', '--backend', backend, '--weights', weights, ...common], process.env, timeoutS);
    let tailor: EngineResult | null = null;
    let tailorWhy: string | undefined;
    if (tr.ok) {
      tailor = lastJson(tr.stdout, 'Tailor', tr.stderr);
      log(`  ${T} ${fmt(tailor.tokens_per_sec, 1)} tok/s, ${fmt(tailor.peak_rss_mb)} MB RSS` + (gpu ? `, ${fmt(tailor.gpu_mb ?? NaN)} MB GPU` : ''));
    } else {
      failed++;
      tailorWhy = tr.why;
      log(`  ${T} FAILED: ${tr.why}`);
    }
    let torch: EngineResult | null = null;
    let torchWhy: string | undefined;
    if (haveTorch) {
      log(`  ${P} ...`);
      // Debian's torch mixes libgomp (its elementwise ops) with OpenBLAS's pthreads (its matmuls); with the
      // default OMP_WAIT_POLICY the spinning OpenMP workers starve OpenBLAS's and a step runs ~20× slower
      // (measured on stories260K). PASSIVE is the fair baseline; --torch-untuned keeps the default.
      const args = [torchScript, ...common, '--rank', String(RANK), '--alpha', String(ALPHA), '--lr', String(LR), '--clip', String(CLIP), '--device', backend, '--dtype', weights];
      const pr = runChild(python, args, torchEnv, timeoutS);
      if (!pr.ok) log(`  ${P} failed: ${(torchWhy = pr.why)}`);
      else {
        torch = lastJson(pr.stdout, 'PyTorch', pr.stderr);
        log(`  ${P} ${fmt(torch.tokens_per_sec, 1)} tok/s, ${fmt(torch.peak_rss_mb)} MB RSS` + (gpu ? `, ${fmt(Number(torch.peak_gpu_mb))} MB GPU` : ''));
      }
    }
    rows.push({ m, tailor, tailorWhy, torch, torchWhy });
  }

  const out: string[] = [];
  const cell = (x: number | undefined, d: number, why?: string): string => (why ? `failed: ${why.replace(/\|/g, '/')}` : fmt(x ?? NaN, d));
  if (rows.length) {
    if (gpu) {
      out.push(`| model | params | B×T | steps | ${T} tok/s | ${P} tok/s | Tailor/PyTorch | Tailor GPU MB | PyTorch peak GPU MB (allocated / reserved) |`);
      out.push('|---|---|---|---|---|---|---|---|---|');
    } else {
      out.push('| model | params | B×T | steps | Tailor tok/s | PyTorch tok/s | Tailor/PyTorch | Tailor peak RSS MB | PyTorch peak RSS MB | RSS Tailor/PyTorch |');
      out.push('|---|---|---|---|---|---|---|---|---|---|');
    }
    for (const { m, tailor, tailorWhy, torch, torchWhy } of rows) {
      const tt = tailor?.tokens_per_sec ?? NaN;
      const tps = torch?.tokens_per_sec ?? NaN;
      const head = `| ${m.name} | ${fmtParams(m.params)} | ${m.batch}×${m.seqLen} | ${m.steps} | ${cell(tt, 1, tailorWhy)} | ${cell(tps, 1, torchWhy)} | ${fmtRatio(tt / tps)} | `;
      if (gpu) {
        const alloc = Number(torch?.peak_gpu_mb ?? NaN);
        const resv = Number(torch?.peak_gpu_reserved_mb ?? NaN);
        out.push(head + `${fmt(tailor?.gpu_mb ?? NaN)} | ${torch ? `${fmt(alloc)} / ${fmt(resv)}` : 'n/a'} |`);
      } else {
        const rss = torch?.peak_rss_mb ?? NaN;
        const trss = tailor?.peak_rss_mb ?? NaN;
        out.push(head + `${fmt(trss)} | ${fmt(rss)} | ${fmt(trss / rss, 2)} |`);
      }
    }
    out.push('');
    // which attention PyTorch ran (torch_lora.py: sdpa where its version has it)
    const att = [...new Set(rows.filter((r) => r.torch).map((r) => String(r.torch!.attention ?? 'naive')))].join(', ');
    if (gpu) {
      const precision = bf16
        ? `**both bf16 base weights, fp32 LoRA and AdamW**: Tailor's bf16 weights with fp32 activations, the weight products on ` +
          `bf16 tensor cores (backend ${rows.find((r) => r.tailor)?.tailor?.backend ?? 'n/a'}); PyTorch's model in bfloat16 (bf16 activations, ` +
          `float32 adapters, RMSNorm in float32, float32 logits for the loss: torch_lora.py --dtype bf16)`
        : `**both fp32**: Tailor's fp32 weights and CUDA kernels (backend ${rows.find((r) => r.tailor)?.tailor?.backend ?? 'n/a'}), ` +
          `PyTorch float32 with TF32 off (torch.backends.cuda.matmul.allow_tf32 = False)`;
      out.push(
        `LoRA r=${RANK}, alpha=${ALPHA}, dropout 0, on q,k,v,o,gate,up,down; AdamW lr ${LR}, clip ${CLIP}; ${precision}. ` +
          (att ? `PyTorch attention: ${att === 'sdpa' ? 'F.scaled_dot_product_attention (is_causal)' : att}. ` : '') +
          `Device: ${deviceName}. 1 untimed warm-up step, then the timed steps ` +
          `(PyTorch's between torch.cuda.synchronize() calls; Tailor's steps wait for their gradient norm, so only the last AdamW kernel ` +
          `can be outside its timer); tok/s = tokens in the timed steps / their wall time. Tailor GPU MB = the drop in the device's free memory ` +
          `from before the model loads to after the last step (weights, activations, LoRA and AdamW state, and what the caching allocator keeps); ` +
          `PyTorch = torch.cuda.max_memory_allocated / max_memory_reserved.` +
          (haveTorch ? ` ${torchDesc}, plain nn.Module LLaMA in bench/torch_lora.py --device cuda.` : ` ${torchNote}.`),
      );
    } else {
      out.push(`LoRA r=${RANK}, alpha=${ALPHA}, dropout 0, on q,k,v,o,gate,up,down; AdamW lr ${LR}, clip ${CLIP}; F32; ${threads} threads; ` +
        `1 untimed warm-up step, then the timed steps; peak RSS = the child process's max RSS (weights + activations + optimizer).` +
        (haveTorch ? ` ${torchDesc} (plain nn.Module LLaMA in bench/torch_lora.py, attention ${att || 'n/a'}, OMP_WAIT_POLICY=${a.has('torch-untuned') ? 'default' : 'PASSIVE'}).` : ` ${torchNote}.`));
    }
    out.push('');
    out.push('Sanity check — base-model loss on the first batch (same weights, same ids; LoRA B = 0 so both equal the base loss' +
      (bf16 ? '; with bf16 weights they differ by bf16 rounding: PyTorch\'s activations are bf16 too, Tailor\'s fp32' : '') + '):');
    for (const { m, tailor, torch } of rows) {
      if (!tailor) continue;
      out.push(
        `* ${m.name}: Tailor ${fmt(tailor.loss0, 4)}` +
          (torch ? `, PyTorch ${fmt(torch.loss0, 4)} (Δ ${fmt(Math.abs(tailor.loss0 - torch.loss0), 5)})` : '') +
          // the steps' losses are not comparable across the two: Tailor's trainer shuffles the rows (seed 0), PyTorch
          // takes them in order (its warm-up step is rows [0, B): the base loss above)
          `; training on each side's own batch order (Tailor's trainer shuffles the rows, PyTorch takes them in order): ` +
          `first step Tailor ${fmt(Number(tailor.firstStepLoss), 4)}, last timed step Tailor ${fmt(tailor.losses.at(-1) ?? NaN, 4)}` +
          (torch ? `, PyTorch ${fmt(torch.losses.at(-1) ?? NaN, 4)}` : ''),
      );
    }
    const target = rows.filter((r) => r.torch && r.tailor);
    if (target.length && gpu) {
      const met = target.filter((r) => r.tailor!.tokens_per_sec >= r.torch!.tokens_per_sec);
      out.push('');
      out.push(`Target (${T} tok/s ≥ ${P} tok/s on the same GPU, model and batch): met on ${met.length}/${target.length} models` +
        (met.length ? ` (${met.map((r) => r.m.name).join(', ')})` : '') + '.');
    } else if (target.length) {
      const met = target.filter((r) => r.tailor!.tokens_per_sec >= 2 * r.torch!.tokens_per_sec && r.tailor!.peak_rss_mb <= r.torch!.peak_rss_mb);
      out.push('');
      out.push(`Target (Tailor ≥ 2× PyTorch tok/s with peak RSS no higher): met on ${met.length}/${target.length} models` +
        (met.length ? ` (${met.map((r) => r.m.name).join(', ')})` : '') + '.');
    }
  }
  if (imp.length) {
    if (out.length) out.push('');
    const memHead = gpu ? 'Tailor GPU MB | PyTorch peak GPU MB (allocated / reserved)' : 'Tailor peak RSS MB | PyTorch peak RSS MB';
    out.push(`| model | params | calib | ${T} ms | ${P} ms | Tailor/PyTorch speed | ${memHead} |`);
    out.push('|---|---|---|---|---|---|---|---|');
    for (const { m, tailor, tailorWhy, torch, torchWhy } of imp) {
      const ms = torch?.ms ?? NaN;
      const tms = tailor?.ms ?? NaN;
      const mem = gpu
        ? `${fmt(Number(tailor?.gpu_mb ?? NaN))} | ${torch ? `${fmt(Number(torch.peak_gpu_mb))} / ${fmt(Number(torch.peak_gpu_reserved_mb))}` : 'n/a'}`
        : `${fmt(tailor?.peak_rss_mb ?? NaN)} | ${fmt(torch?.peak_rss_mb ?? NaN)}`;
      out.push(`| ${m.name} | ${fmtParams(m.params)} | ${calibSamples}×${calibLen} | ${cell(tms, 1, tailorWhy)} | ${cell(ms, 1, torchWhy)} | ${fmtRatio(ms / tms)} | ${mem} |`);
    }
    out.push('');
    out.push(`One importance pass = forward + backward of the mean next-token loss over one batch of ${calibSamples} calibration rows × ${calibLen} ids ` +
      `(${calibLen - 1} targets each; same seeded random ids for both) w.r.t. every base weight, no LoRA, F32, ${gpu ? 'on the GPU' : `${threads} threads`}, plus Σ|w·g| per tensor. ` +
      `1 untimed warm-up pass, then the best of ${repeats}. Tailor: Model.taylorStats (one layer's gradients held at a time; its own timing); ` +
      `PyTorch: torch_lora.py --importance (all gradients materialised; timed the same way, Σ|w·g| included). Speed = PyTorch ms / Tailor ms; ` +
      (gpu ? 'GPU MB as in the training table.' : 'peak RSS = that child process\'s max RSS.'));
    const fb = imp.filter((r) => r.torch).map((r) => `${r.m.name} ${fmt(Number(r.torch!.ms_fwd_bwd), 1)}`);
    if (fb.length) out.push(`PyTorch forward + backward alone (without the Σ|w·g| reductions), ms: ${fb.join(', ')}.`);
    out.push('');
    out.push('Sanity check — loss and Σ|w·g| over every weight (tied head counted once), Tailor / PyTorch:');
    for (const { m, tailor, torch } of imp) {
      if (!tailor) continue;
      const rel = torch ? Math.abs(tailor.sum_abs_wg_total - torch.sum_abs_wg_total) / Math.abs(torch.sum_abs_wg_total) : NaN;
      out.push(
        `* ${m.name}: loss ${fmt(tailor.loss, 5)}` + (torch ? ` / ${fmt(torch.loss, 5)} (Δ ${fmt(Math.abs(tailor.loss - torch.loss), 6)})` : '') +
          `; Σ|w·g| ${tailor.sum_abs_wg_total.toPrecision(7)}` + (torch ? ` / ${torch.sum_abs_wg_total.toPrecision(7)} (rel Δ ${rel.toExponential(2)})` : ''),
      );
    }
  }
  console.log(out.join('\n'));
  if (a.has('json')) {
    const torchJson = { ...torchInfo, used: haveTorch, note: torchNote || null };
    fs.writeFileSync(a.get('json')!, JSON.stringify({ backend, weights, device: deviceName || null, threads, torch: torchJson, rows, importance: imp }, null, 2) + '\n');
  }
  if (failed) {
    log(`${failed} Tailor run(s) failed`);
    process.exitCode = 1;
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exit(1);
});
