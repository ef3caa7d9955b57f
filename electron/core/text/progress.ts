// progress.ts — progress of a long job as every front end shows it: done/total, rate and ETA.
export interface StageProgress {
  done: number;
  total: number;
  fraction: number;
  /** items per second so far */
  rate: number;
  /** seconds left at the current rate (NaN before the first update) */
  etaSec: number;
  elapsedSec: number;
}

export class Eta {
  private readonly start = performance.now();
  constructor(private readonly total: number) {}
  update(done: number): StageProgress {
    const elapsedSec = (performance.now() - this.start) / 1000;
    const rate = elapsedSec > 0 ? done / elapsedSec : 0;
    const etaSec = rate > 0 ? (this.total - done) / rate : Number.NaN;
    return { done, total: this.total, fraction: this.total ? done / this.total : 1, rate, etaSec, elapsedSec };
  }
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return '--:--';
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

/** A byte count for people: 512 B, 1.5 kB, 27.2 MB, 13.48 GB (decimal units). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000, u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[u]}`;
}
