import { useState, type FormEvent } from 'react';
import { useRawRequest } from '../api/hooks';
import type { HttpMethod, RawResponse } from '../api/types';
import { Badge, type Tone } from '../components/Badge';
import { Card } from '../components/Card';
import { CopyButton } from '../components/CopyButton';
import { PageHeader } from '../components/PageHeader';
import { EmptyState, ErrorMessage, Loading } from '../components/States';
import { buildCurl, normalizeConsolePath } from '../lib/curl';

const METHODS: HttpMethod[] = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE'];

interface Preset {
  label: string;
  method: HttpMethod;
  path: string;
  body?: string;
}

export const PRESETS: Preset[] = [
  { label: 'Search experiments', method: 'GET', path: '/api/2.0/mlflow/experiments/search?max_results=10' },
  {
    label: 'Search runs',
    method: 'POST',
    path: '/api/2.0/mlflow/runs/search',
    body: '{\n  "experiment_ids": ["0"],\n  "max_results": 10\n}',
  },
  { label: 'Registered models', method: 'GET', path: '/api/2.0/mlflow/registered-models/search?max_results=10' },
  { label: 'Proxy status', method: 'GET', path: '/api/proxy/status' },
];

/** Pretty-prints JSON bodies; leaves anything else as it came. */
export function formatBody(body: string): { text: string; isJson: boolean } {
  if (!body.trim()) return { text: '', isJson: false };
  try {
    return { text: JSON.stringify(JSON.parse(body), null, 2), isJson: true };
  } catch {
    return { text: body, isJson: false };
  }
}

function jsonError(body: string): string | null {
  if (!body.trim()) return null;
  try {
    JSON.parse(body);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : 'Invalid JSON';
  }
}

function statusTone(status: number): Tone {
  if (status >= 500) return 'error';
  if (status >= 400) return 'warn';
  if (status >= 200 && status < 300) return 'ok';
  return 'neutral';
}

function ResponseView({ res }: { res: RawResponse }) {
  const { text, isJson } = formatBody(res.body);
  return (
    <div className="response">
      <div className="response-meta">
        <Badge tone={statusTone(res.status)}>
          <span data-testid="response-status">{res.status}</span> {res.statusText}
        </Badge>
        <span className="muted small" data-testid="response-time">
          {res.durationMs < 10 ? res.durationMs.toFixed(1) : Math.round(res.durationMs)} ms
        </span>
        {res.contentType ? <code className="muted small">{res.contentType}</code> : null}
        <span className="spacer" />
        {text ? <CopyButton text={text} label="Copy body" /> : null}
      </div>
      {text ? (
        <pre className={`code${isJson ? ' code-json' : ''}`} aria-label="Response body" tabIndex={0}>
          {text}
        </pre>
      ) : (
        <p className="muted">Empty body.</p>
      )}
    </div>
  );
}

export function ConsolePage() {
  const [method, setMethod] = useState<HttpMethod>('GET');
  const [path, setPath] = useState(PRESETS[0]?.path ?? '/api/2.0/mlflow/experiments/search');
  const [body, setBody] = useState('');
  const send = useRawRequest();
  const hasBody = method !== 'GET';
  const bodyError = hasBody ? jsonError(body) : null;
  const curl = buildCurl({ method, path, body: hasBody ? body : undefined }, window.location.origin);

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (bodyError) return;
    send.mutate({ method, path: normalizeConsolePath(path), body: hasBody ? body : undefined });
  }

  function applyPreset(p: Preset) {
    setMethod(p.method);
    setPath(p.path);
    setBody(p.body ?? '');
    send.reset();
  }

  return (
    <>
      <PageHeader title="API console" subtitle="Send any MLflow REST call through this proxy and see exactly what comes back." />
      <Card title="Request">
        <div className="presets" role="group" aria-label="Examples">
          <span className="muted small">Examples:</span>
          {PRESETS.map((p) => (
            <button key={p.label} type="button" className="btn btn-ghost btn-small" onClick={() => applyPreset(p)}>
              {p.label}
            </button>
          ))}
        </div>
        <form onSubmit={onSubmit} className="console-form">
          <div className="request-line">
            <div className="field">
              <label htmlFor="console-method">Method</label>
              <select
                id="console-method"
                className="input"
                value={method}
                onChange={(e) => setMethod(e.target.value as HttpMethod)}
              >
                {METHODS.map((m) => (
                  <option key={m}>{m}</option>
                ))}
              </select>
            </div>
            <div className="field field-grow">
              <label htmlFor="console-path">Path</label>
              <input
                id="console-path"
                className="input mono"
                value={path}
                onChange={(e) => setPath(e.target.value)}
                spellCheck={false}
                required
              />
            </div>
            <button type="submit" className="btn btn-primary" disabled={send.isPending || !!bodyError}>
              {send.isPending ? 'Sending…' : 'Send'}
            </button>
          </div>
          {hasBody ? (
            <div className="field">
              <label htmlFor="console-body">JSON body</label>
              <textarea
                id="console-body"
                className="input mono textarea"
                rows={8}
                value={body}
                onChange={(e) => setBody(e.target.value)}
                spellCheck={false}
                placeholder='{"experiment_ids": ["0"]}'
                aria-invalid={bodyError ? true : undefined}
                aria-describedby={bodyError ? 'console-body-error' : undefined}
              />
              {bodyError ? (
                <p id="console-body-error" className="field-error" role="alert">
                  Not valid JSON: {bodyError}
                </p>
              ) : null}
            </div>
          ) : null}
        </form>
        <div className="curl">
          <div className="curl-header">
            <h3 className="section-title">curl</h3>
            <CopyButton text={curl} label="Copy as curl" />
          </div>
          <pre className="code" data-testid="curl" tabIndex={0}>
            {curl}
          </pre>
        </div>
      </Card>
      <Card title="Response">
        {send.isPending ? (
          <Loading label="Waiting for the response…" />
        ) : send.error ? (
          <ErrorMessage error={send.error} title="The request did not complete" />
        ) : send.data ? (
          <ResponseView res={send.data} />
        ) : (
          <EmptyState title="No request sent yet">Choose an example or type a path, then press Send.</EmptyState>
        )}
      </Card>
    </>
  );
}
