// commands.ts — the verbs of `tailor`: info, tokenize, generate, perplexity, score, finetune, merge, prune,
// export (a model or a pipeline run), eval, run, runs, demo.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ParseArgsConfig } from 'node:util';
import { Model, cudaStatusLine, describeBackend, engineInfo, inspectModel, kvCacheOf, type ModelFileInfo } from '../engine/engine.js';
import { EngineError } from '../engine/errors.js';
import { generateText } from '../text/generate.js';
import { perplexity } from '../text/perplexity.js';
import { formatDuration } from '../text/progress.js';
import { packageRoot } from './version.js';
import { dbFor, fmtBytes, fmtInt, json, loadOpts, loadWithAdapter, modelArg, num, progressPrinter, str, taskArg, TASK_FILE_OPTIONS, type CommandContext } from './args.js';
import { runExport } from './export-verb.js';
import { runRuns } from './runs-verb.js';

export type { CommandContext } from './args.js';
import { DEFAULT_TRAIN, finetune, type TrainSettings } from '../train/trainer.js';
import { parseTargets } from '../train/lora.js';
import { promptCompletionExamples, readPromptCompletionJsonl, readTextFile, textExamples } from '../train/data.js';
import { writeHfFolder } from '../formats/safetensors-write.js';
import { atomicWriteDir } from '../train/atomic.js';
import { MAX_ROUND_TO } from '../api/contract.js';
import { archFromHfConfig, parseLayerRange, planLocal, ratioForTarget, type ArchConfig, type PrunePlan, type PruneScope } from '../prune/plan.js';
import { evaluateItems } from '../eval/eval.js';
import { listTasks, fewShot, renderExample, templateFor } from '../tasks/index.js';
import { recordRun } from '../history/record.js';
import { parseSpec, readSpec } from '../pipeline/spec.js';
import { runPipeline } from '../pipeline/pipeline.js';
import { gpuPeakNote, markdown } from '../pipeline/report.js';
import { METHODS, archOf, importanceJson, pruneModel, writePruned, type ImportanceMethod } from '../prune/prune.js';
import { pruneCalibration } from './prune-calib.js';

interface Command {
  summary: string;
  help: string;
  options: NonNullable<ParseArgsConfig['options']>;
  run: (ctx: CommandContext) => Promise<void>;
}

const common = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  threads: { type: 'string' },
  'no-blas': { type: 'boolean' },
  backend: { type: 'string' },
  weights: { type: 'string' },
} as const;

// ---- verbs -----------------------------------------------------------------------------------------

async function runInfo(ctx: CommandContext): Promise<void> {
  // the file's header and the backend a load would use: a 7B model is described without decoding its weights
  const modelPath = modelArg(ctx);
  const backend = await describeBackend(loadOpts(ctx));  // --backend cuda without a device fails first, as a load does
  const i = { ...(await inspectModel(modelPath)), ...backend };
  const engine = engineInfo();
  if (ctx.values.json) return json(ctx, { ...i, kvCache: kvCacheOf(i), engine });
  const uniform = i.layers.every((l) => l.nHead === i.layers[0].nHead && l.nKvHead === i.layers[0].nKvHead && l.ffn === i.layers[0].ffn);
  const lines = [
    `model         ${i.path}`,
    `format        ${i.format} (${i.sourceDtype}), architecture ${i.architecture}`,
    `parameters    ${fmtInt(i.nParams)}`,
    `hidden size   ${i.dim}, ${i.nLayers} layers, head dim ${i.headDim}`,
    `vocabulary    ${fmtInt(i.vocabSize)} (${i.tokenizer ?? 'no tokenizer'}; BOS ${i.bosId}, EOS ${i.eosId})`,
    `context       ${fmtInt(i.contextLength)} tokens`,
    `rope          theta ${i.ropeTheta}, ${i.sourceRopeLayout} in the file${i.ropeScaling.type !== 'none' ? `, ${i.ropeScaling.type} scaling ×${i.ropeScaling.factor}` : ''}${i.ropeFreqFactors ? ', frequency factors' : ''}`,
    `norm eps      ${Number(i.normEps.toPrecision(6))}`,
    `embeddings    ${i.tiedEmbeddings ? 'tied (lm_head = token embeddings)' : 'untied lm_head'}`,
    `backend       ${i.backend}, ${i.threads} threads (--backend ${i.backendRequested}${i.backendRequested === 'auto' ? (i.backendKind === 'cuda' ? ': chose CUDA' : ': CUDA not available') : ''})`,
    `cuda          ${cudaStatusLine(engine.cuda)}`,
    `kv cache      ${kvCacheLine(i, loadOpts(ctx).weights ?? 'f32')}`,
    uniform ? `layers        all ${i.nLayers}: ${i.layers[0].nHead} heads, ${i.layers[0].nKvHead} KV heads, FFN ${i.layers[0].ffn}` : 'layers        (per layer)',
  ];
  if (!uniform) {
    lines.push('  layer  heads  kv  ffn');
    i.layers.forEach((l, k) => lines.push(`  ${String(k).padStart(5)}  ${String(l.nHead).padStart(5)}  ${String(l.nKvHead).padStart(2)}  ${l.ffn}`));
  }
  ctx.out(lines.join('\n') + '\n');
}

// the cache a generation allocates on this backend: "bf16 (bf16 weights), 512 KiB per token (2 GiB for the 4,096-token context)"
function kvCacheLine(i: ModelFileInfo & Awaited<ReturnType<typeof describeBackend>>, weights: 'f32' | 'bf16'): string {
  const kv = kvCacheOf(i);
  let why = '';
  if (kv.dtype === 'bf16') why = ' (bf16 weights)';
  else if (weights === 'bf16' && i.backendKind === 'cuda')
    why = i.kvBf16HeadDims.length === 0 ? ' (bf16 weights, but this device has no bf16 tensor-core attention)'
      : ` (bf16 weights, but the tensor-core attention takes head dims ${i.kvBf16HeadDims.join(', ')}, not ${i.headDim})`;
  return `${kv.dtype === 'bf16' ? 'bf16' : 'fp32'}${why}, ${fmtBytes(kv.bytesPerToken)} per token (${fmtBytes(kv.bytesPerToken * i.contextLength)} for the ${fmtInt(i.contextLength)}-token context)`;
}

async function runTokenize(ctx: CommandContext): Promise<void> {
  const text = str(ctx, 'text', true)!;
  const m = await Model.load(modelArg(ctx), loadOpts(ctx));
  try {
    const tok = m.requireTokenizer();
    const ids = tok.encode(text, { bos: !!ctx.values.bos });
    if (ctx.values.json) return json(ctx, { ids, pieces: ids.map((id) => tok.idToPiece(id)) });
    ctx.out(ids.join(' ') + '\n');
  } finally {
    m.dispose();
  }
}

async function runGenerate(ctx: CommandContext): Promise<void> {
  const prompt = str(ctx, 'prompt', true)!;
  const opts = {
    maxTokens: num(ctx, 'max-tokens', 128, { int: true, min: 0 }),
    temperature: num(ctx, 'temperature', 0, { min: 0 }),
    topK: num(ctx, 'top-k', 0, { int: true, min: 0 }),
    topP: num(ctx, 'top-p', 1, { min: Number.MIN_VALUE, max: 1 }),
    seed: num(ctx, 'seed', 0, { int: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
    stop: (ctx.values.stop as string[] | undefined) ?? [],
  };
  const m = await loadWithAdapter(ctx, loadOpts(ctx));
  try {
    const streaming = !ctx.values.json;
    if (streaming) ctx.out(prompt);
    const r = await generateText(m, prompt, { ...opts, signal: ctx.signal, onText: streaming ? (d) => ctx.out(d) : undefined });
    if (ctx.values.json) {
      return json(ctx, { prompt, text: r.text, ids: r.ids, prompt_ids: r.promptIds, stop_reason: r.stopReason, tokens_per_sec: r.tokensPerSec, prompt_tokens_per_sec: r.promptTokensPerSec });
    }
    ctx.out('\n');
    ctx.err(`[${r.ids.length} tokens, ${r.tokensPerSec.toFixed(1)} tokens/s, stopped: ${r.stopReason}]\n`);
  } finally {
    m.dispose();
  }
}

async function runPerplexity(ctx: CommandContext): Promise<void> {
  const file = str(ctx, 'text', true)!;
  const seqLen = num(ctx, 'seq-len', 128, { int: true, min: 2 });
  const maxWindows = ctx.values['max-windows'] !== undefined ? num(ctx, 'max-windows', 0, { int: true, min: 1 }) : undefined;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new EngineError('E_IO', `cannot read ${file}: ${(e as Error).message}`);
  }
  const m = await loadWithAdapter(ctx, loadOpts(ctx));
  try {
    const r = await perplexity(m, text, { seqLen, maxWindows, signal: ctx.signal, onProgress: progressPrinter(ctx, 'perplexity') });
    if (ctx.values.json) return json(ctx, r);
    ctx.out(`perplexity ${r.ppl.toFixed(4)}  (mean NLL ${r.mean_nll.toFixed(6)} nats over ${fmtInt(r.predicted_tokens)} predicted tokens, ${fmtInt(r.windows)} windows of ${r.seq_len})\n`);
  } finally {
    m.dispose();
  }
}

async function runScore(ctx: CommandContext): Promise<void> {
  const raw = str(ctx, 'ids', true)!;
  const ids = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0).map(Number);
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0)) throw ctx.usageError('--ids must be comma-separated non-negative integers, e.g. 1,403,407');
  const m = await loadWithAdapter(ctx, { ...loadOpts(ctx), noTokenizer: true });
  try {
    const [s] = await m.score([ids], { lastLogits: true, signal: ctx.signal });
    const mean = ids.length > 1 ? s.nllSum / (ids.length - 1) : Number.NaN;
    const result = { argmax: Array.from(s.argmax), last_logits: Array.from(s.lastLogits!), mean_nll: ids.length > 1 ? mean : null };
    if (ctx.values.json) return json(ctx, result);
    const top = Array.from(s.lastLogits!.entries()).sort((a, b) => b[1] - a[1]).slice(0, 5);
    ctx.out(`argmax     ${result.argmax.join(' ')}\nmean_nll   ${ids.length > 1 ? mean.toFixed(6) : '(needs ≥ 2 ids)'}\ntop-5 last ${top.map(([i, v]) => `${i}:${v.toFixed(4)}`).join('  ')}\n`);
  } finally {
    m.dispose();
  }
}

async function runFinetune(ctx: CommandContext): Promise<void> {
  const out = str(ctx, 'out', true)!;
  const dataFile = str(ctx, 'data');
  const textFile = str(ctx, 'text');
  if (!dataFile === !textFile) throw ctx.usageError('give exactly one of --data FILE.jsonl (prompt/completion) or --text FILE (plain text)');
  const d = DEFAULT_TRAIN;
  const settings: TrainSettings = {
    lora: {
      rank: num(ctx, 'rank', d.lora.rank, { int: true, min: 1, max: 4096 }),
      alpha: num(ctx, 'alpha', d.lora.alpha, { min: Number.MIN_VALUE }),
      rslora: !!ctx.values.rslora,
      dropout: num(ctx, 'dropout', d.lora.dropout, { min: 0, max: 0.99 }),
      targets: ctx.values.targets !== undefined ? parseTargets(String(ctx.values.targets)) : d.lora.targets,
    },
    optim: {
      ...d.optim,
      lr: num(ctx, 'lr', d.optim.lr, { min: Number.MIN_VALUE }),
      weightDecay: num(ctx, 'weight-decay', d.optim.weightDecay, { min: 0 }),
      warmupSteps: num(ctx, 'warmup', d.optim.warmupSteps, { int: true, min: 0 }),
      clip: num(ctx, 'clip', d.optim.clip, { min: 0 }),
      schedule: ((): 'cosine' | 'constant' => {
        const v = str(ctx, 'schedule') ?? d.optim.schedule;
        if (v !== 'cosine' && v !== 'constant') throw ctx.usageError('--schedule must be cosine or constant');
        return v;
      })(),
    },
    epochs: num(ctx, 'epochs', d.epochs, { int: true, min: 1 }),
    batch: num(ctx, 'batch', d.batch, { int: true, min: 1 }),
    microBatch: num(ctx, 'micro-batch', num(ctx, 'batch', d.batch, { int: true, min: 1 }), { int: true, min: 1 }),
    maxLen: num(ctx, 'max-len', d.maxLen, { int: true, min: 2 }),
    seed: num(ctx, 'seed', d.seed, { int: true, min: 0, max: Number.MAX_SAFE_INTEGER }),
    checkpointActivations: !!ctx.values['checkpoint-activations'],
    full: !!ctx.values.full,
  };
  const m = await Model.load(modelArg(ctx), loadOpts(ctx));
  try {
    const tok = m.requireTokenizer();
    settings.maxLen = Math.min(settings.maxLen, m.info.contextLength);
    const examples = dataFile
      ? promptCompletionExamples(tok, readPromptCompletionJsonl(dataFile), { eos: !ctx.values['no-eos'], maxLen: settings.maxLen })
      : textExamples(tok, readTextFile(textFile!), settings.maxLen);
    const evalFile = str(ctx, 'eval-data');
    const evalExamples = evalFile
      ? (evalFile.endsWith('.jsonl') ? promptCompletionExamples(tok, readPromptCompletionJsonl(evalFile), { eos: !ctx.values['no-eos'], maxLen: settings.maxLen }) : textExamples(tok, readTextFile(evalFile), settings.maxLen))
      : undefined;
    const show = !ctx.values.json && (process.stderr.isTTY || !!ctx.values.progress);
    let last = 0;
    const spec = { model: modelArg(ctx), data: dataFile ?? textFile, settings, out };
    const r = await recordRun(dbFor(ctx), { name: `finetune ${path.basename(modelArg(ctx))}`, kind: 'finetune', spec }, async (rec) => {
      const res = await finetune(m, {
      settings, examples, evalExamples, outDir: out, resume: !!ctx.values.resume, force: !!ctx.values.force,
      checkpointEvery: num(ctx, 'checkpoint-every', 50, { int: true, min: 1 }), signal: ctx.signal,
      onProgress: show ? (p) => {
        const now = performance.now();
        if (now - last < 100 && p.step < p.totalSteps) return;
        last = now;
        const line = `step ${p.step}/${p.totalSteps}  loss ${p.loss.toFixed(4)}  lr ${p.lr.toExponential(2)}  ${p.tokensPerSec.toFixed(0)} tok/s  ETA ${formatDuration(p.etaSec)}`;
        ctx.err(process.stderr.isTTY ? `\r${line}   ${p.step >= p.totalSteps ? '\n' : ''}` : line + '\n');
      } : undefined,
      });
      if (rec) {
        rec.history.addMetrics(rec.id, 'lora', 'loss', res.losses.map((l) => ({ step: l.step, value: l.loss })));
        rec.history.addMetrics(rec.id, 'lora', 'lr', res.losses.map((l) => ({ step: l.step, value: l.lr })));
        rec.history.addArtifact(rec.id, settings.full ? 'model' : 'adapter', res.adapterDir);
        if (res.evalLossAfter !== undefined) rec.history.setResult(rec.id, { task: 'held-out', setting: 'loss', phase: 'recovered', metric: 'loss', value: res.evalLossAfter });
      }
      return res;
    });
    const summary = { [settings.full ? 'model' : 'adapter']: r.adapterDir, steps: r.steps, final_loss: r.losses.at(-1)?.loss ?? null, first_loss: r.losses[0]?.loss ?? null,
      eval_loss_before: r.evalLossBefore ?? null, eval_loss_after: r.evalLossAfter ?? null, seconds: r.seconds, resumed_from: r.resumedFrom ?? null };
    if (ctx.values.json) return json(ctx, summary);
    ctx.out(`${settings.full ? 'fine-tuned model' : 'adapter'} written to ${r.adapterDir} (${r.steps} steps, loss ${summary.first_loss?.toFixed(4)} → ${summary.final_loss?.toFixed(4)}` +
      (r.evalLossAfter !== undefined ? `, held-out loss ${r.evalLossBefore?.toFixed(4) ?? '?'} → ${r.evalLossAfter.toFixed(4)}` : '') + `, ${r.seconds.toFixed(1)} s)\n`);
  } finally {
    m.dispose();
  }
}

async function runMerge(ctx: CommandContext): Promise<void> {
  const out = str(ctx, 'out', true)!;
  const adapter = str(ctx, 'adapter', true)!;
  const src = modelArg(ctx);
  const m = await loadWithAdapter(ctx, loadOpts(ctx));
  try {
    const tensors = m.lazyTensors();  // each tensor read as it is written
    // the tokenizer travels with the merged model when it is a file beside the source
    const srcDir = fs.statSync(src).isDirectory() ? src : path.dirname(src);
    const tokFiles = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json']
      .map((f) => path.join(srcDir, f)).filter((f) => fs.existsSync(f));
    if (!fs.statSync(src).isDirectory() && tokFiles.length === 0) {
      const tokModel = fs.readdirSync(srcDir).find((f) => /^tok.*\.model$/.test(f));
      if (tokModel) tokFiles.push(path.join(srcDir, tokModel));
    }
    atomicWriteDir(out, !!ctx.values.force, (tmp) => {
      writeHfFolder(tmp, tensors, {});
      for (const f of tokFiles) fs.copyFileSync(f, path.join(tmp, /^tok.*\.model$/.test(path.basename(f)) ? 'tokenizer.model' : path.basename(f)));
    });
    if (ctx.values.json) return json(ctx, { out, params: m.info.nParams });
    ctx.out(`merged model written to ${out} (${fmtInt(m.info.nParams)} parameters, Hugging Face safetensors)\n`);
  } finally {
    m.dispose();
  }
}

function pruneScope(ctx: CommandContext, nLayers: number): PruneScope {
  const base = ctx.values.layers !== undefined ? parseLayerRange(String(ctx.values.layers), nLayers) : ([0, nLayers - 1] as [number, number]);
  const roundTo = num(ctx, 'round-to', 1, { int: true, min: 1, max: MAX_ROUND_TO });
  return {
    attnLayers: ctx.values['no-attn'] ? null : ctx.values['attn-layers'] !== undefined ? parseLayerRange(String(ctx.values['attn-layers']), nLayers) : base,
    mlpLayers: ctx.values['no-mlp'] ? null : ctx.values['mlp-layers'] !== undefined ? parseLayerRange(String(ctx.values['mlp-layers']), nLayers) : base,
    ...(roundTo > 1 ? { roundTo } : {}),
  };
}

function pruneRatio(ctx: CommandContext, a: ArchConfig, scope: PruneScope): number {
  const hasR = ctx.values.ratio !== undefined, hasT = ctx.values['target-params'] !== undefined;
  if (hasR === hasT) throw ctx.usageError('give exactly one of --ratio R or --target-params N');
  if (hasR) return num(ctx, 'ratio', 0, { min: 0, max: 0.999999 });
  const raw = String(ctx.values['target-params']).trim().toUpperCase();
  const m = /^([\d.]+)\s*([KMB]?)$/.exec(raw);
  if (!m) throw ctx.usageError('--target-params must be a number such as 5B, 800M or 5000000000');
  const target = Number(m[1]) * ({ '': 1, K: 1e3, M: 1e6, B: 1e9 } as Record<string, number>)[m[2]];
  return ratioForTarget(a, Math.floor(target), scope);
}

function planTable(p: PrunePlan): string {
  const lines = [`pruning ratio ${p.ratio.toFixed(4)}: ${fmtInt(p.paramsBefore)} → ${fmtInt(p.paramsAfter)} parameters (${(p.removedShare * 100).toFixed(2)}% removed)`, '  layer  heads  kv  ffn      params'];
  p.layers.forEach((l, i) => lines.push(`  ${String(i).padStart(5)}  ${String(l.nHead).padStart(5)}  ${String(l.nKvHead).padStart(2)}  ${String(l.ffn).padStart(6)}  ${fmtInt(l.params).padStart(12)}${l.prunedAttn || l.prunedMlp ? '' : '  (whole)'}`));
  return lines.join('\n') + '\n';
}

async function runPrune(ctx: CommandContext): Promise<void> {
  if (ctx.values.plan) {
    const cfgFile = str(ctx, 'config', true)!;
    let cfg: Record<string, unknown>;
    try {
      cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new EngineError((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'E_IO' : 'E_FORMAT', `cannot read ${cfgFile}: ${(e as Error).message}`);
    }
    const a = archFromHfConfig(cfg);
    const scope = pruneScope(ctx, a.layers.length);
    const plan = planLocal(a, pruneRatio(ctx, a, scope), scope);
    if (ctx.values.json) return json(ctx, { ratio: plan.ratio, params_before: plan.paramsBefore, params_after: plan.paramsAfter, removed_share: plan.removedShare, layers: plan.layers });
    return ctx.out(planTable(plan));
  }
  const out = str(ctx, 'out', true)!;
  const method = (str(ctx, 'method') ?? 'taylor') as ImportanceMethod;
  if (!METHODS.includes(method)) throw ctx.usageError(`--method must be one of ${METHODS.join(', ')}`);
  const agg = str(ctx, 'agg') ?? 'sum';
  if (!['sum', 'mean', 'max'].includes(agg)) throw ctx.usageError('--agg must be sum, mean or max');
  const m = await Model.load(modelArg(ctx), loadOpts(ctx));
  try {
    const a = archOf(m);
    const scope = pruneScope(ctx, a.layers.length);
    const ratio = pruneRatio(ctx, a, scope);
    const seed = num(ctx, 'seed', 0, { int: true, min: 0 });
    const { calib, source: calibSource } = pruneCalibration(ctx, m, method, seed);
    const spec = { model: modelArg(ctx), ratio, method, agg, scope, global: !!ctx.values.global, calibSamples: calib.length, calibSource, seed, out };
    const r = await recordRun(dbFor(ctx), { name: `prune ${path.basename(modelArg(ctx))} ${method} ${ratio.toFixed(3)}`, kind: 'prune', spec }, async (rec) => {
      const res = await pruneModel(m, { ratio, method, agg: agg as 'sum', scope, global: !!ctx.values.global, calib, calibSource, seed, signal: ctx.signal });
      writePruned(out, res, modelArg(ctx), { force: !!ctx.values.force, importanceFile: str(ctx, 'save-importance') });
      if (rec) {
        rec.history.setResult(rec.id, { task: 'model', setting: `ratio=${ratio.toFixed(3)}`, phase: 'pruned', metric: 'params', value: res.plan.paramsAfter });
        rec.history.addArtifact(rec.id, 'model', out);
      }
      return res;
    });
    if (ctx.values.json)
      return json(ctx, { out, ratio: r.plan.ratio, params_before: r.plan.paramsBefore, params_after: r.plan.paramsAfter, removed_share: r.plan.removedShare,
        layers: r.plan.layers.map((l) => ({ heads: l.nHead, kv_heads: l.nKvHead, ffn: l.ffn })), seconds: r.seconds, importance: ctx.values['save-importance'] ? undefined : importanceJson(r.scores) });
    ctx.out(planTable(r.plan) + `pruned model written to ${out} (${method}, ${r.seconds.toFixed(1)} s)\n`);
  } finally {
    m.dispose();
  }
}

async function runEval(ctx: CommandContext): Promise<void> {
  const pplFile = str(ctx, 'ppl');
  if (pplFile) return runPerplexity({ ...ctx, values: { ...ctx.values, text: pplFile } });
  if (ctx.values['list-tasks']) {
    const ts = listTasks();
    if (ctx.values.json) return json(ctx, ts);
    return ctx.out(ts.map((t) => `${t.name.padEnd(14)} ${t.title}`).join('\n') + '\n');
  }
  const task = taskArg(ctx);
  if (ctx.values.preview !== undefined) {
    // the training prompts LoRA would see for this task: the task template (or --template-style alpaca)
    const n = num(ctx, 'preview', 3, { int: true, min: 1, max: 100 });
    const tpl = templateFor(task, ctx.values['template-style'] === 'alpaca' ? 'alpaca' : 'task');
    const ex = fewShot(task.trainItems(), n, num(ctx, 'seed', 0, { int: true, min: 0 })).map((it) => renderExample(tpl, it));
    if (ctx.values.json) return json(ctx, { template: tpl, examples: ex });
    return ctx.out(ex.map((e, i) => `--- example ${i + 1} ---\n${e.prompt}\u2502${e.completion}\n`).join('\n'));
  }
  const limit = ctx.values.limit !== undefined ? num(ctx, 'limit', 0, { int: true, min: 1 }) : undefined;
  const shots = num(ctx, 'shots', 0, { int: true, min: 0, max: 64 });
  const m = await loadWithAdapter(ctx, loadOpts(ctx));
  try {
    const items = task.evalItems({ limit });
    const demos = shots > 0 ? fewShot(task.trainItems(), shots, num(ctx, 'seed', 0, { int: true, min: 0 })) : undefined;
    const spec = { model: modelArg(ctx), task: task.info.name, limit: limit ?? null, shots, adapter: str(ctx, 'adapter') ?? null };
    const r = await recordRun(dbFor(ctx), { name: `eval ${task.info.name} on ${path.basename(modelArg(ctx))}`, kind: 'eval', spec }, async (rec) => {
      const res = await evaluateItems(m, task.info.name, items, { signal: ctx.signal, demos, onProgress: progressPrinter(ctx, task.info.name) });
      const setting = `n=${res.n} shots=${shots}`;
      rec?.history.setResult(rec.id, { task: res.task, setting, phase: 'eval', metric: 'acc', value: res.acc });
      rec?.history.setResult(rec.id, { task: res.task, setting, phase: 'eval', metric: 'acc_norm', value: res.acc_norm });
      return res;
    });
    const out = { task: r.task, n: r.n, acc: r.acc, acc_norm: r.acc_norm, shots, seconds: r.seconds };
    if (ctx.values.json) return json(ctx, ctx.values.items ? { ...out, items: r.items } : out);
    ctx.out(`${r.task}: acc ${(r.acc * 100).toFixed(2)}%  acc_norm ${(r.acc_norm * 100).toFixed(2)}%  (n = ${r.n}, ${shots}-shot, ${r.seconds.toFixed(1)} s)\n`);
  } finally {
    m.dispose();
  }
}

async function runRun(ctx: CommandContext): Promise<void> {
  const file = ctx.positionals[0];
  if (!file || ctx.positionals.length > 1) throw ctx.usageError('tailor run SPEC.json');
  const spec = readSpec(file);
  const show = !ctx.values.json && (process.stderr.isTTY || !!ctx.values.progress);
  let last = 0;
  const r = await runPipeline(spec, {
    db: dbFor(ctx), resume: !!ctx.values.resume, signal: ctx.signal,
    onEvent: (e) => {
      if (e.status === 'progress') {
        if (!show || performance.now() - last < 250) return;
        last = performance.now();
        ctx.err(`  ${e.stage}: ${((e.fraction ?? 0) * 100).toFixed(0)}% ${e.message ?? ''}\n`);
      } else if (!ctx.values.json) ctx.err(`${e.status === 'start' ? '▶' : e.status === 'done' ? '✔' : '↷'} ${e.stage}${e.status === 'skipped' ? ' (done before; resumed)' : gpuPeakNote(e.devicePeakBytes)}\n`);
    },
  });
  if (ctx.values.json) return json(ctx, r);
  ctx.out(markdown(r) + `\nreports: ${path.join(spec.outDir, 'report.{json,md,html}')}\n`);
}

export function demoModelPath(): string {
  return path.join(packageRoot(), 'resources', 'models', 'stories260K');
}

async function runDemo(ctx: CommandContext): Promise<void> {
  const root = packageRoot();
  const modelPath = str(ctx, 'model') ?? demoModelPath();
  const textPath = path.join(root, 'resources', 'data', 'tinystories-validation-head.txt');
  const m = await Model.load(modelPath, loadOpts(ctx));
  try {
    ctx.out(`Tailor demo — model ${path.relative(process.cwd(), modelPath) || modelPath} (${fmtInt(m.info.nParams)} parameters, ${m.info.backend})\n\n`);
    const prompt = 'Once upon a time';
    ctx.out(prompt);
    const g = await generateText(m, prompt, { maxTokens: 120, signal: ctx.signal, onText: (d) => ctx.out(d) });
    ctx.out(`\n\n[greedy, ${g.ids.length} tokens at ${g.tokensPerSec.toFixed(0)} tokens/s]\n\n`);
    const text = fs.readFileSync(textPath, 'utf8');
    const r = await perplexity(m, text, { seqLen: 128, signal: ctx.signal, onProgress: progressPrinter(ctx, 'perplexity on TinyStories') });
    ctx.out(`TinyStories perplexity ${r.ppl.toFixed(4)} (mean NLL ${r.mean_nll.toFixed(4)} nats, ${fmtInt(r.windows)} windows × ${r.seq_len} tokens)\n\n`);
  } finally {
    m.dispose();
  }
  // the Tailored-LLaMA pipeline on the shipped story_cloze task: prune at 0.2 and 0.5, recover with LoRA
  const outDir = path.join(os.tmpdir(), `tailor-demo-${process.pid}`);
  ctx.out(`Tailoring stories260K for story_cloze (prune 20% and 50% by Taylor importance, task-prompted LoRA, evaluate)…\n`);
  try {
    const spec = parseSpec({ name: 'Tailor demo: stories260K on story_cloze', model: modelPath, tasks: ['story_cloze'], outDir, eval: { limit: 150 },
      prune: { method: 'taylor', ratios: [0.2, 0.5] }, lora: { trainShots: 400, epochs: 2, lr: 0.003, batch: 8, maxLen: 256 } });
    const rep = await runPipeline(spec, { db: dbFor(ctx), signal: ctx.signal, onEvent: (e) => { if (e.status === 'done') ctx.err(`  ✔ ${e.stage}${gpuPeakNote(e.devicePeakBytes)}\n`); } });
    ctx.out('\n' + markdown(rep) + `\nreports (JSON, Markdown, HTML) in ${outDir}\n`);
  } catch (e) {
    fs.rmSync(outDir, { recursive: true, force: true });
    throw e;
  }
}

export const COMMANDS: Record<string, Command> = {
  info: {
    summary: 'architecture, parameters and per-layer shapes of a model',
    help: 'tailor info MODEL [--json] [--threads N] [--no-blas] [--backend auto|cpu|cuda]',
    options: { ...common },
    run: runInfo,
  },
  tokenize: {
    summary: 'token ids of a text',
    help: 'tailor tokenize MODEL --text T [--bos] [--json]',
    options: { ...common, text: { type: 'string' }, bos: { type: 'boolean' } },
    run: runTokenize,
  },
  generate: {
    summary: 'continue a prompt',
    help: 'tailor generate MODEL --prompt T [--max-tokens N] [--temperature X] [--top-k K] [--top-p P] [--seed S] [--stop S]... [--adapter DIR] [--backend auto|cpu|cuda] [--json]',
    options: {
      ...common,
      adapter: { type: 'string' },
      prompt: { type: 'string' },
      'max-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      stop: { type: 'string', multiple: true },
    },
    run: runGenerate,
  },
  perplexity: {
    summary: 'perplexity over a text file (LLM-Pruner windows)',
    help: 'tailor perplexity MODEL --text FILE [--seq-len 128] [--max-windows N] [--adapter DIR] [--backend auto|cpu|cuda] [--json] [--progress]',
    options: { ...common, adapter: { type: 'string' }, text: { type: 'string' }, 'seq-len': { type: 'string' }, 'max-windows': { type: 'string' }, progress: { type: 'boolean' } },
    run: runPerplexity,
  },
  score: {
    summary: 'one forward pass over token ids: argmax per position, last logits, mean NLL',
    help: 'tailor score MODEL --ids 1,403,407 [--adapter DIR] [--backend auto|cpu|cuda] [--json]',
    options: { ...common, ids: { type: 'string' }, adapter: { type: 'string' } },
    run: runScore,
  },
  finetune: {
    summary: 'LoRA fine-tuning on prompt/completion records or plain text; writes a PEFT adapter',
    help: 'tailor finetune MODEL --data FILE.jsonl | --text FILE --out DIR [--rank 8] [--alpha 16] [--rslora] [--dropout 0.05] [--targets q,k,v,o,gate,up,down] [--lr 2e-4] [--schedule cosine|constant] [--warmup N] [--weight-decay X] [--clip 1] [--epochs 1] [--batch 8] [--micro-batch N] [--max-len 256] [--seed S] [--checkpoint-every 50] [--checkpoint-activations] [--full] [--eval-data FILE] [--no-eos] [--resume] [--force] [--json] [--progress]',
    options: {
      ...common, data: { type: 'string' }, text: { type: 'string' }, out: { type: 'string' }, rank: { type: 'string' }, alpha: { type: 'string' },
      rslora: { type: 'boolean' }, dropout: { type: 'string' }, targets: { type: 'string' }, lr: { type: 'string' }, schedule: { type: 'string' },
      warmup: { type: 'string' }, 'weight-decay': { type: 'string' }, clip: { type: 'string' }, epochs: { type: 'string' }, batch: { type: 'string' },
      'micro-batch': { type: 'string' }, 'max-len': { type: 'string' }, seed: { type: 'string' }, 'checkpoint-every': { type: 'string' },
      'checkpoint-activations': { type: 'boolean' }, full: { type: 'boolean' }, 'eval-data': { type: 'string' }, db: { type: 'string' }, 'no-history': { type: 'boolean' }, 'no-eos': { type: 'boolean' }, resume: { type: 'boolean' },
      force: { type: 'boolean' }, progress: { type: 'boolean' },
    },
    run: runFinetune,
  },
  merge: {
    summary: 'merge a PEFT LoRA adapter into its base model and write a Hugging Face folder',
    help: 'tailor merge MODEL --adapter DIR --out DIR [--force] [--json]',
    options: { ...common, adapter: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' } },
    run: runMerge,
  },
  prune: {
    summary: 'structural pruning (LLM-Pruner groups); --plan shows the result of a ratio from config.json alone',
    help: 'tailor prune --plan --config config.json --ratio R | --target-params N [--layers A-B] [--round-to N] [--json]\n' +
      'tailor prune MODEL --ratio R | --target-params N [--method taylor|taylor-vector|taylor-second|magnitude|magnitude-l2|wanda-sp|random] [--agg sum|mean|max] [--calib FILE | --calib-ids FILE.json | --calib-task NAME|FILE [--template-style task|alpaca]] [--samples 10] [--seq-len 64] [--seed S] [--layers A-B] [--attn-layers A-B] [--mlp-layers A-B] [--no-attn] [--no-mlp] [--global] [--round-to N] [--save-importance FILE.json] --out DIR [--force] [--json]\n' +
      '  --round-to N: each pruned layer keeps a multiple of N MLP channels (rounded up; default 1, LLM-Pruner\'s counts): 8 for GPU tensor cores\' 16-byte reads,\n' +
      '  32 for a q8_0 GGUF export of down_proj, 256 for llama.cpp\'s k-quants (Q4_K…)\n' +
      '  --calib-task: the training prompts of a task (prompt + completion, as LoRA sees them), [BOS]-separated and packed into --samples windows of --seq-len tokens;\n' +
      '  a task FILE (CSV/TSV/JSONL) takes the column flags of tailor eval: --text-col C --label-col C | --question-col C --choices-col C[,C…] --answer-col C [--template T]',
    options: {
      ...common, plan: { type: 'boolean' }, config: { type: 'string' }, ratio: { type: 'string' }, 'target-params': { type: 'string' }, method: { type: 'string' },
      agg: { type: 'string' }, calib: { type: 'string' }, 'calib-ids': { type: 'string' }, samples: { type: 'string' }, 'seq-len': { type: 'string' },
      seed: { type: 'string' }, layers: { type: 'string' }, 'attn-layers': { type: 'string' }, 'mlp-layers': { type: 'string' }, 'no-attn': { type: 'boolean' },
      'no-mlp': { type: 'boolean' }, global: { type: 'boolean' }, 'round-to': { type: 'string' }, 'save-importance': { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' },
      db: { type: 'string' }, 'no-history': { type: 'boolean' }, 'calib-task': { type: 'string' }, 'template-style': { type: 'string' }, ...TASK_FILE_OPTIONS,
    },
    run: runPrune,
  },
  export: {
    summary: 'export to GGUF (llama.cpp, Ollama, LM Studio), a Hugging Face folder, or a PEFT adapter with its base',
    help: 'tailor export MODEL|RUN_ID --format gguf|hf|peft [--dtype f32|f16|bf16|q8_0] [--adapter DIR] [--ratio R] [--db PATH] [--shard-size MB] [--name N] [--description D] --out PATH [--force] [--json] [--progress]\n' +
      '  gguf/hf with --adapter: the adapter is merged first; peft: --adapter is exported with MODEL (its base) beside it\n' +
      '  RUN_ID (a pipeline run in the history): its pruned model at --ratio R with the LoRA adapter merged (gguf, hf) or beside it (peft),\n' +
      '  and a model card with the run\'s evaluation and recovery; the export is recorded as an artifact of the run',
    options: {
      ...common, format: { type: 'string' }, dtype: { type: 'string' }, adapter: { type: 'string' }, 'shard-size': { type: 'string' }, name: { type: 'string' },
      description: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' }, ratio: { type: 'string' }, db: { type: 'string' }, progress: { type: 'boolean' },
    },
    run: runExport,
  },
  eval: {
    summary: 'few-shot multiple-choice evaluation (lm-eval formulations) or perplexity',
    help: 'tailor eval MODEL --task NAME|FILE [--limit N] [--shots K] [--seed S] [--held-out] [--adapter DIR] [--backend auto|cpu|cuda] [--json] [--items]\n' +
      '  FILE (CSV/TSV/JSONL): --text-col C --label-col C | --question-col C --choices-col C[,C…] --answer-col C [--template T]\n' +
      'tailor eval MODEL --ppl FILE [--seq-len 128]   ·   tailor eval --list-tasks   ·   tailor eval --task NAME --preview N [--template-style task|alpaca]',
    options: {
      ...common, task: { type: 'string' }, limit: { type: 'string' }, shots: { type: 'string' }, seed: { type: 'string' }, 'held-out': { type: 'boolean' },
      adapter: { type: 'string' }, items: { type: 'boolean' }, ppl: { type: 'string' }, 'seq-len': { type: 'string' }, 'max-windows': { type: 'string' },
      progress: { type: 'boolean' }, 'list-tasks': { type: 'boolean' }, db: { type: 'string' }, 'no-history': { type: 'boolean' }, ...TASK_FILE_OPTIONS,
      preview: { type: 'string' }, 'template-style': { type: 'string' },
    },
    run: runEval,
  },
  run: {
    summary: 'the whole pipeline from a spec: baseline → prune → evaluate → task-prompted LoRA → evaluate → report',
    help: 'tailor run SPEC.json [--resume] [--db PATH] [--json] [--progress]',
    options: { ...common, resume: { type: 'boolean' }, db: { type: 'string' }, 'no-history': { type: 'boolean' }, progress: { type: 'boolean' } },
    run: runRun,
  },
  serve: {
    summary: 'the workbench in a browser: HTTP + WebSocket on 127.0.0.1 with an access token',
    help: 'tailor serve [--port 7470] [--host 127.0.0.1] [--db PATH] [--data-dir DIR] [--token T] [--json]\n'
      + 'Serves the workbench (the same screens as the desktop app) and prints its URL with a random access token; --port 0 picks a free port.',
    options: { ...common, port: { type: 'string' }, host: { type: 'string' }, db: { type: 'string' }, 'data-dir': { type: 'string' }, token: { type: 'string' } },
    run: async (ctx) => {
      const { serve } = await import('./serve.js');
      await serve({ host: str(ctx, 'host') ?? '127.0.0.1', port: num(ctx, 'port', 7470, { int: true, min: 0, max: 65535 }), db: str(ctx, 'db') ?? null,
        dataDir: str(ctx, 'data-dir') ?? null, token: str(ctx, 'token') ?? null, json: !!ctx.values.json }, ctx.signal, ctx.out, ctx.err);
    },
  },
  runs: {
    summary: 'the history of runs: list, show, compare, delete',
    help: 'tailor runs [--json] [--db PATH]   ·   tailor runs show ID   ·   tailor runs compare ID ID…   ·   tailor runs delete ID [--yes]',
    options: { ...common, db: { type: 'string' }, yes: { type: 'boolean' }, status: { type: 'string' } },
    run: runRuns,
  },
  demo: {
    summary: 'the bundled stories260K: a story, its perplexity, then the whole tailoring pipeline with its recovery table',
    help: 'tailor demo [--model PATH]',
    options: { ...common, model: { type: 'string' }, progress: { type: 'boolean' }, db: { type: 'string' }, 'no-history': { type: 'boolean' } },
    run: runDemo,
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'Tailor — prune, tune and evaluate LLaMA models on your own machine.',
    '',
    'Usage: tailor <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`),
    '',
    'MODEL is a Hugging Face folder (config.json + safetensors), a GGUF file or a llama2.c .bin.',
    'Commands that load a model take --threads N, --no-blas, --backend auto|cpu|cuda (auto: CUDA when a device is usable) and --weights f32|bf16 (bf16: CUDA only).',
    'Run "tailor <command> --help" for a command\'s options.',
    '',
  ].join('\n');
}
