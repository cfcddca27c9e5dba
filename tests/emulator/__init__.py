"""A local stand-in for Amazon SageMaker managed MLflow (data plane, control plane, STS via moto).

Usage from Python (e.g. a pytest fixture)::

    from tests import emulator
    emu = emulator.start()            # everything on free ports on 127.0.0.1, ready when it returns
    emu.info["data_plane_url"], emu.info["tracking_server_arn"], ...
    emu.set_config(temp_credentials_ttl=5)
    emu.stop()

From a shell: ``python -m tests.emulator --state-file /tmp/emu.json`` (see README.md).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

import requests

from .processes import MlflowServer, MotoSts
from .server import Emulator, EmulatorConfig

__all__ = ["start", "stop", "RunningEmulator", "EmulatorConfig"]

DEFAULT_REGION = "us-west-2"
DEFAULT_ACCOUNT = "111122223333"
DEFAULT_TRACKING_SERVER = "demo-server"
DEFAULT_APP_ID = "app-DEMO12345678"


class RunningEmulator:
    """Handle on a started emulator: URLs, ARNs, credentials, knobs, and stop()."""

    def __init__(self, emu: Emulator, mlflow: MlflowServer, sts: MotoSts, workdir: Path, own_workdir: bool):
        self.emu = emu
        self.mlflow = mlflow
        self.sts = sts
        self.workdir = workdir
        self._own_workdir = own_workdir
        self._stopped = False
        emu.describe_cb = self.describe  # type: ignore[assignment]
        self.info = self.describe()

    # ---- description -------------------------------------------------------------
    def describe(self) -> dict:
        e, s = self.emu, self.sts
        config_file = self.workdir / "aws-config-empty"
        creds_file = self.workdir / "aws-credentials-empty"
        for f in (config_file, creds_file):
            if not f.exists():
                f.write_text("")
        common = {
            "AWS_ACCESS_KEY_ID": s.base_access_key_id,
            "AWS_SECRET_ACCESS_KEY": s.base_secret_access_key,
            "AWS_REGION": e.region,
            "AWS_DEFAULT_REGION": e.region,
            "AWS_ENDPOINT_URL_STS": s.url,
            "AWS_ENDPOINT_URL_S3": s.url,
            "AWS_ENDPOINT_URL_SAGEMAKER": e.control_url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(creds_file),
            "MLFLOW_PROXY_UPSTREAM_URL": e.data_url,
            "MLFLOW_PROXY_SIGNING": "sigv4",
        }
        return {
            "region": e.region,
            "account_id": e.account_id,
            "data_plane_url": e.data_url,
            "control_plane_url": e.control_url,
            "sts_url": s.url,
            "s3_url": s.url,
            "artifact_bucket": s.bucket,
            "artifact_root": s.artifact_root,
            "other_bucket": s.other_bucket,
            "kms_bucket": s.kms_bucket,
            "kms_artifact_root": s.kms_artifact_root,
            "kms_key_arn": s.kms_key_arn,
            "admin_access_key_id": s.admin_access_key_id,
            "admin_secret_access_key": s.admin_secret_access_key,
            "mlflow_access_key_id": s.mlflow_access_key_id,
            "mlflow_url": self.mlflow.url,
            "mlflow_version": e.mlflow_version,
            "mlflow_server": self.mlflow.server,
            "tracking_server_arn": e.ts_arn,
            "tracking_server_name": e.tracking_server_name,
            "app_arn": e.app_arn,
            "base_access_key_id": s.base_access_key_id,
            "base_secret_access_key": s.base_secret_access_key,
            "user_arn": s.user_arn,
            "role_arn": s.role_arn,
            "role_external_id_arn": s.role_extid_arn,
            "role_external_id": s.EXTERNAL_ID,
            "workdir": str(self.workdir),
            "admin_url": e.data_url + "/__emulator",
            "proxy_env": {
                "tracking_server": {**common, "MLFLOW_PROXY_ARN": e.ts_arn},
                "app": {**common, "MLFLOW_PROXY_ARN": e.app_arn},
                "assume_role_extra": {"MLFLOW_PROXY_ASSUME_ROLE_ARN": s.role_arn},
            },
            "plugin_env": {
                "MLFLOW_TRACKING_URI": e.ts_arn,
                "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT": e.data_url,
                "AWS_ACCESS_KEY_ID": s.base_access_key_id,
                "AWS_SECRET_ACCESS_KEY": s.base_secret_access_key,
                "AWS_REGION": e.region,
                "AWS_DEFAULT_REGION": e.region,
            },
        }

    def s3_admin(self):
        """boto3 S3 client with the stand-in's admin credentials (for tests to check the bucket)."""
        return self.sts.admin_client("s3")

    # ---- knobs ---------------------------------------------------------------------
    def set_config(self, **kwargs: Any) -> dict:
        for k, v in kwargs.items():
            if not hasattr(self.emu.config, k):
                raise AttributeError(f"unknown emulator config {k!r}")
            setattr(self.emu.config, k, v)
        return dict(self.emu.config.__dict__)

    def age(self, seconds: float) -> None:
        """Everything issued so far becomes `seconds` older (see ``Emulator.age``): expiry without waiting."""
        self.emu.age(seconds)

    def open_clients(self) -> set[str]:
        """The peers ("ip:port", as in a log entry's "client") of the connections held open now."""
        return self.emu.open_clients()

    def reset(self) -> None:
        requests.post(self.emu.data_url + "/__emulator/reset", timeout=10).raise_for_status()

    def add_fault(self, **kwargs: Any) -> None:
        requests.post(self.emu.data_url + "/__emulator/faults", json=kwargs, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(self.emu.data_url + "/__emulator/faults", timeout=10).raise_for_status()

    def log_since(self, seq: int = 0) -> list[dict]:
        return self.emu.log.since(seq)

    @property
    def last_seq(self) -> int:
        return self.emu.log.seq

    def sts_sessions(self) -> list[dict]:
        return requests.get(self.emu.data_url + "/__emulator/sts-sessions", timeout=10).json()["sessions"]

    # ---- lifecycle -----------------------------------------------------------------
    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self.emu.close()
        finally:
            try:
                self.mlflow.stop()
            finally:
                try:
                    self.sts.stop()
                finally:
                    if self._own_workdir:
                        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "RunningEmulator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_current: Optional[RunningEmulator] = None


def start(
    *,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT,
    tracking_server_name: str = DEFAULT_TRACKING_SERVER,
    app_id: str = DEFAULT_APP_ID,
    workdir: Optional[str] = None,
    data_port: int = 0,
    control_port: int = 0,
    mlflow_workers: int = 1,
    mlflow_server: str = "uvicorn",
    config: Optional[EmulatorConfig] = None,
    state_file: Optional[str] = None,
    ready_timeout: float = 180.0,
) -> RunningEmulator:
    """Start MLflow, moto STS and both planes; return when all answer."""
    global _current
    own = workdir is None
    wd = Path(workdir or tempfile.mkdtemp(prefix="sm-mlflow-emulator-"))
    wd.mkdir(parents=True, exist_ok=True)
    (wd / "tmp").mkdir(exist_ok=True)
    sts = MotoSts(account_id, region)
    mlflow: Optional[MlflowServer] = None
    emu: Optional[Emulator] = None
    try:
        sts.start()  # in-process and quick; MLflow needs its S3 credentials from it
        mlflow = MlflowServer(wd, workers=mlflow_workers, server=mlflow_server, s3=sts.s3_settings())
        mlflow.start()  # boots in the background while we set up the rest
        from importlib.metadata import version

        emu = Emulator(region=region, account_id=account_id, tracking_server_name=tracking_server_name,
                       app_id=app_id, tmpdir=str(wd / "tmp"), mlflow_url=mlflow.url,
                       mlflow_version=version("mlflow"), sts=sts, config=config or EmulatorConfig())
        emu.data_url = emu.listen("data", data_port)
        emu.control_url = emu.listen("control", control_port)
        mlflow.wait_ready(ready_timeout)
        for url in (emu.data_url, emu.control_url):
            requests.get(url + "/__emulator/health", timeout=10).raise_for_status()
    except BaseException:
        if emu is not None:
            emu.close()
        if mlflow is not None:
            mlflow.stop()
        sts.stop()
        if own:
            shutil.rmtree(wd, ignore_errors=True)
        raise
    running = RunningEmulator(emu, mlflow, sts, wd, own)
    if state_file:
        tmp = state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(running.info, f, indent=2)
        os.replace(tmp, state_file)
    _current = running
    return running


def stop(running: Optional[RunningEmulator] = None) -> None:
    """Stop the given emulator (default: the last one started)."""
    global _current
    target = running or _current
    if target is not None:
        target.stop()
    if target is _current:
        _current = None
