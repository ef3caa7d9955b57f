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
