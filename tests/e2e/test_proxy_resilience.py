"""Credentials (AssumeRole, expiry, wrong or missing) and upstream failures, each with its own proxy process."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import threading
import time

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from .conftest import format_refusals, mlflow_json, refusals_since, wait_for


def _client(proxy) -> MlflowClient:
    return MlflowClient(tracking_uri=proxy.url, registry_uri=proxy.url)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_proxy_error(resp: requests.Response, status: int) -> dict:
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:300]}"
    body = mlflow_json(resp)
    assert isinstance(body.get("error_code"), str) and body["error_code"], body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


# ------------------------------------------------------------------------------------------------ credentials


@pytest.mark.parametrize("mode", ["tracking_server", "app"])
def test_assume_role(emulator, proxy_factory, uniq, mode):
    i = emulator.info
    session = f"e2e-assume-{uniq}"
    p = proxy_factory(mode, env={"MLFLOW_PROXY_ASSUME_ROLE_ARN": i["role_arn"],
                                 "MLFLOW_PROXY_ASSUME_ROLE_SESSION_NAME": session})
    seq = emulator.last_seq
    c = _client(p)
    eid = c.create_experiment(f"assumed {uniq}")
    assert c.get_experiment(eid).name == f"assumed {uniq}"

    entries = [e for e in emulator.log_since(seq) if e["listener"] == "data"]
    assert entries and {e["principal_kind"] for e in entries} == {"assumed"}
    assert {e["session_name"] for e in entries} == {session}
    sessions = [s for s in emulator.sts_sessions() if s["session_name"] == session]
    assert sessions and sessions[0]["role_arn"] == i["role_arn"]
    assert {e["access_key_id"] for e in entries} <= {s["access_key_id"] for s in sessions}


def test_assume_role_with_external_id(emulator, proxy_factory, uniq):
    i = emulator.info
    session = f"e2e-extid-{uniq}"
    p = proxy_factory("app", env={"MLFLOW_PROXY_ASSUME_ROLE_ARN": i["role_external_id_arn"],
                                  "MLFLOW_PROXY_ASSUME_ROLE_SESSION_NAME": session,
                                  "MLFLOW_PROXY_ASSUME_ROLE_EXTERNAL_ID": i["role_external_id"]})
    eid = _client(p).create_experiment(f"extid {uniq}")
    assert _client(p).get_experiment(eid).experiment_id == eid
    s = [x for x in emulator.sts_sessions() if x["session_name"] == session]
    assert s and s[0]["external_id"] == i["role_external_id"]



def _assert_not_ready_and_refuses(emulator, p):
    """Without usable credentials: /readyz is 503, MLflow calls get a fast MLflow-shaped 503, and nothing
    (signed or not) reaches the upstream."""
    seq = emulator.last_seq
    r = requests.get(f"{p.url}/readyz", timeout=30)
    assert r.status_code == 503
    t0 = time.monotonic()
    r = requests.get(f"{p.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=60)
    assert time.monotonic() - t0 < 20
    assert_proxy_error(r, 503)
    assert [e for e in emulator.log_since(seq) if e["listener"] == "data"] == [], "unsigned request reached upstream"

def test_assume_role_denied_means_not_ready(emulator, proxy_factory, uniq):
    """Without the required ExternalId STS refuses: the proxy reports not-ready and answers 503, fast."""
    i = emulator.info
    p = proxy_factory("app", env={"MLFLOW_PROXY_ASSUME_ROLE_ARN": i["role_external_id_arn"]}, wait="healthz")
    _assert_not_ready_and_refuses(emulator, p)


@pytest.mark.expect_refusals
def test_expiring_credentials_are_refreshed(emulator, proxy_factory, fresh_emulator_config, uniq, tmp_path,
                                           monkeypatch):
    """STS sessions 'expire' 3s after issue (emulator knob). Calls keep working: the proxy refreshes and
    retries on ExpiredTokenException (or refreshes ahead). Covers GET, POST and PUTs with bodies (replayed).
    Time passes for the stand-in's credentials by `emulator.age` rather than by waiting."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # no client retry may hide a failed call
    i = emulator.info
    session = f"e2e-expiry-{uniq}"
    # The artifact gateway is off: the PUTs below exercise replaying a forwarded body (held in memory, then one
    # spooled to disk) after ExpiredToken. MLflow itself does not serve artifacts (SageMaker's topology) and
    # answers them with its own 503; what counts is that the replay reached it with the same body.
    p = proxy_factory("tracking_server", env={"MLFLOW_PROXY_ASSUME_ROLE_ARN": i["role_arn"],
                                              "MLFLOW_PROXY_ASSUME_ROLE_SESSION_NAME": session,
                                              "MLFLOW_PROXY_ARTIFACT_GATEWAY": "false"})
    emulator.set_config(temp_credentials_ttl=3)
    seq = emulator.last_seq
    c = _client(p)
    eid = c.create_experiment(f"expiry {uniq}")
    rid = c.create_run(eid).info.run_id
    step = 0
    while step < 13:  # 10 s in steps of 0.8 s: the proxy's credentials expire three times on the way
        c.log_metric(rid, "tick", float(step), step=step)  # POST
        assert c.get_run(rid).data.metrics["tick"] == float(step)  # GET
        step += 1
        emulator.age(0.8)
    refused = [e for e in emulator.log_since(seq) if e.get("error_type") == "ExpiredTokenException"]
    assert len(refused) >= 3, "the credentials never expired: the loop did not exercise the refresh"
    art = tmp_path / "after expiry.txt"
    art.write_text("uploaded with refreshed credentials")
    emulator.age(3.5)  # whatever session the proxy holds is now expired: the PUT is refused once, then replayed
    put_seq = emulator.last_seq
    r = requests.put(f"{p.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts/after%20expiry.txt",
                     data=art.read_bytes(), timeout=30)
    assert r.status_code == 503 and "--no-serve-artifacts" in r.text, r.text
    puts = [e for e in emulator.log_since(put_seq) if e["method"] == "PUT"]
    assert [(e["outcome"], e.get("error_type")) for e in puts] == [("refused", "ExpiredTokenException"),
                                                                   ("forwarded", None)], puts
    assert puts[0]["body_sha256"] == puts[1]["body_sha256"] and puts[1]["body_bytes"] == art.stat().st_size
    # the same with a body larger than the proxy's in-memory limit (spooled to disk, 4 MiB by default)
    big = bytes(range(256)) * (6 * 4096)
    emulator.age(3.5)
    put_seq = emulator.last_seq
    r = requests.put(f"{p.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts/big.bin", data=big,
                     timeout=60)
    assert r.status_code == 503 and "--no-serve-artifacts" in r.text, r.text
    puts = [e for e in emulator.log_since(put_seq) if e["method"] == "PUT"]
    assert [(e["outcome"], e.get("error_type")) for e in puts] == [("refused", "ExpiredTokenException"),
                                                                   ("forwarded", None)], puts
    assert puts[1]["body_bytes"] == len(big)
    assert [m.value for m in c.get_metric_history(rid, "tick")] == [float(s) for s in range(step)]

    entries = [e for e in emulator.log_since(seq) if e["listener"] == "data"]
    keys = {e["access_key_id"] for e in entries if e["outcome"] == "forwarded"}
    assert len(keys) >= 3, f"expected several STS sessions over 10s with a 3s lifetime, saw {keys}"
    other = [e for e in refusals_since(emulator, seq) if e.get("error_type") != "ExpiredTokenException"]
    assert not other, "unexpected refusals:\n" + format_refusals(other)
    expired = [e for e in refusals_since(emulator, seq) if e.get("error_type") == "ExpiredTokenException"]
    print(f"\n[e2e] {step} rounds, {len(keys)} STS sessions, {len(expired)} ExpiredToken refusals absorbed")


@pytest.mark.expect_refusals
@pytest.mark.parametrize("what", ["wrong secret", "unknown key"])
def test_wrong_credentials_give_clear_error(emulator, proxy_factory, what):
    i = emulator.info
    env = {"AWS_SECRET_ACCESS_KEY": "definitely-not-the-secret"} if what == "wrong secret" else \
        {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000"}
    # The gateway off: its background look-up of the store would keep knocking with the bad key.
    p = proxy_factory("tracking_server", env={**env, "MLFLOW_PROXY_ARTIFACT_GATEWAY": "false"}, wait="healthz")
    seq = emulator.last_seq
    t0 = time.monotonic()
    r = requests.get(f"{p.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=60)
    assert time.monotonic() - t0 < 15, "took too long"
    assert r.status_code == 403, r.text
    body = assert_proxy_error(r, 403)
    refused = refusals_since(emulator, seq)
    assert refused, "the request never reached the stand-in"
    want = {"wrong secret": "InvalidSignatureException", "unknown key": "UnrecognizedClientException"}[what]
    assert refused[-1]["error_type"] == want
    # the client surfaces AWS's explanation rather than a generic failure
    with pytest.raises(MlflowException) as e:
        _client(p).search_experiments(max_results=1)
    msg = str(e.value)
    assert ("signature" in msg.lower() or "security token" in msg.lower()), msg
    assert body["message"]


def test_no_credentials(emulator, proxy_factory):
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None}
    p = proxy_factory("app", env=env, wait="healthz")
    _assert_not_ready_and_refuses(emulator, p)


# ------------------------------------------------------------------------------------------------ upstream


def test_upstream_down(emulator, proxy_factory):
    port = _closed_port()
    p = proxy_factory("tracking_server", env={"MLFLOW_PROXY_UPSTREAM_URL": f"http://127.0.0.1:{port}"},
                      args=["--connect-timeout", "2s"], wait="healthz")
    t0 = time.monotonic()
    r = requests.get(f"{p.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=60)
    assert time.monotonic() - t0 < 10
    assert_proxy_error(r, 502)
    r = requests.post(f"{p.url}/api/2.0/mlflow/experiments/create", json={"name": "never"}, timeout=60)
    assert_proxy_error(r, 502)


def test_upstream_slow_gives_504_then_recovers(emulator, proxy_factory, fresh_emulator_config, uniq):
    p = proxy_factory("tracking_server", args=["--request-timeout", "2s"])
    marker = f"slow-{uniq}"
    emulator.add_fault(delay_seconds=6, count=1, path_contains=marker)
    t0 = time.monotonic()
    r = requests.get(f"{p.url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": marker},
                     timeout=60)
    took = time.monotonic() - t0
    assert_proxy_error(r, 504)
    assert 1.5 <= took < 5.5, f"504 after {took:.1f}s with --request-timeout 2s"
    # the next request is fine (and the slow one was not retried into another 6s wait)
    r = requests.get(f"{p.url}/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": marker},
                     timeout=60)
    assert r.status_code == 404 and mlflow_json(r)["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_transient_upstream_errors_are_survived(emulator, target, fresh_emulator_config, uniq):
    """A 503 or a dropped connection from upstream: the MLflow client (which retries 5xx) still succeeds."""
    c = MlflowClient(target.url)
    name = f"transient {uniq}"
    eid = c.create_experiment(name)
    # the query's space may arrive as '+' or '%20': match on the unique part only
    emulator.add_fault(status=503, count=1, path_contains=uniq, method="GET")
    emulator.add_fault(drop=True, count=1, path_contains=uniq, method="GET")
    assert c.get_experiment_by_name(name).experiment_id == eid
    assert c.get_experiment_by_name(name).experiment_id == eid


def test_idle_upstream_connection_closed_by_server(emulator, target, fresh_emulator_config, uniq):
    """The service closes idle keep-alive connections (ALBs after 60s; here 1s). The proxy must not hand a
    client a failure because it reused a pooled connection the server had already closed."""
    emulator.set_config(idle_timeout=1.0)
    s = requests.Session()
    for i in range(4):
        seq = emulator.last_seq
        r = s.get(f"{target.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1}, timeout=30)
        assert r.status_code == 200, r.text
        served = [e for e in emulator.log_since(seq) if e["listener"] == "data" and "experiments/search" in e["target"]]
        assert served, "the request did not reach the upstream"
        # The next request must find its pooled connection already closed by the server: wait for that.
        wait_for("the upstream to close the idle connection",
                 lambda: served[-1]["client"] not in emulator.open_clients())
    emulator.set_config(idle_timeout=60.0)


def test_body_size_limit(emulator, proxy_factory, uniq):
    p = proxy_factory("tracking_server", args=["--max-body-size", "1MiB"])
    c = _client(p)
    eid = c.create_experiment(f"limits {uniq}")
    rid = c.create_run(eid).info.run_id
    base = f"{p.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts"
    r = requests.put(f"{base}/small.bin", data=b"x" * 1000, timeout=30)
    assert r.status_code == 200, r.text
    seq = emulator.last_seq
    r = requests.put(f"{base}/big.bin", data=b"x" * (2 * 1024 * 1024), timeout=30)
    assert_proxy_error(r, 413)
    r = requests.put(f"{base}/big-chunked.bin", data=iter([b"y" * (512 * 1024)] * 4), timeout=30)
    assert_proxy_error(r, 413)
    assert [e for e in emulator.log_since(seq) if e["method"] == "PUT"] == [], "oversized body reached upstream"
    assert [f.path for f in c.list_artifacts(rid)] == ["small.bin"]


def test_bad_path_rejected(emulator, target):
    if target.proxy is None:
        pytest.skip("direct mode")
    seq = emulator.last_seq
    conn = http.client.HTTPConnection("127.0.0.1", target.proxy.port, timeout=10)
    conn.request("GET", "/api/2.0/mlflow/../../__emulator/state")
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 400, (resp.status, body[:200])
    payload = json.loads(body)
    assert payload.get("error_code") and payload.get("message")
    assert not [e for e in emulator.log_since(seq) if "__emulator" in e["target"] or ".." in e["target"]]


def test_sigterm_drains_in_flight_requests(emulator, proxy_factory, fresh_emulator_config, uniq):
    p = proxy_factory("tracking_server", args=["--drain-timeout", "20s"])
    c = _client(p)
    name = f"drain {uniq}"
    eid = c.create_experiment(name)
    emulator.add_fault(delay_seconds=3, count=1, path_contains=uniq, method="GET")
    result: dict = {}

    def slow_call():
        try:
            r = requests.get(f"{p.url}/api/2.0/mlflow/experiments/get-by-name",
                             params={"experiment_name": name}, timeout=30)
            result["status"] = r.status_code
            result["id"] = r.json().get("experiment", {}).get("experiment_id")
        except Exception as e:  # pragma: no cover - reported below
            result["error"] = repr(e)

    t = threading.Thread(target=slow_call)
    t.start()
    # The request is in flight (waiting on the slow upstream) once the proxy counts it.
    wait_for("the request to be in flight", lambda: re.search(
        r"^mlflow_proxy_in_flight_requests 1$", requests.get(f"{p.url}/metrics", timeout=5).text, re.M))
    p.proc.send_signal(signal.SIGTERM)
    # The listener is closed before the drain is logged.
    wait_for("the drain to begin", lambda: "draining in-flight requests" in p.tail(200))
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{p.url}/healthz", timeout=5)  # no new connections while draining
    t.join(timeout=30)
    assert result == {"status": 200, "id": eid}
    assert p.proc.wait(timeout=25) == 0
