"""The local runner: one run per task and home, and a signal ends a run cleanly (recorded as
canceled, lock released, handler restored). SIGKILL with real processes: tests/e2e/test_faults.py."""
from __future__ import annotations

import os

import pytest

from pipelines import cli, nodes
from tests.conftest import CENSUS_BUDGET, synthetic_census_rows
from tests.csv_data import _csv_lines, _write_lines
from tests.records import latest_run


def _latest(home):
    return latest_run(home, nodes.pipeline_name("census"))


@pytest.mark.e2e
def test_sigterm_cancels_the_running_component_and_exits_143(tmp_path, capsys, monkeypatch):
    """SIGTERM arrives while an executor runs, inside code that swallows Exception (as AutoGraph
    does): the run still stops, the execution is recorded as canceled, the lock is released."""
    import signal
    import time

    from components import example_gen
    from pipelines import local_runner
    from pipelines.runs.local import LocalSource

    def interrupted_do(self, input_dict, output_dict, exec_properties):
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            time.sleep(60)  # the handler raises here
        except Exception:
            pass
        raise AssertionError("SIGTERM did not interrupt the executor")

    monkeypatch.setattr(example_gen.VersionedCsvExecutor, "Do", interrupted_do)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data_root = tmp_path / "data"
    _write_lines(data_root / "census" / "adult.csv", _csv_lines(synthetic_census_rows(50, seed=2)))
    home = tmp_path / "home"

    handler_before = signal.getsignal(signal.SIGTERM)
    started = time.monotonic()
    status = cli.main(["run", "census", "--home", str(home), "--data-root", str(data_root)] + CENSUS_BUDGET)
    out = capsys.readouterr().out

    assert status == 128 + signal.SIGTERM and time.monotonic() - started < 50
    assert "run interrupted by SIGTERM" in out and "the run was interrupted at ExampleGen" in out
    record = _latest(home)
    assert record.nodes[nodes.EXAMPLE_GEN].state == "canceled"
    # Only the roots had started: ExampleGen and the Baseline (which needs no input).
    assert set(record.nodes) <= {nodes.EXAMPLE_GEN, nodes.BASELINE}
    layout = local_runner.LocalLayout(home)
    rows, _ = LocalSource(layout).list_runs("census")
    assert rows["census"][0].interrupted == [nodes.EXAMPLE_GEN]
    assert local_runner.lock_holder(layout, "census") is None
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the run's handler is gone


def test_library_output_goes_to_the_log_and_progress_to_the_terminal(tmp_path, capsys):
    """During a run, Python prints (keras_tuner's summaries) and fd-2 writes (TensorFlow's C++ log)
    land in the run's log; the progress callback still prints on the terminal."""
    from pipelines import local_runner

    log = tmp_path / "run.log"
    events = []

    def progress(node, event):
        events.append((node, event))
        print(f"progress {node} {event}")

    forward = local_runner._on_terminal(progress, __import__("sys").stdout)
    with local_runner._output_into(log):
        print("Search space summary")
        os.write(2, b"E external/local_xla cuFFT\n")
        forward("Trainer", "running")
        print("Results summary")
    out, err = capsys.readouterr()
    assert out == "progress Trainer running\n" and "cuFFT" not in err
    text = log.read_text()
    assert "Search space summary" in text and "Results summary" in text and "cuFFT" in text
    assert "progress" not in text and events == [("Trainer", "running")]
