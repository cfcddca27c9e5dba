import type { Metric, Run } from '../api/types';
import { toNumber } from './format';

export function runName(run: Run): string {
  return (
    run.info.run_name ||
    run.data?.tags?.find((t) => t.key === 'mlflow.runName')?.value ||
    run.info.run_id.slice(0, 8)
  );
}

export function runId(run: Run): string {
  return run.info.run_id || run.info.run_uuid || '';
}

/** Sorted union of param keys and metric keys over the runs. */
export function columnKeys(runs: Run[]): { params: string[]; metrics: string[] } {
  const params = new Set<string>();
  const metrics = new Set<string>();
  for (const r of runs) {
    r.data?.params?.forEach((p) => params.add(p.key));
    r.data?.metrics?.forEach((m) => metrics.add(m.key));
  }
  return { params: [...params].sort(), metrics: [...metrics].sort() };
}

export function paramValue(run: Run, key: string): string | undefined {
  return run.data?.params?.find((p) => p.key === key)?.value;
}

/** The latest value MLflow reports for a metric (runs/search returns latest values). */
export function metricValue(run: Run, key: string): number | string | undefined {
  return run.data?.metrics?.find((m) => m.key === key)?.value;
}

/** Run duration in seconds, or undefined while running / unknown. */
export function runDurationSeconds(run: Run): number | undefined {
  const start = toNumber(run.info.start_time);
  const end = toNumber(run.info.end_time);
  if (start === undefined || end === undefined || end < start) return undefined;
  return (end - start) / 1000;
}

export interface XY {
  x: number;
  y: number;
}

/**
 * Points for a metric history chart. Uses the step as x; if every point of
 * every series shares one step (metrics logged without steps), uses seconds
 * since the first timestamp instead.
 */
export function historyPoints(histories: Metric[][]): { xLabel: string; points: XY[][] } {
  const steps = new Set<number>();
  let multi = false;
  for (const h of histories) {
    if (h.length > 1) multi = true;
    for (const m of h) steps.add(toNumber(m.step) ?? 0);
  }
  const useTime = multi && steps.size === 1;
  const t0 = Math.min(
    ...histories.flatMap((h) => h.map((m) => toNumber(m.timestamp) ?? 0)),
  );
  const points = histories.map((h) =>
    h
      .map((m) => ({
        x: useTime ? ((toNumber(m.timestamp) ?? 0) - t0) / 1000 : (toNumber(m.step) ?? 0),
        y: toNumber(m.value) ?? Number.NaN,
      }))
      .filter((p) => Number.isFinite(p.y)),
  );
  return { xLabel: useTime ? 'seconds' : 'step', points };
}
