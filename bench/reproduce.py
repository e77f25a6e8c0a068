"""Reproduce benchmark (not a test): register census at the default budget on the real data, then
rebuild that version from its lineage (`mlops registry reproduce census:1`) and compare.

Prints the overall metrics registered vs reproduced with their differences and tolerances, the
verdict, and the wall time of the registering run and of the reproduction.

Reproduce checks out the version's git commit, so the code must be committed. A checkout with
uncommitted changes is benchmarked on a snapshot: a local clone of it whose extra commit holds the
working tree's pipelines/, components/, models/ and pyproject.toml (data/ restored there from the
DVC remote committed with the repository). A clean checkout is used as it is.
Usage: .venv/bin/python bench/reproduce.py [--home DIR] [--snapshot] [--max-trials N] [--train-steps N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.pop("MLFLOW_TRACKING_URI", None)  # the bench home's embedded registry

from components import registry as reg  # noqa: E402
from components.data_version import dvc  # noqa: E402
from pipelines import reproduce  # noqa: E402
from pipelines.tasks import load_task  # noqa: E402

CODE = ("pipelines", "components", "models", "pyproject.toml")


def git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def snapshot(into: Path) -> Path:
    """A clone of this checkout with the working tree's code committed on top, data/ pulled."""
    project = into / "project"
    git(REPO, "clone", "--quiet", str(REPO), str(project))
    git(project, "config", "user.email", "bench@example.com")
    git(project, "config", "user.name", "bench")
    for name in CODE:
        source, target = REPO / name, project / name
        if target.is_dir():
            shutil.rmtree(target)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    git(project, "add", "-A", *CODE)
    if git(project, "status", "--porcelain"):
        git(project, "commit", "--quiet", "-m", "bench snapshot of the working tree")
    pulled = dvc(project, "pull", "-q")
    if pulled.returncode != 0:
        raise SystemExit(f"dvc pull in the snapshot: {pulled.stderr.strip()}")
    return project


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="state dir (default: a fresh temp dir, removed afterwards)")
    parser.add_argument("--snapshot", action="store_true", help="benchmark a snapshot even if the checkout is clean")
    parser.add_argument("--max-trials", type=int, help="override the Tuner's trials of the registering run")
    parser.add_argument("--train-steps", type=int, help="override the training steps of the registering run")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-reproduce-"))
    try:
        dirty = bool(git(REPO, "status", "--porcelain", "--", *CODE, "data.dvc"))
        project = snapshot(scratch) if dirty or args.snapshot else REPO
        home = Path(args.home or scratch / "home").resolve()
        cmd = [sys.executable, "-m", "pipelines.cli", "run", "census", "--home", str(home)]
        if args.max_trials:
            cmd += ["--max-trials", str(args.max_trials)]
        if args.train_steps:
            cmd += ["--train-steps", str(args.train_steps)]
        env = {k: v for k, v in os.environ.items() if k not in ("MLOPS_HOME", "MLOPS_DATA")}
        env["PYTHONPATH"] = str(project)
        print(f"registering census from {project} ({'snapshot' if project != REPO else 'checkout'}) into {home}",
              flush=True)
        start = time.time()
        status = subprocess.run(cmd, cwd=project, env=env).returncode
        registering = time.time() - start
        if status != 0:
            raise SystemExit(f"the registering run exited {status} (not blessed or failed)")
        registry = reg.Registry.open(home)
        version = max(registry.versions("census"), key=lambda v: v.version)
        print(f"\nreproducing census v{version.version} ...", flush=True)
        result = reproduce.reproduce(version, home=home, cwd=project, echo=lambda line: print(line, flush=True))

        tolerances = load_task("census").reproduce_tolerance
        print(f"\ncensus v{version.version}: commit {result.plan.commit[:12]}, data {result.plan.data_md5}, "
              f"seed {result.plan.seed}, budget from {result.plan.budget_from}")
        print(f"{'overall metric':<26}{'registered':>12}{'reproduced':>12}{'difference':>12}{'tolerance':>11}")
        for row in result.overall:
            diff = row.difference
            print(f"{row.metric:<26}{row.registered if row.registered is not None else float('nan'):>12.5f}"
                  f"{row.reproduced if row.reproduced is not None else float('nan'):>12.5f}"
                  f"{diff if diff is not None else float('nan'):>+12.5f}{row.tolerance:>11g}"
                  f"{'' if row.ok else '  OUTSIDE'}")
        slices = [r for r in result.rows if r.slice != "Overall" and r.metric in tolerances and r.difference is not None]
        if slices:
            worst = max(slices, key=lambda r: abs(r.difference))
            print(f"largest per-slice difference: {worst.metric} on {worst.slice}: {worst.difference:+.5f}")
        for note in result.notes:
            print(f"note: {note}")
        print(f"verdict: {'reproduced' if result.reproduced else 'NOT reproduced'}")
        print(f"wall time: registering run {registering:.0f} s, reproduction {result.seconds:.0f} s "
              f"(worktree, dvc pull, pipeline without Tuner, comparison)")
        return 0 if result.reproduced else 1
    finally:
        if not args.home:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            shutil.rmtree(scratch / "project", ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
