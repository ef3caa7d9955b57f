// report.ts — the pipeline's report in three forms: JSON (the data), Markdown (the recovery table),
// and a self-contained HTML page with charts drawn as inline SVG (per-task bars baseline / pruned /
// recovered, recovery against ratio, the LoRA loss curves). No external resources.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { atomicWriteFile } from '../train/atomic.js';
import type { PipelineSpec } from './spec.js';
import type { ReportView } from '../api/contract.js';

/** The report: the workbench's ReportView (one definition, in the contract) plus the spec that drove it. */
export interface PipelineReport extends ReportView {
  spec: PipelineSpec;
}

const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

// ", MLP channels in multiples of 8" when the run rounded the kept channels (prune.roundTo)
const roundNote = (r: PipelineReport): string => ((r.spec.prune.roundTo ?? 1) > 1 ? `, MLP channels in multiples of ${r.spec.prune.roundTo}` : '');

export function markdown(r: PipelineReport): string {
  const lines = [`# ${r.name}`, '', `Model \`${path.basename(r.model)}\` (${r.paramsBefore.toLocaleString('en-US')} parameters), pruning by ${r.method}${roundNote(r)}, run ${r.runId}.`, '',
    '| task | ratio | baseline | pruned | recovered | recovery |', '|---|---|---|---|---|---|',
    ...r.rows.map((x) => `| ${x.task} | ${x.ratio} | ${pct(x.baseline)} | ${pct(x.pruned)} | ${pct(x.recovered)} | ${pct(x.recovery)} |`), '',
    '| ratio | parameters left | share removed | mean recovery | LoRA time |', '|---|---|---|---|---|',
    ...r.ratios.map((x) => `| ${x.ratio} | ${x.paramsAfter.toLocaleString('en-US')} | ${pct(x.removedShare)} | ${pct(x.meanRecovery)} | ${x.loraSeconds.toFixed(1)} s |`), '',
    ...(r.perplexity.length ? ['| perplexity set | ratio | baseline | pruned | recovered |', '|---|---|---|---|---|',
      ...r.perplexity.map((x) => `| ${x.set} | ${x.ratio} | ${x.baseline.toFixed(3)} | ${x.pruned.toFixed(3)} | ${x.recovered.toFixed(3)} |`), ''] : []),
    ...r.ratios.filter((x) => x.exported).map((x) => `Exported (ratio ${x.ratio}): \`${x.exported}\``),
    '',
    ...(r.compute ? [`Computed on ${r.compute}.`] : []),
    `Total ${r.seconds.toFixed(1)} s. Stages: ${Object.entries(r.stageSeconds).map(([k, v]) => `${k} ${v.toFixed(1)} s${gpuPeak(r, k)}`).join(', ')}.`, ''];
  return lines.join('\n');
}

/** " (GPU peak 14.61 GiB)" for a stage's peak of GPU memory, "" when it did not run on CUDA */
export function gpuPeakNote(bytes: number | undefined): string {
  if (bytes === undefined) return '';
  const [div, unit] = bytes >= 1024 ** 3 ? [1024 ** 3, 'GiB'] : bytes >= 1024 ** 2 ? [1024 ** 2, 'MiB'] : [1024, 'KiB'];
  return ` (GPU peak ${(bytes / div).toFixed(2)} ${unit})`;
}
function gpuPeak(r: ReportView, stage: string): string {
  return gpuPeakNote(r.stageDevicePeakBytes?.[stage]);
}

function bars(r: PipelineReport): string {
  const groups = r.rows.map((x) => ({ label: `${x.task} @${x.ratio}`, vals: [x.baseline, x.pruned, x.recovered] }));
  const w = 60, h = 160, colors = ['#4c78a8', '#e45756', '#54a24b'];
  const width = groups.length * w + 40;
  const body = groups.map((g, i) => g.vals.map((v, k) => `<rect x="${30 + i * w + k * 16}" y="${10 + h * (1 - v)}" width="14" height="${h * v}" fill="${colors[k]}"><title>${esc(g.label)} ${['baseline', 'pruned', 'recovered'][k]} ${pct(v)}</title></rect>`).join('') +
    `<text x="${30 + i * w}" y="${h + 24}" font-size="9">${esc(g.label)}</text>`).join('');
  return `<svg viewBox="0 0 ${width} ${h + 40}" width="${width}" height="${h + 40}" role="img" aria-label="accuracy per task"><line x1="28" y1="${10 + h}" x2="${width}" y2="${10 + h}" stroke="#888"/>${body}</svg>`;
}

function lines(points: number[][], w: number, h: number, color: string): string {
  const all = points.flat();
  const max = Math.max(...all), min = Math.min(...all);
  return points.map((p, k) => `<polyline fill="none" stroke="${color.split(',')[k % 3] ?? '#333'}" stroke-width="1.5" points="${p.map((v, i) => `${(i / Math.max(1, p.length - 1)) * w},${h - ((v - min) / Math.max(1e-9, max - min)) * h}`).join(' ')}"/>`).join('');
}

/** Per-layer importance as a heat map: one row per layer, attention groups then MLP channels, each
 *  normalised within its layer and part. */
function heatmap(imp: { layers: Array<{ attn: number[]; mlp: number[] }> }, label: string): string {
  const cell = 6, rowH = 12, maxCols = 180;
  const rows = imp.layers.map((l) => {
    const norm = (v: number[]) => { const mx = Math.max(...v, 1e-30); return v.map((x) => x / mx); };
    const mlp = norm(l.mlp);
    const step = Math.max(1, Math.ceil(mlp.length / (maxCols - l.attn.length - 2)));
    const mlpS = mlp.filter((_, i) => i % step === 0);
    return [...norm(l.attn), -1, ...mlpS];
  });
  const width = Math.max(...rows.map((r) => r.length)) * cell + 40;
  const body = rows.map((r, y) => r.map((v, x) => (v < 0 ? '' : `<rect x="${40 + x * cell}" y="${y * rowH}" width="${cell - 1}" height="${rowH - 1}" fill="hsl(${Math.round(220 - 200 * v)},70%,${Math.round(85 - 45 * v)}%)"/>`)).join('') +
    `<text x="0" y="${y * rowH + 9}" font-size="9">L${y}</text>`).join('');
  return `<svg viewBox="0 0 ${width} ${rows.length * rowH}" width="${width}" height="${rows.length * rowH}" role="img" aria-label="${esc(label)}">${body}</svg>`;
}

export function html(r: PipelineReport): string {
  const rec = r.ratios.map((x) => [x.ratio, x.meanRecovery]);
  const recSvg = `<svg viewBox="-10 -10 320 140" width="320" height="140" role="img" aria-label="recovery against ratio"><polyline fill="none" stroke="#54a24b" stroke-width="2" points="${rec.map(([x, y]) => `${x * 300},${120 - y * 120}`).join(' ')}"/>${rec.map(([x, y]) => `<circle cx="${x * 300}" cy="${120 - y * 120}" r="3"><title>ratio ${x}: ${pct(y)}</title></circle>`).join('')}</svg>`;
  const lossSvg = `<svg viewBox="0 0 320 120" width="320" height="120" role="img" aria-label="LoRA loss">${lines(r.ratios.map((x) => x.loss), 320, 120, '#4c78a8,#e45756,#54a24b')}</svg>`;
  const table = markdown(r).split('\n').filter((l) => l.startsWith('|') && !l.startsWith('|---')).map((l, i) => `<tr>${l.split('|').slice(1, -1).map((c) => (i === 0 || l.startsWith('| ratio') ? `<th>${esc(c.trim())}</th>` : `<td>${esc(c.trim())}</td>`)).join('')}</tr>`).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'"><title>${esc(r.name)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}@media(prefers-color-scheme:dark){body{background:#1e1e1e;color:#ddd}}</style></head><body>
<h1>${esc(r.name)}</h1><p>Model ${esc(path.basename(r.model))} (${r.paramsBefore.toLocaleString('en-US')} parameters), pruning by ${esc(r.method)}${esc(roundNote(r))}, run ${esc(r.runId)}.</p>
<h2>Accuracy: baseline, pruned, recovered</h2>${bars(r)}<h2>Recovery against pruning ratio</h2>${recSvg}<h2>LoRA loss</h2>${lossSvg}
<h2>Per-layer importance (attention groups | MLP channels)</h2>${r.ratios.map((x) => `<h3>ratio ${x.ratio}</h3>${heatmap(x.importance, `importance heat map at ratio ${x.ratio}`)}`).join('')}
<h2>Tables</h2><table>${table}</table></body></html>\n`;
}

export function writeReports(dir: string, r: PipelineReport): string[] {
  fs.mkdirSync(dir, { recursive: true });
  const files = [path.join(dir, 'report.json'), path.join(dir, 'report.md'), path.join(dir, 'report.html')];
  atomicWriteFile(files[0], JSON.stringify(r, null, 1) + '\n');
  atomicWriteFile(files[1], markdown(r));
  atomicWriteFile(files[2], html(r));
  return files;
}
