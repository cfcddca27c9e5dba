// Run-time checks of the proxy's own JSON answers against the types in `types.ts`. Each schema is
// wrapped in `exactly<TheInterface>()`, so the compiler refuses a schema that differs from its
// interface in any field, optionality or nullability: types and checks cannot drift apart.
import { array, boolean, count, exactly, integer, nullable, number, object, oneOf, string } from '../lib/check';
import type { ProxyArtifactStore, ProxyCredentials, ProxyIdentity, ProxyStats, ProxyStatus, ProxyUiSession, StatsBucket } from './types';

const credentials = exactly<ProxyCredentials>()(object({
  source: string,
  expires_at: nullable(string),
  refreshes: count,
  last_error: nullable(string),
}));

const uiSession = exactly<ProxyUiSession>()(object(
  {
    state: oneOf('none', 'active', 'expired', 'failed'),
    expires_at: nullable(string),
  },
  {
    renewals: count,
    last_error: nullable(string),
  },
));

const artifactStore = exactly<ProxyArtifactStore>()(object({
  store: nullable(string),
  state: oneOf('undiscovered', 'unchecked', 'reachable', 'unreachable'),
  checked_at: nullable(string),
  message: string,
  last_error: nullable(string),
  last_error_at: nullable(string),
}));

export const proxyStatusSchema = exactly<ProxyStatus>()(object({
  version: string,
  mode: oneOf('tracking-server', 'app', 'self-hosted'),
  upstream_url: string,
  arn: nullable(string),
  region: nullable(string),
  signing: oneOf('sigv4', 'none'),
  signing_service: nullable(string),
  ui_auth: oneOf('sigv4', 'presigned-session', 'none'),
  ready: boolean,
  ready_reason: nullable(string),
  credentials: nullable(credentials),
  ui_session: uiSession,
  artifact_store: nullable(artifactStore),
  frame_ancestors: array(string),
  cors_allowed_origins: array(string),
  started_at: string,
  uptime_seconds: count,
}));

export const proxyIdentitySchema = exactly<ProxyIdentity>()(object({
  account: nullable(string),
  arn: nullable(string),
  user_id: nullable(string),
}));

const statsBucket = exactly<StatsBucket>()(object({
  t: count,
  requests: count,
  errors: count,
  p50_ms: number,
  p99_ms: number,
}));

export const proxyStatsSchema = exactly<ProxyStats>()(object({
  requests_total: count,
  errors_total: count,
  in_flight: integer,
  window_seconds: count,
  series: array(statsBucket),
}));
