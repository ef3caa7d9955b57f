// workbench.ts — the back end of the desktop workbench, the same in the Electron main process and in
// `tailor serve`: every channel of the contract, validated, dispatched to the core services (model
// library, tasks, prompts, pruning plans, runs, jobs, drafts) and answered as a Reply envelope. It runs
// in plain Node; what only a desktop can do (file dialogs, "show in folder") comes in as `Desktop`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AppInfo, Channel, Draft, PickRequest, PromptTemplate, Reply, Req, Res, SpecInput, TaskRef } from '../api/contract.js';
import { isChannel, validatePayload } from '../api/validate.js';
import { version } from '../cli/version.js';
import { engineInfo } from '../engine/engine.js';
import { History } from '../history/db.js';
import { resolveTask } from '../pipeline/pipeline.js';
import { planLocal, ratioForTarget } from '../prune/plan.js';
import { choiceTexts, fewShot, listTasks, previewRows, renderExample, templateFor, type Task } from '../tasks/index.js';
import { loraSlots } from '../train/lora.js';
import { loadTokenizerFor, type Tokenizer } from '../tokenizer/index.js';
import { ServiceError, toWireError, type Emit } from './events.js';
import { JobManager } from './jobs.js';
import { archOfInfo, Library, ModelCache } from './library.js';
import { RunManager } from './runs.js';

export interface Desktop {
  pick(req: PickRequest): Promise<string | null>;
  showItem(p: string): Promise<boolean>;
}

export interface WorkbenchOptions {
  dbPath: string;
  dataDir: string;
  mode: 'electron' | 'serve';
  emit: Emit;
  desktop?: Desktop;
}

type Handlers = { [C in Channel]: (req: Req<C>) => Promise<Res<C>> | Res<C> };

export class Workbench {
  readonly history: History;
  readonly library: Library;
  readonly runs: RunManager;
  readonly jobs: JobManager;
  private readonly cache: ModelCache;
  private readonly handlers: Handlers;

  private constructor(private readonly o: WorkbenchOptions) {
    this.history = History.open(o.dbPath);
    this.library = new Library(this.history);
    this.cache = new ModelCache(this.history);
    this.runs = new RunManager({ history: this.history, dbPath: o.dbPath, dataDir: o.dataDir, source: o.mode === 'electron' ? 'app' : 'serve', emit: o.emit, library: this.library, cache: this.cache });
    this.jobs = new JobManager({ history: this.history, emit: o.emit, cache: this.cache });
    this.handlers = this.makeHandlers();
  }

  static async open(o: WorkbenchOptions): Promise<Workbench> {
    fs.mkdirSync(o.dataDir, { recursive: true });
    const w = new Workbench(o);
    try {
      await w.library.ensureBundled();
    } catch (e) {
      w.close();
      throw e;
    }
    return w;
  }

  /** One request: validated, handled, answered; never throws. */
  async call(channel: unknown, payload: unknown): Promise<Reply<unknown>> {
    try {
      if (!isChannel(channel)) throw new ServiceError('E_UNKNOWN_CHANNEL', `unknown channel ${JSON.stringify(channel)}`);
      const req = validatePayload(channel, payload);
      const h = this.handlers[channel] as (r: typeof req) => unknown;
      return { ok: true, value: await h(req) };
    } catch (e) {
      return { ok: false, error: toWireError(e) };
    }
  }

  /** Typed form of call for in-process callers (tests): throws the WireError on failure. */
  async invoke<C extends Channel>(channel: C, payload: Req<C>): Promise<Res<C>> {
    const r = await this.call(channel, payload);
    if (!r.ok) throw Object.assign(new Error(r.error.message), r.error);
    return r.value as Res<C>;
  }

  async shutdown(): Promise<void> {
    for (const r of this.history.listRuns({ status: 'running' })) this.runs.cancel(r.id);
    await this.runs.idle();
    this.close();
  }

  private close(): void {
    this.cache.dispose();
    this.history.close();
  }

  private readonly tokenizers = new Map<string, Promise<Tokenizer | null>>();
  /** A model's tokenizer without its weights (null for GGUF, whose vocabulary is inside the model file). */
  private tokenizerOf(p: string, info: { format: string; vocabSize: number }): Promise<Tokenizer | null> {
    let t = this.tokenizers.get(p);
    if (!t) {
      t = info.format === 'gguf' ? Promise.resolve(null) : loadTokenizerFor(p, { vocabSize: info.vocabSize }).catch(() => null);
      this.tokenizers.set(p, t);
    }
    return t;
  }

  private task(ref: TaskRef, seed = 0): Task {
    return resolveTask(ref, seed);
  }

  private template(ref: TaskRef, t: 'task' | 'alpaca' | PromptTemplate): PromptTemplate {
    return templateFor(this.task(ref), t);
  }

  private makeHandlers(): Handlers {
    const o = this.o;
    return {
      'app.info': (): AppInfo => {
        const e = engineInfo();
        return { version: version(), mode: o.mode, canPickFiles: !!o.desktop, platform: `${process.platform}-${process.arch}`,
          engine: { blas: e.blas, hardwareThreads: e.hardwareThreads, cudaBuilt: e.cudaBuilt, backend: e.cuda.available ? 'cuda' : 'cpu',
            cuda: { built: e.cuda.built, available: e.cuda.available, reason: e.cuda.reason,
              devices: e.cuda.devices.map((d) => ({ name: d.name, computeCapability: d.computeCapability, totalMemory: d.totalMemory, freeMemory: d.freeMemory })),
              cublasLt: e.cuda.cublasLt } },
          dataDir: o.dataDir, dbPath: o.dbPath };
      },
      'models.list': () => this.library.list(),
      'models.add': (r) => this.library.add(r.path),
      'models.remove': (r) => ({ removed: this.library.remove(r.id) }),
      'tasks.list': () => listTasks().map((t) => ({ name: t.name, title: t.title, choices: t.choices, description: t.description })),
      'tasks.previewFile': (r) => {
        if (!fs.existsSync(r.file)) throw new ServiceError('E_IO', `${r.file} does not exist`, 'file');
        return { file: r.file, ...previewRows(r.file, r.rows) };
      },
      'tasks.check': (r) => {
        const t = this.task(r.task, r.seed);
        const ev = t.evalItems();
        const tr = t.trainItems();
        if (ev.length === 0) throw new ServiceError('E_TASK_FORMAT', `${t.info.name}: no evaluation items`, 'task');
        return { name: t.info.name, evalItems: ev.length, trainItems: tr.length,
          sample: ev.slice(0, 3).map((it) => ({ context: it.contexts[it.label] ?? it.contexts[0], choices: choiceTexts(it), label: it.label })) };
      },
      'prompts.defaults': (r) => ({ task: this.template(r.task, 'task'), alpaca: this.template(r.task, 'alpaca') }),
      'prompts.preview': (r) => {
        const tpl = this.template(r.task, r.template);
        const items = fewShot(this.task(r.task, r.seed).trainItems(), r.n, r.seed);
        return items.map((it) => renderExample(tpl, it));
      },
      'prune.plan': async (r) => {
        const info = await this.library.info(r.model);
        const arch = archOfInfo(info);
        const layers = r.layers ?? [0, info.nLayers - 1];
        if (layers[1] >= info.nLayers) throw new ServiceError('E_ARG', `layers ${layers[0]}-${layers[1]} are outside the model's 0-${info.nLayers - 1}`, 'layers');
        const scope = { attnLayers: layers, mlpLayers: layers, roundTo: r.roundTo };
        if ((r.ratio === null) === (r.targetParams === null)) throw new ServiceError('E_ARG', 'give either a ratio or a parameter target', 'ratio');
        let ratio = r.ratio ?? 0;
        if (r.targetParams !== null) {
          if (r.targetParams >= info.nParams)
            throw new ServiceError('E_ARG', `a target of ${r.targetParams.toLocaleString('en-US')} parameters is not smaller than the model (${info.nParams.toLocaleString('en-US')})`, 'targetParams');
          try {
            ratio = ratioForTarget(arch, r.targetParams, scope);
          } catch (e) {
            throw new ServiceError('E_ARG', (e as Error).message, 'targetParams');
          }
        }
        const p = planLocal(arch, ratio, scope);
        return { ...p, before: arch.layers };
      },
      'lora.estimate': async (r) => {
        const info = await this.library.info(r.model);
        const arch = archOfInfo(info);
        const plan = planLocal(arch, r.ratio, { attnLayers: [0, info.nLayers - 1], mlpLayers: [0, info.nLayers - 1], roundTo: r.roundTo });
        // the examples exactly as the pipeline renders them, counted with the model's own tokenizer (read
        // without the weights; a GGUF's vocabulary lives in the file, so there ≈ 4 characters a token)
        const tok = await this.tokenizerOf(r.model, info);
        let examples = 0, tokens = 0;
        for (const ref of r.tasks) {
          const tpl = this.template(ref, r.lora.template);
          for (const it of fewShot(this.task(ref, r.seed).trainItems(), r.lora.trainShots, r.seed)) {
            const e = renderExample(tpl, it);
            examples++;
            const n = tok ? tok.encode(e.prompt + e.completion).length + 1 : Math.ceil((e.prompt.length + e.completion.length) / 4);
            tokens += Math.min(r.lora.maxLen + 1, n);
          }
        }
        const trainTokens = tokens * r.lora.epochs;
        const tokensPer = examples ? tokens / examples : 1;
        const steps = Math.ceil(examples / r.lora.batch) * r.lora.epochs;
        const trainableParams = loraSlots({ dim: arch.dim, headDim: arch.headDim, layers: plan.layers }, r.lora.rank, r.lora.targets).size;
        // LoRA training time per token ≈ 4 FLOPs per (kept) parameter at ~35 GFLOP/s per core, plus ~0.1 ms
        // of fixed cost per token; fitted to bench/README.md's measured LoRA throughput (stories260K 8 578
        // tok/s, a 110M model 174 tok/s on 2 cores)
        const perToken = (4 * plan.paramsAfter) / (35e9 * Math.max(1, engineInfo().hardwareThreads)) + 1e-4;
        const seconds = trainTokens * perToken;
        const acts = r.lora.batch * tokensPer * arch.dim * plan.layers.length * 4 * 16;
        const bytes = Math.round(plan.paramsAfter * 4 + trainableParams * 4 * 4 + acts);
        return { examples, steps, trainTokens, trainableParams, seconds, bytes };
      },
      'drafts.get': (): Draft | null => {
        const d = this.history.getDraft();
        return d ? { spec: d.spec as Partial<SpecInput>, step: d.step, updatedAt: d.updatedAt } : null;
      },
      'drafts.save': (r) => ({ savedAt: this.history.saveDraft(r.spec, r.step) }),
      'drafts.clear': () => ({ cleared: this.history.clearDraft() }),
      'runs.validate': async (r) => {
        const v = await this.runs.validate(r.spec);
        return { outDir: v.spec.outDir, ratios: v.ratios };
      },
      'runs.start': async (r) => {
        const runId = await this.runs.start(r.spec);
        this.history.clearDraft();
        return { runId };
      },
      'runs.cancel': (r) => ({ cancelled: this.runs.cancel(r.runId) }),
      'runs.resume': async (r) => ({ runId: await this.runs.resume(r.runId) }),
      'runs.list': (r) => this.runs.list(r),
      'runs.get': (r) => this.runs.get(r.runId),
      'runs.delete': (r) => ({ removedFiles: this.runs.delete(r.runId, r.deleteFiles) }),
      'runs.compare': (r) => this.runs.compare(r.runIds),
      'generate.start': (r) => ({ jobId: this.jobs.generate(r) }),
      'export.start': (r) => {
        if (!fs.existsSync(path.dirname(r.out))) throw new ServiceError('E_IO', `the folder ${path.dirname(r.out)} does not exist`, 'out');
        return { jobId: this.jobs.export(r) };
      },
      'jobs.cancel': (r) => ({ cancelled: this.jobs.cancel(r.jobId) }),
      'dialog.pick': async (r) => ({ path: o.desktop ? await o.desktop.pick(r) : null }),
      'shell.showItem': async (r) => ({ shown: o.desktop ? await o.desktop.showItem(r.path) : false }),
    };
  }
}

/** The workbench's data folder (runs, exports): beside the history database. */
export function defaultDataDir(dbPath: string): string {
  return path.join(path.dirname(path.resolve(dbPath)), 'workbench');
}

export const homeDir = os.homedir;
