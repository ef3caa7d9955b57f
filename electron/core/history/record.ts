// record.ts — wraps one job (a CLI verb, a pipeline) as a run in the history: created 'running' with its
// spec, finished 'done', 'failed' (with the error) or 'cancelled'. A history that cannot be opened is
// reported, never silently skipped.
import { History, type RunRow } from './db.js';
import { version } from '../cli/version.js';

export interface Recorder {
  id: string;
  history: History;
}

export async function recordRun<T>(dbPath: string | null, meta: { name: string; kind: string; source?: RunRow['source']; spec: unknown },
  fn: (rec: Recorder | null) => Promise<T>): Promise<T> {
  if (dbPath === null) return fn(null);
  const history = History.open(dbPath);
  const id = history.createRun({ name: meta.name, kind: meta.kind, source: meta.source ?? 'cli', spec: meta.spec, versions: { tailor: version(), node: process.version } });
  try {
    const r = await fn({ id, history });
    history.finishRun(id, 'done');
    return r;
  } catch (e) {
    const code = (e as { code?: string }).code;
    history.finishRun(id, code === 'E_CANCELLED' ? 'cancelled' : 'failed', (e as Error).message);
    throw e;
  } finally {
    history.close();
  }
}
