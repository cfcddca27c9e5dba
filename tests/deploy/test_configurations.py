"""Every shipped configuration starts: the real binary, with exactly the environment and arguments each
deployment file gives the container, only credentials and endpoints pointed at the SageMaker stand-in, must come
up, answer /readyz with 200, stay up, and stop cleanly on SIGTERM. A setting the binary refuses fails the test
with the file and line it came from.

Run:  PROXY_BIN=target/debug/sagemaker-mlflow-proxy .venv/bin/pytest -q tests/deploy
      DEPLOY_ROOT=/some/checkout ...   checks the deployment files of another checkout (default: this one)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from . import cfn
from .configs import (ACCOUNT, ECS_REQUIRED, OIDC, REGION, Launch, _declared, all_launches, compose_binary,
                      ecs_parameter_sets, sample_token_line)

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("DEPLOY_ROOT", REPO)).resolve()
READY_WITHIN = 30.0  # seconds from exec to /readyz 200
SERVER_ARN_FOR_ALARM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/no-credentials"

_WORKDIR = Path(tempfile.mkdtemp(prefix="deploy-configs-"))
LAUNCHES = all_launches(ROOT, _WORKDIR)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def emulator():
    from tests import emulator as emu_mod

    emu = emu_mod.start(mlflow_server="gunicorn")
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="session")
def proxy_binary() -> Path:
    p = Path(os.environ.get("PROXY_BIN", "target/debug/sagemaker-mlflow-proxy"))
    p = p if p.is_absolute() else REPO / p
    if not p.exists():
        pytest.fail(f"proxy binary {p} not built (set PROXY_BIN)")
    return p


# Variables that say where the proxy's credentials and its upstreams are: replaced by the stand-in's.
REDIRECTED = re.compile(r"^(AWS_.*|MLFLOW_PROXY_(ARN|UPSTREAM_URL|ASSUME_ROLE_ARN|LISTEN|ADMIN_LISTEN|ARTIFACT_STORE_URI)|"
                        r"OTEL_EXPORTER_OTLP(_TRACES|_METRICS)?_ENDPOINT|SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT)$")


def redirected_env(launch: Launch, emu, tmp: Path) -> tuple[dict[str, str], str]:
    """The launch's environment with credentials and endpoints pointed at the stand-in; also the URL it serves."""
    info = emu.info
    given = {k: s.value for k, s in launch.env.items()}
    env = {k: v for k, v in given.items() if not REDIRECTED.match(k)}
    port = _free_port()
    env["MLFLOW_PROXY_LISTEN"] = f"127.0.0.1:{port}"
    if "MLFLOW_PROXY_ADMIN_LISTEN" in given:
        env["MLFLOW_PROXY_ADMIN_LISTEN"] = f"127.0.0.1:{_free_port()}"
    signing_none = given.get("MLFLOW_PROXY_SIGNING", "sigv4").strip() == "none"
    if signing_none:
        env["MLFLOW_PROXY_UPSTREAM_URL"] = info["mlflow_url"]
    else:
        kind = "app" if ":mlflow-app/" in given.get("MLFLOW_PROXY_ARN", "") else "tracking_server"
        stand_in = info["proxy_env"][kind]
        env.update({k: v for k, v in stand_in.items() if k.startswith(("MLFLOW_PROXY_ARN", "MLFLOW_PROXY_UPSTREAM_URL",
                                                                        "AWS_ENDPOINT_URL", "AWS_EC2_METADATA",
                                                                        "AWS_REGION"))})
        # A store the configuration names is replaced by the stand-in's one (the gateway lists it at start).
        if given.get("MLFLOW_PROXY_ARTIFACT_STORE_URI"):
            env["MLFLOW_PROXY_ARTIFACT_STORE_URI"] = info["artifact_root"]
        if given.get("MLFLOW_PROXY_ASSUME_ROLE_ARN"):
            external = given.get("MLFLOW_PROXY_ASSUME_ROLE_EXTERNAL_ID", "").strip()
            if external:
                env["MLFLOW_PROXY_ASSUME_ROLE_ARN"] = info["role_external_id_arn"]
                env["MLFLOW_PROXY_ASSUME_ROLE_EXTERNAL_ID"] = info["role_external_id"]
            else:
                env["MLFLOW_PROXY_ASSUME_ROLE_ARN"] = info["role_arn"]
        # Credentials: a named profile stays a named profile (in an AWS config file of the stand-in's keys);
        # anything else (task role, instance profile, exported keys) becomes the stand-in's keys in env.
        profile = given.get("AWS_PROFILE", "").strip()
        config, creds = tmp / "aws-config", tmp / "aws-credentials"
        if profile:
            config.write_text(f"[profile {profile}]\nregion = {info['region']}\n")
            creds.write_text(f"[{profile}]\naws_access_key_id = {info['base_access_key_id']}\n"
                             f"aws_secret_access_key = {info['base_secret_access_key']}\n")
            env["AWS_PROFILE"] = profile
        else:
            config.write_text("")
            creds.write_text("")
            env["AWS_ACCESS_KEY_ID"] = info["base_access_key_id"]
            env["AWS_SECRET_ACCESS_KEY"] = info["base_secret_access_key"]
        env["AWS_CONFIG_FILE"], env["AWS_SHARED_CREDENTIALS_FILE"] = str(config), str(creds)
    if any(k.startswith("OTEL_EXPORTER_OTLP") and k.endswith("ENDPOINT") for k in given):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{_free_port()}"  # nothing listens: export fails quietly
    # Paths the container has but this machine may not: the spool dir must exist.
    if env.get("MLFLOW_PROXY_SPOOL_DIR") and not Path(env["MLFLOW_PROXY_SPOOL_DIR"]).is_dir():
        env["MLFLOW_PROXY_SPOOL_DIR"] = str(tmp)
    if "HOME" in env and not Path(env["HOME"]).is_dir():
        env["HOME"] = str(tmp)
    return env, f"http://127.0.0.1:{port}"


def explain(launch: Launch, output: str) -> str:
    """Names the file and line of the setting the binary refused."""
    m = re.search(r"invalid setting (--[a-z0-9-]+) \((MLFLOW_PROXY_[A-Z0-9_]+)\)", output)
    if m:
        why = f"{launch.where(env_var=m.group(2), flag=m.group(1))}\n  refused: {m.group(0)}"
        # A setting that is missing is required by another one: name that one's line too.
        needed_by = re.search(r"with (--[a-z0-9-]+)", output[m.end():].splitlines()[0] if output[m.end():] else "")
        if needed_by:
            flag = needed_by.group(1)
            env_var = "MLFLOW_PROXY_" + flag[2:].upper().replace("-", "_")
            why += f"\n  required because of {launch.where(env_var=env_var, flag=flag)}"
        return why
    m = re.search(r"the argument '(--[a-z0-9-]+)[ <]", output) or re.search(r"error: .*'(--[a-z0-9-]+)", output)
    if m:
        flag = m.group(1)
        env_var = "MLFLOW_PROXY_" + flag[2:].upper().replace("-", "_")
        return f"{launch.where(env_var=env_var, flag=flag)}\n  refused by the argument parser"
    settings = "\n".join(f"  {k}={s.value!r}  ({s.where})" for k, s in sorted(launch.env.items()))
    return f"(no setting named in the output) the configuration's settings:\n{settings}"


def start_and_check(launch: Launch, binary: Path, emu, tmp: Path) -> None:
    env, url = redirected_env(launch, emu, tmp)
    log = tmp / "proxy.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(binary), *[a.value for a in launch.args]], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + READY_WITHIN
        last = None
        while True:
            if proc.poll() is not None:
                text = log.read_text(errors="replace")
                pytest.fail(f"{launch.name}: the proxy exited with status {proc.returncode} at start:\n"
                            f"  {explain(launch, text)}\n--- output ---\n{text[-3000:]}", pytrace=False)
            try:
                r = requests.get(f"{url}/readyz", timeout=2)
                last = f"{r.status_code} {r.text[:300]}"
                if r.status_code == 200:
                    break
            except requests.RequestException as e:
                last = repr(e)
            if time.monotonic() > deadline:
                pytest.fail(f"{launch.name}: /readyz not 200 within {READY_WITHIN:g}s (last: {last})\n"
                            f"{log.read_text(errors='replace')[-3000:]}", pytrace=False)
            time.sleep(0.05)
        # Stays up and serves: liveness, readiness, and one MLflow call through to the stand-in, as the
        # configured inbound authentication lets a caller in (a bearer token from the configuration's token
        # secret) or refuses an anonymous one.
        for path in ("healthz", "readyz"):
            r = requests.get(f"{url}/{path}", timeout=5)
            assert r.status_code == 200, f"{launch.name}: /{path} answered {r.status_code}: {r.text[:300]}"
        modes = {m.strip() for m in env.get("MLFLOW_PROXY_AUTH", "none").split(",")}
        headers = {}
        if "MLFLOW_PROXY_TOKENS" in env or "MLFLOW_PROXY_TOKEN_FILE" in env:
            headers["Authorization"] = f"Bearer {sample_token_line()[0]}"
        r = requests.get(f"{url}/api/2.0/mlflow/experiments/search", params={"max_results": "1"}, headers=headers,
                         timeout=30)
        if "none" in modes or headers:
            assert r.status_code == 200 and "experiments" in r.json(), (
                f"{launch.name}: experiments/search answered {r.status_code}: {r.text[:300]}")
        else:
            assert r.status_code == 401, f"{launch.name}: anonymous call not refused ({modes}): {r.status_code}"
        check_browser_origins(launch, env, url, headers)
        assert proc.poll() is None, f"{launch.name}: exited after becoming ready:\n{log.read_text()[-3000:]}"
        # Stops cleanly: SIGTERM drains (nothing in flight) and exits 0 within the configured drain timeout.
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=40)
        assert rc == 0, f"{launch.name}: exit status {rc} after SIGTERM:\n{log.read_text()[-3000:]}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def check_browser_origins(launch: Launch, env: dict[str, str], url: str, headers: dict[str, str]) -> None:
    """A browser write from the configuration's public URL (else the listen address) is not refused for its
    origin; one from a page on any other name (DNS rebinding) is, before anything else."""
    public = [u.strip() for u in env.get("MLFLOW_PROXY_PUBLIC_URL", "").split(",") if u.strip()]
    own = public[0].rstrip("/") if public else url
    search = f"{url}/api/2.0/mlflow/runs/search"
    for origin, refused in ((own, False), ("http://rebinding.example:8080", True)):
        r = requests.post(search, json={"experiment_ids": ["0"]}, headers={**headers, "Origin": origin}, timeout=30)
        assert (r.status_code == 403) == refused, (
            f"{launch.name}: a write with Origin {origin} answered {r.status_code}: {r.text[:300]} "
            f"({launch.where(env_var='MLFLOW_PROXY_PUBLIC_URL')})")


@pytest.mark.parametrize("launch,refused", LAUNCHES, ids=[launch.name for launch, _ in LAUNCHES])
def test_configuration_starts_and_is_ready(launch: Launch, refused, proxy_binary, emulator, tmp_path):
    assert refused is None, (f"{launch.name}: CloudFormation would refuse these parameters: {refused} "
                             f"(the test's parameter set for this case must satisfy the template's Rules)")
    start_and_check(launch, proxy_binary, emulator, tmp_path)


def test_every_proxy_auth_and_ui_mode_of_the_template_is_covered():
    template = cfn.load(ROOT / "ecs" / "proxy.yaml")
    labels = [label for label, _ in ecs_parameter_sets(template)]
    p = template["Parameters"]
    for auth in p["ProxyAuth"]["AllowedValues"]:
        for ui in p["UiAuth"]["AllowedValues"]:
            assert f"ProxyAuth={auth!r} UiAuth={ui!r}" in labels


# ------------------------------------------------------------------------------------------------ Rules


def _refusals(params: dict[str, str]) -> list[cfn.RuleFailed]:
    return cfn.Stack(cfn.load(ROOT / "ecs" / "proxy.yaml"), params, region=REGION, account=ACCOUNT).rule_failures()


def _base() -> dict[str, str]:
    return _declared(cfn.load(ROOT / "ecs" / "proxy.yaml"), ECS_REQUIRED)


@pytest.mark.parametrize("extra,rule", [
    ({"LoadBalancerScheme": "internet-facing"}, "InternetFacingNeedsAuthentication"),
    ({"LoadBalancerScheme": "internet-facing", "ProxyAuth": "trusted-header"}, "TrustedHeaderNeedsInternalLoadBalancer"),
    ({"ProxyAuth": "alb-oidc"}, "AlbOidcNeedsOidcAtTheLoadBalancer"),
    ({"ProxyAuth": "token"}, "TokenAuthNeedsTokens"),
    ({"ProxyAuth": "trusted-header", "AllowedIngressCidr": "0.0.0.0/0"}, "TrustedHeaderNeedsInternalLoadBalancer"),
    # The gateway's IAM statements must name the existing upstream's store.
    ({"MlflowArn": "arn:aws:sagemaker:eu-west-1:111122223333:mlflow-tracking-server/existing-server"},
     "GatewayOnExistingUpstreamNeedsItsStore"),
])
def test_template_rules_refuse_unsafe_or_broken_stacks(extra, rule):
    got = _refusals({**_base(), **extra})
    assert rule in [f.rule for f in got], f"{extra}: expected Rule {rule} to refuse, got {[str(f) for f in got]}"


@pytest.mark.parametrize("extra", [
    {"LoadBalancerScheme": "internet-facing", "ProxyAuth": "token",
     "TokenSecretArn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:t-AbCdEf"},
    {"LoadBalancerScheme": "internet-facing", "ProxyAuth": "alb-oidc", **OIDC},
    # Fargate Spot runs ARM64 tasks on platform version 1.4.0 or later (the template's LATEST).
    {"LoadBalancerScheme": "internet-facing", "CpuArchitecture": "ARM64", "CapacityType": "FARGATE_SPOT", **OIDC},
])
def test_template_rules_accept_authenticated_internet_facing_stacks(extra):
    declared = cfn.load(ROOT / "ecs" / "proxy.yaml")["Parameters"]
    got = _refusals({**_base(), **{k: v for k, v in extra.items() if k in declared}})
    assert not got, f"{extra}: refused by {[str(f) for f in got]}"


# ------------------------------------------------------------------------------------------------ compose


def test_compose_without_env_file_stops_with_one_clear_line(tmp_path):
    """`docker compose up` without .env must not start a proxy that exits and restarts in a loop."""
    dc = compose_binary()
    (tmp_path / "compose.yaml").write_text((ROOT / "compose.yaml").read_text())
    r = subprocess.run([dc, "-f", str(tmp_path / "compose.yaml"), "config", "--quiet"], capture_output=True,
                       text=True, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}, timeout=60,
                       cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "MLFLOW_PROXY_ARN" in lines[0] and ".env" in lines[0], (
        f"exit {r.returncode}, stderr: {r.stderr!r}")


def test_sample_token_is_what_the_secret_holds():
    token, line = sample_token_line()
    assert line.split()[1] == hashlib.sha256(token.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ alarms


def test_credential_failure_metric_filter_matches_what_the_proxy_logs(proxy_binary, tmp_path):
    """The template's metric filter (for the credential-failure alarm) must match the JSON line the binary writes
    when it has no credentials: run it without any, with the template's JSON logs, and apply the filter."""
    template = cfn.load(ROOT / "ecs" / "proxy.yaml")
    filters = [r["Properties"]["FilterPattern"] for r in template["Resources"].values()
               if r["Type"] == "AWS::Logs::MetricFilter"]
    assert filters, "ecs/proxy.yaml has no metric filter for credential failures"
    conditions = [re.fullmatch(r'\{\s*\$\.(\w+)\s*=\s*"([^"]*)"\s*\}', f.strip()) for f in filters]
    assert all(conditions), f"unsupported filter pattern(s): {filters}"
    (tmp_path / "empty").write_text("")
    env = {"MLFLOW_PROXY_ARN": SERVER_ARN_FOR_ALARM, "MLFLOW_PROXY_LISTEN": f"127.0.0.1:{_free_port()}",
           "MLFLOW_PROXY_LOG_FORMAT": "json", "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "empty"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "empty"),
           "HOME": str(tmp_path)}
    proc = subprocess.Popen([str(proxy_binary)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    matched, seen = None, []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and matched is None:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.rstrip())
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if all(str(event.get(m.group(1))) == m.group(2) for m in conditions):
                matched = event
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert matched, f"no log line matched {filters}; the proxy wrote:\n" + "\n".join(seen[-20:])
