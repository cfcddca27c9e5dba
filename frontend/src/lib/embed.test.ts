import { describe, expect, it } from 'vitest';
import { allowsOtherOrigins, buildEmbedSnippet, describeFrameAncestors, embedPath, escapeHtmlAttr } from './embed';

const origin = 'https://proxy.example.com';

describe('embedPath', () => {
  it('builds MLflow UI hash routes', () => {
    expect(embedPath({ kind: 'home' }, origin)).toBe('/mlflow/');
    expect(embedPath({ kind: 'experiment', experimentId: ' 1 ' }, origin)).toBe('/mlflow/#/experiments/1');
    expect(embedPath({ kind: 'run', experimentId: '1', runId: 'abc' }, origin)).toBe('/mlflow/#/experiments/1/runs/abc');
    expect(embedPath({ kind: 'model', name: 'my model' }, origin)).toBe('/mlflow/#/models/my%20model');
    expect(embedPath({ kind: 'model', name: 'm', version: '3' }, origin)).toBe('/mlflow/#/models/m/versions/3');
    expect(embedPath({ kind: 'custom', path: 'experiments/4' }, origin)).toBe('/mlflow/#/experiments/4');
  });

  it('returns null while required fields are missing or the path is foreign', () => {
    expect(embedPath({ kind: 'experiment', experimentId: '' }, origin)).toBeNull();
    expect(embedPath({ kind: 'run', experimentId: '1', runId: ' ' }, origin)).toBeNull();
    expect(embedPath({ kind: 'model', name: '' }, origin)).toBeNull();
    expect(embedPath({ kind: 'custom', path: 'https://other.example.com/' }, origin)).toBeNull();
  });
});

describe('buildEmbedSnippet', () => {
  it('makes an iframe pointing at this origin', () => {
    const html = buildEmbedSnippet({ origin, path: '/mlflow/#/experiments/1', width: '100%', height: '600', title: 'Runs' });
    expect(html).toBe(
      [
        '<iframe',
        '  src="https://proxy.example.com/mlflow/#/experiments/1"',
        '  title="Runs"',
        '  width="100%"',
        '  height="600"',
        '  style="border:0"',
        '  loading="lazy"',
        '  referrerpolicy="same-origin"',
        '></iframe>',
      ].join('\n'),
    );
  });

  it('escapes attribute values and fills defaults', () => {
    const html = buildEmbedSnippet({ origin: origin + '/', path: '/mlflow/', width: '', height: '', title: 'a "b" <c>' });
    expect(html).toContain('src="https://proxy.example.com/mlflow/"');
    expect(html).toContain('title="a &quot;b&quot; &lt;c&gt;"');
    expect(html).toContain('width="100%"');
    expect(html).toContain('height="800"');
    expect(escapeHtmlAttr('&')).toBe('&amp;');
  });
});

describe('frame ancestors', () => {
  it('describes each source', () => {
    expect(describeFrameAncestors(["'self'", 'https://portal.example.com', '*', "'none'", 'https:', 'https://*.corp.example'], origin)).toEqual([
      { source: "'self'", label: "This proxy's own origin (https://proxy.example.com)" },
      { source: 'https://portal.example.com', label: 'https://portal.example.com' },
      { source: '*', label: 'Any origin' },
      { source: "'none'", label: 'No page may embed the UI' },
      { source: 'https:', label: 'Any origin using https' },
      { source: 'https://*.corp.example', label: 'Origins matching https://*.corp.example' },
    ]);
  });

  it('knows whether other origins may embed', () => {
    expect(allowsOtherOrigins(["'self'"])).toBe(false);
    expect(allowsOtherOrigins(["'self'", 'https://portal.example.com'])).toBe(true);
  });
});
