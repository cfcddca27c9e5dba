import { useProxyStatus } from '../api/hooks';
import { Badge } from './Badge';

export const MODE_LABELS: Record<string, string> = {
  'tracking-server': 'Tracking server',
  app: 'MLflow app',
  'self-hosted': 'Self-hosted',
};

/** Header badges: proxy mode and readiness (with the reason when not ready). */
export function ReadinessIndicator() {
  const { data, error, isPending } = useProxyStatus();
  if (isPending) {
    return (
      <div className="readiness" aria-live="polite">
        <Badge tone="neutral">Checking proxy…</Badge>
      </div>
    );
  }
  if (error || !data) {
    return (
      <div className="readiness" aria-live="polite">
        <Badge tone="error" title={error instanceof Error ? error.message : undefined}>
          Proxy unreachable
        </Badge>
      </div>
    );
  }
  return (
    <div className="readiness" aria-live="polite">
      <Badge tone="info" title={`Mode: ${data.mode}`}>
        {MODE_LABELS[data.mode] ?? data.mode}
      </Badge>
      {data.ready ? (
        <Badge tone="ok">
          <span className="dot dot-ok" aria-hidden="true" /> Ready
        </Badge>
      ) : (
        <Badge tone="error" title={data.ready_reason ?? undefined}>
          <span className="dot dot-error" aria-hidden="true" />
          <span className="readiness-text">
            Not ready
            {data.ready_reason ? <span className="readiness-reason">: {data.ready_reason}</span> : null}
          </span>
        </Badge>
      )}
    </div>
  );
}
