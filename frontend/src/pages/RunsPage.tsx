import { useState, type FormEvent } from 'react';
import { Link, useParams } from 'react-router';
import { useExperiment, useRuns } from '../api/hooks';
import type { Run } from '../api/types';
import { Badge, type Tone } from '../components/Badge';
import { Card } from '../components/Card';
import { MetricHistoryPanel } from '../components/MetricHistoryPanel';
import { PageHeader } from '../components/PageHeader';
import { Pager, usePageTokens } from '../components/Pager';
import { QueryState } from '../components/QueryState';
import { uiPageLink } from '../lib/deeplink';
import { formatDateTime, formatDuration, formatMetric } from '../lib/format';
import { columnKeys, metricValue, paramValue, runDurationSeconds, runId, runName } from '../lib/runs';

const ORDER_OPTIONS = [
  { value: 'attributes.start_time DESC', label: 'Newest first' },
  { value: 'attributes.start_time ASC', label: 'Oldest first' },
  { value: 'attributes.run_name ASC', label: 'Name A–Z' },
];

const STATUS_TONES: Record<string, Tone> = {
  FINISHED: 'ok',
  RUNNING: 'info',
  SCHEDULED: 'neutral',
  FAILED: 'error',
  KILLED: 'warn',
};

export const RUNS_PAGE_SIZE = 100;

function RunsTable({
  runs,
  experimentId,
  selected,
  onToggle,
  onToggleAll,
}: {
  runs: Run[];
  experimentId: string;
  selected: Set<string>;
  onToggle: (id: string) => void;
  onToggleAll: (all: boolean) => void;
}) {
  const { params, metrics } = columnKeys(runs);
  const allSelected = runs.length > 0 && runs.every((r) => selected.has(runId(r)));
  return (
    <div className="table-wrap">
      <table className="table table-runs">
        <thead>
          <tr>
            <th scope="col" className="col-check">
              <input
                type="checkbox"
                aria-label="Select all runs"
                checked={allSelected}
                onChange={(e) => onToggleAll(e.target.checked)}
              />
            </th>
            <th scope="col">Run</th>
            <th scope="col">Status</th>
            <th scope="col">Started</th>
            <th scope="col">Duration</th>
            {metrics.map((k) => (
              <th scope="col" key={`m-${k}`} className="col-metric num" title={`metric ${k} (latest)`}>
                <span className="col-kind">metric</span> {k}
              </th>
            ))}
            {params.map((k) => (
              <th scope="col" key={`p-${k}`} className="col-param" title={`param ${k}`}>
                <span className="col-kind">param</span> {k}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {runs.map((r) => {
            const id = runId(r);
            const name = runName(r);
            const duration = runDurationSeconds(r);
            const isSelected = selected.has(id);
            return (
              <tr key={id} className={isSelected ? 'row-selected' : undefined} aria-selected={isSelected}>
                <td className="col-check">
                  <input
                    type="checkbox"
                    aria-label={`Select run ${name}`}
                    checked={isSelected}
                    onChange={() => onToggle(id)}
                  />
                </td>
                <td className="nowrap">
                  <Link to={uiPageLink(`#/experiments/${experimentId}/runs/${id}`)} className="strong-link" title={id}>
                    {name}
                  </Link>
                </td>
                <td>
                  <Badge tone={STATUS_TONES[r.info.status ?? ''] ?? 'neutral'}>{(r.info.status ?? '?').toLowerCase()}</Badge>
                </td>
                <td className="nowrap">{formatDateTime(r.info.start_time)}</td>
                <td className="nowrap">{duration === undefined ? '—' : formatDuration(duration)}</td>
                {metrics.map((k) => (
                  <td key={`m-${k}`} className="mono num">
                    {formatMetric(metricValue(r, k))}
                  </td>
                ))}
                {params.map((k) => (
                  <td key={`p-${k}`} className="mono">
                    {paramValue(r, k) ?? ''}
                  </td>
                ))}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

export function RunsPage() {
  const { experimentId = '' } = useParams();
  const experiment = useExperiment(experimentId);
  const [filterInput, setFilterInput] = useState('');
  const [filter, setFilter] = useState('');
  const [orderBy, setOrderBy] = useState(ORDER_OPTIONS[0]?.value ?? 'attributes.start_time DESC');
  const [selected, setSelected] = useState<Set<string>>(() => new Set());
  const pages = usePageTokens();
  const query = useRuns({
    experiment_ids: [experimentId],
    filter,
    max_results: RUNS_PAGE_SIZE,
    order_by: [orderBy],
    page_token: pages.pageToken,
  });

  const runs = query.data?.runs ?? [];
  const nextToken = query.data?.next_page_token;
  const selectedRuns = runs.filter((r) => selected.has(runId(r)));

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    setFilter(filterInput.trim());
    pages.reset();
  }

  function toggle(id: string) {
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  }

  const title = experiment.data?.name ?? `Experiment ${experimentId}`;

  return (
    <>
      <PageHeader
        documentTitle={`Runs of ${title}`}
        title={
          <>
            <Link to="/experiments" className="crumb">
              Experiments
            </Link>{' '}
            <span aria-hidden="true" className="crumb-sep">
              /
            </span>{' '}
            {title}
          </>
        }
        subtitle={
          <>
            Runs of experiment <code className="mono">{experimentId}</code>
            {experiment.data?.lifecycle_stage === 'deleted' ? (
              <>
                {' '}
                <Badge tone="warn">deleted</Badge>
              </>
            ) : null}
          </>
        }
        actions={
          <Link className="btn btn-secondary" to={uiPageLink(`#/experiments/${experimentId}`)}>
            Open in MLflow UI
          </Link>
        }
      />
      <Card title="Runs" actions={query.isFetching && !query.isPending ? <span className="muted small">Refreshing…</span> : null}>
        <form className="toolbar" onSubmit={onSubmit} role="search" aria-label="Filter runs">
          <div className="field field-grow">
            <label htmlFor="runs-filter">Filter</label>
            <input
              id="runs-filter"
              className="input mono"
              type="text"
              value={filterInput}
              onChange={(e) => setFilterInput(e.target.value)}
              placeholder="metrics.rmse < 1 and params.model = 'tree'"
              spellCheck={false}
              aria-describedby="runs-filter-help"
            />
            <span id="runs-filter-help" className="help">
              MLflow search syntax, e.g. <code>attributes.status = 'FINISHED'</code>
            </span>
          </div>
          <div className="field">
            <label htmlFor="runs-order">Order</label>
            <select
              id="runs-order"
              className="input"
              value={orderBy}
              onChange={(e) => {
                setOrderBy(e.target.value);
                pages.reset();
              }}
            >
              {ORDER_OPTIONS.map((o) => (
                <option key={o.value} value={o.value}>
                  {o.label}
                </option>
              ))}
            </select>
          </div>
          <button type="submit" className="btn btn-primary">
            Apply
          </button>
        </form>
        <QueryState
          query={query}
          loading="Loading runs…"
          errorTitle="Could not search runs"
          retry
          isEmpty={(d) => !d.runs?.length}
          emptyTitle={filter ? 'No runs match the filter' : 'This experiment has no runs yet'}
        >
          {() => (
            <>
              <p className="muted small" aria-live="polite">
                {runs.length} run{runs.length === 1 ? '' : 's'} shown, {selectedRuns.length} selected
              </p>
              <RunsTable
                runs={runs}
                experimentId={experimentId}
                selected={selected}
                onToggle={toggle}
                onToggleAll={(all) => setSelected(all ? new Set(runs.map(runId)) : new Set())}
              />
            </>
          )}
        </QueryState>
        <Pager
          label="Run pages"
          page={pages.page}
          hasNext={!!nextToken}
          onPrev={pages.prev}
          onNext={() => nextToken && pages.next(nextToken)}
        />
      </Card>
      <Card title="Metric history">
        <MetricHistoryPanel runs={selectedRuns} />
      </Card>
    </>
  );
}
