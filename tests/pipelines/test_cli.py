"""The `mlops` command line: help, unknown tasks, missing data."""
import subprocess
import sys

from pipelines import cli

MLOPS = [sys.executable, "-m", "pipelines.cli"]


def test_help_lists_the_commands():
    out = subprocess.run(MLOPS + ["--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for command in ("run", "data", "tasks"):
        assert command in out.stdout


def test_unknown_task_is_a_clear_error_listing_known_tasks(capsys):
    status = cli.main(["run", "no-such-task"])
    err = capsys.readouterr().err
    assert status == 2
    assert "unknown task 'no-such-task'" in err
    assert "census" in err


def test_run_without_data_says_how_to_get_it(tmp_path, capsys):
    status = cli.main(["run", "census", "--data-root", str(tmp_path / "nothing"), "--home", str(tmp_path / "h")])
    err = capsys.readouterr().err
    assert status == 1
    assert "dvc pull" in err


def test_tasks_lists_census(capsys):
    assert cli.main(["tasks"]) == 0
    assert "census" in capsys.readouterr().out
