// db.ts — the local history of runs (CLI and app alike): one SQLite file in the user's data folder,
// WAL journal, STRICT tables, numbered migrations applied in one transaction with PRAGMA user_version;
// a database written by a newer Tailor is refused rather than guessed at. Runs left 'running' by a
// process that no longer exists are marked 'interrupted' when the history is opened.
import Database from 'better-sqlite3';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LATEST_VERSION, MIGRATIONS } from './migrations.js';

export class HistoryError extends Error {
  readonly code: 'E_DB_NEWER' | 'E_DB' | 'E_NOT_FOUND';
  constructor(code: HistoryError['code'], message: string) {
    super(message);
    this.name = 'HistoryError';
    this.code = code;
  }
}

export type RunStatus = 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';
export type StageStatus = 'pending' | 'running' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface RunRow {
  id: string; name: string; kind: string; status: RunStatus; source: 'cli' | 'app' | 'serve';
  spec: unknown; machine: unknown; versions: unknown; pid: number | null; error: string | null;
  created_at: number; updated_at: number;
}
export interface StageRow { ordinal: number; name: string; status: StageStatus; progress: number; detail: unknown; started_at: number | null; finished_at: number | null }
export interface ResultRow { task: string; setting: string; phase: string; metric: string; value: number }
export interface ArtifactRow { kind: string; path: string; sha256: string | null; bytes: number; created_at: number }
export interface ModelRow { id: string; path: string; name: string; bundled: boolean; info: unknown; added_at: number }
export interface RunDetail extends RunRow { stages: StageRow[]; results: ResultRow[]; artifacts: ArtifactRow[]; metricNames: string[] }

/** The user's data folder for Tailor (XDG on Linux, Application Support on macOS, APPDATA on Windows). */
export function defaultDbPath(): string {
  if (process.env.TAILOR_DB) return process.env.TAILOR_DB;
  const home = os.homedir();
  const base = process.platform === 'darwin' ? path.join(home, 'Library', 'Application Support', 'Tailor')
    : process.platform === 'win32' ? path.join(process.env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Tailor')
    : path.join(process.env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'tailor');
  return path.join(base, 'history.sqlite');
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function machineInfo(): Record<string, unknown> {
  return { host: os.hostname(), platform: `${process.platform}-${process.arch}`, cpus: os.cpus().length, cpu: os.cpus()[0]?.model ?? '', memoryBytes: os.totalmem() };
}

export class History {
  readonly db: Database.Database;
  private constructor(db: Database.Database, readonly file: string) {
    this.db = db;
  }

  /** Opens (creating if needed) and migrates the history; throws E_DB_NEWER for a newer schema. */
  static open(file = defaultDbPath(), opts: { upTo?: number } = {}): History {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    let db: Database.Database;
    try {
      // the Electron main process brings better-sqlite3 built for Electron's ABI (build/electron-sqlite.mjs)
      const nativeBinding = process.env.TAILOR_SQLITE_BINDING;
      db = nativeBinding ? new Database(file, { nativeBinding }) : new Database(file);
    } catch (e) {
      throw new HistoryError('E_DB', `cannot open the run history ${file}: ${(e as Error).message}`);
    }
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > LATEST_VERSION)
        throw new HistoryError('E_DB_NEWER', `${file} was written by a newer Tailor (schema ${version}; this version knows up to ${LATEST_VERSION}). Update Tailor, or use another --db.`);
      db.pragma('journal_mode = WAL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      const target = opts.upTo ?? LATEST_VERSION;
      const pending = MIGRATIONS.filter((m) => m.version > version && m.version <= target);
      if (pending.length) {
        db.transaction(() => {
          for (const m of pending) db.exec(m.sql);
          db.pragma(`user_version = ${pending[pending.length - 1].version}`);
        })();
      }
      const h = new History(db, file);
      h.markInterrupted();
      return h;
    } catch (e) {
      db.close();
      throw e;
    }
  }

  close(): void {
    this.db.close();
  }

  get version(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  /** Runs whose process died without finishing them become 'interrupted' (stages too). */
  markInterrupted(): number {
    const stale = (this.db.prepare(`SELECT id, pid FROM runs WHERE status = 'running'`).all() as Array<{ id: string; pid: number | null }>)
      .filter((r) => r.pid === null || (r.pid !== process.pid && !pidAlive(r.pid)));
    const now = Date.now();
    this.db.transaction(() => {
      for (const r of stale) {
        this.db.prepare(`UPDATE runs SET status = 'interrupted', updated_at = ? WHERE id = ?`).run(now, r.id);
        this.db.prepare(`UPDATE stages SET status = 'interrupted' WHERE run_id = ? AND status = 'running'`).run(r.id);
      }
    })();
    return stale.length;
  }

  createRun(r: { name: string; kind: string; source: RunRow['source']; spec: unknown; versions: unknown; id?: string }): string {
    const id = r.id ?? `${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${crypto.randomBytes(3).toString('hex')}`;
    const now = Date.now();
    this.db.prepare(`INSERT INTO runs (id, name, kind, status, source, spec, machine, versions, pid, created_at, updated_at) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)`)
      .run(id, r.name, r.kind, r.source, JSON.stringify(r.spec), JSON.stringify(machineInfo()), JSON.stringify(r.versions), process.pid, now, now);
    return id;
  }

  /** Takes over a run (e.g. to resume it) in this process. */
  claimRun(id: string): void {
    const n = this.db.prepare(`UPDATE runs SET status = 'running', pid = ?, error = NULL, updated_at = ? WHERE id = ?`).run(process.pid, Date.now(), id).changes;
    if (!n) throw new HistoryError('E_NOT_FOUND', `no run ${id}`);
  }

  finishRun(id: string, status: Exclude<RunStatus, 'running'>, error?: string): void {
    this.db.prepare(`UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE id = ?`).run(status, error ?? null, Date.now(), id);
  }

  setStage(id: string, ordinal: number, name: string, status: StageStatus, progress = status === 'done' ? 1 : 0, detail?: unknown): void {
    const now = Date.now();
    this.db.prepare(`INSERT INTO stages (run_id, ordinal, name, status, progress, detail, started_at, finished_at)
      VALUES (@id, @ordinal, @name, @status, @progress, @detail, @started, @finished)
      ON CONFLICT (run_id, ordinal) DO UPDATE SET status = @status, progress = @progress, detail = COALESCE(@detail, detail),
        started_at = COALESCE(started_at, @started),
        finished_at = CASE WHEN stages.status = 'done' AND @status = 'done' THEN stages.finished_at ELSE @finished END`)
      .run({ id, ordinal, name, status, progress, detail: detail === undefined ? null : JSON.stringify(detail),
        started: status === 'pending' ? null : now, finished: ['done', 'failed', 'cancelled'].includes(status) ? now : null });
    this.db.prepare(`UPDATE runs SET updated_at = ? WHERE id = ?`).run(now, id);
  }

  addMetrics(id: string, stage: string, name: string, points: Array<{ step: number; value: number }>): void {
    const st = this.db.prepare(`INSERT INTO metrics (run_id, stage, name, step, value, recorded_at) VALUES (?, ?, ?, ?, ?, ?)`);
    const now = Date.now();
    this.db.transaction(() => { for (const p of points) st.run(id, stage, name, p.step, p.value, now); })();
  }

  metrics(id: string, name: string): Array<{ stage: string; step: number; value: number }> {
    return this.db.prepare(`SELECT stage, step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY stage, step`).all(id, name) as Array<{ stage: string; step: number; value: number }>;
  }

  setResult(id: string, r: ResultRow): void {
    this.db.prepare(`INSERT INTO results (run_id, task, setting, phase, metric, value) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_id, task, setting, phase, metric) DO UPDATE SET value = excluded.value`).run(id, r.task, r.setting, r.phase, r.metric, r.value);
  }

  /** Records a file or folder the run produced, with its size and (for files) SHA-256. */
  addArtifact(id: string, kind: string, p: string): ArtifactRow {
    const abs = path.resolve(p);
    const st = fs.statSync(abs);
    let bytes = st.size, sha: string | null = null;
    if (st.isDirectory()) {
      // every file below the folder (an export holds adapter/ and base/), by relative path in sorted order
      bytes = 0;
      const h = crypto.createHash('sha256');
      const walk = (rel: string): void => {
        for (const f of fs.readdirSync(path.join(abs, rel)).sort()) {
          const r = rel ? `${rel}/${f}` : f;
          const s = fs.statSync(path.join(abs, r));
          if (s.isDirectory()) walk(r);
          if (!s.isFile()) continue;
          const b = fs.readFileSync(path.join(abs, r));
          bytes += b.length;
          h.update(r).update(crypto.createHash('sha256').update(b).digest());
        }
      };
      walk('');
      sha = h.digest('hex');
    } else {
      sha = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    }
    const row: ArtifactRow = { kind, path: abs, sha256: sha, bytes, created_at: Date.now() };
    this.db.prepare(`INSERT INTO artifacts (run_id, kind, path, sha256, bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_id, path) DO UPDATE SET sha256 = excluded.sha256, bytes = excluded.bytes`).run(id, kind, abs, sha, bytes, row.created_at);
    return row;
  }

  private parse(r: Record<string, unknown>): RunRow {
    return { ...(r as unknown as RunRow), spec: JSON.parse(String(r.spec)), machine: JSON.parse(String(r.machine)), versions: JSON.parse(String(r.versions)) };
  }

  listRuns(opts: { status?: RunStatus; kind?: string; limit?: number } = {}): RunRow[] {
    const rows = this.db.prepare(`SELECT * FROM runs WHERE (@status IS NULL OR status = @status) AND (@kind IS NULL OR kind = @kind) ORDER BY created_at DESC LIMIT @limit`)
      .all({ status: opts.status ?? null, kind: opts.kind ?? null, limit: opts.limit ?? -1 }) as Array<Record<string, unknown>>;
    return rows.map((r) => this.parse(r));
  }

  getRun(id: string): RunDetail {
    const r = this.db.prepare(`SELECT * FROM runs WHERE id = ?`).get(id) as Record<string, unknown> | undefined;
    if (!r) throw new HistoryError('E_NOT_FOUND', `no run ${id} in ${this.file}`);
    const stages = (this.db.prepare(`SELECT ordinal, name, status, progress, detail, started_at, finished_at FROM stages WHERE run_id = ? ORDER BY ordinal`).all(id) as Array<Record<string, unknown>>)
      .map((s) => ({ ...(s as unknown as StageRow), detail: s.detail === null ? null : JSON.parse(String(s.detail)) }));
    const results = this.db.prepare(`SELECT task, setting, phase, metric, value FROM results WHERE run_id = ? ORDER BY task, setting, phase, metric`).all(id) as ResultRow[];
    const artifacts = this.db.prepare(`SELECT kind, path, sha256, bytes, created_at FROM artifacts WHERE run_id = ? ORDER BY created_at`).all(id) as ArtifactRow[];
    const metricNames = (this.db.prepare(`SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name`).all(id) as Array<{ name: string }>).map((m) => m.name);
    return { ...this.parse(r), stages, results, artifacts, metricNames };
  }

  /** Deletes a run and its rows; returns the artifacts so the caller can remove the files (after confirming). */
  deleteRun(id: string): ArtifactRow[] {
    const detail = this.getRun(id);
    this.db.prepare(`DELETE FROM runs WHERE id = ?`).run(id);
    return detail.artifacts;
  }

  // --- the workbench's model library ---------------------------------------------------------------

  listModels(): ModelRow[] {
    return (this.db.prepare(`SELECT * FROM models ORDER BY bundled DESC, added_at`).all() as Array<Record<string, unknown>>)
      .map((r) => ({ id: String(r.id), path: String(r.path), name: String(r.name), bundled: r.bundled === 1, info: JSON.parse(String(r.info)), added_at: Number(r.added_at) }));
  }

  /** Adds a model (or refreshes what is known of it) by its absolute path; returns its row. */
  upsertModel(m: { path: string; name: string; bundled: boolean; info: unknown }): ModelRow {
    const now = Date.now();
    const id = crypto.createHash('sha256').update(m.path).digest('hex').slice(0, 12);
    this.db.prepare(`INSERT INTO models (id, path, name, bundled, info, added_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (path) DO UPDATE SET name = excluded.name, info = excluded.info, bundled = excluded.bundled`)
      .run(id, m.path, m.name, m.bundled ? 1 : 0, JSON.stringify(m.info), now);
    return this.listModels().find((r) => r.path === m.path)!;
  }

  removeModel(id: string): boolean {
    return this.db.prepare(`DELETE FROM models WHERE id = ?`).run(id).changes > 0;
  }

  // --- the wizard's draft ----------------------------------------------------------------------------

  getDraft(slot = 'new-run'): { spec: unknown; step: number; updatedAt: number } | null {
    const r = this.db.prepare(`SELECT spec, step, updated_at FROM drafts WHERE slot = ?`).get(slot) as { spec: string; step: number; updated_at: number } | undefined;
    return r ? { spec: JSON.parse(r.spec), step: r.step, updatedAt: r.updated_at } : null;
  }

  saveDraft(spec: unknown, step: number, slot = 'new-run'): number {
    const now = Date.now();
    this.db.prepare(`INSERT INTO drafts (slot, spec, step, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (slot) DO UPDATE SET spec = excluded.spec, step = excluded.step, updated_at = excluded.updated_at`).run(slot, JSON.stringify(spec), step, now);
    return now;
  }

  clearDraft(slot = 'new-run'): boolean {
    return this.db.prepare(`DELETE FROM drafts WHERE slot = ?`).run(slot).changes > 0;
  }

  integrityCheck(): string {
    return String(this.db.pragma('integrity_check', { simple: true }));
  }
}
