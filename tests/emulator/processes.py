"""Child processes and in-process servers the emulator runs: a real MLflow server and moto (STS/IAM)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import requests


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def mlflow_executable() -> list[str]:
    """`mlflow` from the same environment as this interpreter."""
    candidate = Path(sys.executable).with_name("mlflow")
    if candidate.exists():
        return [str(candidate)]
    return [sys.executable, "-m", "mlflow"]


class MlflowServer:
    """`mlflow server` with a sqlite backend and an S3 artifact store it does not serve (SageMaker's topology:
    `--default-artifact-root s3://... --no-serve-artifacts`), in its own process group. ``s3`` gives the store's
    URI, the S3 endpoint and the server's own credentials for the bucket."""

    def __init__(self, workdir: Path, port: Optional[int] = None, workers: int = 1, server: str = "uvicorn",
                 s3: Optional[dict] = None):
        if server not in ("uvicorn", "gunicorn"):
            raise ValueError(f"mlflow server must be uvicorn or gunicorn, not {server!r}")
        self.workdir = workdir
        self.port = port or free_port()
        self.workers = workers
        # uvicorn: what `mlflow server` runs by default (FastAPI wrapping Flask; uploads ~4 MB/s on this box).
        # gunicorn: Flask directly (uploads ~40 MB/s) but without MLflow's FastAPI-only routes (e.g. /v1/traces).
        self.server = server
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = workdir / "mlflow-server.log"
        self.s3 = s3

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        db = self.workdir / "mlflow.db"
        if self.s3:
            store = ["--default-artifact-root", self.s3["artifact_root"], "--no-serve-artifacts"]
        else:  # the old topology (MLflow serves artifacts from a local folder), kept for debugging only
            artifacts = self.workdir / "artifacts"
            artifacts.mkdir(parents=True, exist_ok=True)
            store = ["--serve-artifacts", "--artifacts-destination", str(artifacts)]
        cmd = [
            *mlflow_executable(),
            "server",
            "--backend-store-uri", f"sqlite:///{db}",
            *store,
            "--host", "127.0.0.1",
            "--port", str(self.port),
        ]
        if self.server == "gunicorn":
            cmd += ["--gunicorn-opts", f"--workers {self.workers} --threads 8 --timeout 900 --graceful-timeout 5"]
        else:
            cmd += ["--workers", str(self.workers)]
        env = dict(os.environ)
        env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        # Never let the server reach for anything off-box, nor use credentials other than its own.
        for var in list(env):
            if var.startswith("AWS_") or var in ("MLFLOW_TRACKING_URI", "MLFLOW_S3_ENDPOINT_URL"):
                env.pop(var)
        empty = self.workdir / "aws-empty"
        empty.write_text("")
        env.update({"AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty),
                    "AWS_EC2_METADATA_DISABLED": "true"})
        if self.s3:
            # The server reads the store itself (UI artifact views, get-artifact) with its own IAM user.
            env.update({
                "AWS_ACCESS_KEY_ID": self.s3["access_key_id"],
                "AWS_SECRET_ACCESS_KEY": self.s3["secret_access_key"],
                "AWS_DEFAULT_REGION": self.s3["region"],
                "MLFLOW_S3_ENDPOINT_URL": self.s3["endpoint_url"],
            })
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=str(self.workdir), start_new_session=True,
        )
        log.close()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}; log:\n{self.tail_log()}")
            try:
                r = requests.get(self.url + "/health", timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:  # not up yet
                last = repr(e)
            time.sleep(0.25)
        raise RuntimeError(f"mlflow server not ready after {timeout}s ({last}); log:\n{self.tail_log()}")

    def tail_log(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is None:
            return
        try:
            pgid = os.getpgid(self.proc.pid)
        except ProcessLookupError:
            pgid = None
        if pgid is not None:
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        if pgid is not None:
            # Workers may outlive the parent: make sure the whole group is gone.
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    os.killpg(pgid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None


def s3_policy(bucket: str, prefix: str) -> dict:
    """What a principal needs to read and write MLflow artifacts under s3://bucket/prefix/ and nothing more
    (the statements an ECS task role or SageMaker's own execution role gets)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow",
             "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
             "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*"},
        ],
    }


class MotoSts:
    """moto's server in this process (threads): STS, IAM and S3, with IAM authentication turned on after setup
    (every later request must carry a valid SigV4 signature from a known key whose IAM policy allows the action
    on the resource: for S3 the bucket, or bucket/key)."""

    USER_NAME = "mlflow-proxy-user"
    ROLE_NAME = "mlflow-proxy-role"
    ROLE_EXTID_NAME = "mlflow-proxy-role-extid"
    EXTERNAL_ID = "emulator-external-id"
    # The MLflow server's own identity for the artifact bucket, and an admin the tests read the bucket with.
    MLFLOW_USER_NAME = "mlflow-server"
    ADMIN_USER_NAME = "emulator-admin"
    ARTIFACT_PREFIX = "mlflow"

    def __init__(self, account_id: str, region: str, port: Optional[int] = None):
        self.account_id = account_id
        self.region = region
        self.port = port or free_port()
        self.server = None
        self.base_access_key_id = ""
        self.base_secret_access_key = ""
        self.user_arn = ""
        self.role_arn = ""
        self.role_extid_arn = ""
        self.bucket = f"sagemaker-mlflow-emulator-{account_id}"
        # A bucket nobody but the admin may touch: out-of-store requests must fail on it.
        self.other_bucket = f"other-team-data-{account_id}"
        # A store whose bucket encrypts with SSE-KMS by default (its key made in moto's KMS at setup).
        self.kms_bucket = f"sagemaker-mlflow-emulator-kms-{account_id}"
        self.kms_key_arn = ""
        self.mlflow_access_key_id = ""
        self.mlflow_secret_access_key = ""
        self.admin_access_key_id = ""
        self.admin_secret_access_key = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def artifact_root(self) -> str:
        return f"s3://{self.bucket}/{self.ARTIFACT_PREFIX}"

    @property
    def kms_artifact_root(self) -> str:
        return f"s3://{self.kms_bucket}/{self.ARTIFACT_PREFIX}"

    def s3_settings(self) -> dict:
        """What the MLflow server needs to use the artifact store with its own credentials."""
        return {"artifact_root": self.artifact_root, "endpoint_url": self.url, "region": self.region,
                "access_key_id": self.mlflow_access_key_id, "secret_access_key": self.mlflow_secret_access_key}

    def admin_client(self, service: str = "s3"):
        """A boto3 client with the admin's credentials (allowed everything), signed and checked like any other."""
        import boto3
        from botocore.config import Config

        return boto3.client(service, endpoint_url=self.url, region_name=self.region,
                            aws_access_key_id=self.admin_access_key_id,
                            aws_secret_access_key=self.admin_secret_access_key,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def start(self) -> None:
        # Every request moto sees belongs to our account (the ARNs' account), whatever key signed it.
        os.environ["MOTO_ACCOUNT_ID"] = self.account_id
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        self._setup_iam()
        self._setup_s3()
        self._enforce_external_ids()
        # From now on every request must carry a valid signature from a known key with permission.
        r = requests.post(self.url + "/moto-api/reset-auth", data=b"0", timeout=10)
        r.raise_for_status()

    def _client(self, service: str):
        import boto3

        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="AKIAIOSFODNN7SETUP00",
            aws_secret_access_key="setup-secret",
            config=Config(s3={"addressing_style": "path"}),
        )

    def _setup_iam(self) -> None:
        iam = self._client("iam")
        user = iam.create_user(UserName=self.USER_NAME)["User"]
        self.user_arn = user["Arn"]
        key = iam.create_access_key(UserName=self.USER_NAME)["AccessKey"]
        self.base_access_key_id = key["AccessKeyId"]
        self.base_secret_access_key = key["SecretAccessKey"]
        iam.put_user_policy(
            UserName=self.USER_NAME,
            PolicyName="assume-proxy-roles",
            PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"},
                    {"Effect": "Allow", "Action": ["sagemaker:*", "sagemaker-mlflow:*"], "Resource": "*"},
                ],
            }),
        )
        # The proxy's identities may use the artifact store (the gateway), and nothing else in S3.
        iam.put_user_policy(UserName=self.USER_NAME, PolicyName="mlflow-artifacts",
                            PolicyDocument=json.dumps(s3_policy(self.bucket, self.ARTIFACT_PREFIX)))
        # ... and the SSE-KMS store (a gateway pointed at it with --artifact-store-uri), with the key's use
        # through S3 as AWS requires it (moto's S3 does not call KMS, so it checks no kms:* permission).
        kms_store = s3_policy(self.kms_bucket, self.ARTIFACT_PREFIX)
        kms_store["Statement"].append({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                                       "Resource": "*",
                                       "Condition": {"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}}})
        iam.put_user_policy(UserName=self.USER_NAME, PolicyName="mlflow-artifacts-kms",
                            PolicyDocument=json.dumps(kms_store))
        trust = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": self.user_arn}, "Action": "sts:AssumeRole"}],
        }
        trust_extid = {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": self.user_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": self.EXTERNAL_ID}},
            }],
        }
        role_policy = json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["sagemaker:*", "sagemaker-mlflow:*"], "Resource": "*"}],
        })
        for name, doc in ((self.ROLE_NAME, trust), (self.ROLE_EXTID_NAME, trust_extid)):
            role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc), MaxSessionDuration=43200)
            iam.put_role_policy(RoleName=name, PolicyName="mlflow", PolicyDocument=role_policy)
            iam.put_role_policy(RoleName=name, PolicyName="mlflow-artifacts",
                                PolicyDocument=json.dumps(s3_policy(self.bucket, self.ARTIFACT_PREFIX)))
            if name == self.ROLE_NAME:
                self.role_arn = role["Role"]["Arn"]
            else:
                self.role_extid_arn = role["Role"]["Arn"]

    def _setup_s3(self) -> None:
        iam = self._client("iam")
        iam.create_user(UserName=self.MLFLOW_USER_NAME)
        key = iam.create_access_key(UserName=self.MLFLOW_USER_NAME)["AccessKey"]
        self.mlflow_access_key_id, self.mlflow_secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        iam.put_user_policy(UserName=self.MLFLOW_USER_NAME, PolicyName="mlflow-artifacts",
                            PolicyDocument=json.dumps(s3_policy(self.bucket, self.ARTIFACT_PREFIX)))
        iam.create_user(UserName=self.ADMIN_USER_NAME)
        key = iam.create_access_key(UserName=self.ADMIN_USER_NAME)["AccessKey"]
        self.admin_access_key_id, self.admin_secret_access_key = key["AccessKeyId"], key["SecretAccessKey"]
        iam.put_user_policy(UserName=self.ADMIN_USER_NAME, PolicyName="admin", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        s3 = self._client("s3")
        for bucket in (self.bucket, self.other_bucket, self.kms_bucket):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        self.kms_key_arn = self._client("kms").create_key(Description="SSE-KMS artifact bucket")["KeyMetadata"]["Arn"]
        s3.put_bucket_encryption(Bucket=self.kms_bucket, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": self.kms_key_arn},
            "BucketKeyEnabled": True}]})
        s3.put_object(Bucket=self.other_bucket, Key="secret.txt", Body=b"not for MLflow")

    def _enforce_external_ids(self) -> None:
        """moto checks a trust policy's sts:ExternalId condition only when an ExternalId is sent: a missing one
        passes. AWS refuses it, so wrap moto's AssumeRole (in this process) to refuse it too."""
        from moto.sts.exceptions import STSClientError
        from moto.sts.models import STSBackend

        required = {self.role_extid_arn: self.EXTERNAL_ID}
        original = getattr(STSBackend.assume_role, "__wrapped_original__", STSBackend.assume_role)

        def assume_role(backend, *args, **kwargs):
            role_arn = kwargs.get("role_arn")
            want = required.get(role_arn)
            if want is not None and kwargs.get("external_id") != want:
                raise STSClientError("AccessDenied", f"User: {self.user_arn} is not authorized to perform: "
                                                     f"sts:AssumeRole on resource: {role_arn}")
            return original(backend, *args, **kwargs)

        assume_role.__wrapped_original__ = original  # type: ignore[attr-defined]
        STSBackend.assume_role = assume_role  # type: ignore[method-assign]

    # ---- lookups used by the data plane (in-process, no HTTP) ----

    def assumed_roles(self) -> list:
        from moto.sts.models import sts_backends

        roles = []
        for account in {self.account_id}:
            for partition in ("aws",):
                try:
                    roles.extend(sts_backends[account][partition].assumed_roles)
                except KeyError:
                    pass
        return roles

    def stop(self) -> None:
        if self.server is not None:
            try:
                self.server.stop()
            finally:
                self.server = None
