//! The attack table: attempts to get past authentication or permissions, each a row, each checked
//! against the proxy binary with ALB OIDC + bearer tokens + a policy, and a test upstream that records
//! what reached it (a refused attempt must reach nothing).

mod common;

use base64::Engine;
use common::*;
use sagemaker_mlflow_proxy::testing::{alb_header, expiry_in, TestSigner};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ALB: &str = "arn:aws:elasticloadbalancing:us-west-2:111122223333:loadbalancer/app/mlflow/abc";
const READER: &str = "reader-token-123";
const WRITER: &str = "writer-token-456";

struct Setup {
    upstream: Upstream,
    proxy: Proxy,
    signer: TestSigner,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let upstream = start_upstream();
    let signer = TestSigner::new();
    *upstream.seen.alb_pem.lock().unwrap() = Some(signer.public_pem());
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    let hash = |t: &str| hex::encode(Sha256::digest(t.as_bytes()));
    std::fs::write(
        &tokens,
        format!("reader {} readers\nwriter {}\n", hash(READER), hash(WRITER)),
    )
    .unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[[rule]]
groups = ["readers"]
allow = ["read"]
[[rule]]
identities = ["writer", "alice@example.com"]
allow = ["read", "write"]
"#,
    )
    .unwrap();
    let key_url = format!("{}/alb-key/{{kid}}", upstream.url());
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            "--auth",
            "alb-oidc,token",
            "--alb-arn",
            ALB,
            "--alb-key-url",
            &key_url,
            "--token-file",
            tokens.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    Setup {
        upstream,
        proxy,
        signer,
        _dir: dir,
    }
}

fn future() -> u64 {
    expiry_in(600)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// One attempt: method, path, headers, body, the status expected, and whether it may reach the upstream.
struct Attempt {
    name: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    status: u16,
    reaches_upstream: bool,
}

fn attempt(
    name: &'static str,
    method: &'static str,
    path: &str,
    headers: Vec<(&'static str, String)>,
    status: u16,
) -> Attempt {
    Attempt {
        name,
        method,
        path: path.to_string(),
        headers,
        body: String::new(),
        status,
        reaches_upstream: false,
    }
}

#[test]
fn attack_table() {
    let s = setup();
    let client = Client::new();
    let reader = vec![("authorization", bearer(READER))];
    let writer = vec![("authorization", bearer(WRITER))];
    let alice = |token: String| vec![("x-amzn-oidc-data", token)];
    let claims = json!({"sub": "u-1", "email": "alice@example.com", "groups": ["readers"]});
    let valid_alb = s
        .signer
        .sign(&alb_header("ES256", "test-kid", ALB, future()), &claims);
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let alg_none = format!(
        "{}.{}.",
        engine.encode(serde_json::to_vec(&alb_header("none", "test-kid", ALB, future())).unwrap()),
        engine.encode(serde_json::to_vec(&claims).unwrap())
    );
    let hs256 = {
        // HS256 "signed" with the ALB's public key as the HMAC secret (the classic key-confusion forgery).
        let h = engine
            .encode(serde_json::to_vec(&alb_header("HS256", "test-kid", ALB, future())).unwrap());
        let p = engine.encode(serde_json::to_vec(&claims).unwrap());
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            s.signer.public_pem().as_bytes(),
        );
        let tag = aws_lc_rs::hmac::sign(&key, format!("{h}.{p}").as_bytes());
        format!("{h}.{p}.{}", engine.encode(tag.as_ref()))
    };
    let wrong_kid = s
        .signer
        .sign(&alb_header("ES256", "other-kid", ALB, future()), &claims);
    let wrong_signer = s.signer.sign(
        &alb_header(
            "ES256",
            "test-kid",
            "arn:aws:elasticloadbalancing:us-west-2:999999999999:loadbalancer/app/evil/x",
            future(),
        ),
        &claims,
    );
    let expired = s
        .signer
        .sign(&alb_header("ES256", "test-kid", ALB, 1_000_000), &claims);
    let other_key =
        TestSigner::new().sign(&alb_header("ES256", "test-kid", ALB, future()), &claims);
    let traversal_kid = s.signer.sign(
        &alb_header("ES256", "../alb-key/test-kid", ALB, future()),
        &claims,
    );

    let mut table = vec![
        attempt(
            "reader deletes a run",
            "POST",
            "/api/2.0/mlflow/runs/delete",
            reader.clone(),
            403,
        ),
        attempt(
            "ajax-api twin",
            "POST",
            "/ajax-api/2.0/mlflow/runs/delete",
            reader.clone(),
            403,
        ),
        attempt(
            "UI-prefixed ajax-api twin",
            "POST",
            "/mlflow/ajax-api/2.0/mlflow/runs/delete",
            reader.clone(),
            403,
        ),
        attempt(
            "3.0 twin",
            "POST",
            "/api/3.0/mlflow/runs/delete",
            reader.clone(),
            403,
        ),
        attempt(
            "case change of the prefix",
            "POST",
            "/API/2.0/mlflow/runs/delete",
            reader.clone(),
            405,
        ),
        attempt(
            "case change of the operation",
            "POST",
            "/api/2.0/mlflow/Runs/Delete",
            reader.clone(),
            403,
        ),
        attempt(
            "double slash",
            "POST",
            "/api/2.0//mlflow/runs/delete",
            reader.clone(),
            400,
        ),
        attempt(
            "dot segment",
            "POST",
            "/api/2.0/mlflow/./runs/delete",
            reader.clone(),
            400,
        ),
        attempt(
            "dot-dot segment",
            "POST",
            "/api/2.0/mlflow/runs/search/../delete",
            reader.clone(),
            400,
        ),
        attempt(
            "encoded dot-dot",
            "POST",
            "/api/2.0/mlflow/runs/search/%2e%2e/delete",
            reader.clone(),
            400,
        ),
        attempt(
            "encoded slash",
            "POST",
            "/api/2.0/mlflow/runs%2fdelete",
            reader.clone(),
            400,
        ),
        attempt(
            "encoded backslash",
            "POST",
            "/api/2.0/mlflow/runs%5cdelete",
            reader.clone(),
            400,
        ),
        attempt(
            "trailing slash",
            "POST",
            "/api/2.0/mlflow/runs/delete/",
            reader.clone(),
            403,
        ),
        attempt(
            "query string appended",
            "POST",
            "/api/2.0/mlflow/runs/delete?dry_run=true",
            reader.clone(),
            403,
        ),
        attempt(
            "GET on a POST-only delete",
            "GET",
            "/api/2.0/mlflow/runs/delete",
            reader.clone(),
            403,
        ),
        attempt(
            "HEAD on a POST-only delete",
            "HEAD",
            "/api/2.0/mlflow/runs/delete",
            reader.clone(),
            403,
        ),
        attempt(
            "artifact upload",
            "PUT",
            "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/x.bin",
            reader.clone(),
            403,
        ),
        attempt(
            "artifact delete",
            "DELETE",
            "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/x.bin",
            reader.clone(),
            403,
        ),
        attempt(
            "UI upload-artifact",
            "POST",
            "/mlflow/ajax-api/2.0/mlflow/upload-artifact",
            reader.clone(),
            403,
        ),
        attempt(
            "unknown route",
            "POST",
            "/api/2.0/mlflow/brand-new-endpoint",
            writer.clone(),
            403,
        ),
        attempt(
            "writer changes a registry stage (admin)",
            "POST",
            "/api/2.0/mlflow/model-versions/transition-stage",
            writer.clone(),
            403,
        ),
        attempt(
            "no credentials",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            vec![],
            401,
        ),
        attempt(
            "unknown bearer token",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            vec![("authorization", bearer("guess"))],
            401,
        ),
        attempt(
            "wrong token next to a valid ALB token",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            vec![
                ("authorization", bearer("guess")),
                ("x-amzn-oidc-data", valid_alb.clone()),
            ],
            401,
        ),
        attempt(
            "ALB token with alg none",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(alg_none),
            401,
        ),
        attempt(
            "ALB token HS256 with the public key",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(hs256),
            401,
        ),
        attempt(
            "ALB token with an unknown kid",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(wrong_kid),
            401,
        ),
        attempt(
            "ALB token with a path in the kid",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(traversal_kid),
            401,
        ),
        attempt(
            "ALB token from another load balancer",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(wrong_signer),
            401,
        ),
        attempt(
            "expired ALB token",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(expired),
            401,
        ),
        attempt(
            "ALB token signed by another key",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(other_key),
            401,
        ),
        attempt(
            "forged identity header without trusted-header mode",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            vec![("x-forwarded-email", "admin@example.com".into())],
            401,
        ),
        attempt(
            "proxy status without credentials",
            "GET",
            "/api/proxy/status",
            vec![],
            401,
        ),
        attempt(
            "dashboard without credentials",
            "GET",
            "/experiments",
            vec![],
            401,
        ),
    ];
    let mut graphql_mutation = attempt("GraphQL mutation", "POST", "/graphql", reader.clone(), 403);
    graphql_mutation.body = r#"{"query": "mutation { deleteRun(runId: \"x\") { ok } }"}"#.into();
    graphql_mutation
        .headers
        .push(("content-type", "application/json".into()));
    table.push(graphql_mutation);
    table.push(attempt(
        "GraphQL mutation in a GET query",
        "GET",
        "/graphql?query=mutation%20%7B%20x%20%7D",
        reader.clone(),
        403,
    ));
    // MLflow reads the document from the JSON body, for GET too, JSON escapes decoded.
    for (name, method, body) in [
        (
            "GraphQL mutation spelt with a JSON escape",
            "POST",
            r#"{"query": "\u006dutation { deleteRun(runId: \"x\") { ok } }"}"#,
        ),
        (
            "GraphQL mutation in a GET's body",
            "GET",
            r#"{"query": "mutation { deleteRun(runId: \"x\") { ok } }"}"#,
        ),
        (
            "GraphQL mutation behind a decoy query",
            "POST",
            r#"{"query": "query { a } mutation { deleteRun(runId: \"x\") { ok } }"}"#,
        ),
        (
            "GraphQL document the proxy cannot read",
            "POST",
            r#"{"query": "MUTATION { x }"}"#,
        ),
    ] {
        let mut row = attempt(name, method, "/graphql", reader.clone(), 403);
        row.body = body.into();
        table.push(row);
    }
    table.push(attempt(
        "GraphQL mutation through the UI prefix",
        "GET",
        "/mlflow/graphql?query=mutation+%7B+x+%7D",
        reader.clone(),
        403,
    ));
    // Allowed rows, to show the gate is not simply closed.
    let mut allowed = vec![
        attempt(
            "reader searches runs",
            "POST",
            "/api/2.0/mlflow/runs/search",
            reader.clone(),
            200,
        ),
        attempt(
            "ALB user in readers reads",
            "GET",
            "/api/2.0/mlflow/experiments/search",
            alice(valid_alb.clone()),
            200,
        ),
        attempt(
            "ALB user named in a rule writes",
            "POST",
            "/api/2.0/mlflow/runs/create",
            alice(valid_alb.clone()),
            200,
        ),
        attempt(
            "writer logs a metric",
            "POST",
            "/api/2.0/mlflow/runs/log-metric",
            writer.clone(),
            200,
        ),
        attempt("healthz stays open", "GET", "/healthz", vec![], 200),
    ];
    let mut graphql_query = attempt("GraphQL query", "POST", "/graphql", reader.clone(), 200);
    graphql_query.body =
        r#"{"query": "query { mlflowGetRun(input: {runId: \"x\"}) { run { info { runId } } } }"}"#
            .into();
    allowed.push(graphql_query);
    for row in &mut allowed {
        row.reaches_upstream = row.path != "/healthz";
    }
    table.extend(allowed);
    assert!(table.len() >= 30);

    for row in &table {
        let before = s.upstream.requests().len();
        let headers: Vec<(&str, &str)> =
            row.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let reply = client.send(
            row.method,
            &s.proxy.url(&row.path),
            &headers,
            row.body.clone(),
        );
        assert_eq!(
            reply.status,
            row.status,
            "{}: {}",
            row.name,
            String::from_utf8_lossy(&reply.body)
        );
        if row.status >= 400 && row.method != "HEAD" {
            let json = reply.json();
            assert!(
                json["error_code"].is_string() && json["message"].is_string(),
                "{}: MLflow error shape",
                row.name
            );
            if row.status == 403 && row.path.contains("delete") {
                assert!(
                    json["message"].as_str().unwrap().contains("delete")
                        || json["message"]
                            .as_str()
                            .unwrap()
                            .contains("not in the proxy's permission table"),
                    "{}: names the permission",
                    row.name
                );
            }
        }
        let after = s.upstream.requests().len();
        assert_eq!(
            after > before,
            row.reaches_upstream,
            "{}: reached the upstream = {}",
            row.name,
            after > before
        );
    }
}

#[test]
fn method_override_headers_are_not_forwarded() {
    let s = setup();
    let reply = Client::new().send(
        "POST",
        &s.proxy.url("/api/2.0/mlflow/runs/search"),
        &[
            ("authorization", &bearer(READER)),
            ("x-http-method-override", "DELETE"),
            ("x-http-method", "DELETE"),
        ],
        "{}",
    );
    assert_eq!(reply.status, 200);
    let seen = s.upstream.requests().pop().unwrap();
    assert_eq!(seen.method, "POST");
    assert!(!seen.headers.contains_key("x-http-method-override"));
    assert!(!seen.headers.contains_key("x-http-method"));
    assert!(
        !seen.headers.contains_key("authorization"),
        "the client's bearer token is not forwarded"
    );
}

#[test]
fn absolute_form_targets_cannot_redirect_the_upstream() {
    let s = setup();
    let client = Client::new();
    let response = client.raw(
        s.proxy.addr,
        &format!(
            "POST http://evil.example/api/2.0/mlflow/runs/delete HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {READER}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        ),
    );
    assert!(response.starts_with("HTTP/1.1 403"), "{response}");
    let read = client.raw(
        s.proxy.addr,
        &format!("GET http://evil.example/api/2.0/mlflow/experiments/search HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {READER}\r\nConnection: close\r\n\r\n"),
    );
    assert!(read.starts_with("HTTP/1.1 200"), "{read}");
    let seen = s.upstream.requests().pop().unwrap();
    assert_eq!(
        seen.headers["host"],
        s.upstream.addr.to_string(),
        "the upstream is ours whatever the target said"
    );
}

#[test]
fn audit_events_name_who_what_and_outcome() {
    let s = setup();
    let client = Client::new();
    client.send(
        "POST",
        &s.proxy.url("/api/2.0/mlflow/runs/create"),
        &[
            ("authorization", &bearer(WRITER)),
            ("content-type", "application/json"),
            ("x-request-id", "audit-1"),
        ],
        r#"{"experiment_id": "42", "run_name": "r"}"#,
    );
    client.send(
        "POST",
        &s.proxy.url("/api/2.0/mlflow/runs/delete"),
        &[
            ("authorization", &bearer(READER)),
            ("content-type", "application/json"),
        ],
        r#"{"run_id": "abc"}"#,
    );
    client.send(
        "GET",
        &s.proxy.url("/api/2.0/mlflow/experiments/search"),
        &[("authorization", &bearer(READER))],
        "",
    );
    // Audit lines are written before the answer leaves; the last request's access line (written
    // when its body ends) shows that every request above has been handled.
    s.proxy.wait_for_log(&["mlflow change", "runs/create"]);
    s.proxy
        .wait_for_log(&["\"target\":\"access\"", "experiments/search", "\"outcome\""]);
    let logs = s.proxy.log_lines();
    let audit: Vec<Value> = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["target"] == "audit")
        .collect();
    let created = audit
        .iter()
        .find(|v| v["fields"]["message"] == "mlflow change" || v["message"] == "mlflow change");
    let created = created.unwrap_or_else(|| panic!("no audit event in {logs:?}"));
    let get = |k: &str| {
        created
            .get(k)
            .or_else(|| created["fields"].get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(get("who"), "writer");
    assert_eq!(get("auth"), "token");
    assert_eq!(get("class"), "write");
    assert_eq!(get("status"), 200);
    assert_eq!(get("request_id"), "audit-1");
    assert_eq!(get("remote"), "127.0.0.1");
    assert!(get("subjects")
        .as_str()
        .unwrap()
        .contains("experiment_id=42"));
    let denied = audit.iter().any(|v| {
        let text = v.to_string();
        text.contains("denied") && text.contains("reader") && text.contains("runs/delete")
    });
    assert!(denied, "the denial is audited: {audit:?}");
    assert!(
        !audit
            .iter()
            .any(|v| v.to_string().contains("experiments/search")),
        "reads are not audited"
    );
}

#[test]
fn token_file_reloads_on_sighup() {
    let s = setup();
    let client = Client::new();
    let url = s.proxy.url("/api/2.0/mlflow/experiments/search");
    assert_eq!(
        client
            .send(
                "GET",
                &url,
                &[("authorization", &bearer("fresh-token"))],
                ""
            )
            .status,
        401
    );
    let tokens = s._dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!(
            "fresh {} readers\n",
            hex::encode(Sha256::digest(b"fresh-token"))
        ),
    )
    .unwrap();
    std::process::Command::new("kill")
        .args(["-HUP", &s.proxy.pid().to_string()])
        .status()
        .unwrap();
    // The reload is logged once the new file is in force.
    s.proxy.wait_for_log(&["token file reloaded"]);
    let status = client
        .send(
            "GET",
            &url,
            &[("authorization", &bearer("fresh-token"))],
            "",
        )
        .status;
    assert_eq!(status, 200, "the new token works after SIGHUP");
    assert_eq!(
        client
            .send("GET", &url, &[("authorization", &bearer(READER))], "")
            .status,
        401,
        "removed tokens stop working"
    );
}

#[test]
fn rate_limits_and_header_limits_answer_429_and_431() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            "--rate-limit",
            "1",
            "--rate-limit-burst",
            "3",
            "--max-header-count",
            "20",
        ],
    );
    let client = Client::new();
    let url = proxy.url("/api/2.0/mlflow/experiments/search");
    let statuses: Vec<u16> = (0..5).map(|_| client.get(&url).status).collect();
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    let limited = client.get(&url);
    assert_eq!(limited.status, 429);
    assert!(limited.headers.contains_key("retry-after"));
    assert_eq!(limited.json()["error_code"], "REQUEST_LIMIT_EXCEEDED");
    let many: Vec<(String, String)> = (0..30)
        .map(|i| (format!("x-h{i}"), "v".to_string()))
        .collect();
    let headers: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(client.send("GET", &url, &headers, "").status, 431);
}

/// A GraphQL mutation in a UTF-16 body, which MLflow reads (Python's json detects the encoding).
#[test]
fn graphql_mutations_in_any_encoding_are_writes() {
    let s = setup();
    let client = Client::new();
    let json = r#"{"query": "mutation { deleteRun(runId: \"x\") { ok } }"}"#;
    let utf16: Vec<u8> = json.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let reply = client.send(
        "POST",
        &s.proxy.url("/graphql"),
        &[
            ("authorization", &bearer(READER)),
            ("content-type", "application/json"),
        ],
        utf16,
    );
    assert_eq!(reply.status, 403);
    assert!(
        s.upstream.requests().is_empty(),
        "the refusal reached the upstream"
    );
}

/// A proxy with the README's team rule: team-a may write, on experiments named `team-a/…` only.
fn team_prefix_proxy(upstream: &Upstream) -> (Proxy, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("ann {} team-a\n", hex::encode(Sha256::digest(b"ann-token"))),
    )
    .unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = [\"read\"]\n[[rule]]\ngroups = [\"team-a\"]\nallow = [\"write\", \"delete\"]\nexperiment_prefix = \"team-a/\"\n",
    )
    .unwrap();
    let proxy = start_unsigned_proxy(
        upstream,
        &[
            "--auth",
            "token",
            "--token-file",
            tokens.to_str().unwrap(),
            "--policy",
            policy.to_str().unwrap(),
        ],
    );
    (proxy, dir)
}

#[test]
fn experiment_prefix_rules_follow_the_experiment_the_request_names() {
    let upstream = start_upstream();
    let (proxy, _dir) = team_prefix_proxy(&upstream);
    let client = Client::new();
    let create = |name: &str| {
        client.send(
            "POST",
            &proxy.url("/api/2.0/mlflow/experiments/create"),
            &[
                ("authorization", "Bearer ann-token"),
                ("content-type", "application/json"),
            ],
            format!(r#"{{"name": "{name}"}}"#),
        )
    };
    assert_eq!(create("team-a/churn").status, 200);
    let denied = create("team-b/churn");
    assert_eq!(denied.status, 403);
    assert!(denied.json()["message"]
        .as_str()
        .unwrap()
        .contains("missing permission: write"));
    let by_name = client.send(
        "GET",
        &proxy.url("/api/2.0/mlflow/experiments/get-by-name?experiment_name=team-b%2Fchurn"),
        &[("authorization", "Bearer ann-token")],
        "",
    );
    assert_eq!(by_name.status, 200, "reads come from the default");
    assert_eq!(upstream.requests().len(), 2);
}

/// The red-team's bypasses of a prefix rule: a name read from a request that acts on another
/// experiment (or a run) must not grant; only `experiments/create` and `get-by-name` name theirs.
#[test]
fn experiment_prefix_rules_match_only_the_experiment_mlflow_acts_on() {
    let upstream = start_upstream();
    let (proxy, _dir) = team_prefix_proxy(&upstream);
    let client = Client::new();
    let attempts = [
        (
            "runs/delete?experiment_name=team-a%2Fx",
            r#"{"run_id": "victim-run"}"#,
        ),
        (
            "experiments/update",
            r#"{"experiment_id": "7", "new_name": "team-a/mine"}"#,
        ),
        (
            "experiments/create",
            r#"{"name": "team-b/planted", "new_name": "team-a/x"}"#,
        ),
        (
            "experiments/delete",
            r#"{"experiment_id": "7", "name": "team-a/x"}"#,
        ),
        (
            "experiments/create",
            r#"{"name": "team-a/x", "name": "team-b/last-wins"}"#,
        ),
        (
            "experiments/create",
            r#""{\"name\": \"team-b/double-encoded\"}""#,
        ),
    ];
    for (operation, body) in attempts {
        let reply = client.send(
            "POST",
            &proxy.url(&format!("/api/2.0/mlflow/{operation}")),
            &[
                ("authorization", "Bearer ann-token"),
                ("content-type", "application/json"),
            ],
            body.to_string(),
        );
        assert_eq!(reply.status, 403, "{operation} {body}");
    }
    assert_eq!(
        upstream.requests().len(),
        0,
        "a refusal reached the upstream"
    );
    // A chunked body (no Content-Length) is read ahead too: its name decides.
    let chunked = |name: &str| {
        let body = format!(r#"{{"name": "{name}"}}"#);
        client.raw(
            proxy.addr,
            &format!(
                "POST /api/2.0/mlflow/experiments/create HTTP/1.1\r\nHost: proxy\r\n\
                 Authorization: Bearer ann-token\r\nContent-Type: application/json\r\n\
                 Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                body.len()
            ),
        )
    };
    assert!(chunked("team-b/x").starts_with("HTTP/1.1 403"));
    assert_eq!(upstream.requests().len(), 0);
    assert!(chunked("team-a/x").starts_with("HTTP/1.1 200"));
    let forwarded = upstream.requests();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(
        forwarded[0].body_len,
        r#"{"name": "team-a/x"}"#.len() as u64
    );
}

#[test]
fn read_routes_refuse_large_bodies_before_spooling_them() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--max-read-body-size", "64KiB"]);
    let client = Client::new();
    let search = proxy.url("/api/2.0/mlflow/runs/search");
    let json = [("content-type", "application/json")];
    let declared = client.send("POST", &search, &json, vec![b' '; 4 << 20]);
    assert_eq!(declared.status, 413);
    assert_eq!(declared.json()["error_code"], "REQUEST_LIMIT_EXCEEDED");
    assert!(declared.json()["message"]
        .as_str()
        .unwrap()
        .contains("--max-read-body-size"));
    // The same without Content-Length: refused once the limit is passed.
    let chunk = format!("{:x}\r\n{}\r\n", 32 * 1024, " ".repeat(32 * 1024));
    let chunked = client.raw(
        proxy.addr,
        &format!(
            "POST /api/2.0/mlflow/runs/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n",
            chunk.repeat(8)
        ),
    );
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked:.200}");
    assert!(
        upstream.requests().is_empty(),
        "nothing reached the upstream"
    );
    // Writes keep --max-body-size, and small reads pass.
    let write = proxy.url("/api/2.0/mlflow/runs/log-batch");
    assert_eq!(
        client
            .send("POST", &write, &json, vec![b' '; 1 << 20])
            .status,
        200
    );
    assert_eq!(client.send("POST", &search, &json, "{}").status, 200);
    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn anonymous_rate_limits_and_failed_authentications_count_per_client_address() {
    let upstream = start_upstream();
    let limited = ["--rate-limit", "1", "--rate-limit-burst", "2"];
    let behind_alb = ["--trusted-proxies", "127.0.0.1/32"];
    let proxy = start_unsigned_proxy(&upstream, &[&limited[..], &behind_alb[..]].concat());
    let client = Client::new();
    let url = proxy.url("/api/2.0/mlflow/experiments/search");
    let from = |ip: &str| {
        client
            .send("GET", &url, &[("x-forwarded-for", ip)], "")
            .status
    };
    let noisy: Vec<u16> = (0..3).map(|_| from("203.0.113.1")).collect();
    assert_eq!(noisy, [200, 200, 429]);
    assert_eq!(
        from("203.0.113.2"),
        200,
        "another client has its own bucket"
    );
    assert_eq!(
        upstream.requests().len(),
        3,
        "the refused request reached nothing"
    );

    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("ci {}\n", hex::encode(Sha256::digest(WRITER))),
    )
    .unwrap();
    let auth = ["--auth", "token", "--token-file", tokens.to_str().unwrap()];
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            &auth[..],
            &behind_alb[..],
            &["--max-auth-failures", "3"][..],
        ]
        .concat(),
    );
    let url = proxy.url("/api/2.0/mlflow/experiments/search");
    let with = |ip: &str, token: &str| {
        client.send(
            "GET",
            &url,
            &[("x-forwarded-for", ip), ("authorization", &bearer(token))],
            "",
        )
    };
    let guesses: Vec<u16> = (0..3)
        .map(|i| with("203.0.113.9", &format!("guess-{i}")).status)
        .collect();
    assert_eq!(guesses, [401, 401, 401]);
    let blocked = with("203.0.113.9", "guess-4");
    assert_eq!(blocked.status, 429);
    assert!(blocked.headers.contains_key("retry-after"));
    assert_eq!(blocked.json()["error_code"], "REQUEST_LIMIT_EXCEEDED");
    assert_eq!(
        with("203.0.113.9", WRITER).status,
        429,
        "the blocked address is refused before its credential is checked"
    );
    assert_eq!(with("203.0.113.10", WRITER).status, 200, "others pass");
    assert_eq!(upstream.requests().len(), 4);
}

/// Reads from `stream` until the peer closes it (true) or `within` passes without that (false).
fn closed_by_peer(
    stream: &mut std::net::TcpStream,
    within: std::time::Duration,
) -> (bool, Vec<u8>) {
    use std::io::Read;
    let deadline = std::time::Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        stream
            .set_read_timeout(Some(left.max(std::time::Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (true, seen),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (true, seen),
            Err(_) => return (false, seen),
        }
    }
    (false, seen)
}

/// The frame types in a stream of HTTP/2 frames.
fn h2_frame_types(mut bytes: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        types.push(bytes[3]);
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    types
}

#[test]
fn idle_connections_are_closed_and_connections_are_capped() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::Duration;
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--keep-alive-timeout", "1s"]);
    let bound = Duration::from_secs(10);
    let mut silent = TcpStream::connect(proxy.addr).unwrap();
    assert!(
        closed_by_peer(&mut silent, bound).0,
        "a silent connection is closed"
    );
    let mut kept_alive = TcpStream::connect(proxy.addr).unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (closed, answer) = closed_by_peer(&mut kept_alive, bound);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert!(closed, "an idle keep-alive connection is closed");
    let mut h2 = TcpStream::connect(proxy.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let (closed, frames) = closed_by_peer(&mut h2, bound);
    assert!(closed, "an idle HTTP/2 connection is closed");
    assert!(h2_frame_types(&frames).contains(&7), "with a GOAWAY first");

    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let admin_arg = admin.to_string();
    let capped = start_unsigned_proxy(
        &upstream,
        &["--max-connections", "3", "--admin-listen", &admin_arg],
    );
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(capped.addr).unwrap())
        .collect();
    let mut waiting = TcpStream::connect(capped.addr).unwrap();
    waiting
        .write_all(b"GET /api/2.0/mlflow/experiments/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    capped.wait_for_log(&["connection limit reached", "--max-connections"]);
    let client = Client::new();
    assert_eq!(
        client.get(&format!("http://{admin}/healthz")).status,
        200,
        "health checks still answer"
    );
    assert!(
        upstream.requests().is_empty(),
        "the waiting request is not served yet"
    );
    held.pop();
    let (_, answer) = closed_by_peer(&mut waiting, bound);
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    assert_eq!(upstream.requests().len(), 1);
}

#[test]
fn slow_bodies_are_cut_and_hold_no_concurrency_slot() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            "--max-concurrent-requests",
            "2",
            "--idle-timeout",
            "1s",
            "--min-body-rate",
            "1KiB",
        ],
    );
    let sent = Arc::new(AtomicUsize::new(0));
    // Two clients trickle a byte every 200 ms (inside the idle timeout, far under the rate), at most
    // 100 bytes each; each returns what the proxy answered.
    let trickles: Vec<_> = ["/api/2.0/mlflow/runs/log-batch", "/api/2.0/mlflow/runs/search"]
        .into_iter()
        .map(|path| {
            let (addr, sent) = (proxy.addr, sent.clone());
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(addr).unwrap();
                let head = format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                );
                stream.write_all(head.as_bytes()).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                let mut answer = [0u8; 1024];
                for _ in 0..100 {
                    if stream.write_all(b" ").is_err() {
                        break;
                    }
                    sent.fetch_add(1, Ordering::SeqCst);
                    if let Ok(n) = stream.read(&mut answer) {
                        return String::from_utf8_lossy(&answer[..n]).into_owned();
                    }
                }
                String::new()
            })
        })
        .collect();
    wait_for("both trickles under way", Duration::from_secs(10), || {
        (sent.load(Ordering::SeqCst) >= 6).then_some(())
    });
    let client = Client::new();
    assert_eq!(
        client
            .get(&proxy.url("/api/2.0/mlflow/experiments/search"))
            .status,
        200,
        "slow senders hold no slot"
    );
    for trickle in trickles {
        let answer = trickle.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
        assert!(answer.contains("--min-body-rate"), "{answer:?}");
    }
    assert_eq!(
        upstream.requests().len(),
        1,
        "the slow bodies reached nothing"
    );
}

#[test]
fn alb_key_fetches_are_single_flight_and_bounded() {
    let upstream = start_upstream();
    let signer = TestSigner::new();
    *upstream.seen.alb_pem.lock().unwrap() = Some(signer.public_pem());
    let key_url = format!("{}/alb-key/{{kid}}", upstream.url());
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            "--auth",
            "alb-oidc",
            "--alb-arn",
            ALB,
            "--alb-key-url",
            &key_url,
            "--max-auth-failures",
            "0",
        ],
    );
    let fetches = || {
        upstream
            .seen
            .alb_key_fetches
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    let url = proxy.url("/api/2.0/mlflow/experiments/search");
    let claims = json!({"sub": "u-1", "email": "alice@example.com"});
    let held = signer.sign(&alb_header("ES256", "held-kid", ALB, future()), &claims);
    // Eight requests for one uncached key while its fetch is under way: one fetch.
    let concurrent: Vec<_> = (0..8)
        .map(|_| {
            let (url, held) = (url.clone(), held.clone());
            std::thread::spawn(move || {
                Client::new()
                    .send("GET", &url, &[("x-amzn-oidc-data", held.as_str())], "")
                    .status
            })
        })
        .collect();
    wait_for("the key fetch", std::time::Duration::from_secs(10), || {
        (fetches() >= 1).then_some(())
    });
    upstream.release_held();
    let statuses: Vec<u16> = concurrent.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(statuses, [200; 8]);
    assert_eq!(fetches(), 1, "one fetch for concurrent requests");
    // Random key ids with the right signer: a bounded number of fetches, everything refused.
    let client = Client::new();
    for i in 0..30 {
        let forged = signer.sign(
            &alb_header("ES256", &format!("kid-{i}"), ALB, future()),
            &claims,
        );
        let reply = client.send("GET", &url, &[("x-amzn-oidc-data", forged.as_str())], "");
        assert_eq!(reply.status, 401);
    }
    assert!(
        fetches() <= 11,
        "{} key fetches for 30 unknown kids",
        fetches()
    );
    // A forged token with another signer costs no fetch at all.
    let before = fetches();
    let other = "arn:aws:elasticloadbalancing:us-west-2:999999999999:loadbalancer/app/evil/x";
    let forged = signer.sign(&alb_header("ES256", "kid-x", other, future()), &claims);
    assert_eq!(
        client
            .send("GET", &url, &[("x-amzn-oidc-data", forged.as_str())], "")
            .status,
        401
    );
    assert_eq!(fetches(), before);
    assert_eq!(
        upstream.requests().len(),
        8,
        "only the valid requests reached MLflow"
    );
}

// Issue 15, item 12: the upstream's CORS headers never reach a browser; the proxy's own
// (`--cors-allowed-origins`) are the only ones.
#[test]
fn upstream_cors_headers_are_replaced_by_the_proxys_own() {
    let upstream = start_upstream();
    let portal = "https://portal.example.com";
    let proxy = start_unsigned_proxy(&upstream, &["--cors-allowed-origins", portal]);
    let client = Client::new();
    let url = proxy.url("/api/2.0/mlflow/cors-open");
    let foreign = client.send("GET", &url, &[("origin", "https://evil.example")], "");
    assert_eq!(foreign.status, 200);
    let cors: Vec<_> = foreign
        .headers
        .keys()
        .filter(|k| k.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "upstream CORS headers passed: {cors:?}");
    let allowed = client.send("GET", &url, &[("origin", portal)], "");
    assert_eq!(allowed.headers["access-control-allow-origin"], portal);
    assert!(!allowed
        .headers
        .contains_key("access-control-allow-credentials"));
    assert_ne!(allowed.headers["access-control-expose-headers"], "x-secret");
}

/// How long a test waits for a condition it needs (the condition, not the time, is what is checked).
const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

// Issue 15, item 11: the open `/readyz` says that the proxy is not ready, not which role or account it
// tried (STS's error names them); the detail is on the admin listener and behind authentication.
#[test]
fn readyz_does_not_disclose_the_role_to_anonymous_callers() {
    let upstream = start_upstream();
    let role = "arn:aws:iam::111122223333:role/secret-role-name";
    let admin = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut env = static_creds();
    env.push(("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9"));
    let admin_arg = admin.to_string();
    let proxy = start_proxy(
        &[
            "--arn",
            TS_ARN,
            "--upstream-url",
            &upstream.url(),
            "--assume-role-arn",
            role,
            "--admin-listen",
            &admin_arg,
            "--auth",
            "token",
            "--tokens",
            &format!("ops {}", hex::encode(Sha256::digest(b"ops-token"))),
        ],
        &env,
    );
    let client = Client::new();
    let detail = |reply: &Reply| String::from_utf8_lossy(&reply.body).into_owned();
    let admin_ready = wait_for("the admin /readyz to name the failure", WAIT, || {
        let reply = client.get(&format!("http://{admin}/readyz"));
        (reply.status == 503 && detail(&reply).contains("AssumeRole")).then_some(reply)
    });
    assert!(
        detail(&admin_ready).contains(role),
        "{}",
        detail(&admin_ready)
    );
    let public = client.get(&proxy.url("/readyz"));
    assert_eq!(public.status, 503);
    assert!(
        !detail(&public).contains("111122223333") && !detail(&public).contains("role/"),
        "the open /readyz discloses identity detail: {}",
        detail(&public)
    );
    assert!(public.json()["reason"]
        .as_str()
        .unwrap()
        .contains("credentials"));
    let status = client.send(
        "GET",
        &proxy.url("/api/proxy/status"),
        &[("authorization", "Bearer ops-token")],
        "",
    );
    assert!(status.json()["ready_reason"]
        .as_str()
        .unwrap()
        .contains(role));
    assert!(upstream.requests().is_empty());
}

// Issue 15, item 5: request data with control characters cannot forge a log line, in either format.
#[test]
fn control_characters_in_request_data_cannot_forge_log_lines() {
    let upstream = start_upstream();
    let forged = "INFO audit: mlflow change who=admin";
    for format in ["text", "json"] {
        let url = upstream.url();
        let proxy =
            start_proxy_logging(format, &["--signing", "none", "--upstream-url", &url], &[]);
        let client = Client::new();
        let query = "run_id=q%0A".to_string() + &forged.replace(' ', "%20") + "%0D%1B%5B2K%7F";
        let body = json!({"experiment_id": format!("b\n{forged}\r\u{1b}[31m"), "key": "k"});
        let reply = client.send(
            "POST",
            &proxy.url(&format!("/api/2.0/mlflow/runs/log-param?{query}")),
            &[("content-type", "application/json")],
            body.to_string(),
        );
        assert_eq!(reply.status, 200);
        let audit = proxy.wait_for_log(&["mlflow change", "log-param"]);
        let lines = proxy.log_lines();
        assert!(
            !lines.iter().any(|l| l.starts_with(forged)),
            "{format}: a forged line: {lines:#?}"
        );
        assert!(
            !audit.contains('\r') && !audit.contains('\u{1b}') && !audit.contains('\u{7f}'),
            "{format}: raw controls in {audit:?}"
        );
        if format == "json" {
            let event: Value = serde_json::from_str(&audit).unwrap();
            let subjects = event["subjects"].as_str().unwrap();
            assert!(subjects.contains(&format!("run_id=q\n{forged}\r\u{1b}[2K\u{7f}")));
        } else {
            assert!(audit.contains(&format!(r"run_id=q\n{forged}\r\u{{1b}}[2K\u{{7f}}")));
            assert!(audit.contains(&format!(r"experiment_id=b\n{forged}\r\u{{1b}}[31m")));
        }
    }
}

// Issue 15, item 4: DNS rebinding. A hostile page whose name now resolves to the proxy sends its own
// name in both `Origin` and `Host`; "same origin" is judged against the origins the proxy is configured
// to serve (its listen address, --public-url, --cors-allowed-origins), never against `Host`.
#[test]
fn dns_rebinding_pages_cannot_write_through_an_unauthenticated_proxy() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--public-url", "https://mlflow.example.com"]);
    let client = Client::new();
    let port = proxy.addr.port();
    let write = |origin: &str, host: &str| {
        let before = upstream.requests().len();
        let reply = client.send(
            "POST",
            &proxy.url("/api/2.0/mlflow/runs/create"),
            &[
                ("origin", origin),
                ("host", host),
                ("content-type", "application/json"),
            ],
            r#"{"experiment_id": "0"}"#,
        );
        (reply, upstream.requests().len() > before)
    };
    let rebinding = format!("evil.example:{port}");
    for (origin, host) in [
        (format!("http://{rebinding}"), rebinding.clone()),
        (format!("http://{rebinding}"), format!("127.0.0.1:{port}")),
        (
            format!("http://localhost:{}", port + 1),
            format!("localhost:{}", port + 1),
        ),
        ("null".to_string(), rebinding.clone()),
    ] {
        let (reply, reached) = write(&origin, &host);
        assert_eq!(reply.status, 403, "Origin {origin}, Host {host}");
        assert!(!reached, "Origin {origin}: reached the upstream");
        let message = reply.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("MLFLOW_PROXY_PUBLIC_URL"), "{message}");
    }
    for (origin, host) in [
        (
            format!("http://127.0.0.1:{port}"),
            format!("127.0.0.1:{port}"),
        ),
        (
            format!("http://localhost:{port}"),
            format!("localhost:{port}"),
        ),
        (
            "https://mlflow.example.com".to_string(),
            "mlflow.example.com".to_string(),
        ),
    ] {
        let (reply, reached) = write(&origin, &host);
        assert_eq!(reply.status, 200, "Origin {origin}");
        assert!(reached, "Origin {origin}: not forwarded");
    }
    // Reads stay open to any origin (the browser keeps their answers from a foreign page).
    let read = client.send(
        "GET",
        &proxy.url("/api/2.0/mlflow/experiments/search"),
        &[
            ("origin", &format!("http://{rebinding}")),
            ("host", &rebinding),
        ],
        "",
    );
    assert_eq!(read.status, 200);
    assert!(!read.headers.contains_key("access-control-allow-origin"));
}

// Issue 15, item 13: the functional findings.
#[test]
fn same_origin_writes_work_over_http2_where_there_is_no_host_header() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let h2 = {
        let _guard = runtime.enter();
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .http2_only(true)
            .build::<_, http_body_util::Full<bytes::Bytes>>(
                hyper_util::client::legacy::connect::HttpConnector::new(),
            )
    };
    let own = format!("http://{}", proxy.addr);
    let send = |origin: &str| {
        let request = http::Request::post(proxy.url("/api/2.0/mlflow/runs/create"))
            .header("origin", origin)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                br#"{"experiment_id": "0"}"#,
            )))
            .unwrap();
        runtime.block_on(async {
            let response = h2.request(request).await.expect("h2 request");
            assert_eq!(response.version(), http::Version::HTTP_2);
            response.status().as_u16()
        })
    };
    assert_eq!(send(&own), 200, "the proxy's own origin over HTTP/2");
    let seen = upstream.requests().pop().unwrap();
    assert_eq!(seen.headers["x-forwarded-host"], proxy.addr.to_string());
    let before = upstream.requests().len();
    assert_eq!(send("http://evil.example"), 403);
    assert_eq!(
        upstream.requests().len(),
        before,
        "the refusal reached nothing"
    );
}

#[test]
fn an_oversized_body_awaiting_100_continue_is_refused_without_the_go_ahead() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--max-body-size", "1MiB"]);
    for path in [
        "/api/2.0/mlflow/runs/log-batch",
        "/mlflow/ajax-api/2.0/mlflow/runs/log-batch",
    ] {
        let response = Client::new().raw(
            proxy.addr,
            &format!(
                "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 10737418240\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
                proxy.addr
            ),
        );
        assert!(response.starts_with("HTTP/1.1 413"), "{path}: {response}");
        assert!(!response.contains("100 Continue"), "{path}: {response}");
    }
    assert!(upstream.requests().is_empty());
}

#[test]
fn ui_redirects_with_a_url_in_their_query_stay_under_the_prefix() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &[]);
    let reply = Client::new().get(&proxy.url("/mlflow/redirect-next"));
    assert_eq!(reply.status, 302);
    assert_eq!(
        reply.headers["location"],
        "/mlflow/login?next=https://elsewhere.example/x"
    );
}

// Issue 15, item 14: a trusted identity header sent twice (the client's copy and the auth proxy's)
// is refused, not read from its first (the client's) value.
#[test]
fn a_trusted_identity_header_sent_twice_is_refused() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(
        &upstream,
        &[
            "--auth",
            "trusted-header",
            "--trusted-header-sources",
            "127.0.0.1/32",
            "--policy-toml",
            "[[rule]]\nidentities = [\"admin@example.com\"]\nallow = [\"read\", \"write\", \"delete\"]\n[[rule]]\ngroups = [\"ml-engineers\"]\nallow = [\"read\", \"write\"]\n",
        ],
    );
    let client = Client::new();
    let url = proxy.url("/api/2.0/mlflow/runs/delete");
    let delete = |headers: &[(&str, &str)]| {
        let before = upstream.requests().len();
        let reply = client.send("POST", &url, headers, r#"{"run_id": "r"}"#);
        (reply.status, upstream.requests().len() > before)
    };
    let user = "x-forwarded-email";
    let groups = "x-forwarded-groups";
    for (name, headers) in [
        (
            "client's copy first, the proxy's appended",
            vec![(user, "admin@example.com"), (user, "bob@example.com")],
        ),
        (
            "joined into one line",
            vec![(user, "admin@example.com, bob@example.com")],
        ),
        (
            "groups header twice",
            vec![
                (user, "bob@example.com"),
                (groups, "ml-engineers"),
                (groups, "analysts"),
            ],
        ),
    ] {
        assert_eq!(delete(&headers), (401, false), "{name}");
    }
    assert_eq!(
        delete(&[(user, "admin@example.com")]),
        (200, true),
        "one value is believed"
    );
}

#[test]
fn a_policy_group_with_a_comma_is_refused_at_start() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sagemaker-mlflow-proxy"))
        .args([
            "--signing",
            "none",
            "--upstream-url",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
            "--policy-toml",
            "[[rule]]\ngroups = [\"x,ml-engineers\"]\nallow = [\"read\"]\n",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A proxy that accepted the policy would keep running: wait for the exit, bounded, and stop it.
    let deadline = std::time::Instant::now() + WAIT;
    let exited = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        exited.and_then(|s| s.code()),
        Some(2),
        "the policy was accepted"
    );
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("comma"), "{stderr}");
}

// Issue 15, item 14: only AWS's own error code for an expired token makes the proxy refresh its
// credentials and send the request again; MLflow's 403 that quotes the words does not.
#[test]
fn an_mlflow_403_mentioning_expired_token_is_not_resent() {
    let upstream = start_upstream();
    let creds_uri = format!("{}/creds?ttl=3600", upstream.url());
    let proxy = start_proxy(
        &["--arn", TS_ARN, "--upstream-url", &upstream.url()],
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_uri.as_str())],
    );
    let reply = Client::new().send(
        "POST",
        &proxy.url("/api/2.0/mlflow/forbidden-quoting"),
        &[("content-type", "application/json")],
        r#"{"run_id": "r"}"#,
    );
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["error_code"], "PERMISSION_DENIED");
    let sent = upstream
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("forbidden-quoting"))
        .count();
    assert_eq!(sent, 1, "the request was sent again");
    let fetches = upstream
        .seen
        .credential_fetches
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fetches, 1, "credentials were refreshed for it");
}

// Issue 15, item 14: behind the load balancer (--trusted-proxies), audit lines name the client it
// forwarded, not the load balancer; an address the client wrote itself is not believed.
#[test]
fn audit_lines_behind_a_trusted_proxy_name_the_client() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--trusted-proxies", "127.0.0.1/32"]);
    let reply = Client::new().send(
        "POST",
        &proxy.url("/api/2.0/mlflow/runs/delete"),
        &[
            ("content-type", "application/json"),
            ("x-forwarded-for", "192.0.2.66, 203.0.113.9"),
            ("x-request-id", "behind-alb"),
        ],
        r#"{"run_id": "r"}"#,
    );
    assert_eq!(reply.status, 200);
    let line = proxy.wait_for_log(&["mlflow change", "behind-alb"]);
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["remote"], "203.0.113.9", "{line}");
}
