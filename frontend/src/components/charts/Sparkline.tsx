import { linear, segments } from './scale';

export interface SparkSeries {
  label: string;
  values: (number | null)[];
  color: string;
  /** Fill the area under the line. */
  area?: boolean;
}

const W = 240;
const H = 56;
const PAD = 3;

/**
 * A small chart for the last N seconds: one or more lines sharing a y scale
 * that starts at 0. Gaps (null) break the line.
 */
export function Sparkline({ series, label, height = H }: { series: SparkSeries[]; label: string; height?: number }) {
  const n = Math.max(...series.map((s) => s.values.length), 0);
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v))));
  const x = linear([0, Math.max(1, n - 1)], [0, W]);
  const y = linear([0, max > 0 ? max : 1], [height - PAD, PAD]);
  return (
    <svg
      className="sparkline"
      viewBox={`0 0 ${W} ${height}`}
      preserveAspectRatio="none"
      role="img"
      aria-label={label}
      height={height}
    >
      <line x1={0} x2={W} y1={height - PAD} y2={height - PAD} className="sparkline-base" />
      {series.map((s) =>
        segments(s.values).map((seg, k) => {
          const pts = seg.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
          const first = seg[0];
          const last = seg[seg.length - 1];
          if (!first || !last) return null;
          const line = seg.length === 1 ? `M${pts[0]} h1` : `M${pts.join(' L')}`;
          const area = `M${x(first[0]).toFixed(1)},${height - PAD} L${pts.join(' L')} L${x(last[0]).toFixed(1)},${height - PAD} Z`;
          return (
            <g key={`${s.label}-${k}`} data-series={s.label}>
              {s.area ? <path d={area} fill={s.color} fillOpacity={0.15} stroke="none" /> : null}
              <path d={line} fill="none" stroke={s.color} strokeWidth={1.5} vectorEffect="non-scaling-stroke" />
            </g>
          );
        }),
      )}
    </svg>
  );
}
