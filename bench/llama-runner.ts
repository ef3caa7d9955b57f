// llama-runner.ts — times llama.cpp (through node-llama-cpp, CPU build) on the same GGUF files.
// Engine time is llama.cpp's own llama_perf counters (read through `printTimings()`, whose log lines are
// captured here): "prompt eval time" for the prompt, "eval time" for the single-token decode steps. They
// leave out node-llama-cpp's JavaScript batching and sampling round trips, which the wall time includes.
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp';
import type { BenchModel } from './models.js';
import type { Timed } from './tailor-runner.js';
import { sleep } from './stats.js';

export type FlashAttention = 'auto' | 'on' | 'off';

interface PerfNumbers {
  promptMs: number;
  promptTokens: number;
  evalMs: number;
  evalRuns: number;
}

/** One llama.cpp instance for the whole run; its log goes through `onLine`. */
export class LlamaHost {
  private partial = '';
  private lines: string[] = [];
  private constructor(readonly llama: Llama) {}

  static async create(threads: number): Promise<LlamaHost> {
    let host: LlamaHost | undefined;
    const pending: string[] = [];
    const llama = await getLlama({
      gpu: false,
      build: 'never',
      usePrebuiltBinaries: true,
      maxThreads: threads,
      // info level is needed for llama_perf_context_print; every line is swallowed by the logger
      logLevel: LlamaLogLevel.info,
      logger: (_level, message) => {
        if (host) host.onText(message);
        else pending.push(message);
      },
    });
    host = new LlamaHost(llama);
    for (const m of pending) host.onText(m);
    return host;
  }

  private onText(text: string): void {
    const all = this.partial + text + (text.endsWith('\n') ? '' : '\n');
    const parts = all.split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) if (p.trim()) this.lines.push(p.trim());
    if (this.lines.length > 5000) this.lines.splice(0, this.lines.length - 1000);
  }

  /** Returns and forgets the captured log lines. */
  takeLines(): string[] {
    const l = this.lines;
    this.lines = [];
    return l;
  }

  get version(): string {
    const r = this.llama.llamaCppRelease;
    return `${r.repo}@${r.release} (${this.llama.buildType})`;
  }

  get systemInfo(): string {
    return this.llama.systemInfo.trim();
  }

  async dispose(): Promise<void> {
    await this.llama.dispose();
  }
}

export interface LlamaContextInfo {
  flashAttention: string;
  kvType: string;
  threads: number;
  contextSize: number;
  batchSize: number;
}

export class LlamaRunner {
  private constructor(
    private readonly host: LlamaHost,
    private readonly model: LlamaModel,
    private readonly ctx: LlamaContext,
    private readonly seq: LlamaContextSequence,
    readonly info: LlamaContextInfo,
  ) {}

  static async open(host: LlamaHost, m: BenchModel, threads: number, fa: FlashAttention, kv: 'F16' | 'F32' = 'F16'): Promise<LlamaRunner> {
    host.takeLines();
    const model = await host.llama.loadModel({ modelPath: m.path, gpuLayers: 0 });
    const ctx = await model.createContext({
      // node-llama-cpp keeps one cell free (it evaluates at most contextSize − 1 tokens before shifting the
      // context), so a prompt that fills the model's whole context needs one more cell here
      contextSize: m.contextLength + 1,
      batchSize: 512, // Tailor evaluates prompts in batches of 512 too
      threads: { ideal: threads, min: threads },
      sequences: 1,
      flashAttention: fa === 'auto' ? 'auto' : fa === 'on',
      performanceTracking: true,
      ...(kv === 'F32' ? { experimentalKvCacheKeyType: 'F32' as const, experimentalKvCacheValueType: 'F32' as const } : {}),
    });
    await sleep(20); // let the context-creation log arrive
    const log = host.takeLines();
    const faLine = log.find((l) => /Flash Attention (enabled|disabled)/i.test(l));
    const kvLine = log.find((l) => /K \((\w+)\)/.test(l));
    const info: LlamaContextInfo = {
      flashAttention: faLine ? (/enabled/i.test(faLine) ? 'on' : 'off') + (fa === 'auto' ? ' (auto)' : '') : fa,
      kvType: kvLine ? /K \((\w+)\)/.exec(kvLine)![1] : String(ctx.kvCacheKeyType),
      threads: ctx.currentThreads,
      contextSize: ctx.contextSize,
      batchSize: ctx.batchSize,
    };
    return new LlamaRunner(host, model, ctx, ctx.getSequence(), info);
  }

  /** Resets llama_perf (printTimings prints, then resets) and the captured log. */
  private async resetPerf(): Promise<void> {
    await this.ctx.printTimings();
    await this.waitForPerf();
    this.host.takeLines();
  }

  private async waitForPerf(): Promise<string[]> {
    // the log arrives asynchronously; "total time" is the last counter line printed
    const got: string[] = [];
    for (let i = 0; i < 50; i++) {
      got.push(...this.host.takeLines());
      if (got.some((l) => /total time\s*=/.test(l))) break;
      await sleep(2);
    }
    return got;
  }

  private async readPerf(): Promise<PerfNumbers> {
    await this.ctx.printTimings();
    const lines = await this.waitForPerf();
    const p = lines.map((l) => /prompt eval time\s*=\s*([\d.]+)\s*ms\s*\/\s*(\d+)\s*tokens/.exec(l)).find(Boolean);
    const e = lines.map((l) => /(?<!prompt )eval time\s*=\s*([\d.]+)\s*ms\s*\/\s*(\d+)\s*runs/.exec(l)).find(Boolean);
    if (!p || !e) throw new Error(`could not read llama.cpp's timings from its log:\n${lines.join('\n')}`);
    return { promptMs: Number(p[1]), promptTokens: Number(p[2]), evalMs: Number(e[1]), evalRuns: Number(e[2]) };
  }

  /** Prompt processing: the prompt, then one greedy sample from the last position's logits. */
  async pp(prompt: number[]): Promise<Timed> {
    await this.seq.clearHistory();
    await this.resetPerf();
    const t0 = performance.now();
    for await (const _ of this.seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) break;
    const wallMs = performance.now() - t0;
    const perf = await this.readPerf();
    if (perf.promptTokens !== prompt.length)
      throw new Error(`llama.cpp counted ${perf.promptTokens} prompt tokens, expected ${prompt.length}`);
    return { ms: perf.promptMs, wallMs, tokens: prompt.length };
  }

  /** Generation: after the prompt, n single-token decode steps, greedy (n + 1 ids come out). */
  async tg(prompt: number[], n: number): Promise<Timed> {
    await this.seq.clearHistory();
    await this.resetPerf();
    const ids: number[] = [];
    let tFirst = 0;
    const t0 = performance.now();
    for await (const id of this.seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
      if (ids.length === 0) tFirst = performance.now();
      ids.push(id as number);
      if (ids.length >= n + 1) break;
    }
    const wallMs = performance.now() - (tFirst || t0);
    const perf = await this.readPerf();
    return { ms: perf.evalMs, wallMs, tokens: perf.evalRuns, ids };
  }

  /**
   * lm-eval's scoring of multiple-choice requests, as well as llama.cpp does it: each request's continuation
   * log-likelihood (Σ log p of ids[contStart..] given what precedes), the cache keeping the prefix a request
   * shares with the previous one (up to the position before its continuation, whose prediction it needs) and
   * the rest evaluated, with the target's logit, the largest and Σ exp(logit − max) asked for at each
   * continuation position. Wall time of the whole list.
   */
  async continuationLogLikelihoods(reqs: ReadonlyArray<{ ids: number[]; contStart: number }>): Promise<{ ll: number[]; wallMs: number }> {
    await this.seq.clearHistory();
    const ll: number[] = [];
    let prev: number[] = [];
    const t0 = performance.now();
    for (const r of reqs) {
      let common = 0;
      while (common < prev.length && common < r.ids.length && prev[common] === r.ids[common]) common++;
      const keep = Math.min(common, r.contStart - 1);
      if (this.seq.nextTokenIndex > keep) await this.seq.eraseContextTokenRanges([{ start: keep, end: this.seq.nextTokenIndex }]);
      const input = r.ids.slice(keep).map((id, k): ControlledEvaluateInputItem => {
        const p = keep + k;
        if (p < r.contStart - 1 || p + 1 >= r.ids.length) return id as Token;
        return [id as Token, { generateNext: { logits: { filter: { tokens: [r.ids[p + 1] as Token], includeTop: 1 } }, totalLogitWeight: true } }];
      });
      const out = await this.seq.controlledEvaluate(input);
      let sum = 0;
      for (let p = r.contStart - 1; p + 1 < r.ids.length; p++) {
        const next = out[p - keep]?.next;
        if (!next?.logits || next.totalLogitWeight === undefined) throw new Error(`llama.cpp returned no logits at position ${p}`);
        const max = Math.max(...next.logits.values());
        sum += next.logits.get(r.ids[p + 1] as Token)! - max - Math.log(next.totalLogitWeight);
      }
      ll.push(sum);
      prev = r.ids;
    }
    return { ll, wallMs: performance.now() - t0 };
  }

  async dispose(): Promise<void> {
    await this.ctx.dispose();
    await this.model.dispose();
  }
}
