"""The serving process of infra validation: `python -m components.serving_check ...`.

components.infra_validator starts it in a fresh interpreter, where it stands in for a model server:
it imports TensorFlow and the task's declared custom-op modules and nothing else (no TFX, no project
code: this module imports only the standard library until it is told what to import), loads the
SavedModel, sends the examples through its serving signature and times calls at each batch size.
It judges nothing: it writes what it saw, and the InfraValidator's executor compares that with the
serving contract.

    python -m components.serving_check --model DIR --examples FILE --output DIR
        [--signature serving_default] [--custom-op-modules JSON] [--batch-sizes 1,64] [--calls 30]
        [--budget-seconds 20]

--examples is a TFRecord file of serialized tf.Examples (label removed). The output directory gets
result.json (stage reached, error, the signature's inputs and outputs, each output's dtype and shape
per batch size, latencies, the modules the process had loaded) and outputs.npz (the signature's
outputs for all the examples as one batch). The exit status is 0 whenever result.json was written,
even when the model could not be loaded: result.json says what went wrong.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
import traceback

RESULT_FILE = "result.json"
OUTPUTS_FILE = "outputs.npz"
EXAMPLES_INPUT = "examples"
# TensorFlow's message for a graph op no loaded library registers.
_MISSING_OP = re.compile(r"Op type not registered '([^']+)'")
# Timed calls stop after this many seconds (and at least MIN_CALLS), so a big model stays affordable.
MIN_CALLS = 5


def _spec(spec) -> dict:
    shape = None if spec.shape.rank is None else list(spec.shape.as_list())
    return {"dtype": spec.dtype.name, "shape": shape}


def _percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _third_party_modules() -> list:
    """Top-level modules this process loaded that are not part of Python itself."""
    stdlib = set(getattr(sys, "stdlib_module_names", ())) | {"__main__", "builtins"}
    top = {name.partition(".")[0] for name in sys.modules}
    return sorted(name for name in top - stdlib if name.isidentifier() and not name.startswith("_"))


def read_examples(path: str) -> list:
    import tensorflow as tf

    return [record.numpy() for record in tf.data.TFRecordDataset(path)]


def _call(signature, batch) -> dict:
    import tensorflow as tf

    outputs = signature(**{EXAMPLES_INPUT: tf.constant(batch)})
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def run(args, result: dict) -> None:
    import numpy as np

    result["stage"] = "import_custom_ops"
    result["custom_op_modules"] = modules = list(json.loads(args.custom_op_modules or "[]"))
    for name in modules:
        importlib.import_module(name)

    result["stage"] = "load"
    import tensorflow as tf

    result["tensorflow_version"] = tf.__version__
    examples = read_examples(args.examples)
    result["examples"] = len(examples)
    started = time.perf_counter()
    model = tf.saved_model.load(args.model)
    result["load_seconds"] = round(time.perf_counter() - started, 3)

    result["stage"] = "signature"
    result["signatures"] = sorted(model.signatures.keys())
    if args.signature not in model.signatures:
        return
    signature = model.signatures[args.signature]
    _, kwargs = signature.structured_input_signature
    result["inputs"] = {name: _spec(spec) for name, spec in kwargs.items()}
    result["declared_outputs"] = {name: _spec(spec) for name, spec in signature.structured_outputs.items()}
    if set(kwargs) != {EXAMPLES_INPUT} or kwargs[EXAMPLES_INPUT].dtype != tf.string:
        return  # not the contract's input: nothing this process could send

    result["stage"] = "predict"
    outputs = _call(signature, examples)
    result["outputs"] = {name: {"dtype": value.dtype.name, "shape": list(value.shape)} for name, value in outputs.items()}
    np.savez(os.path.join(args.output, OUTPUTS_FILE), **outputs)

    result["stage"] = "latency"
    result["latency_ms"] = {}
    result["batch_outputs"] = {}
    for batch_size in [int(b) for b in args.batch_sizes.split(",") if b]:
        batch = (examples * (batch_size // len(examples) + 1))[:batch_size]
        warm = _call(signature, batch)  # the first call of a batch shape may trace and optimise
        result["batch_outputs"][str(batch_size)] = {
            name: {"dtype": value.dtype.name, "shape": list(value.shape)} for name, value in warm.items()
        }
        times = []
        deadline = time.perf_counter() + args.budget_seconds
        while len(times) < args.calls and (len(times) < MIN_CALLS or time.perf_counter() < deadline):
            started = time.perf_counter()
            _call(signature, batch)
            times.append((time.perf_counter() - started) * 1000.0)
        result["latency_ms"][str(batch_size)] = {
            "p50": round(_percentile(times, 50), 3),
            "p99": round(_percentile(times, 99), 3),
            "mean": round(sum(times) / len(times), 3),
            "calls": len(times),
        }
    result["stage"] = "done"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.serving_check", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="SavedModel directory")
    parser.add_argument("--examples", required=True, help="TFRecord file of serialized tf.Examples")
    parser.add_argument("--output", required=True, help="directory for result.json and outputs.npz")
    parser.add_argument("--signature", default="serving_default")
    parser.add_argument("--custom-op-modules", default="[]", help="JSON list of modules to import first")
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--calls", type=int, default=30, help="timed calls per batch size (at most)")
    parser.add_argument("--budget-seconds", type=float, default=20.0, help="stop timing a batch size after this")
    args = parser.parse_args(argv)

    os.makedirs(args.output, exist_ok=True)
    result = {"stage": "start", "python": sys.executable, "pid": os.getpid()}
    started = time.perf_counter()
    try:
        run(args, result)
    except Exception as exc:  # whatever it was, the executor learns it from result.json
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc(limit=4)
        missing = _MISSING_OP.findall(str(exc))
        if missing:
            result["missing_ops"] = sorted(set(missing))
    result["seconds"] = round(time.perf_counter() - started, 3)
    result["modules"] = _third_party_modules()
    with open(os.path.join(args.output, RESULT_FILE), "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
