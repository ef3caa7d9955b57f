// runs-verb.ts — `tailor runs`: the local history of runs — list, show one (stages, results, artifacts),
// compare several side by side (results and the spec settings that differ), delete one with its artifacts.
import * as fs from 'node:fs';
import { defaultDbPath, History, type RunDetail } from '../history/db.js';
import { json, str, type CommandContext } from './args.js';

export async function runRuns(ctx: CommandContext): Promise<void> {
  const [sub, ...ids] = ctx.positionals;
  const h = History.open(str(ctx, 'db') ?? defaultDbPath());
  try {
    if (!sub) {
      const runs = h.listRuns();
      if (ctx.values.json) return json(ctx, runs.map(({ spec: _s, machine: _m, versions: _v, ...r }) => r));
      if (runs.length === 0) return ctx.out(`no runs yet in ${h.file}\n`);
      return ctx.out(runs.map((r) => `${r.id}  ${r.status.padEnd(11)} ${r.kind.padEnd(9)} ${new Date(r.created_at).toISOString().slice(0, 16).replace('T', ' ')}  ${r.name}`).join('\n') + '\n');
    }
    if (sub === 'show') {
      if (ids.length !== 1) throw ctx.usageError('runs show ID');
      const d = h.getRun(ids[0]);
      if (ctx.values.json) return json(ctx, { ...d, loss: h.metrics(ids[0], 'loss') });
      return ctx.out(describeRun(d));
    }
    if (sub === 'compare') {
      if (ids.length < 2) throw ctx.usageError('runs compare ID ID [ID…]');
      const ds = ids.map((id) => h.getRun(id));
      if (ctx.values.json) return json(ctx, ds);
      const keys = [...new Set(ds.flatMap((d) => d.results.map((r) => `${r.task} ${r.setting} ${r.phase} ${r.metric}`)))].sort();
      const lines = [`${'result'.padEnd(48)} ${ds.map((d) => d.id.padEnd(22)).join(' ')}`];
      for (const k of keys) lines.push(`${k.padEnd(48)} ${ds.map((d) => { const r = d.results.find((x) => `${x.task} ${x.setting} ${x.phase} ${x.metric}` === k); return (r ? r.value.toFixed(4) : '—').padEnd(22); }).join(' ')}`);
      const specKeys = [...new Set(ds.flatMap((d) => Object.keys((d.spec ?? {}) as object)))].sort();
      for (const k of specKeys) {
        const vals = ds.map((d) => JSON.stringify((d.spec as Record<string, unknown>)[k]));
        if (new Set(vals).size > 1) lines.push(`${('setting ' + k).padEnd(48)} ${vals.map((v) => v.padEnd(22)).join(' ')}`);
      }
      return ctx.out(lines.join('\n') + '\n');
    }
    if (sub === 'delete') {
      if (ids.length !== 1) throw ctx.usageError('runs delete ID --yes');
      const d = h.getRun(ids[0]);
      if (!ctx.values.yes)
        throw ctx.usageError(`this deletes run ${d.id} and its ${d.artifacts.length} artifact(s) on disk (${d.artifacts.map((a) => a.path).join(', ') || 'none'}); add --yes to confirm`);
      for (const a of h.deleteRun(ids[0])) fs.rmSync(a.path, { recursive: true, force: true });
      return ctx.out(`deleted run ${d.id}\n`);
    }
    throw ctx.usageError(`unknown runs subcommand "${sub}" (show, compare, delete)`);
  } finally {
    h.close();
  }
}

function describeRun(d: RunDetail): string {
  const lines = [`run       ${d.id}  (${d.kind}, ${d.status}${d.error ? `: ${d.error}` : ''})`, `name      ${d.name}`,
    `created   ${new Date(d.created_at).toISOString()}`, `spec      ${JSON.stringify(d.spec)}`];
  for (const s of d.stages) lines.push(`stage ${s.ordinal}   ${s.name.padEnd(20)} ${s.status} ${(s.progress * 100).toFixed(0)}%`);
  for (const r of d.results) lines.push(`result    ${r.task} ${r.setting} ${r.phase} ${r.metric} = ${r.value.toFixed(4)}`);
  for (const a of d.artifacts) lines.push(`artifact  ${a.kind} ${a.path} (${a.bytes} bytes, sha256 ${a.sha256?.slice(0, 12)})`);
  return lines.join('\n') + '\n';
}
