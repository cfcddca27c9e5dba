import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { LineChart } from './LineChart';
import { niceTicks, segments } from './scale';
import { Sparkline } from './Sparkline';

describe('chart helpers', () => {
  it('makes round ticks', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(3, 97, 5)).toEqual([0, 20, 40, 60, 80, 100]);
    const flat = niceTicks(5, 5, 5);
    expect(flat).toContain(5);
    expect(flat[0]).toBeLessThan(5);
    expect(flat[flat.length - 1]).toBeGreaterThan(5);
  });

  it('splits series at gaps', () => {
    expect(segments([1, null, 2, 3, null])).toEqual([[[0, 1]], [[2, 2], [3, 3]]]);
  });
});

describe('Sparkline', () => {
  it('draws one path per segment, plus an area when asked', () => {
    render(
      <Sparkline
        label="latency"
        series={[
          { label: 'p50', values: [1, 2, null, 4, 5], color: 'red', area: true },
          { label: 'p99', values: [3, 4, 5, 6, 7], color: 'blue' },
        ]}
      />,
    );
    const svg = screen.getByRole('img', { name: 'latency' });
    expect(svg.querySelectorAll('g[data-series="p50"]')).toHaveLength(2);
    expect(svg.querySelectorAll('g[data-series="p50"] path')).toHaveLength(4);
    expect(svg.querySelectorAll('g[data-series="p99"] path')).toHaveLength(1);
    // The top value reaches the top of the chart: y = padding (3).
    expect(svg.querySelector('g[data-series="p99"] path')?.getAttribute('d')).toMatch(/L240\.0,3\.0$/);
  });
});

describe('LineChart', () => {
  it('draws a line per series with a legend', () => {
    render(
      <LineChart
        title="loss by step"
        xLabel="step"
        yLabel="loss"
        series={[
          { id: 'a', label: 'run a', color: '#f00', points: [{ x: 0, y: 1 }, { x: 1, y: 0.5 }] },
          { id: 'b', label: 'run b', color: '#00f', points: [{ x: 0, y: 0.8 }] },
        ]}
      />,
    );
    const svg = screen.getByRole('img', { name: 'loss by step' });
    expect(svg.querySelectorAll('g[data-series] path')).toHaveLength(2);
    expect(svg.querySelectorAll('g[data-series="a"] circle')).toHaveLength(2);
    expect(within(svg).getByText('step')).toBeInTheDocument();
    expect(within(svg).getByText('loss')).toBeInTheDocument();
    const legend = screen.getByRole('list', { name: 'Legend' });
    expect(within(legend).getAllByRole('listitem').map((li) => li.textContent)).toEqual(['run a2 points', 'run b1 point']);
  });
});
