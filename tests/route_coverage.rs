//! The route table against MLflow itself: every route MLflow 2.13 to 3.17 registers
//! (`tests/routes/mlflow-<version>.json`, written by `tests/routes/extract.py` from each version's own
//! Flask and FastAPI apps) is claimed and classified, the class agrees with the name MLflow gives the
//! operation, and through the proxy a policy that allows every class lets every route through while
//! `--read-only` lets exactly the reads through.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use common::*;
use http::Method;
use sagemaker_mlflow_proxy::testing::{classify, is_mlflow_api_path, ui_upstream_path, Class};

/// The versions SageMaker serves must be in the matrix (`extract.py` names the rest).
const SERVED_BY_SAGEMAKER: &[&str] = &["2.13.2", "2.16.2", "3.0.1", "3.10.1"];

/// One route of one MLflow version, its path parameters filled in.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Route {
    method: String,
    /// As MLflow registers it, `{name}` and `{name:path}` parameters included.
    pattern: String,
    /// `pattern` with each parameter replaced by a value (`{name:path}` by two segments).
    path: String,
    operation: String,
}

impl Route {
    fn method(&self) -> Method {
        self.method.parse().unwrap()
    }

    /// The UI's index and static files, reached only under `/mlflow/`.
    fn is_ui_file(&self) -> bool {
        self.path == "/"
            || self.path.starts_with("/static-files/")
            || self.path.starts_with("/build/")
    }

    fn is_graphql(&self) -> bool {
        self.path == "/graphql"
    }
}

fn routes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/routes")
}

/// Every version's routes, by version.
fn routes_by_version() -> BTreeMap<String, Vec<Route>> {
    let mut versions = BTreeMap::new();
    for entry in std::fs::read_dir(routes_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let document: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let version = document["mlflow"].as_str().unwrap().to_string();
            let routes = document["routes"].as_array().unwrap();
            versions.insert(version, routes.iter().map(route_of).collect());
        }
    }
    for version in SERVED_BY_SAGEMAKER {
        assert!(
            versions.contains_key(*version),
            "no routes for MLflow {version}"
        );
    }
    versions
}

fn route_of(json: &serde_json::Value) -> Route {
    let pattern = json["path"].as_str().unwrap().to_string();
    Route {
        method: json["method"].as_str().unwrap().to_string(),
        path: fill_parameters(&pattern),
        pattern,
        operation: json["operation"].as_str().unwrap().to_string(),
    }
}

/// `{name}` becomes `p1`; `{name:path}` becomes `p1/p2` (such parameters hold slashes).
fn fill_parameters(pattern: &str) -> String {
    let mut path = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        let close = open + rest[open..].find('}').expect("closed parameter");
        path.push_str(&rest[..open]);
        let value = if rest[open..close].ends_with(":path") {
            "p1/p2"
        } else {
            "p1"
        };
        path.push_str(value);
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    path
}

/// What an operation's name says it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Named {
    Read,
    /// A write, a delete or an admin operation.
    Change,
}

/// First words of names that read. `batch get` is MLflow's `batchGet`.
const READ_VERBS: &[&str] = &[
    "get",
    "search",
    "list",
    "batch get",
    "query",
    "calculate",
    "download",
];

/// First words of names that change something.
const CHANGE_VERBS: &[&str] = &[
    "create",
    "update",
    "set",
    "log",
    "delete",
    "restore",
    "rename",
    "register",
    "upsert",
    "start",
    "end",
    "finalize",
    "link",
    "add",
    "remove",
    "attach",
    "detach",
    "cancel",
    "submit",
    "install",
    "transition",
    "upload",
    "patch",
    "send",
    "invoke",
    "resolve",
    "generate",
    "test",
    "abort",
    "complete",
];

/// Where MLflow's name says the opposite of what the operation does.
const NAMED_EXCEPTIONS: &[(&str, Named)] = &[
    // Creates nothing: a URL through which the caller downloads an artifact.
    ("CreatePresignedDownloadUrl", Named::Read),
    // Creates the caller's review queue when there is none.
    ("GetOrCreateUserQueue", Named::Change),
    // The UI posting its own usage events (sent from every page; nothing a user owns changes).
    ("serve_post_ui_telemetry", Named::Read),
];

/// `GetExperiment`, `serve_get_metric_history_bulk`, `batchGet` → "get experiment", "get metric
/// history bulk", "batch get" (MLflow's Flask views are named `serve_<operation>`).
fn words(name: &str) -> String {
    let mut words = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c == '_' || (c.is_ascii_uppercase() && previous_lower) {
            words.push(' ');
        }
        if c != '_' {
            words.push(c.to_ascii_lowercase());
        }
        previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
    }
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    match words.strip_prefix("serve") {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => rest.trim().to_string(),
        _ => words,
    }
}

/// What the name says, or, for a name without a listed verb (`health`, `invocations`), the method:
/// GET reads, anything else changes.
fn named(route: &Route) -> Named {
    if let Some((_, named)) = NAMED_EXCEPTIONS.iter().find(|(n, _)| *n == route.operation) {
        return *named;
    }
    let words = words(&route.operation);
    let starts = |verb: &&str| words == *verb || words.starts_with(&format!("{verb} "));
    if READ_VERBS.iter().any(starts) {
        Named::Read
    } else if CHANGE_VERBS.iter().any(starts) {
        Named::Change
    } else if route.method == "GET" {
        Named::Read
    } else {
        Named::Change
    }
}

/// Admin operations are admin by family, whatever their verb (reading webhooks is admin too).
fn agrees(named: Named, class: Class) -> bool {
    match named {
        Named::Read => matches!(class, Class::Read | Class::Admin),
        Named::Change => class != Class::Read,
    }
}

const GRAPHQL_QUERY: &str = r#"{"query":"query { mlflowGetExperiment { experiment { name } } }"}"#;
const GRAPHQL_MUTATION: &str = r#"{"query":"mutation { mlflowDeleteRun(input: {}) { ok } }"}"#;

/// Why `route` is wrong in the table, if it is.
fn table_problem(route: &Route) -> Option<String> {
    let method = route.method();
    let ui_path = format!("/mlflow{}", route.path);
    if ui_upstream_path(&ui_path) != Some(route.path.as_str()) {
        return Some(format!(
            "{ui_path} does not reach the pipeline as {}",
            route.path
        ));
    }
    if route.is_ui_file() {
        let class = classify(&method, &route.path, None);
        let api = is_mlflow_api_path(&route.path);
        let ok = class == Some(Class::Read) && !api;
        return (!ok).then(|| format!("UI file classed {class:?}, taken for MLflow's API: {api}"));
    }
    if !is_mlflow_api_path(&route.path) {
        return Some("not recognised as MLflow's".into());
    }
    if route.is_graphql() {
        let query = classify(&method, &route.path, Some(GRAPHQL_QUERY.as_bytes()));
        let mutation = classify(&method, &route.path, Some(GRAPHQL_MUTATION.as_bytes()));
        let ok = query == Some(Class::Read) && mutation == Some(Class::Write);
        return (!ok).then(|| format!("GraphQL query {query:?}, mutation {mutation:?}"));
    }
    match classify(&method, &route.path, None) {
        None => Some("unclassified".into()),
        Some(class) if !agrees(named(route), class) => Some(format!(
            "classed {} but MLflow's name says {:?}",
            class.name(),
            named(route)
        )),
        Some(_) => None,
    }
}

#[test]
fn every_route_of_every_version_is_classified_as_its_name_says() {
    let versions = routes_by_version();
    let mut problems = BTreeSet::new();
    for (version, routes) in &versions {
        let mut classes: BTreeMap<&str, usize> = BTreeMap::new();
        for route in routes {
            if let Some(problem) = table_problem(route) {
                problems.insert(format!(
                    "{} {} ({}, MLflow {version}): {problem}",
                    route.method, route.pattern, route.operation
                ));
            }
            let class = classify(&route.method(), &route.path, Some(GRAPHQL_QUERY.as_bytes()));
            *classes
                .entry(class.map_or("unclassified", Class::name))
                .or_default() += 1;
        }
        println!("MLflow {version}: {} routes, {classes:?}", routes.len());
    }
    assert!(
        problems.is_empty(),
        "{} routes the table gets wrong:\n{}",
        problems.len(),
        problems.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn names_are_read_as_verbs() {
    assert_eq!(words("GetExperimentByName"), "get experiment by name");
    assert_eq!(
        words("serve_get_metric_history_bulk"),
        "get metric history bulk"
    );
    assert_eq!(words("batchGet"), "batch get");
    assert_eq!(words("_invoke_scorer_handler"), "invoke scorer handler");
    assert_eq!(words("StartTraceV3"), "start trace v3");
    assert_eq!(words("serve"), "");
    assert_eq!(words("server_info"), "server info");
    let route = |method: &str, operation: &str| Route {
        method: method.into(),
        pattern: String::new(),
        path: String::new(),
        operation: operation.into(),
    };
    assert_eq!(named(&route("POST", "SearchRuns")), Named::Read);
    assert_eq!(named(&route("GET", "DeleteRun")), Named::Change);
    assert_eq!(named(&route("GET", "health")), Named::Read);
    assert_eq!(named(&route("POST", "export_traces")), Named::Change);
    assert_eq!(named(&route("POST", "GetOrCreateUserQueue")), Named::Change);
    assert!(!agrees(Named::Change, Class::Read) && !agrees(Named::Read, Class::Write));
    assert_eq!(fill_parameters("/a/{x}/b/{y:path}:go"), "/a/p1/b/p1/p2:go");
}

/// One request of the end-to-end check: what is sent, and the class the table gives it.
struct Probe {
    method: String,
    /// The path sent to the proxy (`/mlflow/…` for the UI).
    path: String,
    body: &'static str,
    class: Option<Class>,
}

/// The requests that exercise `route`: under its own path (unless it is a UI file) and under the UI
/// prefix; GraphQL once as a query and once as a mutation (in the body, where MLflow reads it).
fn probes(route: &Route) -> Vec<Probe> {
    let method = route.method();
    let bodies: &[&'static str] = match (route.is_graphql(), route.method.as_str()) {
        // MLflow reads the document from the JSON body for GET and POST alike.
        (true, _) => &[GRAPHQL_QUERY, GRAPHQL_MUTATION],
        (_, "GET") => &[""],
        _ => &["{}"],
    };
    let mut paths = vec![format!("/mlflow{}", route.path)];
    if !route.is_ui_file() {
        paths.push(route.path.clone());
    }
    let mut probes = Vec::new();
    for path in paths {
        for body in bodies {
            let class = classify(&method, &route.path, Some(body.as_bytes()));
            probes.push(Probe {
                method: route.method.clone(),
                path: path.clone(),
                body,
                class,
            });
        }
    }
    probes
}

/// Every distinct method and path of every version, once.
fn distinct_routes() -> BTreeMap<(String, String), Route> {
    let mut distinct = BTreeMap::new();
    for routes in routes_by_version().into_values() {
        for route in routes {
            distinct.insert((route.method.clone(), route.path.clone()), route);
        }
    }
    distinct
}

/// What the proxy answered `probe` with, when that is not what `allowed` says it should.
fn gate_problem(client: &Client, proxy: &Proxy, probe: &Probe, allowed: bool) -> Option<String> {
    let headers = [("content-type", "application/json")];
    let reply = client.send(&probe.method, &proxy.url(&probe.path), &headers, probe.body);
    let refused_for_its_class =
        reply.status == 403 && String::from_utf8_lossy(&reply.body).contains("missing permission");
    let as_expected = if allowed {
        reply.status == 200
    } else {
        refused_for_its_class
    };
    (!as_expected).then(|| {
        let body = String::from_utf8_lossy(&reply.body);
        let body: String = body.chars().take(160).collect();
        format!(
            "{} {} ({:?}): {} {body}",
            probe.method, probe.path, probe.class, reply.status
        )
    })
}

#[test]
fn through_the_proxy_allow_all_passes_every_route_and_read_only_exactly_the_reads() {
    let upstream = start_upstream();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = [\"read\", \"write\", \"delete\", \"admin\"]\n",
    )
    .unwrap();
    let allow_all = start_unsigned_proxy(&upstream, &["--policy", policy.to_str().unwrap()]);
    let read_only = start_unsigned_proxy(&upstream, &["--read-only"]);
    let client = Client::new();
    let mut problems = Vec::new();
    let mut sent = 0;
    for route in distinct_routes().values() {
        for probe in probes(route) {
            let is_read = probe.class == Some(Class::Read);
            problems.extend(gate_problem(&client, &allow_all, &probe, true));
            problems.extend(gate_problem(&client, &read_only, &probe, is_read));
            sent += 2;
        }
    }
    println!(
        "{sent} requests, {} reached the upstream",
        upstream.requests().len()
    );
    assert!(
        problems.is_empty(),
        "{} of {sent} requests answered wrongly:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
