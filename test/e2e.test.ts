// The workbench end to end in real Chromium (Debian's, driven by playwright-core) against `tailor serve`
// with the real engine and a temporary history: refused inputs leave the database clean; the whole wizard
// on stories260K with a small task and two ratios, live progress, the recovery table, the run in History,
// compared with a second run; the Playground and a GGUF export; cancel and resume. Screenshots of each
// screen, light and dark at 1024×700, go to out/e2e-screens/ (no screen may be wider than the window).
import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import type { Server } from '../electron/core/serve/server.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';
import { SHOTS, openWorkbenchPage, runStatus, wizardToPruning, wizardToReview, type PageDoc, type WorkbenchPage } from './helpers/workbench-page.js';

const dir = tempDir('tailor-e2e-');
let wb: WorkbenchPage | undefined;
let server: Server;
let page: Page;

before(async () => {
  wb = await openWorkbenchPage(dir);
  ({ server, page } = wb);
});

// a test that fails mid-run must not leave its run going into the next test (which would see E_BUSY)
afterEach(async () => {
  if (!server) return;
  for (const r of server.workbench.history.listRuns({ status: 'running' })) server.workbench.runs.cancel(r.id);
  await server.workbench.runs.idle();
});

after(async () => {
  await wb?.close();
  assert.deepEqual(wb?.problems ?? [], [], 'no errors in the page');
});

/** Screenshots a screen in the light and the dark theme, checking that nothing overflows the 1024-px width. */
async function shot(name: string, fullPage = false): Promise<void> {
  const overflow = await page.evaluate(() => {
    const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document.documentElement;
    return d.scrollWidth - d.clientWidth;
  });
  assert.ok(overflow <= 0, `${name}: the page is ${overflow} px wider than the window`);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: path.join(SHOTS, `${name}-dark.png`), fullPage });
  await page.emulateMedia({ colorScheme: 'light' });
}
const tid = (id: string) => page.getByTestId(id);
const runIdOfScreen = async () => String(await tid('run-screen').getAttribute('data-run-id'));

async function wizardFinish(name: string, lora: { epochs: string; trainshots: string; rank?: string }): Promise<string> {
  await wizardToReview(page, name, lora, '40');
  // where it computes: auto by default; CUDA offered only with a usable device, else its reason is shown
  assert.equal(await tid('review-backend').inputValue(), 'auto');
  const cudaOption = tid('review-backend').locator('option[value=cuda]');
  if (await cudaOption.isDisabled()) {
    assert.match(await tid('review-cuda-reason').innerText(), /^CUDA: /);
    assert.ok(await tid('review-weights').isDisabled(), 'bf16 GPU weights are not offered without a device');
  }
  assert.match(await tid('review-summary').innerText(), /Compute[\s\S]*Backend[\s\S]*auto/);
  await tid('review-valid').waitFor({ timeout: 30_000 });
  await tid('wizard-start').click();
  await tid('run-screen').waitFor();
  return runIdOfScreen();
}

test('refused inputs: a malformed task file and an impossible ratio show clear messages, and the database stays clean; the keyboard reaches the navigation', async () => {
  await tid('model-item').first().waitFor();
  await shot('01-models');
  // the bundled model's KV cache: 5 layers × 4 KV heads × head dim 8, keys and values in fp32 (no GPU here)
  assert.equal(String(await tid('model-kv').textContent()).replace(/\s+/g, ' ').trim(), '640.0 KiB fp32, 1.3 KiB a token');
  const bad = path.join(dir, 'broken.csv');
  fs.writeFileSync(bad, 'review,label\n"great film,positive\nbad,negative\n');
  await tid('nav-wizard').click();
  await tid('wizard-reset').click();
  await tid('wizard-model-option').first().check();
  await tid('wizard-next').click();
  await tid('custom-file').fill(bad);
  await tid('custom-preview').click();
  await tid('custom-preview-error').waitFor();
  assert.match(String(await tid('custom-preview-error').textContent()), /broken\.csv.*(unterminated|quote)/is);
  await shot('02-wizard-bad-task-file');
  await tid('wizard-task-story_cloze').check();
  await tid('wizard-next').click();
  await tid('wizard-next').click();
  await page.waitForSelector('[data-testid=wizard-body][data-step=prune]');
  await tid('prune-ratio-input').fill('1.2');
  await tid('prune-ratio-error').waitFor();
  assert.match(String(await tid('prune-ratio-error').textContent()), /ratio/i);
  await shot('03-wizard-impossible-ratio');
  await tid('prune-mode-target').check();
  await tid('prune-target-input').fill('999999999');
  await tid('prune-target-error').waitFor();
  assert.equal(await tid('prune-target-add').isDisabled(), true, 'an impossible target cannot be added');
  assert.match(String(await tid('prune-target-error').textContent()), /not smaller|larger|260,032/i);
  const runs = server.workbench.history.listRuns();
  assert.equal(runs.length, 0, 'nothing was recorded');
  // the keyboard alone reaches the navigation and opens a screen
  await page.locator('body').focus();
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { getAttribute(a: string): string | null } | null } }).document.activeElement?.getAttribute('data-testid') === 'nav-history');
  }
  assert.ok(reached, 'Tab reaches the Runs entry of the navigation');
  await page.keyboard.press('Enter');
  await tid('history-table').or(page.getByText(/no runs/i)).first().waitFor();
  assert.equal(fs.existsSync(path.join(dir, 'data', 'runs')), false, 'nothing was written');
});

test('the whole wizard with two ratios: live progress, the recovery table, History, compare with a second run', async () => {
  await page.reload();
  await wizardToPruning(page);
  assert.deepEqual(await tid('prune-ratio-chip').allTextContents().then((t) => t.map((s) => s.replace(/[^\d.]/g, ''))), ['0.2', '0.5']);
  assert.match(String(await tid('prune-plan-params').textContent()), /211,072/);
  // kept MLP channels in multiples of 8: the live plan keeps 144 a layer instead of 137, and back
  await tid('prune-round-to').selectOption('8');
  await page.waitForFunction(() => /217,792/.test((globalThis as unknown as { document: PageDoc }).document.querySelector('[data-testid=prune-plan-params]')?.textContent ?? ''));
  await tid('prune-round-to').selectOption('1');
  await page.waitForFunction(() => /211,072/.test((globalThis as unknown as { document: PageDoc }).document.querySelector('[data-testid=prune-plan-params]')?.textContent ?? ''));
  await shot('04-wizard-pruning');
  const runId = await wizardFinish('e2e first', { epochs: '1', trainshots: '60' });
  await page.waitForSelector('[data-testid=run-stage][data-status=running]', { timeout: 60_000 });
  await shot('05-run-live');
  assert.match(await runStatus(page, /done/), /done/);
  const rows = tid('run-recovery-row');
  assert.equal(await rows.count(), 2);
  assert.match(String(await rows.first().textContent()), /story_cloze/);
  await tid('run-heatmap').first().waitFor();
  // where it computed: this machine has no GPU, so 'auto' ran on the CPU
  assert.match(String(await tid('run-compute').textContent()), /^Computed on cpu \(/);
  await shot('06-run-done', true);
  // the run in the history, with the same numbers the database holds
  const rec = server.workbench.history.getRun(runId).results.filter((r) => r.phase === 'recovery');
  assert.equal(rec.length, 2);
  await tid('nav-history').click();
  await page.locator(`[data-testid=history-row][data-run-id="${runId}"]`).waitFor();
  await shot('07-history');
  // a second run with a change (re-run with a smaller LoRA rank), then compare the two
  await page.locator(`[data-testid=history-row][data-run-id="${runId}"] [data-testid=history-rerun]`).click();
  await page.waitForSelector('[data-testid=wizard]');
  for (let i = 0; i < 4; i++) {
    if (await page.locator('[data-testid=wizard-body][data-step=lora]').count()) break;
    await tid('wizard-next').click();
  }
  await page.locator('[data-testid=wizard-body]').waitFor();
  await tid('wizard-step-prune').click().catch(() => undefined);
  await page.waitForSelector('[data-testid=wizard-body][data-step=prune]');
  const second = await wizardFinish('e2e second', { epochs: '1', trainshots: '60', rank: '4' });
  assert.notEqual(second, runId);
  await runStatus(page, /done/);
  await tid('nav-history').click();
  for (const id of [runId, second]) await page.locator(`[data-testid=history-row][data-run-id="${id}"] [data-testid=history-select]`).check();
  await tid('history-compare').click();
  await tid('compare-settings').waitFor();
  assert.match(String(await tid('compare-settings').textContent()), /lora\.rank/);
  assert.match(String(await tid('compare-metrics').textContent()), /story_cloze/);
  await shot('08-compare');
});

test('the Playground streams a generation; Export writes a GGUF and refuses to overwrite it', async () => {
  await tid('nav-playground').click();
  await tid('playground-prompt').fill('Once upon a time');
  await tid('playground-max-tokens').fill('40');
  await tid('playground-generate').click();
  await page.waitForFunction(() => ((globalThis as unknown as { document: PageDoc }).document.querySelector('[data-testid=playground-output-a]')?.textContent ?? '').trim().length > 20, undefined, { timeout: 30_000 });
  await tid('playground-stats-a').waitFor();
  await shot('09-playground');
  await tid('nav-export').click();
  const out = path.join(dir, 'exported.gguf');
  await tid('export-format').selectOption('gguf');
  await tid('export-out').fill(out);
  await tid('export-start').click();
  await tid('export-done').waitFor({ timeout: 60_000 });
  assert.ok(fs.statSync(out).size > 100_000);
  assert.match(String(await tid('export-paths').textContent()), /exported\.gguf/);
  await shot('10-export');
  // again without "replace": a clear refusal, the file untouched
  const before = fs.statSync(out).mtimeMs;
  await tid('export-start').click();
  await tid('export-error').waitFor();
  assert.match(String(await tid('export-error').textContent()), /exists/);
  assert.equal(fs.statSync(out).mtimeMs, before);
});

test('cancel a running tailoring run, then resume it to the end', async () => {
  await wizardToPruning(page);
  await page.getByRole('button', { name: 'Remove ratio 0.5' }).click();
  const runId = await wizardFinish('e2e cancel', { epochs: '6', trainshots: '200' });
  await page.waitForSelector('[data-stage="lora ratio=0.2"][data-status=running]', { timeout: 60_000 });
  await page.waitForTimeout(1500);
  await tid('run-loss-chart').waitFor();
  await tid('run-cancel').click();
  await tid('run-resume').waitFor({ timeout: 5_000 });
  assert.match(await runStatus(page, /cancelled/, 5_000), /cancelled/);
  assert.equal(server.workbench.history.getRun(runId).status, 'cancelled');
  await shot('11-run-cancelled');
  await tid('run-resume').click();
  await page.waitForSelector('[data-stage="baseline"][data-status=done]');
  assert.match(await runStatus(page, /done/), /done/);
  assert.equal(server.workbench.history.getRun(runId).status, 'done');
  await shot('12-run-resumed-done');
});

test('a draft with a round-to of its own (64, from a CLI spec) opens at the pruning step with that choice and its plan', async () => {
  const model = path.join(REPO_ROOT, 'resources', 'models', 'stories260K');
  await server.workbench.invoke('drafts.save', { spec: { name: 'round-to draft', model, tasks: ['story_cloze'], prune: { method: 'taylor', ratios: [0.2], targets: [], layers: null, calibText: null, calibSamples: 10, calibSeqLen: 64, global: false, roundTo: 64 } }, step: 3 });
  await page.reload();
  await tid('nav-wizard').click();
  await page.waitForSelector('[data-testid=wizard-body][data-step=prune]');
  assert.equal(await tid('prune-round-to').inputValue(), '64');
  assert.equal((await tid('prune-round-to').locator('option:checked').innerText()).trim(), 'multiples of 64');
  // 137 channels a layer at ratio 0.2, rounded up past the layer's 172: its largest multiple of 64, 128
  await page.waitForFunction(() => /202,432/.test((globalThis as unknown as { document: PageDoc }).document.querySelector('[data-testid=prune-plan-params]')?.textContent ?? ''));
  await tid('wizard-reset').click();
});
