import { MLFLOW_UI_BASE, toMlflowUiSrc } from './deeplink';

export type EmbedTarget =
  | { kind: 'home' }
  | { kind: 'experiment'; experimentId: string }
  | { kind: 'run'; experimentId: string; runId: string }
  | { kind: 'model'; name: string; version?: string }
  | { kind: 'custom'; path: string };

const seg = (s: string) => encodeURIComponent(s.trim());

/** The proxied MLflow UI path for a target, e.g. `/mlflow/#/experiments/1`; null when incomplete. */
export function embedPath(target: EmbedTarget, origin: string): string | null {
  switch (target.kind) {
    case 'home':
      return MLFLOW_UI_BASE;
    case 'experiment':
      return target.experimentId.trim() ? `${MLFLOW_UI_BASE}#/experiments/${seg(target.experimentId)}` : null;
    case 'run':
      return target.experimentId.trim() && target.runId.trim()
        ? `${MLFLOW_UI_BASE}#/experiments/${seg(target.experimentId)}/runs/${seg(target.runId)}`
        : null;
    case 'model': {
      if (!target.name.trim()) return null;
      const base = `${MLFLOW_UI_BASE}#/models/${seg(target.name)}`;
      return target.version?.trim() ? `${base}/versions/${seg(target.version)}` : base;
    }
    case 'custom':
      return toMlflowUiSrc(target.path, origin);
  }
}

export function escapeHtmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export interface SnippetOptions {
  origin: string;
  path: string;
  width: string;
  height: string;
  title: string;
}

/** `<iframe src="https://origin/mlflow/#/..." ...></iframe>` to paste into a portal page. */
export function buildEmbedSnippet({ origin, path, width, height, title }: SnippetOptions): string {
  const src = origin.replace(/\/+$/, '') + path;
  const attrs = [
    `src="${escapeHtmlAttr(src)}"`,
    `title="${escapeHtmlAttr(title || 'MLflow')}"`,
    `width="${escapeHtmlAttr(width || '100%')}"`,
    `height="${escapeHtmlAttr(height || '800')}"`,
    'style="border:0"',
    'loading="lazy"',
    'referrerpolicy="same-origin"',
  ];
  return `<iframe\n  ${attrs.join('\n  ')}\n></iframe>`;
}

export interface AncestorDescription {
  source: string;
  label: string;
}

/** Human-readable meaning of each CSP frame-ancestors source. */
export function describeFrameAncestors(sources: string[], origin: string): AncestorDescription[] {
  return sources.map((source) => {
    switch (source) {
      case "'self'":
        return { source, label: `This proxy's own origin (${origin})` };
      case "'none'":
        return { source, label: 'No page may embed the UI' };
      case '*':
        return { source, label: 'Any origin' };
      default:
        if (source.endsWith(':') && !source.includes('/')) return { source, label: `Any origin using ${source.slice(0, -1)}` };
        if (source.includes('*')) return { source, label: `Origins matching ${source}` };
        return { source, label: source };
    }
  });
}

/** True when the list lets some origin other than this proxy embed the UI. */
export function allowsOtherOrigins(sources: string[]): boolean {
  return sources.some((s) => s !== "'self'" && s !== "'none'");
}
