// The one place the dashboard talks to the network: a small typed client for
// the proxy's own endpoints and the MLflow REST API 2.0, on this origin.
import type {
  CreateExperimentResponse,
  Experiment,
  GetExperimentResponse,
  GetMetricHistoryResponse,
  GetRegisteredModelResponse,
  Metric,
  MlflowErrorBody,
  ProxyIdentity,
  ProxyStats,
  ProxyStatus,
  RawRequest,
  RawResponse,
  RegisteredModel,
  SearchExperimentsResponse,
  SearchModelVersionsResponse,
  SearchRegisteredModelsResponse,
  SearchRunsRequest,
  SearchRunsResponse,
  ViewType,
} from './types';

import { formatProblem, problemsOf, type Problem, type Schema } from '../lib/check';
import { proxyIdentitySchema, proxyStatsSchema, proxyStatusSchema } from './schemas';

export const MLFLOW_API = '/api/2.0/mlflow';
export const PROXY_API = '/api/proxy';

/** An error from the proxy or MLflow, carrying the server's readable message. */
export class ApiError extends Error {
  /** HTTP status; 0 when the request never got a response. */
  readonly status: number;
  /** MLflow `error_code`, e.g. `RESOURCE_DOES_NOT_EXIST`, when the server sent one. */
  readonly errorCode: string | null;
  readonly method: string;
  readonly path: string;

  constructor(opts: { message: string; status: number; errorCode?: string | null; method: string; path: string }) {
    super(opts.message);
    this.name = 'ApiError';
    this.status = opts.status;
    this.errorCode = opts.errorCode ?? null;
    this.method = opts.method;
    this.path = opts.path;
  }

  get isNetworkError(): boolean {
    return this.status === 0;
  }

  get isClientError(): boolean {
    return this.status >= 400 && this.status < 500;
  }
}

/** How many differences a ResponseShapeError spells out in its message. */
const SHOWN_PROBLEMS = 3;

/**
 * A successful answer whose JSON is not what the dashboard's types describe (the server and the
 * dashboard disagree): says where and how, instead of failing later in some component.
 */
export class ResponseShapeError extends ApiError {
  readonly problems: Problem[];

  constructor(opts: { problems: Problem[]; status: number; method: string; path: string }) {
    const shown = opts.problems.slice(0, SHOWN_PROBLEMS).map(formatProblem).join('; ');
    const more = opts.problems.length > SHOWN_PROBLEMS ? ` (and ${opts.problems.length - SHOWN_PROBLEMS} more)` : '';
    super({
      message: `The answer to ${opts.method} ${opts.path} is not what this dashboard expects: ${shown}${more}`,
      status: opts.status,
      method: opts.method,
      path: opts.path,
    });
    this.name = 'ResponseShapeError';
    this.problems = opts.problems;
  }
}

export type QueryValue = string | number | boolean | null | undefined | readonly (string | number)[];

/**
 * Builds `?a=1&b=x%20y` with encodeURIComponent (spaces become `%20`, never `+`).
 * `null`/`undefined`/empty-string values are left out; arrays repeat the key.
 */
export function buildQuery(params: Record<string, QueryValue>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values as readonly (string | number | boolean)[]) {
      parts.push(`${encodeURIComponent(key)}=${encodeURIComponent(String(v))}`);
    }
  }
  return parts.length ? `?${parts.join('&')}` : '';
}

/**
 * Quotes a value for an MLflow search filter string. MLflow accepts single or
 * double quotes; it has no escape character, so a value holding a single quote
 * is put in double quotes.
 */
export function quoteFilterValue(value: string): string {
  if (!value.includes("'")) return `'${value}'`;
  if (!value.includes('"')) return `"${value}"`;
  // Both quote kinds: MLflow cannot express this; drop the double quotes.
  return `'${value.replace(/'/g, '')}'`;
}

/** `name ILIKE '%text%'` for a case-insensitive substring match, or undefined for blank input. */
export function nameContainsFilter(text: string): string | undefined {
  const t = text.trim();
  if (!t) return undefined;
  return `name ILIKE ${quoteFilterValue(`%${t}%`)}`;
}

function readableHttpStatus(status: number, statusText: string): string {
  return statusText ? `HTTP ${status} ${statusText}` : `HTTP ${status}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isErrorBody(v: unknown): v is MlflowErrorBody {
  return typeof v === 'object' && v !== null && ('message' in v || 'error_code' in v);
}

/** Maps a non-2xx response to a readable message (MLflow's `message` when present). */
export function errorFromResponse(
  status: number,
  statusText: string,
  text: string,
  method: string,
  path: string,
): ApiError {
  const json = parseJson(text);
  if (isErrorBody(json)) {
    const code = typeof json.error_code === 'string' ? json.error_code : null;
    const msg = typeof json.message === 'string' && json.message.trim() ? json.message : code;
    return new ApiError({ message: msg ?? readableHttpStatus(status, statusText), status, errorCode: code, method, path });
  }
  let message = readableHttpStatus(status, statusText);
  const trimmed = text.trim();
  if (trimmed && !trimmed.startsWith('<') && json === undefined) {
    message += `: ${trimmed.length > 300 ? `${trimmed.slice(0, 300)}…` : trimmed}`;
  }
  return new ApiError({ message, status, method, path });
}

interface RequestOptions<T> {
  query?: Record<string, QueryValue>;
  body?: unknown;
  signal?: AbortSignal;
  /** Checks the answer; keys the schema does not know are tolerated, anything else is an error. */
  schema?: Schema<T>;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface SearchExperimentsParams {
  filter?: string;
  viewType?: ViewType;
  maxResults?: number;
  orderBy?: string[];
  pageToken?: string;
}

export interface SearchRegisteredModelsParams {
  filter?: string;
  maxResults?: number;
  orderBy?: string[];
  pageToken?: string;
}

export interface ApiClient {
  // proxy
  getStatus(opts?: CallOptions): Promise<ProxyStatus>;
  getIdentity(opts?: CallOptions): Promise<ProxyIdentity>;
  getStats(opts?: CallOptions): Promise<ProxyStats>;
  // experiments
  searchExperiments(params: SearchExperimentsParams, opts?: CallOptions): Promise<SearchExperimentsResponse>;
  getExperiment(experimentId: string, opts?: CallOptions): Promise<Experiment>;
  createExperiment(name: string): Promise<CreateExperimentResponse>;
  renameExperiment(experimentId: string, newName: string): Promise<void>;
  deleteExperiment(experimentId: string): Promise<void>;
  restoreExperiment(experimentId: string): Promise<void>;
  // runs
  searchRuns(req: SearchRunsRequest, opts?: CallOptions): Promise<SearchRunsResponse>;
  getMetricHistory(runId: string, metricKey: string, opts?: CallOptions): Promise<Metric[]>;
  // model registry
  searchRegisteredModels(params: SearchRegisteredModelsParams, opts?: CallOptions): Promise<SearchRegisteredModelsResponse>;
  getRegisteredModel(name: string, opts?: CallOptions): Promise<RegisteredModel>;
  searchModelVersions(modelName: string, opts?: CallOptions): Promise<SearchModelVersionsResponse>;
  // console
  raw(req: RawRequest, opts?: CallOptions): Promise<RawResponse>;
}

export interface ClientOptions {
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** Prefix for every path; '' (same origin) by default. */
  baseUrl?: string;
  /** Clock for the console's timing; performance.now by default. */
  now?: () => number;
}

const MAX_HISTORY_PAGES = 50;
/** MLflow's largest metric-history page; without it MLflow 3 answers empty pages with a token. */
const HISTORY_PAGE_SIZE = 25000;

export function createApiClient(options: ClientOptions = {}): ApiClient {
  const doFetch: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const baseUrl = options.baseUrl ?? '';
  const now = options.now ?? (() => performance.now());

  async function send(method: string, path: string, init: RequestInit): Promise<Response> {
    try {
      return await doFetch(baseUrl + path, { ...init, method, credentials: 'same-origin' });
    } catch (err) {
      if (err instanceof DOMException && err.name === 'AbortError') throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new ApiError({ message: `Could not reach the proxy (${detail})`, status: 0, method, path });
    }
  }

  async function request<T>(method: 'GET' | 'POST', path: string, opts: RequestOptions<T> = {}): Promise<T> {
    const fullPath = path + (opts.query ? buildQuery(opts.query) : '');
    const headers: Record<string, string> = { Accept: 'application/json' };
    const init: RequestInit = { headers };
    if (opts.signal) init.signal = opts.signal;
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    const res = await send(method, fullPath, init);
    const text = await res.text();
    if (!res.ok) throw errorFromResponse(res.status, res.statusText, text, method, fullPath);
    const json = text.trim() ? parseJson(text) : {};
    if (json === undefined) {
      throw new ApiError({
        message: `The server sent a response that is not JSON (${readableHttpStatus(res.status, res.statusText)})`,
        status: res.status,
        method,
        path: fullPath,
      });
    }
    if (opts.schema) {
      const problems = problemsOf(opts.schema, json).filter((p) => !p.unknownKey);
      if (problems.length > 0) throw new ResponseShapeError({ problems, status: res.status, method, path: fullPath });
    }
    return json as T;
  }

  const mlflow = (p: string) => `${MLFLOW_API}/${p}`;

  return {
    getStatus: (o) => request<ProxyStatus>('GET', `${PROXY_API}/status`, { signal: o?.signal, schema: proxyStatusSchema }),
    getIdentity: (o) =>
      request<ProxyIdentity>('GET', `${PROXY_API}/identity`, { signal: o?.signal, schema: proxyIdentitySchema }),
    getStats: (o) => request<ProxyStats>('GET', `${PROXY_API}/stats`, { signal: o?.signal, schema: proxyStatsSchema }),

    searchExperiments: (p, o) =>
      request<SearchExperimentsResponse>('GET', mlflow('experiments/search'), {
        query: {
          max_results: p.maxResults ?? 100,
          filter: p.filter,
          view_type: p.viewType,
          order_by: p.orderBy,
          page_token: p.pageToken,
        },
        signal: o?.signal,
      }),
    getExperiment: async (experimentId, o) =>
      (
        await request<GetExperimentResponse>('GET', mlflow('experiments/get'), {
          query: { experiment_id: experimentId },
          signal: o?.signal,
        })
      ).experiment,
    createExperiment: (name) =>
      request<CreateExperimentResponse>('POST', mlflow('experiments/create'), { body: { name } }),
    renameExperiment: async (experimentId, newName) => {
      await request('POST', mlflow('experiments/update'), {
        body: { experiment_id: experimentId, new_name: newName },
      });
    },
    deleteExperiment: async (experimentId) => {
      await request('POST', mlflow('experiments/delete'), { body: { experiment_id: experimentId } });
    },
    restoreExperiment: async (experimentId) => {
      await request('POST', mlflow('experiments/restore'), { body: { experiment_id: experimentId } });
    },

    searchRuns: (req, o) => {
      const body: SearchRunsRequest = { ...req };
      if (!body.filter?.trim()) delete body.filter;
      return request<SearchRunsResponse>('POST', mlflow('runs/search'), { body, signal: o?.signal });
    },
    getMetricHistory: async (runId, metricKey, o) => {
      const all: Metric[] = [];
      let pageToken: string | undefined;
      for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
        const res = await request<GetMetricHistoryResponse>('GET', mlflow('metrics/get-history'), {
          query: { run_id: runId, metric_key: metricKey, max_results: HISTORY_PAGE_SIZE, page_token: pageToken },
          signal: o?.signal,
        });
        const metrics = res.metrics ?? [];
        all.push(...metrics);
        pageToken = res.next_page_token || undefined;
        // An empty page ends the history even if a token came with it.
        if (!pageToken || metrics.length === 0) break;
      }
      return all;
    },

    searchRegisteredModels: (p, o) =>
      request<SearchRegisteredModelsResponse>('GET', mlflow('registered-models/search'), {
        query: {
          max_results: p.maxResults ?? 100,
          filter: p.filter,
          order_by: p.orderBy,
          page_token: p.pageToken,
        },
        signal: o?.signal,
      }),
    getRegisteredModel: async (name, o) =>
      (
        await request<GetRegisteredModelResponse>('GET', mlflow('registered-models/get'), {
          query: { name },
          signal: o?.signal,
        })
      ).registered_model,
    searchModelVersions: (modelName, o) =>
      request<SearchModelVersionsResponse>('GET', mlflow('model-versions/search'), {
        query: { filter: `name=${quoteFilterValue(modelName)}` },
        signal: o?.signal,
      }),

    raw: async (req, o) => {
      const headers: Record<string, string> = { Accept: 'application/json' };
      const init: RequestInit = { headers };
      if (o?.signal) init.signal = o.signal;
      const hasBody = req.method !== 'GET' && req.body !== undefined && req.body.trim() !== '';
      if (hasBody) {
        headers['Content-Type'] = 'application/json';
        init.body = req.body;
      }
      const started = now();
      const res = await send(req.method, req.path, init);
      const body = await res.text();
      return {
        status: res.status,
        statusText: res.statusText,
        ok: res.ok,
        durationMs: now() - started,
        contentType: res.headers.get('content-type'),
        body,
      };
    },
  };
}
