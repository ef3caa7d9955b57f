// main.ts — the Electron main process: one window, one instance, the application menu, and the
// workbench back end (the same electron/core services the CLI and `tailor serve` use) answering the
// renderer over the typed contract. Heavy work runs on the engine's own threads, so this process stays
// responsive. Locked down: context isolation, sandbox, no Node in the renderer, navigation and new
// windows refused, permissions denied, file access only through dialogs the user answers.
import { app, BrowserWindow, dialog, ipcMain, Menu, session, shell, type MenuItemConstructorOptions } from 'electron';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventName, Events } from '../core/api/contract.js';
import { defaultDbPath } from '../core/history/db.js';
import { defaultDataDir, Workbench } from '../core/service/workbench.js';
import { EVENT_CHANNEL, handleInvoke, INVOKE_CHANNEL, trustedPage } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');
const indexHtml = path.join(root, 'dist', 'renderer', 'index.html');
const preload = path.join(root, 'dist', 'electron', 'preload', 'preload.cjs');
const page = trustedPage(indexHtml);
// better-sqlite3 as built for Electron's ABI (node_modules holds the Node build the CLI and tests use)
const electronSqlite = [path.join(process.resourcesPath ?? '', 'app.asar.unpacked', 'native', 'build', 'electron', 'better_sqlite3.node'),
  path.join(root, 'native', 'build', 'electron', 'better_sqlite3.node')].find((p) => fs.existsSync(p));
if (electronSqlite) process.env.TAILOR_SQLITE_BINDING = electronSqlite;

let win: BrowserWindow | null = null;
let workbench: Workbench | null = null;

function emit<E extends EventName>(event: E, payload: Events[E]): void {
  if (win && !win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, event, payload);
}

function createWindow(): BrowserWindow {
  const w = new BrowserWindow({
    width: 1280, height: 820, minWidth: 1024, minHeight: 700, show: false, title: 'Tailor',
    icon: path.join(root, 'build', 'icon.png'),
    webPreferences: { preload, contextIsolation: true, sandbox: true, nodeIntegration: false, webSecurity: true, spellcheck: false },
  });
  w.webContents.on('will-navigate', (e, url) => {
    if (url.split('#')[0] !== page) e.preventDefault();
  });
  w.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
  w.once('ready-to-show', () => w.show());
  void w.loadFile(indexHtml);
  return w;
}

function menu(): void {
  const template: MenuItemConstructorOptions[] = [
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    { label: 'File', submenu: [{ role: process.platform === 'darwin' ? 'close' : 'quit' }] },
    { role: 'editMenu' },
    { label: 'View', submenu: [{ role: 'reload' }, { role: 'toggleDevTools' }, { type: 'separator' }, { role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }, { type: 'separator' }, { role: 'togglefullscreen' }] },
    { role: 'windowMenu' },
    { role: 'help', submenu: [{ label: 'About Tailor', click: () => void dialog.showMessageBox({ message: `Tailor ${app.getVersion()}`, detail: 'Prune, tune and evaluate LLaMA models on your own machine, offline.' }) }] },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

async function start(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });
  await app.whenReady();
  session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
  session.defaultSession.webRequest.onBeforeRequest((details, cb) => cb({ cancel: !/^(file|devtools):/.test(details.url) }));
  const dbPath = defaultDbPath();
  workbench = await Workbench.open({
    dbPath, dataDir: defaultDataDir(dbPath), mode: 'electron', emit,
    desktop: {
      pick: async (r) => {
        const props: Array<'openFile' | 'openDirectory'> = r.kind === 'folder' ? ['openDirectory'] : ['openFile'];
        if (r.kind === 'save') {
          const s = win ? await dialog.showSaveDialog(win, { title: r.title, filters: r.filters }) : await dialog.showSaveDialog({ title: r.title, filters: r.filters });
          return s.canceled || !s.filePath ? null : s.filePath;
        }
        const o = win ? await dialog.showOpenDialog(win, { title: r.title, properties: props, filters: r.filters }) : await dialog.showOpenDialog({ title: r.title, properties: props, filters: r.filters });
        return o.canceled || o.filePaths.length === 0 ? null : o.filePaths[0];
      },
      showItem: async (p) => {
        shell.showItemInFolder(p);
        return true;
      },
    },
  });
  ipcMain.handle(INVOKE_CHANNEL, (e, channel: unknown, payload: unknown) =>
    handleInvoke(workbench!, { url: e.senderFrame?.url ?? '', isMainFrame: e.senderFrame === e.sender.mainFrame }, page, channel, payload));
  menu();
  win = createWindow();
  win.on('closed', () => {
    win = null;
  });
  app.on('activate', () => {
    if (!win) win = createWindow();
  });
}

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});
let quitting = false;
app.on('before-quit', (e) => {
  if (quitting || !workbench) return;
  e.preventDefault();
  quitting = true;
  void workbench.shutdown().finally(() => app.quit());
});

void start().catch((e: unknown) => {
  dialog.showErrorBox('Tailor could not start', (e as Error).message);
  app.exit(1);
});
