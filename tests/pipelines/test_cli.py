"""The `mlops` command line: help for every command, usage errors, unknown tasks, missing data, and
what a user sees (no library noise, one-line errors)."""
import os
import subprocess
import sys

from pipelines import cli
from tests.conftest import REPO

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


def test_tasks_lists_census_and_the_profiles(capsys):
    assert cli.main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert "census" in out and "xception-lite" in out and "semi" in out


# ---- every command answers --help; bad options are usage errors


COMMANDS = [
    ["run"], ["tasks"], ["data", "status"], ["data", "import"], ["registry", "list"], ["registry", "show"],
    ["registry", "promote"], ["registry", "rollback"], ["registry", "history"], ["registry", "path"],
    ["compile"], ["submit"], ["runs"], ["slices"], ["report"],
]


def test_every_command_has_help(capsys):
    import pytest

    for command in COMMANDS:
        with pytest.raises(SystemExit) as exited:
            cli.main(command + ["--help"])
        assert exited.value.code == 0, command
        assert "usage: mlops " + " ".join(command) in capsys.readouterr().out


def test_numeric_options_must_be_positive_integers(tmp_path, capsys):
    import pytest

    for value in ("0", "-5", "x"):
        with pytest.raises(SystemExit) as exited:
            cli.main(["run", "census", "--train-steps", value, "--home", str(tmp_path)])
        assert exited.value.code == 2
        assert "--train-steps: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["runs", "--limit", "-1"])
    assert "expected an integer >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["predict", "census", "--input", "a.csv", "--output", "b.csv", "--batch-size", "0"])
    assert "--batch-size: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["registry", "manifest", "census@production", "--gpu", "-1"])
    assert "--gpu: expected an integer >= 0" in capsys.readouterr().err


def test_commands_print_no_tensorflow_start_up_lines():
    """`mlops tasks` imports every task (TensorFlow included): stderr stays empty."""
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "tasks"], capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")})
    assert out.returncode == 0 and "census" in out.stdout
    assert out.stderr == "", out.stderr
    verbose = subprocess.run([sys.executable, "-m", "pipelines.cli", "--verbose", "tasks"], capture_output=True,
                             text=True, env={k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")})
    assert "tensorflow" in verbose.stderr  # --verbose brings the library's own lines back


def test_a_dead_registry_server_is_one_line_within_seconds(tmp_path):
    import time

    from tests.conftest import synthetic_census_rows, write_census_csv

    write_census_csv(tmp_path / "data" / "census" / "adult.csv", synthetic_census_rows(50))
    env = {**os.environ, "MLFLOW_TRACKING_URI": "http://127.0.0.1:9"}
    home = tmp_path / "home"
    for args in (["registry", "list"], ["run", "census", "--data-root", str(tmp_path / "data"), "--home", str(home)]):
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True,
                             env=env, cwd=tmp_path)
        assert time.monotonic() - started < 30, args
        assert out.returncode == 1, args
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "registry at http://127.0.0.1:9 does not answer" in lines[0], out.stderr
    assert not (home / "serving").exists() and not (home / "metadata.sqlite").exists()  # nothing ran


def _read_only_copy(source, target):
    """A read-only bind mount of `source` at `target`, or None where mounting is not allowed."""
    target.mkdir(parents=True)
    done = subprocess.run(["mount", "--bind", str(source), str(target)], capture_output=True)
    if done.returncode != 0:
        return None
    if subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True).returncode != 0:
        subprocess.run(["umount", str(target)])
        return None
    return target


def test_a_read_only_home_is_one_line_naming_it(tmp_path):
    import pytest

    home = tmp_path / "home"
    (home / "locks").mkdir(parents=True)
    ro = _read_only_copy(home, tmp_path / "ro")
    if ro is None:
        pytest.skip("cannot make a read-only mount here (needs mount permission)")
    try:
        data = tmp_path / "data" / "heart"
        data.mkdir(parents=True)
        (data / "heart.csv").write_text("age\n1\n")
        out = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "heart", "--home", str(ro),
                              "--data-root", str(tmp_path / "data")], capture_output=True, text=True)
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert out.returncode == 1 and len(lines) == 1, out.stderr
        assert str(ro) in lines[0] and "Read-only file system" in lines[0] and "--home" in lines[0]
    finally:
        subprocess.run(["umount", str(ro)])
