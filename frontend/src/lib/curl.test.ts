import { describe, expect, it } from 'vitest';
import { buildCurl, normalizeConsolePath, shellQuote } from './curl';

describe('shellQuote', () => {
  it('wraps in single quotes and escapes embedded single quotes', () => {
    expect(shellQuote('abc')).toBe("'abc'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
});

describe('normalizeConsolePath', () => {
  it('adds the leading slash and encodes spaces as %20', () => {
    expect(normalizeConsolePath(" api/2.0/mlflow/experiments/search?filter=name LIKE 'a b' ")).toBe(
      "/api/2.0/mlflow/experiments/search?filter=name%20LIKE%20'a%20b'",
    );
  });
});

describe('buildCurl', () => {
  const origin = 'https://mlflow.example.com';

  it('makes a plain GET against the given origin', () => {
    expect(buildCurl({ method: 'GET', path: '/api/proxy/status' }, origin)).toBe("curl 'https://mlflow.example.com/api/proxy/status'");
  });

  it('ignores a body on GET', () => {
    expect(buildCurl({ method: 'GET', path: '/x', body: '{"a":1}' }, origin + '/')).toBe("curl 'https://mlflow.example.com/x'");
  });

  it('adds method, JSON content type and a compacted body for POST', () => {
    const curl = buildCurl(
      { method: 'POST', path: '/api/2.0/mlflow/runs/search', body: '{\n  "experiment_ids": ["1"],\n  "filter": "params.a = \'b\'"\n}' },
      origin,
    );
    expect(curl).toBe(
      [
        "curl -X POST 'https://mlflow.example.com/api/2.0/mlflow/runs/search' \\",
        "  -H 'Content-Type: application/json' \\",
        `  -d '{"experiment_ids":["1"],"filter":"params.a = '\\''b'\\''"}'`,
      ].join('\n'),
    );
  });

  it('sends a non-JSON body as typed', () => {
    expect(buildCurl({ method: 'DELETE', path: '/x', body: 'not json' }, origin)).toContain("-d 'not json'");
  });

  it('omits -d when the body is blank', () => {
    expect(buildCurl({ method: 'POST', path: '/x', body: '  ' }, origin)).toBe("curl -X POST 'https://mlflow.example.com/x'");
  });
});
