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
