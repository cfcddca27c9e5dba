"""Local demo: the SageMaker MLflow stand-in with seeded data, and the proxy in front of it.

    python -m tests.emulator.demo --proxy-bin target/debug/sagemaker-mlflow-proxy [--port 8080]

Starts the stand-in (real MLflow behind SigV4 checks, moto STS), seeds a demo experiment with runs, metric
histories, tags, artifacts, a logged model, a trace and a registered model with an alias, then runs the proxy in
tracking-server mode (or app mode with --mode app) on 127.0.0.1:PORT. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from . import start

REPO = Path(__file__).resolve().parents[2]


def seed(mlflow_url: str, s3_env: dict | None = None) -> dict:
    """Create demo data straight in MLflow (the stand-in's backend). MLflow hands out s3:// artifact URIs, so the
    seeding client writes the stand-in's S3 itself with ``s3_env`` (credentials and endpoint), set only while
    seeding: the proxy and its clients never see them."""
    saved = {k: os.environ.get(k) for k in (s3_env or {})}
    os.environ.update(s3_env or {})
    try:
        return _seed(mlflow_url)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _seed(mlflow_url: str) -> dict:
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelStatus, Metric, Param, RunTag

    from .clientutil import drop_sagemaker_plugin_header_provider

    drop_sagemaker_plugin_header_provider()

    client = MlflowClient(tracking_uri=mlflow_url, registry_uri=mlflow_url)
    rnd = random.Random(42)
    eid = client.create_experiment("Demo: churn model", tags={"team": "customer analytics",
                                                              "mlflow.note.content": "Seeded by tests.emulator.demo"})
    runs = []
    configs = [
        ("baseline logistic regression", {"model": "logreg", "C": "1.0", "penalty": "l2"}, 0.78),
        ("xgboost depth 4", {"model": "xgboost", "max_depth": "4", "learning_rate": "0.1", "n_estimators": "200"}, 0.86),
        ("xgboost depth 8", {"model": "xgboost", "max_depth": "8", "learning_rate": "0.05", "n_estimators": "400"}, 0.88),
        ("random forest", {"model": "random_forest", "max_depth": "12", "n_estimators": "300"}, 0.84),
    ]
    tmp = Path(tempfile.mkdtemp(prefix="mlflow-demo-seed-"))
    for name, params, final_acc in configs:
        run = client.create_run(eid, run_name=name, tags={"stage": "experiment", "dataset": "churn-2024-q4"})
        rid = run.info.run_id
        now = int(time.time() * 1000)
        metrics = []
        for step in range(25):
            progress = 1 - math.exp(-step / 6)
            acc = 0.5 + (final_acc - 0.5) * progress + rnd.uniform(-0.01, 0.01)
            loss = 0.7 * (1 - progress) + 0.25 + rnd.uniform(-0.01, 0.01)
            metrics += [Metric("accuracy", acc, now + step * 1000, step), Metric("loss", loss, now + step * 1000, step),
                        Metric("val_accuracy", acc - 0.02 + rnd.uniform(-0.01, 0.01), now + step * 1000, step)]
        metrics.append(Metric("auc", final_acc + 0.05, now, 0))
        client.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in params.items()],
                         tags=[RunTag("mlflow.note.content", f"Demo run: {name}")])
        (tmp / "feature_importance.json").write_text(json.dumps(
            {"tenure_months": 0.31, "monthly_charges": 0.22, "contract_type": 0.18, "support_calls": 0.12}, indent=2))
        (tmp / "README.md").write_text(f"# {name}\n\nA demo run seeded by the SageMaker MLflow stand-in.\n")
        client.log_artifact(rid, str(tmp / "feature_importance.json"))
        client.log_artifact(rid, str(tmp / "README.md"), "docs")
        client.set_terminated(rid, "FINISHED")
        runs.append(rid)

    # the best run gets a model directory, a logged model, and a registry entry with an alias
    best = runs[2]
    model_dir = tmp / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "MLmodel").write_text("artifact_path: model\nflavors:\n  python_function:\n    loader_module: demo\n")
    (model_dir / "requirements.txt").write_text("xgboost==2.1.0\n")
    client.log_artifacts(best, str(model_dir), "model")
    lm = client.create_logged_model(eid, name="churn-xgboost", source_run_id=best,
                                    params={"max_depth": "8", "learning_rate": "0.05"}, tags={"framework": "xgboost"})
    client.log_metric(best, "test_accuracy", 0.87, model_id=lm.model_id)
    client.finalize_logged_model(lm.model_id, LoggedModelStatus.READY)
    model_name = "churn-classifier"
    client.create_registered_model(model_name, description="Predicts customer churn (demo)", tags={"owner": "demo"})
    source = f"{client.get_run(best).info.artifact_uri}/model"
    v = client.create_model_version(model_name, source, run_id=best, description="xgboost depth 8")
    client.set_registered_model_alias(model_name, "champion", v.version)

    # one trace, so the Traces tab has something
    prev = os.environ.get("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING")
    os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
    mlflow.set_tracking_uri(mlflow_url)
    try:
        mlflow.set_experiment(experiment_id=eid)

        @mlflow.trace(name="predict churn")
        def predict(customer_id: str, tenure_months: int) -> dict:
            with mlflow.start_span(name="feature lookup") as span:
                span.set_attribute("customer_id", customer_id)
            return {"churn_probability": 0.73 if tenure_months < 6 else 0.12}

        predict("C-1042", 3)
    finally:
        mlflow.set_tracking_uri(None)
        if prev is None:
            os.environ.pop("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", None)
        else:
            os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = prev
    client.create_experiment("Demo: fraud detection", tags={"team": "risk"})
    return {"experiment_id": eid, "runs": runs, "model": model_name, "version": v.version}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.emulator.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--proxy-bin", default=str(REPO / "target" / "debug" / "sagemaker-mlflow-proxy"))
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--mode", choices=["tracking_server", "app"], default="tracking_server")
    p.add_argument("--state-file", help="also write the stand-in's JSON description here")
    p.add_argument("--mlflow-server", choices=["uvicorn", "gunicorn"], default="uvicorn")
    args = p.parse_args(argv)

    proxy_bin = Path(args.proxy_bin)
    if not proxy_bin.exists():
        print(f"proxy binary not found: {proxy_bin} (build it, or pass --proxy-bin)", file=sys.stderr)
        return 2

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    print("starting the SageMaker MLflow stand-in ...", file=sys.stderr, flush=True)
    emu = start(state_file=args.state_file, mlflow_server=args.mlflow_server)
    proxy = None
    try:
        info = emu.info
        print("seeding demo data ...", file=sys.stderr, flush=True)
        seeded = seed(info["mlflow_url"], {
            "AWS_ACCESS_KEY_ID": info["admin_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": info["admin_secret_access_key"],
            "AWS_DEFAULT_REGION": info["region"],
            "MLFLOW_S3_ENDPOINT_URL": info["s3_url"],
        })
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
        env.update(info["proxy_env"][args.mode])
        env["MLFLOW_PROXY_LISTEN"] = f"127.0.0.1:{args.port}"
        proxy = subprocess.Popen([str(proxy_bin)], env=env, stdin=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{args.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stop.is_set():
            if proxy.poll() is not None:
                print(f"proxy exited with {proxy.returncode}", file=sys.stderr)
                return 1
            try:
                if requests.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        else:
            if not stop.is_set():
                print("proxy did not become ready within 30s", file=sys.stderr)
                return 1
        arn = info["tracking_server_arn" if args.mode == "tracking_server" else "app_arn"]
        print(f"""
  proxy        {url}/
  dashboard    {url}/
  MLflow UI    {url}/mlflow/
  REST         MLFLOW_TRACKING_URI={url}   (no AWS credentials needed)

  upstream     {arn}
  stand-in     data plane {info['data_plane_url']}  control plane {info['control_plane_url']}
               admin {info['admin_url']}/log   raw MLflow {info['mlflow_url']}
  demo data    experiment "Demo: churn model" (id {seeded['experiment_id']}, {len(seeded['runs'])} runs),
               registered model "{seeded['model']}" v{seeded['version']} alias "champion"

Ctrl-C to stop.""", flush=True)
        while not stop.wait(0.5):
            if proxy.poll() is not None:
                print(f"proxy exited with {proxy.returncode}", file=sys.stderr)
                return 1
    finally:
        if proxy is not None and proxy.poll() is None:
            proxy.send_signal(signal.SIGTERM)
            try:
                proxy.wait(timeout=35)
            except subprocess.TimeoutExpired:
                proxy.kill()
        emu.stop()
        print("stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
