// Maps what a person types into the MLflow UI deep-link box (or `?path=`)
// to a URL of the proxied UI on this origin. The MLflow UI routes with the
// URL hash, so every page lives at `/mlflow/#/<route>`.

export const MLFLOW_UI_BASE = '/mlflow/';

/**
 * Accepts `#/experiments/1`, `/experiments/1`, `experiments/1`,
 * `/mlflow/#/experiments/1` or a full URL of this origin, and returns
 * `/mlflow/#/experiments/1`. Blank input gives the UI's home `/mlflow/`.
 * Returns null for URLs of other origins or non-http schemes.
 */
export function toMlflowUiSrc(input: string, origin: string): string | null {
  let s = input.trim();
  if (!s) return MLFLOW_UI_BASE;
  if (/^[a-z][a-z0-9+.-]*:/i.test(s)) {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      return null;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.origin !== origin) return null;
    s = url.pathname + url.search + url.hash;
  } else if (s.startsWith('//')) {
    return null;
  }
  // Strip the proxy's mount point.
  if (s === '/mlflow' || s === 'mlflow') return MLFLOW_UI_BASE;
  s = s.replace(/^\/?mlflow\//, '/');
  // A hash route: `#/x`, `/#/x`, `/?o=1#/x` — the route is what follows the `#`.
  const hashAt = s.indexOf('#');
  if (hashAt >= 0) {
    const route = s.slice(hashAt + 1).replace(/^\/+/, '');
    return route ? `${MLFLOW_UI_BASE}#/${route}` : MLFLOW_UI_BASE;
  }
  const route = s.replace(/^\/+/, '');
  return route ? `${MLFLOW_UI_BASE}#/${route}` : MLFLOW_UI_BASE;
}

/** The hash route (`#/experiments/1`) of a proxied-UI URL, or '' for the home page. */
export function uiRouteOf(src: string): string {
  const at = src.indexOf('#');
  if (at < 0) return '';
  const route = src.slice(at);
  return route === '#' || route === '#/' ? '' : route;
}

/** Dashboard link to the MLflow UI page showing `route` (e.g. `#/experiments/1`). */
export function uiPageLink(route: string): string {
  return `/ui?path=${encodeURIComponent(route)}`;
}

/**
 * Where a link MLflow printed should go. MLflow prints run and experiment links as
 * `<tracking URI>/#/experiments/1/runs/abc`, and with the proxy as tracking URI that is the
 * dashboard's root with a hash route. The dashboard routes by path, never by hash, so such a link
 * is meant for the MLflow UI: returns `/mlflow/#/experiments/1/runs/abc` (the hash kept verbatim,
 * the query dropped), or null when the location is anything else.
 */
export function printedLinkTarget(location: { pathname: string; hash: string }): string | null {
  if (location.pathname !== '/' || !location.hash.startsWith('#/')) return null;
  return location.hash.length > 2 ? `${MLFLOW_UI_BASE}${location.hash}` : null;
}
