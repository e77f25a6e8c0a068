"""Rebuild a registered version from its lineage and check that it lands where the registered one did.

From the version's tags alone: the code at its `git_commit`, checked out in a temporary `git
worktree` of the checkout (the user's HEAD, branch and working files are never touched; the
worktree is removed afterwards); the data at its `dvc_data_md5`, restored inside the worktree from
the DVC remote; the recorded `hyperparameters` imported instead of a Tuner search; the recorded
`seed` (and `deterministic`). The profile and training budget come from the original run's identity
(pipelines.run_identity, found through the `mlmd.store` and `pipeline_run_id` tags), else from the
version's training_info.json. The pipeline runs with the worktree's own code (`python -m
pipelines.cli run` with cwd and PYTHONPATH = the worktree) into a separate home,
`<home>/reproduce/<task>-v<N>/`, whose embedded registry it writes (never the user's). Then every
metric of every slice is compared with the registered `slice_metrics`; the verdict is on the
OVERALL metrics, each within the task's `reproduce_tolerance`.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping, Optional

from components import data_version as dv
from components import registry as reg
from pipelines import interrupts, lineage, nodes, run_identity

# Tolerance of metrics a task's reproduce_tolerance does not name.
DEFAULT_TOLERANCE = 0.01
# The eval data's own numbers: the same data gives the same values (only rounding may differ).
EXACT_METRICS = ("example_count", "weighted_example_count", "mean_label")
EXACT_TOLERANCE = 1e-6
OVERALL = "Overall"
# Config keys a reproduction sets on purpose: the Tuner is skipped (so its settings do not matter) and
# the values it found, the seed and determinism are imported instead.
EXPECTED_CONFIG_CHANGES = ("tuner_fn", "tuner_max_trials", "tuner_train_steps", "custom_config.hparams",
                           "custom_config.seed", "custom_config.deterministic")
# training_info.json entries two trainings of one version should share.
TRAINING_KEYS = ("seed", "deterministic", "hparams", "batch_size", "train_steps", "eval_steps", "epochs",
                 "steps_per_epoch", "framework", "framework_version", "tensorflow_version")
UNKNOWN = ("", "unknown", None)


class ReproduceError(Exception):
    """Why a version cannot be reproduced, as one line."""


@dataclass
class Plan:
    """What the version's lineage says to rebuild."""

    task: str
    version: int
    commit: str
    data_md5: str
    hparams: dict
    seed: Optional[int]
    deterministic: bool
    profile: str = "default"
    train_steps: Optional[int] = None
    eval_steps: Optional[int] = None
    budget_from: str = "the task's defaults at that commit"
    original: Optional[run_identity.RunIdentity] = None
    original_training: Optional[dict] = None
    # Why the version is not a clean rebuild target (dirty code or data); empty when it is.
    dirty: List[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.task} v{self.version}"


@dataclass
class Row:
    slice: str
    metric: str
    registered: Optional[float]
    reproduced: Optional[float]
    tolerance: float

    @property
    def difference(self) -> Optional[float]:
        if _undefined(self.registered) or _undefined(self.reproduced):
            return None
        return self.reproduced - self.registered

    @property
    def ok(self) -> bool:
        if _undefined(self.registered) and _undefined(self.reproduced):
            return True  # undefined on both sides (e.g. AUC of a one-class slice)
        diff = self.difference
        # Registered values are rounded to 6 significant digits (the Registrar's tag).
        return diff is not None and abs(diff) <= self.tolerance + 1e-6 * max(1.0, abs(self.registered))


@dataclass
class Result:
    plan: Plan
    rows: List[Row]
    home: Path
    run_id: str
    seconds: float
    notes: List[str] = field(default_factory=list)

    @property
    def overall(self) -> List[Row]:
        return [r for r in self.rows if r.slice == OVERALL]

    @property
    def reproduced(self) -> bool:
        return bool(self.overall) and all(r.ok for r in self.overall)


def _undefined(value: Optional[float]) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def tolerance_for(tolerances: Mapping[str, float], metric: str) -> float:
    if metric in tolerances:
        return float(tolerances[metric])
    return EXACT_TOLERANCE if metric in EXACT_METRICS else DEFAULT_TOLERANCE


# ---- the plan, from the version's tags

def dirty_reasons(tags: Mapping[str, str]) -> List[str]:
    """What keeps the version from being rebuilt exactly (empty for a clean one)."""
    reasons = []
    commit = tags.get(reg.TAG_GIT_COMMIT, "unknown")
    if tags.get(reg.TAG_GIT_DIRTY) == "true":
        reasons.append(f"it was registered from a dirty tree: code changes not committed at {commit[:12]} are in "
                       f"no commit, so the rebuilt code may differ")
    md5 = tags.get(reg.TAG_DATA_MD5, "unknown")
    if md5 in (dv.UNTRACKED, "unknown"):
        reasons.append(f"its data was no DVC version (dvc_data_md5 {md5}), so the data.dvc of the commit is used "
                       f"and the data may differ")
    elif tags.get(reg.TAG_DATA_DIRTY) == "true":
        reasons.append(f"its data did not match data.dvc (dvc_data_dirty=true): the rebuild uses DVC version {md5}, "
                       f"without the uncommitted data changes")
    return reasons


def original_run(tags: Mapping[str, str]) -> Optional[run_identity.RunIdentity]:
    """The identity recorded on the run that trained the version (local runs; None when its
    metadata store is gone or the run predates identities)."""
    from components import metadata

    path, run_id = tags.get(reg.TAG_MLMD_STORE), tags.get(reg.TAG_PIPELINE_RUN_ID)
    if not path or not run_id or not Path(path).is_file():
        return None
    try:
        store = metadata.open_store(metadata.sqlite_config(path, readonly=True))
        return run_identity.read(store, run_id)
    except Exception:  # an unreadable store is the same as none
        return None


def training_info_of(model_dir: Optional[str]) -> Optional[dict]:
    if not model_dir:
        return None
    from models.common.training_info import read_training_info

    try:
        return read_training_info(model_dir)
    except (FileNotFoundError, OSError, ValueError):
        return None


def plan_for(version, deterministic: bool = False) -> Plan:
    """The rebuild a registered version's tags call for (ReproduceError when they cannot)."""
    tags = dict(version.tags)
    label = f"{version.name} v{version.version}"
    commit = tags.get(reg.TAG_GIT_COMMIT, "unknown")
    if commit in UNKNOWN:
        raise ReproduceError(f"{label} records no git commit (git_commit={commit!r}); it cannot be rebuilt")
    try:
        hparams = json.loads(tags.get(reg.TAG_HYPERPARAMETERS) or "{}")
    except ValueError:
        raise ReproduceError(f"{label}: its hyperparameters tag is not JSON") from None
    seed = tags.get(reg.TAG_SEED)
    plan = Plan(
        task=version.name, version=int(version.version), commit=commit,
        data_md5=tags.get(reg.TAG_DATA_MD5, "unknown"), hparams=dict(hparams),
        seed=int(seed) if seed not in UNKNOWN and str(seed).isdigit() else None,
        deterministic=deterministic or tags.get(reg.TAG_DETERMINISTIC) == "true",
        dirty=dirty_reasons(tags),
    )
    plan.original_training = training_info_of(tags.get(reg.TAG_PUSHED_PATH))
    plan.original = original_run(tags)
    if plan.original is not None:
        config = json.loads(plan.original.config or "{}")
        plan.profile = plan.original.profile or "default"
        plan.train_steps, plan.eval_steps = config.get("train_steps"), config.get("eval_steps")
        plan.budget_from = f"run {tags.get(reg.TAG_PIPELINE_RUN_ID)} (profile {plan.profile})"
    elif plan.original_training is not None:
        plan.train_steps = plan.original_training.get("train_steps")
        plan.eval_steps = plan.original_training.get("eval_steps")
        plan.budget_from = "the version's training_info.json (profile not recorded: default assumed)"
    return plan


# ---- the code: a temporary worktree at the recorded commit

def _git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=300)


def repository(cwd: Optional[Path] = None) -> Path:
    """The git checkout holding cwd (the project the version came from)."""
    result = _git(Path(cwd or os.getcwd()), "rev-parse", "--show-toplevel")
    if result.returncode != 0:
        raise ReproduceError(f"{cwd or os.getcwd()} is not in a git checkout; run from the project checkout")
    return Path(result.stdout.strip())


def check_commit(repo: Path, commit: str, label: str) -> None:
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise ReproduceError(f"commit {commit} ({label}'s git_commit) is not in the repository at {repo}; "
                             f"fetch it first (e.g. `git fetch origin`)")


@contextlib.contextmanager
def worktree(repo: Path, commit: str, name: str) -> Iterator[Path]:
    """A detached `git worktree` of repo at commit in a temporary directory, removed on exit
    (the checkout's HEAD, branch, index and files are not touched)."""
    parent = Path(tempfile.mkdtemp(prefix=f"mlops-reproduce-{name}-"))
    path = parent / "src"
    added = _git(repo, "worktree", "add", "--detach", str(path), commit)
    if added.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        reason = (added.stderr.strip().splitlines() or ["?"])[-1]
        raise ReproduceError(f"cannot check out {commit[:12]} in a worktree of {repo}: {reason}")
    try:
        yield path
    finally:
        with interrupts.held():  # a second signal cannot cut the cleanup short
            _git(repo, "worktree", "remove", "--force", str(path))
            shutil.rmtree(parent, ignore_errors=True)
            _git(repo, "worktree", "prune")


# ---- the data: the recorded DVC version, restored inside the worktree

def _rewrite_md5(dvc_file: Path, md5: str) -> None:
    import yaml

    spec = yaml.safe_load(dvc_file.read_text())
    out = spec["outs"][0]
    for key in ("size", "nfiles"):
        out.pop(key, None)
    out["md5"] = md5
    dvc_file.write_text(yaml.safe_dump(spec, sort_keys=False))


def restore_data(tree: Path, plan: Plan, repo: Path, allow_dirty: bool) -> List[str]:
    """Check out the version's data in the worktree from the DVC remote; returns what may differ."""
    notes = []
    dvc_file = tree / "data.dvc"
    if not dvc_file.is_file():
        raise ReproduceError(f"commit {plan.commit[:12]} has no data.dvc, so {plan.label}'s data cannot be restored")
    committed = dv.tracked_md5(tree)
    wanted = plan.data_md5
    if wanted in (dv.UNTRACKED, "unknown"):
        wanted = committed
        notes.append(f"data: {plan.label} was not trained on a DVC version; using data.dvc at {plan.commit[:12]} "
                     f"(md5 {committed})")
    elif committed != wanted:
        if not allow_dirty:
            raise ReproduceError(f"data.dvc at {plan.commit[:12]} records md5 {committed}, but {plan.label} was "
                                 f"trained on {wanted}; pass --allow-dirty to restore {wanted} anyway")
        _rewrite_md5(dvc_file, wanted)
        notes.append(f"data: md5 {wanted} is not the data.dvc of {plan.commit[:12]} ({committed}); restored it "
                     f"from the remote")
    local_config = repo / ".dvc" / "config.local"  # remote credentials or URLs not committed
    if local_config.is_file():
        shutil.copy(local_config, tree / ".dvc" / "config.local")
    pulled = dv.dvc(tree, "pull", "-q", "data.dvc")
    if pulled.returncode != 0:
        lines = [line.strip() for line in (pulled.stderr + pulled.stdout).splitlines() if line.strip()]
        why = next((line for line in lines if line.startswith("ERROR")), lines[-1] if lines else "?")
        raise ReproduceError(f"the DVC remote lacks data version {wanted} ({plan.label}'s data): dvc pull: {why}")
    if dv.data_status(tree)["dirty"]:
        raise ReproduceError(f"data version {wanted} did not check out cleanly in the worktree (dvc status)")
    return notes


# ---- the run, with the worktree's code

def run_command(plan: Plan, tree: Path, home: Path) -> List[str]:
    cmd = [sys.executable, "-m", "pipelines.cli", "run", plan.task, "--home", str(home),
           "--data-root", str(tree / "data"), "--profile", plan.profile, "--no-cache", "--no-tuner",
           "--hparams-json", json.dumps(plan.hparams, sort_keys=True)]
    if plan.seed is not None:
        cmd += ["--seed", str(plan.seed)]
    if plan.deterministic:
        cmd.append("--deterministic")
    if plan.train_steps:
        cmd += ["--train-steps", str(int(plan.train_steps))]
    if plan.eval_steps:
        cmd += ["--eval-steps", str(int(plan.eval_steps))]
    return cmd


CHILD_GRACE_S = 60.0


def run_in_worktree(cmd: List[str], tree: Path) -> int:
    """Run cmd with the worktree's code and no registry server: the separate home's embedded
    registry gets the rebuilt model, never the user's registry. The child has its own session (a
    terminal's Ctrl-C reaches only this process), and gets the signal this process got; it may record
    its interruption for CHILD_GRACE_S, then it is killed."""
    env = {k: v for k, v in os.environ.items()
           if k not in (reg.TRACKING_URI_ENV, "MLOPS_HOME", "MLOPS_DATA", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tree)
    process = subprocess.Popen(cmd, cwd=str(tree), env=env, start_new_session=True)
    try:
        return process.wait()
    except BaseException as exc:  # stop the run before the worktree goes
        process.send_signal(exc.signum if isinstance(exc, interrupts.Interrupted) else signal.SIGTERM)
        try:
            process.wait(timeout=CHILD_GRACE_S)
        except BaseException:  # a second signal, or the grace period is over
            process.kill()
            process.wait()
        raise


def reproduced_run(home: Path, task: str):
    """(run id, {slice: {metric: value}}, identity, Trainer model uri) of the newest run in home."""
    from components import evaluation, metadata

    store = metadata.open_store(str(home / "metadata.sqlite"))
    pipeline = nodes.pipeline_name(task)
    run_ids = lineage.list_run_ids(store, pipeline)
    record = lineage.load_run(store, pipeline, run_ids[0]) if run_ids else None
    evaluator = record.nodes.get(nodes.EVALUATOR) if record else None
    output = evaluator.output("evaluation") if evaluator else None
    if output is None:
        raise ReproduceError(f"the reproduction run in {home} has no evaluation")
    slices = {s.slice: s.candidate for s in evaluation.load_slice_metrics(output.uri)}
    trainer = record.nodes.get(nodes.TRAINER)
    model = trainer.output("model") if trainer else None
    return record.run_id, slices, run_identity.read(store, record.run_id), model.uri if model else None


def compare(registered: Mapping[str, Mapping[str, Optional[float]]],
            reproduced: Mapping[str, Mapping[str, float]], tolerances: Mapping[str, float]) -> List[Row]:
    """One row per (slice, metric) of the registered table, Overall first."""
    rows = []
    for name in sorted((s for s in registered if not s.startswith("_")), key=lambda s: (s != OVERALL, s)):
        metrics = registered[name] if isinstance(registered[name], Mapping) else {}
        for metric in sorted(metrics):
            rows.append(Row(name, metric, metrics[metric], (reproduced.get(name) or {}).get(metric),
                            tolerance_for(tolerances, metric)))
    return rows


def check_notes(plan: Plan, identity, training: Optional[dict]) -> List[str]:
    """What differs between the original run and the rebuild beyond what reproduce sets on purpose."""
    notes = []
    if plan.original is not None and identity is not None:
        changes = [c for c in run_identity.config_changes(json.loads(plan.original.config), json.loads(identity.config))
                   if not any(c[0] == k or c[0].startswith(k + ".") for k in EXPECTED_CONFIG_CHANGES)]
        for key, before, after in changes:
            notes.append(f"config: {key} was {before!r} in the original run, {after!r} here")
    if plan.original_training and training:
        for key in TRAINING_KEYS:
            before, after = plan.original_training.get(key), training.get(key)
            if before != after:
                notes.append(f"training: {key} was {before!r}, {after!r} here")
    return notes


def reproduce(version, *, home: Path, cwd: Optional[Path] = None, allow_dirty: bool = False,
              deterministic: bool = False, echo: Callable[[str], None] = print) -> Result:
    """Rebuild `version` (a registry VersionInfo) and compare; ReproduceError when it cannot be."""
    from pipelines.tasks import load_task

    start = time.time()
    plan = plan_for(version, deterministic)
    if plan.dirty and not allow_dirty:
        raise ReproduceError(f"{plan.label} cannot be rebuilt exactly: " + "; ".join(plan.dirty)
                             + ". Pass --allow-dirty to reproduce it as far as possible")
    notes = [f"may differ: {reason}" for reason in plan.dirty]
    repo = repository(cwd)
    check_commit(repo, plan.commit, plan.label)
    target = Path(home) / "reproduce" / f"{plan.task}-v{plan.version}"
    echo(f"reproducing {plan.label}: commit {plan.commit[:12]}, data md5 {plan.data_md5}, seed "
         f"{plan.seed if plan.seed is not None else 'not recorded (trainer default)'}"
         f"{', deterministic ops' if plan.deterministic else ''}, hyperparameters "
         f"{json.dumps(plan.hparams, sort_keys=True)} (Tuner skipped), budget from {plan.budget_from}")
    with worktree(repo, plan.commit, f"{plan.task}-v{plan.version}") as tree:
        if "--hparams-json" not in (tree / "pipelines" / "cli_run.py").read_text(errors="replace"):
            raise ReproduceError(f"the code at {plan.commit[:12]} predates `mlops run --hparams-json`, so the "
                                 f"recorded hyperparameters cannot be imported there")
        echo(f"worktree {tree} (code at {plan.commit[:12]}); restoring data md5 {plan.data_md5} from the DVC remote")
        notes += restore_data(tree, plan, repo, allow_dirty)
        target.mkdir(parents=True, exist_ok=True)
        cmd = run_command(plan, tree, target)
        echo(f"running the pipeline with that code into {target}")
        status = run_in_worktree(cmd, tree)
        if status not in (0, 3):  # 3: evaluated, not blessed (the separate registry has no baseline)
            raise ReproduceError(f"the reproduction run failed (exit {status}); `mlops runs {plan.task} --home "
                                 f"{target}` shows where")
    run_id, slices, identity, model_uri = reproduced_run(target, plan.task)
    registered = json.loads(version.tags.get(reg.TAG_SLICE_METRICS) or "{}")
    if not registered:
        raise ReproduceError(f"{plan.label} has no slice_metrics tag to compare with")
    tolerances = dict(load_task(plan.task).reproduce_tolerance)
    notes += check_notes(plan, identity, training_info_of(model_uri))
    return Result(plan, compare(registered, slices, tolerances), target, run_id, time.time() - start, notes)
