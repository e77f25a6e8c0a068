"""How the open-source KFP backend treats what passes between steps, after kubeflow/pipelines 2.17.0
(backend/src/v2): artifact metadata through ML Metadata and back (metadata/converter.go), trigger
conditions (a CEL subset, driver/resolve.go), and parameter values (metadata/converter.go,
apiserver/template/v2_template.go). The dry run (pipelines.kubeflow.dry_run) uses it."""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping

from pipelines.kubeflow import KubeflowError


class StepError(KubeflowError):
    """A task fails before or after its command (driver or launcher error)."""


# --- ML Metadata round trip (metadata/converter.go) ------------------------------------------------

def to_mlmd(metadata: Mapping[str, Any]) -> Dict[str, tuple]:
    """RuntimeArtifact metadata -> MLMD custom properties (toMLMDArtifact, StructValueToMLMDValue)."""
    props = {}
    for key, value in metadata.items():
        if key == "_kfp_workspace":
            continue
        if isinstance(value, bool):
            props[key] = ("int", int(value))
        elif isinstance(value, str):
            props[key] = ("string", value)
        elif isinstance(value, (int, float)):
            props[key] = ("double", float(value))
        elif isinstance(value, list):
            props[key] = ("struct", {"list": value})
        elif isinstance(value, dict):
            props[key] = ("struct", {"struct": value})
        else:
            kind = "*structpb.Value_NullValue" if value is None else type(value).__name__
            raise StepError(
                f"unable to produce MLMD artifact: failed to convert RuntimeArtifact to MLMD artifact: "
                f"unknown/unsupported value type {kind} (metadata key {key!r})"
            )
    return props


def from_mlmd(props: Mapping[str, tuple]) -> Dict[str, Any]:
    """MLMD custom properties -> RuntimeArtifact metadata (toRuntimeArtifact)."""
    return {key: float(value) if kind in ("int", "double") else value for key, (kind, value) in props.items()}


@dataclass
class Record:
    id: int
    uri: str
    props: Dict[str, tuple]

    def runtime_artifact(self) -> Dict[str, Any]:
        """The input artifact the driver builds from this record."""
        return {"name": str(self.id), "type": {"instanceSchema": ""}, "uri": self.uri,
                "metadata": from_mlmd(self.props)}


# --- CEL conditions (the subset pipelines use) ------------------------------------------------------

_CEL_TOKEN = re.compile(r"""\s*(?:("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(&&|\|\||!=|==|<=|>=|!)|(\S))""")
_CEL_WORDS = {"true": "True", "false": "False", "null": "None"}
_CEL_FUNCTIONS = {
    "int": lambda v: int(float(v)) if isinstance(v, str) else int(v),
    "double": float,
    "string": lambda v: v if isinstance(v, str) else json.dumps(v) if isinstance(v, (dict, list)) else str(v),
    "bool": lambda v: {"true": True, "false": False}[v] if isinstance(v, str) else bool(v),
    "size": len,
    "parseJson": json.loads,
}
_BINARY = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
           ast.Div: lambda a, b: a / b, ast.Mod: lambda a, b: a % b}
_COMPARE = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b, ast.Lt: lambda a, b: a < b,
            ast.LtE: lambda a, b: a <= b, ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
            ast.In: lambda a, b: a in b}


def _cel_to_python(expression: str) -> str:
    out, pos = [], 0
    while pos < len(expression):
        match = _CEL_TOKEN.match(expression, pos)
        if not match:
            break
        text, op, char = match.groups()
        pos = match.end()
        if text:
            out.append(text)
        elif op:
            out.append({"&&": " and ", "||": " or ", "!": " not "}.get(op, op))
        else:
            out.append(char)
    python = "".join(out).strip()
    return re.sub(r"\b(true|false|null)\b", lambda m: _CEL_WORDS[m.group(1)], python)


def evaluate_condition(condition: str, inputs: Mapping[str, Any]) -> bool:
    """Evaluate a trigger condition against the executor input's `inputs` (proto field names)."""
    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name) and node.id == "inputs":
            return inputs
        if isinstance(node, ast.Attribute):
            return ev(node.value)[node.attr]
        if isinstance(node, ast.Subscript):
            return ev(node.value)[ev(node.slice)]
        if isinstance(node, ast.BoolOp):
            values = (ev(v) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub)):
            return (not ev(node.operand)) if isinstance(node.op, ast.Not) else -ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
            return _COMPARE[type(node.ops[0])](ev(node.left), ev(node.comparators[0]))
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CEL_FUNCTIONS
                and len(node.args) == 1 and not node.keywords):
            return _CEL_FUNCTIONS[node.func.id](ev(node.args[0]))
        raise KubeflowError(f"trigger condition {condition!r}: unsupported expression {ast.dump(node)[:80]}")

    try:
        result = ev(ast.parse(_cel_to_python(condition), mode="eval"))
    except (SyntaxError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise StepError(f"evaluation error in trigger condition {condition!r}: {exc!r}") from None
    if not isinstance(result, bool):
        raise StepError(f"evaluation error: return type is not bool, got {result!r}")
    return result


# --- parameters (metadata/converter.go, driver/resolve.go, apiserver validatePipelineJobInputs) ---

_NUMBER_TYPES = ("NUMBER_INTEGER", "NUMBER_DOUBLE")


def value_text(value: Any) -> str:
    """PbValueToText: a parameter value as the string a STRING input receives."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number_text(float(value))
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _number_text(number: float) -> str:
    return str(int(number)) if number.is_integer() and abs(number) < 1e21 else repr(number)


def text_to_value(text: str, parameter_type: str) -> Any:
    """TextToPbValue: `text` (a CLI --param or an output parameter file) as a value of the type."""
    try:
        if parameter_type == "STRING":
            return text
        if parameter_type == "NUMBER_INTEGER":
            return float(int(text.strip()))
        if parameter_type == "NUMBER_DOUBLE":
            return float(text.strip())
        if parameter_type == "BOOLEAN":
            return {"true": True, "1": True, "t": True, "false": False, "0": False, "f": False}[text.strip().lower()]
        if parameter_type in ("LIST", "STRUCT"):
            value = json.loads(text)
            if isinstance(value, list if parameter_type == "LIST" else dict):
                return value
    except (ValueError, KeyError):
        pass
    raise KubeflowError(f"{text!r} is not a {parameter_type} value")


def root_parameters(pipeline_spec: Mapping[str, Any], given: Mapping[str, Any]) -> Dict[str, Any]:
    """runtimeConfig.parameterValues as the API server accepts them and the workflow compiler fills
    them (the root's defaults; optional parameters without one are null)."""
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    extra = sorted(set(given) - set(declared))
    if extra:
        raise KubeflowError(f"parameter(s) provided are not required by pipeline: {', '.join(extra)}")
    values: Dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            value, kind = given[name], spec.get("parameterType", "")
            ok = {"STRING": isinstance(value, str), "BOOLEAN": isinstance(value, bool),
                  "LIST": isinstance(value, list), "STRUCT": isinstance(value, dict)}.get(
                kind, kind in _NUMBER_TYPES and isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok:
                raise KubeflowError(f"input parameter {name} requires type {kind}, but got {value!r}")
            values[name] = value
        elif "defaultValue" in spec:
            values[name] = spec["defaultValue"]
        elif spec.get("isOptional"):
            values[name] = None
        else:
            raise KubeflowError(
                f"parameter {name} is not optional, yet has neither default value nor user provided value")
    return values


def coerce_parameters(pipeline_spec: Mapping[str, Any], texts: Mapping[str, str]) -> Dict[str, Any]:
    """NAME=VALUE texts (e.g. from the command line) as values of the root parameters' types."""
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    values = {}
    for name, text in texts.items():
        if name not in declared:
            raise KubeflowError(
                f"unknown parameter {name!r}; the pipeline takes: {', '.join(sorted(declared)) or 'no parameters'}")
        values[name] = text_to_value(text, declared[name].get("parameterType", "STRING"))
    return values


def check_parameter_types(values: Dict[str, Any], inputs_spec: Mapping[str, Any]) -> None:
    """The driver's handleParamTypeValidationAndConversion."""
    for name, spec in inputs_spec.get("parameters", {}).items():
        if name not in values:
            if not spec.get("isOptional") and "defaultValue" not in spec:
                raise StepError(f"neither value nor default value provided for non-optional parameter {name!r}")
            continue
        kind, value = spec.get("parameterType", ""), values[name]
        if kind == "STRING":
            if not isinstance(value, str):
                values[name] = value_text(value)
            continue
        if value is None:
            raise StepError(f"got null for input parameter {name!r}")
        actual = ("string" if isinstance(value, str) else "bool" if isinstance(value, bool)
                  else "number" if isinstance(value, (int, float)) else "list" if isinstance(value, list) else "struct")
        allowed = {"string": ("STRING",), "number": _NUMBER_TYPES, "bool": ("BOOLEAN",), "list": ("LIST",),
                   "struct": ("STRUCT", "TASK_FINAL_STATUS", "TASK_CONFIG")}[actual]
        if kind not in allowed:
            raise StepError(f"input parameter {name!r} type mismatch: expect {kind}, got {actual}")
