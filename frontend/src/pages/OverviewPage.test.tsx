import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ApiError, createApiClient } from '../api/client';
import statsTraffic from '../test/captured/stats-traffic.json';
import statusAppStoreUnreachable from '../test/captured/status-app-store-unreachable.json';
import statusSelfHosted from '../test/captured/status-self-hosted.json';
import statusSigv4 from '../test/captured/status-sigv4-presigned-failed.json';
import { statsFixture, statusFixture } from '../test/fixtures';
import { mockClient, renderApp } from '../test/render';

function card(title: string): HTMLElement {
  const heading = screen.getByRole('heading', { name: title });
  const section = heading.closest('section');
  if (!section) throw new Error(`no card ${title}`);
  return section;
}

describe('OverviewPage', () => {
  it('shows the proxy configuration, identity and credentials', async () => {
    renderApp('/');
    expect(await screen.findByText('https://t-abc.us-west-2.experiments.sagemaker.aws')).toBeInTheDocument();
    expect(screen.getByText('arn:aws:sagemaker:us-west-2:111122223333:mlflow-tracking-server/team')).toBeInTheDocument();
    expect(within(card('Upstream')).getByText('us-west-2')).toBeInTheDocument();
    expect(within(card('Upstream')).getByText('sagemaker-mlflow')).toBeInTheDocument();
    expect(within(card('Upstream')).getByText('presigned-session')).toBeInTheDocument();
    expect(within(card('Proxy')).getByText('0.1.0')).toBeInTheDocument();
    expect(within(card('Proxy')).getByText('1h 02m')).toBeInTheDocument();
    expect(within(card('Readiness')).getByText('Ready')).toBeInTheDocument();
    expect(await within(card('AWS identity')).findByText('arn:aws:sts::111122223333:assumed-role/R/s')).toBeInTheDocument();
    expect(within(card('AWS identity')).getByText('111122223333')).toBeInTheDocument();
    expect(within(card('Credentials')).getByText('assume-role')).toBeInTheDocument();
    expect(within(card('Credentials')).getByText(/^in (59m [0-5][0-9]s|1h 00m)$/)).toBeInTheDocument();
    expect(within(card('UI session')).getByText('active')).toBeInTheDocument();
    expect(within(card('UI session')).getByText(/^in (1m [0-5][0-9]s|2m 00s)$/)).toBeInTheDocument();
  });

  it('shows the readiness reason', async () => {
    renderApp('/', mockClient({ getStatus: () => Promise.resolve(statusFixture({ ready: false, ready_reason: 'upstream 503' })) }));
    expect(await screen.findByTestId('ready-reason')).toHaveTextContent('upstream 503');
    expect(within(card('Readiness')).getByText('Not ready')).toBeInTheDocument();
  });

  it('draws live request figures as charts', async () => {
    renderApp('/');
    const traffic = await screen.findByText('Request rate');
    const panel = traffic.closest('section') as HTMLElement;
    expect(within(panel).getByText('1.00 req/s')).toBeInTheDocument();
    expect(within(panel).getByText('5.0 %')).toBeInTheDocument();
    expect(within(panel).getByText('1.50 ms')).toBeInTheDocument();
    expect(within(panel).getByText('8.40 ms p99')).toBeInTheDocument();
    expect(within(panel).getByText('12,345')).toBeInTheDocument();
    const charts = within(panel).getAllByRole('img');
    expect(charts.map((c) => c.getAttribute('aria-label'))).toEqual([
      'Requests per second over the last 60 s',
      'Errors per second over the last 60 s',
      'Latency p50 and p99 in milliseconds over the last 60 s',
    ]);
    expect(charts[0]?.querySelectorAll('path').length).toBeGreaterThan(0);
  });

  it('says when there was no traffic', async () => {
    renderApp('/', mockClient({ getStats: () => Promise.resolve(statsFixture({ series: [] })) }));
    expect(await screen.findByText('No requests in the last 60 s.')).toBeInTheDocument();
    expect(screen.getByText('0.00 req/s')).toBeInTheDocument();
  });

  it('explains a missing identity in self-hosted mode without an error box', async () => {
    renderApp(
      '/',
      mockClient({
        getStatus: () =>
          Promise.resolve(statusFixture({ mode: 'self-hosted', signing: 'none', signing_service: null, credentials: null, arn: null })),
        getIdentity: () =>
          Promise.reject(new ApiError({ message: 'no AWS identity: signing is off', status: 404, method: 'GET', path: '/api/proxy/identity' })),
      }),
    );
    expect(await screen.findByText('no AWS identity: signing is off')).toBeInTheDocument();
    expect(within(card('Credentials')).getByText('No AWS credentials: signing is off.')).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it('shows an identity failure as an error when signing is on', async () => {
    renderApp(
      '/',
      mockClient({
        getIdentity: () =>
          Promise.reject(new ApiError({ message: 'ExpiredToken', status: 502, errorCode: 'UPSTREAM', method: 'GET', path: '/x' })),
      }),
    );
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not get the AWS identity');
    expect(alert).toHaveTextContent('ExpiredToken');
    expect(alert).toHaveTextContent('UPSTREAM · HTTP 502');
  });

  it('shows the artifact store the gateway serves', async () => {
    renderApp('/');
    const store = await screen.findByText('s3://team-artifacts/mlflow');
    expect(store.closest('section')).toBe(card('Artifact store'));
    expect(within(card('Artifact store')).getByText('reachable')).toHaveClass('badge-ok');
    expect(within(card('Artifact store')).queryByTestId('store-message')).not.toBeInTheDocument();
    expect(within(card('Artifact store')).queryByTestId('store-last-error')).not.toBeInTheDocument();
  });

  it('names what the store lacks when it cannot be listed', async () => {
    const denied =
      'cannot list the artifact store s3://team-artifacts/mlflow: the proxy\'s AWS identity lacks s3:ListBucket on arn:aws:s3:::team-artifacts';
    const artifactStore = {
      store: 's3://team-artifacts/mlflow',
      state: 'unreachable' as const,
      checked_at: '2025-11-22T06:00:00Z',
      message: denied,
      last_error: denied,
      last_error_at: '2025-11-22T06:00:00Z',
    };
    renderApp('/', mockClient({ getStatus: () => Promise.resolve(statusFixture({ artifact_store: artifactStore })) }));
    expect(await screen.findByTestId('store-message')).toHaveTextContent('lacks s3:ListBucket on arn:aws:s3:::team-artifacts');
    expect(within(card('Artifact store')).getByText('unreachable')).toHaveClass('badge-error');
    expect(within(card('Artifact store')).getByTestId('store-last-error')).toHaveTextContent(/^Last error \(.+\): cannot list/);
    expect(within(card('Readiness')).getByText('Ready')).toBeInTheDocument();
  });

  it('says when the artifact gateway is off', async () => {
    renderApp('/', mockClient({ getStatus: () => Promise.resolve(statusFixture({ artifact_store: null })) }));
    expect(
      await within(await screen.findByRole('main')).findByText('The artifact gateway is off: clients reach the artifact store themselves.'),
    ).toBeInTheDocument();
  });

  it('shows status and stats errors readably', async () => {
    const down = () => Promise.reject(new ApiError({ message: 'HTTP 502 Bad Gateway', status: 502, method: 'GET', path: '/x' }));
    renderApp('/', mockClient({ getStatus: down, getStats: down }));
    const alerts = await screen.findAllByRole('alert');
    expect(alerts.map((a) => a.querySelector('.state-title')?.textContent)).toEqual([
      'Could not load the proxy status',
      'Could not load request figures',
    ]);
    expect(alerts[0]).toHaveTextContent('HTTP 502 Bad Gateway');
    expect(within(alerts[0]!).getByRole('button', { name: 'Retry' })).toBeInTheDocument();
  });

  describe('with answers captured from the proxy, through the real client', () => {
    function serving(answers: Record<string, unknown>) {
      const fetch = ((input: RequestInfo | URL) => {
        const path = String(input);
        if (!(path in answers)) return Promise.reject(new Error(`unexpected ${path}`));
        return Promise.resolve(new Response(JSON.stringify(answers[path]), { status: 200 }));
      }) as unknown as typeof globalThis.fetch;
      const real = createApiClient({ fetch });
      return mockClient({ getStatus: real.getStatus, getStats: real.getStats });
    }

    it('shows a SigV4 proxy whose UI session failed', async () => {
      renderApp('/', serving({ '/api/proxy/status': statusSigv4, '/api/proxy/stats': statsTraffic }));
      const arn = 'arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/demo';
      expect(await within(await screen.findByRole('main')).findByText(arn)).toBeInTheDocument();
      expect(within(card('Credentials')).getByText('default-chain')).toBeInTheDocument();
      expect(within(card('Credentials')).getByText('Never (long-lived)')).toBeInTheDocument();
      expect(within(card('UI session')).getByText('failed')).toBeInTheDocument();
      expect(
        within(card('UI session')).getByText(/^Last error: upstream MLflow is unreachable: SageMaker CreatePresigned/),
      ).toBeInTheDocument();
      expect(within(card('UI session')).getByText('0')).toBeInTheDocument();
      expect(await within(card('Live traffic')).findByText('1.28 ms')).toBeInTheDocument();
      expect(within(card('Artifact store')).getByText('undiscovered')).toHaveClass('badge-warn');
      expect(within(card('Artifact store')).getByTestId('store-message')).toHaveTextContent('DescribeMlflowTrackingServer');
    });

    it('shows an artifact store the proxy cannot reach, and one not found yet', async () => {
      renderApp('/', serving({ '/api/proxy/status': statusAppStoreUnreachable, '/api/proxy/stats': statsTraffic }));
      expect(await within(await screen.findByRole('main')).findByText('s3://demo-artifacts/mlflow')).toBeInTheDocument();
      expect(within(card('Artifact store')).getByText('unreachable')).toHaveClass('badge-error');
      expect(within(card('Artifact store')).getByTestId('store-message')).toHaveTextContent(
        /^cannot reach the artifact store s3:\/\/demo-artifacts\/mlflow: /,
      );
      expect(within(card('Readiness')).getByText('Ready')).toBeInTheDocument();
    });

    it('shows a self-hosted proxy', async () => {
      renderApp('/', serving({ '/api/proxy/status': statusSelfHosted, '/api/proxy/stats': statsTraffic }));
      expect(await screen.findByText('http://127.0.0.1:9')).toBeInTheDocument();
      expect(within(card('Credentials')).getByText('No AWS credentials: signing is off.')).toBeInTheDocument();
      expect(within(card('UI session')).getByText('none')).toBeInTheDocument();
      // Neither an expiry nor a session count: the server sends no `renewals` without presigned sessions.
      expect(within(card('UI session')).getAllByText('—')).toHaveLength(2);
      expect(within(card('Artifact store')).getByText(/The artifact gateway is off/)).toBeInTheDocument();
    });

    it('shows a drifted answer as a clear error instead of a broken chart', async () => {
      const drifted = structuredClone(statsTraffic) as unknown as { series: { p50_ms: unknown }[] };
      drifted.series[0]!.p50_ms = null;
      renderApp('/', serving({ '/api/proxy/status': statusSelfHosted, '/api/proxy/stats': drifted }));
      const alert = await within(await screen.findByRole('main')).findByRole('alert');
      expect(alert).toHaveTextContent('Could not load request figures');
      expect(alert).toHaveTextContent(
        'The answer to GET /api/proxy/stats is not what this dashboard expects: series[0].p50_ms: expected a number, got null',
      );
      expect(within(alert).getByRole('button', { name: 'Retry' })).toBeInTheDocument();
    });
  });
});
