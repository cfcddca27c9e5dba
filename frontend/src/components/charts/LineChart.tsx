import { formatMetric } from '../../lib/format';
import { linear, niceTicks } from './scale';

export interface LinePoint {
  x: number;
  y: number;
}

export interface LineSeries {
  id: string;
  label: string;
  color: string;
  points: LinePoint[];
}

const W = 720;
const H = 300;
const M = { top: 12, right: 16, bottom: 36, left: 60 };

/** A line chart with axes and a legend; one line per series. */
export function LineChart({
  series,
  xLabel,
  yLabel,
  title,
}: {
  series: LineSeries[];
  xLabel: string;
  yLabel: string;
  title: string;
}) {
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const xs = all.map((p) => p.x);
  const ys = all.map((p) => p.y);
  const xTicks = niceTicks(Math.min(...xs), Math.max(...xs), 6);
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const xDomain: [number, number] = [xTicks[0] ?? 0, xTicks[xTicks.length - 1] ?? 1];
  const yDomain: [number, number] = [yTicks[0] ?? 0, yTicks[yTicks.length - 1] ?? 1];
  const x = linear(xDomain, [M.left, W - M.right]);
  const y = linear(yDomain, [H - M.bottom, M.top]);
  const showDots = all.length <= 300;

  return (
    <figure className="linechart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={title} className="linechart-svg">
        <g className="axis">
          {yTicks.map((t) => (
            <g key={`y${t}`}>
              <line x1={M.left} x2={W - M.right} y1={y(t)} y2={y(t)} className="grid" />
              <text x={M.left - 8} y={y(t)} textAnchor="end" dominantBaseline="middle">
                {formatMetric(t)}
              </text>
            </g>
          ))}
          {xTicks.map((t) => (
            <text key={`x${t}`} x={x(t)} y={H - M.bottom + 16} textAnchor="middle">
              {formatMetric(t)}
            </text>
          ))}
          <line x1={M.left} x2={W - M.right} y1={H - M.bottom} y2={H - M.bottom} className="axis-line" />
          <text x={(M.left + W - M.right) / 2} y={H - 4} textAnchor="middle" className="axis-label">
            {xLabel}
          </text>
          <text
            transform={`translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)`}
            textAnchor="middle"
            className="axis-label"
          >
            {yLabel}
          </text>
        </g>
        {series.map((s) => {
          const pts = [...s.points].filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x);
          if (pts.length === 0) return null;
          const d = `M${pts.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(' L')}`;
          return (
            <g key={s.id} data-series={s.id}>
              <path d={d} fill="none" stroke={s.color} strokeWidth={2} strokeLinejoin="round" />
              {showDots || pts.length === 1
                ? pts.map((p, i) => (
                    <circle key={i} cx={x(p.x)} cy={y(p.y)} r={2.5} fill={s.color}>
                      <title>{`${s.label}: ${xLabel} ${formatMetric(p.x)}, ${formatMetric(p.y)}`}</title>
                    </circle>
                  ))
                : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <ul className="legend" aria-label="Legend">
          {series.map((s) => (
            <li key={s.id}>
              <span className="legend-swatch" style={{ background: s.color }} aria-hidden="true" />
              {s.label}
              <span className="legend-count">
                {s.points.length} point{s.points.length === 1 ? '' : 's'}
              </span>
            </li>
          ))}
        </ul>
      </figcaption>
    </figure>
  );
}
