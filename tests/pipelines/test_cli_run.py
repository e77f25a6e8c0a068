"""`mlops run`: data that does not match data.dvc needs --allow-dirty and is recorded as dirty."""
from __future__ import annotations

import pytest

from components import data_version
from pipelines import cli, nodes
from tests.conftest import CENSUS_BUDGET, dvc_exe, run, synthetic_census_rows
from tests.csv_data import _csv_lines
from tests.records import latest_run


def _latest(home):
    return latest_run(home, nodes.pipeline_name("census"))


@pytest.mark.e2e
def test_dirty_data_is_refused_unless_allowed_and_then_recorded_as_dirty(census_project, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    root = census_project
    tracked = data_version.tracked_md5(root)
    # Change data/ after `dvc add`: 70 rows of a new workclass (so the allowed run stops cheaply at
    # the ExampleValidator, after ExampleGen has recorded the data version).
    rows = synthetic_census_rows(70, seed=9)
    for row in rows:
        row["workclass"] = "Space-Force"
    with open(root / "data" / "census" / "adult.csv", "a") as f:
        f.write(b"\n".join(_csv_lines(rows)[1:]).decode() + "\n")
    home = tmp_path / "home"
    args = ["run", "census", "--home", str(home), "--data-root", str(root / "data")] + CENSUS_BUDGET

    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "does not match data.dvc" in err and "--allow-dirty" in err
    assert not (home / "metadata.sqlite").exists()  # refused before anything ran

    assert cli.main(args + ["--allow-dirty"]) == 1  # runs, then stops at the validator
    out = capsys.readouterr().out
    assert f"(dvc md5 {tracked}, dirty)" in out and f"data: dvc md5 {tracked} (dirty)" in out
    examples = _latest(home).nodes[nodes.EXAMPLE_GEN].output("examples")
    assert examples.get("dvc_data_md5") == tracked and examples.get("dvc_data_dirty") == 1

    # `dvc checkout` restores the tracked data: clean again, no flag needed.
    run([dvc_exe(), "checkout", "-q", "--force"], root)
    assert data_version.data_status(root)["dirty"] is False


@pytest.mark.e2e
def test_if_changed_skips_an_unchanged_run_and_names_the_data_version_that_changed(tmp_path):
    """--if-changed compares the data version, code commit and effective config with the newest
    successful run in the home. The project holds its own committed copy of the code, so the code
    version is that clean commit (not this working tree, which may change while the test runs).
    heart, the cheapest task: what is compared does not depend on the task."""
    from tests.conftest import HEART_BUDGET, HEART_ROWS, HEART_SEED
    from tests.heart_data import synthetic_heart_rows, write_heart_csv
    from tests.pipelines.test_reproduce import _mlops, code_project

    csv = ("data", "heart", "heart.csv")
    project = code_project(tmp_path / "project", lambda p: write_heart_csv(
        p.joinpath(*csv), synthetic_heart_rows(HEART_ROWS, seed=HEART_SEED)))
    home = project / ".mlops"
    args = ["run", "heart", "--if-changed"] + HEART_BUDGET

    def latest():
        return latest_run(home, nodes.pipeline_name("heart"))

    first = _mlops(project, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "no successful run of heart" in first.stdout
    run_id = latest().run_id
    old_md5 = data_version.tracked_md5(project)

    again = _mlops(project, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"nothing changed since run {run_id}: dvc md5 {old_md5}" in again.stdout
    assert "not running (--if-changed)" in again.stdout and "▶" not in again.stdout
    assert latest().run_id == run_id  # no new run

    # New data, recorded as a new DVC version: the data is what changed, and the task runs.
    write_heart_csv(project.joinpath(*csv), synthetic_heart_rows(HEART_ROWS + 20, seed=HEART_SEED + 1))
    run([dvc_exe(), "add", "-q", "data"], project)
    new_md5 = data_version.tracked_md5(project)
    changed = _mlops(project, *args)
    assert changed.returncode in (0, 3), changed.stdout + changed.stderr
    assert f"data changed: dvc md5 {old_md5} -> dvc md5 {new_md5}" in changed.stdout
    # Only the data changed (data.dvc is DVC's file, not code), so neither code nor config is named.
    assert "code changed" not in changed.stdout and "config changed" not in changed.stdout
    assert latest().run_id != run_id
