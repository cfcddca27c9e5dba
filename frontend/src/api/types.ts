// Types for the proxy's own endpoints and the subset of the MLflow REST API 2.0
// the dashboard uses. MLflow serialises int64 fields as JSON numbers, but some
// servers send them as strings, so those fields accept both.

export type Int64 = number | string;

// ---------------------------------------------------------------- proxy

// These mirror, field for field, what the server sends: `/api/proxy/status` is built by `status()`
// in the server's ops module, `/api/proxy/stats` by `Stats::snapshot()`, `/api/proxy/identity` is
// `CallerIdentity`. Rust `Option`s arrive as null, never as a missing key. `schemas.ts` checks every
// answer against these types at run time, and its tests feed it answers captured from the binary.

export type ProxyMode = 'tracking-server' | 'app' | 'self-hosted';
export type UiSessionState = 'none' | 'active' | 'expired' | 'failed';

export interface ProxyCredentials {
  /** `default-chain`, `assume-role` or `assume-role-per-user`. */
  source: string;
  /** RFC 3339; null for long-lived credentials. */
  expires_at: string | null;
  /** Successful credential loads so far. */
  refreshes: number;
  /** The last failed refresh, cleared by the next success. */
  last_error: string | null;
}

export interface ProxyUiSession {
  state: UiSessionState;
  /** RFC 3339, whole seconds. */
  expires_at: string | null;
  /** Sessions established so far (sent only with `ui_auth: presigned-session`). */
  renewals?: number;
  /** Why the last session attempt failed (sent only with `ui_auth: presigned-session`). */
  last_error?: string | null;
}

/**
 * The artifact store as the artifact gateway last found it: `undiscovered` (SageMaker has not said where
 * it is yet), `unchecked`, `reachable` (the proxy's credentials can list it) or `unreachable`.
 */
export type ArtifactStoreState = 'undiscovered' | 'unchecked' | 'reachable' | 'unreachable';

export interface ProxyArtifactStore {
  /** `s3://bucket/prefix`; null until discovered. */
  store: string | null;
  state: ArtifactStoreState;
  /** RFC 3339, whole seconds: the last check (they repeat every minute). */
  checked_at: string | null;
  /** What the last check found, in words (names the missing permission when listing was refused). */
  message: string;
  /** The last failure that was the store's or the proxy's permissions' (a check's or an artifact request's). */
  last_error: string | null;
  /** RFC 3339, whole seconds. */
  last_error_at: string | null;
}

export interface ProxyStatus {
  version: string;
  mode: ProxyMode;
  upstream_url: string;
  arn: string | null;
  region: string | null;
  signing: 'sigv4' | 'none';
  signing_service: string | null;
  ui_auth: 'sigv4' | 'presigned-session' | 'none';
  ready: boolean;
  ready_reason: string | null;
  /** null when signing is off. */
  credentials: ProxyCredentials | null;
  ui_session: ProxyUiSession;
  /** null when the artifact gateway is off. */
  artifact_store: ProxyArtifactStore | null;
  /** Always starts with `'self'`. */
  frame_ancestors: string[];
  cors_allowed_origins: string[];
  started_at: string;
  uptime_seconds: number;
}

/** STS GetCallerIdentity; each field is null when STS left it out. */
export interface ProxyIdentity {
  account: string | null;
  arn: string | null;
  user_id: string | null;
}

/**
 * One second with traffic. The server only lists seconds in which requests finished, so every
 * bucket has `requests` ≥ 1 and real latencies; seconds without traffic are simply absent.
 */
export interface StatsBucket {
  /** Unix seconds at the start of the bucket. */
  t: number;
  requests: number;
  errors: number;
  /** Upper bound of the histogram bucket holding the median, in ms (0 only for an empty second). */
  p50_ms: number;
  p99_ms: number;
}

export interface ProxyStats {
  requests_total: number;
  errors_total: number;
  in_flight: number;
  window_seconds: number;
  series: StatsBucket[];
}

// ---------------------------------------------------------------- mlflow

export interface MlflowErrorBody {
  error_code?: string;
  message?: string;
}

export interface Tag {
  key: string;
  value: string;
}

export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: 'active' | 'deleted' | string;
  last_update_time?: Int64;
  creation_time?: Int64;
  tags?: Tag[];
}

export interface SearchExperimentsResponse {
  experiments?: Experiment[];
  next_page_token?: string;
}

export interface GetExperimentResponse {
  experiment: Experiment;
}

export interface CreateExperimentResponse {
  experiment_id: string;
}

export interface Metric {
  key: string;
  value: number | string;
  timestamp?: Int64;
  step?: Int64;
}

export interface Param {
  key: string;
  value: string;
}

export interface RunInfo {
  run_id: string;
  run_uuid?: string;
  run_name?: string;
  experiment_id: string;
  user_id?: string;
  status?: 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED' | string;
  start_time?: Int64;
  end_time?: Int64;
  artifact_uri?: string;
  lifecycle_stage?: string;
}

export interface RunData {
  metrics?: Metric[];
  params?: Param[];
  tags?: Tag[];
}

export interface Run {
  info: RunInfo;
  data?: RunData;
}

export interface SearchRunsRequest {
  experiment_ids: string[];
  filter?: string;
  run_view_type?: ViewType;
  max_results?: number;
  order_by?: string[];
  page_token?: string;
}

export interface SearchRunsResponse {
  runs?: Run[];
  next_page_token?: string;
}

export interface GetMetricHistoryResponse {
  metrics?: Metric[];
  next_page_token?: string;
}

export interface RegisteredModelAlias {
  alias: string;
  version: string;
}

export interface ModelVersion {
  name: string;
  version: string;
  creation_timestamp?: Int64;
  last_updated_timestamp?: Int64;
  user_id?: string;
  current_stage?: string;
  description?: string;
  source?: string;
  run_id?: string;
  status?: string;
  status_message?: string;
  tags?: Tag[];
  aliases?: string[];
}

export interface RegisteredModel {
  name: string;
  creation_timestamp?: Int64;
  last_updated_timestamp?: Int64;
  user_id?: string;
  description?: string;
  latest_versions?: ModelVersion[];
  tags?: Tag[];
  aliases?: RegisteredModelAlias[];
}

export interface SearchRegisteredModelsResponse {
  registered_models?: RegisteredModel[];
  next_page_token?: string;
}

export interface GetRegisteredModelResponse {
  registered_model: RegisteredModel;
}

export interface SearchModelVersionsResponse {
  model_versions?: ModelVersion[];
  next_page_token?: string;
}

// ---------------------------------------------------------------- console

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';

export interface RawRequest {
  method: HttpMethod;
  /** Path (and query) on this origin, e.g. `/api/2.0/mlflow/experiments/search?max_results=5`. */
  path: string;
  /** Request body text, sent as `application/json` when non-empty. */
  body?: string;
}

export interface RawResponse {
  status: number;
  statusText: string;
  ok: boolean;
  durationMs: number;
  contentType: string | null;
  body: string;
}
