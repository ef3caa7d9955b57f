// bench.ts — `npm run bench`: Tailor's native engine and llama.cpp (node-llama-cpp, CPU) side by side on the
// same F32 GGUF files at the same thread count: prompt processing (pp, tokens/s over a whole prompt) and
// generation (tg, tokens/s over single-token decode steps). See bench/README.md.
//
//   node dist/bench/bench.js [--quick] [--threads N] [--reps N] [--stat best|median] [--models 260K,15M,110M]
//                            [--fa auto|on|off] [--wall] [--json FILE] [--cache DIR]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { engineInfo } from '../electron/core/engine/engine.js';
import { stories260K, syntheticModel, type BenchModel } from './models.js';
import { defaultCacheDir } from './paths.js';
import { headline, promptIds, sleep, summarize, type Stat, type Summary } from './stats.js';
import { TailorRunner, type Timed } from './tailor-runner.js';
import { LlamaHost, LlamaRunner, type FlashAttention, type LlamaContextInfo } from './llama-runner.js';

interface EngineResult {
  /** tokens/s from engine-measured time, one per repetition */
  tps: Summary;
  /** tokens/s from Node wall-clock time */
  wallTps: Summary;
  /** tokens one timed run processes */
  tokens: number;
}

interface Row {
  model: string;
  params: number;
  test: string;
  reps: number;
  tailor: EngineResult;
  llama: EngineResult;
  /** Tailor / llama.cpp of the headline tok/s (engine-measured) */
  ratio: number;
  /** the same from wall-clock times */
  wallRatio: number;
  /** tg only: how many leading greedy ids both engines agree on, of how many */
  agree?: { same: number; of: number };
}

/** A test keeps adding repetitions (up to --reps, at least MIN_REPS) while it has spent less than this. */
const TEST_BUDGET_MS = 12_000;
const MIN_REPS = 3;
/** Cells whose ± half-range exceeds this are counted as noisy in the footer. */
const NOISY = 0.2;

const USAGE = `usage: node dist/bench/bench.js [options]
  --quick           stories260K and the 15M shape only, fewer repetitions
  --threads N       threads for both engines (default: all cores, ${os.availableParallelism()})
  --reps N          timed repetitions per test (default 5, --quick 3; a test stops adding
                    repetitions after ~${TEST_BUDGET_MS / 1000} s once it has ${MIN_REPS})
  --stat S          best (default: the fastest run; interference only ever slows a run down) or median
  --models LIST     comma-separated subset of 260K,15M,110M
  --fa MODE         llama.cpp flash attention: auto (its default), on, off
  --wall            also print the table from Node wall-clock times
  --json FILE       write all samples and settings as JSON
  --cache DIR       where generated models are kept (default ${defaultCacheDir()})`;

function log(msg: string): void {
  process.stderr.write(msg + '\n');
}

function fmtNum(v: number): string {
  return v >= 1000 ? v.toFixed(0) : v >= 100 ? v.toFixed(1) : v.toFixed(2);
}

function fmtTps(s: Summary, stat: Stat): string {
  return `${fmtNum(headline(s, stat))} ±${(s.spread * 100).toFixed(0)}%`;
}

function fmtParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(n);
}

function table(rows: Row[], pick: 'engine' | 'wall', stat: Stat): string {
  const out = [
    '| model | params | test | Tailor tok/s | llama.cpp tok/s | Tailor/llama.cpp |',
    '|---|---:|---|---:|---:|---:|',
  ];
  for (const r of rows) {
    const t = pick === 'engine' ? r.tailor.tps : r.tailor.wallTps;
    const l = pick === 'engine' ? r.llama.tps : r.llama.wallTps;
    const ratio = pick === 'engine' ? r.ratio : r.wallRatio;
    out.push(`| ${r.model} | ${fmtParams(r.params)} | ${r.test} | ${fmtTps(t, stat)} | ${fmtTps(l, stat)} | ${ratio.toFixed(2)} |`);
  }
  return out.join('\n');
}

function leadingAgreement(a: number[] = [], b: number[] = []): { same: number; of: number } {
  const of = Math.min(a.length, b.length);
  let same = 0;
  while (same < of && a[same] === b[same]) same++;
  return { same, of };
}

function nodeLlamaCppVersion(): string {
  try {
    const p = path.join(path.dirname(new URL(import.meta.resolve('node-llama-cpp')).pathname), '..', 'package.json');
    return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

interface Test {
  name: string;
  run: (e: TailorRunner | LlamaRunner) => Promise<Timed>;
}

function testsFor(m: BenchModel): Test[] {
  const tests: Test[] = [];
  for (const n of m.ppSizes) {
    if (n > m.contextLength) continue;
    const prompt = promptIds(n, m.vocabSize, 1000 + n);
    tests.push({ name: `pp${n}`, run: (e) => e.pp(prompt) });
  }
  const short = promptIds(8, m.vocabSize, 7);
  const tgN = Math.min(m.tgTokens, m.contextLength - short.length - 1);
  tests.push({ name: `tg${tgN}`, run: (e) => e.tg(short, tgN) });
  return tests;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      threads: { type: 'string' },
      reps: { type: 'string' },
      stat: { type: 'string', default: 'best' },
      models: { type: 'string' },
      fa: { type: 'string', default: 'auto' },
      wall: { type: 'boolean', default: false },
      json: { type: 'string' },
      cache: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const threads = values.threads ? Number(values.threads) : os.availableParallelism();
  const reps = values.reps ? Number(values.reps) : values.quick ? 3 : 5;
  const fa = values.fa as FlashAttention;
  const stat = values.stat as Stat;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a positive integer\n${USAGE}`);
  if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer\n${USAGE}`);
  if (!['auto', 'on', 'off'].includes(fa)) throw new Error(`--fa must be auto, on or off\n${USAGE}`);
  if (!['best', 'median'].includes(stat)) throw new Error(`--stat must be best or median\n${USAGE}`);
  const want = (values.models ?? (values.quick ? '260K,15M' : '260K,15M,110M')).split(',').map((s) => s.trim().toUpperCase());
  for (const w of want) if (!['260K', '15M', '110M'].includes(w)) throw new Error(`unknown model '${w}'\n${USAGE}`);
  const cacheDir = values.cache ?? defaultCacheDir();

  const models: BenchModel[] = [];
  if (want.includes('260K')) models.push(stories260K());
  if (want.includes('15M')) models.push(syntheticModel('15M', cacheDir, log));
  if (want.includes('110M')) models.push(syntheticModel('110M', cacheDir, log));

  const started = Date.now();
  const host = await LlamaHost.create(threads).catch((e: unknown) => {
    throw new Error(
      `could not start llama.cpp through node-llama-cpp (is the devDependency and its prebuilt CPU binary installed? npm ci): ${(e as Error).message}`,
      { cause: e },
    );
  });
  const llamaVersion = host.version;
  const llamaSystemInfo = host.systemInfo;
  const rows: Row[] = [];
  let tailorBackend = '';
  let tailorThreads = 0;
  const llamaInfos: Record<string, LlamaContextInfo> = {};

  try {
    for (const m of models) {
      log(`\n== ${m.name} (${m.path})`);
      const tailor = await TailorRunner.open(m, threads);
      tailorBackend = tailor.backend;
      tailorThreads = tailor.threads;
      const llama = await LlamaRunner.open(host, m, threads, fa);
      llamaInfos[m.name] = llama.info;
      if (llama.info.threads !== threads) log(`  note: llama.cpp context reports ${llama.info.threads} threads (asked for ${threads})`);
      try {
        for (const t of testsFor(m)) {
          // one untimed warm-up each (page faults, caches, lazily built graphs), then the engines take turns
          const t0 = performance.now();
          const warmT = await t.run(tailor);
          await sleep(10);
          const warmL = await t.run(llama);
          const tS: Timed[] = [];
          const lS: Timed[] = [];
          while (tS.length < reps && (tS.length < MIN_REPS || performance.now() - t0 < TEST_BUDGET_MS)) {
            await sleep(10);
            tS.push(await t.run(tailor));
            await sleep(10);
            lS.push(await t.run(llama));
          }
          const res = (s: Timed[]): EngineResult => ({
            tps: summarize(s.map((x) => (x.tokens * 1000) / x.ms)),
            wallTps: summarize(s.map((x) => (x.tokens * 1000) / x.wallMs)),
            tokens: s[0].tokens,
          });
          const tailorRes = res(tS);
          const llamaRes = res(lS);
          const row: Row = {
            model: m.name,
            params: tailor.nParams,
            test: t.name,
            reps: tS.length,
            tailor: tailorRes,
            llama: llamaRes,
            ratio: headline(tailorRes.tps, stat) / headline(llamaRes.tps, stat),
            wallRatio: headline(tailorRes.wallTps, stat) / headline(llamaRes.wallTps, stat),
          };
          if (warmT.ids && warmL.ids) row.agree = leadingAgreement(warmT.ids, warmL.ids);
          rows.push(row);
          log(
            `  ${t.name.padEnd(6)} Tailor ${fmtTps(tailorRes.tps, stat).padStart(14)}  llama.cpp ${fmtTps(llamaRes.tps, stat).padStart(14)}` +
              `  ratio ${row.ratio.toFixed(2)}  (${row.reps} runs)` +
              (row.agree ? `  greedy ids agree: ${row.agree.same}/${row.agree.of}` : ''),
          );
        }
      } finally {
        tailor.dispose();
        await llama.dispose();
      }
    }
  } finally {
    await host.dispose().catch(() => {});
  }

  // ---- report ----
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const li = Object.values(llamaInfos)[0];
  const eInfo = engineInfo();
  const repCounts = [...new Set(rows.map((r) => r.reps))].sort((a, b) => a - b);
  const repText = repCounts.length > 1 ? `${repCounts[0]}–${repCounts[repCounts.length - 1]}` : String(repCounts[0] ?? reps);
  console.log(table(rows, 'engine', stat));
  console.log('');
  console.log(
    `tok/s: ${stat === 'best' ? 'best' : 'median'} of ${repText} timed runs after one warm-up, ± half the min–max range of the runs; ` +
      `time as each engine measures it (Tailor: promptMs / generateMs; llama.cpp: its llama_perf counters). ` +
      `ppN = an N-token prompt (batches of 512) plus the last position's logits; tgN = N single-token greedy decode steps ` +
      `after an 8-token prompt. F32 weights.`,
  );
  console.log(
    `threads: ${threads} for both (Tailor pool ${tailorThreads}, llama.cpp context ${li?.threads ?? '?'}); ` +
      `${os.availableParallelism()} × ${cpu}; Node ${process.version}`,
  );
  console.log(`Tailor: backend ${tailorBackend} (engine BLAS ${eInfo.blas}), KV cache f32`);
  console.log(
    `llama.cpp: ${llamaVersion} via node-llama-cpp ${nodeLlamaCppVersion()}; batch ${li?.batchSize ?? '?'}, ` +
      `flash attention ${li?.flashAttention ?? '?'}, KV cache ${li?.kvType ?? '?'}; ${llamaSystemInfo}`,
  );
  const agree = rows.filter((r) => r.agree).map((r) => `${r.model} ${r.agree!.same}/${r.agree!.of}`);
  if (agree.length) console.log(`greedy tg ids identical from the start in both engines: ${agree.join(', ')}`);
  const noisy = rows.filter((r) => r.tailor.tps.spread > NOISY || r.llama.tps.spread > NOISY).length;
  if (noisy)
    console.log(
      `note: ${noisy} of ${rows.length} rows vary by more than ±${NOISY * 100}% between runs; this machine's timing is noisy ` +
        `(rerun, raise --reps, or compare at --threads 1)`,
    );
  const pp = rows.filter((r) => r.test.startsWith('pp'));
  if (pp.length) {
    const low = pp.reduce((a, b) => (b.ratio < a.ratio ? b : a));
    const below = pp.filter((r) => r.ratio < 1).map((r) => `${r.model} ${r.test} ${r.ratio.toFixed(2)}`);
    console.log(
      `target Tailor/llama.cpp ≥ 1.0 for prompt processing at F32: ` +
        (below.length ? `not met for ${below.join(', ')}` : `met for all ${pp.length} pp rows (lowest ${low.ratio.toFixed(2)}, ${low.model} ${low.test})`),
    );
  }
  if (values.wall) {
    console.log(
      "\nThe same runs timed by Node's wall clock around each call (adds Tailor's per-call session set-up, KV-cache " +
        "allocation included, and node-llama-cpp's JavaScript round trip per generated token):\n",
    );
    console.log(table(rows, 'wall', stat));
  }
  log(`\n(bench took ${((Date.now() - started) / 1000).toFixed(0)} s)`);

  if (values.json) {
    const doc = {
      date: new Date().toISOString(),
      host: { cpu, cores: os.availableParallelism(), platform: `${os.platform()} ${os.release()}`, node: process.version },
      settings: { threads, reps, stat, quick: values.quick, flashAttention: fa, cacheDir, testBudgetMs: TEST_BUDGET_MS },
      tailor: { backend: tailorBackend, threads: tailorThreads, engineInfo: eInfo },
      llamaCpp: { version: llamaVersion, nodeLlamaCpp: nodeLlamaCppVersion(), systemInfo: llamaSystemInfo, contexts: llamaInfos },
      models: models.map((m) => ({ name: m.name, path: m.path, synthetic: m.synthetic, contextLength: m.contextLength, vocabSize: m.vocabSize })),
      results: rows,
    };
    fs.mkdirSync(path.dirname(path.resolve(values.json)), { recursive: true });
    fs.writeFileSync(values.json, JSON.stringify(doc, null, 2) + '\n');
    log(`wrote ${values.json}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
