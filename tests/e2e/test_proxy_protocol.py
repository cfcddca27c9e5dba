"""Wire-level corners of signing and forwarding: query encodings, repeated keys, unicode paths, chunked and
Expect: 100-continue uploads, concurrency. Raw HTTP clients, so the exact bytes are under the test's control."""

from __future__ import annotations

import http.client
import json
import threading
import time
from urllib.parse import quote, urlencode

import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric

from .conftest import mlflow_json


@pytest.mark.parametrize("style", ["plus", "percent20"])
def test_query_reserved_and_unicode_characters(client, target, uniq, style):
    name = f"Ünïcode ~*!'() 100% [x] {{y}} a+b=c&d {uniq} {style}"
    eid = client.create_experiment(name)
    q = urlencode({"experiment_name": name}) if style == "plus" else "experiment_name=" + quote(name, safe="")
    r = requests.get(f"{target.url}/api/2.0/mlflow/experiments/get-by-name?{q}", timeout=30)
    assert r.status_code == 200, r.text
    assert mlflow_json(r)["experiment"]["experiment_id"] == eid
    assert mlflow_json(r)["experiment"]["name"] == name


def test_repeated_query_keys_and_ajax_bulk_history(client, target, uniq):
    eid = client.create_experiment(f"bulk {uniq}")
    runs = []
    for k in range(3):
        rid = client.create_run(eid).info.run_id
        client.log_batch(rid, metrics=[Metric("val loss", 1.0 / (s + 1 + k), 0, s) for s in range(4)])
        runs.append(rid)
    q = [("run_ids", r) for r in reversed(runs)] + [("metric_key", "val loss"), ("max_results", "100")]
    r = requests.get(f"{target.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?{urlencode(q)}", timeout=30)
    assert r.status_code == 200, r.text
    got = {}
    for m in mlflow_json(r)["metrics"]:
        got.setdefault(m["run_id"], []).append((m["step"], m["value"]))
    assert got == {rid: [(s, 1.0 / (s + 1 + k)) for s in range(4)] for k, rid in enumerate(runs)}
    # an empty value and a key without '=' must canonicalize the way the service does
    r = requests.get(f"{target.url}/api/2.0/mlflow/experiments/get?experiment_id={eid}&unused=&flag", timeout=30)
    assert r.status_code == 200 and mlflow_json(r)["experiment"]["experiment_id"] == eid


def test_unicode_and_reserved_artifact_paths(client, target, uniq):
    eid = client.create_experiment(f"paths {uniq}")
    rid = client.create_run(eid).info.run_id
    base = f"{target.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts"
    names = ["ünïcødé ✓.txt", "semi;colon=eq,comma.txt", "at@sign (1) & more'.txt", "tilde~star*.txt"]
    for n in names:
        r = requests.put(f"{base}/odd%20names/{quote(n, safe='')}", data=n.encode(), timeout=30)
        assert r.status_code == 200, (n, r.status_code, r.text[:300])
    listed = sorted(f.path for f in client.list_artifacts(rid, "odd names"))
    assert listed == sorted(f"odd names/{n}" for n in names)
    for n in names[1:]:  # (MLflow itself fails to download the non-ASCII one)
        r = requests.get(f"{base}/odd%20names/{quote(n, safe='')}", timeout=30)
        assert r.status_code == 200 and r.content == n.encode(), n


def test_chunked_and_expect_continue_uploads(client, target, uniq):
    eid = client.create_experiment(f"uploads {uniq}")
    rid = client.create_run(eid).info.run_id
    path = f"/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts"
    payload = b"".join(bytes([i % 251]) * 1000 for i in range(300))  # 300 kB
    # chunked request body from the client
    r = requests.put(f"{target.url}{path}/chunked.bin", data=iter([payload[i:i + 65536]
                                                                   for i in range(0, len(payload), 65536)]),
                     timeout=30)
    assert r.status_code == 200, r.text
    # Expect: 100-continue (curl does this for bodies over 1 KiB)
    conn = http.client.HTTPConnection("127.0.0.1", int(target.url.rsplit(":", 1)[1]), timeout=30)
    conn.putrequest("PUT", f"{path}/expect.bin")
    conn.putheader("Content-Length", str(len(payload)))
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    conn.send(payload)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200, body[:300]
    for name in ("chunked.bin", "expect.bin"):
        r = requests.get(f"{target.url}{path}/{name}", timeout=30)
        assert r.status_code == 200 and r.content == payload, name


def test_head_and_empty_bodies(client, target, uniq):
    eid = client.create_experiment(f"empty {uniq}")
    rid = client.create_run(eid).info.run_id
    path = f"{target.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts/empty.txt"
    r = requests.put(path, data=b"", timeout=30)
    assert r.status_code == 200, r.text
    r = requests.get(path, timeout=30)
    assert r.status_code == 200 and r.content == b""
    # POST with a small JSON body, and POST with no body at all
    r = requests.post(f"{target.url}/api/2.0/mlflow/experiments/search", json={"max_results": 5}, timeout=30)
    assert r.status_code == 200 and "experiments" in mlflow_json(r)
    r = requests.post(f"{target.url}/api/2.0/mlflow/experiments/search", timeout=30)
    assert r.status_code in (200, 400), r.text  # MLflow's own answer; the point is it was not refused upstream


def test_concurrent_clients(target, uniq):
    c = MlflowClient(target.url)
    eid = c.create_experiment(f"concurrency {uniq}")
    errors: list = []
    run_ids: list = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            cl = MlflowClient(target.url)
            rid = cl.create_run(eid, run_name=f"worker {n}").info.run_id
            for s in range(8):
                cl.log_metric(rid, "m", float(n * 100 + s), step=s)
            cl.log_param(rid, "worker", str(n))
            with lock:
                run_ids.append(rid)
        except Exception as e:  # collected and reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    runs = c.search_runs([eid], max_results=100)
    assert len(runs) == 8
    for r in runs:
        n = int(r.data.params["worker"])
        assert [m.value for m in c.get_metric_history(r.info.run_id, "m")] == [float(n * 100 + s) for s in range(8)]
    print(f"\n[e2e] 8 clients x 10 calls in {time.monotonic() - t0:.1f}s")


def test_client_supplied_auth_headers_are_replaced(target, emulator):
    """Whatever AWS-ish or auth headers a client sends, the proxy signs with its own identity and ARN."""
    other_ts = emulator.info["tracking_server_arn"].replace("demo-server", "someone-elses")
    other_app = emulator.info["app_arn"].replace("DEMO", "OTHER")
    hostile = {
        "Authorization": "Bearer client-token",
        "X-Amz-Security-Token": "bogus-token",
        "X-Amz-Date": "19990101T000000Z",
        "X-Amz-Content-SHA256": "deadbeef",
        "x-mlflow-sm-tracking-server-arn": other_ts,
        "x-sm-mlflow-app-arn": other_app,
        "Cookie": "sm-mlflow-session=stolen",
        "Connection": "keep-alive, X-Drop-Me",
        "X-Drop-Me": "hop-by-hop via Connection",
        "Proxy-Authorization": "Basic eDp5",
    }
    seq = emulator.last_seq
    r = requests.get(f"{target.url}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                     headers=hostile, timeout=30)
    assert r.status_code == 200, r.text[:400]
    assert "experiments" in mlflow_json(r)
    r = requests.post(f"{target.url}/api/2.0/mlflow/experiments/search", json={"max_results": 1},
                      headers=hostile, timeout=30)
    assert r.status_code == 200, r.text[:400]
    entries = [e for e in emulator.log_since(seq) if e["listener"] == "data"]
    assert len(entries) == 2 and all(e["outcome"] == "forwarded" and e["arn"] == target.arn for e in entries), entries
