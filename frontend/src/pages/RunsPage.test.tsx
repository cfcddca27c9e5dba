import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { Metric } from '../api/types';
import { experimentsFixture, runFixture } from '../test/fixtures';
import { mockClient, renderApp } from '../test/render';

const runs = [runFixture(0), runFixture(1), runFixture(2, { status: 'FAILED' })];

function history(runId: string, key: string): Promise<Metric[]> {
  const k = Number(runId[3]);
  return Promise.resolve([0, 1, 2].map((step) => ({ key, value: k + step / 10, step, timestamp: 1000 + step })));
}

function runsClient(over: Parameters<typeof mockClient>[0] = {}) {
  return mockClient({
    getExperiment: () => Promise.resolve(experimentsFixture[1]!),
    searchRuns: () => Promise.resolve({ runs }),
    getMetricHistory: history,
    ...over,
  });
}

describe('RunsPage', () => {
  it('shows the experiment and a table of runs with params and latest metrics', async () => {
    const client = runsClient();
    renderApp('/experiments/7/runs', client);
    expect(await screen.findByRole('heading', { name: /churn-model/ })).toBeInTheDocument();
    const table = await screen.findByRole('table');
    const headers = within(table).getAllByRole('columnheader').map((h) => h.textContent);
    expect(headers).toEqual(['', 'Run', 'Status', 'Started', 'Duration', 'metric auc', 'metric rmse', 'param depth', 'param lr']);
    const bodyRows = within(table).getAllByRole('row').slice(1);
    expect(bodyRows).toHaveLength(3);
    const cells = within(bodyRows[1]!).getAllByRole('cell').map((c) => c.textContent);
    expect(cells.slice(1)).toEqual(['calm-fox', 'finished', expect.any(String), '1m 30s', '0.9123', '0.6', '', '0.05']);
    expect(within(bodyRows[2]!).getByText('failed')).toBeInTheDocument();
    expect(client.searchRuns).toHaveBeenCalledWith(
      { experiment_ids: ['7'], filter: '', max_results: 100, order_by: ['attributes.start_time DESC'], page_token: undefined },
      expect.anything(),
    );
    expect(screen.getByRole('link', { name: 'calm-fox' })).toHaveAttribute(
      'href',
      `/ui?path=${encodeURIComponent('#/experiments/7/runs/run1aaaaaaaaaaaaaaaaaaaaaaaaaaaaa')}`,
    );
  });

  it('passes the filter string to runs/search', async () => {
    const user = userEvent.setup();
    const client = runsClient();
    renderApp('/experiments/7/runs', client);
    await screen.findByRole('table');
    await user.type(screen.getByLabelText('Filter'), "metrics.rmse < 0.6 and params.lr = '0.1'");
    await user.click(screen.getByRole('button', { name: 'Apply' }));
    await waitFor(() =>
      expect(client.searchRuns).toHaveBeenLastCalledWith(
        expect.objectContaining({ filter: "metrics.rmse < 0.6 and params.lr = '0.1'", experiment_ids: ['7'] }),
        expect.anything(),
      ),
    );
    await user.selectOptions(screen.getByLabelText('Order'), 'Oldest first');
    await waitFor(() =>
      expect(client.searchRuns).toHaveBeenLastCalledWith(
        expect.objectContaining({ order_by: ['attributes.start_time ASC'] }),
        expect.anything(),
      ),
    );
  });

  it("shows MLflow's message for a bad filter", async () => {
    renderApp(
      '/experiments/7/runs',
      runsClient({
        searchRuns: () =>
          Promise.reject(
            new ApiError({ message: "Invalid clause 'x'", status: 400, errorCode: 'INVALID_PARAMETER_VALUE', method: 'POST', path: '/r' }),
          ),
      }),
    );
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not search runs');
    expect(alert).toHaveTextContent("Invalid clause 'x'");
  });

  it('charts the metric history of the selected runs, one line per run', async () => {
    const user = userEvent.setup();
    const client = runsClient();
    renderApp('/experiments/7/runs', client);
    await screen.findByRole('table');
    expect(screen.getByText('No runs selected')).toBeInTheDocument();

    await user.click(screen.getByRole('checkbox', { name: 'Select run bold-owl' }));
    await user.click(screen.getByRole('checkbox', { name: 'Select run calm-fox' }));
    expect(screen.getByText('3 runs shown, 2 selected')).toBeInTheDocument();

    const select = screen.getByLabelText('Metric');
    expect(within(select).getAllByRole('option').map((o) => o.textContent)).toEqual(['auc', 'rmse']);
    const chart = await screen.findByRole('img', { name: 'auc by step, one line per run' });
    expect(client.getMetricHistory).toHaveBeenCalledWith('run0aaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'auc', expect.anything());
    expect(client.getMetricHistory).toHaveBeenCalledWith('run1aaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'auc', expect.anything());
    expect(chart.querySelectorAll('g[data-series] path')).toHaveLength(2);
    const legend = screen.getByRole('list', { name: 'Legend' });
    expect(within(legend).getAllByRole('listitem').map((li) => li.textContent)).toEqual(['bold-owl3 points', 'calm-fox3 points']);

    await user.selectOptions(select, 'rmse');
    expect(await screen.findByRole('img', { name: 'rmse by step, one line per run' })).toBeInTheDocument();
    expect(client.getMetricHistory).toHaveBeenCalledWith('run1aaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'rmse', expect.anything());
  });

  it('selects all runs and reports a history error per run', async () => {
    const user = userEvent.setup();
    const client = runsClient({
      getMetricHistory: (runId: string, key: string) =>
        runId.startsWith('run2')
          ? Promise.reject(new ApiError({ message: 'Run not found', status: 404, method: 'GET', path: '/h' }))
          : history(runId, key),
    });
    renderApp('/experiments/7/runs', client);
    await screen.findByRole('table');
    await user.click(screen.getByRole('checkbox', { name: 'Select all runs' }));
    expect(screen.getAllByRole('checkbox', { checked: true })).toHaveLength(4);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load auc for run run2aaaa');
    expect(alert).toHaveTextContent('Run not found');
    expect(screen.getByRole('img', { name: /auc by step/ })).toBeInTheDocument();
  });

  it('shows an empty state when the experiment has no runs', async () => {
    renderApp('/experiments/7/runs', runsClient({ searchRuns: () => Promise.resolve({}) }));
    expect(await screen.findByText('This experiment has no runs yet')).toBeInTheDocument();
  });
});
