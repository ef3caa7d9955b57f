// serve.ts — `tailor serve`: runs the workbench's back end and serves its renderer over HTTP +
// WebSocket on 127.0.0.1, printing the URL with its access token. Stops (cancelling a running job
// cleanly) on Ctrl-C or when the signal given to it aborts.
import * as path from 'node:path';
import { defaultDbPath } from '../history/db.js';
import { startServer } from '../serve/server.js';
import { defaultDataDir } from '../service/workbench.js';
import { packageRoot } from './version.js';

export interface ServeArgs { host: string; port: number; db: string | null; dataDir: string | null; token: string | null; json: boolean }

export async function serve(a: ServeArgs, signal: AbortSignal, out: (s: string) => void, err: (s: string) => void): Promise<void> {
  const dbPath = a.db ?? defaultDbPath();
  const s = await startServer({
    host: a.host, port: a.port, dbPath, dataDir: a.dataDir ?? defaultDataDir(dbPath), staticDir: path.join(packageRoot(), 'dist', 'renderer'),
    token: a.token ?? undefined,
  });
  if (a.host !== '127.0.0.1' && a.host !== 'localhost' && a.host !== '::1')
    err(`tailor serve: listening on ${a.host}: anyone who can reach this port and has the token can run jobs on this machine\n`);
  out(a.json ? JSON.stringify({ url: s.url, port: s.port, token: s.token, db: dbPath }) + '\n' : `Tailor workbench: ${s.url}\n(history ${dbPath}; Ctrl-C stops)\n`);
  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await s.close();
}
