import { describe, expect, it } from 'vitest';
import { countdown, formatDuration, formatMetric, formatMs, toNumber } from './format';
import { columnKeys, historyPoints, metricValue, paramValue, runDurationSeconds, runName } from './runs';
import { runFixture } from '../test/fixtures';

describe('format', () => {
  it('reads int64 values sent as numbers or strings', () => {
    expect(toNumber('1763790000000')).toBe(1763790000000);
    expect(toNumber(5)).toBe(5);
    expect(toNumber(undefined)).toBeUndefined();
    expect(toNumber('abc')).toBeUndefined();
    expect(toNumber('NaN')).toBeNaN();
  });

  it('formats durations compactly', () => {
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(14 * 60 + 3)).toBe('14m 03s');
    expect(formatDuration(3 * 3600 + 7 * 60)).toBe('3h 07m');
    expect(formatDuration(2 * 86400 + 4 * 3600)).toBe('2d 4h');
  });

  it('counts down to an expiry and says when it has passed', () => {
    const now = Date.parse('2025-11-22T06:00:00Z');
    expect(countdown('2025-11-22T06:14:03Z', now)).toEqual({ expired: false, secondsLeft: 843, text: 'in 14m 03s' });
    expect(countdown('2025-11-22T05:58:00Z', now)).toMatchObject({ expired: true, text: 'expired 2m 00s ago' });
    expect(countdown('not a date', now)).toBeNull();
  });

  it('formats latency and metric values', () => {
    expect(formatMs(0.423)).toBe('0.42 ms');
    expect(formatMs(12.34)).toBe('12.3 ms');
    expect(formatMs(850.2)).toBe('850 ms');
    expect(formatMs(1250)).toBe('1.25 s');
    expect(formatMs(null)).toBe('—');
    expect(formatMetric(0.91234567)).toBe('0.9123');
    expect(formatMetric(42)).toBe('42');
    expect(formatMetric(0.00001234)).toBe('1.234e-5');
    expect(formatMetric('NaN')).toBe('NaN');
    expect(formatMetric(Infinity)).toBe('∞');
  });
});

describe('runs helpers', () => {
  it('collects param and metric columns and reads values', () => {
    const runs = [runFixture(0), runFixture(1)];
    expect(columnKeys(runs)).toEqual({ params: ['depth', 'lr'], metrics: ['auc', 'rmse'] });
    expect(paramValue(runs[0]!, 'depth')).toBe('4');
    expect(paramValue(runs[1]!, 'depth')).toBeUndefined();
    expect(metricValue(runs[1]!, 'auc')).toBe(0.91234567);
    expect(runDurationSeconds(runs[0]!)).toBe(90);
  });

  it('names runs from run_name, the mlflow.runName tag, or the id', () => {
    expect(runName(runFixture(0))).toBe('bold-owl');
    const tagged = runFixture(0, { run_name: '' });
    tagged.data = { tags: [{ key: 'mlflow.runName', value: 'from-tag' }] };
    expect(runName(tagged)).toBe('from-tag');
    const bare = runFixture(0, { run_name: '' });
    bare.data = {};
    expect(runName(bare)).toBe('run0aaaa');
  });

  it('plots by step, or by time when every point shares one step', () => {
    const byStep = historyPoints([[{ key: 'l', value: 1, step: 0, timestamp: 0 }, { key: 'l', value: 0.5, step: 1, timestamp: 5 }]]);
    expect(byStep).toEqual({ xLabel: 'step', points: [[{ x: 0, y: 1 }, { x: 1, y: 0.5 }]] });
    const byTime = historyPoints([
      [
        { key: 'l', value: 1, step: 0, timestamp: 1000 },
        { key: 'l', value: '0.5', step: 0, timestamp: 3000 },
      ],
    ]);
    expect(byTime).toEqual({ xLabel: 'seconds', points: [[{ x: 0, y: 1 }, { x: 2, y: 0.5 }]] });
  });
});
