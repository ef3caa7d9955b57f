// The training core's backward pass against central finite differences in float64 (tailor_gradcheck,
// built with the addon): every op, then the whole model's loss gradient for LoRA parameters and for a
// sample of every base weight tensor — on stories260K, tiny-random-llama3 (untied, GQA, llama3 RoPE),
// and a pruned model with uneven layers (one without attention, one without MLP).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomModel } from '../electron/core/formats/model-tensors.js';
import { writeGguf } from '../electron/core/formats/gguf-write.js';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';

const BIN = path.join(REPO_ROOT, 'native', 'build', 'tailor_gradcheck');

function gradcheck(model: string, ...args: string[]): string {
  assert.ok(fs.existsSync(BIN), `${BIN} is built by npm run build`);
  const r = spawnSync(BIN, [model, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /all gradient checks passed/);
  // every op and every model-level check was run
  for (const k of ['rmsnorm_backward dx', 'matmul_backward dW', 'rope backward (interleaved)', 'rope backward (rotate-half)', 'attention_backward dk',
    'swiglu_backward dgate', 'crossentropy backward', 'LoRA parameter gradients', 'base weight gradients', 'float path vs float64: LoRA',
    'importance pass (one layer at a time)', 'pruning group importance (taylor)', 'pruning group importance (taylor-vector)', 'pruning group importance (magnitude)',
    'pruning group importance (wanda-sp)'])
    assert.ok(r.stdout.includes(k), `${k} checked`);
  return r.stdout;
}

test('stories260K: all op and model gradients match finite differences', () => {
  gradcheck(shared('models', 'stories260K', 'stories260K.bin'));
});

test('tiny-random-llama3 with LoRA dropout and activation checkpointing', () => {
  gradcheck(shared('fixtures', 'golden', 'tiny-random-llama3'), '--dropout', '0.2', '--checkpoint');
});

test('a pruned model with uneven per-layer shapes (GGUF deci)', () => {
  const dir = tempDir('tailor-grad-');
  const p = path.join(dir, 'pruned.gguf');
  const layers = [{ nHead: 4, nKvHead: 2, ffn: 40 }, { nHead: 0, nKvHead: 0, ffn: 24 }, { nHead: 2, nKvHead: 1, ffn: 0 }];
  writeGguf(p, randomModel({ dim: 32, nLayers: 3, layers, nHead: 4, nKvHead: 2, ffn: 40, headDim: 8, vocabSize: 64, tied: false, seed: 3 }));
  gradcheck(p, '--dropout', '0.1');
});
