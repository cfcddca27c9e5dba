//! The one MLflow route table: which paths belong to MLflow's HTTP API (the server forwards them) and
//! the class of each operation, `read`, `write`, `delete` or `admin` (the gate's policy, metrics, logs).
//!
//! Both questions are answered from [`ROOTS`]: a path is MLflow's when one of its roots claims it, and
//! the root that claims it says how its operations are classed. Paths are matched after the proxy's own
//! checks (no `..`, no `//`), case-sensitively, on the upstream path (the `/mlflow` UI prefix already
//! stripped). The `/api` and `/ajax-api` twins and the 2.0 and 3.0 versions share one entry. A path
//! under `/api/` that no operation lists is still MLflow's (a newer server may have it) but its class
//! is unknown, and unknown routes are denied when a policy is in force.
//!
//! The table is checked against every route MLflow 2.13 to 3.17 registers (`tests/route_coverage.rs`
//! reads `tests/routes/mlflow-<version>.json`, extracted from MLflow itself): each is claimed and
//! classified, and the class agrees with the operation's name. An operation is classed by what it does:
//! `read` changes nothing; `write` creates or changes what users own (and runs what spends money: LLM
//! calls through the AI gateway, judges, the assistant); `delete` removes entities (removing a tag is a
//! `write`); `admin` is the server's configuration: users and permissions, webhooks, workspaces, the AI
//! gateway's endpoints, keys and budgets, the assistant's provider and skills, and stage transitions.

use http::Method;

pub use crate::mlflow::class::Class;
use crate::mlflow::graphql;

/// How the operations under one root are classed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    /// Operations looked up in a table by the rest of the path.
    Operations(&'static [Operation]),
    /// The artifact API (`mlflow-artifacts/artifacts/<path>`, multipart uploads, presigned URLs).
    Artifacts,
    /// `/graphql`: a query reads, a mutation writes.
    GraphQl,
    /// A single operation on the root's own path.
    Single(Methods, Class),
    /// MLflow's, but listing no operation (a newer server's route, or a misspelt one).
    Unlisted,
}

/// Every root of MLflow's HTTP API, first match wins. A root ending in `/` claims every path under
/// it; any other claims its own path and the paths below it (PROTOCOL.md section 4).
const ROOTS: &[(&str, Root)] = &[
    ("/api/2.0/mlflow/", Root::Operations(OPERATIONS)),
    ("/api/3.0/mlflow/", Root::Operations(OPERATIONS)),
    ("/ajax-api/2.0/mlflow/", Root::Operations(OPERATIONS)),
    ("/ajax-api/3.0/mlflow/", Root::Operations(OPERATIONS)),
    ("/api/2.0/mlflow-artifacts/", Root::Artifacts),
    ("/ajax-api/2.0/mlflow-artifacts/", Root::Artifacts),
    // MLflow 3.10's background jobs (FastAPI; 3.17 moved them under `mlflow/jobs/`).
    ("/api/3.0/jobs", Root::Operations(JOBS)),
    ("/ajax-api/3.0/jobs", Root::Operations(JOBS)),
    // MLflow 2.16 and later register SearchDatasets here too, a slash missing in its proto file.
    (
        "/api/2.0mlflow/experiments/search-datasets",
        Root::Single(Methods::Post, Class::Read),
    ),
    (
        "/ajax-api/2.0mlflow/experiments/search-datasets",
        Root::Single(Methods::Post, Class::Read),
    ),
    ("/api/", Root::Unlisted),
    ("/ajax-api/", Root::Unlisted),
    ("/graphql", Root::GraphQl),
    ("/get-artifact", Root::Single(Methods::Get, Class::Read)),
    (
        "/model-versions/get-artifact",
        Root::Single(Methods::Get, Class::Read),
    ),
    ("/version", Root::Single(Methods::Get, Class::Read)),
    ("/health", Root::Single(Methods::Get, Class::Read)),
    // OTLP trace ingestion (MLflow 3.4 and later).
    ("/v1/traces", Root::Single(Methods::Post, Class::Write)),
    // The AI gateway's invocation routes (MLflow 3.10 and later).
    ("/gateway/", Root::Operations(GATEWAY_INVOCATIONS)),
];

/// The proxy's own JSON API lives under `/api/` but is never forwarded.
pub const PROXY_API_PREFIX: &str = "/api/proxy/";

/// The root that claims `path`, and the rest of the path below it.
fn claim(path: &str) -> Option<(Root, &str)> {
    ROOTS.iter().find_map(|(root_path, root)| {
        let rest = path.strip_prefix(root_path)?;
        let claimed = root_path.ends_with('/') || rest.is_empty() || rest.starts_with('/');
        claimed.then_some((*root, rest))
    })
}

/// Whether `path` belongs to MLflow's HTTP API (and is therefore forwarded upstream).
pub fn is_mlflow_api_path(path: &str) -> bool {
    if path.starts_with(PROXY_API_PREFIX) || path == "/api/proxy" {
        return false;
    }
    claim(path).is_some()
}

/// The path with one trailing slash dropped (MLflow's routes answer both ways).
fn without_trailing_slash(path: &str) -> &str {
    path.strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path)
}

/// Whether `path` is MLflow's GraphQL endpoint, whose class depends on the query in its body.
pub fn is_graphql(path: &str) -> bool {
    claim(without_trailing_slash(path)) == Some((Root::GraphQl, ""))
}

/// The MLflow REST operation a path names (`experiments/create` for
/// `/api/2.0/mlflow/experiments/create`), when the path is under one of the REST roots.
pub fn rest_operation(path: &str) -> Option<&str> {
    match claim(without_trailing_slash(path)) {
        Some((Root::Operations(table), rest)) if std::ptr::eq(table, OPERATIONS) => Some(rest),
        _ => None,
    }
}

/// The part of an artifact API path after `mlflow-artifacts/` (still percent-encoded), when `path`
/// is one.
pub fn artifact_api_rest(path: &str) -> Option<&str> {
    match claim(path) {
        Some((Root::Artifacts, rest)) => Some(rest),
        _ => None,
    }
}

/// What a request is, decided once by the pipeline, for metrics, traces and logs: an MLflow operation
/// of a class, a page or asset of the UI, or a route the table does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    Operation(Class),
    Ui,
    Unknown,
}

impl RouteClass {
    /// The label in metrics and logs: `read`, `write`, `delete`, `admin`, `ui` or `unknown`.
    pub fn label(self) -> &'static str {
        match self {
            RouteClass::Operation(class) => class.name(),
            RouteClass::Ui => "ui",
            RouteClass::Unknown => "unknown",
        }
    }

    /// The class of a classified request; UI reads count as `ui`.
    pub fn of(class: Option<Class>, is_ui: bool) -> Self {
        match class {
            Some(Class::Read) if is_ui => RouteClass::Ui,
            Some(class) => RouteClass::Operation(class),
            None => RouteClass::Unknown,
        }
    }
}

/// Which methods an entry applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Methods {
    /// GET and HEAD.
    Get,
    Post,
    /// GET, HEAD and POST (MLflow accepts several read calls both ways).
    GetOrPost,
    Put,
    Patch,
    Delete,
}

impl Methods {
    fn matches(self, method: &Method) -> bool {
        let get = *method == Method::GET || *method == Method::HEAD;
        match self {
            Methods::Get => get,
            Methods::Post => *method == Method::POST,
            Methods::GetOrPost => get || *method == Method::POST,
            Methods::Put => *method == Method::PUT,
            Methods::Patch => *method == Method::PATCH,
            Methods::Delete => *method == Method::DELETE,
        }
    }
}

/// One operation: the methods, the path pattern below its root, the class. In a pattern `*` matches
/// one path segment and `**` one or more (MLflow's `{name:path}` parameters hold slashes).
type Operation = (Methods, &'static str, Class);

use Class::*;
use Methods::{Delete as Del, Get, GetOrPost, Patch, Post, Put};

/// MLflow REST operations under `{api,ajax-api}/{2.0,3.0}/mlflow/`, first match wins.
const OPERATIONS: &[Operation] = &[
    // experiments
    (GetOrPost, "experiments/search", Read),
    (Get, "experiments/get", Read),
    (Get, "experiments/get-by-name", Read),
    (Post, "experiments/search-datasets", Read),
    (Post, "experiments/create", Write),
    (Post, "experiments/update", Write),
    (Post, "experiments/set-experiment-tag", Write),
    (Post, "experiments/delete-experiment-tag", Write),
    (Post, "experiments/restore", Write),
    (Post, "experiments/delete", Delete),
    // runs, metrics, params, tags, inputs, outputs
    (Get, "runs/get", Read),
    (GetOrPost, "runs/search", Read),
    (Get, "metrics/get-history", Read),
    (GetOrPost, "metrics/get-history-bulk", Read),
    (GetOrPost, "metrics/get-history-bulk-interval", Read),
    (Get, "artifacts/list", Read),
    (Post, "runs/create", Write),
    (Post, "runs/create-promptlab-run", Write),
    (Post, "runs/update", Write),
    (Post, "runs/log-metric", Write),
    (Post, "runs/log-parameter", Write),
    (Post, "runs/log-batch", Write),
    (Post, "runs/log-model", Write),
    (Post, "runs/log-inputs", Write),
    (Post, "runs/outputs", Write),
    (Post, "runs/set-tag", Write),
    (Post, "runs/delete-tag", Write),
    (Post, "runs/restore", Write),
    (Post, "runs/delete", Delete),
    // artifacts beyond the artifact API: the UI's upload, presigned URLs (a download URL only reads)
    (Post, "upload-artifact", Write),
    (Post, "artifacts/presigned-download-url", Read),
    (Post, "artifacts/presigned-upload-url", Write),
    // model registry
    (GetOrPost, "registered-models/search", Read),
    (Get, "registered-models/get", Read),
    (GetOrPost, "registered-models/get-latest-versions", Read),
    (Get, "registered-models/alias", Read),
    (GetOrPost, "model-versions/search", Read),
    (Get, "model-versions/get", Read),
    (Get, "model-versions/get-download-uri", Read),
    (Post, "registered-models/create", Write),
    (Post, "registered-models/rename", Write),
    (Patch, "registered-models/update", Write),
    (Post, "registered-models/set-tag", Write),
    (Del, "registered-models/delete-tag", Write),
    (Post, "registered-models/alias", Write),
    (Post, "model-versions/create", Write),
    (Patch, "model-versions/update", Write),
    (Post, "model-versions/set-tag", Write),
    (Del, "model-versions/delete-tag", Write),
    (Del, "registered-models/alias", Delete),
    (Del, "registered-models/delete", Delete),
    (Del, "model-versions/delete", Delete),
    (Post, "model-versions/transition-stage", Admin),
    // logged models (MLflow 3)
    (GetOrPost, "logged-models/search", Read),
    (Get, "logged-models/*", Read),
    (Get, "logged-models/*/artifacts/directories", Read),
    (Get, "logged-models/*/artifacts/files", Read),
    (Post, "logged-models", Write),
    (Patch, "logged-models/*", Write),
    (Post, "logged-models/*/params", Write),
    (Patch, "logged-models/*/tags", Write),
    (Del, "logged-models/*/tags/*", Write),
    (Del, "logged-models/*", Delete),
    // traces and assessments
    (GetOrPost, "traces/search", Read),
    (Get, "traces", Read),
    (Get, "traces/get", Read),
    (Get, "traces/batchGet", Read),
    (Post, "traces/batchGetInfos", Read),
    (Post, "traces/metrics", Read),
    (Post, "traces/calculate-filter-correlation", Read),
    (Get, "traces/*", Read),
    (Get, "traces/*/info", Read),
    (Get, "traces/*/assessments/*", Read),
    (Get, "get-trace-artifact", Read),
    (Get, "get-online-trace-details", Read),
    (Get, "unified-traces", Read),
    (Post, "traces", Write),
    (Post, "traces/link-prompts", Write),
    (Post, "traces/link-to-run", Write),
    (Patch, "traces/*", Write),
    (Patch, "traces/*/tags", Write),
    (Del, "traces/*/tags", Write),
    (Post, "traces/*/assessments", Write),
    (Patch, "traces/*/assessments/*", Write),
    (Post, "traces/delete-traces", Delete),
    (Del, "traces/*/assessments/*", Delete),
    // evaluation datasets
    (GetOrPost, "datasets/search", Read),
    (Get, "datasets/*", Read),
    (Get, "datasets/*/experiment-ids", Read),
    (Get, "datasets/*/records", Read),
    (Post, "datasets/create", Write),
    (Post, "datasets/*/records", Write),
    (Post, "datasets/*/add-experiments", Write),
    (Post, "datasets/*/remove-experiments", Write),
    (Patch, "datasets/*/tags", Write),
    (Del, "datasets/*/tags/*", Write),
    (Del, "datasets/*/records", Delete),
    (Del, "datasets/*", Delete),
    // scorers and judges (running one calls an LLM and logs assessments)
    (Get, "scorers/list", Read),
    (Get, "scorers/get", Read),
    (Get, "scorers/versions", Read),
    (Get, "scorers/online-configs", Read),
    (Post, "scorers/register", Write),
    (Put, "scorers/online-config", Write),
    (Del, "scorers/delete", Delete),
    (Post, "scorer/invoke", Write),
    (Post, "genai/evaluate/invoke", Write),
    // issues, label schemas, review queues (MLflow 3.17)
    (Post, "issues/search", Read),
    (Get, "issues/*", Read),
    (Post, "issues", Write),
    (Patch, "issues/*", Write),
    (Post, "issues/invoke", Write),
    (Get, "label-schemas/get", Read),
    (Get, "label-schemas/get-by-name", Read),
    (Get, "label-schemas/list", Read),
    (Post, "label-schemas/create", Write),
    (Patch, "label-schemas/update", Write),
    (Del, "label-schemas/delete", Delete),
    (Get, "review-queues/get", Read),
    (Get, "review-queues/get-by-name", Read),
    (Get, "review-queues/list", Read),
    (Get, "review-queues/items/list", Read),
    (Post, "review-queues/create", Write),
    (Post, "review-queues/update", Write),
    // creates the caller's queue when it has none
    (Post, "review-queues/get-or-create-user", Write),
    (Post, "review-queues/items/add", Write),
    (Post, "review-queues/items/remove", Write),
    (Post, "review-queues/items/set-status", Write),
    (Post, "review-queues/delete", Delete),
    // prompt optimization and background jobs
    (GetOrPost, "prompt-optimization/jobs/search", Read),
    (Get, "prompt-optimization/jobs/*", Read),
    (Post, "prompt-optimization/jobs", Write),
    (Post, "prompt-optimization/jobs/*/cancel", Write),
    (Del, "prompt-optimization/jobs/*", Delete),
    (Get, "jobs/*", Read),
    (Patch, "jobs/cancel/*", Write),
    // MCP server registry (MLflow 3.17): names may hold slashes, so one pattern per method
    (Get, "mcp-servers", Read),
    (Get, "mcp-servers/**", Read),
    (Post, "mcp-servers", Write),
    (Post, "mcp-servers/**", Write),
    (Patch, "mcp-servers/**", Write),
    (Del, "mcp-servers/**/tags/**", Write),
    (Del, "mcp-servers/**", Delete),
    // the server and the UI's own calls
    (Get, "server-info", Read),
    (GetOrPost, "ui-telemetry", Read),
    (Get, "gateway-proxy", Read),
    (Post, "gateway-proxy", Write),
    (Post, "demo/generate", Write),
    (Post, "demo/delete", Delete),
    // the assistant: reading its answer (a server-sent-events stream) reads; asking it writes
    (Get, "assistant/config", Read),
    (Get, "assistant/providers", Read),
    (Get, "assistant/providers/*/health", Read),
    (Get, "assistant/providers/*/models", Read),
    (Get, "assistant/sessions/*/stream", Read),
    (Post, "assistant/message", Write),
    (Patch, "assistant/sessions/*", Write),
    (Post, "assistant/sessions/*/permission", Write),
    (Post, "assistant/sessions/*/tool-result", Write),
    (Put, "assistant/config", Admin),
    (Post, "assistant/skills/install", Admin),
    // the AI gateway's configuration: reading it reads; changing endpoints, keys, budgets is admin
    (Get, "gateway/supported-providers", Read),
    (Get, "gateway/supported-models", Read),
    (Get, "gateway/provider-config", Read),
    (Get, "gateway/secrets/config", Read),
    (Get, "gateway/secrets/get", Read),
    (Get, "gateway/secrets/list", Read),
    (Get, "gateway/endpoints/get", Read),
    (Get, "gateway/endpoints/list", Read),
    (Get, "gateway/endpoints/bindings/list", Read),
    (Get, "gateway/model-definitions/get", Read),
    (Get, "gateway/model-definitions/list", Read),
    (Get, "gateway/budgets/get", Read),
    (Get, "gateway/budgets/list", Read),
    (Get, "gateway/budgets/windows", Read),
    (Get, "gateway/guardrails/get", Read),
    (Get, "gateway/guardrails/list", Read),
    (Get, "gateway/guardrails/list-for-endpoint", Read),
    (Post, "gateway/secrets/create", Admin),
    (Post, "gateway/secrets/update", Admin),
    (Del, "gateway/secrets/delete", Admin),
    (Post, "gateway/endpoints/create", Admin),
    (Post, "gateway/endpoints/update", Admin),
    (Del, "gateway/endpoints/delete", Admin),
    (Post, "gateway/endpoints/set-tag", Admin),
    (Del, "gateway/endpoints/delete-tag", Admin),
    (Post, "gateway/endpoints/bindings/create", Admin),
    (Del, "gateway/endpoints/bindings/delete", Admin),
    (Post, "gateway/endpoints/models/attach", Admin),
    (Post, "gateway/endpoints/models/detach", Admin),
    (Post, "gateway/model-definitions/create", Admin),
    (Post, "gateway/model-definitions/update", Admin),
    (Del, "gateway/model-definitions/delete", Admin),
    (Post, "gateway/budgets/create", Admin),
    (Post, "gateway/budgets/update", Admin),
    (Del, "gateway/budgets/delete", Admin),
    (Post, "gateway/guardrails/create", Admin),
    (Del, "gateway/guardrails/delete", Admin),
    (Post, "gateway/guardrails/add-to-endpoint", Admin),
    (Del, "gateway/guardrails/remove-from-endpoint", Admin),
    (Patch, "gateway/guardrails/update-config", Admin),
    // workspaces: which exist is a read (the UI lists them); changing them is admin
    (Get, "workspaces", Read),
    (Get, "workspaces/*", Read),
    (Post, "workspaces", Admin),
    (Patch, "workspaces/*", Admin),
    (Del, "workspaces/*", Admin),
    // webhooks (where events go, and with which secret) and permissions (MLflow's auth app)
    (GetOrPost, "webhooks", Admin),
    (Get, "webhooks/*", Admin),
    (Patch, "webhooks/*", Admin),
    (Del, "webhooks/*", Admin),
    (Post, "webhooks/*/test", Admin),
    (GetOrPost, "users/*", Admin),
    (GetOrPost, "experiments/permissions/*", Admin),
    (Patch, "experiments/permissions/*", Admin),
    (Del, "experiments/permissions/*", Admin),
    (GetOrPost, "registered-models/permissions/*", Admin),
    (Patch, "registered-models/permissions/*", Admin),
    (Del, "registered-models/permissions/*", Admin),
];

/// MLflow 3.10's background jobs under `{api,ajax-api}/3.0/jobs`.
const JOBS: &[Operation] = &[
    (Post, "search", Read),
    (Get, "*", Read),
    (Post, "", Write),
    (Patch, "cancel/*", Write),
];

/// The AI gateway's invocations under `/gateway/`: each runs a model on the gateway's provider keys,
/// which costs money and changes nothing in MLflow, so it is a `write` (never allowed read-only).
const GATEWAY_INVOCATIONS: &[Operation] = &[(Get, "mlflow/v1/models", Read), (Post, "**", Write)];

/// The first `/`-separated segment of `path`, and what follows its `/`.
fn split_segment(path: &str) -> (&str, Option<&str>) {
    match path.split_once('/') {
        Some((head, tail)) => (head, Some(tail)),
        None => (path, None),
    }
}

/// Whether `path` matches `pattern` segment by segment (`*` one non-empty segment, `**` one or more).
fn segments_match(pattern: &str, path: &str) -> bool {
    let (wanted, pattern_rest) = split_segment(pattern);
    if wanted == "**" {
        return any_segments_match(pattern_rest, path);
    }
    let (segment, path_rest) = split_segment(path);
    let segment_ok = wanted == segment || (wanted == "*" && !segment.is_empty());
    segment_ok
        && match (pattern_rest, path_rest) {
            (None, None) => true,
            (Some(pattern), Some(path)) => segments_match(pattern, path),
            _ => false,
        }
}

/// `**` followed by `pattern_rest`: one or more non-empty segments of `path`, then the rest.
fn any_segments_match(pattern_rest: Option<&str>, path: &str) -> bool {
    let mut remaining = path;
    loop {
        let (segment, path_rest) = split_segment(remaining);
        if segment.is_empty() {
            return false;
        }
        match (pattern_rest, path_rest) {
            (None, None) => return true,
            (Some(pattern), Some(path)) if segments_match(pattern, path) => return true,
            (_, Some(path)) => remaining = path,
            (_, None) => return false,
        }
    }
}

/// Classifies an upstream path and method. `graphql_body` is the body of a `/graphql` request (MLflow
/// reads the document from the body for GET and POST alike).
pub fn classify(method: &Method, path: &str, graphql_body: Option<&[u8]>) -> Option<Class> {
    let trimmed = without_trailing_slash(path);
    let get = Methods::Get.matches(method);
    match claim(trimmed) {
        Some((Root::Operations(operations), rest)) => {
            // Roots without a trailing slash leave one at the start of the rest.
            let operation = rest.strip_prefix('/').unwrap_or(rest);
            operations
                .iter()
                .find(|(methods, pattern, _)| {
                    methods.matches(method) && segments_match(pattern, operation)
                })
                .map(|(_, _, class)| *class)
        }
        Some((Root::Artifacts, rest)) => classify_artifact_call(method, rest),
        Some((Root::GraphQl, "")) if get || *method == Method::POST => {
            graphql::class_of_body(graphql_body.unwrap_or_default())
        }
        Some((Root::Single(methods, class), "")) if methods.matches(method) => Some(class),
        Some(_) => None,
        // The UI's own files (index and static assets under /mlflow/).
        None if get && is_ui_file(trimmed) => Some(Read),
        None => None,
    }
}

/// The class of an artifact API call, from what follows `mlflow-artifacts/`.
fn classify_artifact_call(method: &Method, rest: &str) -> Option<Class> {
    let under_artifacts = rest == "artifacts" || rest.starts_with("artifacts/");
    let mpu = ["mpu/create/", "mpu/complete/", "mpu/abort/"]
        .iter()
        .any(|p| rest.starts_with(p));
    // MLflow 3.17: a presigned download URL for an artifact.
    let presigned = rest.starts_with("presigned/");
    match *method {
        Method::GET | Method::HEAD if under_artifacts || presigned => Some(Read),
        Method::PUT if under_artifacts => Some(Write),
        Method::DELETE if under_artifacts => Some(Delete),
        Method::POST if mpu => Some(Write),
        _ => None,
    }
}

/// The MLflow UI's index page and static assets (served under `/mlflow/`; `/build/` is Flask's
/// static folder, which MLflow registers too).
fn is_ui_file(path: &str) -> bool {
    path == "/"
        || path == "/favicon.ico"
        || path.starts_with("/static-files/")
        || path.starts_with("/build/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_paths() {
        for path in [
            "/api/2.0/mlflow/experiments/search",
            "/api/3.0/mlflow/traces/search",
            "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/a%20b.txt",
            "/ajax-api/2.0/mlflow/metrics/get-history-bulk",
            "/get-artifact",
            "/model-versions/get-artifact",
            "/graphql",
            "/version",
            "/health",
            "/v1/traces",
        ] {
            assert!(is_mlflow_api_path(path), "{path}");
        }
        for path in [
            "/",
            "/api/proxy/status",
            "/api/proxy",
            "/healthz",
            "/versionx",
            "/graphqlfoo",
            "/mlflow/",
            "/assets/index.js",
            "/API/2.0/mlflow/experiments/search",
        ] {
            assert!(!is_mlflow_api_path(path), "{path}");
        }
    }

    #[test]
    fn no_root_is_shadowed_by_an_earlier_one() {
        for (root_path, root) in ROOTS {
            let below = format!("{}/x", root_path.trim_end_matches('/'));
            assert_eq!(claim(&below).map(|(r, _)| r), Some(*root), "{below}");
            assert!(is_mlflow_api_path(&below), "{below}");
        }
    }

    fn example_method(methods: Methods) -> Method {
        match methods {
            Methods::Get | Methods::GetOrPost => Method::GET,
            Methods::Post => Method::POST,
            Methods::Put => Method::PUT,
            Methods::Patch => Method::PATCH,
            Methods::Delete => Method::DELETE,
        }
    }

    #[test]
    fn every_classified_api_path_is_recognised() {
        for (root_path, root) in ROOTS {
            let Root::Operations(operations) = root else {
                continue;
            };
            for (index, (methods, pattern, class)) in operations.iter().enumerate() {
                let method = example_method(*methods);
                let operation = pattern.replace("**", "x1/x2").replace('*', "x1");
                let path = match (root_path.ends_with('/'), operation.is_empty()) {
                    (true, _) | (false, true) => format!("{root_path}{operation}"),
                    (false, false) => format!("{root_path}/{operation}"),
                };
                assert_eq!(
                    classify(&method, &path, None),
                    Some(*class),
                    "{method} {path}"
                );
                assert!(is_mlflow_api_path(&path), "{path}");
                // No earlier row shadows this one.
                let first = operations
                    .iter()
                    .position(|(m, p, _)| m.matches(&method) && segments_match(p, &operation));
                assert_eq!(first, Some(index), "{method} {path} is shadowed");
            }
        }
        assert!(is_graphql("/graphql") && is_graphql("/graphql/"));
        assert!(!is_graphql("/graphql/x") && !is_graphql("/api/2.0/mlflow/graphql"));
        assert_eq!(
            artifact_api_rest("/ajax-api/2.0/mlflow-artifacts/artifacts/a"),
            Some("artifacts/a")
        );
        assert_eq!(artifact_api_rest("/api/2.0/mlflow/artifacts/list"), None);
        // Sub-paths of a single-operation root are MLflow's, but not that operation.
        assert!(is_mlflow_api_path("/get-artifact/x"));
        assert_eq!(classify(&Method::GET, "/get-artifact/x", None), None);
        assert_eq!(classify(&Method::GET, "/get-artifact", None), Some(Read));
        assert_eq!(classify(&Method::GET, "/v1/traces", None), None);
        assert_eq!(classify(&Method::POST, "/v1/traces", None), Some(Write));
    }

    #[test]
    fn twins_share_a_class() {
        for prefix in [
            "/api/2.0/mlflow",
            "/ajax-api/2.0/mlflow",
            "/api/3.0/mlflow",
            "/ajax-api/3.0/mlflow",
        ] {
            assert_eq!(
                classify(&Method::POST, &format!("{prefix}/runs/search"), None),
                Some(Read)
            );
            assert_eq!(
                classify(&Method::POST, &format!("{prefix}/runs/delete"), None),
                Some(Delete)
            );
            assert_eq!(
                classify(&Method::POST, &format!("{prefix}/runs/log-batch"), None),
                Some(Write)
            );
        }
    }

    #[test]
    fn methods_matter() {
        assert_eq!(
            classify(
                &Method::GET,
                "/api/2.0/mlflow/registered-models/alias",
                None
            ),
            Some(Read)
        );
        assert_eq!(
            classify(
                &Method::POST,
                "/api/2.0/mlflow/registered-models/alias",
                None
            ),
            Some(Write)
        );
        assert_eq!(
            classify(
                &Method::DELETE,
                "/api/2.0/mlflow/registered-models/alias",
                None
            ),
            Some(Delete)
        );
        assert_eq!(
            classify(&Method::HEAD, "/api/2.0/mlflow/runs/get", None),
            Some(Read)
        );
        assert_eq!(
            classify(&Method::GET, "/api/2.0/mlflow/runs/delete", None),
            None
        );
        assert_eq!(
            classify(&Method::PUT, "/api/2.0/mlflow/runs/search", None),
            None
        );
    }

    /// A row or two of each family MLflow 3 added, with its class.
    const MLFLOW_3_FAMILIES: &[(Method, &str, Option<Class>)] = &[
        (
            Method::PUT,
            "/ajax-api/3.0/mlflow/scorers/online-config",
            Some(Write),
        ),
        (
            Method::POST,
            "/api/3.0/mlflow/scorers/register",
            Some(Write),
        ),
        (Method::GET, "/api/3.0/mlflow/scorers/versions", Some(Read)),
        (
            Method::DELETE,
            "/api/3.0/mlflow/scorers/delete",
            Some(Delete),
        ),
        (Method::PUT, "/api/3.0/mlflow/scorers/register", None),
        (
            Method::POST,
            "/api/2.0/mlflow/traces/link-to-run",
            Some(Write),
        ),
        (
            Method::GET,
            "/api/3.0/mlflow/traces/t1/assessments/a1",
            Some(Read),
        ),
        (
            Method::GET,
            "/ajax-api/3.0/mlflow/assistant/sessions/s/stream",
            Some(Read),
        ),
        (
            Method::POST,
            "/ajax-api/3.0/mlflow/assistant/message",
            Some(Write),
        ),
        (
            Method::PUT,
            "/ajax-api/3.0/mlflow/assistant/config",
            Some(Admin),
        ),
        (
            Method::POST,
            "/gateway/chat/mlflow/invocations",
            Some(Write),
        ),
        (Method::POST, "/gateway/proxy/chat/v1/a/b", Some(Write)),
        (Method::GET, "/gateway/mlflow/v1/models", Some(Read)),
        (Method::GET, "/gateway/chat/mlflow/invocations", None),
        (
            Method::POST,
            "/api/3.0/mlflow/gateway/secrets/create",
            Some(Admin),
        ),
        (
            Method::GET,
            "/api/3.0/mlflow/gateway/secrets/list",
            Some(Read),
        ),
        (Method::POST, "/ajax-api/3.0/jobs/", Some(Write)),
        (Method::POST, "/ajax-api/3.0/jobs/search", Some(Read)),
        (Method::PATCH, "/ajax-api/3.0/jobs/cancel/j1", Some(Write)),
        (Method::GET, "/api/3.0/mlflow/workspaces", Some(Read)),
        (Method::POST, "/api/3.0/mlflow/workspaces", Some(Admin)),
        (
            Method::GET,
            "/api/3.0/mlflow/mcp-servers/io.x/b/versions/1",
            Some(Read),
        ),
        (
            Method::DELETE,
            "/api/3.0/mlflow/mcp-servers/io.x/b/tags/k",
            Some(Write),
        ),
        (
            Method::DELETE,
            "/api/3.0/mlflow/mcp-servers/io.x/b",
            Some(Delete),
        ),
        (
            Method::POST,
            "/api/2.0/mlflow/artifacts/presigned-download-url",
            Some(Read),
        ),
        (
            Method::GET,
            "/api/2.0/mlflow-artifacts/presigned/1/a/m.pkl",
            Some(Read),
        ),
        (
            Method::POST,
            "/api/2.0mlflow/experiments/search-datasets",
            Some(Read),
        ),
        (
            Method::POST,
            "/api/3.0/mlflow/review-queues/get-or-create-user",
            Some(Write),
        ),
        (Method::GET, "/build/x.js", Some(Read)),
    ];

    #[test]
    fn mlflow_3_families() {
        for (method, path, class) in MLFLOW_3_FAMILIES {
            assert_eq!(classify(method, path, None), *class, "{method} {path}");
        }
        assert!(is_mlflow_api_path("/gateway/chat/mlflow/invocations"));
        assert!(!is_mlflow_api_path("/gateway") && !is_mlflow_api_path("/build/x.js"));
    }

    #[test]
    fn double_star_matches_one_or_more_segments() {
        assert!(segments_match("a/**", "a/b") && segments_match("a/**", "a/b/c"));
        assert!(!segments_match("a/**", "a") && !segments_match("a/**", "a/"));
        assert!(segments_match("a/**/t/**", "a/b/c/t/k/l"));
        assert!(!segments_match("a/**/t/**", "a/t/k") && !segments_match("a/**/t/**", "a/b/t"));
        assert!(segments_match("", "") && !segments_match("*", ""));
    }

    #[test]
    fn artifacts_graphql_admin_and_unknown() {
        let art = "/api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/model.pkl";
        assert_eq!(classify(&Method::GET, art, None), Some(Read));
        assert_eq!(classify(&Method::PUT, art, None), Some(Write));
        assert_eq!(classify(&Method::DELETE, art, None), Some(Delete));
        assert_eq!(
            classify(
                &Method::POST,
                "/api/2.0/mlflow-artifacts/mpu/create/0/a/b",
                None
            ),
            Some(Write)
        );
        assert_eq!(
            classify(
                &Method::POST,
                "/graphql",
                Some(b"{\"query\":\"query { run }\"}")
            ),
            Some(Read)
        );
        assert_eq!(
            classify(
                &Method::POST,
                "/graphql",
                Some(b"{\"query\":\"MUTATION { x }\"}")
            ),
            None,
            "not GraphQL (keywords are case-sensitive): unreadable, so denied under a policy"
        );
        assert_eq!(
            classify(
                &Method::POST,
                "/api/2.0/mlflow/model-versions/transition-stage",
                None
            ),
            Some(Admin)
        );
        assert_eq!(
            classify(&Method::POST, "/api/2.0/mlflow/users/create", None),
            Some(Admin)
        );
        assert_eq!(
            classify(&Method::POST, "/api/2.0/mlflow/something-new", None),
            None
        );
        assert_eq!(
            classify(&Method::GET, "/API/2.0/mlflow/runs/get", None),
            None
        );
        assert_eq!(
            classify(&Method::GET, "/api/2.0/mlflow/logged-models/m-123", None),
            Some(Read)
        );
        assert_eq!(
            classify(&Method::DELETE, "/api/2.0/mlflow/logged-models/m-123", None),
            Some(Delete)
        );
        assert_eq!(
            classify(&Method::GET, "/static-files/static/js/main.js", None),
            Some(Read)
        );
        assert_eq!(classify(&Method::POST, "/", None), None);
        assert_eq!(
            classify(&Method::POST, "/ajax-api/3.0/mlflow/traces/metrics", None),
            Some(Read)
        );
        assert_eq!(
            classify(&Method::GET, "/ajax-api/3.0/mlflow/ui-telemetry", None),
            Some(Read)
        );
        assert_eq!(
            classify(&Method::GET, "/ajax-api/3.0/mlflow/assistant/config", None),
            Some(Read)
        );
    }
}
