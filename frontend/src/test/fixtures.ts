import type { Experiment, ModelVersion, ProxyStats, ProxyStatus, RegisteredModel, Run } from '../api/types';

export const T0 = 1763791200; // 2025-11-22T06:00:00Z

export function statusFixture(over: Partial<ProxyStatus> = {}): ProxyStatus {
  return {
    version: '0.1.0',
    mode: 'tracking-server',
    upstream_url: 'https://t-abc.us-west-2.experiments.sagemaker.aws',
    arn: 'arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/team',
    region: 'us-west-2',
    signing: 'sigv4',
    signing_service: 'sagemaker-mlflow',
    ui_auth: 'presigned-session',
    ready: true,
    ready_reason: null,
    credentials: {
      source: 'assume-role',
      expires_at: new Date(Date.now() + 3600_000).toISOString(),
      refreshes: 2,
      last_error: null,
    },
    ui_session: {
      state: 'active',
      expires_at: new Date(Date.now() + 120_000).toISOString(),
      renewals: 1,
      last_error: null,
    },
    artifact_store: {
      store: 's3://team-artifacts/mlflow',
      state: 'reachable',
      checked_at: '2025-11-22T06:00:00Z',
      message: 's3://team-artifacts/mlflow is listable',
      last_error: null,
      last_error_at: null,
    },
    frame_ancestors: ["'self'", 'https://portal.example.com'],
    cors_allowed_origins: [],
    started_at: '2025-11-22T05:00:00Z',
    uptime_seconds: 3725,
    ...over,
  };
}

export function statsFixture(over: Partial<ProxyStats> = {}): ProxyStats {
  return {
    requests_total: 12345,
    errors_total: 67,
    in_flight: 3,
    window_seconds: 60,
    series: [
      { t: T0 - 2, requests: 30, errors: 0, p50_ms: 2, p99_ms: 10 },
      { t: T0 - 1, requests: 20, errors: 3, p50_ms: 3, p99_ms: 25 },
      { t: T0, requests: 10, errors: 0, p50_ms: 1.5, p99_ms: 8.4 },
    ],
    ...over,
  };
}

export const experimentsFixture: Experiment[] = [
  { experiment_id: '0', name: 'Default', lifecycle_stage: 'active', last_update_time: 1763700000000 },
  { experiment_id: '7', name: 'churn-model', lifecycle_stage: 'active', last_update_time: '1763790000000' },
  { experiment_id: '9', name: 'old-baseline', lifecycle_stage: 'deleted', last_update_time: 1763000000000 },
];

export function runFixture(i: number, over: Partial<Run['info']> = {}): Run {
  return {
    info: {
      run_id: `run${i}aaaaaaaaaaaaaaaaaaaaaaaaaaaaa`,
      run_name: ['bold-owl', 'calm-fox', 'swift-elk'][i] ?? `run-${i}`,
      experiment_id: '7',
      status: 'FINISHED',
      start_time: 1763790000000 + i * 1000,
      end_time: 1763790000000 + i * 1000 + 90_000,
      lifecycle_stage: 'active',
      ...over,
    },
    data: {
      params: [
        { key: 'lr', value: String(0.1 / (i + 1)) },
        ...(i === 0 ? [{ key: 'depth', value: '4' }] : []),
      ],
      metrics: [
        { key: 'rmse', value: 0.5 + i / 10, step: 10, timestamp: 1763790100000 },
        ...(i === 1 ? [{ key: 'auc', value: 0.91234567, step: 10, timestamp: 1763790100000 }] : []),
      ],
      tags: [],
    },
  };
}

export const modelsFixture: RegisteredModel[] = [
  {
    name: 'churn-classifier',
    last_updated_timestamp: 1763790000000,
    description: 'Predicts churn.',
    latest_versions: [{ name: 'churn-classifier', version: '3', current_stage: 'None' }],
    aliases: [{ alias: 'champion', version: '3' }],
  },
  { name: 'fraud-xgb', latest_versions: [{ name: 'fraud-xgb', version: '1', current_stage: 'Production' }] },
];

export const versionsFixture: ModelVersion[] = [
  { name: 'churn-classifier', version: '1', status: 'READY', run_id: 'r1r1r1r1r1r1r1r1', current_stage: 'None' },
  { name: 'churn-classifier', version: '3', status: 'READY', run_id: 'r3r3r3r3r3r3r3r3', current_stage: 'None', aliases: ['champion'] },
  { name: 'churn-classifier', version: '2', status: 'READY', run_id: 'r2r2r2r2r2r2r2r2', current_stage: 'Staging' },
];
