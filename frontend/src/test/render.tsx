import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render } from '@testing-library/react';
import { MemoryRouter, useLocation } from 'react-router';
import { vi, type Mock } from 'vitest';
import { AppRoutes } from '../App';
import type { ApiClient } from '../api/client';
import { ApiClientProvider } from '../api/context';
import { statsFixture, statusFixture } from './fixtures';

export type MockClient = { [K in keyof ApiClient]: Mock<ApiClient[K]> };

/** A client whose every method is a vi.fn; status/stats/identity succeed unless overridden. */
export function mockClient(over: Partial<{ [K in keyof ApiClient]: ApiClient[K] }> = {}): MockClient {
  const unmocked = (name: string) => () => Promise.reject(new Error(`${name} is not mocked`));
  const base: { [K in keyof ApiClient]: ApiClient[K] } = {
    getStatus: () => Promise.resolve(statusFixture()),
    getIdentity: () =>
      Promise.resolve({ account: '111122223333', arn: 'arn:aws:sts::111122223333:assumed-role/R/s', user_id: 'AROA:s' }),
    getStats: () => Promise.resolve(statsFixture()),
    searchExperiments: unmocked('searchExperiments'),
    getExperiment: unmocked('getExperiment'),
    createExperiment: unmocked('createExperiment'),
    renameExperiment: unmocked('renameExperiment'),
    deleteExperiment: unmocked('deleteExperiment'),
    restoreExperiment: unmocked('restoreExperiment'),
    searchRuns: unmocked('searchRuns'),
    getMetricHistory: unmocked('getMetricHistory'),
    searchRegisteredModels: unmocked('searchRegisteredModels'),
    getRegisteredModel: unmocked('getRegisteredModel'),
    searchModelVersions: unmocked('searchModelVersions'),
    raw: unmocked('raw'),
  };
  const merged = { ...base, ...over };
  return Object.fromEntries(Object.entries(merged).map(([k, fn]) => [k, vi.fn(fn)])) as unknown as MockClient;
}

function LocationProbe() {
  const loc = useLocation();
  return <output data-testid="location">{loc.pathname + loc.search}</output>;
}

/** Renders the whole app (layout + routes) at `route` with a mocked client. */
export function renderApp(route: string, client: MockClient = mockClient()) {
  const queryClient = new QueryClient({
    defaultOptions: { queries: { retry: false, gcTime: Infinity }, mutations: { retry: false } },
  });
  const utils = render(
    <ApiClientProvider client={client}>
      <QueryClientProvider client={queryClient}>
        <MemoryRouter initialEntries={[route]}>
          <AppRoutes />
          <LocationProbe />
        </MemoryRouter>
      </QueryClientProvider>
    </ApiClientProvider>,
  );
  return { ...utils, client, queryClient };
}
