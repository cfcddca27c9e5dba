"""The stock MLflow client through the proxy, against the SageMaker stand-in, for both kinds of ARN.

The client has no AWS credentials and no plugin: MLFLOW_TRACKING_URI is the proxy's URL. Every value is read back
through the proxy. The autouse guard in conftest.py fails any test during which the stand-in refused a request.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.entities import LoggedModelStatus, Metric, Param, RunTag, ViewType
from mlflow.exceptions import MlflowException

from .conftest import mlflow_json


def _exp(client, uniq, label="exp"):
    return client.create_experiment(f"{label} {uniq}")


# ------------------------------------------------------------------------------------------------ experiments


def test_experiment_lifecycle(client, target, uniq):
    name = f"Churn model: exp {uniq} with spaces & a+plus"
    eid = client.create_experiment(name, tags={"team": "ml platform"})
    got = client.get_experiment_by_name(name)  # GET, spaces and '+' in the query string
    assert got is not None and got.experiment_id == eid
    assert got.tags["team"] == "ml platform"
    assert got.artifact_location.startswith("mlflow-artifacts:/")

    found = client.search_experiments(filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in found] == [eid]
    found = client.search_experiments(filter_string=f"name LIKE '%{uniq} with spaces%' AND tags.team = 'ml platform'")
    assert [e.experiment_id for e in found] == [eid]

    client.set_experiment_tag(eid, "quote", "it's \"quoted\"")
    assert client.get_experiment(eid).tags["quote"] == "it's \"quoted\""

    client.rename_experiment(eid, name + " (renamed)")
    assert client.get_experiment(eid).name == name + " (renamed)"
    assert client.get_experiment_by_name(name) is None
    assert client.get_experiment_by_name(name + " (renamed)").experiment_id == eid

    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=f"name LIKE '%{uniq}%'")
    assert [e.experiment_id for e in deleted] == [eid]
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"


def test_missing_experiment_is_mlflow_error(client, uniq):
    with pytest.raises(MlflowException) as e:
        client.get_experiment("987654321")
    assert e.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name(f"no such experiment {uniq}") is None


# ------------------------------------------------------------------------------------------------ runs


def test_runs_params_metrics_tags_search(client, uniq):
    eid = _exp(client, uniq, "runs")
    run = client.create_run(eid, run_name="first run", tags={"stage": "dev"})
    rid = run.info.run_id
    client.log_param(rid, "learning rate", "0.01")
    client.log_param(rid, "formula", "a+b = c")
    for step in range(5):
        client.log_metric(rid, "val loss", 1.0 / (step + 1), step=step)
    now = int(time.time() * 1000)
    client.log_batch(rid, metrics=[Metric("acc", 0.5 + i / 10, now + i, i) for i in range(3)],
                     params=[Param("optimizer", "adam w")],
                     tags=[RunTag("note", "it's \"quoted\""), RunTag("owner", "alice smith")])
    client.set_tag(rid, "plus", "1+1=2")
    client.delete_tag(rid, "stage")
    client.set_terminated(rid, "FINISHED")

    other = client.create_run(eid, run_name="second run")
    client.log_param(other.info.run_id, "formula", "a b = c")  # same as rid's with '+' decoded as space
    client.log_metric(other.info.run_id, "val loss", 0.9)

    got = client.get_run(rid)
    assert got.info.run_name == "first run" and got.info.status == "FINISHED"
    assert got.data.params == {"learning rate": "0.01", "formula": "a+b = c", "optimizer": "adam w"}
    assert got.data.metrics == {"val loss": 0.2, "acc": pytest.approx(0.7)}
    tags = {k: v for k, v in got.data.tags.items() if not k.startswith("mlflow.")}
    assert tags == {"note": "it's \"quoted\"", "owner": "alice smith", "plus": "1+1=2"}

    hist = client.get_metric_history(rid, "val loss")  # GET, metric key with a space
    assert [(m.step, m.value) for m in hist] == [(s, 1.0 / (s + 1)) for s in range(5)]
    assert [m.value for m in client.get_metric_history(rid, "acc")] == pytest.approx([0.5, 0.6, 0.7])

    def ids(filter_string, **kw):
        return sorted(r.info.run_id for r in client.search_runs([eid], filter_string=filter_string, **kw))

    assert ids("params.formula = 'a+b = c'") == [rid]
    assert ids("params.formula = 'a b = c'") == [other.info.run_id]
    assert ids("params.`learning rate` = '0.01' and tags.owner = 'alice smith'") == [rid]
    assert ids("tags.plus = '1+1=2'") == [rid]
    assert ids("tags.note LIKE '%\"quoted\"%'") == [rid]
    assert ids("metrics.`val loss` < 0.5") == [rid]
    assert ids("attributes.run_name = 'second run'") == [other.info.run_id]
    assert ids("") == sorted([rid, other.info.run_id])
    ordered = client.search_runs([eid], order_by=["metrics.`val loss` DESC"])
    assert [r.info.run_id for r in ordered] == [other.info.run_id, rid]

    client.delete_run(other.info.run_id)
    assert ids("", run_view_type=ViewType.ACTIVE_ONLY) == [rid]
    assert ids("", run_view_type=ViewType.DELETED_ONLY) == [other.info.run_id]
    client.restore_run(other.info.run_id)
    assert ids("", run_view_type=ViewType.ACTIVE_ONLY) == sorted([rid, other.info.run_id])


def test_fluent_api_and_pagination(target, uniq):
    mlflow.set_tracking_uri(target.url)
    try:
        exp = mlflow.set_experiment(f"fluent {uniq}")
        run_ids = []
        for i in range(7):
            with mlflow.start_run(run_name=f"r{i}") as r:
                mlflow.log_params({"i": i, "kind": "grid search"})
                mlflow.log_metrics({"score": i * 1.5}, step=1)
                run_ids.append(r.info.run_id)
        df = mlflow.search_runs([exp.experiment_id], filter_string="params.kind = 'grid search'",
                                order_by=["metrics.score ASC"])
        assert list(df["run_id"]) == run_ids
        client = mlflow.MlflowClient(target.url)
        page1 = client.search_runs([exp.experiment_id], max_results=3, order_by=["metrics.score ASC"])
        page2 = client.search_runs([exp.experiment_id], max_results=3, order_by=["metrics.score ASC"],
                                   page_token=page1.token)
        assert [r.info.run_id for r in page1] + [r.info.run_id for r in page2] == run_ids[:6]
    finally:
        mlflow.set_tracking_uri(None)


# ------------------------------------------------------------------------------------------------ artifacts


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_artifacts_log_list_download(client, target, tmp_path, uniq):
    eid = _exp(client, uniq, "artifacts")
    rid = client.create_run(eid).info.run_id
    src = tmp_path / "src"
    (src / "dir with space").mkdir(parents=True)
    (src / "hello world.txt").write_text("hello, world\n")
    (src / "dir with space" / "data+plus.json").write_text(json.dumps({"a": 1, "b": [1, 2, 3]}))
    # (MLflow 3.10 answers 500 for a non-ASCII file name, and its client cuts a path at "#": neither here)
    (src / "dir with space" / "notes (draft), v1.txt").write_text("draft notes\n")
    (src / "dir with space" / "100%.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    client.log_artifact(rid, str(src / "hello world.txt"))
    client.log_artifacts(rid, str(src / "dir with space"), artifact_path="nested dir")

    top = sorted(f.path for f in client.list_artifacts(rid))
    assert top == ["hello world.txt", "nested dir"]
    nested = {f.path: f.file_size for f in client.list_artifacts(rid, "nested dir")}
    assert nested == {
        "nested dir/100%.bin": 3 * 1024 * 1024 + 17,
        "nested dir/data+plus.json": (src / "dir with space" / "data+plus.json").stat().st_size,
        "nested dir/notes (draft), v1.txt": (src / "dir with space" / "notes (draft), v1.txt").stat().st_size,
    }

    dst = Path(client.download_artifacts(rid, "", str(tmp_path / "dst")))
    assert _tree(dst) == {
        "hello world.txt": _tree(src)["hello world.txt"],
        **{f"nested dir/{k.split('/', 1)[1]}": v for k, v in _tree(src).items() if k.startswith("dir with space/")},
    }
    one = mlflow.artifacts.download_artifacts(run_id=rid, artifact_path="nested dir/data+plus.json",
                                              dst_path=str(tmp_path / "one"), tracking_uri=target.url)
    assert json.loads(Path(one).read_text()) == {"a": 1, "b": [1, 2, 3]}

    # the UI's download route, through the proxy
    r = requests.get(f"{target.url}/get-artifact", params={"path": "nested dir/notes (draft), v1.txt", "run_uuid": rid},
                     timeout=30)
    assert r.status_code == 200 and r.content.decode() == "draft notes\n"

    # deleting an artifact through the proxied artifact API
    r = requests.delete(f"{target.url}/api/2.0/mlflow-artifacts/artifacts/{eid}/{rid}/artifacts/hello%20world.txt",
                        timeout=30)
    assert r.status_code == 200, r.text
    assert sorted(f.path for f in client.list_artifacts(rid)) == ["nested dir"]


def test_text_and_dict_artifacts(client, uniq):
    eid = _exp(client, uniq, "text artifacts")
    rid = client.create_run(eid).info.run_id
    client.log_text(rid, "line 1\nline 2\n", "notes/readme file.md")
    client.log_dict(rid, {"k": "v w", "n": [1, 2]}, "config/params set.json")
    assert Path(client.download_artifacts(rid, "notes/readme file.md")).read_text() == "line 1\nline 2\n"
    with_client = client.download_artifacts(rid, "config/params set.json")
    assert json.loads(Path(with_client).read_text()) == {"k": "v w", "n": [1, 2]}


# ------------------------------------------------------------------------------------------------ registry


def test_model_registry(client, target, tmp_path, uniq):
    eid = _exp(client, uniq, "registry")
    rid = client.create_run(eid).info.run_id
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("artifact_path: model\nflavors: {}\n")
    client.log_artifacts(rid, str(model_dir), "model")
    source = f"{client.get_run(rid).info.artifact_uri}/model"

    name = f"Churn model {uniq} v+1"
    rm = client.create_registered_model(name, tags={"domain": "crm"}, description="predicts churn")
    assert rm.name == name
    v1 = client.create_model_version(name, source, run_id=rid, tags={"quality": "ok"}, description="first")
    v2 = client.create_model_version(name, source, run_id=rid)
    assert (v1.version, v2.version) == ("1", "2")

    got = client.get_registered_model(name)  # GET, name with spaces and '+'
    assert got.name == name and got.description == "predicts churn" and got.tags == {"domain": "crm"}
    client.set_registered_model_alias(name, "champion", "1")
    client.set_registered_model_alias(name, "challenger", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_registered_model(name).aliases == {"champion": "1", "challenger": "2"}

    client.update_model_version(name, "2", description="second, better")
    client.set_model_version_tag(name, "2", "validated by", "bob o'brien")
    mv2 = client.get_model_version(name, "2")
    assert mv2.description == "second, better" and mv2.tags == {"validated by": "bob o'brien"}
    assert mv2.run_id == rid and mv2.source == source

    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    models = client.search_registered_models(filter_string=f"name LIKE 'Churn model {uniq}%'")
    assert [m.name for m in models] == [name]

    # UI route that serves a model version's artifact
    r = requests.get(f"{target.url}/model-versions/get-artifact",
                     params={"path": "MLmodel", "name": name, "version": "1"}, timeout=30)
    assert r.status_code == 200 and r.text.startswith("artifact_path: model")

    client.delete_registered_model_alias(name, "challenger")
    assert client.get_registered_model(name).aliases == {"champion": "1"}
    client.rename_registered_model(name, name + " renamed")
    assert client.get_model_version_by_alias(name + " renamed", "champion").version == "1"
    client.delete_model_version(name + " renamed", "2")
    assert [v.version for v in client.search_model_versions(f"name = '{name} renamed'")] == ["1"]
    client.delete_registered_model(name + " renamed")
    assert client.search_registered_models(filter_string=f"name LIKE 'Churn model {uniq}%'") == []


# ------------------------------------------------------------------------------------------------ MLflow 3


def test_logged_models(client, target, tmp_path, uniq):
    eid = _exp(client, uniq, "logged models")
    rid = client.create_run(eid).info.run_id
    lm = client.create_logged_model(eid, name="churn classifier", source_run_id=rid,
                                    tags={"framework": "sk learn"}, params={"C": "0.5", "penalty": "l2"})
    mid = lm.model_id
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01weights" * 1000)
    client.log_model_artifact(mid, str(tmp_path / "weights.bin"))
    client.log_metric(rid, "auc", 0.91, model_id=mid)
    client.set_logged_model_tags(mid, {"stage": "candidate"})
    client.finalize_logged_model(mid, LoggedModelStatus.READY)

    got = client.get_logged_model(mid)
    assert got.name == "churn classifier" and got.status == LoggedModelStatus.READY
    assert got.params == {"C": "0.5", "penalty": "l2"}
    assert got.tags["framework"] == "sk learn" and got.tags["stage"] == "candidate"
    assert [(m.key, m.value) for m in got.metrics] == [("auc", 0.91)]
    found = client.search_logged_models(experiment_ids=[eid], filter_string="name = 'churn classifier'")
    assert [m.model_id for m in found] == [mid]
    assert [f.path for f in client.list_logged_model_artifacts(mid)] == ["weights.bin"]
    r = requests.get(f"{target.url}/ajax-api/2.0/mlflow/logged-models/{mid}/artifacts/files",
                     params={"artifact_file_path": "weights.bin"}, timeout=30)
    assert r.status_code == 200 and r.content == b"\x00\x01weights" * 1000
    client.delete_logged_model(mid)
    assert client.search_logged_models(experiment_ids=[eid]) == []


def test_traces(client, target, emulator, uniq):
    eid = _exp(client, uniq, "traces")
    seq = emulator.last_seq
    mlflow.set_tracking_uri(target.url)
    try:
        mlflow.set_experiment(experiment_id=eid)

        @mlflow.trace(name="predict churn")
        def predict(customer: str, months: int) -> dict:
            with mlflow.start_span(name="feature lookup") as span:
                span.set_attribute("customer", customer)
            return {"churn": months < 6}

        assert predict("ACME corp", 3) == {"churn": True}
        trace_id = mlflow.get_last_active_trace_id()
        client.set_trace_tag(trace_id, "reviewed by", "carol")

        t = client.get_trace(trace_id)
        assert t.info.state.value == "OK" if hasattr(t.info.state, "value") else True
        spans = {s.name: s for s in t.data.spans}
        assert set(spans) == {"predict churn", "feature lookup"}
        assert spans["predict churn"].inputs == {"customer": "ACME corp", "months": 3}
        assert spans["predict churn"].outputs == {"churn": True}
        assert spans["feature lookup"].attributes["customer"] == "ACME corp"
        assert t.info.tags["reviewed by"] == "carol"
        if emulator.info["mlflow_server"] == "uvicorn":
            # spans went through the OTLP route (MLflow's FastAPI app; gunicorn mode has no such route)
            otlp = [e for e in emulator.log_since(seq) if e["target"] == "/v1/traces"]
            assert otlp and {e["status"] for e in otlp} == {200}, otlp

        found = client.search_traces(locations=[eid])
        assert [x.info.trace_id for x in found] == [trace_id]
        found = client.search_traces(locations=[eid], filter_string="tags.`reviewed by` = 'carol'")
        assert [x.info.trace_id for x in found] == [trace_id]
        client.delete_traces(eid, trace_ids=[trace_id])
        assert list(client.search_traces(locations=[eid])) == []
    finally:
        mlflow.set_tracking_uri(None)


# ------------------------------------------------------------------------------------------------ other routes


def test_version_graphql_ajax_and_ui(client, target, uniq):
    r = requests.get(f"{target.url}/version", timeout=30)
    assert r.status_code == 200 and r.text == mlflow.__version__

    eid = _exp(client, uniq, "graphql")
    rid = client.create_run(eid, run_name="graph ql run").info.run_id
    q = {"query": "query q($id: String!) { mlflowGetRun(input: {runId: $id}) { run { info { runName status } } } }",
         "variables": {"id": rid}}
    r = requests.post(f"{target.url}/graphql", json=q, timeout=30)
    assert r.status_code == 200, r.text
    assert mlflow_json(r)["data"]["mlflowGetRun"]["run"]["info"]["runName"] == "graph ql run"

    r = requests.get(f"{target.url}/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": eid}, timeout=30)
    assert mlflow_json(r)["experiment"]["name"] == f"graphql {uniq}"
    r = requests.post(f"{target.url}/ajax-api/2.0/mlflow/runs/search",
                      json={"experiment_ids": [eid], "filter": "attributes.run_name = 'graph ql run'"}, timeout=30)
    assert [x["info"]["run_id"] for x in mlflow_json(r)["runs"]] == [rid]


def test_proxy_errors_are_mlflow_json(target):
    if target.proxy is None:
        pytest.skip("direct mode")
    r = requests.get(f"{target.url}/healthz", timeout=10)
    assert r.status_code == 200
    r = requests.get(f"{target.url}/readyz", timeout=10)
    assert r.status_code == 200
    # an MLflow error passes through untouched
    r = requests.get(f"{target.url}/api/2.0/mlflow/experiments/get", params={"experiment_id": "999999"}, timeout=10)
    assert r.status_code == 404 and mlflow_json(r)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
