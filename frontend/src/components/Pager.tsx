import { useState } from 'react';

/** Page-token pagination state for MLflow search endpoints. */
export function usePageTokens() {
  const [stack, setStack] = useState<string[]>([]);
  return {
    pageToken: stack[stack.length - 1],
    page: stack.length + 1,
    next: (token: string) => setStack((s) => [...s, token]),
    prev: () => setStack((s) => s.slice(0, -1)),
    reset: () => setStack([]),
  };
}

export function Pager({
  page,
  hasNext,
  onPrev,
  onNext,
  label,
}: {
  page: number;
  hasNext: boolean;
  onPrev: () => void;
  onNext: () => void;
  label: string;
}) {
  if (page === 1 && !hasNext) return null;
  return (
    <nav className="pager" aria-label={label}>
      <button type="button" className="btn btn-secondary btn-small" onClick={onPrev} disabled={page === 1}>
        ← Previous
      </button>
      <span className="muted small">Page {page}</span>
      <button type="button" className="btn btn-secondary btn-small" onClick={onNext} disabled={!hasNext}>
        Next →
      </button>
    </nav>
  );
}
