// train-bench.ts — LoRA training throughput and peak memory: Tailor vs plain PyTorch (bench/torch_lora.py)
// on the same HF folder, the same B×T random batches and the same thread count. Each engine runs in its
// own child process so that its peak RSS is its own. Prints a Markdown table; the numbers are measured
// and reported, never asserted. A second table times one importance (full-gradient) pass — the gradient
// of the mean next-token loss over one calibration batch w.r.t. every base weight, as LLM-Pruner's
// Taylor importance needs — in Tailor (Model.taylorStats) and PyTorch (torch_lora.py --importance).
//
//   npx tsc -p tsconfig.json && node dist/bench/train-bench.js [--threads N] [--models 260K,15M,110M]
//        [--steps N] [--python python3] [--cache DIR] [--json FILE] [--parts train,importance]
//        [--calib-samples 10] [--calib-len 64] [--repeats 3]
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomModel, Rng, type RandomModelSpec } from '../electron/core/formats/model-tensors.js';
import { writeHfFolder } from '../electron/core/formats/safetensors-write.js';
import { defaultCacheDir, repoRoot, sharedDir } from './paths.js';

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

function trainModel(key: TrainModel['key'], cacheDir: string, stepsOverride: number | undefined, log: (s: string) => void): TrainModel {
  const T = 128;
  if (key === '260K') {
    const dir = path.join(sharedDir(), 'models', 'stories260K-hf');
    if (!fs.existsSync(path.join(dir, 'model.safetensors'))) throw new Error(`missing ${dir} (the shared data folder)`);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { vocab_size: number };
    return { key, name: 'stories260K', dir, vocabSize: cfg.vocab_size, params: hfParamCount(dir), batch: 8, seqLen: T, steps: stepsOverride ?? 10 };
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
  return { key, name: def.name, dir, vocabSize: def.spec.vocabSize, params: hfParamCount(dir), batch: def.batch, seqLen: T, steps: stepsOverride ?? def.steps };
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
  ms: number;
  all_ms: number[];
  loss: number;
  sum_abs_wg_total: number;
  peak_rss_mb: number;
  [k: string]: unknown;
}

interface EngineResult {
  engine: string;
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

async function tailorChild(a: Map<string, string>): Promise<void> {
  const { Model } = await import('../electron/core/engine/engine.js');
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
  const m = await Model.load(a.get('dir')!, { threads, noTokenizer: true });
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
  t.dispose();
  m.dispose();
  const res: EngineResult = {
    engine: 'tailor',
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
  const buf = fs.readFileSync(a.get('data')!);
  const all = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const examples = [];
  for (let i = 0; i < n; i++) examples.push({ ids: all.slice(i * len, (i + 1) * len), weight: new Float32Array(len - 1).fill(1) });
  const m = await Model.load(a.get('dir')!, { threads, noTokenizer: true });
  await m.taylorStats(examples); // warm-up (untimed)
  let best: Awaited<ReturnType<typeof m.taylorStats>> | null = null;
  const allMs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const st = await m.taylorStats(examples);
    allMs.push(st.ms);
    if (!best || st.ms < best.ms) best = st;
  }
  m.dispose();
  const st = best!;
  let total = 0;
  for (const l of st.layers) for (const t of Object.values(l)) total += t.sumAbsWG;
  total += st.tokEmb.sumAbsWG + st.outNorm.sumAbsWG + st.lmHead.sumAbsWG;
  const res: ImportanceResult = {
    engine: 'tailor',
    ms: st.ms,
    all_ms: allMs,
    loss: st.loss,
    sum_abs_wg_total: total,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  console.log(JSON.stringify(res));
}

// ---- the parent ---------------------------------------------------------------------------------

function parseArgs(argv: string[]): Map<string, string> {
  const a = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith('--')) throw new Error(`unexpected argument ${k}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) a.set(k.slice(2), 'true');
    else {
      a.set(k.slice(2), next);
      i++;
    }
  }
  return a;
}

const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const fmtParams = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(0)}K`);

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (a.get('child') === 'tailor') return tailorChild(a);
  if (a.get('child') === 'tailor-importance') return tailorImportanceChild(a);

  const threads = Number(a.get('threads') ?? os.availableParallelism());
  const keys = (a.get('models') ?? '260K,15M,110M').split(',') as TrainModel['key'][];
  const stepsOverride = a.has('steps') ? Number(a.get('steps')) : undefined;
  const python = a.get('python') ?? (fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
  const cacheDir = a.get('cache') ?? defaultCacheDir();
  const log = (s: string): void => void process.stderr.write(s + '\n');
  const self = fileURLToPath(import.meta.url);
  const torchScript = path.join(repoRoot(), 'bench', 'torch_lora.py');
  const parts = new Set((a.get('parts') ?? 'train,importance').split(','));
  const calibSamples = Number(a.get('calib-samples') ?? 10);
  const calibLen = Number(a.get('calib-len') ?? 64);
  const repeats = Number(a.get('repeats') ?? 3);
  // see the PyTorch training child below for why OMP_WAIT_POLICY=PASSIVE
  const torchEnv = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads), ...(a.has('torch-untuned') ? {} : { OMP_WAIT_POLICY: 'PASSIVE' }) };

  const torchVer = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  const haveTorch = torchVer.status === 0;
  if (!haveTorch) log(`PyTorch not available through ${python} (${(torchVer.stderr || String(torchVer.error)).trim().split('\n').pop()}); Tailor only`);

  const rows: { m: TrainModel; tailor: EngineResult; torch: EngineResult | null }[] = [];
  const imp: { m: TrainModel; tailor: ImportanceResult; torch: ImportanceResult | null }[] = [];
  for (const key of keys) {
    const m = trainModel(key, cacheDir, stepsOverride, log);
    if (parts.has('importance')) {
      const file = writeCalib(m, cacheDir, calibSamples, calibLen);
      const common = ['--dir', m.dir, '--data', file, '--n', String(calibSamples), '--len', String(calibLen), '--threads', String(threads), '--repeats', String(repeats)];
      log(`${m.name}: importance pass, ${calibSamples}×${calibLen} calibration ids — Tailor ...`);
      const tr = spawnSync(process.execPath, [self, '--child', 'tailor-importance', ...common], { encoding: 'utf8', maxBuffer: 64 << 20 });
      if (tr.status !== 0) throw new Error(`Tailor importance child failed (${tr.status})\n${tr.stderr}`);
      const tailor = lastJson(tr.stdout, 'Tailor', tr.stderr) as unknown as ImportanceResult;
      log(`  Tailor ${fmt(tailor.ms, 1)} ms, ${fmt(tailor.peak_rss_mb)} MB`);
      let torch: ImportanceResult | null = null;
      if (haveTorch) {
        log(`  PyTorch ...`);
        const pr = spawnSync(python, [torchScript, '--importance', ...common], { encoding: 'utf8', maxBuffer: 64 << 20, env: torchEnv });
        if (pr.status !== 0) log(`  PyTorch failed (${pr.status}):\n${pr.stderr}`);
        else {
          torch = lastJson(pr.stdout, 'PyTorch', pr.stderr) as unknown as ImportanceResult;
          log(`  PyTorch ${fmt(torch.ms, 1)} ms, ${fmt(torch.peak_rss_mb)} MB`);
        }
      }
      imp.push({ m, tailor, torch });
    }
    if (!parts.has('train')) continue;
    const data = writeData(m, cacheDir);
    const common = ['--dir', m.dir, '--data', data.file, '--n', String(data.n), '--len', String(data.len), '--batch', String(m.batch), '--steps', String(m.steps), '--threads', String(threads)];
    log(`${m.name}: B=${m.batch} T=${m.seqLen}, ${m.steps} timed steps, ${threads} threads — Tailor ...`);
    const tr = spawnSync(process.execPath, [self, '--child', 'tailor', ...common], { encoding: 'utf8', maxBuffer: 64 << 20 });
    if (tr.status !== 0) throw new Error(`Tailor child failed (${tr.status})\n${tr.stderr}`);
    const tailor = lastJson(tr.stdout, 'Tailor', tr.stderr);
    log(`  Tailor ${fmt(tailor.tokens_per_sec, 1)} tok/s, ${fmt(tailor.peak_rss_mb)} MB`);
    let torch: EngineResult | null = null;
    if (haveTorch) {
      log(`  PyTorch ...`);
      const pr = spawnSync(python, [torchScript, ...common, '--rank', String(RANK), '--alpha', String(ALPHA), '--lr', String(LR), '--clip', String(CLIP)], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
        // Debian's torch mixes libgomp (its elementwise ops) with OpenBLAS's pthreads (its matmuls); with the
        // default OMP_WAIT_POLICY the spinning OpenMP workers starve OpenBLAS's and a step runs ~20× slower
        // (measured on stories260K). PASSIVE is the fair baseline; --torch-untuned keeps the default.
        env: torchEnv,
      });
      if (pr.status !== 0) log(`  PyTorch failed (${pr.status}):\n${pr.stderr}`);
      else {
        torch = lastJson(pr.stdout, 'PyTorch', pr.stderr);
        log(`  PyTorch ${fmt(torch.tokens_per_sec, 1)} tok/s, ${fmt(torch.peak_rss_mb)} MB`);
      }
    }
    rows.push({ m, tailor, torch });
  }

  const out: string[] = [];
  if (rows.length) {
    out.push('| model | params | B×T | steps | Tailor tok/s | PyTorch tok/s | Tailor/PyTorch | Tailor peak RSS MB | PyTorch peak RSS MB | RSS Tailor/PyTorch |');
    out.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const { m, tailor, torch } of rows) {
      const tps = torch?.tokens_per_sec ?? NaN;
      const rss = torch?.peak_rss_mb ?? NaN;
      out.push(
        `| ${m.name} | ${fmtParams(m.params)} | ${m.batch}×${m.seqLen} | ${m.steps} | ${fmt(tailor.tokens_per_sec, 1)} | ${fmt(tps, 1)} | ` +
          `${fmt(tailor.tokens_per_sec / tps, 2)}× | ${fmt(tailor.peak_rss_mb)} | ${fmt(rss)} | ${fmt(tailor.peak_rss_mb / rss, 2)} |`,
      );
    }
    out.push('');
    out.push(`LoRA r=${RANK}, alpha=${ALPHA}, dropout 0, on q,k,v,o,gate,up,down; AdamW lr ${LR}, clip ${CLIP}; F32; ${threads} threads; ` +
      `1 untimed warm-up step, then the timed steps; peak RSS = the child process's max RSS (weights + activations + optimizer).` +
      (haveTorch ? ` PyTorch ${torchVer.stdout.trim()} (plain nn.Module LLaMA in bench/torch_lora.py, OMP_WAIT_POLICY=${a.has('torch-untuned') ? 'default' : 'PASSIVE'}).` : ' PyTorch: not available.'));
    out.push('');
    out.push('Sanity check — base-model loss on the first batch (same weights, same ids; LoRA B = 0 so both equal the base loss):');
    for (const { m, tailor, torch } of rows) {
      out.push(
        `* ${m.name}: Tailor ${fmt(tailor.loss0, 4)} (first training step ${fmt(Number(tailor.firstStepLoss), 4)})` +
          (torch ? `, PyTorch ${fmt(torch.loss0, 4)} (Δ ${fmt(Math.abs(tailor.loss0 - torch.loss0), 5)})` : '') +
          `; last timed-step loss Tailor ${fmt(tailor.losses.at(-1) ?? NaN, 4)}` +
          (torch ? `, PyTorch ${fmt(torch.losses.at(-1) ?? NaN, 4)}` : ''),
      );
    }
    const target = rows.filter((r) => r.torch);
    if (target.length) {
      const met = target.filter((r) => r.tailor.tokens_per_sec >= 2 * r.torch!.tokens_per_sec && r.tailor.peak_rss_mb <= r.torch!.peak_rss_mb);
      out.push('');
      out.push(`Target (Tailor ≥ 2× PyTorch tok/s with peak RSS no higher): met on ${met.length}/${target.length} models` +
        (met.length ? ` (${met.map((r) => r.m.name).join(', ')})` : '') + '.');
    }
  }
  if (imp.length) {
    if (out.length) out.push('');
    out.push('| model | params | calib | Tailor ms | PyTorch ms | Tailor/PyTorch speed | Tailor peak RSS MB | PyTorch peak RSS MB |');
    out.push('|---|---|---|---|---|---|---|---|');
    for (const { m, tailor, torch } of imp) {
      const ms = torch?.ms ?? NaN;
      out.push(
        `| ${m.name} | ${fmtParams(m.params)} | ${calibSamples}×${calibLen} | ${fmt(tailor.ms, 1)} | ${fmt(ms, 1)} | ${fmt(ms / tailor.ms, 2)}× | ` +
          `${fmt(tailor.peak_rss_mb)} | ${fmt(torch?.peak_rss_mb ?? NaN)} |`,
      );
    }
    out.push('');
    out.push(`One importance pass = forward + backward of the mean next-token loss over one batch of ${calibSamples} calibration rows × ${calibLen} ids ` +
      `(${calibLen - 1} targets each; same seeded random ids for both) w.r.t. every base weight, no LoRA, F32, ${threads} threads, plus Σ|w·g| per tensor. ` +
      `1 untimed warm-up pass, then the best of ${repeats}. Tailor: Model.taylorStats (one layer's gradients held at a time; its own timing); ` +
      `PyTorch: torch_lora.py --importance (all gradients materialised; timed the same way, Σ|w·g| included). Speed = PyTorch ms / Tailor ms; ` +
      'peak RSS = that child process\'s max RSS.');
    const fb = imp.filter((r) => r.torch).map((r) => `${r.m.name} ${fmt(Number(r.torch!.ms_fwd_bwd), 1)}`);
    if (fb.length) out.push(`PyTorch forward + backward alone (without the Σ|w·g| reductions), ms: ${fb.join(', ')}.`);
    out.push('');
    out.push('Sanity check — loss and Σ|w·g| over every weight (tied head counted once), Tailor / PyTorch:');
    for (const { m, tailor, torch } of imp) {
      const rel = torch ? Math.abs(tailor.sum_abs_wg_total - torch.sum_abs_wg_total) / Math.abs(torch.sum_abs_wg_total) : NaN;
      out.push(
        `* ${m.name}: loss ${fmt(tailor.loss, 5)}` + (torch ? ` / ${fmt(torch.loss, 5)} (Δ ${fmt(Math.abs(tailor.loss - torch.loss), 6)})` : '') +
          `; Σ|w·g| ${tailor.sum_abs_wg_total.toPrecision(7)}` + (torch ? ` / ${torch.sum_abs_wg_total.toPrecision(7)} (rel Δ ${rel.toExponential(2)})` : ''),
      );
    }
  }
  console.log(out.join('\n'));
  if (a.has('json')) fs.writeFileSync(a.get('json')!, JSON.stringify({ threads, rows, importance: imp }, null, 2) + '\n');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack ?? e.message : String(e));
  process.exit(1);
});
