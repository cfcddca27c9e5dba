import type { ReactNode } from 'react';
import { ApiError, ResponseShapeError } from '../api/client';

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="state state-loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="state state-empty">
      <p className="state-title">{title}</p>
      {children ? <div className="state-body">{children}</div> : null}
    </div>
  );
}

function errorTitle(error: unknown): string {
  if (error instanceof ResponseShapeError) return 'The server sent an unexpected answer';
  if (error instanceof ApiError) {
    if (error.isNetworkError) return 'The proxy could not be reached';
    if (error.status === 404) return 'Not found';
    if (error.status === 401 || error.status === 403) return 'Access denied';
    if (error.status >= 500) return 'The server reported an error';
    return 'The request was refused';
  }
  return 'Something went wrong';
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Shows the server's readable message, plus the MLflow error code and HTTP status. */
export function ErrorMessage({
  error,
  title,
  onRetry,
  compact = false,
}: {
  error: unknown;
  title?: string;
  onRetry?: () => void;
  compact?: boolean;
}) {
  const meta: string[] = [];
  if (error instanceof ApiError) {
    if (error.errorCode) meta.push(error.errorCode);
    if (error.status && !error.message.startsWith(`HTTP ${error.status}`)) meta.push(`HTTP ${error.status}`);
  }
  return (
    <div className={`state state-error${compact ? ' compact' : ''}`} role="alert">
      <div>
        <p className="state-title">{title ?? errorTitle(error)}</p>
        <p className="error-text">{errorMessage(error)}</p>
        {meta.length > 0 ? <p className="error-meta">{meta.join(' · ')}</p> : null}
      </div>
      {onRetry ? (
        <button type="button" className="btn btn-secondary btn-small" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}
