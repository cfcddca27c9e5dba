import { describe, expect, it } from 'vitest';
import { printedLinkTarget, toMlflowUiSrc, uiPageLink, uiRouteOf } from './deeplink';

const origin = 'https://proxy.example.com';

describe('toMlflowUiSrc', () => {
  it.each([
    ['#/experiments/1', '/mlflow/#/experiments/1'],
    ['/#/experiments/1', '/mlflow/#/experiments/1'],
    ['/experiments/1', '/mlflow/#/experiments/1'],
    ['experiments/1', '/mlflow/#/experiments/1'],
    ['/mlflow/#/experiments/1', '/mlflow/#/experiments/1'],
    ['mlflow/#/models/m', '/mlflow/#/models/m'],
    ['  #/experiments/1/runs/abc?o=1  ', '/mlflow/#/experiments/1/runs/abc?o=1'],
    ['https://proxy.example.com/mlflow/#/models/x', '/mlflow/#/models/x'],
    ['', '/mlflow/'],
    ['#', '/mlflow/'],
    ['#/', '/mlflow/'],
    ['/mlflow', '/mlflow/'],
    ['/mlflow/', '/mlflow/'],
  ])('%j → %s', (input, expected) => {
    expect(toMlflowUiSrc(input, origin)).toBe(expected);
  });

  it.each(['https://evil.example.com/mlflow/#/x', 'javascript:alert(1)', '//evil.example.com/x', 'http://proxy.example.com/mlflow/'])(
    'refuses %s',
    (input) => {
      expect(toMlflowUiSrc(input, origin)).toBeNull();
    },
  );
});

describe('uiRouteOf / uiPageLink', () => {
  it('extracts the hash route', () => {
    expect(uiRouteOf('/mlflow/#/experiments/1')).toBe('#/experiments/1');
    expect(uiRouteOf('/mlflow/')).toBe('');
    expect(uiRouteOf('/mlflow/#/')).toBe('');
  });

  it('makes a dashboard link with the route in ?path=', () => {
    expect(uiPageLink('#/experiments/1')).toBe('/ui?path=%23%2Fexperiments%2F1');
  });
});

describe('printedLinkTarget (links MLflow prints: <tracking URI>/#/...)', () => {
  it.each([
    ['/', '#/experiments/1', '/mlflow/#/experiments/1'],
    ['/', '#/experiments/1/runs/0f3c9a', '/mlflow/#/experiments/1/runs/0f3c9a'],
    ['/', '#/models/churn/versions/2', '/mlflow/#/models/churn/versions/2'],
    ['/', '#/experiments/1/runs/abc?o=1&x=%2F', '/mlflow/#/experiments/1/runs/abc?o=1&x=%2F'],
  ])('%s%s → %s', (pathname, hash, expected) => {
    expect(printedLinkTarget({ pathname, hash })).toBe(expected);
  });

  it.each([
    ['/', ''],
    ['/', '#'],
    ['/', '#/'],
    ['/', '#section'],
    ['/experiments', '#/experiments/1'],
    ['/ui', '#/experiments/1'],
    ['/mlflow/', '#/experiments/1'],
  ])('leaves %s%s to the dashboard', (pathname, hash) => {
    expect(printedLinkTarget({ pathname, hash })).toBeNull();
  });
});
