//! Integration tests: the proxy binary between a real HTTP client and a test upstream, on 127.0.0.1.
//! Signature *correctness* is checked independently by botocore in the end-to-end suite
//! (`tests/e2e`); here we check what the signer was given and what reached the upstream.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sha2::{Digest, Sha256};

fn signed_headers(auth: &str) -> String {
    auth.split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn tracking_server_requests_are_signed_like_the_official_client() {
    let upstream = start_upstream();
    let proxy = start_proxy(
        &["--arn", TS_ARN, "--upstream-url", &upstream.url()],
        &static_creds(),
    );
    let client = Client::new();
    let body = br#"{"name": "exp with spaces"}"#;
    let reply = client.send(
        "POST",
        &proxy.url("/api/2.0/mlflow/experiments/create"),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer client-token"),
            ("cookie", "a=b"),
            ("x-amz-date", "19990101T000000Z"),
            (
                "x-mlflow-sm-tracking-server-arn",
                "arn:aws:sagemaker:us-west-2:999999999999:mlflow-tracking-server/other",
            ),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-request-id", "req-123"),
        ],
        &body[..],
    );
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(reply.headers["x-request-id"], "req-123");
    assert!(
        reply.headers.get("set-cookie").is_none(),
        "upstream cookies never reach clients"
    );
    let echo = reply.json();
    assert_eq!(echo["body_sha256"], hex::encode(Sha256::digest(body)));

    let seen = upstream.requests().pop().unwrap();
    let h = &seen.headers;
    assert_eq!(h["host"], upstream.addr.to_string());
    assert_eq!(h["x-mlflow-sm-tracking-server-arn"], TS_ARN);
    assert_eq!(h["x-amz-content-sha256"], hex::encode(Sha256::digest(body)));
    assert_eq!(seen.body_sha256, h["x-amz-content-sha256"]);
    assert_eq!(h["content-length"], body.len().to_string());
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-request-id"], "req-123");
    assert!(!h.contains_key("cookie"));
    assert!(!h.contains_key("x-amz-security-token"));
    let auth = &h["authorization"];
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDSTATICTEST/"),
        "{auth}"
    );
    assert!(
        auth.contains("/us-west-2/sagemaker-mlflow/aws4_request"),
        "{auth}"
    );
    assert_eq!(
        signed_headers(auth),
        "content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-mlflow-sm-tracking-server-arn"
    );
}

#[test]
fn app_requests_use_the_sagemaker_service_and_app_header() {
    let upstream = start_upstream();
    let proxy = start_proxy(
        &["--arn", APP_ARN, "--upstream-url", &upstream.url()],
        &static_creds(),
    );
    let reply = Client::new()
        .get(&proxy.url("/api/2.0/mlflow/experiments/get-by-name?experiment_name=my+exp%2Bplus"));
    assert_eq!(reply.status, 200);
    let seen = upstream.requests().pop().unwrap();
    assert_eq!(
        seen.path_and_query,
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=my%20exp%2Bplus"
    );
    assert_eq!(seen.headers["x-sm-mlflow-app-arn"], APP_ARN);
    assert!(seen.headers["authorization"].contains("/us-west-2/sagemaker/aws4_request"));
    assert_eq!(
        signed_headers(&seen.headers["authorization"]),
        "host;x-amz-content-sha256;x-amz-date;x-sm-mlflow-app-arn"
    );
    assert_eq!(
        seen.headers["x-amz-content-sha256"],
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn ambiguous_paths_are_refused_with_mlflow_errors() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &[]);
    let client = Client::new();
    for path in [
        "/api/2.0/mlflow/%2e%2e/proxy/status",
        "/api/2.0//mlflow/runs/get",
        "/api/2.0/mlflow%2fruns",
        "/api/2.0/mlflow/runs/get?run_id=%zz",
    ] {
        let reply = client.get(&proxy.url(path));
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.json()["error_code"], "BAD_REQUEST", "{path}");
    }
    assert!(
        upstream.requests().is_empty(),
        "nothing ambiguous reaches the upstream"
    );
}

#[test]
fn large_responses_stream_with_bounded_memory() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &[]);
    let client = Client::new();
    let size: u64 = 512 << 20;
    let (status, total, _) = client.download(&proxy.url(&format!(
        "/api/2.0/mlflow-artifacts/artifacts/big?size={size}"
    )));
    assert_eq!(status, 200);
    assert_eq!(total, size);
    let peak_mib = proxy.peak_rss_kib() / 1024;
    assert!(
        peak_mib < 64,
        "proxy peak RSS {peak_mib} MiB while streaming 512 MiB"
    );
}

/// An upstream that stops sending in the middle of a body is cut off after --idle-timeout: the client's
/// response ends (short of its Content-Length) instead of hanging, and the access log says why.
#[test]
fn a_stalled_response_body_is_cut_off_after_the_idle_timeout() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--idle-timeout", "1s"]);
    let url = proxy.url("/api/2.0/mlflow-artifacts/artifacts/stall");
    // A bound on the wait, so that a proxy that never cuts the body off fails here instead of hanging.
    let (done, answer) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(Client::new().send("GET", &url, &[], ""));
    });
    let reply = answer
        .recv_timeout(Duration::from_secs(30))
        .expect("the stalled download ends instead of hanging");
    assert_eq!(reply.status, 200, "the head was already on its way");
    assert!(
        (reply.body.len() as u64) < 1 << 20,
        "the body ends short of its Content-Length"
    );
    // The access line is written when the body ends, just after the client saw it end.
    let outcome = proxy.wait_for_log(&["/artifacts/stall", "\"outcome\""]);
    assert!(
        outcome.contains("\"outcome\":\"upstream-idle-timeout\""),
        "{outcome}"
    );
}

#[test]
fn large_uploads_spool_hash_and_arrive_intact() {
    let upstream = start_upstream();
    let spool = tempfile::tempdir().unwrap();
    let spool_path = spool.path().to_str().unwrap().to_string();
    let proxy = start_proxy(
        &[
            "--arn",
            TS_ARN,
            "--upstream-url",
            &upstream.url(),
            "--spool-dir",
            &spool_path,
        ],
        &static_creds(),
    );
    let size: u64 = 256 << 20;
    let reply = Client::new().upload_streamed(
        &proxy.url("/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/big.bin"),
        size,
    );
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    let seen = upstream.requests().pop().unwrap();
    assert_eq!(seen.body_len, size);
    assert_eq!(seen.headers["x-amz-content-sha256"], seen.body_sha256);
    assert_eq!(seen.headers["content-length"], size.to_string());
    let peak_mib = proxy.peak_rss_kib() / 1024;
    assert!(
        peak_mib < 64,
        "proxy peak RSS {peak_mib} MiB while uploading 256 MiB"
    );
    assert_eq!(
        std::fs::read_dir(spool.path()).unwrap().count(),
        0,
        "spool files are removed"
    );
}

#[test]
fn bodies_over_the_limit_get_413() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--max-body-size", "1KiB"]);
    let reply = Client::new().send(
        "POST",
        &proxy.url("/api/2.0/mlflow/runs/log-batch"),
        &[("content-type", "application/json")],
        vec![b'x'; 4096],
    );
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["error_code"], "REQUEST_LIMIT_EXCEEDED");
    assert!(reply.json()["message"].as_str().unwrap().contains("1024"));
    let streamed =
        Client::new().upload_streamed(&proxy.url("/api/2.0/mlflow-artifacts/artifacts/x"), 1 << 20);
    assert_eq!(streamed.status, 413);
    assert!(upstream.requests().is_empty());
}

#[test]
fn slow_upstream_gives_504_and_down_upstream_502() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &["--request-timeout", "300ms"]);
    let client = Client::new();
    let started = Instant::now();
    let reply = client.get(&proxy.url("/api/2.0/mlflow/slow?ms=3000"));
    assert_eq!(reply.status, 504);
    assert_eq!(reply.json()["error_code"], "DEADLINE_EXCEEDED");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = start_proxy(
        &[
            "--signing",
            "none",
            "--upstream-url",
            &format!("http://{closed}"),
        ],
        &[],
    );
    let reply = client.get(&down.url("/api/2.0/mlflow/experiments/search"));
    assert_eq!(reply.status, 502);
    assert_eq!(reply.json()["error_code"], "TEMPORARILY_UNAVAILABLE");
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("unreachable"));
}

#[test]
fn expired_token_refreshes_credentials_and_retries_once() {
    let upstream = start_upstream();
    let creds_uri = format!("{}/creds?ttl=3600", upstream.url());
    let proxy = start_proxy(
        &["--arn", TS_ARN, "--upstream-url", &upstream.url()],
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_uri.as_str())],
    );
    let client = Client::new();
    let body = br#"{"run_id": "abc"}"#;
    let reply = client.send(
        "POST",
        &proxy.url("/api/2.0/mlflow/expire-once"),
        &[("content-type", "application/json")],
        &body[..],
    );
    assert_eq!(
        reply.status,
        200,
        "{:?}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(
        reply.json()["key"],
        "ASIATEST1",
        "the retry used freshly fetched credentials"
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2, "exactly one retry");
    assert_eq!(
        seen[1].body_sha256,
        hex::encode(Sha256::digest(body)),
        "the body was replayed"
    );
    assert!(seen[1].headers.contains_key("x-amz-security-token"));

    // A 403 that is not about expiry is passed through untouched, without a retry.
    let reply = client.get(&proxy.url("/api/2.0/mlflow/forbidden"));
    assert_eq!(reply.status, 403);
    assert!(String::from_utf8_lossy(&reply.body).contains("AccessDeniedException"));
    assert_eq!(upstream.requests().len(), 3);
}

#[test]
fn credentials_are_cached_and_refreshed_ahead_of_expiry() {
    let upstream = start_upstream();
    // 40 s credentials: refreshed ahead at half their lifetime, never fetched per request.
    let creds_uri = format!("{}/creds?ttl=40", upstream.url());
    let proxy = start_proxy(
        &["--arn", APP_ARN, "--upstream-url", &upstream.url()],
        &[("AWS_CONTAINER_CREDENTIALS_FULL_URI", creds_uri.as_str())],
    );
    let client = Client::new();
    for _ in 0..50 {
        assert_eq!(
            client
                .get(&proxy.url("/api/2.0/mlflow/experiments/search"))
                .status,
            200
        );
    }
    let fetches = upstream
        .seen
        .credential_fetches
        .load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fetches, 1, "one credentials fetch for 50 requests");
    let status = client.get(&proxy.url("/api/proxy/status")).json();
    assert_eq!(status["credentials"]["source"], "default-chain");
    assert!(status["credentials"]["expires_at"].is_string());
    assert_eq!(status["mode"], "app");
    assert_eq!(client.get(&proxy.url("/readyz")).status, 200);
}

#[test]
fn no_credentials_means_503_and_not_ready() {
    let upstream = start_upstream();
    let proxy = start_proxy(&["--arn", TS_ARN, "--upstream-url", &upstream.url()], &[]);
    let client = Client::new();
    let reply = client.get(&proxy.url("/api/2.0/mlflow/experiments/search"));
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error_code"], "TEMPORARILY_UNAVAILABLE");
    assert!(reply.json()["message"]
        .as_str()
        .unwrap()
        .contains("no AWS credentials"));
    let ready = client.get(&proxy.url("/readyz"));
    assert_eq!(ready.status, 503);
    assert!(ready.json()["reason"]
        .as_str()
        .unwrap()
        .contains("credentials"));
    assert_eq!(client.get(&proxy.url("/healthz")).status, 200);
    assert!(upstream.requests().is_empty());
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let upstream = start_upstream();
    let mut proxy = start_unsigned_proxy(&upstream, &["--drain-timeout", "10s"]);
    let url = proxy.url("/api/2.0/mlflow/hold");
    let in_flight = std::thread::spawn(move || Client::new().get(&url));
    // In flight: the upstream holds it until released.
    wait_for(
        "the request to reach the upstream",
        Duration::from_secs(10),
        || {
            upstream
                .requests()
                .iter()
                .any(|r| r.path_and_query.starts_with("/api/2.0/mlflow/hold"))
                .then_some(())
        },
    );
    proxy.terminate();
    proxy.wait_for_log(&["draining"]);
    upstream.release_held();
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200, "the in-flight request completed");
    let status = proxy.child.wait().unwrap();
    assert!(status.success());
    assert!(proxy.log_lines().iter().any(|l| l.contains("draining")));
}

#[test]
fn the_ui_is_served_under_mlflow_and_embeddable() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(
        &upstream,
        &["--frame-ancestors", "https://portal.example.com"],
    );
    let client = Client::new();
    let redirect = client.get(&proxy.url("/mlflow"));
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.headers["location"], "/mlflow/");
    let page = client.get(&proxy.url("/mlflow/"));
    assert_eq!(page.status, 200);
    assert!(page.headers.get("x-frame-options").is_none());
    assert_eq!(
        page.headers["content-security-policy"],
        "frame-ancestors 'self' https://portal.example.com"
    );
    assert!(page.headers.get("set-cookie").is_none());
    assert_eq!(upstream.requests().last().unwrap().path_and_query, "/");
    let moved = client.get(&proxy.url("/mlflow/redirect"));
    assert_eq!(moved.status, 302);
    assert_eq!(moved.headers["location"], "/mlflow/#/experiments");
}

#[test]
fn cross_origin_writes_are_refused_and_allowed_origins_get_cors() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(
        &upstream,
        &["--cors-allowed-origins", "https://portal.example.com"],
    );
    let client = Client::new();
    let url = proxy.url("/api/2.0/mlflow/experiments/create");
    let evil = client.send(
        "POST",
        &url,
        &[
            ("origin", "https://evil.example"),
            ("content-type", "application/json"),
        ],
        "{}",
    );
    assert_eq!(evil.status, 403);
    assert_eq!(evil.json()["error_code"], "PERMISSION_DENIED");
    let portal = client.send(
        "POST",
        &url,
        &[
            ("origin", "https://portal.example.com"),
            ("content-type", "application/json"),
        ],
        "{}",
    );
    assert_eq!(portal.status, 200);
    assert_eq!(
        portal.headers["access-control-allow-origin"],
        "https://portal.example.com"
    );
    let preflight = client.send(
        "OPTIONS",
        &url,
        &[
            ("origin", "https://portal.example.com"),
            ("access-control-request-method", "POST"),
        ],
        "",
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        upstream.requests().len(),
        1,
        "only the allowed POST reached the upstream"
    );
}

#[test]
fn proxy_endpoints_and_unknown_paths() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &[]);
    let client = Client::new();
    let status = client.get(&proxy.url("/api/proxy/status")).json();
    assert_eq!(status["mode"], "self-hosted");
    assert_eq!(status["signing"], "none");
    assert_eq!(status["upstream_url"], upstream.url());
    let identity = client.get(&proxy.url("/api/proxy/identity"));
    assert_eq!(identity.status, 400);
    let nothing = client.get(&proxy.url("/api/proxy/nothing"));
    assert_eq!(nothing.status, 404);
    assert_eq!(nothing.json()["error_code"], "ENDPOINT_NOT_FOUND");
    client.get(&proxy.url("/api/2.0/mlflow/experiments/search"));
    let stats = client.get(&proxy.url("/api/proxy/stats")).json();
    assert!(stats["requests_total"].as_u64().unwrap() >= 1);
    // The access-log line is written when the response body ends, which may be just after the
    // client has read it (and the test reads the proxy's output through a pipe).
    wait_for("the access-log line", Duration::from_secs(10), || {
        proxy
            .log_lines()
            .iter()
            .any(|l| {
                l.contains("\"path\":\"/api/2.0/mlflow/experiments/search\"")
                    && l.contains("\"status\":200")
                    && l.contains("\"outcome\":\"complete\"")
            })
            .then_some(())
    });
}

#[test]
fn secrets_never_appear_in_logs() {
    let upstream = start_upstream();
    let proxy = start_proxy(
        &[
            "--arn",
            TS_ARN,
            "--upstream-url",
            &upstream.url(),
            "--log-level",
            "debug",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDLOGTEST"),
            ("AWS_SECRET_ACCESS_KEY", "super-secret-value"),
            ("AWS_SESSION_TOKEN", "session-token-value"),
        ],
    );
    let client = Client::new();
    client.send(
        "POST",
        &proxy.url("/api/2.0/mlflow/runs/create?token=querysecret"),
        &[
            ("authorization", "Bearer bearer-secret"),
            ("cookie", "sid=cookie-secret"),
            ("content-type", "application/json"),
        ],
        "{}",
    );
    // The access line comes last for a request: every line it caused is written by then.
    proxy.wait_for_log(&["runs/create", "\"outcome\""]);
    let logs = proxy.log_lines().join("\n");
    assert!(logs.contains("runs/create"), "the request was logged");
    for secret in [
        "super-secret-value",
        "session-token-value",
        "bearer-secret",
        "cookie-secret",
        "querysecret",
        "Signature=",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into logs");
    }
}

#[test]
fn healthcheck_subcommand_exits_by_health() {
    let upstream = start_upstream();
    let proxy = start_unsigned_proxy(&upstream, &[]);
    let run = |listen: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sagemaker-mlflow-proxy"))
            .env_clear()
            .env("MLFLOW_PROXY_LISTEN", listen)
            .arg("healthcheck")
            .output()
            .unwrap()
    };
    assert!(run(&proxy.addr.to_string()).status.success());
    let unspecified = format!("0.0.0.0:{}", proxy.addr.port());
    assert!(
        run(&unspecified).status.success(),
        "0.0.0.0 means the local listener"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = run(&closed.to_string());
    assert_eq!(down.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&down.stderr).contains("healthcheck:"));
}

#[test]
fn text_logs_have_no_colour_codes_when_not_on_a_terminal() {
    let upstream = start_upstream();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sagemaker-mlflow-proxy"));
    let mut child = command
        .args([
            "--signing",
            "none",
            "--upstream-url",
            &upstream.url(),
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "text",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains("listening"), "{line}");
    assert!(
        !line.contains('\u{1b}'),
        "ANSI escape codes in a piped log: {line:?}"
    );
}
