// workbench-page.ts — the end-to-end tests' workbench in Chromium: `tailor serve` on a temporary history and
// data folder, Debian's chromium (playwright-core) at 1024×700 in the light theme on the served page, and the
// page's errors collected (each test file asserts none after its tests).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type Server } from '../../electron/core/serve/server.js';
import { REPO_ROOT } from './paths.js';

export const CHROMIUM = process.env.TAILOR_CHROMIUM ?? '/usr/bin/chromium';
export const SHOTS = path.join(REPO_ROOT, 'out', 'e2e-screens');

export interface WorkbenchPage {
  server: Server;
  browser: Browser;
  page: Page;
  /** page errors and console errors, in order */
  problems: string[];
  close(): Promise<void>;
}

/** Serves the built renderer with the real engine on `dir`'s history.sqlite and data/, and opens it in Chromium. */
export async function openWorkbenchPage(dir: string): Promise<WorkbenchPage> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`the end-to-end tests need Chromium at ${CHROMIUM} (apt-get install chromium, or set TAILOR_CHROMIUM)`);
  if (!fs.existsSync(path.join(REPO_ROOT, 'dist', 'renderer', 'index.html'))) throw new Error('the renderer is not built (npm run build)');
  fs.mkdirSync(SHOTS, { recursive: true });
  const server = await startServer({ host: '127.0.0.1', port: 0, dbPath: path.join(dir, 'history.sqlite'), dataDir: path.join(dir, 'data'), staticDir: path.join(REPO_ROOT, 'dist', 'renderer') });
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 }, colorScheme: 'light' });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(m.text());
  });
  await page.goto(server.url);
  return {
    server, browser, page, problems,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/** The page's document as the conditions that run in it see it: they are functions (playwright calls them without
 * eval, which the page's CSP forbids), self-contained, and the tests compile without the DOM's types, hence a cast
 * of globalThis to this shape. */
export type PageDoc = { querySelector(s: string): { textContent: string | null } | null; querySelectorAll(s: string): { length: number } };

/** Waits until the run screen's status matches `expected`, and returns it. */
export async function runStatus(page: Page, expected: RegExp, timeout = 240_000): Promise<string> {
  await page.waitForFunction((re) => new RegExp(re).test((globalThis as unknown as { document: PageDoc }).document.querySelector('[data-testid=run-status]')?.textContent ?? ''), expected.source, { timeout, polling: 250 });
  return String(await page.getByTestId('run-status').textContent());
}

/** From the pruning step: the LoRA step's fields given (by their test ids' suffix: lora-epochs is `epochs`), the
 * evaluation's item limit, at the review step with the run named `name`. */
export async function wizardToReview(page: Page, name: string, lora: Record<string, string>, evalLimit: string): Promise<void> {
  const tid = (id: string) => page.getByTestId(id);
  await tid('wizard-next').click();
  await page.waitForSelector('[data-testid=wizard-body][data-step=lora]');
  for (const [field, value] of Object.entries(lora)) await tid(`lora-${field}`).fill(value);
  await tid('wizard-next').click();
  await page.waitForSelector('[data-testid=wizard-body][data-step=eval]');
  await tid('eval-limit').fill(evalLimit);
  await tid('wizard-next').click();
  await page.waitForSelector('[data-testid=wizard-body][data-step=review]');
  await tid('review-name').fill(name);
}

/** From any screen: the wizard, reset, with the bundled stories260K and story_cloze chosen, at the pruning step. */
export async function wizardToPruning(page: Page): Promise<void> {
  const tid = (id: string) => page.getByTestId(id);
  await tid('nav-wizard').click();
  await tid('wizard-reset').click();
  await page.locator('[data-testid=wizard-model-option][value$="stories260K"]').check();
  await tid('wizard-next').click();
  await tid('wizard-task-story_cloze').check();
  await tid('wizard-next').click();
  await page.waitForSelector('[data-testid=wizard-body][data-step=prompt]');
  await tid('wizard-next').click();
  await page.waitForSelector('[data-testid=wizard-body][data-step=prune]');
}
