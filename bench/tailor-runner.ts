// tailor-runner.ts — times Tailor's native engine through its public API (Model.generateIds).
// Engine time is what the engine itself measures around the work (promptMs: the whole prompt in batches of
// 512 plus the last position's logits; generateMs: the decode loop); wall time is the promise's round trip
// as Node sees it (adds the per-call session set-up: KV-cache allocation, and the N-API hop).
import { Model } from '../electron/core/engine/engine.js';
import type { BenchModel } from './models.js';

export interface Timed {
  /** engine-measured milliseconds */
  ms: number;
  /** Node wall-clock milliseconds for the whole call */
  wallMs: number;
  /** tokens the timed part processed (prompt tokens for pp, single-token decode steps for tg) */
  tokens: number;
  /** generated ids (tg only), for the cross-engine sanity check */
  ids?: number[];
}

export class TailorRunner {
  private constructor(
    readonly model: Model,
    private readonly nCtx: number,
  ) {}

  static async open(m: BenchModel, threads: number): Promise<TailorRunner> {
    const model = await Model.load(m.path, { threads, blas: true, noTokenizer: true });
    return new TailorRunner(model, m.contextLength);
  }

  get backend(): string {
    return this.model.info.backend;
  }
  get threads(): number {
    return this.model.info.threads;
  }
  get nParams(): number {
    return this.model.info.nParams;
  }

  /** Prompt processing: the prompt, then one greedy sample from the last position's logits. */
  async pp(prompt: number[]): Promise<Timed> {
    const t0 = performance.now();
    const r = await this.model.generateIds(prompt, { maxTokens: 1, temperature: 0, stopAtEos: false, nCtx: this.nCtx });
    const wallMs = performance.now() - t0;
    return { ms: r.promptMs, wallMs, tokens: r.promptTokens };
  }

  /**
   * Generation: after the (short) prompt, n single-token decode steps, greedy. generateIds samples the
   * first id from the prompt's logits, so n + 1 ids cost n decode steps.
   */
  async tg(prompt: number[], n: number): Promise<Timed> {
    const t0 = performance.now();
    const r = await this.model.generateIds(prompt, { maxTokens: n + 1, temperature: 0, stopAtEos: false, nCtx: this.nCtx });
    const wallMs = performance.now() - t0;
    const steps = Math.max(0, r.tokens.length - 1);
    // wall covers the prompt as well; take it out so wall and engine time count the same decode steps
    return { ms: r.generateMs, wallMs: wallMs - r.promptMs, tokens: steps, ids: r.tokens };
  }

  dispose(): void {
    this.model.dispose();
  }
}
