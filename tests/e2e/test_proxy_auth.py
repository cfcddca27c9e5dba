"""Who may do what, end to end: bearer tokens with the stock client (MLFLOW_TRACKING_TOKEN), a read-only
identity, and per-user AWS sessions that the stand-in's STS (moto) records by caller."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

CI_TOKEN = "ci-token-" + "x" * 24
READER_TOKEN = "reader-token-" + "y" * 24

POLICY = """
default = []
[[rule]]
groups = ["readers"]
allow = ["read"]
[[rule]]
groups = ["ci"]
allow = ["read", "write", "delete"]
"""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _auth_files(tmp_path: Path) -> tuple[Path, Path]:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ci-nightly {_hash(CI_TOKEN)} ci\nbob {_hash(READER_TOKEN)} readers\n")
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    return tokens, policy


@pytest.fixture
def guarded_proxy(proxy_factory, tmp_path):
    tokens, policy = _auth_files(tmp_path)
    return proxy_factory("tracking_server", args=["--auth", "token", "--token-file", str(tokens), "--policy", str(policy)])


def test_ci_token_logs_a_run_with_the_stock_client(guarded_proxy, monkeypatch, uniq):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", CI_TOKEN)
    client = MlflowClient(tracking_uri=guarded_proxy.url)
    eid = client.create_experiment(f"ci run {uniq}")
    run = client.create_run(eid, run_name="nightly")
    client.log_param(run.info.run_id, "commit", "abc123")
    client.log_metric(run.info.run_id, "accuracy", 0.93)
    client.set_terminated(run.info.run_id)
    back = client.get_run(run.info.run_id)
    assert back.data.params == {"commit": "abc123"}
    assert back.data.metrics == {"accuracy": 0.93}
    assert back.info.status == "FINISHED"

    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    with pytest.raises(MlflowException) as missing:
        MlflowClient(tracking_uri=guarded_proxy.url).get_experiment(eid)
    assert "UNAUTHENTICATED" in str(missing.value)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "not-a-known-token")
    with pytest.raises(MlflowException) as wrong:
        MlflowClient(tracking_uri=guarded_proxy.url).get_experiment(eid)
    assert "unknown bearer token" in str(wrong.value)


def test_read_only_identity_reads_but_cannot_change(guarded_proxy, monkeypatch, uniq):
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", CI_TOKEN)
    writer = MlflowClient(tracking_uri=guarded_proxy.url)
    eid = writer.create_experiment(f"shared {uniq}")
    run = writer.create_run(eid)
    writer.log_metric(run.info.run_id, "loss", 0.5)

    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", READER_TOKEN)
    reader = MlflowClient(tracking_uri=guarded_proxy.url)
    found = reader.search_runs([eid], filter_string="metrics.loss < 1")
    assert [r.info.run_id for r in found] == [run.info.run_id]
    assert reader.get_experiment(eid).name == f"shared {uniq}"
    with pytest.raises(MlflowException) as create:
        reader.create_experiment(f"not allowed {uniq}")
    assert "PERMISSION_DENIED" in str(create.value) and "missing permission: write" in str(create.value)
    with pytest.raises(MlflowException) as delete:
        reader.delete_run(run.info.run_id)
    assert "missing permission: delete" in str(delete.value)
    assert reader.get_run(run.info.run_id).info.lifecycle_stage == "active", "nothing was deleted"


def test_read_only_identity_browses_the_ui_but_cannot_write_through_it(guarded_proxy, uniq):
    reader = {"Authorization": f"Bearer {READER_TOKEN}"}
    page = requests.get(guarded_proxy.url + "/mlflow/", headers=reader, timeout=30)
    assert page.status_code == 200 and "<html" in page.text.lower()
    search = requests.post(guarded_proxy.url + "/mlflow/ajax-api/2.0/mlflow/experiments/search",
                           json={"max_results": 5}, headers=reader, timeout=30)
    assert search.status_code == 200 and "experiments" in search.json()
    create = requests.post(guarded_proxy.url + "/mlflow/ajax-api/2.0/mlflow/experiments/create",
                           json={"name": f"ui write {uniq}"}, headers=reader, timeout=30)
    assert create.status_code == 403
    assert create.json()["error_code"] == "PERMISSION_DENIED"


def test_per_user_sessions_are_recorded_by_sts(emulator, proxy_factory, tmp_path, monkeypatch, uniq):
    tokens, policy = _auth_files(tmp_path)
    p = proxy_factory(
        "tracking_server",
        env={"MLFLOW_PROXY_ASSUME_ROLE_ARN": emulator.info["role_arn"]},
        args=["--auth", "token", "--token-file", str(tokens), "--policy", str(policy), "--per-user-sessions"],
    )
    seq = emulator.last_seq
    for token in (CI_TOKEN, READER_TOKEN):
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
        assert MlflowClient(tracking_uri=p.url).search_experiments(max_results=1) is not None
    names = {s["session_name"] for s in emulator.sts_sessions()}
    assert {"ci-nightly", "bob"} <= names, names
    signed_as = {e["session_name"] for e in emulator.log_since(seq) if e["listener"] == "data"}
    assert {"ci-nightly", "bob"} <= signed_as, "each caller's requests were signed with their own session"
