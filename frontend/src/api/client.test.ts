import { describe, expect, it, vi } from 'vitest';
import capturedStatsIdle from '../test/captured/stats-idle.json';
import capturedStatus from '../test/captured/status-self-hosted.json';
import { ApiError, buildQuery, createApiClient, errorFromResponse, nameContainsFilter, quoteFilterValue } from './client';

interface Call {
  url: string;
  method: string | undefined;
  body: string | undefined;
  headers: Record<string, string>;
}

function jsonResponse(status: number, body: unknown, statusText = ''): Response {
  return new Response(typeof body === 'string' ? body : JSON.stringify(body), {
    status,
    statusText,
    headers: { 'Content-Type': 'application/json' },
  });
}

/** A fetch mock that records calls and answers from a queue. */
function fakeFetch(...responses: (Response | Error)[]) {
  const calls: Call[] = [];
  const fn = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    calls.push({
      url: String(input),
      method: init?.method,
      body: typeof init?.body === 'string' ? init.body : undefined,
      headers: (init?.headers ?? {}) as Record<string, string>,
    });
    const next = responses.shift() ?? jsonResponse(200, {});
    if (next instanceof Error) throw next;
    return next;
  });
  return { fetch: fn as unknown as typeof fetch, calls };
}

describe('buildQuery', () => {
  it('encodes spaces as %20 and never as +', () => {
    expect(buildQuery({ filter: "name LIKE 'a b%'" })).toBe("?filter=name%20LIKE%20'a%20b%25'");
  });

  it('drops empty values and repeats array keys', () => {
    expect(buildQuery({ a: undefined, b: null, c: '', d: 0, order_by: ['x DESC', 'y'] })).toBe(
      '?d=0&order_by=x%20DESC&order_by=y',
    );
    expect(buildQuery({})).toBe('');
  });

  it('encodes reserved characters in keys and values', () => {
    expect(buildQuery({ 'a&b': 'c=d#e+f' })).toBe('?a%26b=c%3Dd%23e%2Bf');
  });
});

describe('filter helpers', () => {
  it('quotes values for MLflow filters', () => {
    expect(quoteFilterValue('model')).toBe("'model'");
    expect(quoteFilterValue("bob's")).toBe('"bob\'s"');
  });

  it('builds a case-insensitive contains filter', () => {
    expect(nameContainsFilter('  churn ')).toBe("name ILIKE '%churn%'");
    expect(nameContainsFilter('   ')).toBeUndefined();
  });
});

describe('createApiClient', () => {
  it('GETs the proxy status on the same origin', async () => {
    const status = capturedStatus;
    const f = fakeFetch(jsonResponse(200, status));
    const client = createApiClient({ fetch: f.fetch });
    await expect(client.getStatus()).resolves.toEqual(status);
    expect(f.calls[0]).toMatchObject({ url: '/api/proxy/status', method: 'GET' });
    expect(f.calls[0]?.headers.Accept).toBe('application/json');
  });

  it('uses the identity and stats endpoints', async () => {
    const f = fakeFetch(
      jsonResponse(200, { account: '111122223333', arn: 'arn:aws:iam::111122223333:user/u', user_id: 'AIDAEXAMPLE' }),
      jsonResponse(200, capturedStatsIdle),
    );
    const client = createApiClient({ fetch: f.fetch, baseUrl: 'http://proxy.test' });
    await client.getIdentity();
    await client.getStats();
    expect(f.calls.map((c) => c.url)).toEqual(['http://proxy.test/api/proxy/identity', 'http://proxy.test/api/proxy/stats']);
  });

  it('searches experiments with GET query params, %20-encoded', async () => {
    const f = fakeFetch(jsonResponse(200, { experiments: [{ experiment_id: '1', name: 'a' }] }));
    const client = createApiClient({ fetch: f.fetch });
    const res = await client.searchExperiments({ filter: "name ILIKE '%my exp%'", viewType: 'DELETED_ONLY', maxResults: 25 });
    expect(res.experiments).toHaveLength(1);
    expect(f.calls[0]?.method).toBe('GET');
    expect(f.calls[0]?.url).toBe(
      "/api/2.0/mlflow/experiments/search?max_results=25&filter=name%20ILIKE%20'%25my%20exp%25'&view_type=DELETED_ONLY",
    );
    expect(f.calls[0]?.url).not.toContain('+');
  });

  it('passes the page token and defaults max_results to 100', async () => {
    const f = fakeFetch(jsonResponse(200, {}));
    await createApiClient({ fetch: f.fetch }).searchExperiments({ pageToken: 'abc==' });
    expect(f.calls[0]?.url).toBe('/api/2.0/mlflow/experiments/search?max_results=100&page_token=abc%3D%3D');
  });

  it('POSTs experiment mutations with JSON bodies', async () => {
    const f = fakeFetch(jsonResponse(200, { experiment_id: '12' }), jsonResponse(200, {}), jsonResponse(200, {}), jsonResponse(200, ''));
    const client = createApiClient({ fetch: f.fetch });
    await expect(client.createExperiment('new one')).resolves.toEqual({ experiment_id: '12' });
    await client.renameExperiment('12', 'renamed');
    await client.deleteExperiment('12');
    await client.restoreExperiment('12');
    expect(f.calls.map((c) => [c.method, c.url, c.body && JSON.parse(c.body)])).toEqual([
      ['POST', '/api/2.0/mlflow/experiments/create', { name: 'new one' }],
      ['POST', '/api/2.0/mlflow/experiments/update', { experiment_id: '12', new_name: 'renamed' }],
      ['POST', '/api/2.0/mlflow/experiments/delete', { experiment_id: '12' }],
      ['POST', '/api/2.0/mlflow/experiments/restore', { experiment_id: '12' }],
    ]);
    expect(f.calls[0]?.headers['Content-Type']).toBe('application/json');
  });

  it('gets one experiment and unwraps it', async () => {
    const f = fakeFetch(jsonResponse(200, { experiment: { experiment_id: '3', name: 'x' } }));
    await expect(createApiClient({ fetch: f.fetch }).getExperiment('3')).resolves.toEqual({ experiment_id: '3', name: 'x' });
    expect(f.calls[0]?.url).toBe('/api/2.0/mlflow/experiments/get?experiment_id=3');
  });

  it('searches runs with a POST body and omits a blank filter', async () => {
    const f = fakeFetch(jsonResponse(200, { runs: [] }), jsonResponse(200, { runs: [] }));
    const client = createApiClient({ fetch: f.fetch });
    await client.searchRuns({ experiment_ids: ['1'], filter: "metrics.rmse < 1 and params.m = 'x'", max_results: 50, order_by: ['attributes.start_time DESC'] });
    await client.searchRuns({ experiment_ids: ['1'], filter: '  ' });
    expect(f.calls[0]).toMatchObject({ method: 'POST', url: '/api/2.0/mlflow/runs/search' });
    expect(JSON.parse(f.calls[0]?.body ?? '')).toEqual({
      experiment_ids: ['1'],
      filter: "metrics.rmse < 1 and params.m = 'x'",
      max_results: 50,
      order_by: ['attributes.start_time DESC'],
    });
    expect(JSON.parse(f.calls[1]?.body ?? '')).toEqual({ experiment_ids: ['1'] });
  });

  it('follows metric history pages', async () => {
    const f = fakeFetch(
      jsonResponse(200, { metrics: [{ key: 'loss', value: 1, step: 0 }], next_page_token: 'p2' }),
      jsonResponse(200, { metrics: [{ key: 'loss', value: 0.5, step: 1 }] }),
    );
    const history = await createApiClient({ fetch: f.fetch }).getMetricHistory('abc', 'val loss');
    expect(history.map((m) => m.value)).toEqual([1, 0.5]);
    expect(f.calls.map((c) => c.url)).toEqual([
      '/api/2.0/mlflow/metrics/get-history?run_id=abc&metric_key=val%20loss&max_results=25000',
      '/api/2.0/mlflow/metrics/get-history?run_id=abc&metric_key=val%20loss&max_results=25000&page_token=p2',
    ]);
  });

  it('stops at an empty history page even when it carries a token', async () => {
    const f = fakeFetch(jsonResponse(200, { next_page_token: 'eyJvZmZzZXQiOiAwfQ==' }));
    const history = await createApiClient({ fetch: f.fetch }).getMetricHistory('abc', 'loss');
    expect(history).toEqual([]);
    expect(f.calls).toHaveLength(1);
  });

  it('uses the model registry endpoints', async () => {
    const f = fakeFetch(
      jsonResponse(200, { registered_models: [] }),
      jsonResponse(200, { registered_model: { name: 'm 1', aliases: [{ alias: 'prod', version: '2' }] } }),
      jsonResponse(200, { model_versions: [] }),
      jsonResponse(200, { model_versions: [] }),
    );
    const client = createApiClient({ fetch: f.fetch });
    await client.searchRegisteredModels({ filter: "name ILIKE '%m%'", maxResults: 10 });
    const model = await client.getRegisteredModel('m 1');
    await client.searchModelVersions('m 1');
    await client.searchModelVersions("it's");
    expect(model.aliases).toEqual([{ alias: 'prod', version: '2' }]);
    expect(f.calls.map((c) => c.url)).toEqual([
      "/api/2.0/mlflow/registered-models/search?max_results=10&filter=name%20ILIKE%20'%25m%25'",
      '/api/2.0/mlflow/registered-models/get?name=m%201',
      "/api/2.0/mlflow/model-versions/search?filter=name%3D'm%201'",
      '/api/2.0/mlflow/model-versions/search?filter=name%3D%22it\'s%22',
    ]);
  });

  describe('errors', () => {
    it("maps an MLflow error body to ApiError with the server's message", async () => {
      const f = fakeFetch(
        jsonResponse(404, { error_code: 'RESOURCE_DOES_NOT_EXIST', message: "Experiment '5' does not exist." }, 'Not Found'),
      );
      const err = await createApiClient({ fetch: f.fetch })
        .getExperiment('5')
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect(err).toMatchObject({
        message: "Experiment '5' does not exist.",
        status: 404,
        errorCode: 'RESOURCE_DOES_NOT_EXIST',
        method: 'GET',
        path: '/api/2.0/mlflow/experiments/get?experiment_id=5',
      });
      expect((err as ApiError).isClientError).toBe(true);
    });

    it('uses the error code when there is no message', async () => {
      const f = fakeFetch(jsonResponse(400, { error_code: 'INVALID_PARAMETER_VALUE' }));
      await expect(createApiClient({ fetch: f.fetch }).createExperiment('x')).rejects.toMatchObject({
        message: 'INVALID_PARAMETER_VALUE',
        status: 400,
      });
    });

    it('reports the status for non-JSON error pages, with short text bodies', async () => {
      const html = new Response('<html><body>Bad gateway</body></html>', { status: 502, statusText: 'Bad Gateway' });
      const text = new Response('upstream timed out', { status: 504, statusText: 'Gateway Timeout' });
      const client = createApiClient({ fetch: fakeFetch(html, text).fetch });
      await expect(client.getStatus()).rejects.toMatchObject({ message: 'HTTP 502 Bad Gateway', status: 502, errorCode: null });
      await expect(client.getStatus()).rejects.toMatchObject({ message: 'HTTP 504 Gateway Timeout: upstream timed out' });
    });

    it('turns a network failure into a status-0 ApiError', async () => {
      const client = createApiClient({ fetch: fakeFetch(new TypeError('Failed to fetch')).fetch });
      const err = (await client.getStats().catch((e: unknown) => e)) as ApiError;
      expect(err).toBeInstanceOf(ApiError);
      expect(err.status).toBe(0);
      expect(err.isNetworkError).toBe(true);
      expect(err.message).toBe('Could not reach the proxy (Failed to fetch)');
    });

    it('rejects a 200 response that is not JSON', async () => {
      const client = createApiClient({ fetch: fakeFetch(new Response('<!doctype html>', { status: 200 })).fetch });
      await expect(client.getStatus()).rejects.toThrow(/not JSON/);
    });

    it('errorFromResponse keeps the message readable', () => {
      const e = errorFromResponse(403, 'Forbidden', '{"error_code":"PERMISSION_DENIED","message":"no access"}', 'GET', '/x');
      expect(e.message).toBe('no access');
      expect(e.errorCode).toBe('PERMISSION_DENIED');
    });
  });

  describe('raw', () => {
    it('sends any method with the body and reports status, time and body without throwing', async () => {
      const f = fakeFetch(jsonResponse(400, { error_code: 'BAD', message: 'nope' }, 'Bad Request'));
      let t = 100;
      const client = createApiClient({ fetch: f.fetch, now: () => (t += 12.5) });
      const res = await client.raw({ method: 'POST', path: '/api/2.0/mlflow/runs/search', body: '{"experiment_ids":["1"]}' });
      expect(res).toEqual({
        status: 400,
        statusText: 'Bad Request',
        ok: false,
        durationMs: 12.5,
        contentType: 'application/json',
        body: '{"error_code":"BAD","message":"nope"}',
      });
      expect(f.calls[0]).toMatchObject({ method: 'POST', url: '/api/2.0/mlflow/runs/search', body: '{"experiment_ids":["1"]}' });
      expect(f.calls[0]?.headers['Content-Type']).toBe('application/json');
    });

    it('sends no body with GET', async () => {
      const f = fakeFetch(jsonResponse(200, {}));
      await createApiClient({ fetch: f.fetch }).raw({ method: 'GET', path: '/api/proxy/status', body: '{"x":1}' });
      expect(f.calls[0]?.body).toBeUndefined();
      expect(f.calls[0]?.headers['Content-Type']).toBeUndefined();
    });
  });
});
