import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { ApiError, createApiClient, errorFromResponse } from '../api/client';
import type { SearchExperimentsResponse } from '../api/types';
import capturedError from '../test/captured/mlflow-search-experiments-502.json';
import { QueryState, type QueryLike } from './QueryState';

// What the proxy really answers when the upstream MLflow is down (captured from the binary).
const CAPTURED_ERROR_TEXT = JSON.stringify(capturedError);
const SERVER_MESSAGE =
  'upstream MLflow is unreachable: client error (Connect): tcp connect error: Connection refused (os error 111) (http://127.0.0.1:9)';

function query<T>(over: Partial<QueryLike<T>>): QueryLike<T> {
  return { isPending: false, error: null, data: undefined, refetch: vi.fn(() => Promise.resolve()), ...over };
}

function NameList({ names }: { names: string[] }) {
  return (
    <table>
      <tbody>
        {names.map((n) => (
          <tr key={n}>
            <td>{n}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

const listProps = {
  loading: 'Loading names…',
  errorTitle: 'Could not load names',
  isEmpty: (d: string[]) => d.length === 0,
  emptyTitle: 'No names yet',
  children: (d: string[]) => <NameList names={d} />,
};

describe('QueryState', () => {
  it('shows the loading label while the first answer is on its way', () => {
    render(<QueryState query={query<string[]>({ isPending: true })} {...listProps} />);
    expect(screen.getByRole('status')).toHaveTextContent('Loading names…');
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
  });

  it("shows the server's MLflow error message, its error code and the HTTP status", () => {
    const error = errorFromResponse(502, 'Bad Gateway', CAPTURED_ERROR_TEXT, 'GET', '/api/2.0/mlflow/experiments/search');
    render(<QueryState query={query<string[]>({ error })} {...listProps} />);
    const alert = screen.getByRole('alert');
    expect(within(alert).getByText('Could not load names')).toBeInTheDocument();
    expect(within(alert).getByText(SERVER_MESSAGE)).toBeInTheDocument();
    expect(within(alert).getByText('TEMPORARILY_UNAVAILABLE · HTTP 502')).toBeInTheDocument();
    expect(within(alert).queryByRole('button', { name: 'Retry' })).not.toBeInTheDocument();
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
    expect(screen.queryByRole('status')).not.toBeInTheDocument();
  });

  it('offers Retry when asked, which refetches', async () => {
    const q = query<string[]>({ error: new ApiError({ message: 'boom', status: 500, method: 'GET', path: '/x' }) });
    render(<QueryState query={q} {...listProps} retry />);
    await userEvent.click(screen.getByRole('button', { name: 'Retry' }));
    expect(q.refetch).toHaveBeenCalledTimes(1);
  });

  it('uses the compact error box when asked', () => {
    const error = new ApiError({ message: 'nope', status: 404, method: 'GET', path: '/x' });
    render(<QueryState query={query<string[]>({ error })} {...listProps} compact />);
    expect(screen.getByRole('alert')).toHaveClass('state-error', 'compact');
  });

  it('shows the empty state with its explanation when there is nothing to list', () => {
    const children = vi.fn((d: string[]) => <NameList names={d} />);
    render(
      <QueryState query={query({ data: [] as string[] })} {...listProps} emptyBody="Add one above." children={children} />,
    );
    expect(screen.getByText('No names yet')).toBeInTheDocument();
    expect(screen.getByText('Add one above.')).toBeInTheDocument();
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
    expect(children).not.toHaveBeenCalled();
  });

  it('shows the table with the data', () => {
    render(<QueryState query={query({ data: ['alpha', 'beta'] })} {...listProps} />);
    const rows = within(screen.getByRole('table')).getAllByRole('row');
    expect(rows.map((r) => r.textContent)).toEqual(['alpha', 'beta']);
    expect(screen.queryByText('No names yet')).not.toBeInTheDocument();
  });

  it('shows the content for empty data when no emptiness test is given', () => {
    render(
      <QueryState query={query({ data: [] as string[] })} loading="Loading…" errorTitle="Failed">
        {(d) => <p>{d.length} names</p>}
      </QueryState>,
    );
    expect(screen.getByText('0 names')).toBeInTheDocument();
  });
});

describe('QueryState with a real query and the API client', () => {
  function Experiments() {
    const client = createApiClient({ fetch: fetchMock as unknown as typeof fetch });
    const q = useQuery({
      queryKey: ['experiments'],
      queryFn: ({ signal }) => client.searchExperiments({ maxResults: 50 }, { signal }),
    });
    return (
      <QueryState
        query={q}
        loading="Loading experiments…"
        errorTitle="Could not search experiments"
        retry
        isEmpty={(d: SearchExperimentsResponse) => !d.experiments?.length}
        emptyTitle="No experiments match"
      >
        {(d) => <NameList names={(d.experiments ?? []).map((e) => e.name)} />}
      </QueryState>
    );
  }

  const answers: Response[] = [];
  const fetchMock = vi.fn(() => {
    const next = answers.shift();
    return next ? Promise.resolve(next) : new Promise<Response>(() => {});
  });

  it('goes from loading to the MLflow error, and after Retry to the table', async () => {
    answers.push(
      new Response(CAPTURED_ERROR_TEXT, { status: 502, statusText: 'Bad Gateway', headers: { 'Content-Type': 'application/json' } }),
      new Response(JSON.stringify({ experiments: [{ experiment_id: '0', name: 'Default' }] }), {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
      }),
    );
    const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
    render(
      <QueryClientProvider client={queryClient}>
        <Experiments />
      </QueryClientProvider>,
    );
    expect(screen.getByRole('status')).toHaveTextContent('Loading experiments…');
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Could not search experiments');
    expect(alert).toHaveTextContent(SERVER_MESSAGE);
    await userEvent.click(within(alert).getByRole('button', { name: 'Retry' }));
    expect(await screen.findByRole('cell', { name: 'Default' })).toBeInTheDocument();
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });
});
