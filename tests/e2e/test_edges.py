"""The edges of issue 25 with real processes on a tiny heart project (git + DVC, this repository's
code, 300 synthetic rows, one registered version): `mlops registry reproduce` stopped by SIGTERM or
Ctrl-C stops its child run and removes its worktree; reproduce, promote and manifest print no
library noise and reproduce's table does not wrap when piped; a chart path that cannot be written is
one line."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, dvc_exe, make_dvc_project, run
from tests.heart_data import synthetic_heart_rows, write_heart_csv
from tests.pipelines.test_reproduce import _mlops, _python_env

pytestmark = pytest.mark.e2e

BUDGET = ["--train-steps", "120", "--eval-steps", "2"]
NOISE = ("Downloading artifacts", "tf_record_iterator", "Traceback", "WARNING", "Warning:")


def heart_code_project(root: Path) -> Path:
    """A git + DVC project with this repository's code and tiny heart data, committed and pushed."""
    project = make_dvc_project(root)
    for name in ("pipelines", "components", "models"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    (project / ".gitignore").write_text("/.mlops/\n__pycache__/\n/remote/\n")
    write_heart_csv(project / "data" / "heart" / "heart.csv", synthetic_heart_rows(300, seed=4))
    run([dvc_exe(), "add", "-q", "data"], project)
    run([dvc_exe(), "push", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "heart code and data"], project)
    return project


@pytest.fixture(scope="module")
def heart_project(tmp_path_factory):
    project = heart_code_project(tmp_path_factory.mktemp("edges") / "project")
    done = _mlops(project, "run", "heart", "--seed", "3", *BUDGET)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered as heart v1" in done.stdout
    return project


def _children(pid: int):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_reproduce_stops_its_run_and_removes_the_worktree(heart_project, tmp_path, sig):
    project = heart_project
    log = tmp_path / "reproduce.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "registry", "reproduce", "heart:1"],
                                cwd=project, env=_python_env(project), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        children = []
        while time.monotonic() < deadline:
            text = log.read_text()
            children = _children(proc.pid)
            if "running the pipeline with that code" in text and "▶" in text and children:
                break
            assert proc.poll() is None, text
            time.sleep(0.3)
        else:
            raise AssertionError(f"the reproduction run never started:\n{log.read_text()}")
        proc.send_signal(sig)
        status = proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert status == 128 + sig, text
    assert "interrupted" in text and "worktree removed" in text
    assert children and not any(_alive(pid) for pid in children), "the child `mlops run` outlived reproduce"
    worktree = next(line for line in text.splitlines() if line.startswith("worktree ")).split()[1]
    assert not Path(worktree).exists() and not Path(worktree).parent.exists()
    assert len(run(["git", "worktree", "list"], project).stdout.splitlines()) == 1


def test_reproduce_promote_and_manifest_are_quiet_and_the_table_does_not_wrap(heart_project, tmp_path):
    project = heart_project
    done = _mlops(project, "registry", "reproduce", "heart:1")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "reproduced" in done.stdout
    for noise in NOISE:
        assert noise not in done.stdout + done.stderr, noise
    rows = [line for line in done.stdout.splitlines() if line.startswith("│ Overall")]
    assert rows and all(len(line.split("│")) == 9 for line in rows)  # one line per row, every column on it
    assert any("│ binary_accuracy " in line for line in rows) or any("│ auc " in line for line in rows)
    for args in (["registry", "promote", "heart", "1"],
                 ["registry", "manifest", "heart@production", "--output", str(tmp_path / "m"), "--storage-uri",
                  "s3://bucket/heart/1"],
                 ["registry", "card", "heart:1"]):
        done = _mlops(project, *args)
        assert done.returncode == 0, done.stdout + done.stderr
        for noise in NOISE:
            assert noise not in done.stdout + done.stderr, (args, noise)


def test_a_chart_that_cannot_be_written_is_one_line(heart_project):
    for option, name in (("--png", "x.png"), ("--html", "x.html")):
        done = _mlops(heart_project, "slices", "heart", option, f"/nonexistent/{name}")
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode == 1 and len(lines) == 1, done.stderr
        assert lines[0].startswith(f"error: cannot write /nonexistent/{name}") and option in lines[0]


@pytest.fixture
def small_disk(tmp_path):
    """A 700 KB tmpfs: room for the metadata store and ExampleGen, not for Transform (root only)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def test_a_full_disk_is_one_line_and_runs_calls_it_failed(small_disk, tmp_path):
    write_heart_csv(tmp_path / "data" / "heart" / "heart.csv", synthetic_heart_rows(40, seed=1))
    home = small_disk / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "TF_CPP_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "heart", "--home", str(home), "--data-root",
                           str(tmp_path / "data"), "--train-steps", "20", "--eval-steps", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 1, done.stdout + done.stderr
    failed = [line for line in done.stdout.splitlines() if "run failed" in line]
    assert failed == [f"✗ run failed: cannot write {home}: No space left on device; free some space, or pass a "
                      f"--home on another disk"], done.stdout
    assert "ResourceExhaustedError" not in done.stdout + done.stderr
    runs = subprocess.run([sys.executable, "-m", "pipelines.cli", "runs", "heart", "--home", str(home)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert runs.returncode == 0 and "was interrupted" not in runs.stdout, runs.stdout + runs.stderr
    assert "✓✗" in runs.stdout  # the failed component is a failure
