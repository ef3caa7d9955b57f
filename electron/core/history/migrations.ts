// migrations.ts — the run history's schema, as numbered migrations. Each runs inside the one
// transaction that also bumps PRAGMA user_version; a migration is never edited once released — a
// change is a new migration with a test of its own (test/history.test.ts).
export interface Migration { version: number; description: string; sql: string }

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    description: 'runs, their stages, metrics over time, results and artifacts',
    sql: `
      CREATE TABLE runs (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL,                 -- 'pipeline' | 'finetune' | 'prune' | 'eval' | …
        status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'cancelled', 'interrupted')),
        source      TEXT NOT NULL CHECK (source IN ('cli', 'app', 'serve')),
        spec        TEXT NOT NULL,                 -- JSON: the spec that drove the run
        machine     TEXT NOT NULL,                 -- JSON: host, CPU, memory, backend
        versions    TEXT NOT NULL,                 -- JSON: Tailor, Node, engine
        pid         INTEGER,                       -- the process running it (to spot crashes)
        error       TEXT,
        created_at  INTEGER NOT NULL,              -- ms since the epoch
        updated_at  INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE stages (
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        ordinal     INTEGER NOT NULL,
        name        TEXT NOT NULL,
        status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled', 'interrupted')),
        progress    REAL NOT NULL DEFAULT 0,
        detail      TEXT,                          -- JSON
        started_at  INTEGER,
        finished_at INTEGER,
        PRIMARY KEY (run_id, ordinal)
      ) STRICT;
      CREATE TABLE metrics (
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        stage       TEXT NOT NULL,
        name        TEXT NOT NULL,                 -- e.g. 'loss', 'lr'
        step        INTEGER NOT NULL,
        value       REAL NOT NULL,
        recorded_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE results (
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        task        TEXT NOT NULL,
        setting     TEXT NOT NULL,                 -- e.g. 'ratio=0.2'
        phase       TEXT NOT NULL,                 -- 'baseline' | 'pruned' | 'recovered'
        metric      TEXT NOT NULL,                 -- 'acc' | 'acc_norm' | 'ppl' | …
        value       REAL NOT NULL,
        PRIMARY KEY (run_id, task, setting, phase, metric)
      ) STRICT;
      CREATE TABLE artifacts (
        run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        kind        TEXT NOT NULL,                 -- 'model' | 'adapter' | 'report' | 'checkpoint' | …
        path        TEXT NOT NULL,
        sha256      TEXT,
        bytes       INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (run_id, path)
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'indexes for the history list and for loss curves',
    sql: `
      CREATE INDEX runs_by_time ON runs(created_at DESC);
      CREATE INDEX metrics_by_run ON metrics(run_id, name, step);
    `,
  },
  {
    version: 3,
    description: "the workbench's model library and the new-run wizard's draft",
    sql: `
      CREATE TABLE models (
        id          TEXT PRIMARY KEY,
        path        TEXT NOT NULL UNIQUE,          -- absolute path of the file or folder
        name        TEXT NOT NULL,
        bundled     INTEGER NOT NULL DEFAULT 0 CHECK (bundled IN (0, 1)),
        info        TEXT NOT NULL,                 -- JSON: what the engine read (format, shapes, parameters)
        added_at    INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE drafts (
        slot        TEXT PRIMARY KEY,              -- 'new-run'
        spec        TEXT NOT NULL,                 -- JSON: the wizard's partial spec
        step        INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
      ) STRICT;
    `,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;
