//! The one MLflow route table: which paths belong to MLflow's HTTP API (the server forwards them) and
//! the class of each operation, `read`, `write`, `delete` or `admin` (the gate's policy, metrics, logs).
//!
//! Both questions are answered from [`ROOTS`]: a path is MLflow's when one of its roots claims it, and
//! the root that claims it says how its operations are classed. Paths are matched after the proxy's own
//! checks (no `..`, no `//`), case-sensitively, on the upstream path (the `/mlflow` UI prefix already
//! stripped). The `/api` and `/ajax-api` twins and the 2.0 and 3.0 versions share one entry. A path
//! under `/api/` that no operation lists is still MLflow's (a newer server may have it) but its class
//! is unknown, and unknown routes are denied when a policy is in force.

use http::Method;

/// How the operations under one root are classed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Root {
    /// MLflow's REST operations, looked up in [`OPERATIONS`] by the rest of the path.
    Rest,
    /// The artifact API (`mlflow-artifacts/artifacts/<path>` and multipart uploads).
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
    ("/api/2.0/mlflow/", Root::Rest),
    ("/api/3.0/mlflow/", Root::Rest),
    ("/ajax-api/2.0/mlflow/", Root::Rest),
    ("/ajax-api/3.0/mlflow/", Root::Rest),
    ("/api/2.0/mlflow-artifacts/", Root::Artifacts),
    ("/ajax-api/2.0/mlflow-artifacts/", Root::Artifacts),
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
    ("/v1/traces", Root::Single(Methods::Post, Class::Write)),
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

/// The part of an artifact API path after `mlflow-artifacts/` (still percent-encoded), when `path`
/// is one.
pub fn artifact_api_rest(path: &str) -> Option<&str> {
    match claim(path) {
        Some((Root::Artifacts, rest)) => Some(rest),
        _ => None,
    }
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Read,
    Write,
    Delete,
    Admin,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Delete => "delete",
            Class::Admin => "admin",
        }
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
            Methods::Patch => *method == Method::PATCH,
            Methods::Delete => *method == Method::DELETE,
        }
    }
}

use Class::*;
use Methods::{Delete as Del, Get, GetOrPost, Patch, Post};

/// MLflow REST operations under `{api,ajax-api}/{2.0,3.0}/mlflow/`; `*` matches one path segment.
const OPERATIONS: &[(Methods, &str, Class)] = &[
    // experiments
    (GetOrPost, "experiments/search", Read),
    (Get, "experiments/list", Read),
    (Get, "experiments/get", Read),
    (Get, "experiments/get-by-name", Read),
    (Post, "experiments/create", Write),
    (Post, "experiments/update", Write),
    (Post, "experiments/set-experiment-tag", Write),
    (Post, "experiments/delete-experiment-tag", Write),
    (Post, "experiments/restore", Write),
    (Post, "experiments/delete", Delete),
    // runs, metrics, params, tags, inputs
    (Get, "runs/get", Read),
    (GetOrPost, "runs/search", Read),
    (Get, "metrics/get-history", Read),
    (GetOrPost, "metrics/get-history-bulk", Read),
    (GetOrPost, "metrics/get-history-bulk-interval", Read),
    (Get, "artifacts/list", Read),
    (Post, "runs/create", Write),
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
    // model registry
    (GetOrPost, "registered-models/search", Read),
    (Get, "registered-models/list", Read),
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
    // MLflow 3: logged models, traces, datasets, scorers
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
    (GetOrPost, "traces/search", Read),
    (Get, "traces", Read),
    (Get, "traces/*", Read),
    (Get, "traces/*/info", Read),
    (Get, "traces/*/trace-info", Read),
    (Get, "traces/get", Read),
    (Post, "traces/batch-get", Read),
    (Get, "get-trace-artifact", Read),
    (Post, "traces", Write),
    (Patch, "traces/*", Write),
    (Patch, "traces/*/tags", Write),
    (Del, "traces/*/tags", Write),
    (Post, "traces/*/assessments", Write),
    (Patch, "traces/*/assessments/*", Write),
    (Post, "traces/delete-traces", Delete),
    (Del, "traces/*/assessments/*", Delete),
    (GetOrPost, "datasets/search", Read),
    (Get, "datasets/*", Read),
    (Post, "datasets/create", Write),
    (Get, "scorers/list", Read),
    (Get, "scorers/get", Read),
    (Get, "server-info", Read),
    // MLflow 3.10 UI calls
    (Post, "traces/metrics", Read),
    (GetOrPost, "ui-telemetry", Read),
    (Get, "assistant/config", Read),
    (Post, "upload-artifact", Write),
    (Post, "artifacts/presigned-upload-url", Write),
    // permissions (MLflow's auth app) and webhooks
    (GetOrPost, "users/*", Admin),
    (GetOrPost, "experiments/permissions/*", Admin),
    (Patch, "experiments/permissions/*", Admin),
    (Del, "experiments/permissions/*", Admin),
    (GetOrPost, "registered-models/permissions/*", Admin),
    (Patch, "registered-models/permissions/*", Admin),
    (Del, "registered-models/permissions/*", Admin),
    (GetOrPost, "webhooks", Admin),
    (GetOrPost, "webhooks/*", Admin),
    (Patch, "webhooks/*", Admin),
    (Del, "webhooks/*", Admin),
];

fn segments_match(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// How a GraphQL body reads: a `mutation` anywhere makes it a write.
pub fn graphql_class(body: &[u8]) -> Class {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    if text.contains("mutation") {
        Write
    } else {
        Read
    }
}

/// Classifies an upstream path and method. `graphql_body` is the body of a `POST /graphql`.
pub fn classify(method: &Method, path: &str, graphql_body: Option<&[u8]>) -> Option<Class> {
    let trimmed = without_trailing_slash(path);
    let get = Methods::Get.matches(method);
    match claim(trimmed) {
        Some((Root::Rest, operation)) => OPERATIONS
            .iter()
            .find(|(methods, pattern, _)| {
                methods.matches(method) && segments_match(pattern, operation)
            })
            .map(|(_, _, class)| *class),
        Some((Root::Artifacts, rest)) => classify_artifact_call(method, rest),
        Some((Root::GraphQl, "")) if get || *method == Method::POST => {
            Some(graphql_class(graphql_body.unwrap_or_default()))
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
    match *method {
        Method::GET | Method::HEAD if under_artifacts => Some(Read),
        Method::PUT if under_artifacts => Some(Write),
        Method::DELETE if under_artifacts => Some(Delete),
        Method::POST if mpu => Some(Write),
        _ => None,
    }
}

/// The MLflow UI's index page and static assets (served under `/mlflow/`).
fn is_ui_file(path: &str) -> bool {
    path == "/" || path == "/favicon.ico" || path.starts_with("/static-files/")
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

    #[test]
    fn every_classified_api_path_is_recognised() {
        let cases: Vec<(Method, String)> = OPERATIONS
            .iter()
            .map(|(methods, pattern, _)| {
                let method = match methods {
                    Methods::Get | Methods::GetOrPost => Method::GET,
                    Methods::Post => Method::POST,
                    Methods::Patch => Method::PATCH,
                    Methods::Delete => Method::DELETE,
                };
                (
                    method,
                    format!("/api/2.0/mlflow/{}", pattern.replace('*', "x1")),
                )
            })
            .collect();
        for (method, path) in &cases {
            assert!(classify(method, path, None).is_some(), "{method} {path}");
            assert!(is_mlflow_api_path(path), "{path}");
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
            Some(Write)
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
