import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { RawResponse } from '../api/types';
import { mockClient, renderApp } from '../test/render';
import { formatBody } from './ConsolePage';

function rawResponse(over: Partial<RawResponse> = {}): RawResponse {
  return {
    status: 200,
    statusText: 'OK',
    ok: true,
    durationMs: 42.4,
    contentType: 'application/json',
    body: '{"experiments":[{"experiment_id":"1","name":"a"}]}',
    ...over,
  };
}

describe('ConsolePage', () => {
  it('sends the request and shows status, time and the formatted body', async () => {
    const user = userEvent.setup();
    const client = mockClient({ raw: () => Promise.resolve(rawResponse()) });
    renderApp('/console', client);
    expect(screen.getByText('No request sent yet')).toBeInTheDocument();
    const path = screen.getByLabelText('Path');
    await user.clear(path);
    await user.type(path, "/api/2.0/mlflow/experiments/search?filter=name LIKE 'a%'");
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(client.raw).toHaveBeenCalledWith({
      method: 'GET',
      path: "/api/2.0/mlflow/experiments/search?filter=name%20LIKE%20'a%'",
      body: undefined,
    });
    expect(await screen.findByTestId('response-status')).toHaveTextContent('200');
    expect(screen.getByTestId('response-time')).toHaveTextContent('42 ms');
    expect(screen.getByLabelText('Response body').textContent).toBe(
      '{\n  "experiments": [\n    {\n      "experiment_id": "1",\n      "name": "a"\n    }\n  ]\n}',
    );
  });

  it('sends a JSON body for POST and refuses invalid JSON', async () => {
    const user = userEvent.setup();
    const client = mockClient({
      raw: () => Promise.resolve(rawResponse({ status: 400, statusText: 'Bad Request', body: '{"error_code":"X","message":"bad"}' })),
    });
    renderApp('/console', client);
    await user.selectOptions(screen.getByLabelText('Method'), 'POST');
    const path = screen.getByLabelText('Path');
    await user.clear(path);
    await user.type(path, '/api/2.0/mlflow/runs/search');
    const body = screen.getByLabelText('JSON body');
    await user.click(body);
    await user.paste('{"experiment_ids": [');
    expect(screen.getByRole('alert')).toHaveTextContent('Not valid JSON');
    expect(screen.getByRole('button', { name: 'Send' })).toBeDisabled();
    await user.paste('"1"]}');
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(client.raw).toHaveBeenCalledWith({
      method: 'POST',
      path: '/api/2.0/mlflow/runs/search',
      body: '{"experiment_ids": ["1"]}',
    });
    expect(await screen.findByTestId('response-status')).toHaveTextContent('400');
    expect(screen.getByText('Bad Request')).toBeInTheDocument();
  });

  it('builds a curl command for this origin and copies it', async () => {
    const user = userEvent.setup();
    renderApp('/console');
    await user.click(screen.getByRole('button', { name: 'Search runs' }));
    const origin = window.location.origin;
    expect(screen.getByTestId('curl').textContent).toBe(
      `curl -X POST '${origin}/api/2.0/mlflow/runs/search' \\\n  -H 'Content-Type: application/json' \\\n  -d '{"experiment_ids":["0"],"max_results":10}'`,
    );
    await user.click(screen.getByRole('button', { name: 'Copy as curl' }));
    expect(await navigator.clipboard.readText()).toBe(screen.getByTestId('curl').textContent);
    expect(screen.getByText('Copied')).toBeInTheDocument();
  });

  it('shows a network failure readably', async () => {
    const user = userEvent.setup();
    renderApp(
      '/console',
      mockClient({
        raw: () => Promise.reject(new ApiError({ message: 'Could not reach the proxy (Failed to fetch)', status: 0, method: 'GET', path: '/x' })),
      }),
    );
    await user.click(screen.getByRole('button', { name: 'Send' }));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The request did not complete');
    expect(alert).toHaveTextContent('Could not reach the proxy (Failed to fetch)');
  });

  it('shows non-JSON bodies as they came', async () => {
    const user = userEvent.setup();
    renderApp('/console', mockClient({ raw: () => Promise.resolve(rawResponse({ body: 'plain text', contentType: 'text/plain' })) }));
    await user.click(screen.getByRole('button', { name: 'Send' }));
    await waitFor(() => expect(screen.getByLabelText('Response body').textContent).toBe('plain text'));
    expect(formatBody('')).toEqual({ text: '', isJson: false });
    expect(formatBody('[1]')).toEqual({ text: '[\n  1\n]', isJson: true });
  });
});
