import type { ReactNode } from 'react';
import type { ProxyStats } from '../api/types';
import { formatCount, formatMs } from '../lib/format';
import { summarizeStats } from '../lib/stats';
import { Sparkline } from './charts/Sparkline';

function Tile({ label, value, detail, chart }: { label: string; value: ReactNode; detail?: ReactNode; chart: ReactNode }) {
  return (
    <div className="tile">
      <div className="tile-label">{label}</div>
      <div className="tile-value">{value}</div>
      {detail ? <div className="tile-detail">{detail}</div> : null}
      <div className="tile-chart">{chart}</div>
    </div>
  );
}

/** Request rate, errors and latency over the stats window, each with a small chart. */
export function TrafficPanel({ stats }: { stats: ProxyStats }) {
  const s = summarizeStats(stats);
  const w = `${s.windowSeconds} s`;
  return (
    <div>
      <div className="tiles">
        <Tile
          label="Request rate"
          value={`${s.ratePerSec.toFixed(s.ratePerSec < 10 ? 2 : 1)} req/s`}
          detail={`${formatCount(s.requestsInWindow)} in the last ${w}`}
          chart={
            <Sparkline
              label={`Requests per second over the last ${w}`}
              series={[{ label: 'requests', values: s.requests, color: '#2563eb', area: true }]}
            />
          }
        />
        <Tile
          label="Errors"
          value={s.errorPct === null ? '—' : `${s.errorPct.toFixed(1)} %`}
          detail={`${formatCount(s.errorsInWindow)} in the last ${w}`}
          chart={
            <Sparkline
              label={`Errors per second over the last ${w}`}
              series={[{ label: 'errors', values: s.errors, color: '#dc2626', area: true }]}
            />
          }
        />
        <Tile
          label="Latency"
          value={
            <span>
              {formatMs(s.p50Ms)} <span className="tile-unit">p50</span>
            </span>
          }
          detail={
            <>
              <span>{formatMs(s.p99Ms)} p99</span>
              <span className="legend-inline">
                <span className="legend-swatch" style={{ background: '#17a398' }} aria-hidden="true" /> p50
                <span className="legend-swatch" style={{ background: '#f59e0b' }} aria-hidden="true" /> p99
              </span>
            </>
          }
          chart={
            <Sparkline
              label={`Latency p50 and p99 in milliseconds over the last ${w}`}
              series={[
                { label: 'p99', values: s.p99, color: '#f59e0b' },
                { label: 'p50', values: s.p50, color: '#17a398', area: true },
              ]}
            />
          }
        />
        <div className="tile tile-totals">
          <div className="tile-label">Since start</div>
          <dl className="totals">
            <div>
              <dt>Requests</dt>
              <dd>{formatCount(stats.requests_total)}</dd>
            </div>
            <div>
              <dt>Errors</dt>
              <dd>{formatCount(stats.errors_total)}</dd>
            </div>
            <div>
              <dt>In flight</dt>
              <dd>{formatCount(stats.in_flight)}</dd>
            </div>
          </dl>
        </div>
      </div>
      {stats.series.length === 0 ? <p className="muted small">No requests in the last {w}.</p> : null}
    </div>
  );
}
