"""components.gpu_check: a step compiled with a GPU request fails with one line when it has none."""
import subprocess
import sys

import pytest

from components import gpu_check
from tests.conftest import REPO


def test_no_request_checks_nothing():
    assert gpu_check.require_gpu_if_requested(visible=lambda: [], environ={}) == []
    assert gpu_check.require_gpu_if_requested(visible=lambda: [], environ={gpu_check.REQUIRE_GPU_ENV: "0"}) == []


def test_a_request_logs_the_devices_and_fails_without_any(capsys):
    seen = gpu_check.require_gpu_if_requested(visible=lambda: ["/physical_device:GPU:0"],
                                              environ={gpu_check.REQUIRE_GPU_ENV: "1"})
    assert seen == ["/physical_device:GPU:0"]
    assert "TensorFlow sees: /physical_device:GPU:0" in capsys.readouterr().err
    with pytest.raises(gpu_check.NoGpuError) as error:
        gpu_check.require_gpu_if_requested(visible=lambda: [], environ={gpu_check.REQUIRE_GPU_ENV: "1"})
    assert "\n" not in str(error.value) and "requested 1 GPU(s) but TensorFlow sees none" in str(error.value)


def test_the_step_entrypoint_exits_1_with_one_line_on_a_cpu_machine():
    """This machine has no GPU: a step that asked for one stops before its executor runs."""
    done = subprocess.run([sys.executable, "-m", "components.kfp_entrypoint", "--executor_class_path",
                           "tests.kfp_steps.TouchObjectStoreExecutor", "--json_serialized_invocation_args", "{}"],
                          cwd=REPO, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/tmp",
                                         gpu_check.REQUIRE_GPU_ENV: "1", "TF_CPP_MIN_LOG_LEVEL": "3"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors and "TensorFlow sees none" in errors[0]
    assert "Traceback" not in done.stderr


def test_compiled_gpu_steps_carry_the_request():
    from pipelines.kubeflow.compiler import compile_pipeline
    from pipelines.tasks import load_task

    compiled = compile_pipeline(load_task("census"), image="i", pipeline_root="s3://b/r",
                                registry_uri="http://mlflow:5000", data_version={"md5": "x.dir"})
    executors = compiled.pipeline_spec["deploymentSpec"]["executors"]
    requested = {label: {e["name"]: e["value"] for e in ex["container"].get("env", [])}.get(gpu_check.REQUIRE_GPU_ENV)
                 for label, ex in executors.items()}
    assert requested["Trainer_executor"] == "1" and requested["Tuner_executor"] == "1"
    assert requested["ExampleGen_executor"] is None
