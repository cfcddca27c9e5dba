"""Fixtures for the end-to-end suite: the SageMaker stand-in, proxy processes, MLflow clients.

Environment:
  PROXY_BIN       proxy binary (default: target/debug/sagemaker-mlflow-proxy under the repo root)
  E2E_TARGET      "proxy" (default) or "direct": run the MLflow client tests straight against the raw MLflow
                  server, to debug the tests themselves without a proxy.
  E2E_KEEP_LOGS   directory to copy proxy logs into (default: logs live in pytest's tmp dir)
  E2E_MLFLOW_SERVER  "uvicorn" (default; what `mlflow server` runs, has the OTLP /v1/traces route) or
                  "gunicorn" (Flask only: artifact uploads ~10x faster, no /v1/traces; the suite takes ~2 min instead
                  of ~3.5)
  E2E_LARGE_ARTIFACT_MB  size of the large-artifact test (default 200)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator, Optional

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]

# The MLflow client in these tests is a *stock* client: no AWS credentials in its environment.
for _var in list(os.environ):
    if _var.startswith("AWS_") or _var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI",
                                            "SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT"):
        del os.environ[_var]
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
# Nor a profile: ~/.aws (or a CI runner's) must not hand boto3 credentials behind the tests' back.
_EMPTY_AWS_FILE = Path(os.environ.get("TMPDIR", "/tmp")) / f"e2e-empty-aws-config-{os.getpid()}"
_EMPTY_AWS_FILE.write_text("")
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(_EMPTY_AWS_FILE)
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"
os.environ.setdefault("MLFLOW_TRACKING_INSECURE_TLS", "false")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


from tests.emulator.clientutil import drop_sagemaker_plugin_header_provider  # noqa: E402

drop_sagemaker_plugin_header_provider()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "expect_refusals: the test provokes emulator refusals on purpose")
    config.addinivalue_line("markers", "slow: large transfers")
    # moto's STS has no error shape for the AccessDenied our ExternalId check raises; the client still gets it.
    config.addinivalue_line("filterwarnings", "ignore:Exception\\(STSClientError\\):UserWarning")


# ------------------------------------------------------------------------------------------------ emulator


@pytest.fixture(scope="session")
def emulator():
    from tests import emulator as emu_mod

    t0 = time.monotonic()
    emu = emu_mod.start(mlflow_server=os.environ.get("E2E_MLFLOW_SERVER", "uvicorn"))
    print(f"\n[e2e] emulator ready in {time.monotonic() - t0:.1f}s: data plane {emu.info['data_plane_url']}")
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def fresh_emulator_config(emulator):
    """Reset knobs and faults around a test that changes them."""
    emulator.reset()
    yield emulator
    emulator.reset()


def wait_for(what: str, check, timeout: float = 10.0):
    """Polls `check` until it returns something truthy (returned), for at most `timeout` seconds.
    Tests wait on the condition they need, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def refusals_since(emulator, seq: int) -> list[dict]:
    return [e for e in emulator.log_since(seq) if e.get("outcome") == "refused"]


def format_refusals(entries: list[dict]) -> str:
    lines = []
    for e in entries:
        lines.append(f"  {e['method']} {e['target']} -> {e.get('status')} {e.get('error_type')}: {e.get('reason')}"
                     f"\n     signed_headers={e.get('signed_headers')} body={e.get('body_bytes')}B "
                     f"({e.get('body_transfer')}) scope={e.get('scope_service')}/{e.get('scope_region')}")
    return "\n".join(lines)


@pytest.fixture(autouse=True)
def _no_unexpected_refusals(request):
    """Any emulator refusal during a test is a proxy bug unless the test says it provokes refusals."""
    if "emulator" not in request.fixturenames or request.node.get_closest_marker("expect_refusals"):
        yield
        return
    emu = request.getfixturevalue("emulator")
    seq = emu.last_seq
    yield
    bad = refusals_since(emu, seq)
    if bad:
        pytest.fail("the SageMaker stand-in refused requests during this test:\n" + format_refusals(bad),
                    pytrace=False)


# ------------------------------------------------------------------------------------------------ proxy


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_bin_path() -> Path:
    p = Path(os.environ.get("PROXY_BIN", "target/debug/sagemaker-mlflow-proxy"))
    return p if p.is_absolute() else REPO / p


class ProxyProcess:
    """One proxy binary, configured through MLFLOW_PROXY_* env vars, on a free port."""

    def __init__(self, binary: Path, env: dict, args: list[str], log_path: Path):
        self.binary = binary
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.args = args
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None

    def start(self, wait: str = "readyz", timeout: float = 30.0) -> "ProxyProcess":
        env = dict(self.env)
        env["MLFLOW_PROXY_LISTEN"] = f"127.0.0.1:{self.port}"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(self.binary), *self.args], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait(wait, timeout)
        return self

    def wait(self, endpoint: str = "readyz", timeout: float = 30.0, want: int = 200) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                r = requests.get(f"{self.url}/{endpoint}", timeout=2)
                last = r.status_code
                if r.status_code == want:
                    return
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.1)
        raise RuntimeError(f"proxy /{endpoint} not {want} after {timeout}s (last: {last}):\n{self.tail()}")

    def tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> Optional[int]:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        rc = self.proc.returncode
        self._log.close()
        keep = os.environ.get("E2E_KEEP_LOGS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(self.log_path, Path(keep) / self.log_path.name)
        return rc


def base_proxy_env(emulator, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_"))}
    env.update(emulator.info["proxy_env"][mode])
    env.setdefault("RUST_BACKTRACE", "1")
    env["MLFLOW_PROXY_LOG_FORMAT"] = "text"
    return env


@pytest.fixture(scope="session")
def proxy_binary() -> Path:
    path = proxy_bin_path()
    if os.environ.get("E2E_TARGET", "proxy") == "direct":
        return path
    if not path.exists():
        pytest.skip(f"proxy binary {path} not built (set PROXY_BIN or build it first)")
    return path


@pytest.fixture(scope="session")
def proxy_factory(emulator, proxy_binary, tmp_path_factory):
    """Start extra proxies with custom env/args; all are stopped at session end."""
    started: list[ProxyProcess] = []
    logdir = tmp_path_factory.mktemp("proxy-logs")

    def make(mode: str = "tracking_server", env: Optional[dict] = None, args: Optional[list[str]] = None,
             wait: str = "readyz", timeout: float = 30.0, name: str = "") -> ProxyProcess:
        e = base_proxy_env(emulator, mode)
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        label = name or f"{mode}-{uuid.uuid4().hex[:6]}"
        p = ProxyProcess(proxy_binary, e, args or [], logdir / f"proxy-{label}.log")
        started.append(p)
        return p.start(wait=wait, timeout=timeout)

    yield make
    for p in started:
        p.stop()


class Target:
    """Where the MLflow client points, and what it is."""

    def __init__(self, mode: str, url: str, arn: str, proxy: Optional[ProxyProcess]):
        self.mode = mode
        self.url = url
        self.arn = arn
        self.proxy = proxy

    def __repr__(self) -> str:
        return f"Target({self.mode}, {self.url})"


@pytest.fixture(scope="session", params=["tracking_server", "app"])
def target(request, emulator) -> Iterator[Target]:
    mode = request.param
    arn = emulator.info["tracking_server_arn" if mode == "tracking_server" else "app_arn"]
    if os.environ.get("E2E_TARGET", "proxy") == "direct":
        yield Target(mode, emulator.info["mlflow_url"], arn, None)
        return
    factory = request.getfixturevalue("proxy_factory")
    p = factory(mode, name=f"main-{mode}", args=["--request-timeout", "120s"])
    yield Target(mode, p.url, arn, p)


@pytest.fixture
def client(target):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=target.url, registry_uri=target.url)


@pytest.fixture
def uniq() -> str:
    return uuid.uuid4().hex[:8]


def mlflow_json(resp: requests.Response) -> dict:
    try:
        return resp.json()
    except ValueError:
        raise AssertionError(f"expected JSON, got {resp.status_code} {resp.headers.get('content-type')}: "
                             f"{resp.text[:300]!r}") from None


def pretty(obj) -> str:
    return json.dumps(obj, indent=2, default=str)
