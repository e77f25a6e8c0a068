"""Shared fixtures: tiny synthetic census data, made fresh by the tests (never the real dataset)."""
from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

REPO = Path(__file__).resolve().parent.parent


def census_domains():
    """Categorical values allowed by the committed census schema."""
    import tensorflow_data_validation as tfdv

    schema = tfdv.load_schema_text(str(REPO / "models" / "census" / "schema.pbtxt"))
    return {d.name: list(d.value) for d in schema.string_domain}


def synthetic_census_rows(n: int, seed: int = 0):
    """Census-shaped rows whose label follows a clear rule (education and capital gain), so a tiny
    model can learn it in a few steps."""
    from models.census import features as F

    rng = random.Random(seed)
    domains = census_domains()
    rows = []
    for _ in range(n):
        education_num = rng.randint(1, 16)
        capital_gain = rng.choice([0, 0, 0, rng.randint(1000, 20000)])
        rich = education_num >= 12 or capital_gain > 5000
        row = {
            "age": rng.randint(18, 80),
            "fnlwgt": rng.randint(20000, 500000),
            "education_num": education_num,
            "capital_gain": capital_gain,
            "capital_loss": rng.choice([0, 0, 0, rng.randint(100, 2000)]),
            "hours_per_week": rng.randint(10, 70),
            F.LABEL_KEY: F.CLASS_NAMES[1] if rich else F.CLASS_NAMES[0],
        }
        for name in F.CATEGORICAL_FEATURES:
            row[name] = rng.choice(domains[name])
        row["marital_status"] = "Married-civ-spouse" if rich else rng.choice(domains["marital_status"])
        rows.append(row)
    return rows


def write_census_csv(path: Path, rows) -> Path:
    from models.census import features as F

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(F.CSV_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(cmd, cwd, check=True, env=None):
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc_exe() -> str:
    return str(Path(sys.executable).with_name("dvc"))


def make_dvc_project(root: Path) -> Path:
    """A git + DVC project at root with a local remote, like the real checkout (data/ + data.dvc)."""
    root.mkdir(parents=True, exist_ok=True)
    run(["git", "init", "-q"], root)
    run(["git", "config", "user.email", "test@example.com"], root)
    run(["git", "config", "user.name", "test"], root)
    run([dvc_exe(), "init", "-q"], root)
    run([dvc_exe(), "config", "core.analytics", "false"], root)
    run([dvc_exe(), "remote", "add", "-d", "local", str(root / "remote")], root)
    return root


@pytest.fixture
def census_project(tmp_path):
    """A DVC-tracked project whose data/census holds 600 synthetic rows."""
    root = make_dvc_project(tmp_path / "project")
    write_census_csv(root / "data" / "census" / "adult.csv", synthetic_census_rows(600, seed=1))
    run([dvc_exe(), "add", "-q", "data"], root)
    return root


# A tiny training budget for end-to-end runs.
# Census runs of the suite train one member instead of the default's seed ensemble of 3 (a toy size,
# as the steps are: the ensemble adds ~40 s to a run); tests/models/census/test_ensemble.py covers
# the ensemble's training and export.
CENSUS_BUDGET = ["--max-trials", "1", "--tuner-steps", "20", "--train-steps", "150", "--eval-steps", "2",
                 "--hparams-json", '{"ensemble_size": 1}']


@pytest.fixture(scope="session")
def census_run(tmp_path_factory):
    """One real census pipeline run on 600 synthetic rows in a DVC-tracked temp project.

    Returns (project_root, mlops_home, exit_status). Shared by every test that reads real
    pipeline outputs (metadata, TFMA results, pushed models), so the suite trains once.
    """
    from pipelines import cli

    root = make_dvc_project(tmp_path_factory.mktemp("e2e") / "project")
    write_census_csv(root / "data" / "census" / "adult.csv", synthetic_census_rows(600, seed=1))
    run([dvc_exe(), "add", "-q", "data"], root)
    home = str(root / ".mlops")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        status = cli.main(["run", "census", "--home", home] + CENSUS_BUDGET)
    finally:
        os.chdir(cwd)
    return root, home, status


@pytest.fixture
def no_server(monkeypatch):
    """The embedded registry of a home, whatever the environment says."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture
def registry_copy(census_run, tmp_path, no_server):
    """A private copy of the census run's registry (the shared one stays as the pipeline left it):
    (home, Registry, the version the run registered)."""
    import shutil

    from components.registry import Registry
    from pipelines import nodes
    from tests.registry_helpers import first_run

    _, home, status = census_run
    assert status == 0
    private = tmp_path / "home"
    private.mkdir()
    shutil.copy(Path(home) / "mlflow.db", private / "mlflow.db")
    reg = Registry.open(private)
    record = first_run(home)
    base = reg.version("census", record.nodes[nodes.REGISTRAR].output("registered_model").get("model_version"))
    return str(private), reg, base


# The heart run every heart test shares (tests/e2e/test_heart.py) and the Kubeflow S3 dry run repeats.
HEART_ROWS, HEART_SEED = 300, 4
HEART_BUDGET = ["--train-steps", "120", "--eval-steps", "2"]


@pytest.fixture(scope="session")
def heart_run(tmp_path_factory):
    """One real `mlops run heart` process, as a user runs it (its output is checked too); the
    Kubeflow S3 dry run runs the same rows and budget (tests/pipelines/test_kubeflow_s3.py)."""
    from tests.heart_data import synthetic_heart_rows, write_heart_csv
    from tests.records import latest_run

    root = tmp_path_factory.mktemp("heart")
    write_heart_csv(root / "data" / "heart" / "heart.csv", synthetic_heart_rows(HEART_ROWS, seed=HEART_SEED))
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_TRACKING_URI")}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "heart", "--home", str(home),
                           "--data-root", str(root / "data")] + HEART_BUDGET, capture_output=True, text=True, env=env,
                          cwd=root)
    return home, done.returncode, latest_run(home, "mlops-heart"), done
