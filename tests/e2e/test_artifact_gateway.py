"""Artifacts, models and traces for a stock MLflow client without AWS credentials, on SageMaker's topology.

MLflow runs with an S3 store it does not serve (`--default-artifact-root s3://… --no-serve-artifacts`), so the
stock client can only log and read artifacts through the proxy's artifact gateway. After each step the test reads
the bucket with the stand-in's admin credentials (bytes, and every key under the store root) and MLflow directly
(its stored URIs are still `s3://`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import requests

from .conftest import wait_for

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


# ------------------------------------------------------------------------------------------------ helpers


def store(emulator) -> tuple[str, str]:
    """(bucket, key prefix of the store root, without a trailing slash)."""
    root = emulator.info["artifact_root"]
    bucket, _, prefix = root[len("s3://"):].partition("/")
    return bucket, prefix.rstrip("/")


def all_keys(emulator) -> dict[str, int]:
    """Every object in the artifact bucket and the other bucket: {"bucket/key": size}."""
    s3 = emulator.s3_admin()
    out = {}
    for bucket in (emulator.info["artifact_bucket"], emulator.info["other_bucket"]):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                out[f"{bucket}/{o['Key']}"] = o["Size"]
    return out


def s3_object(emulator, s3_uri: str) -> bytes:
    bucket, _, key = s3_uri[len("s3://"):].partition("/")
    return emulator.s3_admin().get_object(Bucket=bucket, Key=key)["Body"].read()


def keys_under(emulator, s3_uri: str) -> dict[str, int]:
    """Keys below an s3:// URI, relative to it."""
    bucket, _, prefix = s3_uri[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/") + "/"
    s3 = emulator.s3_admin()
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix):]] = o["Size"]
    return out


def assert_everything_under_root(emulator) -> None:
    bucket, prefix = store(emulator)
    stray = [k for k in all_keys(emulator) if not k.startswith(f"{bucket}/{prefix}/")
             and k != f"{emulator.info['other_bucket']}/secret.txt"]
    assert not stray, f"objects outside the store root {emulator.info['artifact_root']}: {stray}"


def raw_mlflow(emulator, path: str, **params) -> dict:
    r = requests.get(emulator.info["mlflow_url"] + path, params=params, timeout=30)
    assert r.status_code == 200, r.text[:300]
    return r.json()


def raw_run_artifact_uri(emulator, run_id: str) -> str:
    uri = raw_mlflow(emulator, "/api/2.0/mlflow/runs/get", run_id=run_id)["run"]["info"]["artifact_uri"]
    assert uri.startswith(emulator.info["artifact_root"] + "/"), uri
    return uri


@pytest.fixture
def tracking(target):
    """The fluent API pointed at the target, restored afterwards."""
    import mlflow

    mlflow.set_tracking_uri(target.url)
    mlflow.set_registry_uri(target.url)
    yield mlflow
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


# ------------------------------------------------------------------------------------------------ tests


def test_client_has_no_aws_credentials():
    import boto3

    assert boto3.session.Session().get_credentials() is None
    assert not [k for k in os.environ if k.startswith("AWS_") and "KEY" in k or k == "AWS_SESSION_TOKEN"]


def test_run_artifacts_round_trip(client, target, emulator, tracking, tmp_path, uniq):
    eid = client.create_experiment(f"gateway files {uniq}")
    exp = client.get_experiment(eid)
    assert exp.artifact_location == f"mlflow-artifacts:/{eid}", exp.artifact_location
    assert raw_mlflow(emulator, "/api/2.0/mlflow/experiments/get", experiment_id=eid)["experiment"][
        "artifact_location"] == f"{emulator.info['artifact_root']}/{eid}"
    run = client.create_run(eid)
    rid = run.info.run_id
    assert run.info.artifact_uri == f"mlflow-artifacts:/{eid}/{rid}/artifacts"
    assert client.get_run(rid).info.artifact_uri == run.info.artifact_uri
    found = client.search_runs([eid])
    assert [r.info.artifact_uri for r in found] == [run.info.artifact_uri]
    s3_uri = raw_run_artifact_uri(emulator, rid)

    # log_artifact: one file
    (tmp_path / "hello world.txt").write_text("hello through the gateway")
    client.log_artifact(rid, str(tmp_path / "hello world.txt"))
    # log_artifacts: nested folders, names with spaces and '+'
    src = tmp_path / "tree"
    (src / "sub dir" / "deeper+plus").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "sub dir" / "a b+c.json").write_text('{"x": 1}')
    (src / "sub dir" / "deeper+plus" / "leaf file.bin").write_bytes(bytes(range(256)) * 40)
    client.log_artifacts(rid, str(src), artifact_path="nested dir")
    # log_dict
    client.log_dict(rid, {"alpha": 0.5, "layers": [1, 2]}, "config/params.json")

    keys = keys_under(emulator, s3_uri)
    assert keys == {
        "hello world.txt": 25,
        "nested dir/top.txt": 3,
        "nested dir/sub dir/a b+c.json": 8,
        "nested dir/sub dir/deeper+plus/leaf file.bin": 10240,
        "config/params.json": len(json.dumps({"alpha": 0.5, "layers": [1, 2]}, indent=2)),
    }, keys
    assert s3_object(emulator, f"{s3_uri}/nested dir/sub dir/deeper+plus/leaf file.bin") == bytes(range(256)) * 40
    assert s3_object(emulator, f"{s3_uri}/hello world.txt") == b"hello through the gateway"
    assert_everything_under_root(emulator)
    assert raw_run_artifact_uri(emulator, rid) == s3_uri

    # list_artifacts (root and nested), download_artifacts, load_text, load_dict
    top = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(rid)}
    assert top == {("hello world.txt", False, 25), ("nested dir", True, None), ("config", True, None)}, top
    nested = {(f.path, f.is_dir) for f in client.list_artifacts(rid, "nested dir/sub dir")}
    assert nested == {("nested dir/sub dir/a b+c.json", False), ("nested dir/sub dir/deeper+plus", True)}, nested
    out = Path(client.download_artifacts(rid, "nested dir", str(tmp_path / "dl")))
    assert (out / "sub dir" / "deeper+plus" / "leaf file.bin").read_bytes() == bytes(range(256)) * 40
    assert (out / "top.txt").read_text() == "top"
    assert tracking.artifacts.load_text(f"runs:/{rid}/hello world.txt") == "hello through the gateway"
    assert tracking.artifacts.load_dict(f"runs:/{rid}/config/params.json") == {"alpha": 0.5, "layers": [1, 2]}


def test_large_artifact_24mib(client, target, emulator, tmp_path, uniq):
    size = 24 * 1024 * 1024
    data = hashlib.sha256(uniq.encode()).digest() * (size // 32)
    (tmp_path / "weights.bin").write_bytes(data)
    eid = client.create_experiment(f"gateway large {uniq}")
    rid = client.create_run(eid).info.run_id
    client.log_artifact(rid, str(tmp_path / "weights.bin"), "big")
    s3_uri = raw_run_artifact_uri(emulator, rid)
    assert keys_under(emulator, s3_uri) == {"big/weights.bin": size}
    assert hashlib.sha256(s3_object(emulator, f"{s3_uri}/big/weights.bin")).digest() == \
        hashlib.sha256(data).digest()
    out = Path(client.download_artifacts(rid, "big/weights.bin", str(tmp_path / "dl")))
    assert out.stat().st_size == size and hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    # a Range request is honoured
    path = f"{target.url}{ARTIFACTS}/{eid}/{rid}/artifacts/big/weights.bin"
    r = requests.get(path, headers={"Range": "bytes=100-199"}, timeout=60)
    assert r.status_code == 206 and r.content == data[100:200], (r.status_code, r.headers)
    assert_everything_under_root(emulator)


def _pyfunc_model(n):
    import mlflow.pyfunc

    class AddNModel(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return [x + n for x in model_input]

    return AddNModel()


def test_pyfunc_model_registry_and_load(client, target, emulator, tracking, tmp_path, uniq):
    name = f"gateway-model-{uniq}"
    tracking.set_experiment(f"gateway models {uniq}")
    with tracking.start_run() as run:
        info = tracking.pyfunc.log_model(name="model", python_model=_pyfunc_model(5), registered_model_name=name,
                                         pip_requirements=["mlflow"])
    rid = run.info.run_id
    assert info.artifact_path == "model" or info.model_uri
    client.set_registered_model_alias(name, "champion", "1")

    # through the proxy: no s3:// anywhere the client sees
    mv = client.get_model_version_by_alias(name, "champion")
    seen = json.dumps({"source": mv.source, "rm": [v.source for v in client.get_registered_model(name).latest_versions],
                       "download": client.get_model_version_download_uri(name, "1"),
                       "logged": client.get_logged_model(info.model_id).artifact_location})
    assert "s3://" not in seen, seen

    # MLflow's own records keep s3:// URIs
    raw_lm = raw_mlflow(emulator, f"/api/2.0/mlflow/logged-models/{info.model_id}")["model"]["info"]
    assert raw_lm["artifact_uri"].startswith(emulator.info["artifact_root"] + "/"), raw_lm
    raw_dl = raw_mlflow(emulator, "/api/2.0/mlflow/model-versions/get-download-uri", name=name, version="1")
    assert raw_dl["artifact_uri"].startswith(emulator.info["artifact_root"] + "/"), raw_dl
    raw_mv = raw_mlflow(emulator, "/api/2.0/mlflow/model-versions/get", name=name, version="1")["model_version"]
    assert "mlflow-artifacts:" not in json.dumps(raw_mv), raw_mv
    stored = keys_under(emulator, raw_lm["artifact_uri"])
    assert "MLmodel" in stored and "python_model.pkl" in stored, stored
    assert_everything_under_root(emulator)

    # load back: by alias, by run
    for i, uri in enumerate((f"models:/{name}@champion", f"runs:/{rid}/model", f"models:/{info.model_id}")):
        (tmp_path / f"load{i}").mkdir()
        model = tracking.pyfunc.load_model(uri, dst_path=str(tmp_path / f"load{i}"))
        assert list(model.predict([1, 2])) == [6, 7], uri


def test_registering_a_run_artifact_keeps_s3_source(client, target, emulator, tmp_path, uniq):
    eid = client.create_experiment(f"gateway register {uniq}")
    rid = client.create_run(eid).info.run_id
    (tmp_path / "MLmodel").write_text("artifact_path: m\nflavors: {}\n")
    client.log_artifact(rid, str(tmp_path / "MLmodel"), "m")
    run_uri = client.get_run(rid).info.artifact_uri
    name = f"gateway-reg-{uniq}"
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"{run_uri}/m", run_id=rid)
    assert mv.source == f"{run_uri}/m", mv.source
    raw = raw_mlflow(emulator, "/api/2.0/mlflow/model-versions/get", name=name, version=mv.version)
    assert raw["model_version"]["source"] == f"{raw_run_artifact_uri(emulator, rid)}/m", raw


def test_trace_with_spans(client, target, emulator, tracking, uniq):
    tracking.set_experiment(f"gateway traces {uniq}")

    @tracking.trace(name="outer")
    def outer(x):
        with tracking.start_span(name="inner") as span:
            span.set_attribute("x", x)
        return x * 2

    assert outer(21) == 42
    trace_id = tracking.get_last_active_trace_id()
    trace = client.get_trace(trace_id)
    assert sorted(s.name for s in trace.data.spans) == ["inner", "outer"]
    location = trace.info.tags.get("mlflow.artifactLocation", "")
    assert not location.startswith("s3://"), location
    raw = raw_mlflow(emulator, f"/api/3.0/mlflow/traces/{trace_id}")
    raw_location = raw["trace"]["trace_info"]["tags"].get("mlflow.artifactLocation", "")
    assert raw_location.startswith(emulator.info["artifact_root"] + "/"), raw
    assert_everything_under_root(emulator)


def test_missing_artifact_and_delete(client, target, emulator, tmp_path, uniq):
    eid = client.create_experiment(f"gateway delete {uniq}")
    rid = client.create_run(eid).info.run_id
    base = f"{target.url}{ARTIFACTS}/{eid}/{rid}/artifacts"
    r = requests.get(f"{base}/nope.txt", timeout=30)
    assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", r.text
    assert requests.put(f"{base}/d/one.txt", data=b"1", timeout=30).status_code == 200
    assert requests.put(f"{base}/d/two.txt", data=b"22", timeout=30).status_code == 200
    s3_uri = raw_run_artifact_uri(emulator, rid)
    assert keys_under(emulator, s3_uri) == {"d/one.txt": 1, "d/two.txt": 2}
    r = requests.delete(f"{base}/d", timeout=30)
    assert r.status_code == 200, r.text
    assert keys_under(emulator, s3_uri) == {}
    # audit lines name the S3 key and the size (bytes written; keys deleted)
    if target.proxy is not None:
        key = s3_uri.split("/", 3)[3]
        log = target.proxy.log_path.read_text(errors="replace")
        assert any("artifact uploaded" in line and f"{key}/d/two.txt" in line and "bytes=2" in line
                   for line in log.splitlines()), target.proxy.tail()
        assert any("artifact deleted" in line and f"{key}/d" in line for line in log.splitlines()), \
            target.proxy.tail()
    # MLflow's server answers the same way for multipart uploads it cannot do
    r = requests.post(f"{target.url}/api/2.0/mlflow-artifacts/mpu/create/{eid}/{rid}/artifacts",
                      json={"path": "x.bin", "num_parts": 2}, timeout=30)
    assert r.status_code == 501 and r.json()["error_code"] == "NOT_IMPLEMENTED", r.text


@pytest.mark.parametrize("path", [
    "../escape.txt",
    "0/%2e%2e/%2e%2e/escape.txt",
    "0/%2E%2E/escape.txt",
    "0/a%2Fb.txt",
    "0/a%5Cb.txt",
    "/etc/escape.txt",
    "%2Fetc%2Fescape.txt",
    "s3:%2F%2Fother-team-data-111122223333/secret.txt",
])
def test_traversal_lands_nothing(target, emulator, path):
    before = all_keys(emulator)
    for method, body in (("PUT", b"escaped"), ("GET", None), ("DELETE", None)):
        status, answer = raw_request(target.url, method, f"{ARTIFACTS}/{path}", body)
        assert status == 400, (method, status, answer)
        assert json.loads(answer)["error_code"] in ("BAD_REQUEST", "INVALID_PARAMETER_VALUE")
    assert all_keys(emulator) == before


def raw_request(base: str, method: str, target: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Sends the request target exactly as given (HTTP libraries would remove dot segments first)."""
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, target, body=body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.mark.parametrize("query", ["path=..", "path=0/../..", "path=%2F", "path=/etc", "path=0%2F%2F",
                                   "path=0%2F%2E%2E%2F%2E%2E", "path=0%5C..", "path=%zz"])
def test_listing_traversal_refused(target, emulator, query):
    status, answer = raw_request(target.url, "GET", f"{ARTIFACTS}?{query}")
    assert status == 400, (query, status, answer)


def test_read_only_proxy_lands_nothing(proxy_factory, target, emulator, client, uniq):
    eid = client.create_experiment(f"gateway read only {uniq}")
    rid = client.create_run(eid).info.run_id
    ro = proxy_factory(target.mode, args=["--read-only"], name=f"ro-{target.mode}-{uniq}")
    before = all_keys(emulator)
    base = f"{ro.url}{ARTIFACTS}/{eid}/{rid}/artifacts"
    r = requests.put(f"{base}/blocked.txt", data=b"no", timeout=30)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    assert requests.delete(f"{base}/blocked.txt", timeout=30).status_code == 403
    assert all_keys(emulator) == before
    # reads still work
    r = requests.get(f"{ro.url}{ARTIFACTS}", params={"path": f"{eid}/{rid}/artifacts"}, timeout=30)
    assert r.status_code == 200 and r.json().get("files", []) == [], r.text


# ------------------------------------------------------------------------------------------------ store state


def metric_lines(proxy_url: str, name: str) -> dict[str, float]:
    """The samples of one metric at /metrics: {"name{labels}": value}."""
    r = requests.get(f"{proxy_url}/metrics", timeout=10)
    assert r.status_code == 200
    out = {}
    for line in r.text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            sample, _, value = line.rpartition(" ")
            out[sample] = float(value)
    return out


def store_status(proxy_url: str) -> dict:
    r = requests.get(f"{proxy_url}/api/proxy/status", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["artifact_store"]


def test_store_state_in_status_and_metrics(target, emulator):
    status = wait_for("the store checked", lambda: (s := store_status(target.url))["state"] != "unchecked" and s)
    assert status["store"] == emulator.info["artifact_root"]
    assert status["state"] == "reachable", status
    assert status["checked_at"] and status["last_error"] is None
    assert metric_lines(target.url, "mlflow_proxy_artifact_store_up") == {"mlflow_proxy_artifact_store_up": 1}
    assert metric_lines(target.url, "mlflow_proxy_artifact_store_state") == {
        'mlflow_proxy_artifact_store_state{state="undiscovered"}': 0,
        'mlflow_proxy_artifact_store_state{state="unchecked"}': 0,
        'mlflow_proxy_artifact_store_state{state="reachable"}': 1,
        'mlflow_proxy_artifact_store_state{state="unreachable"}': 0,
    }


def test_unusable_store_shows_but_keeps_the_proxy_ready(proxy_factory, emulator, uniq):
    """A store the proxy may not list: down in the status and the metric, named permission, still ready."""
    other = f"s3://{emulator.info['other_bucket']}/mlflow"
    p = proxy_factory("tracking_server", args=["--artifact-store-uri", other], name=f"denied-store-{uniq}")
    status = wait_for("the store checked", lambda: (s := store_status(p.url))["state"] != "unchecked" and s)
    assert status["state"] == "unreachable", status
    assert "s3:ListBucket" in status["message"] and emulator.info["other_bucket"] in status["message"], status
    assert status["last_error"] == status["message"] and status["last_error_at"]
    assert metric_lines(p.url, "mlflow_proxy_artifact_store_up") == {"mlflow_proxy_artifact_store_up": 0}
    assert metric_lines(p.url, "mlflow_proxy_artifact_store_state")[
        'mlflow_proxy_artifact_store_state{state="unreachable"}'] == 1
    assert requests.get(f"{p.url}/readyz", timeout=10).status_code == 200
    # An artifact request refused for a missing permission is the store's last error too.
    r = requests.put(f"{p.url}{ARTIFACTS}/0/r/artifacts/x.txt", data=b"x", timeout=30)
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED", r.text
    assert "s3:PutObject" in store_status(p.url)["last_error"]


# ------------------------------------------------------------------------------------------------ SSE-KMS

PART = 5 * 1024 * 1024


def sse_of(emulator, key: str) -> tuple:
    """(ServerSideEncryption, SSEKMSKeyId, ETag) of a key in the SSE-KMS bucket, as moto recorded it."""
    head = emulator.s3_admin().head_object(Bucket=emulator.info["kms_bucket"], Key=key)
    return head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"), head["ETag"]


@pytest.fixture(scope="module")
def other_kms_key(emulator) -> str:
    return emulator.sts.admin_client("kms").create_key(Description="named by --artifact-kms-key-id")[
        "KeyMetadata"]["Arn"]


@pytest.mark.parametrize("explicit_key", [False, True], ids=["bucket-default", "artifact-kms-key-id"])
@pytest.mark.parametrize("size", [1000, 3 * PART + 123], ids=["single-put", "multipart"])
def test_sse_kms_bucket(proxy_factory, emulator, other_kms_key, size, explicit_key, uniq):
    """Uploads through the gateway to a bucket with SSE-KMS by default land encrypted with the bucket's key (or
    the one --artifact-kms-key-id names) and read back intact. moto records the encryption; it does not check
    KMS permissions (kms:GenerateDataKey / kms:Decrypt), which AWS does."""
    args = ["--artifact-store-uri", emulator.info["kms_artifact_root"], "--artifact-part-size", "5MiB"]
    if explicit_key:
        args += ["--artifact-kms-key-id", other_kms_key]
    p = proxy_factory("tracking_server", args=args, name=f"kms-{uniq}")
    body = (hashlib.sha256(uniq.encode()).digest() * (size // 32 + 1))[:size]
    path = f"0/{uniq}/artifacts/model dir/weights.bin"
    r = requests.put(f"{p.url}{ARTIFACTS}/{path}", data=body, timeout=120)
    assert r.status_code == 200, r.text
    algorithm, key_id, etag = sse_of(emulator, f"mlflow/{path}")
    assert algorithm == "aws:kms"
    assert key_id == (other_kms_key if explicit_key else emulator.info["kms_key_arn"])
    # S3's ETag of a multipart object ends in -<parts>: the large body did go up in parts.
    parts = int(etag.strip('"').rpartition("-")[2]) if "-" in etag else 1
    assert parts >= 3 if size > PART else parts == 1, etag
    r = requests.get(f"{p.url}{ARTIFACTS}/{path}", timeout=120)
    assert r.status_code == 200 and len(r.content) == len(body)
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(body).digest()
    r = requests.get(f"{p.url}{ARTIFACTS}/{path}", headers={"Range": "bytes=10-19"}, timeout=60)
    assert r.status_code == 206 and r.content == body[10:20]
