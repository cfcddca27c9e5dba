"""The MLflow UI through the proxy under /mlflow/, in both UI auth modes (SigV4 and presigned session)."""

from __future__ import annotations

import pytest
import requests

from .conftest import format_refusals, mlflow_json, refusals_since


def _ui_roundtrip(proxy_url: str, eid: str) -> None:
    r = requests.get(f"{proxy_url}/mlflow/", timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert "text/html" in r.headers.get("content-type", "") and "<html" in r.text.lower()
    assert "set-cookie" not in {k.lower() for k in r.headers}, "a SageMaker cookie leaked to the browser"
    r = requests.get(f"{proxy_url}/mlflow/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": eid},
                     timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert mlflow_json(r)["experiment"]["experiment_id"] == eid


@pytest.mark.parametrize("mode,ui_auth", [("tracking_server", "presigned-session"), ("tracking_server", "sigv4"),
                                          ("app", "sigv4"), ("app", "presigned-session")])
def test_ui_through_proxy(emulator, proxy_factory, uniq, mode, ui_auth):
    p = proxy_factory(mode, args=["--ui-auth", ui_auth])
    from mlflow import MlflowClient

    eid = MlflowClient(p.url).create_experiment(f"ui {ui_auth} {uniq}")
    seq = emulator.last_seq
    _ui_roundtrip(p.url, eid)
    ui = [e for e in emulator.log_since(seq) if e["listener"] == "data" and e["outcome"] == "forwarded"]
    want = "ui-session" if ui_auth == "presigned-session" else "sigv4"
    assert ui and {e["auth"] for e in ui} == {want}, [(e["target"], e.get("auth")) for e in ui]


@pytest.mark.expect_refusals
@pytest.mark.parametrize("expired_response", ["401", "redirect"])
def test_ui_session_renewed_after_expiry(emulator, proxy_factory, fresh_emulator_config, uniq, expired_response):
    """SageMaker's answer to an expired UI session is unknown (PROTOCOL.md): 401, or a redirect to a login page.
    Either way the proxy must get a new presigned URL and the browser must not notice."""
    p = proxy_factory("tracking_server", args=["--ui-auth", "presigned-session"])
    from mlflow import MlflowClient

    eid = MlflowClient(p.url).create_experiment(f"ui renew {uniq}")
    emulator.set_config(session_ttl=2, unauthenticated_ui_response=expired_response)
    seq = emulator.last_seq
    _ui_roundtrip(p.url, eid)
    emulator.age(2.5)  # the stand-in's sessions are now past their 2 s, without waiting
    _ui_roundtrip(p.url, eid)  # the upstream session has expired: the proxy must get a new one
    created = [e for e in emulator.log_since(seq) if e.get("outcome") == "session-created"]
    assert len(created) >= 1
    other = [e for e in refusals_since(emulator, seq) if not str(e.get("reason", "")).startswith("UI session")]
    assert not other, format_refusals(other)
