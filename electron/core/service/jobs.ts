// jobs.ts — the workbench's short jobs beside the pipeline: playground generation (text streamed as it
// is decoded, in ~50 ms batches) and export of a model or a run's result (progress in bytes). Each job
// has an id, can be cancelled, and ends with exactly one 'job.finished' event.
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import type { ExportDone, ExportRequest, GenerateDone, GenerateRequest } from '../api/contract.js';
import { exportModel } from '../export/export.js';
import type { History } from '../history/db.js';
import { generateText } from '../text/generate.js';
import { resolveRunExport } from '../export/from-run.js';
import type { ModelCache } from './library.js';
import { ServiceError, Throttle, toWireError, type Emit } from './events.js';

export class JobManager {
  private readonly jobs = new Map<string, AbortController>();
  private readonly throttle = new Throttle(100);

  constructor(private readonly o: { history: History; emit: Emit; cache: ModelCache }) {}

  cancel(jobId: string): boolean {
    const ac = this.jobs.get(jobId);
    if (!ac) return false;
    ac.abort();
    return true;
  }

  get running(): number {
    return this.jobs.size;
  }

  private spawn(kind: 'export' | 'generate', work: (jobId: string, signal: AbortSignal) => Promise<ExportDone | GenerateDone>): string {
    const jobId = `${kind}-${crypto.randomBytes(6).toString('hex')}`;
    const ac = new AbortController();
    this.jobs.set(jobId, ac);
    void work(jobId, ac.signal).then(
      (result) => ({ ok: true, error: null, result }),
      (e: unknown) => ({ ok: false, error: toWireError(e), result: null }),
    ).then((r) => {
      this.throttle.flushAll(`${jobId}`);
      this.jobs.delete(jobId);
      this.o.emit('job.finished', { jobId, kind, ...r });
    });
    return jobId;
  }

  generate(req: GenerateRequest): string {
    this.o.cache.locate(req.source); // a missing model or run result fails the request itself
    return this.spawn('generate', (jobId, signal) => this.o.cache.use(req.source, async (model) => {
      let buf = '';
      const flush = () => {
        if (buf) this.o.emit('job.text', { jobId, side: req.side, delta: buf });
        buf = '';
      };
      let timer: ReturnType<typeof setTimeout> | null = null;
      try {
        const r = await generateText(model, req.prompt, {
          maxTokens: req.maxTokens, temperature: req.temperature, topK: req.topK, topP: req.topP, seed: req.seed, signal,
          onText: (d) => {
            buf += d;
            timer ??= setTimeout(() => {
              timer = null;
              flush();
            }, 50);
          },
        });
        return { text: r.text, tokens: r.ids.length, tokensPerSec: r.tokensPerSec, stopReason: r.stopReason, side: req.side };
      } finally {
        if (timer) clearTimeout(timer);
        flush();
      }
    }));
  }

  export(req: ExportRequest): string {
    const where = this.o.cache.locate(req.source);
    const s = req.source;
    if (req.format === 'peft' && !(s.kind === 'run' && !s.recovered))
      throw new ServiceError('E_ARG', 'a PEFT export is the LoRA adapter of a run beside its pruned base: choose a run result without merging (recovered: false)', 'format');
    // a run's result: the same resolution and model card (evaluation, recovery) as `tailor export RUN_ID`
    const run = s.kind === 'run' ? resolveRunExport(this.o.history, s.runId, s.ratio) : null;
    const t0 = Date.now();
    return this.spawn('export', (jobId, signal) => this.o.cache.use(s, async (model) => {
      const r = await exportModel(model, {
        format: req.format, dtype: req.dtype, out: req.out, force: req.force, signal,
        name: run ? `${run.runName} (ratio ${run.ratio})` : path.basename(model.info.path),
        adapterDir: run && req.format === 'peft' ? run.adapterDir : undefined,
        card: run ? { baseModel: run.baseModel, runId: run.runId, evaluation: run.evaluation, perplexity: run.perplexity, mergedAdapter: where.adapterDir ?? undefined } : undefined,
        onProgress: (p) => {
          const el = (Date.now() - t0) / 1000;
          this.throttle.push(jobId, () => this.o.emit('job.progress', { jobId, kind: 'export', fraction: p.fraction, bytes: p.bytesWritten, totalBytes: p.totalBytes,
            etaSec: p.fraction > 0.01 ? (el * (1 - p.fraction)) / p.fraction : null }));
        },
      });
      if (run) this.o.history.addArtifact(run.runId, 'export', req.out);
      return { paths: r.paths, bytes: r.bytes, format: r.format, architecture: r.architecture ?? null };
    }));
  }
}
