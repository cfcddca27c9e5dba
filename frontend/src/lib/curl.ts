import type { HttpMethod } from '../api/types';

/** Single-quotes a string for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Makes a console path safe to send: adds a leading slash and encodes spaces
 * as %20 (the proxy wants `%20`, never a raw space).
 */
export function normalizeConsolePath(path: string): string {
  let p = path.trim();
  if (!p.startsWith('/')) p = `/${p}`;
  return p.replace(/ /g, '%20');
}

export interface CurlInput {
  method: HttpMethod;
  path: string;
  body?: string;
}

/** A `curl` command line that makes the same call against `origin` (e.g. window.location.origin). */
export function buildCurl({ method, path, body }: CurlInput, origin: string): string {
  const url = origin.replace(/\/+$/, '') + normalizeConsolePath(path);
  const first = method === 'GET' ? `curl ${shellQuote(url)}` : `curl -X ${method} ${shellQuote(url)}`;
  const lines = [first];
  const text = body?.trim() ?? '';
  if (method !== 'GET' && text) {
    let compact = text;
    try {
      compact = JSON.stringify(JSON.parse(text));
    } catch {
      // Not JSON: send it as typed.
    }
    lines.push("-H 'Content-Type: application/json'", `-d ${shellQuote(compact)}`);
  }
  return lines.join(' \\\n  ');
}
