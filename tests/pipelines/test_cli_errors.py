"""Every command's errors are one line naming the fix (issue 25, item 5): paths a file is in the way
of, files that are not what a command reads, and any unexpected exception, which becomes one line
with the path of its traceback (`--verbose` prints the traceback too)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pipelines import cli
from tests.conftest import REPO
from tests.heart_data import synthetic_heart_rows, write_heart_csv


def _lines(err: str):
    return [line for line in err.splitlines() if line.strip()]


def test_a_home_under_a_regular_file_is_one_line(tmp_path, capsys):
    write_heart_csv(tmp_path / "data" / "heart" / "heart.csv", synthetic_heart_rows(40))
    (tmp_path / "afile").write_text("x")
    status = cli.main(["run", "heart", "--home", str(tmp_path / "afile" / "home"), "--data-root", str(tmp_path / "data")])
    (line,) = _lines(capsys.readouterr().err)
    assert status == 1 and line.startswith(f"error: cannot use {tmp_path / 'afile'}") and "Not a directory" in line
    assert "--home" in line


def test_a_binary_file_given_to_kfp_run_is_one_line(tmp_path, capsys):
    package = tmp_path / "model.bin"
    package.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00" * 20)
    status = cli.main(["kfp-run", str(package), "--pipeline-root", str(tmp_path / "root")])
    (line,) = _lines(capsys.readouterr().err)
    assert status == 1 and "is not a pipeline package (not UTF-8 text)" in line and "mlops compile" in line


@pytest.fixture
def registered_home(tmp_path, no_server):
    from tests.components.test_batch_inference import save_census_model
    from tests.pipelines.test_cli_predict import register

    home = tmp_path / "home"
    home.mkdir()
    register(home, "census", save_census_model(tmp_path / "model"))
    return home


def _models_raise(monkeypatch, exc):
    from components.registry import Registry

    def models(self):
        raise exc

    monkeypatch.setattr(Registry, "models", models)


def test_an_unexpected_exception_is_one_line_with_its_log(registered_home, capsys, monkeypatch):
    home = registered_home
    _models_raise(monkeypatch, RuntimeError("the store answered something nobody expected\nsecond line"))
    status = cli.main(["registry", "list", "--home", str(home)])
    (line,) = _lines(capsys.readouterr().err)
    assert status == 1
    assert line.startswith("error: RuntimeError: the store answered something nobody expected (unexpected: traceback in ")
    assert line.endswith("; --verbose shows it)")
    log = re.search(r"traceback in (\S+?);", line).group(1)
    assert log.startswith(str(home / "logs" / "cli"))
    text = open(log).read()
    assert "Traceback (most recent call last)" in text and "second line" in text and "registry list" in text

    status = cli.main(["--verbose", "registry", "list", "--home", str(home)])
    err = capsys.readouterr().err
    assert status == 1 and "Traceback (most recent call last)" in err and "in models" in err
    assert _lines(err)[-1].startswith("error: RuntimeError:")


def test_a_full_disk_reported_by_a_library_is_named(registered_home, capsys, monkeypatch):
    import sqlite3

    _models_raise(monkeypatch, sqlite3.OperationalError("database or disk is full"))
    status = cli.main(["registry", "list", "--home", str(registered_home)])
    (line,) = _lines(capsys.readouterr().err)
    assert status == 1 and line.startswith("error: the disk is full (OperationalError: database or disk is full)")
    assert "free some space" in line and "traceback in" in line


def test_the_console_script_path_prints_no_traceback(tmp_path):
    """A real process: `python -m pipelines.cli` on a file that is not a package."""
    package = tmp_path / "bad.yaml"
    package.write_bytes(b"\xff\xfe\xfa")
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "kfp-run", str(package), "--pipeline-root",
                           str(tmp_path / "r")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert _lines(done.stderr)[-1].startswith("error: ")
