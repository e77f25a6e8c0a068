"""`mlops registry reproduce`: a registered version rebuilt from its lineage in a temporary git worktree
(code at its commit, data at its DVC version, recorded hyperparameters and seed), compared per slice,
with the user's checkout untouched; plus the run identity, the `mlops run` options it relies on and
the refusals (dirty versions, unknown commits, data the remote lacks)."""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components import registry as reg
from components.registry.versions import VersionInfo
from pipelines import reproduce, run_identity
from pipelines.cli_run import with_run_options
from pipelines.config import import_object
from pipelines.tasks import KNOWN_TASKS, load_task
from tests.conftest import REPO, dvc_exe, make_dvc_project, run


def _run_args(**kwargs):
    values = dict(seed=None, deterministic=False, hparams_json=None, no_tuner=False)
    values.update(kwargs)
    return argparse.Namespace(**values)


def _version(tags, name="census", number=1):
    return VersionInfo(name=name, version=number, source="s", status="READY", created_ms=0, run_id=None,
                       description=None, tags=tags)


def _clean_tags(commit="0" * 40, **extra):
    tags = {reg.TAG_GIT_COMMIT: commit, reg.TAG_GIT_DIRTY: "false", reg.TAG_DATA_MD5: "abc.dir",
            reg.TAG_DATA_DIRTY: "false", reg.TAG_HYPERPARAMETERS: json.dumps({"learning_rate": 0.001}),
            reg.TAG_SEED: "7", reg.TAG_DETERMINISTIC: "false",
            reg.TAG_SLICE_METRICS: json.dumps({"Overall": {"auc": 0.9}})}
    tags.update(extra)
    return tags


# ---- the run identity and `mlops run` options


def test_config_hash_is_stable_and_follows_the_effective_config():
    task = load_task("census")
    assert run_identity.config_hash(task) == run_identity.config_hash(load_task("census"))
    assert json.loads(run_identity.config_json(task))["train_steps"] == task.train_steps
    assert run_identity.config_hash(task.with_overrides(train_steps=5)) != run_identity.config_hash(task)
    # Neither the reproduce tolerance, the importer nor the Beam runner changes what a run does.
    tolerant = dataclasses.replace(task, reproduce_tolerance={"auc": 0.5}, importer=None,
                                   beam_pipeline_args=("--runner=FlinkRunner",))
    assert run_identity.config_hash(tolerant) == run_identity.config_hash(task)
    seeded = with_run_options(task, _run_args(seed=3))
    changes = run_identity.config_changes(json.loads(run_identity.config_json(task)),
                                          json.loads(run_identity.config_json(seeded)))
    assert changes == [("custom_config.seed", None, 3)]


def test_run_options_seed_determinism_imported_hyperparameters_and_no_tuner():
    heart = load_task("heart")  # custom_config["hparams"] = {"batch_size": 32}
    task = with_run_options(heart, _run_args(seed=0, deterministic=True, hparams_json='{"learning_rate": 0.01}'))
    assert task.custom_config["seed"] == 0 and task.custom_config["deterministic"] is True
    # merged over the task's own hparams, as the Tuner's best values are
    assert task.custom_config["hparams"] == {"batch_size": 32, "learning_rate": 0.01}
    census = with_run_options(load_task("census"), _run_args(no_tuner=True))
    assert census.tuner_fn is None and load_task("census").tuner_fn
    assert with_run_options(heart, _run_args()) == heart


def test_changes_since_name_each_part_that_changed():
    task = load_task("census")
    before = run_identity.RunIdentity("dvc:aaa.dir", "c1" * 20, "", run_identity.config_hash(task),
                                      run_identity.config_json(task))
    assert before.changes_since(before) == []
    other = task.with_overrides(train_steps=7)
    after = dataclasses.replace(before, data="dvc:bbb.dir", commit="c2" * 20,
                                config_hash=run_identity.config_hash(other), config=run_identity.config_json(other))
    lines = after.changes_since(before)
    assert lines[0] == "data changed: dvc md5 aaa.dir -> dvc md5 bbb.dir"
    assert lines[1].startswith("code changed: commit c1c1") and lines[2].startswith("config changed: hash")
    assert "train_steps: 3000 -> 7" in lines[2]
    assert run_identity.RunIdentity.from_properties(after.properties()) == after


# ---- every task: a tolerance for its threshold metric; the seed reaches the registry


@pytest.mark.parametrize("name", sorted(KNOWN_TASKS))
def test_every_task_has_a_reproduce_tolerance_for_its_gating_metric(name):
    task = load_task(name)
    threshold = task.eval.threshold_metric.rpartition(".")[2]
    # TFMA names: AUC -> auc, BinaryAccuracy -> binary_accuracy, SpearmanCorrelation -> spearman
    names = {"AUC": "auc", "BinaryAccuracy": "binary_accuracy", "SpearmanCorrelation": "spearman",
             "SparseCategoricalAccuracy": "sparse_categorical_accuracy"}
    assert names[threshold] in task.reproduce_tolerance
    assert all(0 < v < 0.1 for v in task.reproduce_tolerance.values())


@pytest.mark.parametrize("name", sorted(KNOWN_TASKS))
def test_every_task_trains_through_the_skeleton_that_records_the_seed(name):
    """The Registrar tags `seed`/`deterministic` from training_info.json, which the one trainer
    skeleton writes (models/common/trainer_base.fit_and_export): every run_fn must go through it,
    directly or through a shared model's fit_and_export (models/common/text: classifier, siamese)."""
    import re

    run_fn = import_object(load_task(name).run_fn)
    module = sys.modules[run_fn.__module__]
    source = inspect.getsource(module)
    for shared in re.findall(r"(\w+)\.fit_and_export\(", source):
        if shared != "trainer_base":
            source += inspect.getsource(getattr(module, shared))
    assert "trainer_base.fit_and_export(" in source


# ---- comparison and refusals (no pipeline)


def test_verdict_is_on_overall_metrics_within_the_task_tolerance():
    registered = {"Overall": {"auc": 0.9, "example_count": 100.0, "recall": None},
                  "gender=Female": {"auc": 0.8}, "_truncated": True}
    close = {"Overall": {"auc": 0.9025, "example_count": 100.0, "recall": float("nan")}, "gender=Female": {"auc": 0.7}}
    rows = reproduce.compare(registered, close, {"auc": 0.003})
    assert [(r.slice, r.metric) for r in rows][0] == ("Overall", "auc")
    result = reproduce.Result(plan=None, rows=rows, home=Path("."), run_id="r", seconds=0)
    assert result.reproduced  # the Female slice is outside, but slices do not gate
    assert not next(r for r in rows if r.slice == "gender=Female").ok
    far = {"Overall": {"auc": 0.9035, "example_count": 100.0, "recall": float("nan")}}
    assert not reproduce.Result(None, reproduce.compare(registered, far, {"auc": 0.003}), Path("."), "r", 0).reproduced
    fewer = {"Overall": {"auc": 0.9, "example_count": 99.0, "recall": float("nan")}}
    assert not reproduce.Result(None, reproduce.compare(registered, fewer, {}), Path("."), "r", 0).reproduced


def test_a_dirty_version_is_refused_without_allow_dirty(tmp_path):
    for tags, word in ((_clean_tags(**{reg.TAG_GIT_DIRTY: "true"}), "dirty tree"),
                       (_clean_tags(**{reg.TAG_DATA_DIRTY: "true"}), "did not match data.dvc"),
                       (_clean_tags(**{reg.TAG_DATA_MD5: "untracked"}), "no DVC version")):
        with pytest.raises(reproduce.ReproduceError) as exc:
            reproduce.reproduce(_version(tags), home=tmp_path, cwd=tmp_path)
        assert word in str(exc.value) and "--allow-dirty" in str(exc.value) and "\n" not in str(exc.value)
    plan = reproduce.plan_for(_version(_clean_tags()))
    assert plan.dirty == [] and plan.seed == 7 and plan.hparams == {"learning_rate": 0.001}


def test_a_commit_missing_from_the_repository_is_a_one_line_error(tmp_path):
    repo = make_dvc_project(tmp_path / "p")
    (repo / "f").write_text("x")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "one"], repo)
    missing = "1234567" * 5 + "89abc"
    with pytest.raises(reproduce.ReproduceError) as exc:
        reproduce.reproduce(_version(_clean_tags(commit=missing)), home=tmp_path / "h", cwd=repo)
    assert str(exc.value).startswith(f"commit {missing} (census v1's git_commit) is not in the repository")


def test_data_the_remote_lacks_is_a_one_line_error_and_the_worktree_goes(tmp_path):
    repo = make_dvc_project(tmp_path / "p")
    (repo / "data" / "census").mkdir(parents=True)
    (repo / "data" / "census" / "adult.csv").write_text("a,b\n1,2\n")
    run([dvc_exe(), "add", "-q", "data"], repo)  # never pushed
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "data"], repo)
    commit = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    md5 = reproduce.dv.tracked_md5(repo)
    plan = reproduce.plan_for(_version(_clean_tags(commit=commit, **{reg.TAG_DATA_MD5: md5})))
    with reproduce.worktree(repo, commit, "t") as tree:
        with pytest.raises(reproduce.ReproduceError) as exc:
            reproduce.restore_data(tree, plan, repo, allow_dirty=False)
    assert str(exc.value).startswith(f"the DVC remote lacks data version {md5} (census v1's data)")
    assert not tree.exists()
    assert len(run(["git", "worktree", "list"], repo).stdout.splitlines()) == 1


# ---- helpers for the end-to-end reproduce tests (tests/e2e/test_edges.py: one heart project)


def _python_env(project: Path) -> dict:
    # As a user's shell: no registry, home or data overrides, and TensorFlow's log level left to the CLI.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLOPS_HOME", "MLOPS_DATA", "TF_CPP_MIN_LOG_LEVEL")}
    env["PYTHONPATH"] = str(project)
    return env


def _mlops(project: Path, *args: str) -> subprocess.CompletedProcess:
    """`mlops ...` as a user of the project runs it: the project's own code, from its checkout."""
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=project, env=_python_env(project),
                          capture_output=True, text=True)


def _checkout_state(project: Path) -> dict:
    def git(*args):
        return run(["git", *args], project).stdout

    data = sorted((str(p.relative_to(project)), hashlib.sha256(p.read_bytes()).hexdigest())
                  for p in (project / "data").rglob("*") if p.is_file())
    return {"head": git("rev-parse", "HEAD"), "branch": git("symbolic-ref", "HEAD"), "status": git("status", "--porcelain"),
            "worktrees": git("worktree", "list", "--porcelain"), "data": data, "data.dvc": (project / "data.dvc").read_text()}


def code_project(root: Path, write_data) -> Path:
    """A git + DVC project holding this repository's code (pipelines/, components/, models/) and the
    data `write_data(project)` writes under data/, committed: what a user's checkout looks like."""
    project = make_dvc_project(root)
    for name in ("pipelines", "components", "models"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    (project / ".gitignore").write_text("/.mlops/\n__pycache__/\n/remote/\n")
    write_data(project)
    run([dvc_exe(), "add", "-q", "data"], project)
    run([dvc_exe(), "push", "-q"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "v1 code and data"], project)
    return project


def test_the_comparison_table_does_not_wrap_when_piped(capsys):
    """Piped output has no terminal width; rich would assume 80 columns and fold metric names."""
    from pipelines import cli_reproduce

    plan = reproduce.Plan(task="heart", version=1, commit="c" * 40, data_md5="x", hparams={}, seed=1,
                          deterministic=False)
    metrics = ("auc", "binary_accuracy", "weighted_example_count", "calibration", "precision", "recall")
    rows = [reproduce.Row("Overall", m, 0.812345, 0.812345, 0.01) for m in metrics]
    rows.append(reproduce.Row("thal=reversible and a long slice name", "auc", 0.8, 0.79, 0.01))
    cli_reproduce.print_result(reproduce.Result(plan, rows, Path("/h"), "run", 1.0))
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│ ")]
    assert len(lines) == len(rows)  # one line per row
    assert all(len(line.split("│")) == 9 for line in lines)
    assert any("│ weighted_example_count │" in line for line in lines)
    assert any("thal=reversible and a long slice name" in line for line in lines)
