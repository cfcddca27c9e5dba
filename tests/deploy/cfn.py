"""Just enough CloudFormation to know what a stack gives its containers: the template loaded with line numbers,
and the intrinsic functions a task definition and the Rules use, evaluated for one set of parameter values.

Resources are not created: `Ref` of a resource and `Fn::GetAtt` give a value of the shape CloudFormation would
(an ALB's ARN for `Ref LoadBalancer`, a Tracking Server ARN for `TrackingServer.TrackingServerArn`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

NO_VALUE = object()  # AWS::NoValue: the item or property is left out


class LDict(dict):
    """A mapping that remembers the line it starts on (1-based)."""

    line: int = 0
    key_lines: dict  # key -> the line the key is on


class LList(list):
    line: int = 0


class LStr(str):
    line: int = 0


class _Loader(yaml.SafeLoader):
    pass


def _map(loader: _Loader, node: yaml.MappingNode) -> LDict:
    d = LDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    loader.flatten_mapping(node)
    for k, v in node.value:
        key = loader.construct_object(k, deep=True)
        d[key] = loader.construct_object(v, deep=True)
        d.key_lines[key] = k.start_mark.line + 1
    return d


def _seq(loader: _Loader, node: yaml.SequenceNode) -> LList:
    out = LList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    return out


def _str(loader: _Loader, node: yaml.ScalarNode) -> Any:
    value = loader.construct_scalar(node)
    s = LStr(value)
    s.line = node.start_mark.line + 1
    return s


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _seq)
_Loader.add_constructor("tag:yaml.org,2002:str", _str)


def _tag(loader: _Loader, suffix: str, node: yaml.Node) -> LDict:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = _seq(loader, node)
    else:
        value = _map(loader, node)
    d = LDict({name: value})
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    return d


_Loader.add_multi_constructor("!", _tag)


def load(path: Path) -> LDict:
    return yaml.load(path.read_text(), Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


class RuleFailed(Exception):
    def __init__(self, rule: str, description: str, line: int):
        super().__init__(f"Rule {rule} (line {line}): {description}")
        self.rule, self.description, self.line = rule, description, line


@dataclass
class Stack:
    """One template with one set of parameter values (defaults filled in, as CloudFormation does)."""

    template: LDict
    params: dict[str, Any]
    region: str = "eu-west-1"
    account: str = "111122223333"
    name: str = "mlflow-proxy"
    refs: set[str] = field(default_factory=set)  # parameters read since the last reset

    def __post_init__(self) -> None:
        declared = self.template["Parameters"]
        unknown = set(self.params) - set(declared)
        if unknown:
            raise ValueError(f"unknown parameters {sorted(unknown)}")
        values = {}
        for name, p in declared.items():
            if name in self.params:
                raw = self.params[name]
            elif "Default" in p:
                raw = p["Default"]
            else:
                raise ValueError(f"parameter {name} (line {declared.key_lines[name]}) has no default and no value")
            raw = str(raw) if not isinstance(raw, list) else raw
            if "AllowedValues" in p and raw not in [str(v) for v in p["AllowedValues"]]:
                raise ValueError(f"parameter {name}: {raw!r} is not one of {p['AllowedValues']}")
            if p["Type"].startswith("List<") or p["Type"] == "CommaDelimitedList":
                raw = raw if isinstance(raw, list) else [s.strip() for s in raw.split(",")]
            values[name] = raw
        self.values = values
        self._conditions: dict[str, bool] = {}

    # ---------------------------------------------------------------------------------------- values

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account,
            "AWS::StackName": self.name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.values:
            self.refs.add(name)
            return self.values[name]
        res = self.template["Resources"][name]
        if res["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer":
            return (f"arn:aws:elasticloadbalancing:{self.region}:{self.account}:loadbalancer/app/"
                    f"{self.name}-alb/50dc6c495c0c9188")
        return f"{self.name}-{name}-1A2B3C4D5E6F"

    def get_att(self, name: str, attr: str) -> Any:
        res = self.template["Resources"][name]
        if res["Type"] == "AWS::SageMaker::MlflowTrackingServer" and attr == "TrackingServerArn":
            server = self.eval(res["Properties"]["TrackingServerName"])
            return f"arn:aws:sagemaker:{self.region}:{self.account}:mlflow-tracking-server/{server}"
        if attr == "Arn":
            return f"arn:aws:iam::{self.account}:role/{self.name}-{name}-1A2B3C4D5E6F"
        if res["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer" and attr == "DNSName":
            return f"internal-{self.name}-{name}-1234567890.{self.region}.elb.amazonaws.com"
        return f"{self.name}-{name}-{attr}"

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.eval(self.template["Conditions"][name]))
        return self._conditions[name]

    def eval(self, x: Any) -> Any:
        if isinstance(x, list):
            out = [self.eval(i) for i in x]
            return [i for i in out if i is not NO_VALUE]
        if not isinstance(x, dict):
            return x
        if len(x) == 1:
            (k, v), = x.items()
            fn = _FUNCTIONS.get(k)
            if fn:
                return fn(self, v)
        out = {k: self.eval(v) for k, v in x.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    # ---------------------------------------------------------------------------------------- rules

    def rule_failures(self) -> list[RuleFailed]:
        """Every Rule assertion that fails for these parameter values (CloudFormation refuses the stack)."""
        out = []
        for name, rule in (self.template.get("Rules") or {}).items():
            if "RuleCondition" in rule and not self.eval(rule["RuleCondition"]):
                continue
            for a in rule["Assertions"]:
                if not self.eval(a["Assert"]):
                    out.append(RuleFailed(name, a.get("AssertDescription", ""), a.line))
        return out

    def check_rules(self) -> None:
        failures = self.rule_failures()
        if failures:
            raise failures[0]


def _sub(stack: Stack, v: Any) -> str:
    if isinstance(v, list):
        text, extra = v[0], {k: stack.eval(e) for k, e in v[1].items()}
    else:
        text, extra = v, {}
    out, i = [], 0
    while i < len(text):
        j = text.find("${", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        end = text.index("}", j)
        name = text[j + 2:end]
        if name.startswith("!"):
            out.append("${" + name[1:] + "}")
        elif name in extra:
            out.append(str(extra[name]))
        elif "." in name and not name.startswith("AWS::"):
            out.append(str(stack.get_att(*name.split(".", 1))))
        else:
            out.append(str(stack.ref(name)))
        i = end + 1
    return "".join(out)


def _if(stack: Stack, v: Any) -> Any:
    cond, yes, no = v
    return stack.eval(yes if stack.condition(cond) else no)


def _contains(stack: Stack, v: Any) -> bool:
    values, s = stack.eval(v[0]), stack.eval(v[1])
    return s in values


_FUNCTIONS = {
    "Ref": lambda s, v: s.ref(v),
    "Condition": lambda s, v: s.condition(v),
    "Fn::If": _if,
    "Fn::Equals": lambda s, v: str(s.eval(v[0])) == str(s.eval(v[1])),
    "Fn::Not": lambda s, v: not s.eval(v[0]),
    "Fn::And": lambda s, v: all(s.eval(i) for i in v),
    "Fn::Or": lambda s, v: any(s.eval(i) for i in v),
    "Fn::Contains": _contains,
    "Fn::EachMemberIn": lambda s, v: all(i in s.eval(v[1]) for i in s.eval(v[0])),
    "Fn::EachMemberEquals": lambda s, v: all(i == s.eval(v[1]) for i in s.eval(v[0])),
    "Fn::Sub": _sub,
    "Fn::GetAtt": lambda s, v: s.get_att(*(v if isinstance(v, list) else v.split(".", 1))),
    "Fn::Join": lambda s, v: str(s.eval(v[0])).join(str(i) for i in s.eval(v[1])),
    "Fn::Select": lambda s, v: s.eval(v[1])[int(s.eval(v[0]))],
    "Fn::Split": lambda s, v: str(s.eval(v[1])).split(s.eval(v[0])),
}
