"""Cross-check: the official `sagemaker-mlflow` plugin (AWS's own client) is accepted by the stand-in.

If these pass, the emulator agrees with the real client on signing, routing headers and service names, for both
kinds of ARN; the proxy is then held to the same standard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def run_plugin(emulator, arn: str, extra_env: dict | None = None) -> dict:
    i = emulator.info
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_", "SAGEMAKER_"))}
    env.update({
        "MLFLOW_TRACKING_URI": arn,
        "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT": i["data_plane_url"],
        "AWS_ACCESS_KEY_ID": i["base_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": i["base_secret_access_key"],
        "AWS_DEFAULT_REGION": i["region"],
        "AWS_REGION": i["region"],
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    })
    env.update(extra_env or {})
    p = subprocess.run([sys.executable, str(HERE / "clients" / "plugin_client.py")], env=env, capture_output=True,
                       text=True, timeout=120)
    lines = [line for line in p.stdout.splitlines() if line.startswith("{")]
    assert lines, f"plugin client printed nothing (rc={p.returncode}):\n{p.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert "error" not in out, out["error"] + "\n" + p.stderr[-3000:]
    return out


def check_readback(out: dict) -> None:
    assert out["experiment_by_name"] == out["experiment_id"]
    assert out["params"] == {"alpha": "0.5", "optimizer": "adam w"}
    assert out["metrics"] == {"loss": 1.25, "acc": 0.95}
    assert out["acc_history"] == [0.9, 0.95]
    assert out["tags"] == {"team": "a+b c"}
    assert out["status"] == "FINISHED"
    assert out["search"] == [out["run_id"]]


@pytest.mark.parametrize("kind", ["tracking_server", "app"])
def test_official_plugin_is_accepted(emulator, kind):
    i = emulator.info
    arn = i["tracking_server_arn"] if kind == "tracking_server" else i["app_arn"]
    seq = emulator.last_seq
    out = run_plugin(emulator, arn)
    check_readback(out)
    entries = [e for e in emulator.log_since(seq) if e["listener"] == "data"]
    assert entries and all(e["outcome"] == "forwarded" for e in entries), entries
    want_service = "sagemaker-mlflow" if kind == "tracking_server" else "sagemaker"
    want_header = "x-mlflow-sm-tracking-server-arn" if kind == "tracking_server" else "x-sm-mlflow-app-arn"
    for e in entries:
        assert e["scope_service"] == want_service
        signed = e["signed_headers"].split(";")
        assert {"host", "x-amz-date", "x-amz-content-sha256", want_header} <= set(signed)
        assert "connection" not in signed
    # GETs with spaces in the query went through (the plugin rewrites + to %20 before signing)
    assert any("experiment_name=plugin%20cross-check" in e["target"] for e in entries)


def test_official_plugin_with_assume_role(emulator):
    """The plugin's own AssumeRole (SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN) through moto STS, then signed calls."""
    i = emulator.info
    seq = emulator.last_seq
    out = run_plugin(emulator, i["tracking_server_arn"], {
        "SAGEMAKER_MLFLOW_ASSUME_ROLE_ARN": i["role_arn"],
        "AWS_ENDPOINT_URL_STS": i["sts_url"],
    })
    check_readback(out)
    entries = [e for e in emulator.log_since(seq) if e["listener"] == "data"]
    assert entries and all(e["principal_kind"] == "assumed" for e in entries)
    assert {e["session_name"] for e in entries} == {"AuthBotoSagemakerMlFlow"}


@pytest.mark.expect_refusals
def test_official_plugin_with_wrong_secret_is_refused(emulator):
    i = emulator.info
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env.update({"MLFLOW_TRACKING_URI": i["app_arn"], "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT": i["data_plane_url"],
                "AWS_ACCESS_KEY_ID": i["base_access_key_id"], "AWS_SECRET_ACCESS_KEY": "not-the-secret",
                "AWS_DEFAULT_REGION": i["region"], "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    seq = emulator.last_seq
    p = subprocess.run([sys.executable, str(HERE / "clients" / "plugin_client.py")], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode != 0
    assert "signature we calculated does not match" in p.stdout + p.stderr
    refused = [e for e in emulator.log_since(seq) if e["outcome"] == "refused"]
    assert refused and refused[0]["error_type"] == "InvalidSignatureException"
