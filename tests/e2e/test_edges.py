"""One tiny heart project (git + DVC, this repository's code, 300 synthetic rows) shared by the
tests that need a real registered version and a checkout that moves on: `--if-changed` skips an
unchanged run and runs when the data changes; `mlops registry reproduce` rebuilds v1 from its lineage
after the checkout moved on (newer data, broken code) and leaves the checkout alone; reproduce stopped
by SIGTERM or Ctrl-C stops its child run and removes its worktree; reproduce, promote and manifest
print no library noise and reproduce's table does not wrap when piped; a chart path that cannot be
written is one line. Tests run in file order on the one project (the module's scenario)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components import data_version
from components import registry as reg
from pipelines import nodes
from tests.conftest import HEART_BUDGET, HEART_ROWS, HEART_SEED, REPO, dvc_exe, run
from tests.heart_data import synthetic_heart_rows, write_heart_csv
from tests.pipelines.test_reproduce import _checkout_state, _mlops, _python_env, code_project
from tests.records import latest_run

pytestmark = pytest.mark.e2e

NOISE = ("Downloading artifacts", "tf_record_iterator", "Traceback", "WARNING", "Warning:")
CSV = ("data", "heart", "heart.csv")
RUN = ["run", "heart", "--if-changed", "--seed", "3"] + HEART_BUDGET


@pytest.fixture(scope="module")
def heart_project(tmp_path_factory):
    """The project after its first `mlops run heart --if-changed --seed 3`: heart v1 registered.
    Returns (project, that run's output, its commit, its data md5)."""
    project = code_project(tmp_path_factory.mktemp("edges") / "project", lambda p: write_heart_csv(
        p.joinpath(*CSV), synthetic_heart_rows(HEART_ROWS, seed=HEART_SEED)))
    commit = run(["git", "rev-parse", "HEAD"], project).stdout.strip()
    md5 = data_version.tracked_md5(project)
    done = _mlops(project, *RUN)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered as heart v1" in done.stdout
    return project, done.stdout, commit, md5


def _latest(project: Path):
    return latest_run(project / ".mlops", nodes.pipeline_name("heart"))


def test_if_changed_skips_an_unchanged_run_and_runs_when_the_data_version_changes(heart_project):
    """--if-changed compares the data version, code commit and effective config with the newest
    successful run in the home (the project's own committed code, so the code version is that commit)."""
    project, first, _, old_md5 = heart_project
    assert "no successful run of heart" in first
    run_id = _latest(project).run_id

    again = _mlops(project, *RUN)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"nothing changed since run {run_id}: dvc md5 {old_md5}" in again.stdout
    assert "not running (--if-changed)" in again.stdout and "▶" not in again.stdout
    assert _latest(project).run_id == run_id  # no new run

    # New data, recorded as a new DVC version: the data is what changed, and the task runs.
    write_heart_csv(project.joinpath(*CSV), synthetic_heart_rows(HEART_ROWS + 20, seed=HEART_SEED + 1))
    run([dvc_exe(), "add", "-q", "data"], project)
    new_md5 = data_version.tracked_md5(project)
    changed = _mlops(project, *RUN)
    assert changed.returncode in (0, 3), changed.stdout + changed.stderr
    assert f"data changed: dvc md5 {old_md5} -> dvc md5 {new_md5}" in changed.stdout
    # Only the data changed (data.dvc is DVC's file, not code), so neither code nor config is named.
    assert "code changed" not in changed.stdout and "config changed" not in changed.stdout
    assert _latest(project).run_id != run_id


def test_reproduce_rebuilds_v1_from_its_lineage_after_the_checkout_moved_on(heart_project, tmp_path):
    project, _, first_commit, first_md5 = heart_project
    home = project / ".mlops"
    tags = reg.Registry.open(home).version("heart", 1).tags
    assert (tags["git_commit"], tags["git_dirty"], tags["dvc_data_md5"]) == (first_commit, "false", first_md5)
    assert (tags["seed"], tags["deterministic"]) == ("3", "false")  # --seed reaches the registry

    # Move the checkout on: newer data (dvc add + push) and a code change that breaks heart training.
    write_heart_csv(project.joinpath(*CSV), synthetic_heart_rows(HEART_ROWS + 40, seed=HEART_SEED + 2))
    run([dvc_exe(), "add", "-q", "data"], project)
    run([dvc_exe(), "push", "-q"], project)
    trainer = project / "models" / "heart" / "trainer.py"
    text = trainer.read_text()
    assert "def run_fn(fn_args" in text
    trainer.write_text(text.replace(
        "def run_fn(fn_args", "def run_fn(fn_args, *_):\n    raise RuntimeError('newer heart code')\n\n\ndef _old(fn_args", 1))
    run(["git", "commit", "-qam", "newer data and code"], project)
    (project / "notes.txt").write_text("uncommitted work\n")  # the user's working files stay as they are
    before = _checkout_state(project)
    versions = [v.version for v in reg.Registry.open(home).versions("heart")]

    done = _mlops(project, "registry", "reproduce", "heart:1")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert f"commit {first_commit[:12]}, data md5 {first_md5}, seed 3" in out
    assert "budget from run" in out
    assert "reproduced: heart v1, every overall metric within its tolerance" in out
    assert "not reproduced" not in out and "note:" not in out  # same config, training and data as the original
    for noise in NOISE:
        assert noise not in out + done.stderr, noise
    rows = [line for line in out.splitlines() if line.startswith("│ Overall")]
    assert rows and all(len(line.split("│")) == 9 for line in rows)  # one line per row, every column on it
    assert _checkout_state(project) == before
    worktree = next(line for line in out.splitlines() if line.startswith("worktree ")).split()[1]
    assert not Path(worktree).exists()
    # The rebuild went to its own home and registry; the user's registry is as it was.
    assert [v.version for v in reg.Registry.open(home).versions("heart")] == versions
    assert (home / "reproduce" / "heart-v1" / "mlflow.db").is_file()

    for args in (["registry", "promote", "heart", "1"],
                 ["registry", "manifest", "heart@production", "--output", str(tmp_path / "m"), "--storage-uri",
                  "s3://bucket/heart/1"],
                 ["registry", "card", "heart:1"]):
        quiet = _mlops(project, *args)
        assert quiet.returncode == 0, quiet.stdout + quiet.stderr
        for noise in NOISE:
            assert noise not in quiet.stdout + quiet.stderr, (args, noise)

    # A version registered from a dirty tree is refused without --allow-dirty, in one line.
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=reg.default_uri(home))
    client.set_model_version_tag("heart", "1", "git_dirty", "true")
    try:
        refused = _mlops(project, "registry", "reproduce", "heart:1")
    finally:
        client.set_model_version_tag("heart", "1", "git_dirty", "false")
    assert refused.returncode == 1
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "registered from a dirty tree" in lines[0] and "--allow-dirty" in lines[0]
    assert _checkout_state(project) == before


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
    project = heart_project[0]
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


def test_a_chart_that_cannot_be_written_is_one_line(heart_project):
    for option, name in (("--png", "x.png"), ("--html", "x.html")):
        done = _mlops(heart_project[0], "slices", "heart", option, f"/nonexistent/{name}")
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
