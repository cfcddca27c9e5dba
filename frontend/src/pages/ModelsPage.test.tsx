import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { modelsFixture, versionsFixture } from '../test/fixtures';
import { mockClient, renderApp } from '../test/render';

function modelsClient(over: Parameters<typeof mockClient>[0] = {}) {
  return mockClient({
    searchRegisteredModels: () => Promise.resolve({ registered_models: modelsFixture }),
    getRegisteredModel: (name: string) => Promise.resolve(modelsFixture.find((m) => m.name === name) ?? { name }),
    searchModelVersions: () => Promise.resolve({ model_versions: versionsFixture }),
    ...over,
  });
}

describe('ModelsPage', () => {
  it('lists registered models with latest versions and aliases', async () => {
    renderApp('/models', modelsClient());
    const table = await screen.findByRole('table');
    const rows = within(table).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell')[0]?.textContent)).toEqual(['churn-classifier', 'fraud-xgb']);
    expect(within(rows[0]!).getByText('@champion → v3')).toBeInTheDocument();
    expect(within(rows[1]!).getByText('v1 · Production')).toBeInTheDocument();
    expect(screen.getByText('No model selected')).toBeInTheDocument();
  });

  it('searches by name', async () => {
    const user = userEvent.setup();
    const client = modelsClient();
    renderApp('/models', client);
    await screen.findByRole('table');
    await user.type(screen.getByLabelText('Name contains'), 'fraud');
    await user.click(screen.getByRole('button', { name: 'Search' }));
    await waitFor(() =>
      expect(client.searchRegisteredModels).toHaveBeenLastCalledWith(
        { filter: "name ILIKE '%fraud%'", maxResults: 50, pageToken: undefined },
        expect.anything(),
      ),
    );
  });

  it('shows the versions and aliases of the chosen model', async () => {
    const user = userEvent.setup();
    const client = modelsClient();
    renderApp('/models', client);
    await user.click(await screen.findByRole('button', { name: 'churn-classifier' }));
    expect(screen.getByTestId('location')).toHaveTextContent('/models?name=churn-classifier');
    expect(client.getRegisteredModel).toHaveBeenCalledWith('churn-classifier', expect.anything());
    expect(client.searchModelVersions).toHaveBeenCalledWith('churn-classifier', expect.anything());
    expect(await screen.findByText('Predicts churn.')).toBeInTheDocument();
    const versions = screen.getAllByRole('table')[1]!;
    const rows = within(versions).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell').slice(0, 3).map((c) => c.textContent))).toEqual([
      ['v3', '@champion', '—'],
      ['v2', '—', 'Staging'],
      ['v1', '—', '—'],
    ]);
    expect(within(rows[0]!).getByRole('link', { name: 'v3' })).toHaveAttribute(
      'href',
      `/ui?path=${encodeURIComponent('#/models/churn-classifier/versions/3')}`,
    );
  });

  it('opens a model from ?name= and shows errors readably', async () => {
    renderApp(
      '/models?name=ghost',
      modelsClient({
        getRegisteredModel: () =>
          Promise.reject(
            new ApiError({ message: 'Registered Model with name=ghost not found', status: 404, errorCode: 'RESOURCE_DOES_NOT_EXIST', method: 'GET', path: '/x' }),
          ),
        searchModelVersions: () => Promise.resolve({}),
      }),
    );
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not load the model');
    expect(alert).toHaveTextContent('Registered Model with name=ghost not found');
    expect(await screen.findByText('This model has no versions')).toBeInTheDocument();
  });

  it('shows an empty registry', async () => {
    renderApp('/models', modelsClient({ searchRegisteredModels: () => Promise.resolve({}) }));
    expect(await screen.findByText('No registered models yet')).toBeInTheDocument();
  });
});
