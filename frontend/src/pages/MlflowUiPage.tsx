import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router';
import { MLFLOW_UI_BASE, toMlflowUiSrc, uiRouteOf } from '../lib/deeplink';

function origin(): string {
  return window.location.origin;
}

/** The proxied MLflow UI in a full-size iframe, with a deep-link box, reload and open-in-new-tab. */
export function MlflowUiPage() {
  const [params, setParams] = useSearchParams();
  const pathParam = params.get('path') ?? '';
  const [src, setSrc] = useState(() => toMlflowUiSrc(pathParam, origin()) ?? MLFLOW_UI_BASE);
  const [frameKey, setFrameKey] = useState(0);
  const [input, setInput] = useState(() => uiRouteOf(src));
  const [inputError, setInputError] = useState<string | null>(() =>
    toMlflowUiSrc(pathParam, origin()) === null ? `Cannot open “${pathParam}”: not a page of this proxy’s MLflow UI.` : null,
  );
  const [current, setCurrent] = useState(src);
  const iframeRef = useRef<HTMLIFrameElement>(null);

  useEffect(() => {
    document.title = 'MLflow UI · MLflow proxy';
  }, []);

  const navigate = useCallback((next: string) => {
    setCurrent(next);
    const win = iframeRef.current?.contentWindow;
    try {
      // Same-origin iframe already showing the UI: change only the hash, no reload.
      if (win && win.location.pathname === MLFLOW_UI_BASE && next.startsWith(`${MLFLOW_UI_BASE}#`)) {
        win.location.hash = next.slice(MLFLOW_UI_BASE.length);
        setSrc(next);
        return;
      }
    } catch {
      // Not readable: fall through to a fresh load.
    }
    setSrc(next);
    setFrameKey((k) => k + 1);
  }, []);

  // `?path=` changed by a link from another page: follow it.
  useEffect(() => {
    const next = toMlflowUiSrc(pathParam, origin());
    if (next && next !== src) {
      setInput(uiRouteOf(next));
      navigate(next);
    }
    // Only react to the query parameter, not to our own src updates.
  }, [pathParam]);

  function onSubmit(e: FormEvent) {
    e.preventDefault();
    const next = toMlflowUiSrc(input, origin());
    if (!next) {
      setInputError(`Cannot open “${input}”: not a page of this proxy’s MLflow UI.`);
      return;
    }
    setInputError(null);
    navigate(next);
    const route = uiRouteOf(next);
    setParams(route ? { path: route } : {}, { replace: true });
  }

  function reload() {
    try {
      const win = iframeRef.current?.contentWindow;
      if (win && win.location.pathname.startsWith(MLFLOW_UI_BASE)) {
        win.location.reload();
        return;
      }
    } catch {
      // Fall back to remounting the frame.
    }
    setFrameKey((k) => k + 1);
  }

  function trackLocation() {
    const win = iframeRef.current?.contentWindow;
    try {
      if (!win || !win.location.pathname.startsWith(MLFLOW_UI_BASE)) return;
      const read = () => setCurrent(win.location.pathname + win.location.search + win.location.hash);
      read();
      win.addEventListener('hashchange', read);
    } catch {
      // Cross-origin (should not happen): keep the last known URL.
    }
  }

  return (
    <div className="ui-page">
      <div className="ui-toolbar">
        <form className="ui-deeplink" onSubmit={onSubmit} role="search" aria-label="Open an MLflow UI page">
          <label htmlFor="deeplink">Page</label>
          <input
            id="deeplink"
            type="text"
            className="input mono"
            value={input}
            placeholder="#/experiments/1"
            spellCheck={false}
            aria-describedby={inputError ? 'deeplink-error' : undefined}
            aria-invalid={inputError ? true : undefined}
            onChange={(e) => setInput(e.target.value)}
          />
          <button type="submit" className="btn btn-primary">
            Go
          </button>
        </form>
        <div className="ui-actions">
          <button type="button" className="btn btn-secondary" onClick={reload}>
            Reload
          </button>
          <a className="btn btn-secondary" href={current} target="_blank" rel="noopener noreferrer">
            Open in new tab ↗
          </a>
        </div>
        {inputError ? (
          <p id="deeplink-error" className="field-error ui-error" role="alert">
            {inputError}
          </p>
        ) : null}
      </div>
      <iframe
        key={frameKey}
        ref={iframeRef}
        className="ui-frame"
        title="MLflow UI"
        src={src}
        onLoad={trackLocation}
      />
    </div>
  );
}
