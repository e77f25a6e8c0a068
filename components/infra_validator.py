"""InfraValidator: can the candidate SavedModel be served, and how fast? Checked before it is pushed.

Between the Evaluator and the Pusher. Only a model the Evaluator blessed is validated; otherwise the
output says "not blessed by the Evaluator" and nothing is started. The check runs without Docker or
TF Serving binaries (it is an ordinary container step on Kubeflow, in the pipeline image):

1. A sample of validation-split raw examples (ExampleGen's Examples) with the task's label removed, as a
   serving client would send them.
2. A fresh Python process (`python -m components.serving_check`) that imports only TensorFlow and
   the task's declared custom-op modules (TaskConfig.custom_op_modules) loads the SavedModel (the
   Trainer's Format-Serving/) and sends the sample through `serving_default`, then times calls at
   batch 1 and batch 64. A model that needs an op the serving process lacks fails here.
3. Checks of what it answered against the serving contract (models.common.contract): one string
   input `examples`; a classifier (class_names not empty) returns `probabilities` float32
   [batch, len(class_names)] with values in [0, 1] whose rows sum to 1; a scorer (no class names,
   e.g. sts) returns EvalSpec.prediction_key float32 [batch]; every value finite; and the same
   answers (to 1e-5) as the model loaded in this executor's own process.

The output is TFX's InfraBlessing with TFX's InfraValidator convention (file INFRA_BLESSED or
INFRA_NOT_BLESSED, custom property `blessed` 1/0), so TFX's Pusher check (CheckBlessing) applies.
It also carries `failed_check`, `reason` ("<check>: <what was wrong>"), the latencies
(`latency_batch_<n>_<p50|p99>_ms`) and `validation_seconds`, and holds the JSON report
infra_validation.json (every check, the latencies, the serving process). A failing check never
fails the step: the model is recorded as not blessed, and the Pusher does not push it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

from components import serving_check
from components.infra_checks import (
    TOLERANCE, CheckFailed, Contract, check_consistency, check_served, check_values,
)
from models.common.contract import SERVING_SIGNATURE, VALIDATION_SPLIT
from models.common.training_info import SERVING_MODEL_DIR

BLESSING_KEY = "blessing"
# TFX InfraValidator's names (tfx.components.infra_validator.executor).
BLESSED_FILE = "INFRA_BLESSED"
NOT_BLESSED_FILE = "INFRA_NOT_BLESSED"
PROP_BLESSED = "blessed"
# Ours.
PROP_FAILED_CHECK = "failed_check"
PROP_REASON = "reason"
PROP_SECONDS = "validation_seconds"
REPORT_FILE = "infra_validation.json"
SERVING_LOG_FILE = "serving_process.log"

BATCH_SIZES = (1, 64)
# Validation, not test: the test split is the Evaluator's alone.
SAMPLE_SPLIT = VALIDATION_SPLIT
NOT_BLESSED_BY_EVALUATOR = "not blessed by the Evaluator"
DEFAULT_SAMPLE_SIZE = 64
DEFAULT_CALLS = 30
DEFAULT_TIMEOUT_S = 900
LATENCY_BUDGET_S = 20.0
# Where `python -m components.serving_check` resolves: the directory holding the components package.
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)


def latency_property(batch_size: int, stat: str) -> str:
    """Custom property of one latency: latency_batch_64_p99_ms."""
    return f"latency_batch_{batch_size}_{stat}_ms"


def latencies(blessing) -> Dict[str, float]:
    """{'batch_1_p50': ms, ...} from an InfraBlessing's custom properties ({} when none)."""
    found = {}
    for batch_size in BATCH_SIZES:
        for stat in ("p50", "p99"):
            name = latency_property(batch_size, stat)
            if blessing is not None and blessing.has_custom_property(name):
                found[f"batch_{batch_size}_{stat}"] = round(float(blessing.get_float_custom_property(name)), 3)
    return found


# ---- the sample ---------------------------------------------------------------------------------


def read_sample(examples, label_key: str, size: int) -> List[bytes]:
    """Up to `size` serialized validation-split tf.Examples, without the label (what a client sends)."""
    import tensorflow as tf

    split_uri = artifact_utils.get_split_uri([examples], SAMPLE_SPLIT)
    files = sorted(f for f in tf.io.gfile.glob(os.path.join(split_uri, "*")) if not tf.io.gfile.isdir(f))
    sample: List[bytes] = []
    for path in files:
        dataset = tf.data.TFRecordDataset(path, compression_type="GZIP" if path.endswith(".gz") else "")
        for raw in dataset.take(size - len(sample)):
            example = tf.train.Example.FromString(raw.numpy())
            if label_key in example.features.feature:
                del example.features.feature[label_key]
            sample.append(example.SerializeToString())
        if len(sample) >= size:
            break
    if not sample:
        raise CheckFailed("sample", f"no {SAMPLE_SPLIT}-split examples under {split_uri}")
    return sample


def _write_tfrecord(path: str, records: Sequence[bytes]) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)


# ---- the serving process ------------------------------------------------------------------------


def _local_copy(model_dir: str, workdir: str) -> str:
    """The SavedModel on local disk (a model server loads a local copy, and the serving process then
    needs no file-system plugin for s3:// or gs://)."""
    if "://" not in model_dir:
        return model_dir
    local = os.path.join(workdir, "model")
    io_utils.copy_dir(model_dir, local)
    return local


def run_serving_process(model_dir: str, sample: Sequence[bytes], workdir: str, custom_op_modules: Sequence[str],
                        calls: int, timeout_s: int) -> Dict[str, Any]:
    """Start the serving process on the SavedModel and the sample; its result.json (plus `command`,
    `exit_code`, `wall_seconds` and `log`, the process's output file)."""
    examples_file = os.path.join(workdir, "examples.tfrecord")
    _write_tfrecord(examples_file, sample)
    out_dir = os.path.join(workdir, "out")
    command = [sys.executable, "-m", serving_check.__name__, "--model", _local_copy(model_dir, workdir),
               "--examples", examples_file, "--output", out_dir, "--signature", SERVING_SIGNATURE,
               "--custom-op-modules", json.dumps(list(custom_op_modules)),
               "--batch-sizes", ",".join(str(b) for b in BATCH_SIZES), "--calls", str(calls),
               "--budget-seconds", str(LATENCY_BUDGET_S)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PROJECT_ROOT, env.get("PYTHONPATH")) if p)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log_path = os.path.join(workdir, SERVING_LOG_FILE)
    started = time.monotonic()
    with open(log_path, "w") as log:
        try:
            process = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                                     timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise CheckFailed("serving_process", f"the serving process did not finish within {timeout_s} s") from None
    result_path = os.path.join(out_dir, serving_check.RESULT_FILE)
    if not os.path.exists(result_path):
        tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-3:]
        raise CheckFailed("serving_process", f"the serving process exited with status {process.returncode} "
                                             f"without a result: {' | '.join(tail) or 'no output'}")
    result = json.loads(Path(result_path).read_text())
    result.update(command=command, exit_code=process.returncode, log=log_path,
                  wall_seconds=round(time.monotonic() - started, 3))
    outputs_path = os.path.join(out_dir, serving_check.OUTPUTS_FILE)
    result["outputs_file"] = outputs_path if os.path.exists(outputs_path) else None
    return result


# ---- the checks ---------------------------------------------------------------------------------


def in_process_outputs(model_dir: str, sample: Sequence[bytes], custom_op_modules: Sequence[str]) -> Dict[str, Any]:
    """serving_default's outputs on the sample, from the model loaded in this process."""
    import tensorflow as tf

    from components.custom_ops import import_custom_ops

    import_custom_ops(custom_op_modules)
    model = tf.saved_model.load(model_dir)
    outputs = model.signatures[SERVING_SIGNATURE](**{serving_check.EXAMPLES_INPUT: tf.constant(list(sample))})
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def validate(model_dir: str, sample: Sequence[bytes], contract: Contract, custom_op_modules: Sequence[str],
             workdir: str, report: Dict[str, Any], calls: int = DEFAULT_CALLS,
             timeout_s: int = DEFAULT_TIMEOUT_S) -> None:
    """Every check, in order, filling report (checks passed, latencies, the serving process);
    CheckFailed at the first that fails."""
    import numpy as np

    def passed(name: str, detail: str) -> None:
        report["checks"].append({"check": name, "passed": True, "detail": detail})

    served = run_serving_process(model_dir, sample, workdir, custom_op_modules, calls, timeout_s)
    report["serving_process"] = {k: served.get(k) for k in (
        "command", "exit_code", "wall_seconds", "seconds", "load_seconds", "stage", "error", "tensorflow_version",
        "custom_op_modules", "modules", "signatures", "inputs", "declared_outputs", "outputs", "batch_outputs")}
    report["latency_ms"] = served.get("latency_ms") or {}
    passed("serving_process", f"started and answered in {served.get('wall_seconds')} s")
    check_served(served, contract, custom_op_modules)
    passed("load", f"loaded in {served.get('load_seconds')} s with custom-op modules "
                   f"{list(custom_op_modules) or 'none'}")
    passed("signature", f"{SERVING_SIGNATURE}(examples: string)")
    passed("predict", f"answered {served.get('examples')} {SAMPLE_SPLIT}-split examples")
    passed("outputs", f"returns {contract.output!r}")
    passed("dtype", "float32")
    sizes = sorted({int(served.get("examples") or 0), *BATCH_SIZES} - {0})
    passed("shape", f"{contract.shape('batch')} at batch sizes {', '.join(str(b) for b in sizes)}")
    with np.load(served["outputs_file"]) as stored:
        served_values = stored[contract.output]
    check_values(served_values, contract)
    passed("finite", "every value finite")
    if contract.num_classes:
        passed("probabilities", f"in [0, 1], rows sum to 1 (±{TOLERANCE:g})")
    local = in_process_outputs(model_dir, sample, custom_op_modules)
    report["max_abs_diff"] = check_consistency(served_values, local[contract.output], contract)
    passed("consistency", f"same answers as in the pipeline's process (max difference {report['max_abs_diff']:.3g})")
    missing = [str(b) for b in BATCH_SIZES if str(b) not in report["latency_ms"]]
    if missing:
        raise CheckFailed("latency", f"no latency measured at batch size {', '.join(missing)}")
    passed("latency", ", ".join(f"batch {b}: p50 {report['latency_ms'][str(b)]['p50']:.3g} ms, "
                                f"p99 {report['latency_ms'][str(b)]['p99']:.3g} ms" for b in BATCH_SIZES))


# ---- the component ------------------------------------------------------------------------------


class InfraValidatorSpec(types.ComponentSpec):
    PARAMETERS = {
        "label_key": ExecutionParameter(type=str),
        # JSON list of the task's class names; [] for a task that returns one score per example.
        "class_names": ExecutionParameter(type=str),
        # The scorer's output name (EvalSpec.prediction_key); classifiers return `probabilities`.
        "prediction_key": ExecutionParameter(type=str, optional=True),
        # JSON list of modules the serving process imports before loading (TaskConfig.custom_op_modules).
        "custom_op_modules": ExecutionParameter(type=str, optional=True),
        "sample_size": ExecutionParameter(type=int, optional=True),
        # Timed calls per batch size (at most; timing a batch size stops after LATENCY_BUDGET_S).
        "latency_calls": ExecutionParameter(type=int, optional=True),
        "timeout_seconds": ExecutionParameter(type=int, optional=True),
    }
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {BLESSING_KEY: ChannelParameter(type=standard_artifacts.InfraBlessing)}


def write_blessing(blessing, report: Dict[str, Any]) -> None:
    """TFX's INFRA_BLESSED / INFRA_NOT_BLESSED file and `blessed`, plus our properties and report."""
    blessed = bool(report["blessed"])
    io_utils.write_string_file(os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), "")
    blessing.set_int_custom_property(PROP_BLESSED, int(blessed))
    blessing.set_string_custom_property(PROP_FAILED_CHECK, report.get("failed_check") or "")
    blessing.set_string_custom_property(PROP_REASON, report.get("reason") or "")
    blessing.set_float_custom_property(PROP_SECONDS, float(report.get("seconds") or 0.0))
    for batch, stats in (report.get("latency_ms") or {}).items():
        for stat in ("p50", "p99"):
            if stat in stats:
                blessing.set_float_custom_property(latency_property(int(batch), stat), float(stats[stat]))
    io_utils.write_string_file(os.path.join(blessing.uri, REPORT_FILE), json.dumps(report, indent=1, default=str))


class Executor(base_executor.BaseExecutor):
    """Validates an Evaluator-blessed model in a fresh serving process (see module docstring)."""

    def Do(self, input_dict, output_dict, exec_properties):
        from tfx.components.util import model_utils

        started = time.monotonic()
        blessing = artifact_utils.get_single_instance(output_dict[BLESSING_KEY])
        model = artifact_utils.get_single_instance(input_dict["model"])
        model_blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        modules = json.loads(exec_properties.get("custom_op_modules") or "[]")
        contract = Contract.for_task(json.loads(exec_properties.get("class_names") or "[]"),
                                     exec_properties.get("prediction_key"))
        model_dir = os.path.join(model.uri, SERVING_MODEL_DIR)
        report: Dict[str, Any] = {"blessed": False, "failed_check": None, "reason": "", "model": model_dir,
                                  "contract": contract.describe(), "custom_op_modules": modules, "checks": [],
                                  "latency_ms": {}}
        try:
            if not model_utils.is_model_blessed(model_blessing):
                raise CheckFailed("model_blessing", NOT_BLESSED_BY_EVALUATOR)
            report["checks"].append({"check": "model_blessing", "passed": True, "detail": "blessed by the Evaluator"})
            size = int(exec_properties.get("sample_size") or DEFAULT_SAMPLE_SIZE)
            sample = read_sample(examples, exec_properties["label_key"], size)
            report["sample"] = {"split": SAMPLE_SPLIT, "examples": len(sample), "label_removed": exec_properties["label_key"],
                                "source": examples.uri}
            with tempfile.TemporaryDirectory(prefix="infra-validation-") as workdir:
                try:
                    validate(model_dir, sample, contract, modules, workdir, report,
                             calls=int(exec_properties.get("latency_calls") or DEFAULT_CALLS),
                             timeout_s=int(exec_properties.get("timeout_seconds") or DEFAULT_TIMEOUT_S))
                finally:
                    log = os.path.join(workdir, SERVING_LOG_FILE)
                    if os.path.exists(log):
                        io_utils.copy_file(log, os.path.join(blessing.uri, SERVING_LOG_FILE), overwrite=True)
            report["blessed"] = True
        except CheckFailed as failure:
            report.update(failed_check=failure.check,
                          reason=failure.detail if failure.check == "model_blessing" else str(failure))
        except Exception as exc:  # a validation that could not be made must not push the model either
            logging.exception("InfraValidator: the validation itself failed")
            report.update(failed_check="internal", reason=f"internal: {type(exc).__name__}: {exc}")
        if report["failed_check"]:
            report["checks"].append({"check": report["failed_check"], "passed": False, "detail": report["reason"]})
        report["seconds"] = round(time.monotonic() - started, 3)
        write_blessing(blessing, report)
        if report["blessed"]:
            logging.info("InfraValidator: blessed in %.1f s; latency %s", report["seconds"], report["latency_ms"])
        else:
            logging.warning("InfraValidator: not blessed: %s", report["reason"])


class InfraValidator(base_component.BaseComponent):
    """Serves an Evaluator-blessed candidate in a fresh process and checks it (see module docstring)."""

    SPEC_CLASS = InfraValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, *, model: types.BaseChannel, model_blessing: types.BaseChannel, examples: types.BaseChannel,
                 label_key: str, class_names: Sequence[str], prediction_key: Optional[str] = None,
                 custom_op_modules: Optional[Sequence[str]] = None, sample_size: Optional[int] = None,
                 latency_calls: Optional[int] = None, timeout_seconds: Optional[int] = None):
        super().__init__(spec=InfraValidatorSpec(
            label_key=label_key,
            class_names=json.dumps(list(class_names)),
            prediction_key=prediction_key,
            custom_op_modules=json.dumps(list(custom_op_modules)) if custom_op_modules else None,
            sample_size=sample_size,
            latency_calls=latency_calls,
            timeout_seconds=timeout_seconds,
            model=model,
            model_blessing=model_blessing,
            examples=examples,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing),
        ))
