// app.svelte.ts — application-wide state: the back end's info, the model and task lists, the current
// screen (route), toasts, the theme and the event-stream connection. One instance, `app`.
import type { AppInfo, ModelEntry, PickRequest, TaskEntry, WireError } from '../../../electron/core/api/contract';
import { api, toWire } from '../lib/api';

export type Route =
  | { screen: 'models' }
  | { screen: 'wizard' }
  | { screen: 'run'; runId: string }
  | { screen: 'history' }
  | { screen: 'compare'; runIds: string[] }
  | { screen: 'playground' }
  | { screen: 'export' };

export type Theme = 'system' | 'light' | 'dark';

export interface Toast { id: number; kind: 'error' | 'info' | 'success'; text: string; code?: string }

const THEME_KEY = 'tailor.theme';

function loadTheme(): Theme {
  try {
    const t = localStorage.getItem(THEME_KEY);
    return t === 'light' || t === 'dark' ? t : 'system';
  } catch {
    return 'system';
  }
}

export class AppState {
  info = $state<AppInfo | null>(null);
  infoError = $state<WireError | null>(null);
  models = $state<ModelEntry[]>([]);
  modelsError = $state<WireError | null>(null);
  modelsLoading = $state(false);
  tasks = $state<TaskEntry[]>([]);
  tasksError = $state<WireError | null>(null);
  route = $state<Route>({ screen: 'models' });
  toasts = $state<Toast[]>([]);
  theme = $state<Theme>(loadTheme());
  connected = $state(true);
  /** bumps every time the event stream comes back after a drop (screens refetch on change) */
  reconnects = $state(0);
  /** why nothing can work (no token, or the token was refused), else null */
  problem = $state<string | null>(api.problem);
  private nextToast = 1;

  canPickFiles = $derived(this.info?.canPickFiles ?? false);

  constructor() {
    let wasDown = false;
    api.onConnection((up) => {
      this.connected = up;
      if (!up) wasDown = true;
      else if (wasDown) {
        wasDown = false;
        this.reconnects++;
      }
    });
    api.onAuthFailure((message) => {
      this.problem = `The server refused the access token: ${message}`;
    });
    this.applyTheme();
  }

  async init() {
    if (this.problem) return;
    await Promise.all([this.loadInfo(), this.refreshModels(), this.loadTasks()]);
  }

  async loadInfo() {
    try {
      this.info = await api.invoke('app.info', {});
      this.infoError = null;
    } catch (e) {
      this.infoError = toWire(e);
    }
  }

  async refreshModels() {
    this.modelsLoading = true;
    try {
      this.models = await api.invoke('models.list', {});
      this.modelsError = null;
    } catch (e) {
      this.modelsError = toWire(e);
    } finally {
      this.modelsLoading = false;
    }
  }

  async loadTasks() {
    try {
      this.tasks = await api.invoke('tasks.list', {});
      this.tasksError = null;
    } catch (e) {
      this.tasksError = toWire(e);
    }
  }

  modelByPath(path: string): ModelEntry | undefined {
    return this.models.find((m) => m.path === path || m.id === path);
  }

  navigate(route: Route) {
    this.route = route;
  }

  toast(text: string, kind: Toast['kind'] = 'info', code?: string) {
    const id = this.nextToast++;
    this.toasts.push({ id, kind, text, code });
    setTimeout(() => this.dismiss(id), kind === 'error' ? 10_000 : 4_000);
  }

  /** shows any failure as an error toast (for calls without a natural place to show it inline) */
  fail(e: unknown, what?: string) {
    const w = toWire(e);
    this.toast(what ? `${what}: ${w.message}` : w.message, 'error', w.code);
  }

  dismiss(id: number) {
    this.toasts = this.toasts.filter((t) => t.id !== id);
  }

  setTheme(t: Theme) {
    this.theme = t;
    try { localStorage.setItem(THEME_KEY, t); } catch { /* not persisted */ }
    this.applyTheme();
  }

  cycleTheme() {
    this.setTheme(this.theme === 'system' ? 'light' : this.theme === 'light' ? 'dark' : 'system');
  }

  private applyTheme() {
    if (typeof document === 'undefined') return;
    if (this.theme === 'system') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = this.theme;
  }

  /** a native dialog (Electron only); null when cancelled or unavailable */
  async pick(req: PickRequest): Promise<string | null> {
    try {
      return (await api.invoke('dialog.pick', req)).path;
    } catch (e) {
      this.fail(e, 'File dialog');
      return null;
    }
  }

  async showItem(path: string) {
    try {
      const r = await api.invoke('shell.showItem', { path });
      if (!r.shown) this.toast(`Cannot show it here; the path is ${path}`, 'info');
    } catch (e) {
      this.fail(e, 'Show in folder');
    }
  }
}

export const app = new AppState();
