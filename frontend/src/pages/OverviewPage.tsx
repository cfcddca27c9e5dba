import { useProxyIdentity, useProxyStats, useProxyStatus } from '../api/hooks';
import type { ArtifactStoreState, ProxyStatus, UiSessionState } from '../api/types';
import { Badge, type Tone } from '../components/Badge';
import { Card, Facts } from '../components/Card';
import { Countdown } from '../components/Countdown';
import { PageHeader } from '../components/PageHeader';
import { QueryState } from '../components/QueryState';
import { MODE_LABELS } from '../components/ReadinessIndicator';
import { ErrorMessage, Loading } from '../components/States';
import { TrafficPanel } from '../components/TrafficPanel';
import { formatDateTime, formatDuration } from '../lib/format';

const SESSION_TONES: Record<UiSessionState, Tone> = {
  none: 'neutral',
  active: 'ok',
  expired: 'warn',
  failed: 'error',
};

const STORE_TONES: Record<ArtifactStoreState, Tone> = {
  undiscovered: 'warn',
  unchecked: 'neutral',
  reachable: 'ok',
  unreachable: 'error',
};

function Mono({ children }: { children: string | null | undefined }) {
  return children ? <code className="mono wrap">{children}</code> : <span className="muted">—</span>;
}

function ProxyCard({ status }: { status: ProxyStatus }) {
  return (
    <Card title="Proxy">
      <Facts
        items={[
          ['Version', <Mono key="v">{status.version}</Mono>],
          ['Mode', MODE_LABELS[status.mode] ?? status.mode],
          ['Uptime', formatDuration(status.uptime_seconds)],
          ['Started', formatDateTime(Date.parse(status.started_at))],
        ]}
      />
    </Card>
  );
}

function ReadinessCard({ status }: { status: ProxyStatus }) {
  return (
    <Card title="Readiness">
      <div className={`readiness-big ${status.ready ? 'is-ready' : 'is-not-ready'}`}>
        <span className={`dot ${status.ready ? 'dot-ok' : 'dot-error'}`} aria-hidden="true" />
        {status.ready ? 'Ready' : 'Not ready'}
      </div>
      {status.ready ? (
        <p className="muted">The proxy is serving requests to the upstream.</p>
      ) : (
        <p className="error-text" data-testid="ready-reason">
          {status.ready_reason ?? 'No reason given.'}
        </p>
      )}
    </Card>
  );
}

function UpstreamCard({ status }: { status: ProxyStatus }) {
  return (
    <Card title="Upstream" className="span-2">
      <Facts
        items={[
          ['URL', <Mono key="u">{status.upstream_url}</Mono>],
          ['ARN', <Mono key="a">{status.arn}</Mono>],
          ['Region', status.region ?? <span className="muted">—</span>],
          [
            'Signing',
            status.signing === 'sigv4' ? (
              <span>
                <Badge tone="ok">SigV4</Badge> {status.signing_service ? <code className="mono">{status.signing_service}</code> : null}
              </span>
            ) : (
              <Badge tone="neutral">Off</Badge>
            ),
          ],
          ['UI auth', <code key="ui" className="mono">{status.ui_auth}</code>],
        ]}
      />
    </Card>
  );
}

function IdentityCard({ signing }: { signing: ProxyStatus['signing'] | undefined }) {
  const { data, error, isPending, refetch } = useProxyIdentity();
  let body;
  if (isPending) body = <Loading label="Asking AWS STS who we are…" />;
  else if (error) {
    body =
      signing === 'none' ? (
        <p className="muted" role="note">
          {error.message}
        </p>
      ) : (
        <ErrorMessage error={error} title="Could not get the AWS identity" onRetry={() => void refetch()} compact />
      );
  } else {
    body = (
      <Facts
        items={[
          ['Account', <Mono key="acc">{data.account}</Mono>],
          ['ARN', <Mono key="arn">{data.arn}</Mono>],
          ['User ID', <Mono key="uid">{data.user_id}</Mono>],
        ]}
      />
    );
  }
  return (
    <Card title="AWS identity" className="span-2">
      {body}
    </Card>
  );
}

function CredentialsCard({ status }: { status: ProxyStatus }) {
  const c = status.credentials;
  return (
    <Card title="Credentials">
      {c ? (
        <Facts
          items={[
            ['Source', <code key="s" className="mono">{c.source}</code>],
            ['Expires', c.expires_at ? <Countdown key="e" expiresAt={c.expires_at} /> : 'Never (long-lived)'],
          ]}
        />
      ) : (
        <p className="muted">No AWS credentials: signing is off.</p>
      )}
    </Card>
  );
}

function UiSessionCard({ status }: { status: ProxyStatus }) {
  const s = status.ui_session;
  return (
    <Card title="UI session">
      <Facts
        items={[
          ['State', <Badge key="st" tone={SESSION_TONES[s.state] ?? 'neutral'}>{s.state}</Badge>],
          ['Expires', s.expires_at ? <Countdown key="e" expiresAt={s.expires_at} /> : <span className="muted">—</span>],
          ['Sessions established', <span key="r">{s.renewals ?? '—'}</span>],
        ]}
      />
      {s.last_error ? <p className="error-text">Last error: {s.last_error}</p> : null}
    </Card>
  );
}

function timeOrDash(rfc3339: string | null) {
  return rfc3339 ? formatDateTime(Date.parse(rfc3339)) : <span className="muted">—</span>;
}

function ArtifactStoreCard({ status }: { status: ProxyStatus }) {
  const a = status.artifact_store;
  if (!a) {
    return (
      <Card title="Artifact store" className="span-2">
        <p className="muted">The artifact gateway is off: clients reach the artifact store themselves.</p>
      </Card>
    );
  }
  return (
    <Card title="Artifact store" className="span-2">
      <Facts
        items={[
          ['Store', <Mono key="s">{a.store}</Mono>],
          ['State', <Badge key="st" tone={STORE_TONES[a.state] ?? 'neutral'}>{a.state}</Badge>],
          ['Checked', timeOrDash(a.checked_at)],
        ]}
      />
      {a.state === 'reachable' ? null : (
        <p className={a.state === 'unchecked' ? 'muted' : 'error-text'} data-testid="store-message">
          {a.message}
        </p>
      )}
      {a.last_error ? (
        <p className="error-text" data-testid="store-last-error">
          Last error{a.last_error_at ? ` (${formatDateTime(Date.parse(a.last_error_at))})` : ''}: {a.last_error}
        </p>
      ) : null}
    </Card>
  );
}

export function OverviewPage() {
  const status = useProxyStatus();
  const stats = useProxyStats();
  return (
    <>
      <PageHeader title="Overview" subtitle="What this proxy is connected to, who it signs as, and how traffic looks right now." />
      <QueryState query={status} loading="Loading proxy status…" errorTitle="Could not load the proxy status" retry>
        {(st) => (
          <div className="grid">
            <ReadinessCard status={st} />
            <ProxyCard status={st} />
            <CredentialsCard status={st} />
            <UiSessionCard status={st} />
            <UpstreamCard status={st} />
            <ArtifactStoreCard status={st} />
            <IdentityCard signing={st.signing} />
          </div>
        )}
      </QueryState>
      <Card title="Live traffic" actions={<span className="muted small">updates every few seconds</span>}>
        <QueryState query={stats} loading="Loading request figures…" errorTitle="Could not load request figures" retry compact>
          {(figures) => <TrafficPanel stats={figures} />}
        </QueryState>
      </Card>
    </>
  );
}
