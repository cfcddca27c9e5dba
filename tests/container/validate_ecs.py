"""Checks of ecs/task-definition.json and ecs/proxy.yaml beyond what cfn-lint and checkov know.

1. ecs/task-definition.json is a valid ECS RegisterTaskDefinition request: botocore's ParamValidator
   against the operation's input shape (the same check the AWS CLI makes before sending
   `aws ecs register-task-definition --cli-input-json file://ecs/task-definition.json`).
2. Both the JSON and the template's task definition run the proxy the way the image expects (port,
   user, read-only root with a /tmp volume, healthcheck subcommand, JSON logs, blocking log delivery)
   and keep the timings in order. ECS deregisters the target and waits for the load balancer to drain it
   before it sends SIGTERM, so: --request-timeout <= the deregistration delay (in-flight requests finish
   before SIGTERM), --request-timeout < the load balancer's idle timeout (the proxy's 504 comes first),
   --drain-timeout < container stopTimeout (SIGKILL comes last). The target group checks /readyz.
3. The template's task-role IAM is what docs/deploy.md promises: the Tracking Server read and write
   statements together hold every `sagemaker-mlflow:` action that cfn-lint's IAM data knows, with no
   overlap and only Get/Search/List (+AccessUI) on the read side; presigned-URL actions only under the
   presigned-session condition; sts:AssumeRole only when an assume-role ARN is given; no wildcards in
   actions.

Usage: python validate_ecs.py [REPO_ROOT]. Prints one line per check and exits non-zero on any failure.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2]
TASK_DEF = ROOT / "ecs" / "task-definition.json"
TEMPLATE = ROOT / "ecs" / "proxy.yaml"

failures: list[str] = []
passes = 0


def check(ok: bool, what: str) -> None:
    global passes
    if ok:
        passes += 1
        print(f"ok    {what}")
    else:
        failures.append(what)
        print(f"FAIL  {what}")


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", value.strip())
    if not m:
        raise ValueError(f"not a duration: {value!r}")
    n, unit = float(m.group(1)), m.group(2) or "s"
    return {"ms": n / 1000, "s": n, "m": n * 60}[unit]


# ---------------------------------------------------------------------------------------------------
# 1. botocore validation of the RegisterTaskDefinition request.

import botocore.session  # noqa: E402
from botocore.validate import ParamValidator  # noqa: E402

task_def = json.loads(TASK_DEF.read_text())
ecs_model = botocore.session.get_session().get_service_model("ecs")
shape = ecs_model.operation_model("RegisterTaskDefinition").input_shape
report = ParamValidator().validate(task_def, shape)
check(not report.has_errors(), f"{TASK_DEF.relative_to(ROOT)} is a valid RegisterTaskDefinition request "
      f"(botocore {botocore.__version__})" + ("" if not report.has_errors() else ":\n" + report.generate_report()))


# ---------------------------------------------------------------------------------------------------
# 2. The container as the image expects it, in both files.

def expand_if(items: list) -> list:
    """List items as CloudFormation may write them: `!If [cond, item, AWS::NoValue]` yields each branch
    that is not AWS::NoValue (both branches of a condition are possible deployments)."""
    out = []
    for item in items:
        if isinstance(item, dict) and list(item) == ["Fn::If"]:
            _, yes, no = item["Fn::If"]
            # A branch may itself be an !If (nested conditions).
            out.extend(expand_if([b for b in (yes, no) if b != {"Ref": "AWS::NoValue"}]))
        else:
            out.append(item)
    return out


def container_checks(label: str, c: dict, volumes: list[str], get) -> float:
    """`get(obj, camelName)` hides the JSON (camelCase) vs CloudFormation (PascalCase) spelling."""
    check(get(c, "essential") is True, f"{label}: container is essential")
    check(get(c, "user") == "65532:65532", f"{label}: runs as the image's non-root user 65532:65532")
    check(get(c, "readonlyRootFilesystem") is True, f"{label}: read-only root filesystem")
    check(get(c, "privileged") in (None, False), f"{label}: not privileged")
    caps = get(get(c, "linuxParameters") or {}, "capabilities") or {}
    check(get(caps, "drop") == ["ALL"], f"{label}: drops all capabilities")
    mounts = get(c, "mountPoints") or []
    tmp = [m for m in mounts if get(m, "containerPath") == "/tmp"]
    check(len(tmp) == 1 and get(tmp[0], "sourceVolume") in volumes and get(tmp[0], "readOnly") in (None, False),
          f"{label}: writable task volume mounted at /tmp (spool dir)")
    ports = [get(p, "containerPort") for p in get(c, "portMappings") or []]
    check(ports == [8080], f"{label}: exposes container port 8080 only")
    hc = get(c, "healthCheck") or {}
    check(get(hc, "command") == ["CMD", "/sagemaker-mlflow-proxy", "healthcheck"],
          f"{label}: health check is the binary's healthcheck subcommand (no shell in the image)")
    env = {get(e, "name"): get(e, "value") for e in expand_if(get(c, "environment") or [])}
    check(env.get("MLFLOW_PROXY_LOG_FORMAT") == "json", f"{label}: JSON logs")
    check(env.get("MLFLOW_PROXY_SPOOL_DIR") == "/tmp", f"{label}: spool dir is the /tmp volume")
    check(env.get("MLFLOW_PROXY_LISTEN", "0.0.0.0:8080").endswith(":8080"), f"{label}: listens on 8080")
    secretish = [k for k in env if re.search(r"SECRET|PASSWORD|ACCESS_KEY|TOKEN", k)]
    check(not secretish, f"{label}: no credentials in plain environment variables {secretish or ''}".rstrip())
    drain = seconds(env.get("MLFLOW_PROXY_DRAIN_TIMEOUT", "30s"))
    stop = get(c, "stopTimeout")
    check(isinstance(stop, int) and drain < stop <= 120,
          f"{label}: proxy drain timeout ({drain:g}s) < container stopTimeout ({stop}s) <= 120s")
    logs = get(c, "logConfiguration") or {}
    check(get(logs, "logDriver") == "awslogs" and (get(logs, "options") or {}).get("mode") == "blocking",
          f"{label}: awslogs in blocking mode (audit lines are never dropped)")
    return drain


def json_get(obj: dict, name: str):
    return obj.get(name)


containers = task_def.get("containerDefinitions", [])
check(len(containers) == 1 and containers[0].get("name") == "proxy", "task-definition.json: one container named proxy")
json_drain = container_checks("task-definition.json", containers[0], [v["name"] for v in task_def.get("volumes", [])],
                              json_get)
check(task_def.get("networkMode") == "awsvpc", "task-definition.json: awsvpc network mode (target type ip)")

# The template, parsed with cfn-lint's own decoder (it understands !Ref, !If, ... short forms).
from cfnlint.decode import decode  # noqa: E402

template, matches = decode(str(TEMPLATE))
check(template is not None and not matches, f"{TEMPLATE.relative_to(ROOT)} parses")
if template is None:
    print(f"{passes} passed, {len(failures)} failed")
    sys.exit(1)
resources = template["Resources"]


def cfn_get(obj: dict, name: str):
    return obj.get(name[0].upper() + name[1:])


td = resources["TaskDefinition"]["Properties"]
cfn_containers = td["ContainerDefinitions"]
check(len(cfn_containers) == 1 and cfn_containers[0]["Name"] == "proxy", "proxy.yaml: one container named proxy")
cfn_drain = container_checks("proxy.yaml", cfn_containers[0], [v["Name"] for v in td.get("Volumes", [])], cfn_get)

tg = resources["TargetGroup"]["Properties"]
tg_attrs = {a["Key"]: a["Value"] for a in tg.get("TargetGroupAttributes", [])}
dereg = int(tg_attrs.get("deregistration_delay.timeout_seconds", "300"))
cfn_env = {e["Name"]: e["Value"] for e in expand_if(cfn_containers[0]["Environment"])}
request_timeout = seconds(cfn_env.get("MLFLOW_PROXY_REQUEST_TIMEOUT", "300s"))
lb_attrs = {a["Key"]: a["Value"] for a in expand_if(resources["LoadBalancer"]["Properties"]["LoadBalancerAttributes"])}
idle = int(lb_attrs.get("idle_timeout.timeout_seconds", "60"))
check(request_timeout <= dereg, f"proxy.yaml: --request-timeout ({request_timeout:g}s) <= deregistration delay "
      f"({dereg}s): in-flight requests finish before ECS sends SIGTERM")
check(request_timeout < idle, f"proxy.yaml: --request-timeout ({request_timeout:g}s) < load balancer idle timeout "
      f"({idle}s)")
keep_alive = seconds(cfn_env.get("MLFLOW_PROXY_KEEP_ALIVE_TIMEOUT", "360s"))
check(keep_alive > idle, f"proxy.yaml: --keep-alive-timeout ({keep_alive:g}s) > load balancer idle timeout "
      f"({idle}s): the load balancer, not the proxy, closes idle connections (AWS's advice; else 502s)")
check(tg.get("HealthCheckPath") == "/readyz" and tg.get("Port") == 8080 and tg.get("TargetType") == "ip",
      "proxy.yaml: target group checks /readyz on port 8080 (ip targets)")
check("DesiredCount" not in resources["Service"]["Properties"],
      "proxy.yaml: the service leaves DesiredCount to the autoscaler")
scaling = resources["RequestCountScaling"]["Properties"]["TargetTrackingScalingPolicyConfiguration"]
check(scaling["PredefinedMetricSpecification"]["PredefinedMetricType"] == "ALBRequestCountPerTarget",
      "proxy.yaml: scales on ALBRequestCountPerTarget")


# ---------------------------------------------------------------------------------------------------
# 3. IAM of the task role.

def policy_statements(name: str) -> list[dict]:
    return resources[name]["Properties"]["PolicyDocument"]["Statement"]


def actions_of(statements: list[dict]) -> list[str]:
    out: list[str] = []
    for s in expand_if(statements):
        a = s["Action"]
        out.extend([a] if isinstance(a, str) else a)
    return out


task_role_policies = {
    name: r for name, r in resources.items()
    if r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::RolePolicy")
    and (r["Properties"].get("Roles") == [{"Ref": "TaskRole"}] or r["Properties"].get("RoleName") == {"Ref": "TaskRole"})
}
check(not resources["TaskRole"]["Properties"].get("Policies") and not resources["TaskRole"]["Properties"].get("ManagedPolicyArns"),
      "proxy.yaml: the task role has no unconditional permissions (all in conditional policies)")
all_actions = [a for r in task_role_policies.values() for a in actions_of(r["Properties"]["PolicyDocument"]["Statement"])]
check(all("*" not in a for a in all_actions), "proxy.yaml: no wildcard actions in the task role")

# The artifact gateway's statements hold exactly what src/artifacts calls on S3 (and the bucket key).
gateway = sorted(actions_of(policy_statements("TaskRoleArtifactStorePolicy")))
check(gateway == sorted(["s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                         "s3:AbortMultipartUpload", "kms:Decrypt", "kms:GenerateDataKey"]),
      f"proxy.yaml: the artifact gateway gets exactly its S3 and KMS actions {gateway}")

read = actions_of(policy_statements("TaskRoleTrackingServerReadPolicy"))
write = actions_of(policy_statements("TaskRoleTrackingServerWritePolicy"))
read_ml = {a.split(":", 1)[1] for a in read if a.startswith("sagemaker-mlflow:")}
write_ml = {a.split(":", 1)[1] for a in write if a.startswith("sagemaker-mlflow:")}
check(not (read_ml & write_ml), f"proxy.yaml: read and write MLflow action lists do not overlap {sorted(read_ml & write_ml) or ''}".rstrip())
check(all(re.match(r"(Get|Search|List)", a) or a == "AccessUI" for a in read_ml),
      "proxy.yaml: the read policy holds only Get*/Search*/List* and AccessUI")
check(all(not re.match(r"(Get|Search|List)", a) and a != "AccessUI" for a in write_ml),
      "proxy.yaml: the write policy holds no read action")
check(len(write) == len(set(write)) and len(read) == len(set(read)), "proxy.yaml: no duplicate actions")

# cfn-lint ships the Service Authorization Reference's action list; compare case-insensitively.
import cfnlint.data.AdditionalSpecs as specs  # noqa: E402

policies_json = json.loads((Path(specs.__file__).parent / "Policies.json").read_text())


def find_service(obj, key):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                return v
            found = find_service(v, key)
            if found is not None:
                return found
    return None


known = find_service(policies_json, "sagemaker-mlflow")
known_actions = {a.lower() for a in (known or {}).get("Actions", {})}
ours = {a.lower() for a in read_ml | write_ml}
check(bool(known_actions) and ours == known_actions,
      f"proxy.yaml: read+write cover exactly the {len(known_actions)} sagemaker-mlflow actions cfn-lint knows"
      + (f" (missing {sorted(known_actions - ours)}, unknown {sorted(ours - known_actions)})" if ours != known_actions else ""))


def conditions_of(name: str) -> str:
    return resources[name].get("Condition", "")


def condition_uses(cond: str, needle: str, seen=None) -> bool:
    """Whether condition `cond` (transitively) requires condition `needle` in an Fn::And."""
    seen = seen or set()
    if cond == needle:
        return True
    if cond in seen or cond not in template["Conditions"]:
        return False
    seen.add(cond)
    expr = template["Conditions"][cond]
    parts = expr.get("Fn::And", []) if isinstance(expr, dict) else []
    return any(isinstance(p, dict) and "Condition" in p and condition_uses(p["Condition"], needle, seen) for p in parts)


presigned = {"sagemaker:CreatePresignedMlflowTrackingServerUrl", "sagemaker:CreatePresignedMlflowAppUrl"}
for name, r in task_role_policies.items():
    acts = set(actions_of(r["Properties"]["PolicyDocument"]["Statement"]))
    if acts & presigned:
        check(condition_uses(conditions_of(name), "UsePresignedSession"),
              f"proxy.yaml: {name} (presigned URL) exists only with UiAuth presigned-session")
    if "sts:AssumeRole" in acts:
        check(conditions_of(name) == "HasAssumeRole", f"proxy.yaml: {name} (sts:AssumeRole) exists only with AssumeRoleArn")
    if any(a.startswith("sagemaker-mlflow:") or a == "sagemaker:CallMlflowAppApi" for a in acts):
        check(condition_uses(conditions_of(name), "DirectAccess"),
              f"proxy.yaml: {name} (data plane) is left out when the proxy assumes another role")

print(f"{passes} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
