import { screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { statusFixture } from '../test/fixtures';
import { mockClient, renderApp } from '../test/render';

describe('Layout', () => {
  it('has a left nav with every page', async () => {
    renderApp('/');
    const nav = screen.getByRole('navigation', { name: 'Main' });
    const links = within(nav).getAllByRole('link');
    expect(links.map((a) => [a.textContent, a.getAttribute('href')])).toEqual([
      ['Overview', '/'],
      ['MLflow UI', '/ui'],
      ['Experiments', '/experiments'],
      ['Models', '/models'],
      ['API console', '/console'],
      ['Embed', '/embed'],
    ]);
    expect(within(nav).getByRole('link', { name: 'Overview' })).toHaveAttribute('aria-current', 'page');
    // The header fills in once the status arrives.
    expect(await within(screen.getByRole('banner')).findByText('Tracking server')).toBeInTheDocument();
  });

  it('shows mode and readiness in the header', async () => {
    renderApp('/console', mockClient({ getStatus: () => Promise.resolve(statusFixture({ mode: 'app' })) }));
    const header = screen.getByRole('banner');
    expect(await within(header).findByText('MLflow app')).toBeInTheDocument();
    expect(within(header).getByText('Ready')).toBeInTheDocument();
  });

  it('shows the reason when the proxy is not ready', async () => {
    renderApp(
      '/console',
      mockClient({
        getStatus: () => Promise.resolve(statusFixture({ ready: false, ready_reason: 'credentials expired', mode: 'self-hosted' })),
      }),
    );
    const header = screen.getByRole('banner');
    expect(await within(header).findByText(/Not ready/)).toBeInTheDocument();
    expect(within(header).getByText(': credentials expired')).toBeInTheDocument();
    expect(within(header).getByText('Self-hosted')).toBeInTheDocument();
  });

  it('says when the proxy cannot be reached', async () => {
    renderApp(
      '/console',
      mockClient({
        getStatus: () => Promise.reject(new ApiError({ message: 'Could not reach the proxy (x)', status: 0, method: 'GET', path: '/' })),
      }),
    );
    expect(await within(screen.getByRole('banner')).findByText('Proxy unreachable')).toBeInTheDocument();
  });

  it('shows a not-found page for unknown routes', () => {
    renderApp('/no/such/page');
    expect(screen.getByRole('heading', { name: 'Page not found' })).toBeInTheDocument();
    expect(screen.getByText('/no/such/page', { selector: 'code' })).toBeInTheDocument();
  });
});
