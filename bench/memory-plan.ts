// memory-plan.ts — the GPU memory plan of issue #8, computed rather than written by hand: LLaMA-7B and its
// structurally pruned 5B and 4B versions (LLM-Pruner's layers 4-29, parameter targets solved by Tailor's
// own planner), LoRA fine-tuning and the Taylor importance pass on a 24 GB GPU. Prints the Markdown table
// that docs/memory-plan.md holds: `node dist/bench/memory-plan.js [--batch 4] [--seq 256] [--rank 8]`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { archFromHfConfig, paramCount, planLocal, ratioForTarget, type ArchConfig, type LayerShape } from '../electron/core/prune/plan.js';
import { loraSlots, LORA_TARGETS } from '../electron/core/train/lora.js';
import { buildRequests, EVAL_BATCH_TOKENS, EVAL_CHUNK } from '../electron/core/eval/eval.js';
import { getTask } from '../electron/core/tasks/index.js';
import { parseModelProto, SentencePieceTokenizer } from '../electron/core/tokenizer/index.js';
import { sharedDir } from './paths.js';

const arg = (k: string, d: number) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const B = arg('batch', 4), T = arg('seq', 256), RANK = arg('rank', 8);
const GiB = 1024 ** 3;
const LLAMA7B = { hidden_size: 4096, intermediate_size: 11008, num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32, vocab_size: 32000, tie_word_embeddings: false };

interface Row { name: string; params: number; parts: Record<string, number> }

/** Bytes of one LoRA training step at B×T tokens, with activation checkpointing at layer boundaries. */
function loraPlan(name: string, a: ArchConfig, layers: LayerShape[]): Row {
  const params = paramCount(a, layers);
  const nLora = loraSlots({ dim: a.dim, headDim: a.headDim, layers }, RANK, LORA_TARGETS).size;
  const N = B * T;
  // the largest layer's activations, kept while it is recomputed and back-propagated (fp32): the input and
  // its norm, q/k/v/attention output, the o-projection input, the FFN norm, gate/up/activation, the output,
  // and the same again for their gradients; fused attention keeps no T×T scores
  const layerActs = Math.max(...layers.map((l) => {
    const q = l.nHead * a.headDim, kv = l.nKvHead * a.headDim;
    return N * (4 * a.dim + 2 * q + 2 * kv + 3 * l.ffn) * 4 * 2;
  }));
  return {
    name, params,
    parts: {
      'weights (bf16)': params * 2,
      'LoRA params + grads + AdamW m, v (fp32)': nLora * 4 * 4,
      'checkpoints: residual stream at each layer (fp32)': N * a.dim * 4 * (layers.length + 1),
      "one layer's activations and their gradients (fp32)": layerActs,
      'logits and their gradient, fused with the head in chunks of 1024 tokens (fp32)': Math.min(N, 1024) * a.vocabSize * 4 * 2,
      'allowance for the CUDA context and kernels': 0.5 * GiB,
    },
  };
}

/** The Taylor importance pass (one layer's full weight gradient at a time, as grad_pass.cpp does). */
function importancePlan(a: ArchConfig): number {
  const layer = a.layers.reduce((m, l) => Math.max(m, a.dim * a.headDim * (2 * l.nHead + 2 * l.nKvHead) + 3 * a.dim * l.ffn + 2 * a.dim), 0);
  const N = 10 * 64; // LLM-Pruner's calibration: 10 × 64 tokens
  return paramCount(a) * 2 + layer * 4 * 2 + N * a.dim * 4 * (a.layers.length + 1) + N * a.vocabSize * 4 * 2 + 0.5 * GiB;
}

/**
 * The evaluation's scoring of one batch of `tokens` computed tokens over `rows` positions (shared prefixes
 * included): the forward's activations (x, xn, h, q, att, k, v, g, u in fp32), one layer's keys and values
 * of each position (the packed cache every layer reuses, forward.h; bf16, as the bf16 mode keeps it where its
 * tensor-core attention takes the head size, LLaMA's 128 among them) and a block of 256 rows of logits.
 */
function scoringPlan(a: ArchConfig, tokens: number, rows: number): { total: number; kv: number } {
  const heads = Math.max(...a.layers.map((l) => l.nHead)), kvHeads = Math.max(...a.layers.map((l) => l.nKvHead)), ffn = Math.max(...a.layers.map((l) => l.ffn));
  const acts = tokens * (3 * a.dim + 2 * heads * a.headDim + 2 * kvHeads * a.headDim + 2 * ffn) * 4;
  const kv = rows * kvHeads * a.headDim * 2 * 2;
  return { total: paramCount(a) * 2 + acts + kv + 256 * a.vocabSize * 4 + 0.5 * GiB, kv };
}

/**
 * The paper's seven tasks as eval.ts scores them (zero-shot requests, Llama 2's tokenizer, chunks of
 * EVAL_CHUNK requests packed by the engine's rule into batches of up to EVAL_BATCH_TOKENS computed tokens, a
 * prefix of 8 or more tokens in common with the previous request of the batch computed once, runtime.cpp):
 * per task, the tokens of the requests and those computed, the largest batch's positions (its keys and
 * values), and what a cache of every layer with a slot per sequence, padded to the longest, would have held
 * (the engine's layout before the packed cache: the largest slot count times the longest sequence of a
 * call). Empty when the shared data is not beside the checkout.
 */
function evaluationBatches(): Array<{ task: string; requests: number; tokens: number; computed: number; batchRows: number; padded: number }> {
  const spm = path.join(sharedDir(), 'models', 'llama2-tokenizer', 'tokenizer.model');
  if (!fs.existsSync(spm)) return [];
  const tok = new SentencePieceTokenizer(parseModelProto(fs.readFileSync(spm)));
  return ['boolq', 'piqa', 'hellaswag', 'winogrande', 'arc_easy', 'arc_challenge', 'openbookqa'].map((task) => {
    const ids = buildRequests(tok, getTask(task, { dataDir: path.join(sharedDir(), 'datasets') }).evalItems(), 2048).map((r) => r.ids);
    let tokens = 0, computed = 0, batchRows = 0, padded = 0;
    const shared = (a: number[], b: number[]) => {
      let p = 0;
      while (p < a.length && p < b.length && a[p] === b[p]) p++;
      return Math.min(p, b.length) - 1 >= 8 ? Math.min(p, b.length) - 1 : 0;
    };
    // runtime.cpp's packing, written again here to count without a model (a change to score_sequences' rule —
    // kMinSharedPrefix, kBatchRowsPerToken — must be made here too): whole sequences while their cost fits the
    // batch (and, with `rowsCap`, their positions fit 4 × its tokens), at least one; yields [i, j) batches and their cost
    const pack = function* (chunk: number[][], cost: (j: number, first: boolean) => number, rowsCap: boolean) {
      for (let i = 0; i < chunk.length;) {
        let j = i, t = 0, rows = 0;
        for (; j < chunk.length; j++) {
          const n = cost(j, j === i);
          if (j > i && (t + n > EVAL_BATCH_TOKENS || (rowsCap && rows + chunk[j].length > 4 * EVAL_BATCH_TOKENS))) break;
          t += n;
          rows += chunk[j].length;
        }
        yield [i, j, t] as const;
        i = j;
      }
    };
    for (let c = 0; c < ids.length; c += EVAL_CHUNK) {
      const chunk = ids.slice(c, c + EVAL_CHUNK);
      tokens += chunk.reduce((s, x) => s + x.length, 0);
      // now: a batch's budget is its computed tokens, its cache holds all its positions once
      for (const [i, j, t] of pack(chunk, (k, first) => chunk[k].length - (first ? 0 : shared(chunk[k - 1], chunk[k])), true)) {
        computed += t;
        batchRows = Math.max(batchRows, chunk.slice(i, j).reduce((s, x) => s + x.length, 0));
      }
      // before: every sequence whole, and a cache of the call's largest slot count × its longest sequence
      let slots = 0, longest = 0;
      for (const [i, j] of pack(chunk, (k) => chunk[k].length, false)) {
        slots = Math.max(slots, j - i);
        longest = Math.max(longest, ...chunk.slice(i, j).map((x) => x.length));
      }
      padded = Math.max(padded, slots * longest);
    }
    return { task, requests: ids.length, tokens, computed, batchRows, padded };
  });
}

const full = archFromHfConfig(LLAMA7B);
const scope = { attnLayers: [4, 29] as [number, number], mlpLayers: [4, 29] as [number, number] };
const rows: Row[] = [loraPlan('LLaMA-7B (unpruned)', full, full.layers)];
for (const target of [5e9, 4e9]) {
  const ratio = ratioForTarget(full, target, scope);
  const plan = planLocal(full, ratio, scope);
  rows.push(loraPlan(`pruned to ${target / 1e9}B (ratio ${ratio.toFixed(3)}, layers 4-29)`, full, plan.layers));
}
const fmt = (b: number) => `${(b / GiB).toFixed(2)} GiB`;
const keys = Object.keys(rows[0].parts);
const lines = [
  `LoRA rank ${RANK} on q, k, v, o, gate, up, down; batch ${B} × ${T} tokens; bf16 weights, fp32 LoRA and optimizer state; checkpointing at layer boundaries.`,
  '',
  `| part | ${rows.map((r) => r.name).join(' | ')} |`,
  `|---|${rows.map(() => '---').join('|')}|`,
  `| parameters | ${rows.map((r) => r.params.toLocaleString('en-US')).join(' | ')} |`,
  ...keys.map((k) => `| ${k} | ${rows.map((r) => fmt(r.parts[k])).join(' | ')} |`),
  `| **total** | ${rows.map((r) => `**${fmt(Object.values(r.parts).reduce((s, x) => s + x, 0))}**`).join(' | ')} |`,
  `| left on a 24 GB (= 22.35 GiB) GPU | ${rows.map((r) => fmt(22.35 * GiB - Object.values(r.parts).reduce((s, x) => s + x, 0))).join(' | ')} |`,
  // released (hostWeights 'auto' on CUDA): one tensor decoded at a time (the embedding table is the largest),
  // plus the two 16 MiB page-locked staging buffers of the copy stream
  `| host memory, weights released (the default on CUDA): the largest tensor while it is decoded, and the staging | ${rows.map(() => fmt(4 * Math.max(full.vocabSize * full.dim, ...full.layers.map((l) => l.ffn * full.dim))  + 32 * 2 ** 20)).join(' | ')} |`,
  `| host memory with hostWeights 'keep': the fp32 arena | ${rows.map((r) => fmt(r.params * 4)).join(' | ')} |`,
  '',
  `Taylor importance pass on the unpruned LLaMA-7B (bf16 weights, one layer's fp32 gradient at a time, 10 × 64 calibration tokens): ${fmt(importancePlan(full))}.`,
  '',
  ...(() => {
    const tasks = evaluationBatches();
    // keys and values of a position in one layer: bf16 now (the bf16 mode's cache), fp32 in the padded layout before
    const kvPerPosition = full.layers[0].nKvHead * full.headDim * 2 * 2, fp32PerPosition = 2 * kvPerPosition;
    // a batch computes up to EVAL_BATCH_TOKENS tokens; its cache holds its positions, shared prefixes included
    const rows = Math.max(EVAL_BATCH_TOKENS, ...tasks.map((t) => t.batchRows));
    const e = scoringPlan(full, EVAL_BATCH_TOKENS, rows);
    const head = `Evaluation of the unpruned LLaMA-7B (bf16 weights, batches of ${EVAL_BATCH_TOKENS.toLocaleString('en-US')} computed tokens): ${fmt(e.total)}, of which the keys and values are ${fmt(e.kv)} (${rows.toLocaleString('en-US')} positions, each once, one layer's).`;
    if (!tasks.length) return [head];
    return [
      head,
      '',
      '| task (zero-shot, Llama 2 tokenizer) | requests | tokens | computed (shared prefixes once) | largest batch (positions) | keys and values, packed (bf16) | a padded fp32 cache of every layer |',
      '|---|---|---|---|---|---|---|',
      ...tasks.map((t) => `| ${t.task} | ${t.requests.toLocaleString('en-US')} | ${t.tokens.toLocaleString('en-US')} | ${t.computed.toLocaleString('en-US')} (${((100 * t.computed) / t.tokens).toFixed(1)} %) | ${t.batchRows.toLocaleString('en-US')} | ${fmt(t.batchRows * kvPerPosition)} | ${fmt(t.padded * fp32PerPosition * full.layers.length)} (${t.padded.toLocaleString('en-US')} positions) |`),
      (() => {
        const all = tasks.reduce((s, t) => s + t.tokens, 0), comp = tasks.reduce((s, t) => s + t.computed, 0);
        return `| all | ${tasks.reduce((s, t) => s + t.requests, 0).toLocaleString('en-US')} | ${all.toLocaleString('en-US')} | ${comp.toLocaleString('en-US')} (${((100 * comp) / all).toFixed(1)} %) | | | |`;
      })(),
    ];
  })(),
];
process.stdout.write(lines.join('\n') + '\n');
