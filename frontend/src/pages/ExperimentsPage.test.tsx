import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { SearchExperimentsParams } from '../api/client';
import { experimentsFixture } from '../test/fixtures';
import { mockClient, renderApp } from '../test/render';

function experimentsClient(over: Parameters<typeof mockClient>[0] = {}) {
  return mockClient({
    searchExperiments: (p: SearchExperimentsParams) =>
      Promise.resolve({
        experiments: experimentsFixture.filter((e) =>
          p.viewType === 'ALL' ? true : p.viewType === 'DELETED_ONLY' ? e.lifecycle_stage === 'deleted' : e.lifecycle_stage !== 'deleted',
        ),
      }),
    ...over,
  });
}

function row(name: string): HTMLElement {
  const r = screen.getByRole('link', { name }).closest('tr');
  if (!r) throw new Error(`no row ${name}`);
  return r;
}

describe('ExperimentsPage', () => {
  it('lists active experiments with links to their runs', async () => {
    const client = experimentsClient();
    renderApp('/experiments', client);
    expect(await screen.findByRole('link', { name: 'churn-model' })).toHaveAttribute('href', '/experiments/7/runs');
    expect(screen.getByRole('link', { name: 'Default' })).toHaveAttribute('href', '/experiments/0/runs');
    expect(screen.queryByText('old-baseline')).not.toBeInTheDocument();
    expect(client.searchExperiments).toHaveBeenCalledWith(
      { filter: undefined, viewType: 'ACTIVE_ONLY', maxResults: 50, pageToken: undefined },
      expect.anything(),
    );
  });

  it('searches by name and view type', async () => {
    const user = userEvent.setup();
    const client = experimentsClient();
    renderApp('/experiments', client);
    await screen.findByRole('link', { name: 'churn-model' });

    await user.type(screen.getByLabelText('Name contains'), 'churn');
    await user.click(screen.getByRole('button', { name: 'Search' }));
    await waitFor(() =>
      expect(client.searchExperiments).toHaveBeenLastCalledWith(
        expect.objectContaining({ filter: "name ILIKE '%churn%'", viewType: 'ACTIVE_ONLY' }),
        expect.anything(),
      ),
    );

    await user.selectOptions(screen.getByLabelText('Show'), 'Deleted');
    await waitFor(() =>
      expect(client.searchExperiments).toHaveBeenLastCalledWith(
        expect.objectContaining({ filter: "name ILIKE '%churn%'", viewType: 'DELETED_ONLY' }),
        expect.anything(),
      ),
    );
  });

  it('shows deleted experiments with a Restore button that restores them', async () => {
    const user = userEvent.setup();
    const client = experimentsClient({ restoreExperiment: () => Promise.resolve() });
    renderApp('/experiments', client);
    await screen.findByRole('link', { name: 'churn-model' });
    await user.selectOptions(screen.getByLabelText('Show'), 'All');
    const deleted = await screen.findByRole('link', { name: 'old-baseline' });
    const r = deleted.closest('tr') as HTMLElement;
    expect(within(r).getByText('deleted')).toBeInTheDocument();
    expect(within(r).queryByRole('button', { name: /Delete/ })).not.toBeInTheDocument();
    const calls = client.searchExperiments.mock.calls.length;
    await user.click(within(r).getByRole('button', { name: 'Restore old-baseline' }));
    expect(client.restoreExperiment).toHaveBeenCalledWith('9');
    // The list is refreshed after a change.
    await waitFor(() => expect(client.searchExperiments.mock.calls.length).toBeGreaterThan(calls));
  });

  it('creates an experiment and links to it', async () => {
    const user = userEvent.setup();
    const client = experimentsClient({ createExperiment: () => Promise.resolve({ experiment_id: '42' }) });
    renderApp('/experiments', client);
    await screen.findByRole('link', { name: 'churn-model' });
    const calls = client.searchExperiments.mock.calls.length;
    await user.type(screen.getByLabelText('Name', { selector: '#new-experiment-name' }), '  new-exp ');
    await user.click(screen.getByRole('button', { name: 'Create' }));
    expect(client.createExperiment).toHaveBeenCalledWith('new-exp');
    const status = await screen.findByText(/Created/);
    expect(status).toHaveTextContent('Created new-exp (ID 42).');
    expect(within(status).getByRole('link', { name: 'Open its runs' })).toHaveAttribute('href', '/experiments/42/runs');
    expect(screen.getByLabelText('Name', { selector: '#new-experiment-name' })).toHaveValue('');
    await waitFor(() => expect(client.searchExperiments.mock.calls.length).toBeGreaterThan(calls));
  });

  it("shows the server's message when create fails", async () => {
    const user = userEvent.setup();
    const client = experimentsClient({
      createExperiment: () =>
        Promise.reject(
          new ApiError({
            message: "Experiment 'Default' already exists.",
            status: 400,
            errorCode: 'RESOURCE_ALREADY_EXISTS',
            method: 'POST',
            path: '/api/2.0/mlflow/experiments/create',
          }),
        ),
    });
    renderApp('/experiments', client);
    await screen.findByRole('link', { name: 'churn-model' });
    await user.type(screen.getByLabelText('Name', { selector: '#new-experiment-name' }), 'Default');
    await user.click(screen.getByRole('button', { name: 'Create' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not create the experiment');
    expect(alert).toHaveTextContent("Experiment 'Default' already exists.");
    expect(alert).toHaveTextContent('RESOURCE_ALREADY_EXISTS · HTTP 400');
  });

  it('renames an experiment inline', async () => {
    const user = userEvent.setup();
    const client = experimentsClient({ renameExperiment: () => Promise.resolve() });
    renderApp('/experiments', client);
    await screen.findByRole('link', { name: 'churn-model' });
    await user.click(within(row('churn-model')).getByRole('button', { name: 'Rename churn-model' }));
    const input = screen.getByLabelText('New name for churn-model');
    expect(input).toHaveFocus();
    await user.clear(input);
    await user.type(input, 'churn-v2{Enter}');
    expect(client.renameExperiment).toHaveBeenCalledWith('7', 'churn-v2');
    await waitFor(() => expect(screen.queryByLabelText('New name for churn-model')).not.toBeInTheDocument());
  });

  it('asks before deleting, then deletes', async () => {
    const user = userEvent.setup();
    const client = experimentsClient({ deleteExperiment: () => Promise.resolve() });
    renderApp('/experiments', client);
    await screen.findByRole('link', { name: 'churn-model' });
    await user.click(within(row('churn-model')).getByRole('button', { name: 'Delete churn-model' }));
    expect(client.deleteExperiment).not.toHaveBeenCalled();
    await user.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(client.deleteExperiment).not.toHaveBeenCalled();
    await user.click(within(row('churn-model')).getByRole('button', { name: 'Delete churn-model' }));
    await user.click(within(row('churn-model')).getByRole('button', { name: 'Confirm delete' }));
    expect(client.deleteExperiment).toHaveBeenCalledWith('7');
  });

  it('shows search errors and an empty state', async () => {
    const failing = mockClient({
      searchExperiments: () =>
        Promise.reject(new ApiError({ message: 'Invalid filter', status: 400, errorCode: 'INVALID_PARAMETER_VALUE', method: 'GET', path: '/x' })),
    });
    const { unmount } = renderApp('/experiments', failing);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not search experiments');
    expect(alert).toHaveTextContent('Invalid filter');
    unmount();

    renderApp('/experiments', mockClient({ searchExperiments: () => Promise.resolve({}) }));
    expect(await screen.findByText('No experiments match')).toBeInTheDocument();
  });

  it('pages with next_page_token', async () => {
    const user = userEvent.setup();
    const client = mockClient({
      searchExperiments: (p: SearchExperimentsParams) =>
        Promise.resolve(
          p.pageToken
            ? { experiments: [experimentsFixture[0]!] }
            : { experiments: [experimentsFixture[1]!], next_page_token: 'tok2' },
        ),
    });
    renderApp('/experiments', client);
    await screen.findByRole('link', { name: 'churn-model' });
    await user.click(screen.getByRole('button', { name: 'Next →' }));
    expect(await screen.findByRole('link', { name: 'Default' })).toBeInTheDocument();
    expect(client.searchExperiments).toHaveBeenLastCalledWith(expect.objectContaining({ pageToken: 'tok2' }), expect.anything());
    expect(screen.getByRole('button', { name: 'Next →' })).toBeDisabled();
    await user.click(screen.getByRole('button', { name: '← Previous' }));
    expect(await screen.findByRole('link', { name: 'churn-model' })).toBeInTheDocument();
  });
});
