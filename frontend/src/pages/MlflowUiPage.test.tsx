import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { renderApp } from '../test/render';

function frame(): HTMLIFrameElement {
  return screen.getByTitle('MLflow UI') as HTMLIFrameElement;
}

describe('MlflowUiPage', () => {
  it('shows the proxied UI home by default', () => {
    renderApp('/ui');
    expect(frame()).toHaveAttribute('src', '/mlflow/');
    expect(screen.getByLabelText('Page')).toHaveValue('');
    expect(screen.getByRole('link', { name: /Open in new tab/ })).toHaveAttribute('href', '/mlflow/');
    expect(screen.getByRole('link', { name: /Open in new tab/ })).toHaveAttribute('target', '_blank');
  });

  it('accepts ?path= for the initial page', () => {
    renderApp(`/ui?path=${encodeURIComponent('#/experiments/1')}`);
    expect(frame()).toHaveAttribute('src', '/mlflow/#/experiments/1');
    expect(screen.getByLabelText('Page')).toHaveValue('#/experiments/1');
  });

  it('navigates the iframe from the deep-link box and updates ?path=', async () => {
    const user = userEvent.setup();
    renderApp('/ui');
    const input = screen.getByLabelText('Page');
    await user.type(input, '#/experiments/1{Enter}');
    expect(frame()).toHaveAttribute('src', '/mlflow/#/experiments/1');
    expect(screen.getByTestId('location')).toHaveTextContent(`/ui?path=${encodeURIComponent('#/experiments/1')}`);
    expect(screen.getByRole('link', { name: /Open in new tab/ })).toHaveAttribute('href', '/mlflow/#/experiments/1');

    await user.clear(input);
    await user.type(input, 'models/churn');
    await user.click(screen.getByRole('button', { name: 'Go' }));
    expect(frame()).toHaveAttribute('src', '/mlflow/#/models/churn');
  });

  it('rejects pages outside this proxy', async () => {
    const user = userEvent.setup();
    renderApp('/ui');
    await user.type(screen.getByLabelText('Page'), 'https://evil.example.com/x{Enter}');
    expect(screen.getByRole('alert')).toHaveTextContent('not a page of this proxy’s MLflow UI');
    expect(screen.getByLabelText('Page')).toHaveAttribute('aria-invalid', 'true');
    expect(frame()).toHaveAttribute('src', '/mlflow/');
  });

  it('changes only the hash when the frame already shows the UI', async () => {
    const user = userEvent.setup();
    renderApp('/ui?path=experiments/2');
    const before = frame();
    const input = screen.getByLabelText('Page');
    await user.clear(input);
    await user.type(input, '#/models{Enter}');
    expect(frame()).toBe(before);
    expect(frame().contentWindow?.location.href).toBe(`${window.location.origin}/mlflow/#/models`);
  });

  it('remounts the frame on reload when its window cannot be reached', async () => {
    const user = userEvent.setup();
    renderApp('/ui?path=experiments/2');
    const before = frame();
    Object.defineProperty(before, 'contentWindow', {
      get() {
        throw new DOMException('Blocked a frame', 'SecurityError');
      },
    });
    await user.click(screen.getByRole('button', { name: 'Reload' }));
    expect(frame()).not.toBe(before);
    expect(frame()).toHaveAttribute('src', '/mlflow/#/experiments/2');
  });
});
