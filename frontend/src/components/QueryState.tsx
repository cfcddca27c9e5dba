import type { ReactNode } from 'react';
import { EmptyState, ErrorMessage, Loading } from './States';

/** The part of a TanStack query result that QueryState reads. */
export interface QueryLike<T> {
  isPending: boolean;
  error: unknown;
  data: T | undefined;
  refetch: () => Promise<unknown>;
}

export interface QueryStateProps<T> {
  query: QueryLike<T>;
  /** Text next to the spinner, e.g. "Loading runs…". */
  loading: string;
  /** Heading of the error box, e.g. "Could not search runs". */
  errorTitle: string;
  /** Offers a Retry button that refetches the query. */
  retry?: boolean;
  /** The smaller error box, for panels inside a card. */
  compact?: boolean;
  /** When given and true for the data, `empty` is shown instead of `children`. */
  isEmpty?: (data: T) => boolean;
  /** Title of the empty state. */
  emptyTitle?: string;
  /** Optional explanation under the empty state's title. */
  emptyBody?: ReactNode;
  /** What to show once the data is there (the table). */
  children: (data: T) => ReactNode;
}

/**
 * The loading → error → empty → content chain every data view repeats: a spinner while the first
 * answer is on its way, the server's readable error (MLflow's `message`, code and HTTP status) when
 * the request failed, an empty state when there is nothing to list, and otherwise the content.
 */
export function QueryState<T>({
  query,
  loading,
  errorTitle,
  retry = false,
  compact = false,
  isEmpty,
  emptyTitle = 'Nothing to show',
  emptyBody,
  children,
}: QueryStateProps<T>) {
  if (query.isPending) return <Loading label={loading} />;
  if (query.error) {
    return (
      <ErrorMessage
        error={query.error}
        title={errorTitle}
        compact={compact}
        onRetry={retry ? () => void query.refetch() : undefined}
      />
    );
  }
  // A settled query without an error has data; TanStack never resolves a query to undefined.
  if (query.data === undefined) return <Loading label={loading} />;
  if (isEmpty?.(query.data)) return <EmptyState title={emptyTitle}>{emptyBody}</EmptyState>;
  return <>{children(query.data)}</>;
}
