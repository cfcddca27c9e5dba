import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { statusFixture } from '../test/fixtures';
import { mockClient, renderApp } from '../test/render';

describe('EmbedPage', () => {
  it('generates the iframe snippet for the chosen page on this origin', async () => {
    const user = userEvent.setup();
    renderApp('/embed');
    const origin = window.location.origin;
    expect(screen.getByText('Fill in the fields above to get a snippet.')).toBeInTheDocument();
    await user.type(screen.getByLabelText('Experiment ID'), '1');
    expect(screen.getByTestId('embed-snippet').textContent).toContain(`src="${origin}/mlflow/#/experiments/1"`);
    expect(screen.getByRole('link', { name: 'Preview this page in the dashboard' })).toHaveAttribute(
      'href',
      `/ui?path=${encodeURIComponent('#/experiments/1')}`,
    );

    await user.selectOptions(screen.getByLabelText('Page'), 'Registered model');
    await user.type(screen.getByLabelText('Model name'), 'churn model');
    await user.type(screen.getByLabelText('Version (optional)'), '2');
    const height = screen.getByLabelText('Height');
    await user.clear(height);
    await user.type(height, '600');
    const snippet = screen.getByTestId('embed-snippet').textContent ?? '';
    expect(snippet).toContain(`src="${origin}/mlflow/#/models/churn%20model/versions/2"`);
    expect(snippet).toContain('height="600"');
    expect(snippet.startsWith('<iframe')).toBe(true);
    expect(snippet.endsWith('></iframe>')).toBe(true);

    await user.click(screen.getByRole('button', { name: 'Copy snippet' }));
    expect(await navigator.clipboard.readText()).toBe(snippet);
  });

  it('refuses a custom path of another origin', async () => {
    const user = userEvent.setup();
    renderApp('/embed');
    await user.selectOptions(screen.getByLabelText('Page'), 'Other page (path)');
    const path = screen.getByLabelText('UI path');
    expect(screen.getByTestId('embed-snippet').textContent).toContain('/mlflow/#/experiments/1"');
    await user.clear(path);
    await user.type(path, 'https://evil.example.com/');
    expect(screen.queryByTestId('embed-snippet')).not.toBeInTheDocument();
    expect(screen.getByText('That path is not a page of this proxy’s MLflow UI.')).toBeInTheDocument();
  });

  it('lists the origins allowed by frame_ancestors', async () => {
    renderApp('/embed');
    const list = await screen.findByRole('list', { name: 'Allowed embedding origins' });
    expect(within(list).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      `'self' — This proxy's own origin (${window.location.origin})`,
      'https://portal.example.com',
    ]);
    expect(screen.queryByRole('note')).not.toBeInTheDocument();
  });

  it("warns when only the proxy's own origin may embed", async () => {
    renderApp('/embed', mockClient({ getStatus: () => Promise.resolve(statusFixture({ frame_ancestors: ["'self'"] })) }));
    expect(await screen.findByRole('note')).toHaveTextContent("Only this proxy's own pages can embed the UI");
  });
});
