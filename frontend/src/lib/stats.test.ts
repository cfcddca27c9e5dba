import { describe, expect, it } from 'vitest';
import capturedTraffic from '../test/captured/stats-traffic.json';
import { statsFixture, T0 } from '../test/fixtures';
import { summarizeStats } from './stats';

describe('summarizeStats', () => {
  it('fills a one-value-per-second window ending at the newest bucket', () => {
    const s = summarizeStats(statsFixture());
    expect(s.requests).toHaveLength(60);
    expect(s.requests.slice(-3)).toEqual([30, 20, 10]);
    expect(s.requests.slice(0, 57).every((v) => v === 0)).toBe(true);
    expect(s.p50.slice(-4)).toEqual([null, 2, 3, 1.5]);
    expect(s.requestsInWindow).toBe(60);
    expect(s.ratePerSec).toBe(1);
    expect(s.errorsInWindow).toBe(3);
    expect(s.errorPct).toBe(5);
    expect(s.p50Ms).toBe(1.5);
    expect(s.p99Ms).toBe(8.4);
  });

  it('leaves gaps between buckets as zero requests and null latency', () => {
    const s = summarizeStats(
      statsFixture({
        window_seconds: 5,
        series: [
          { t: T0 - 4, requests: 5, errors: 0, p50_ms: 1, p99_ms: 2 },
          { t: T0, requests: 5, errors: 0, p50_ms: 0.5, p99_ms: 0.75 },
        ],
      }),
    );
    expect(s.requests).toEqual([5, 0, 0, 0, 5]);
    expect(s.p99).toEqual([2, null, null, null, 0.75]);
    expect(s.p99Ms).toBe(0.75);
    expect(s.ratePerSec).toBe(2);
  });

  it('reads a stats answer captured from the proxy', () => {
    const s = summarizeStats(capturedTraffic);
    expect(s.requests).toHaveLength(60);
    expect(s.requestsInWindow).toBe(5);
    expect(s.errorPct).toBe(100);
    expect(s.p50Ms).toBe(1.281);
    expect(s.p99Ms).toBe(4.325);
  });

  it('handles an empty series', () => {
    const s = summarizeStats(statsFixture({ series: [] }));
    expect(s.requests).toEqual([]);
    expect(s.ratePerSec).toBe(0);
    expect(s.errorPct).toBeNull();
    expect(s.p50Ms).toBeNull();
  });
});
