// trainer.ts — LoRA fine-tuning over the engine: a typed Trainer around the addon's, and finetune(), the
// long job: progress with ETA every step, cancel within a second, a checkpoint every N steps and at
// cancel (LoRA weights as a PEFT adapter + AdamW moments + step), resume to the same result as an
// uninterrupted run, and the final adapter written as PEFT.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Model, cancelFlagFor } from '../engine/engine.js';
import { EngineError, toEngineError, wrapSync } from '../engine/errors.js';
import { addon, type RawAddonTrainer, type RawExample, type RawStepStats, type RawTrainConfig } from '../engine/native.js';
import { bytesOf } from '../formats/dtype.js';
import { readSafetensorsHeader, writeHfFolder, writeSafetensors } from '../formats/safetensors-write.js';
import { Eta, type StageProgress } from '../text/progress.js';
import { atomicWriteDir, atomicWriteFile } from './atomic.js';
import { DEFAULT_LORA, readPeftAdapter, targetMask, writePeftAdapter, type LoraSettings } from './lora.js';

export interface OptimSettings {
  lr: number; beta1: number; beta2: number; eps: number; weightDecay: number;
  warmupSteps: number; schedule: 'cosine' | 'constant'; minLrRatio: number; clip: number;
}
export interface TrainSettings {
  lora: LoraSettings;
  optim: OptimSettings;
  epochs: number; batch: number; microBatch: number; maxLen: number; seed: number;
  checkpointActivations: boolean;
  /** full fine-tuning: every base weight trained (no LoRA); ~4× the model's memory */
  full?: boolean;
}
export const DEFAULT_OPTIM: OptimSettings = { lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, warmupSteps: 0, schedule: 'cosine', minLrRatio: 0, clip: 1 };
export const DEFAULT_TRAIN: TrainSettings = { lora: DEFAULT_LORA, optim: DEFAULT_OPTIM, epochs: 1, batch: 8, microBatch: 8, maxLen: 256, seed: 0, checkpointActivations: false };

function rawConfig(s: TrainSettings): RawTrainConfig {
  return {
    rank: s.lora.rank, alpha: s.lora.alpha, rslora: s.lora.rslora, dropout: s.lora.dropout, targets: targetMask(s.lora.targets),
    lr: s.optim.lr, beta1: s.optim.beta1, beta2: s.optim.beta2, eps: s.optim.eps, weightDecay: s.optim.weightDecay,
    warmupSteps: s.optim.warmupSteps, cosine: s.optim.schedule === 'cosine', minLrRatio: s.optim.minLrRatio, clip: s.optim.clip,
    epochs: s.epochs, batch: s.batch, microBatch: s.microBatch, maxLen: s.maxLen, seed: s.seed, checkpointActivations: s.checkpointActivations,
    full: !!s.full,
  };
}

export class Trainer {
  private constructor(private raw: RawAddonTrainer | null, readonly model: Model, readonly settings: TrainSettings) {}

  static create(model: Model, settings: TrainSettings, examples: RawExample[]): Trainer {
    return wrapSync(() => new Trainer(addon().createTrainer(model.rawHandle(), rawConfig(settings), examples), model, settings));
  }
  private h(): RawAddonTrainer {
    if (!this.raw) throw new EngineError('E_ARG', 'the trainer has been disposed');
    return this.raw;
  }
  info() { return this.h().info(); }
  get step(): number { return this.h().info().step; }
  get totalSteps(): number { return this.h().info().totalSteps; }

  /** Runs up to maxSteps optimizer steps (default: to the end). Rejects with E_CANCELLED on abort,
   *  leaving the state at the last completed step. */
  async run(opts: { maxSteps?: number; signal?: AbortSignal; onStep?: (s: RawStepStats) => void } = {}) {
    const { flag, done } = cancelFlagFor(opts.signal);
    // steps are reported live; the result carries them all again, so none is lost or repeated however
    // the thread-safe callbacks and the promise interleave
    let last = this.step;
    const deliver = (s: RawStepStats) => {
      if (s.step <= last) return;
      last = s.step;
      opts.onStep?.(s);
    };
    let r;
    try {
      r = await this.h().run({ maxSteps: opts.maxSteps, cancel: flag, onStep: deliver });
    } catch (e) {
      throw toEngineError(e);
    } finally {
      done();
    }
    for (const s of r.stats) deliver(s);
    if (r.cancelled) throw new EngineError('E_CANCELLED', `cancelled after step ${r.step}`);
    return { steps: r.steps, step: r.step, done: r.done };
  }
  async evalLoss(examples: RawExample[], signal?: AbortSignal): Promise<number> {
    const { flag, done } = cancelFlagFor(signal);
    try {
      return await this.h().evalLoss(examples, { cancel: flag });
    } catch (e) {
      throw toEngineError(e);
    } finally {
      done();
    }
  }
  state() { return this.h().getState(); }
  setState(s: { params: Float32Array; m?: Float32Array; v?: Float32Array; step?: number }) {
    wrapSync(() => this.h().setState(s));
  }
  /** Merges the LoRA weights into the model (the model then scores as base + adapter). */
  mergeIntoModel(): void { wrapSync(() => this.h().mergeInto()); }
  dispose(): void {
    if (this.raw) {
      this.raw.dispose();
      this.raw = null;
    }
  }
}

// ---- the fine-tuning job -------------------------------------------------------------------------

export interface FinetuneProgress extends StageProgress { step: number; totalSteps: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number }

export interface FinetuneOptions {
  settings: TrainSettings;
  examples: RawExample[];
  /** held-out examples: their loss is measured before and after */
  evalExamples?: RawExample[];
  outDir: string;
  checkpointEvery?: number;
  resume?: boolean;
  force?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: FinetuneProgress) => void;
  baseModelName?: string;
}

export interface FinetuneResult {
  adapterDir: string;
  steps: number;
  losses: Array<{ step: number; loss: number; lr: number }>;
  evalLossBefore?: number;
  evalLossAfter?: number;
  seconds: number;
  resumedFrom?: number;
}

interface TrainerStateFile { version: 1; step: number; totalSteps: number; settings: TrainSettings; dataHash: string; losses: Array<{ step: number; loss: number; lr: number }> }

export function dataHash(examples: RawExample[]): string {
  const h = crypto.createHash('sha256');
  for (const e of examples) {
    h.update(bytesOf(e.ids));
    h.update(bytesOf(e.weight));
  }
  return h.digest('hex');
}

function saveCheckpoint(dir: string, model: Model, t: Trainer, meta: Omit<TrainerStateFile, 'version' | 'step' | 'totalSteps'>, baseModel: string): void {
  const st = t.state();
  atomicWriteDir(dir, true, (tmp) => {
    if (!t.settings.full) writePeftAdapter(path.join(tmp, 'adapter'), model.info, { settings: t.settings.lora, params: st.params, baseModel });
    writeSafetensors(path.join(tmp, 'state.safetensors'), [
      { name: 'params', dtype: 'F32', shape: [st.params.length], data: bytesOf(st.params) },
      { name: 'adam_m', dtype: 'F32', shape: [st.m.length], data: bytesOf(st.m) },
      { name: 'adam_v', dtype: 'F32', shape: [st.v.length], data: bytesOf(st.v) },
    ]);
    const file: TrainerStateFile = { version: 1, step: st.step, totalSteps: t.totalSteps, ...meta };
    fs.writeFileSync(path.join(tmp, 'trainer_state.json'), JSON.stringify(file, null, 2) + '\n');
  });
}

function loadCheckpoint(dir: string, model: Model, t: Trainer, hash: string): TrainerStateFile {
  const file = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8')) as TrainerStateFile;
  if (file.version !== 1) throw new EngineError('E_UNSUPPORTED', `${dir}: unknown checkpoint version`);
  if (JSON.stringify(file.settings) !== JSON.stringify(t.settings))
    throw new EngineError('E_ARG', `${dir}: the checkpoint was made with other training settings; resume with the same settings or start over without --resume`);
  if (file.dataHash !== hash) throw new EngineError('E_ARG', `${dir}: the checkpoint was made on other training data`);
  const bytes = new Uint8Array(fs.readFileSync(path.join(dir, 'state.safetensors')));
  const h = readSafetensorsHeader(bytes);
  const get = (name: string) => {
    const info = h.tensors.find((x) => x.name === name);
    if (!info) throw new EngineError('E_FORMAT', `${dir}: state.safetensors lacks ${name}`);
    return new Float32Array(bytes.slice(h.dataOffset + info.begin, h.dataOffset + info.end).buffer);
  };
  t.setState({ params: get('params'), m: get('adam_m'), v: get('adam_v'), step: file.step });
  return file;
}

export async function finetune(model: Model, o: FinetuneOptions): Promise<FinetuneResult> {
  const t0 = performance.now();
  const ckptDir = path.join(o.outDir, 'checkpoint');
  const adapterDir = path.join(o.outDir, o.settings.full ? 'model' : 'adapter');
  if (!o.resume && !o.force && fs.existsSync(adapterDir)) throw new EngineError('E_IO', `${adapterDir} already exists (use --force to overwrite, or --resume)`);
  fs.mkdirSync(o.outDir, { recursive: true });
  const hash = dataHash(o.examples);
  const trainer = Trainer.create(model, o.settings, o.examples);
  const baseModel = o.baseModelName ?? model.info.path;
  try {
    let losses: TrainerStateFile['losses'] = [];
    let resumedFrom: number | undefined;
    if (o.resume && fs.existsSync(path.join(ckptDir, 'trainer_state.json'))) {
      const st = loadCheckpoint(ckptDir, model, trainer, hash);
      losses = st.losses;
      resumedFrom = st.step;
    } else if (o.resume) {
      throw new EngineError('E_IO', `nothing to resume: ${ckptDir} has no checkpoint`);
    }
    const evalLossBefore = o.evalExamples && resumedFrom === undefined ? await trainer.evalLoss(o.evalExamples, o.signal) : undefined;
    const total = trainer.totalSteps;
    const startStep = trainer.step;
    const eta = new Eta(total - startStep);
    let tokens = 0;
    const every = Math.max(1, o.checkpointEvery ?? 50);
    const meta = () => ({ settings: o.settings, dataHash: hash, losses });
    while (trainer.step < total) {
      try {
        await trainer.run({
          maxSteps: every - (trainer.step % every),
          signal: o.signal,
          onStep: (s) => {
            losses.push({ step: s.step, loss: s.loss, lr: s.lr });
            tokens += s.tokens;
            const p = eta.update(s.step - startStep);
            o.onProgress?.({ ...p, step: s.step, totalSteps: total, loss: s.loss, lr: s.lr, gradNorm: s.gradNorm, tokensPerSec: p.elapsedSec > 0 ? tokens / p.elapsedSec : 0 });
          },
        });
      } catch (e) {
        const err = toEngineError(e);
        if (err.code === 'E_CANCELLED') {
          losses = losses.filter((l) => l.step <= trainer.step);
          saveCheckpoint(ckptDir, model, trainer, meta(), baseModel);
        }
        throw err;
      }
      losses = losses.filter((l) => l.step <= trainer.step);
      saveCheckpoint(ckptDir, model, trainer, meta(), baseModel);
    }
    const evalLossAfter = o.evalExamples ? await trainer.evalLoss(o.evalExamples, o.signal) : undefined;
    if (o.settings.full) {
      // the model's own weights were trained: write it as a Hugging Face folder with its tokenizer
      const src = model.info.path;
      const srcDir = fs.statSync(src).isDirectory() ? src : path.dirname(src);
      const tok = ['tokenizer.json', 'tokenizer.model', 'tokenizer_config.json'].map((f) => path.join(srcDir, f)).filter((f) => fs.existsSync(f));
      const tensors = model.lazyTensors();  // each tensor read as it is written
      atomicWriteDir(adapterDir, true, (tmp) => {
        writeHfFolder(tmp, tensors, {});
        for (const f of tok) fs.copyFileSync(f, path.join(tmp, path.basename(f)));
      });
    } else {
      const st = trainer.state();
      writePeftAdapter(adapterDir, model.info, { settings: o.settings.lora, params: st.params, baseModel }, {
        force: true,
        note: `# LoRA adapter\n\nTrained by Tailor on ${path.basename(baseModel)} (rank ${o.settings.lora.rank}, alpha ${o.settings.lora.alpha}, targets ${o.settings.lora.targets.join(', ')}, ${total} steps).\nIt fits only that exact base model (the same pruned shapes).\n`,
      });
    }
    atomicWriteFile(path.join(o.outDir, 'training_log.json'), JSON.stringify({ losses, evalLossBefore, evalLossAfter, settings: o.settings }, null, 2) + '\n');
    return { adapterDir, steps: total, losses, evalLossBefore, evalLossAfter, seconds: (performance.now() - t0) / 1000, resumedFrom };
  } finally {
    trainer.dispose();
  }
}

/** Loads a PEFT adapter and merges it into the model (base + adapter as one set of weights). */
export function applyAdapter(model: Model, adapterDir: string): LoraSettings {
  const a = readPeftAdapter(adapterDir, model.info);
  model.mergeLora({ rank: a.settings.rank, alpha: a.settings.alpha, rslora: a.settings.rslora, targets: targetMask(a.settings.targets) }, a.params);
  return a.settings;
}
