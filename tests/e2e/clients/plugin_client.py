"""Run by test_plugin_crosscheck.py in a subprocess: the official sagemaker-mlflow plugin against the stand-in.

Environment: MLFLOW_TRACKING_URI=<ARN>, SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT=<data plane>, AWS credentials.
Prints one JSON line with what it read back.
"""

import json
import sys
import uuid

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag


def main() -> None:
    c = MlflowClient()
    tag = uuid.uuid4().hex[:8]
    name = f"plugin cross-check {tag}"
    eid = c.create_experiment(name, tags={"origin": "sagemaker-mlflow plugin"})
    run = c.create_run(eid, run_name=f"plugin run {tag}")
    rid = run.info.run_id
    c.log_param(rid, "alpha", "0.5")
    c.log_metric(rid, "loss", 1.25, step=3)
    c.log_batch(rid, metrics=[Metric("acc", 0.9, 0, 1), Metric("acc", 0.95, 0, 2)],
                params=[Param("optimizer", "adam w")], tags=[RunTag("team", "a+b c")])
    c.set_terminated(rid)
    got = c.get_run(rid)
    by_name = c.get_experiment_by_name(name)
    search = c.search_runs([eid], filter_string="params.optimizer = 'adam w' and tags.team = 'a+b c'")
    history = [m.value for m in c.get_metric_history(rid, "acc")]
    print(json.dumps({
        "experiment_id": eid,
        "experiment_by_name": by_name.experiment_id if by_name else None,
        "params": got.data.params,
        "metrics": got.data.metrics,
        "tags": {k: v for k, v in got.data.tags.items() if not k.startswith("mlflow.")},
        "status": got.info.status,
        "search": [r.info.run_id for r in search],
        "run_id": rid,
        "acc_history": history,
    }))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report instead of a traceback soup
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(1)
