"""The checks of infra validation (components.infra_validator): what the serving process answered,
against the serving contract of models.common.contract. Each check raises CheckFailed naming itself
("<check>: <what was wrong>"); the validator records the first that fails.

Check names, in the order they run: model_blessing, sample, serving_process, load, signature,
predict, outputs, dtype, shape, finite, probabilities (classifiers), consistency, latency.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

from components import serving_check
from models.common.contract import PROBABILITIES, SERVING_SIGNATURE

TOLERANCE = 1e-5


class CheckFailed(Exception):
    """One check did not pass: its name and what was wrong."""

    def __init__(self, check: str, detail: str):
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


@dataclass(frozen=True)
class Contract:
    """What serving_default must return for a task: probabilities of len(class_names) classes, or
    one score per example (output `prediction_key`) for a task without classes."""

    output: str
    num_classes: int

    @classmethod
    def for_task(cls, class_names: Sequence[str], prediction_key: Optional[str]) -> "Contract":
        if class_names:
            return cls(PROBABILITIES, len(class_names))
        return cls(prediction_key or PROBABILITIES, 0)

    @property
    def kind(self) -> str:
        return "classifier" if self.num_classes else "scorer"

    def shape(self, batch) -> list:
        return [batch, self.num_classes] if self.num_classes else [batch]

    def describe(self) -> Dict[str, Any]:
        return {"signature": SERVING_SIGNATURE, "input": "examples: string [batch] (serialized tf.Examples)",
                "kind": self.kind, "output": self.output, "dtype": "float32",
                "shape": self.shape("batch")}


def _fmt_spec(spec: Dict[str, Any]) -> str:
    shape = "?" if spec.get("shape") is None else "[" + ", ".join("None" if d is None else str(d) for d in spec["shape"]) + "]"
    return f"{spec.get('dtype')} {shape}"


def check_served(served: Dict[str, Any], contract: Contract, custom_op_modules: Sequence[str]) -> None:
    """The serving process's answers against the contract; CheckFailed at the first that fails."""
    stage, error = served.get("stage"), served.get("error")
    if stage == "import_custom_ops" and error:
        raise CheckFailed("load", f"the serving process cannot import the declared custom-op module(s) "
                                  f"{', '.join(custom_op_modules)}: {error}")
    if stage in ("start", "load") and error:
        missing = served.get("missing_ops")
        if missing:
            declared = ", ".join(custom_op_modules) or "none"
            raise CheckFailed("load", f"the serving process cannot load the SavedModel: op "
                                      f"{', '.join(repr(op) for op in missing)} is not registered (custom-op modules "
                                      f"declared: {declared}; declare the module that registers it, e.g. "
                                      f"tensorflow_text, in the task's custom_op_modules)")
        raise CheckFailed("load", f"the serving process cannot load the SavedModel: {error}")
    if stage == "signature" and error:
        raise CheckFailed("signature", f"cannot read the SavedModel's signatures: {error}")
    signatures = served.get("signatures") or []
    if SERVING_SIGNATURE not in signatures:
        raise CheckFailed("signature", f"the SavedModel has no {SERVING_SIGNATURE!r} signature "
                                       f"(signatures: {', '.join(signatures) or 'none'})")
    inputs = served.get("inputs") or {}
    if set(inputs) != {serving_check.EXAMPLES_INPUT} or inputs[serving_check.EXAMPLES_INPUT]["dtype"] != "string":
        shown = ", ".join(f"{name}: {_fmt_spec(spec)}" for name, spec in sorted(inputs.items())) or "nothing"
        raise CheckFailed("signature", f"{SERVING_SIGNATURE} takes {shown}; the contract is one string input "
                                       f"'examples' (serialized tf.Examples)")
    if error and stage == "predict":
        raise CheckFailed("predict", f"{SERVING_SIGNATURE} failed on {served.get('examples')} sample examples "
                                     f"without their label: {error}")
    if error:
        raise CheckFailed("latency", f"timing {SERVING_SIGNATURE} failed: {error}")
    outputs = served.get("outputs") or {}
    if contract.output not in outputs:
        raise CheckFailed("outputs", f"{SERVING_SIGNATURE} returns {sorted(outputs)}; the contract's output is "
                                     f"{contract.output!r} ({contract.kind})")
    per_batch = {str(served.get("examples")): outputs, **(served.get("batch_outputs") or {})}
    for batch, found in per_batch.items():
        spec = found[contract.output]
        if spec["dtype"] != "float32":
            raise CheckFailed("dtype", f"{contract.output!r} is {spec['dtype']}; the contract is float32")
        expected = contract.shape(int(batch))
        if list(spec["shape"]) != expected:
            rule = "(batch, len(class_names))" if contract.num_classes else "(batch,): one score per example"
            raise CheckFailed("shape", f"{contract.output!r} has shape {list(spec['shape'])} for {batch} example(s); "
                                       f"the contract is {expected} {rule}")


def check_values(values, contract: Contract) -> None:
    """Finite values; for classifiers, probabilities in [0, 1] whose rows sum to 1."""
    import numpy as np

    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise CheckFailed("finite", f"{contract.output!r} has {bad} NaN or infinite value(s) out of {np.size(values)}")
    if not contract.num_classes:
        return
    low, high = float(np.min(values)), float(np.max(values))
    if low < -TOLERANCE or high > 1 + TOLERANCE:
        raise CheckFailed("probabilities", f"{contract.output!r} has values outside [0, 1] (min {low:.6g}, max {high:.6g})")
    worst = float(np.max(np.abs(np.sum(values, axis=-1) - 1.0)))
    if worst > TOLERANCE:
        raise CheckFailed("probabilities", f"{contract.output!r} rows do not sum to 1 (off by up to {worst:.6g} "
                                           f"> {TOLERANCE:g})")


def check_consistency(served_values, local_values, contract: Contract) -> float:
    """The largest difference between the serving process's and this process's answers."""
    import numpy as np

    diff = float(np.max(np.abs(np.asarray(served_values, np.float64) - np.asarray(local_values, np.float64))))
    if not diff <= TOLERANCE:
        raise CheckFailed("consistency", f"the serving process's {contract.output!r} differs from the model loaded "
                                         f"in the pipeline's process by up to {diff:.6g} (> {TOLERANCE:g})")
    return diff
