import { describe, expect, it } from 'vitest';
import { formatProblem, problemsOf } from '../lib/check';
import identitySigningOff from '../test/captured/identity-signing-off-400.json';
import statsIdle from '../test/captured/stats-idle.json';
import statsTraffic from '../test/captured/stats-traffic.json';
import statusAppStoreUnreachable from '../test/captured/status-app-store-unreachable.json';
import statusSelfHosted from '../test/captured/status-self-hosted.json';
import statusSigv4 from '../test/captured/status-sigv4-presigned-failed.json';
import { ApiError, createApiClient, ResponseShapeError } from './client';
import { proxyIdentitySchema, proxyStatsSchema, proxyStatusSchema } from './schemas';

function answering(status: number, body: unknown) {
  const fetch = (() =>
    Promise.resolve(
      new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }),
    )) as unknown as typeof globalThis.fetch;
  return createApiClient({ fetch });
}

const clone = <T>(v: T): T => structuredClone(v);

// Every answer below was captured from the proxy binary (see src/test/captured/README.md). An
// empty problem list, unknown keys included, means types.ts says exactly what the server sends.
describe('the types match answers captured from the proxy', () => {
  it.each([
    ['status, self-hosted (signing off)', statusSelfHosted],
    ['status, SigV4 with a failed presigned UI session', statusSigv4],
    ['status, MLflow App with an unreachable artifact store', statusAppStoreUnreachable],
  ])('/api/proxy/status: %s', (_, body) => {
    expect(problemsOf(proxyStatusSchema, body).map(formatProblem)).toEqual([]);
  });

  it.each([
    ['no traffic yet', statsIdle],
    ['after requests', statsTraffic],
  ])('/api/proxy/stats: %s', (_, body) => {
    expect(problemsOf(proxyStatsSchema, body).map(formatProblem)).toEqual([]);
  });

  it('the captured answers cover the optional and nullable branches', () => {
    // So that the checks above are not passing on nulls and empty lists alone.
    expect(statusSigv4.credentials).not.toBeNull();
    expect(statusSigv4.ui_session.last_error).toEqual(expect.any(String));
    expect(statusSelfHosted.ui_session).not.toHaveProperty('renewals');
    expect(statusSelfHosted.artifact_store).toBeNull();
    expect(statusSigv4.artifact_store?.store).toBeNull();
    expect(statusAppStoreUnreachable.artifact_store?.store).toEqual(expect.any(String));
    expect(statusAppStoreUnreachable.artifact_store?.last_error).toEqual(expect.any(String));
    expect(statsTraffic.series.length).toBeGreaterThan(0);
  });

  it('/api/proxy/identity: the three fields, each a string or null', () => {
    expect(problemsOf(proxyIdentitySchema, { account: '1', arn: 'arn:aws:iam::1:user/u', user_id: 'AIDA' })).toEqual([]);
    expect(problemsOf(proxyIdentitySchema, { account: null, arn: null, user_id: null })).toEqual([]);
  });

  it('the client hands the captured answers over unchanged', async () => {
    await expect(answering(200, statusSigv4).getStatus()).resolves.toEqual(statusSigv4);
    await expect(answering(200, statsTraffic).getStats()).resolves.toEqual(statsTraffic);
  });

  it("an error answer stays the server's error, not a shape error", async () => {
    const err = await answering(400, identitySigningOff).getIdentity().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).not.toBeInstanceOf(ResponseShapeError);
    expect((err as ApiError).message).toBe('no AWS identity: signing is off (--signing none)');
    expect((err as ApiError).errorCode).toBe('BAD_REQUEST');
  });
});

describe('a drift between server and dashboard', () => {
  it('fails with a message that says where and what', async () => {
    const drifted = clone(statsTraffic) as unknown as { series: { p50_ms: unknown }[] };
    drifted.series[0]!.p50_ms = null;
    const err = await answering(200, drifted).getStats().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseShapeError);
    expect((err as Error).message).toBe(
      'The answer to GET /api/proxy/stats is not what this dashboard expects: series[0].p50_ms: expected a number, got null',
    );
  });

  it('reports missing keys, wrong values and wrong types, a few in the message', async () => {
    const drifted = clone(statusSigv4) as Record<string, unknown>;
    delete drifted.ready;
    drifted.mode = 'serverless';
    drifted.uptime_seconds = '12';
    drifted.ui_session = { state: 'active', expires_at: 5, renewals: -1 };
    const problems = problemsOf(proxyStatusSchema, drifted).map(formatProblem);
    expect(problems).toEqual([
      'mode: expected "tracking-server" or "app" or "self-hosted", got the string "serverless"',
      'ready: missing',
      'ui_session.expires_at: expected a string, got 5',
      'ui_session.renewals: expected a whole number ≥ 0, got -1',
      'uptime_seconds: expected a whole number ≥ 0, got the string "12"',
    ]);
    const err = await answering(200, drifted).getStatus().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseShapeError);
    expect((err as ResponseShapeError).problems).toHaveLength(5);
    expect((err as Error).message).toMatch(/: mode: expected .*; ready: missing; ui_session.expires_at: .* \(and 2 more\)$/);
  });

  it('names keys the types do not describe; the client still accepts them', async () => {
    const extended = { ...clone(statsIdle), p999_ms: 1 };
    expect(problemsOf(proxyStatsSchema, extended)).toEqual([
      { path: 'p999_ms', message: 'not described by the dashboard’s types', unknownKey: true },
    ]);
    await expect(answering(200, extended).getStats()).resolves.toEqual(extended);
  });

  it('refuses an answer that is not an object at all', async () => {
    expect(problemsOf(proxyStatsSchema, []).map(formatProblem)).toEqual(['expected an object, got an array']);
    await expect(answering(200, 'ok').getStatus()).rejects.toThrow(/expected an object, got the string "ok"/);
  });
});
