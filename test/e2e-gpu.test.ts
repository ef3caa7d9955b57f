// The workbench's GPU screens end to end in real Chromium, with the CUDA emulator as the GPU: `tailor serve`
// loads tailor_emu.node (TAILOR_ADDON, in this test process only), so the parts of the app that only a
// machine with a usable device shows run here too: the navigation naming the device, the Models screen's
// bf16 KV cache, the review step offering CUDA and bf16 weights, and a run computed on the device whose
// report says where it ran and each stage's GPU peak. Skipped, visibly, where the emulator addon is not
// built. It says nothing of a real GPU's speed (test/cuda.test.ts and `npm run test:gpu` do, on one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { REPO_ROOT, shared, tempDir } from './helpers/paths.js';
// (types only: erased, so the helper module is first loaded below, once TAILOR_ADDON is set)
import type { PageDoc } from './helpers/workbench-page.js';

const EMU = path.join(REPO_ROOT, 'native', 'build', 'Release', 'tailor_emu.node');
const built = fs.existsSync(EMU);
const skip = built ? false : `the emulator addon is not built (${EMU})`;
if (built) process.env.TAILOR_ADDON = EMU;
// imported after TAILOR_ADDON is set: the server's engine loads the addon it names
const { SHOTS, openWorkbenchPage, runStatus, wizardToPruning, wizardToReview } = await import('./helpers/workbench-page.js');
const { randomModel } = await import('../electron/core/formats/model-tensors.js');
const { writeHfFolder } = await import('../electron/core/formats/safetensors-write.js');

const dir = tempDir('tailor-e2e-gpu-');
let wb: Awaited<ReturnType<typeof openWorkbenchPage>> | undefined;
let page: Page;

before(async () => {
  if (!built) return;
  wb = await openWorkbenchPage(dir);
  page = wb.page;
});

after(async () => {
  await wb?.close();
  assert.deepEqual(wb?.problems ?? [], [], 'no errors in the page');
});

const tid = (id: string) => page.getByTestId(id);
const text = async (id: string) => String(await tid(id).first().textContent()).replace(/\s+/g, ' ').trim();

test('with a usable device: the navigation names it, and the Models screen gives a head-dim-16 model\'s KV cache in bf16 beside fp32', { skip }, async () => {
  assert.match(await text('engine-cuda'), /^CUDA Tailor CUDA emulator \(CPU\)$/);
  assert.match(String(await tid('engine-cuda').getAttribute('title')), /sm 8\.0.*cuBLASLt/);
  // stories260K (head dim 8): no tensor-core attention for it, so no bf16 line
  await tid('model-item').first().waitFor();
  assert.equal(await text('model-kv'), '640.0 KiB fp32, 1.3 KiB a token');
  // a model with head dim 16: 2 layers × 2 KV heads × 16 × (keys, values) × 4 bytes = 512 a token, half in bf16
  const hd16 = path.join(dir, 'hd16');
  writeHfFolder(hd16, randomModel({ dim: 64, nLayers: 2, nHead: 4, nKvHead: 2, headDim: 16, ffn: 128, vocabSize: 512, contextLength: 1024, tied: false, seed: 21 }));
  fs.copyFileSync(shared('models', 'stories260K-hf', 'tokenizer.model'), path.join(hd16, 'tokenizer.model'));
  await tid('models-add-path').fill(hd16);
  await tid('models-add').click();
  await page.waitForFunction(() => (globalThis as unknown as { document: PageDoc }).document.querySelectorAll('[data-testid=model-item]').length === 2, undefined, { polling: 100 });
  await page.waitForFunction(() => /in bf16/.test((globalThis as unknown as { document: PageDoc }).document.querySelector('[data-testid=model-kv]')?.textContent ?? ''), undefined, { polling: 100 });
  assert.equal(await text('model-kv'), '512.0 KiB fp32, 512 B a token bf16 weights on this GPU: 256.0 KiB in bf16, 256 B a token');
  await page.screenshot({ path: path.join(SHOTS, 'gpu-01-models.png') });
});

test('a run on CUDA with bf16 weights from the wizard: the review offers the device, the run computes there, and its report says so with each stage\'s GPU peak', { skip }, async () => {
  await wizardToPruning(page);
  // one ratio (the default two, less the second); everything small, as the emulator computes slowly
  await page.getByRole('button', { name: 'Remove ratio 0.5' }).click();
  assert.equal(await tid('prune-ratio-chip').count(), 1);
  await tid('prune-calib-samples').fill('2');
  await tid('prune-calib-seqlen').fill('32');
  await wizardToReview(page, 'on the device', { epochs: '1', trainshots: '2', batch: '2', maxlen: '48' }, '2');
  // a usable device: 'auto' says it will be CUDA, CUDA is offered and no reason is shown, bf16 weights can be chosen
  assert.match(await tid('review-backend').locator('option[value=auto]').innerText(), /CUDA here/);
  assert.equal(await tid('review-backend').locator('option[value=cuda]').isDisabled(), false);
  assert.equal(await tid('review-cuda-reason').count(), 0);
  await tid('review-backend').selectOption('cuda');
  assert.equal(await tid('review-weights').isDisabled(), false);
  await tid('review-weights').selectOption('bf16');
  assert.match(await tid('review-summary').innerText(), /Backend\s+CUDA[\s\S]*Weights on the GPU\s+bf16/);
  await tid('review-valid').waitFor({ timeout: 30_000 });
  await page.screenshot({ path: path.join(SHOTS, 'gpu-02-review.png') });
  await tid('wizard-start').click();
  await tid('run-screen').waitFor();
  const runId = String(await tid('run-screen').getAttribute('data-run-id'));
  assert.match(await runStatus(page, /done|failed|cancelled/, 300_000), /done/, 'the run finished');
  assert.match(await text('run-compute'), /^Computed on cuda \(device 0, Tailor CUDA emulator \(CPU\), sm_80, bf16 weights/);
  // where the time and the GPU memory went: a GPU peak for every stage
  await page.locator('details.times summary').click();
  assert.equal(await page.locator('details.times summary').innerText(), 'Time and GPU memory per stage');
  const peaks = await page.locator('details.times tbody tr td:nth-child(3)').allInnerTexts();
  assert.ok(peaks.length >= 3 && peaks.every((p) => /^\d+(\.\d)? (B|KiB|MiB)$/.test(p)), `a GPU peak per stage: ${peaks.join(', ')}`);
  // the history holds the same: the run's spec asked for CUDA and bf16, its report names the device
  const run = wb!.server.workbench.history.getRun(runId);
  assert.deepEqual((run.spec as { compute?: unknown }).compute, { backend: 'cuda', weights: 'bf16' });
  await page.screenshot({ path: path.join(SHOTS, 'gpu-03-run-done.png'), fullPage: true });
});
