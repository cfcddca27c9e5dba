// TanStack Query hooks over the API client. Components use these, never fetch.
import {
  keepPreviousData,
  useMutation,
  useQueries,
  useQuery,
  useQueryClient,
} from '@tanstack/react-query';
import type { SearchExperimentsParams, SearchRegisteredModelsParams } from './client';
import { useApiClient } from './context';
import type { Metric, RawRequest, SearchRunsRequest } from './types';

export const STATUS_POLL_MS = 5_000;
export const STATS_POLL_MS = 3_000;

export const queryKeys = {
  status: ['proxy', 'status'] as const,
  identity: ['proxy', 'identity'] as const,
  stats: ['proxy', 'stats'] as const,
  experiments: ['experiments'] as const,
  experimentSearch: (p: SearchExperimentsParams) => ['experiments', 'search', p] as const,
  experiment: (id: string) => ['experiments', 'get', id] as const,
  runs: (req: SearchRunsRequest) => ['runs', 'search', req] as const,
  metricHistory: (runId: string, key: string) => ['runs', 'metric-history', runId, key] as const,
  models: (p: SearchRegisteredModelsParams) => ['models', 'search', p] as const,
  model: (name: string) => ['models', 'get', name] as const,
  modelVersions: (name: string) => ['models', 'versions', name] as const,
};

// ---------------------------------------------------------------- proxy

export function useProxyStatus() {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.status,
    queryFn: ({ signal }) => client.getStatus({ signal }),
    refetchInterval: STATUS_POLL_MS,
  });
}

export function useProxyIdentity() {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.identity,
    queryFn: ({ signal }) => client.getIdentity({ signal }),
    refetchInterval: 60_000,
    staleTime: 30_000,
  });
}

export function useProxyStats() {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.stats,
    queryFn: ({ signal }) => client.getStats({ signal }),
    refetchInterval: STATS_POLL_MS,
  });
}

// ---------------------------------------------------------------- experiments

export function useExperiments(params: SearchExperimentsParams) {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.experimentSearch(params),
    queryFn: ({ signal }) => client.searchExperiments(params, { signal }),
    placeholderData: keepPreviousData,
  });
}

export function useExperiment(id: string) {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.experiment(id),
    queryFn: ({ signal }) => client.getExperiment(id, { signal }),
    enabled: id !== '',
  });
}

function useExperimentMutation<V, R>(fn: (v: V) => Promise<R>) {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: fn,
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.experiments }),
  });
}

export function useCreateExperiment() {
  const client = useApiClient();
  return useExperimentMutation((name: string) => client.createExperiment(name));
}

export function useRenameExperiment() {
  const client = useApiClient();
  return useExperimentMutation((v: { id: string; newName: string }) => client.renameExperiment(v.id, v.newName));
}

export function useDeleteExperiment() {
  const client = useApiClient();
  return useExperimentMutation((id: string) => client.deleteExperiment(id));
}

export function useRestoreExperiment() {
  const client = useApiClient();
  return useExperimentMutation((id: string) => client.restoreExperiment(id));
}

// ---------------------------------------------------------------- runs

export function useRuns(req: SearchRunsRequest) {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.runs(req),
    queryFn: ({ signal }) => client.searchRuns(req, { signal }),
    placeholderData: keepPreviousData,
  });
}

export interface RunMetricHistory {
  runId: string;
  metrics: Metric[] | undefined;
  isLoading: boolean;
  error: Error | null;
}

/** One get-history request per selected run for the chosen metric key. */
export function useMetricHistories(runIds: string[], metricKey: string): RunMetricHistory[] {
  const client = useApiClient();
  const results = useQueries({
    queries: runIds.map((runId) => ({
      queryKey: queryKeys.metricHistory(runId, metricKey),
      queryFn: ({ signal }: { signal: AbortSignal }) => client.getMetricHistory(runId, metricKey, { signal }),
      enabled: metricKey !== '',
      staleTime: 15_000,
    })),
  });
  return results.map((r, i) => ({
    runId: runIds[i] ?? '',
    metrics: r.data,
    isLoading: r.isLoading,
    error: r.error,
  }));
}

// ---------------------------------------------------------------- models

export function useRegisteredModels(params: SearchRegisteredModelsParams) {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.models(params),
    queryFn: ({ signal }) => client.searchRegisteredModels(params, { signal }),
    placeholderData: keepPreviousData,
  });
}

export function useRegisteredModel(name: string | null) {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.model(name ?? ''),
    queryFn: ({ signal }) => client.getRegisteredModel(name ?? '', { signal }),
    enabled: !!name,
  });
}

export function useModelVersions(name: string | null) {
  const client = useApiClient();
  return useQuery({
    queryKey: queryKeys.modelVersions(name ?? ''),
    queryFn: ({ signal }) => client.searchModelVersions(name ?? '', { signal }),
    enabled: !!name,
  });
}

// ---------------------------------------------------------------- console

export function useRawRequest() {
  const client = useApiClient();
  return useMutation({ mutationFn: (req: RawRequest) => client.raw(req) });
}
