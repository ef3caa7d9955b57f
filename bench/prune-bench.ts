// prune-bench.ts — LLM-Pruner's Table 1 in miniature: TinyStories perplexity of stories260K before
// pruning and after each importance method, at ratios 0.2 and 0.5, pruning layers 1-3 and all layers.
// Calibration (default): 10 × 64 tokens from the first 200 KB of the TinyStories sample (LLM-Pruner's default
// size); `--sizes 10x64,32x128,128x128` and `--calib tinystories,tinystories-bos,tinystories-paragraphs,task`
// add one block of rows per calibration size and source (see SOURCE_NAMES). Evaluation: 120 KB further on,
// windows of 128. Random is the mean (and range) of several seeds; calibrated methods the mean (and range)
// over calibration seeds. Measured, never asserted: `node dist/bench/prune-bench.js [--seeds 3]
// [--random-seeds 6] [--samples 10 --seq-len 64] [--sizes …] [--calib …] [--methods …] [--json FILE]`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RawExample } from '../electron/core/engine/native.js';
import { Model } from '../electron/core/engine/engine.js';
import { calibrationFromExamples, calibrationFromText, taskCalibrationRecords } from '../electron/core/prune/calibration.js';
import { METHODS as ALL_METHODS, pruneModel, writePruned, type ImportanceMethod } from '../electron/core/prune/prune.js';
import { defaultTemplate, getTask } from '../electron/core/tasks/index.js';
import { perplexity } from '../electron/core/text/perplexity.js';
import { sharedDir } from './paths.js';

const SHARED = sharedDir();
const MODEL = path.join(SHARED, 'models', 'stories260K-hf');
const TEXT = fs.readFileSync(path.join(SHARED, 'datasets', 'tinystories', 'validation_head.txt'), 'utf8');

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const int = (name: string, dflt: number): number => {
  const v = arg(name);
  const n = v === undefined ? dflt : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`);
  return n;
};
const SEEDS = int('seeds', 3);
const RANDOM_SEEDS = int('random-seeds', 2 * SEEDS);
const SIZES: Array<[number, number]> = (arg('sizes') ?? `${int('samples', 10)}x${int('seq-len', 64)}`).split(',').map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 2) throw new Error(`--sizes: "${s}" must look like 32x128`);
  return [Number(m[1]), Number(m[2])];
});
// tinystories: windows of [BOS] + encode(text) at random offsets (tailor prune --calib; LLM-Pruner's get_bookcorpus);
// tinystories-bos: the same windows with their first token replaced by BOS (Tailor's --calib before it followed
// LLM-Pruner: a BOS in front of mid-text tokens); tinystories-paragraphs: the paragraphs as records, each from its BOS,
// packed as --calib-task packs a task's prompts; task: story_cloze's training prompts (tailor prune --calib-task)
const SOURCE_NAMES: Record<string, string> = { tinystories: 'TinyStories', 'tinystories-bos': 'TinyStories, BOS first', 'tinystories-paragraphs': 'TinyStories paragraphs', task: 'story_cloze' };
const SOURCES = (arg('calib') ?? 'tinystories').split(',').map((s) => s.trim());
if (SOURCES.some((s) => !(s in SOURCE_NAMES))) throw new Error(`--calib takes ${Object.keys(SOURCE_NAMES).join(', ')}`);
const METHODS = (arg('methods') ?? ALL_METHODS.join(',')).split(',').map((s) => s.trim()) as ImportanceMethod[];
if (METHODS.some((m) => !ALL_METHODS.includes(m))) throw new Error(`--methods takes ${ALL_METHODS.join(', ')}`);
const CALIBRATED = METHODS.filter((m) => m !== 'random');
const COLS: Array<{ ratio: number; layers: [number, number] }> = [
  { ratio: 0.2, layers: [1, 3] }, { ratio: 0.2, layers: [0, 4] }, { ratio: 0.5, layers: [1, 3] }, { ratio: 0.5, layers: [0, 4] },
];

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
const cell = (v: number[]) => (v.length === 1 ? v[0].toFixed(2) : `${mean(v).toFixed(2)} (${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)})`);

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tailor-prune-bench-'));
  const m = await Model.load(MODEL);
  const tok = m.requireTokenizer();
  const calibIds = tok.encode(TEXT.slice(0, 200_000));
  const task = getTask('story_cloze');
  const taskRecords = taskCalibrationRecords([{ items: task.trainItems(), template: defaultTemplate(task) }], 0);
  const evalText = TEXT.slice(400_000, 520_000);
  const before = (await perplexity(m, evalText, { seqLen: 128 })).ppl;
  const paragraphs = TEXT.slice(0, 200_000).split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean).map((p) => ({ prompt: '', completion: p }));
  const calibration = (source: string, [n, len]: [number, number], seed: number): RawExample[] => {
    if (source === 'task') return calibrationFromExamples(tok, taskRecords, n, len, seed, m.info.bosId);
    if (source === 'tinystories-paragraphs') return calibrationFromExamples(tok, paragraphs, n, len, seed, m.info.bosId);
    if (source === 'tinystories-bos')
      return calibrationFromText(calibIds, n, len, seed, m.info.bosId).map((e) => ({ ids: Int32Array.from([m.info.bosId, ...e.ids.slice(1)]), weight: e.weight }));
    return calibrationFromText(calibIds, n, len, seed, m.info.bosId);
  };
  const ppl = async (method: ImportanceMethod, c: (typeof COLS)[number], seed: number, calib: RawExample[]) => {
    const r = await pruneModel(m, { ratio: c.ratio, method, calib, seed, scope: { attnLayers: c.layers, mlpLayers: c.layers } });
    const out = path.join(tmp, `${method}-${c.ratio}-${c.layers.join('')}-${seed}`);
    writePruned(out, r, MODEL);
    const p = await Model.load(out);
    const v = (await perplexity(p, evalText, { seqLen: 128 })).ppl;
    p.dispose();
    fs.rmSync(out, { recursive: true, force: true });
    return { v, params: r.plan.paramsAfter };
  };
  const params: number[] = [];
  for (const c of COLS) params.push((await ppl('magnitude', c, 0, [])).params);
  const rows: Array<{ label: string; source: string | null; size: string | null; method: ImportanceMethod; cells: number[][] }> = [];
  const t0 = performance.now();
  for (const source of SOURCES)
    for (const size of SIZES)
      for (const method of CALIBRATED) {
        const seeds = method.startsWith('magnitude') ? [0] : [...Array(SEEDS).keys()];
        const cells: number[][] = [];
        for (const c of COLS) {
          const vs: number[] = [];
          for (const s of seeds) vs.push((await ppl(method, c, s, calibration(source, size, s))).v);
          cells.push(vs);
        }
        const tag = method.startsWith('magnitude') ? '' : ` (${SOURCE_NAMES[source]} ${size[0]}×${size[1]})`;
        rows.push({ label: method + tag, source, size: `${size[0]}x${size[1]}`, method, cells });
        process.stderr.write(`${method}${tag}: ${cells.map((v) => mean(v).toFixed(2)).join(' | ')}  (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
      }
  let random: number[][] | null = null;
  if (METHODS.includes('random')) {
    random = [];
    for (const c of COLS) {
      const vs: number[] = [];
      for (let s = 1; s <= RANDOM_SEEDS; s++) vs.push((await ppl('random', c, s, [])).v);
      random.push(vs);
    }
    rows.push({ label: 'random', source: null, size: null, method: 'random', cells: random });
  }
  m.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
  const head = COLS.map((c) => `ratio ${c.ratio}, layers ${c.layers.join('-')}`);
  const out = [
    `TinyStories perplexity of stories260K (${m.info.nParams.toLocaleString('en-US')} parameters) after pruning; calibrated methods: mean over ${SEEDS} calibration seeds (range); random: mean over ${RANDOM_SEEDS} seeds (range)`,
    '',
    `| method (calibration) | ${head.join(' | ')} |`,
    `|---|${COLS.map(() => '---').join('|')}|`,
    `| parameters left | ${params.map((p) => p.toLocaleString('en-US')).join(' | ')} |`,
    `| (unpruned) | ${COLS.map(() => before.toFixed(2)).join(' | ')} |`,
    ...rows.map((r) => `| ${r.label} | ${r.cells.map(cell).join(' | ')} |`),
  ];
  if (random) {
    // which cells a calibrated row wins against random's mean: on its mean, and with every calibration seed
    out.push('', `| below random's mean in | ${head.join(' | ')} |`, `|---|${COLS.map(() => '---').join('|')}|`);
    for (const r of rows.filter((x) => x.method !== 'random'))
      out.push(`| ${r.label} | ${r.cells.map((v, i) => `${mean(v) < mean(random![i]) ? 'mean' : '—'}${Math.max(...v) < mean(random![i]) ? ', every seed' : ''} (${(mean(v) / mean(random![i])).toFixed(2)}×)`).join(' | ')} |`);
  }
  process.stdout.write(out.join('\n') + '\n');
  const jsonFile = arg('json');
  if (jsonFile) fs.writeFileSync(jsonFile, JSON.stringify({ before, params, cols: COLS, seeds: SEEDS, randomSeeds: RANDOM_SEEDS, rows }, null, 1) + '\n');
}

main().catch((e) => {
  process.stderr.write(String((e as Error).stack ?? e) + '\n');
  process.exit(1);
});
