// The run history on a real SQLite file: each migration from its predecessor (data kept), WAL and STRICT,
// refusal of a newer schema, runs/stages/metrics/results/artifacts, interrupted runs, integrity.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { History, HistoryError } from '../electron/core/history/db.js';
import { LATEST_VERSION, MIGRATIONS } from '../electron/core/history/migrations.js';
import { REPO_ROOT, tempDir } from './helpers/paths.js';

const dir = tempDir('tailor-history-');
let n = 0;
const dbFile = () => path.join(dir, `h${n++}.sqlite`);

test('migration 1 on an empty file: STRICT tables, WAL journal, user_version 1', () => {
  const h = History.open(dbFile(), { upTo: 1 });
  try {
    assert.equal(h.version, 1);
    assert.equal(h.db.pragma('journal_mode', { simple: true }), 'wal');
    const tables = h.db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name`).all() as Array<{ name: string; sql: string }>;
    assert.deepEqual(tables.map((t) => t.name), ['artifacts', 'metrics', 'results', 'runs', 'stages']);
    for (const t of tables) assert.match(t.sql, /\) STRICT$/, `${t.name} is STRICT`);
    // STRICT rejects a wrong type; CHECK rejects an unknown status
    assert.throws(() => h.db.prepare(`INSERT INTO runs VALUES ('x','n','k','running','cli','{}','{}','{}',1,NULL,'not a number',1)`).run());
    assert.throws(() => h.db.prepare(`INSERT INTO runs VALUES ('x','n','k','weird','cli','{}','{}','{}',1,NULL,1,1)`).run());
  } finally {
    h.close();
  }
});

test('migration 2 upgrades a version-1 history in place and keeps its runs', () => {
  const f = dbFile();
  const h1 = History.open(f, { upTo: 1 });
  const id = h1.createRun({ name: 'old', kind: 'eval', source: 'cli', spec: { a: 1 }, versions: {} });
  h1.finishRun(id, 'done');
  h1.close();
  const h2 = History.open(f, { upTo: 2 });
  try {
    assert.equal(h2.version, 2);
    assert.equal(LATEST_VERSION, MIGRATIONS.length);
    const idx = h2.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ('runs_by_time', 'metrics_by_run')`).all();
    assert.equal(idx.length, 2);
    assert.equal(h2.getRun(id).name, 'old');
    assert.equal(h2.integrityCheck(), 'ok');
  } finally {
    h2.close();
  }
});

test('migration 3 adds the model library and the wizard draft to a version-2 history, keeping its runs', () => {
  const f = dbFile();
  const h2 = History.open(f, { upTo: 2 });
  const id = h2.createRun({ name: 'kept', kind: 'pipeline', source: 'cli', spec: { ratios: [0.2] }, versions: {} });
  h2.finishRun(id, 'done');
  h2.close();
  const h3 = History.open(f, { upTo: 3 });
  try {
    assert.equal(h3.version, 3);
    for (const t of ['models', 'drafts'])
      assert.match(String((h3.db.prepare(`SELECT sql FROM sqlite_master WHERE name = ?`).get(t) as { sql: string }).sql), /STRICT/);
    assert.equal(h3.getRun(id).name, 'kept');
    // models: unique by path, refreshed in place, removable
    const m = h3.upsertModel({ path: '/models/a', name: 'a', bundled: false, info: { params: 1 } });
    const again = h3.upsertModel({ path: '/models/a', name: 'a2', bundled: false, info: { params: 2 } });
    assert.equal(again.id, m.id);
    assert.deepEqual(h3.listModels().map((r) => [r.name, (r.info as { params: number }).params]), [['a2', 2]]);
    assert.throws(() => h3.db.prepare(`INSERT INTO models (id, path, name, bundled, info, added_at) VALUES ('x', '/models/b', 'b', 2, '{}', 0)`).run(), /CHECK/);
    assert.equal(h3.removeModel(m.id), true);
    assert.equal(h3.listModels().length, 0);
    // the draft: one slot, replaced on save, cleared after a start
    assert.equal(h3.getDraft(), null);
    h3.saveDraft({ name: 'first' }, 1);
    h3.saveDraft({ name: 'second', prune: { ratios: [0.2] } }, 4);
    assert.deepEqual({ ...h3.getDraft(), updatedAt: 0 }, { spec: { name: 'second', prune: { ratios: [0.2] } }, step: 4, updatedAt: 0 });
    assert.equal(h3.clearDraft(), true);
    assert.equal(h3.getDraft(), null);
    assert.equal(h3.integrityCheck(), 'ok');
  } finally {
    h3.close();
  }
});

test('a database from a newer Tailor is refused with a clear message and left untouched', () => {
  const f = dbFile();
  const raw = new Database(f);
  raw.pragma(`user_version = ${LATEST_VERSION + 5}`);
  raw.close();
  const before = fs.readFileSync(f);
  assert.throws(() => History.open(f), (e: unknown) => e instanceof HistoryError && e.code === 'E_DB_NEWER' && /newer Tailor/.test(e.message));
  assert.deepEqual(fs.readFileSync(f), before);
});

test('runs, stages, metrics, results and artifacts round-trip; delete cascades; crashed runs become interrupted', () => {
  const f = dbFile();
  const h = History.open(f);
  const id = h.createRun({ name: 'tailor stories260K', kind: 'pipeline', source: 'cli', spec: { ratios: [0.2, 0.5] }, versions: { tailor: '0.1.0' } });
  h.setStage(id, 0, 'baseline', 'running');
  h.setStage(id, 0, 'baseline', 'done', 1, { seconds: 3 });
  h.setStage(id, 1, 'lora', 'running', 0.5);
  h.addMetrics(id, 'lora', 'loss', [{ step: 1, value: 2.5 }, { step: 2, value: 2.1 }]);
  h.setResult(id, { task: 'story_cloze', setting: 'ratio=0.2', phase: 'recovered', metric: 'acc', value: 0.41 });
  const art = path.join(dir, 'adapter');
  fs.mkdirSync(art);
  fs.writeFileSync(path.join(art, 'a.bin'), 'abc');
  const a = h.addArtifact(id, 'adapter', art);
  assert.equal(a.bytes, 3);
  const d = h.getRun(id);
  assert.deepEqual(d.spec, { ratios: [0.2, 0.5] });
  assert.deepEqual(d.stages.map((s) => [s.name, s.status]), [['baseline', 'done'], ['lora', 'running']]);
  assert.deepEqual(h.metrics(id, 'loss').map((m) => m.value), [2.5, 2.1]);
  assert.equal(d.results[0].value, 0.41);
  assert.equal(d.artifacts[0].sha256?.length, 64);
  // a run left 'running' by a dead process is marked interrupted at the next open
  h.db.prepare(`UPDATE runs SET pid = 999999 WHERE id = ?`).run(id);
  h.close();
  const h2 = History.open(f);
  try {
    const r = h2.getRun(id);
    assert.equal(r.status, 'interrupted');
    assert.equal(r.stages[1].status, 'interrupted');
    assert.equal(h2.listRuns({ status: 'interrupted' }).length, 1);
    assert.deepEqual(h2.deleteRun(id).map((x) => x.kind), ['adapter']);
    assert.equal((h2.db.prepare(`SELECT COUNT(*) AS n FROM metrics`).get() as { n: number }).n, 0);
    assert.throws(() => h2.getRun(id), (e: unknown) => e instanceof HistoryError && e.code === 'E_NOT_FOUND');
    assert.equal(h2.integrityCheck(), 'ok');
  } finally {
    h2.close();
  }
});

test('CLI runs are recorded: tailor eval writes a run, tailor runs lists / shows / compares / deletes it', () => {
  const f = dbFile();
  const cli = path.join(REPO_ROOT, 'dist/electron/core/cli/main.js');
  const model = path.join(REPO_ROOT, 'resources', 'models', 'stories260K');
  const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args, '--db', f], { encoding: 'utf8' });
  for (const limit of ['20', '30']) {
    const r = run('eval', model, '--task', 'story_cloze', '--limit', limit, '--json');
    assert.equal(r.status, 0, r.stderr);
  }
  const list = run('runs', '--json');
  assert.equal(list.status, 0, list.stderr);
  const runs = JSON.parse(list.stdout) as Array<{ id: string; kind: string; status: string }>;
  assert.equal(runs.length, 2);
  assert.ok(runs.every((r) => r.kind === 'eval' && r.status === 'done'));
  const show = run('runs', 'show', runs[0].id, '--json');
  assert.equal(JSON.parse(show.stdout).results[0].task, 'story_cloze');
  const cmp = run('runs', 'compare', runs[0].id, runs[1].id);
  assert.equal(cmp.status, 0, cmp.stderr);
  assert.match(cmp.stdout, /story_cloze/);
  const del = run('runs', 'delete', runs[1].id, '--yes');
  assert.equal(del.status, 0, del.stderr);
  assert.equal(JSON.parse(run('runs', '--json').stdout).length, 1);
  const refuse = run('runs', 'delete', runs[0].id);
  assert.equal(refuse.status, 2);
  assert.match(refuse.stderr, /--yes/);
});

test('the Electron main process opens the history through its own better-sqlite3 build (TAILOR_SQLITE_BINDING); a missing one is a clear E_DB', () => {
  const saved = process.env.TAILOR_SQLITE_BINDING;
  try {
    process.env.TAILOR_SQLITE_BINDING = path.join(REPO_ROOT, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    const h = History.open(dbFile());
    assert.equal(h.version, LATEST_VERSION);
    h.close();
    process.env.TAILOR_SQLITE_BINDING = path.join(dir, 'no-such-binding.node');
    assert.throws(() => History.open(dbFile()), (e: unknown) => e instanceof HistoryError && e.code === 'E_DB' && /no-such-binding/.test(e.message));
  } finally {
    if (saved === undefined) delete process.env.TAILOR_SQLITE_BINDING;
    else process.env.TAILOR_SQLITE_BINDING = saved;
  }
});
