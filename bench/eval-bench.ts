// eval-bench.ts — the evaluation stage's speed: the multiple-choice requests of the paper's tasks (their first
// items, zero-shot, Llama 2's tokenizer, as eval.ts builds them) scored by Tailor with the context an item's
// choices share computed once (the default), by Tailor computing every request whole (sharePrefixes: false,
// what it did before), and by llama.cpp on the same GGUF file, keeping the prefix each request shares with
// the previous one in its cache (the most its API allows). Prints a Markdown table of requests/s and the
// ratios, and checks that the three agree: the largest difference of a continuation's log-likelihood and
// the items whose predicted choice differs. llama.cpp runs with an F32 KV cache so that the comparison is exact.
//   npx tsc -p tsconfig.json && node dist/bench/eval-bench.js [--models 15M,110M] [--items 24] [--threads N]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../electron/core/engine/engine.js';
import { accuracy, buildRequests, scoreRequests } from '../electron/core/eval/eval.js';
import { getTask } from '../electron/core/tasks/index.js';
import { parseModelProto, SentencePieceTokenizer } from '../electron/core/tokenizer/index.js';
import { parseArgs } from './args.js';
import { LlamaHost, LlamaRunner } from './llama-runner.js';
import { stories260K, syntheticModel, type BenchModel } from './models.js';
import { defaultCacheDir, sharedDir } from './paths.js';

const TASKS = ['boolq', 'piqa', 'hellaswag', 'winogrande', 'arc_easy', 'arc_challenge', 'openbookqa'];
const log = (s: string) => process.stderr.write(s + '\n');

interface Row {
  model: string;
  task: string;
  requests: number;
  tokens: number;
  shared: number; // ms
  whole: number;
  llama: number;
  diffLlama: number; // largest |Δ| of a continuation log-likelihood, Tailor shared against llama.cpp
  diffWhole: number; // … against Tailor whole
  picks: number; // items whose argmax differs between Tailor (shared) and llama.cpp
  picksWhole: number; // … between Tailor shared and whole
}

const differing = (a: number[], b: number[]) => a.filter((x, i) => x !== b[i]).length;

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const threads = Number(a.get('threads') ?? os.availableParallelism());
  const items = Number(a.get('items') ?? 24);
  const want = (a.get('models') ?? '15M,110M').split(',').map((s) => s.trim().toUpperCase());
  const cacheDir = a.get('cache') ?? defaultCacheDir();
  const models: BenchModel[] = want.map((w) => (w === '260K' ? stories260K() : syntheticModel(w as '15M' | '110M', cacheDir, log)));
  const spm = fs.readFileSync(path.join(sharedDir(), 'models', 'llama2-tokenizer', 'tokenizer.model'));
  const tok = new SentencePieceTokenizer(parseModelProto(spm));
  const host = await LlamaHost.create(threads);
  const rows: Row[] = [];
  let backend = '';
  try {
    for (const m of models) {
      if (m.vocabSize !== 32000) throw new Error(`${m.name}: the requests are Llama 2 token ids; the model's vocabulary must be Llama 2's`);
      log(`== ${m.name}`);
      const tailor = await Model.load(m.path, { threads, noTokenizer: true });
      backend = tailor.info.backend;
      const llama = await LlamaRunner.open(host, m, threads, 'off', 'F32'); // flash attention off: its CPU kernel works in F16
      try {
        for (const task of TASKS) {
          const chosen = getTask(task, { dataDir: path.join(sharedDir(), 'datasets') }).evalItems({ limit: items });
          const reqs = buildRequests(tok, chosen, m.contextLength);
          const picks = (ll: number[]) => accuracy(chosen, reqs, ll).items.map((r) => r.pred);
          await scoreRequests(tailor, reqs.slice(0, 8)); // warm-up (workspace, BLAS threads)
          let t0 = performance.now();
          const shared = await scoreRequests(tailor, reqs);
          const sharedMs = performance.now() - t0;
          t0 = performance.now();
          const whole = await scoreRequests(tailor, reqs, { sharePrefixes: false });
          const wholeMs = performance.now() - t0;
          const l = await llama.continuationLogLikelihoods(reqs);
          const diffLlama = Math.max(...shared.map((x, i) => Math.abs(x - l.ll[i])));
          const diffWhole = Math.max(...shared.map((x, i) => Math.abs(x - whole[i])));
          const p = picks(shared);
          rows.push({
            model: m.name, task, requests: reqs.length, tokens: reqs.reduce((s, r) => s + r.ids.length, 0),
            shared: sharedMs, whole: wholeMs, llama: l.wallMs, diffLlama, diffWhole,
            picks: differing(p, picks(l.ll)), picksWhole: differing(p, picks(whole)),
          });
          log(`  ${task}: ${reqs.length} requests, shared ${sharedMs.toFixed(0)} ms, whole ${wholeMs.toFixed(0)} ms, llama.cpp ${l.wallMs.toFixed(0)} ms`);
        }
      } finally {
        tailor.dispose();
        await llama.dispose();
      }
    }
  } finally {
    await host.dispose();
  }
  const rps = (n: number, ms: number) => (n / (ms / 1000)).toFixed(1);
  const lines = [
    `| model | task | requests | tokens | Tailor, shared prefixes (req/s) | Tailor, each whole (req/s) | llama.cpp, cached prefix (req/s) | shared / whole | Tailor shared / llama.cpp | max log-lik. Δ: llama.cpp, whole | picks differing: llama.cpp, whole |`,
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) =>
      `| ${r.model} | ${r.task} | ${r.requests} | ${r.tokens} | ${rps(r.requests, r.shared)} | ${rps(r.requests, r.whole)} | ${rps(r.requests, r.llama)} | ${(r.whole / r.shared).toFixed(2)} | ${(r.llama / r.shared).toFixed(2)} | ${r.diffLlama.toExponential(1)}, ${r.diffWhole.toExponential(1)} | ${r.picks}, ${r.picksWhole} |`),
  ];
  const sum = (k: 'shared' | 'whole' | 'llama') => rows.reduce((s, r) => s + r[k], 0);
  lines.push('', `All tasks: shared / whole ${(sum('whole') / sum('shared')).toFixed(2)}, Tailor shared / llama.cpp ${(sum('llama') / sum('shared')).toFixed(2)} (wall time of the whole request lists; ${items} items per task, ${threads} threads; Tailor ${backend}; llama.cpp ${host.version}, F32 KV cache).`);
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
