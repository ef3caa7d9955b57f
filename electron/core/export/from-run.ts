// from-run.ts — `tailor export RUN_ID`: finds what a pipeline run produced for one pruning ratio — the
// pruned model folder (pruned-<ratio>/) and its LoRA adapter (lora-<ratio>/adapter), as the run recorded
// them in the history — and the evaluation rows for that ratio (the run's report.json, or the results the
// history holds when the run has no report yet), so the export can merge or ship the adapter and write a
// model card with the recovery table.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EngineError } from '../engine/errors.js';
import type { History, RunDetail } from '../history/db.js';
import type { EvalRow, PerplexityRow } from './model-card.js';

export interface RunExportSource {
  runId: string;
  runName: string;
  ratio: number;
  /** every ratio the run has a pruned model and an adapter for */
  ratios: number[];
  prunedDir: string;
  adapterDir: string;
  /** the model the run started from */
  baseModel: string;
  evaluation: EvalRow[];
  perplexity: PerplexityRow[];
}

interface RatioOutputs { ratio: number; tag: string; prunedDir: string; adapterDir: string }

/** The ratios with both a pruned model and an adapter among the run's artifacts. */
function ratioOutputs(run: RunDetail): RatioOutputs[] {
  const models = new Map<string, string>();
  const adapters = new Map<string, string>();
  for (const a of run.artifacts) {
    const pm = a.kind === 'model' ? /^pruned-(.+)$/.exec(path.basename(a.path)) : null;
    if (pm) models.set(pm[1], a.path);
    const am = a.kind === 'adapter' && path.basename(a.path) === 'adapter' ? /^lora-(.+)$/.exec(path.basename(path.dirname(a.path))) : null;
    if (am) adapters.set(am[1], a.path);
  }
  return [...models].filter(([tag]) => adapters.has(tag) && Number.isFinite(Number(tag)))
    .map(([tag, prunedDir]) => ({ ratio: Number(tag), tag, prunedDir, adapterDir: adapters.get(tag)! }))
    .sort((a, b) => a.ratio - b.ratio);
}

type Json = Record<string, unknown>;

function readReport(outDir: unknown): Json | null {
  if (typeof outDir !== 'string') return null;
  try {
    return JSON.parse(fs.readFileSync(path.join(outDir, 'report.json'), 'utf8')) as Json;
  } catch {
    return null;
  }
}

const same = (a: number, b: number): boolean => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a));

/** Evaluation rows for one ratio from the results the history holds (baseline at ratio=0). */
function rowsFromResults(run: RunDetail, tag: string): { evaluation: EvalRow[]; perplexity: PerplexityRow[] } {
  const get = (task: string, setting: string, phase: string) => run.results.find((r) => r.task === task && r.setting === setting && r.phase === phase)?.value;
  const tasks = [...new Set(run.results.filter((r) => r.phase === 'baseline').map((r) => r.task))];
  const evaluation: EvalRow[] = [];
  const perplexity: PerplexityRow[] = [];
  for (const task of tasks) {
    const baseline = get(task, 'ratio=0', 'baseline'), pruned = get(task, `ratio=${tag}`, 'pruned'), recovered = get(task, `ratio=${tag}`, 'recovered');
    if (baseline === undefined || pruned === undefined || recovered === undefined) continue;
    if (task.startsWith('ppl:')) perplexity.push({ set: task.slice(4), baseline, pruned, recovered });
    else evaluation.push({ task, baseline, pruned, recovered, recovery: baseline > 0 ? recovered / baseline : 0 });
  }
  return { evaluation, perplexity };
}

/**
 * The outputs of pipeline run `runId` for `ratio` (required when the run has several ratios). Errors:
 * E_ARG for a run that is not a pipeline, has no finished ratio, or needs --ratio; E_IO when the files
 * recorded are gone. An unknown id is the history's E_NOT_FOUND.
 */
export function resolveRunExport(history: History, runId: string, ratio?: number): RunExportSource {
  const run = history.getRun(runId);
  if (run.kind !== 'pipeline') throw new EngineError('E_ARG', `run ${runId} is a ${run.kind} run; tailor export RUN_ID takes a pipeline run (tailor run), or give the model path`);
  const outs = ratioOutputs(run);
  if (outs.length === 0) throw new EngineError('E_ARG', `run ${runId} has no ratio with both a pruned model and a LoRA adapter yet (status ${run.status}); resume it with tailor run SPEC --resume`);
  const list = outs.map((o) => o.tag).join(', ');
  let pick: RatioOutputs | undefined;
  if (ratio === undefined) {
    if (outs.length > 1) throw new EngineError('E_ARG', `run ${runId} has several pruning ratios (${list}); choose one with --ratio`);
    pick = outs[0];
  } else {
    pick = outs.find((o) => same(o.ratio, ratio));
    if (!pick) throw new EngineError('E_ARG', `run ${runId} has no ratio ${ratio}; its ratios are ${list}`);
  }
  for (const p of [pick.prunedDir, pick.adapterDir])
    if (!fs.existsSync(p)) throw new EngineError('E_IO', `${p}, recorded by run ${runId}, no longer exists`);
  const spec = (run.spec ?? {}) as Json;
  const report = readReport(spec.outDir);
  let evaluation: EvalRow[];
  let perplexity: PerplexityRow[];
  if (report && Array.isArray(report.rows)) {
    const rows = report.rows as Array<EvalRow & { ratio: number }>;
    evaluation = rows.filter((r) => same(r.ratio, pick.ratio)).map(({ task, baseline, pruned, recovered, recovery, n }) => ({ task, baseline, pruned, recovered, recovery, n }));
    perplexity = (Array.isArray(report.perplexity) ? (report.perplexity as Array<PerplexityRow & { ratio: number }>) : [])
      .filter((r) => same(r.ratio, pick.ratio)).map(({ set, baseline, pruned, recovered }) => ({ set, baseline, pruned, recovered }));
  } else {
    ({ evaluation, perplexity } = rowsFromResults(run, pick.tag));
  }
  return {
    runId: run.id, runName: run.name, ratio: pick.ratio, ratios: outs.map((o) => o.ratio), prunedDir: pick.prunedDir, adapterDir: pick.adapterDir,
    baseModel: typeof spec.model === 'string' ? spec.model : 'unknown', evaluation, perplexity,
  };
}
