"""Tiny TFX executors for step-entrypoint tests (imported by `python -m components.kfp_entrypoint`)."""
import os

from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio

FAIL_ENV = "MLOPS_TEST_STEP_FAILS"


class TouchObjectStoreExecutor(base_executor.BaseExecutor):
    """Writes and reads back one file under its output URI (s3:// in the tests); fails when
    FAIL_ENV is set."""

    def Do(self, input_dict, output_dict, exec_properties):
        [out] = output_dict["out"]
        fileio.makedirs(out.uri)
        with fileio.open(f"{out.uri}/value.txt", "w") as f:
            f.write("written")
        assert fileio.exists(f"{out.uri}/value.txt")
        if os.environ.get(FAIL_ENV):
            raise ValueError("this step was asked to fail")
