// prune-bench.ts — LLM-Pruner's Table 1 in miniature: TinyStories perplexity of stories260K before
// pruning and after each importance method, at ratios 0.2 and 0.5, pruning layers 1-3 and all layers.
// Calibration: 10 × 64 tokens from the first 200 KB of the TinyStories sample (LLM-Pruner's default
// size); evaluation: 120 KB further on, windows of 128. Random is reported as the mean (and range) of
// several seeds. Measured, never asserted: `node dist/bench/prune-bench.js [--seeds 3]`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Model } from '../electron/core/engine/engine.js';
import { calibrationFromText, pruneModel, writePruned, type ImportanceMethod } from '../electron/core/prune/prune.js';
import { perplexity } from '../electron/core/text/perplexity.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const SHARED = process.env.TAILOR_SHARED ?? path.resolve(ROOT, '..', 'shared');
const MODEL = path.join(SHARED, 'models', 'stories260K-hf');
const TEXT = fs.readFileSync(path.join(SHARED, 'datasets', 'tinystories', 'validation_head.txt'), 'utf8');
const seedsArg = process.argv.indexOf('--seeds');
const SEEDS = seedsArg > 0 ? Number(process.argv[seedsArg + 1]) : 3;
const METHODS: ImportanceMethod[] = ['taylor', 'taylor-vector', 'taylor-second', 'magnitude', 'magnitude-l2', 'wanda-sp'];

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tailor-prune-bench-'));
  const m = await Model.load(MODEL);
  const tok = m.requireTokenizer();
  const calibIds = tok.encode(TEXT.slice(0, 200_000));
  const evalText = TEXT.slice(400_000, 520_000);
  const before = (await perplexity(m, evalText, { seqLen: 128 })).ppl;
  const ppl = async (method: ImportanceMethod, ratio: number, layers: [number, number], seed: number) => {
    const calib = calibrationFromText(calibIds, 10, 64, seed, m.info.bosId);
    const r = await pruneModel(m, { ratio, method, calib, seed, scope: { attnLayers: layers, mlpLayers: layers } });
    const out = path.join(tmp, `${method}-${ratio}-${layers.join('')}-${seed}`);
    writePruned(out, r, MODEL);
    const p = await Model.load(out);
    const v = (await perplexity(p, evalText, { seqLen: 128 })).ppl;
    p.dispose();
    fs.rmSync(out, { recursive: true, force: true });
    return { v, params: r.plan.paramsAfter };
  };
  const cols: Array<{ ratio: number; layers: [number, number] }> = [
    { ratio: 0.2, layers: [1, 3] }, { ratio: 0.2, layers: [0, 4] }, { ratio: 0.5, layers: [1, 3] }, { ratio: 0.5, layers: [0, 4] },
  ];
  const head = cols.map((c) => `ratio ${c.ratio}, layers ${c.layers.join('-')}`);
  const rows: string[][] = [];
  const params: string[] = [];
  for (const c of cols) params.push(String((await ppl('magnitude', c.ratio, c.layers, 0)).params));
  rows.push(['(unpruned)', ...cols.map(() => before.toFixed(2))]);
  for (const method of METHODS) {
    const row: string[] = [method];
    for (const c of cols) {
      const vs: number[] = [];
      for (let s = 0; s < SEEDS; s++) vs.push((await ppl(method, c.ratio, c.layers, s)).v);
      const mean = vs.reduce((a, b) => a + b, 0) / vs.length;
      row.push(method.startsWith('magnitude') ? mean.toFixed(2) : `${mean.toFixed(2)} (${Math.min(...vs).toFixed(1)}–${Math.max(...vs).toFixed(1)})`);
    }
    rows.push(row);
  }
  const rrow = ['random'];
  for (const c of cols) {
    const vs: number[] = [];
    for (let s = 1; s <= 2 * SEEDS; s++) vs.push((await ppl('random', c.ratio, c.layers, s)).v);
    rrow.push(`${(vs.reduce((a, b) => a + b, 0) / vs.length).toFixed(2)} (${Math.min(...vs).toFixed(1)}–${Math.max(...vs).toFixed(1)})`);
  }
  rows.push(rrow);
  m.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  const out = [
    `TinyStories perplexity of stories260K (${m.info.nParams.toLocaleString('en-US')} parameters) after pruning; mean over ${SEEDS} calibration seeds (range), random over ${2 * SEEDS} seeds`,
    '',
    `| method | ${head.join(' | ')} |`,
    `|---|${cols.map(() => '---').join('|')}|`,
    `| parameters left | ${params.map((p) => Number(p).toLocaleString('en-US')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
  process.stdout.write(out.join('\n') + '\n');
}

main().catch((e) => {
  process.stderr.write(String((e as Error).stack ?? e) + '\n');
  process.exit(1);
});
