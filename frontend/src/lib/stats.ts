import type { ProxyStats } from '../api/types';

export interface StatsSummary {
  windowSeconds: number;
  /** Requests per second, averaged over the window. */
  ratePerSec: number;
  requestsInWindow: number;
  errorsInWindow: number;
  /** Share of requests in the window that failed, 0..100; null without traffic. */
  errorPct: number | null;
  /** Latest known latencies. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** One value per second, oldest first, gaps filled with 0 / null. */
  requests: number[];
  errors: number[];
  p50: (number | null)[];
  p99: (number | null)[];
}

const finiteOrNull = (v: number | null | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function summarizeStats(stats: ProxyStats): StatsSummary {
  const windowSeconds = stats.window_seconds > 0 ? Math.floor(stats.window_seconds) : 60;
  const buckets = new Map<number, ProxyStats['series'][number]>();
  let end = -Infinity;
  for (const b of stats.series) {
    buckets.set(b.t, b);
    end = Math.max(end, b.t);
  }
  const requests: number[] = [];
  const errors: number[] = [];
  const p50: (number | null)[] = [];
  const p99: (number | null)[] = [];
  if (Number.isFinite(end)) {
    for (let t = end - windowSeconds + 1; t <= end; t++) {
      const b = buckets.get(t);
      requests.push(b?.requests ?? 0);
      errors.push(b?.errors ?? 0);
      p50.push(finiteOrNull(b?.p50_ms));
      p99.push(finiteOrNull(b?.p99_ms));
    }
  }
  const requestsInWindow = requests.reduce((a, b) => a + b, 0);
  const errorsInWindow = errors.reduce((a, b) => a + b, 0);
  const lastNonNull = (xs: (number | null)[]) => {
    for (let i = xs.length - 1; i >= 0; i--) if (xs[i] !== null) return xs[i] ?? null;
    return null;
  };
  return {
    windowSeconds,
    ratePerSec: requestsInWindow / windowSeconds,
    requestsInWindow,
    errorsInWindow,
    errorPct: requestsInWindow > 0 ? (100 * errorsInWindow) / requestsInWindow : null,
    p50Ms: lastNonNull(p50),
    p99Ms: lastNonNull(p99),
    requests,
    errors,
    p50,
    p99,
  };
}
