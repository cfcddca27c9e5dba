import { useId, useState } from 'react';
import { Link } from 'react-router';
import { useProxyStatus } from '../api/hooks';
import { Card } from '../components/Card';
import { CopyButton } from '../components/CopyButton';
import { PageHeader } from '../components/PageHeader';
import { QueryState } from '../components/QueryState';
import { uiPageLink, uiRouteOf } from '../lib/deeplink';
import {
  allowsOtherOrigins,
  buildEmbedSnippet,
  describeFrameAncestors,
  embedPath,
  type EmbedTarget,
} from '../lib/embed';

type Kind = EmbedTarget['kind'];

const KINDS: { value: Kind; label: string }[] = [
  { value: 'home', label: 'MLflow home' },
  { value: 'experiment', label: 'Experiment' },
  { value: 'run', label: 'Run' },
  { value: 'model', label: 'Registered model' },
  { value: 'custom', label: 'Other page (path)' },
];

function TextField({
  label,
  value,
  onChange,
  placeholder,
  mono,
}: {
  label: string;
  value: string;
  onChange: (v: string) => void;
  placeholder?: string;
  mono?: boolean;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        className={mono ? 'input mono' : 'input'}
        value={value}
        placeholder={placeholder}
        onChange={(e) => onChange(e.target.value)}
        spellCheck={false}
      />
    </div>
  );
}

function FrameAncestors({ origin }: { origin: string }) {
  const status = useProxyStatus();
  return (
    <QueryState query={status} loading="Loading the proxy's embedding policy…" errorTitle="Could not load the embedding policy" compact>
      {(st) => <FrameAncestorList sources={st.frame_ancestors} origin={origin} />}
    </QueryState>
  );
}

function FrameAncestorList({ sources, origin }: { sources: string[]; origin: string }) {
  if (sources.length === 0) {
    return <p className="muted">The proxy sends no frame-ancestors restriction: any page may embed the UI.</p>;
  }
  return (
    <>
      <p>
        The proxy sends <code className="mono">Content-Security-Policy: frame-ancestors {sources.join(' ')}</code>, so
        these pages may embed the MLflow UI:
      </p>
      <ul className="ancestors" aria-label="Allowed embedding origins">
        {describeFrameAncestors(sources, origin).map((a) => (
          <li key={a.source}>
            <code className="mono">{a.source}</code>
            {a.label !== a.source ? <span className="muted"> — {a.label}</span> : null}
          </li>
        ))}
      </ul>
      {!allowsOtherOrigins(sources) ? (
        <p className="note" role="note">
          Only this proxy&apos;s own pages can embed the UI. To embed it in a portal, add the portal&apos;s origin to the
          proxy&apos;s frame-ancestors setting.
        </p>
      ) : null}
    </>
  );
}

export function EmbedPage() {
  const origin = window.location.origin;
  const [kind, setKind] = useState<Kind>('experiment');
  const [experimentId, setExperimentId] = useState('');
  const [runId, setRunId] = useState('');
  const [modelName, setModelName] = useState('');
  const [modelVersion, setModelVersion] = useState('');
  const [customPath, setCustomPath] = useState('#/experiments/1');
  const [width, setWidth] = useState('100%');
  const [height, setHeight] = useState('800');
  const [title, setTitle] = useState('MLflow');
  const kindId = useId();

  const target: EmbedTarget =
    kind === 'home'
      ? { kind }
      : kind === 'experiment'
        ? { kind, experimentId }
        : kind === 'run'
          ? { kind, experimentId, runId }
          : kind === 'model'
            ? { kind, name: modelName, version: modelVersion }
            : { kind, path: customPath };
  const path = embedPath(target, origin);
  const snippet = path ? buildEmbedSnippet({ origin, path, width, height, title }) : null;

  return (
    <>
      <PageHeader title="Embed" subtitle="Put an MLflow UI page into another site with an iframe." />
      <div className="split">
        <Card title="Page to embed">
          <div className="form-grid">
            <div className="field">
              <label htmlFor={kindId}>Page</label>
              <select id={kindId} className="input" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
                {KINDS.map((k) => (
                  <option key={k.value} value={k.value}>
                    {k.label}
                  </option>
                ))}
              </select>
            </div>
            {kind === 'experiment' || kind === 'run' ? (
              <TextField label="Experiment ID" value={experimentId} onChange={setExperimentId} placeholder="1" mono />
            ) : null}
            {kind === 'run' ? <TextField label="Run ID" value={runId} onChange={setRunId} placeholder="a1b2c3…" mono /> : null}
            {kind === 'model' ? (
              <>
                <TextField label="Model name" value={modelName} onChange={setModelName} placeholder="my-model" />
                <TextField label="Version (optional)" value={modelVersion} onChange={setModelVersion} placeholder="3" mono />
              </>
            ) : null}
            {kind === 'custom' ? (
              <TextField label="UI path" value={customPath} onChange={setCustomPath} placeholder="#/experiments/1" mono />
            ) : null}
            <TextField label="Width" value={width} onChange={setWidth} mono />
            <TextField label="Height" value={height} onChange={setHeight} mono />
            <TextField label="Title (for screen readers)" value={title} onChange={setTitle} />
          </div>
        </Card>
        <Card title="Who may embed it">
          <FrameAncestors origin={origin} />
        </Card>
      </div>
      <Card
        title="Snippet"
        actions={snippet ? <CopyButton text={snippet} label="Copy snippet" /> : null}
      >
        {snippet && path ? (
          <>
            <pre className="code" data-testid="embed-snippet" tabIndex={0}>
              {snippet}
            </pre>
            <p className="small">
              <Link to={uiPageLink(uiRouteOf(path))}>Preview this page in the dashboard</Link>
            </p>
          </>
        ) : (
          <p className="muted" role="status">
            {kind === 'custom' ? 'That path is not a page of this proxy’s MLflow UI.' : 'Fill in the fields above to get a snippet.'}
          </p>
        )}
      </Card>
    </>
  );
}
