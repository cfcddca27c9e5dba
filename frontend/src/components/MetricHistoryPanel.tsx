import { useId, useState } from 'react';
import { useMetricHistories } from '../api/hooks';
import type { Run } from '../api/types';
import { historyPoints, runId, runName } from '../lib/runs';
import { LineChart } from './charts/LineChart';
import { SERIES_COLORS } from './charts/scale';
import { EmptyState, ErrorMessage, Loading } from './States';

/** Metric history of the selected runs: one line per run for the chosen metric key. */
export function MetricHistoryPanel({ runs }: { runs: Run[] }) {
  const selectId = useId();
  const keys = [...new Set(runs.flatMap((r) => r.data?.metrics?.map((m) => m.key) ?? []))].sort();
  const [chosen, setChosen] = useState('');
  const metricKey = keys.includes(chosen) ? chosen : (keys[0] ?? '');
  const ids = runs.map(runId);
  const histories = useMetricHistories(ids, metricKey);

  if (runs.length === 0) {
    return <EmptyState title="No runs selected">Tick runs in the table to chart their metric history.</EmptyState>;
  }
  if (keys.length === 0) {
    return <EmptyState title="The selected runs have no metrics" />;
  }

  const loading = histories.some((h) => h.isLoading);
  const failed = histories.filter((h) => h.error);
  const { xLabel, points } = historyPoints(histories.map((h) => h.metrics ?? []));
  const series = runs.map((r, i) => ({
    id: runId(r),
    label: runName(r),
    color: SERIES_COLORS[i % SERIES_COLORS.length] ?? '#2563eb',
    points: points[i] ?? [],
  }));
  const hasPoints = series.some((s) => s.points.length > 0);

  return (
    <div className="history">
      <div className="toolbar">
        <div className="field">
          <label htmlFor={selectId}>Metric</label>
          <select id={selectId} className="input" value={metricKey} onChange={(e) => setChosen(e.target.value)}>
            {keys.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
        {loading ? <Loading label="Loading history…" /> : null}
      </div>
      {failed.map((h) => (
        <ErrorMessage
          key={h.runId}
          error={h.error}
          title={`Could not load ${metricKey} for run ${h.runId.slice(0, 8)}`}
          compact
        />
      ))}
      {hasPoints ? (
        <LineChart series={series} xLabel={xLabel} yLabel={metricKey} title={`${metricKey} by ${xLabel}, one line per run`} />
      ) : !loading && failed.length === 0 ? (
        <EmptyState title={`No history recorded for ${metricKey}`} />
      ) : null}
    </div>
  );
}
