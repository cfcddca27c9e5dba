import type { Int64 } from '../api/types';

/** MLflow int64/double fields arrive as numbers or strings ("NaN", "1700000000000"). */
export function toNumber(v: Int64 | null | undefined): number | undefined {
  if (v === null || v === undefined || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isNaN(n) && v !== 'NaN' ? undefined : n;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Local `YYYY-MM-DD HH:mm:ss` for an epoch-milliseconds value. */
export function formatDateTime(ms: Int64 | null | undefined): string {
  const n = toNumber(ms);
  if (n === undefined || !Number.isFinite(n) || n <= 0) return '—';
  const d = new Date(n);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Compact duration: `45s`, `14m 03s`, `3h 07m`, `2d 4h`. Negative values are treated as positive. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.floor(Math.abs(totalSeconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${pad(m)}m`;
  if (m > 0) return `${m}m ${pad(sec)}s`;
  return `${sec}s`;
}

export interface Countdown {
  expired: boolean;
  secondsLeft: number;
  text: string;
}

/** Time until an RFC 3339 instant, e.g. `in 14m 03s` or `expired 2m 00s ago`. */
export function countdown(expiresAt: string, nowMs: number): Countdown | null {
  const t = Date.parse(expiresAt);
  if (Number.isNaN(t)) return null;
  const secondsLeft = Math.floor((t - nowMs) / 1000);
  if (secondsLeft <= 0) return { expired: true, secondsLeft, text: `expired ${formatDuration(-secondsLeft)} ago` };
  return { expired: false, secondsLeft, text: `in ${formatDuration(secondsLeft)}` };
}

/** Latency in milliseconds: `0.42 ms`, `12.3 ms`, `850 ms`, `1.25 s`. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Metric values: up to 4 significant digits, exponent for very large/small values. */
export function formatMetric(v: number | string | undefined): string {
  if (v === undefined) return '';
  const n = typeof v === 'number' ? v : Number(v);
  if (Number.isNaN(n)) return typeof v === 'string' ? v : 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '∞' : '-∞';
  if (Number.isInteger(n) && Math.abs(n) < 1e9) return String(n);
  const abs = Math.abs(n);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e9)) return n.toExponential(3);
  return String(Number(n.toPrecision(4)));
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}
