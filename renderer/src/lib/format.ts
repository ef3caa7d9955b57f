// format.ts — how numbers read on screen: parameter counts, bytes, durations, percentages, dates; and
// parsing of human parameter counts ("5B", "260K").

export function fmtParams(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function fmtInt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return Math.round(n).toLocaleString('en-US');
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function fmtSeconds(s: number | null | undefined): string {
  if (s === null || s === undefined || !Number.isFinite(s)) return '—';
  if (s < 1) return `${s.toFixed(2)} s`;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60), sec = Math.round(s % 60);
  if (m < 60) return `${m} min ${sec} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

/** a fraction 0..1 as a percentage */
export function fmtPct(x: number | null | undefined, digits = 1): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return `${(x * 100).toFixed(digits)}%`;
}

export function fmtNum(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return Number(x.toPrecision(digits)).toString();
}

export function fmtDate(ms: number | null | undefined): string {
  if (!ms) return '—';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** "5B", "1.2M", "260K", "260032", "260,032" → a count; null when it does not parse */
export function parseCount(text: string): number | null {
  const m = /^\s*([0-9][0-9_,]*(?:\.[0-9]+)?)\s*([kKmMbBgG]?)\s*$/.exec(text);
  if (!m) return null;
  const v = Number(m[1].replace(/[_,]/g, ''));
  const mul = { '': 1, k: 1e3, m: 1e6, b: 1e9, g: 1e9 }[m[2].toLowerCase()] ?? 1;
  const n = Math.round(v * mul);
  return Number.isFinite(n) ? n : null;
}

/** the last part of a path */
export function baseName(p: string): string {
  const s = p.replace(/[\\/]+$/, '');
  return s.slice(Math.max(s.lastIndexOf('/'), s.lastIndexOf('\\')) + 1) || p;
}

/** a function that runs `fn` once calls stop for `ms` */
export function debounce<A extends unknown[]>(fn: (...a: A) => void, ms: number): ((...a: A) => void) & { cancel(): void; flush(): void } {
  let t: ReturnType<typeof setTimeout> | null = null;
  let last: A | null = null;
  const run = (...a: A) => {
    last = a;
    if (t) clearTimeout(t);
    t = setTimeout(() => { t = null; const args = last!; last = null; fn(...args); }, ms);
  };
  run.cancel = () => { if (t) clearTimeout(t); t = null; last = null; };
  run.flush = () => { if (t && last) { clearTimeout(t); t = null; const args = last; last = null; fn(...args); } };
  return run;
}
