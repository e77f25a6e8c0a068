"""`mlops predict`: registered versions (tiny SavedModels honouring the serving contract, in a temp
embedded registry) predicted through the CLI with the real Beam DirectRunner."""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from components.registry import TAG_BLESSED, TAG_PUSHED_PATH, Registry, default_uri
from pipelines import cli
from tests.components.test_batch_inference import (
    read_csv, save_census_model, save_pets_model, save_sts_model, write_mixed_census_csv,
)
from tests.conftest import synthetic_census_rows, write_census_csv


def evidence_tags(model_dir) -> dict:
    """The tags (and Registrar record) promote asks for: blessed, infra-blessed, pushed, digested."""
    from components.digest import saved_model_digest
    from components.registry.tags import TAG_INFRA_BLESSED, TAG_MODEL_DIGEST

    return {TAG_BLESSED: "true", TAG_INFRA_BLESSED: "true", TAG_PUSHED_PATH: str(model_dir),
            TAG_MODEL_DIGEST: saved_model_digest(str(model_dir))}


def register(home: Path, task: str, model_dir: Path, alias: str = "production"):
    """A version of `task` served from model_dir, with the evidence a pipeline's Registrar leaves
    (registration.json), promoted to alias."""
    reg = Registry(default_uri(home))
    tags = evidence_tags(model_dir)
    info = reg.register(task, str(model_dir), tags, experiment=f"test-{task}", record={"tags": tags})
    if alias:
        reg.promote(task, info.version, alias)
    return info


def mlops(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def home(tmp_path, no_server):
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def census_model(tmp_path_factory):
    return save_census_model(tmp_path_factory.mktemp("census") / "1700000000")


def test_predict_mixed_csv_with_the_production_version(home, census_model, tmp_path, capsys):
    register(home, "census", census_model)
    rows, bad = write_mixed_census_csv(tmp_path / "people.csv")
    out = tmp_path / "pred.csv"
    status, stdout, err = mlops(["predict", "census", "--input", str(tmp_path / "people.csv"),
                                 "--output", str(out), "--home", str(home)], capsys)
    assert status == 0, err
    assert "predicted 37 of 40 rows" in stdout and "rows/s" in stdout
    assert "people.csv:7: missing value in column 'age'" in stdout
    assert "people.csv:11: column 'hours_per_week': 'forty' is not an integer" in stdout
    assert "census v1" in err
    predicted = read_csv(out)
    assert [p["id"] for p in predicted] == [r["id"] for r in rows if r["id"] not in bad]
    assert all(abs(float(p["probability_<=50K"]) + float(p["probability_>50K"]) - 1) < 1e-5 for p in predicted)
    rejects = read_csv(str(out) + ".rejects.csv")
    assert [r["location"] for r in rejects] == ["people.csv:7", "people.csv:11", "people.csv:15"]


def test_predict_by_version_and_alias_with_label_metrics(home, census_model, tmp_path, capsys):
    register(home, "census", census_model)
    register(home, "census", census_model.parent / "missing", alias="")  # v2: never pushed here
    rows = synthetic_census_rows(50, seed=8)
    write_census_csv(tmp_path / "in.csv", rows)
    status, stdout, err = mlops(["predict", "census:1", "--input", str(tmp_path / "in.csv"), "--output",
                                 str(tmp_path / "o.csv"), "--label-column", "income_bracket", "--home", str(home)], capsys)
    assert status == 0, err
    assert "accuracy " in stdout and "AUC " in stdout and "on 50 labelled rows" in stdout
    status, _, err = mlops(["predict", "census:2", "--input", str(tmp_path / "in.csv"), "--output",
                            str(tmp_path / "o.csv"), "--home", str(home)], capsys)
    assert status == 1 and "census v2 has no SavedModel to load" in err and "\n" not in err.strip()


def test_falls_back_to_a_runs_source_downloaded_with_mlflow(home, census_model, tmp_path, capsys):
    """A version whose pushed path is gone but whose source is the run's logged copy (as a registry
    server holds it): the downloaded copy is what the Registrar's digest is checked against."""
    reg = Registry(default_uri(home))
    reg.ensure_model("census")
    run = reg.client.create_run(reg._experiment_id("test-census"))
    reg.client.log_artifacts(run.info.run_id, str(census_model), "saved_model")
    tags = {**evidence_tags(census_model), TAG_PUSHED_PATH: str(tmp_path / "gone")}
    reg.client.log_dict(run.info.run_id, {"tags": tags}, "registration.json")
    source = f"runs:/{run.info.run_id}/saved_model"
    mv = reg.client.create_model_version("census", source, run_id=run.info.run_id, tags=tags)
    reg.client.set_registered_model_alias("census", "staging", mv.version)
    write_census_csv(tmp_path / "in.csv", synthetic_census_rows(12, seed=9))
    args = ["predict", "census@staging", "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "o.csv"),
            "--home", str(home)]
    status, stdout, err = mlops(args, capsys)
    assert status == 0, err
    assert "predicted 12 of 12 rows" in stdout
    assert len(read_csv(tmp_path / "o.csv")) == 12
    # The logged copy changed after registration: refused, like promote.
    artifacts = Path(reg.client.get_run(run.info.run_id).info.artifact_uri.replace("file://", "")) / "saved_model"
    (artifacts / "saved_model.pb").write_bytes((artifacts / "saved_model.pb").read_bytes() + b"\0")
    status, _, err = mlops(args, capsys)
    assert status == 1 and "changed since it was registered" in err


def test_pets_image_folder_with_a_corrupt_file(home, tmp_path, capsys):
    from tests.pets_images import write_pets, write_truncated_jpeg

    register(home, "pets", save_pets_model(tmp_path / "pets_model"))
    root = write_pets(tmp_path / "photos", per_class=3, size=24)
    write_truncated_jpeg(root / "dog" / "dog.bad.jpg")
    status, stdout, err = mlops(["predict", "pets@production", "--input", str(root), "--output",
                                 str(tmp_path / "p.csv"), "--label-column", "label", "--home", str(home)], capsys)
    assert status == 0, err
    assert "predicted 6 of 7 rows" in stdout and "dog/dog.bad.jpg: jpeg does not decode" in stdout
    assert "accuracy 1.0000" in stdout
    assert [r["filename"] for r in read_csv(tmp_path / "p.csv")][:2] == ["cat/cat.0.png", "cat/cat.1.jpg"]


def test_sts_pairs(home, tmp_path, capsys):
    register(home, "sts", save_sts_model(tmp_path / "sts_model"))
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "sentence1", "sentence2"])
        writer.writerows([[1, "a man plays", "a man plays"], [2, "four", "fo"], [3, "x", ""]])
    status, stdout, err = mlops(["predict", "sts", "--input", str(path), "--output", str(tmp_path / "s.csv"),
                                 "--home", str(home)], capsys)
    assert status == 0, err
    assert [(r["id"], r["similarity"]) for r in read_csv(tmp_path / "s.csv")] == [("1", "1"), ("2", "0.5")]
    assert "pairs.csv:4: missing value in column 'sentence2'" in stdout


def test_one_line_errors_with_the_fix(home, census_model, tmp_path, capsys):
    write_census_csv(tmp_path / "in.csv", synthetic_census_rows(3, seed=1))
    register(home, "census", census_model, alias="")
    status, _, err = mlops(["predict", "census", "--input", str(tmp_path / "in.csv"), "--output",
                            str(tmp_path / "o.csv"), "--home", str(home)], capsys)
    assert status == 1 and "census has no alias 'production'" in err and "mlops registry promote census" in err
    status, _, err = mlops(["predict", "census:1", "--input", str(tmp_path / "nope.csv"), "--output",
                            str(tmp_path / "o.csv"), "--home", str(home)], capsys)
    assert status == 1 and "input" in err and "does not exist" in err
    status, _, err = mlops(["predict", "census:1", "--input", str(tmp_path / "in.csv"), "--output",
                            str(tmp_path / "no" / "dir" / "o.csv"), "--home", str(home)], capsys)
    assert status == 1 and "does not exist (create it first)" in err
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if not os.access(locked, os.W_OK):  # root may write anyway
            status, _, err = mlops(["predict", "census:1", "--input", str(tmp_path / "in.csv"), "--output",
                                    str(locked / "o.csv"), "--home", str(home)], capsys)
            assert status == 1 and "not writable" in err
    finally:
        os.chmod(locked, 0o700)
    status, _, err = mlops(["predict", "nosuchtask", "--input", str(tmp_path / "in.csv"), "--output",
                            str(tmp_path / "o.csv"), "--home", str(home)], capsys)
    assert status == 2 and "known tasks" in err
    for e in (err,):
        assert len(e.strip().splitlines()) == 1


@pytest.mark.e2e
def test_predict_with_the_real_census_model(census_run, tmp_path, capsys, no_server):
    """The census fixture's registered v1 (a real TabTransformer SavedModel) on fresh rows."""
    from components.registry import Registry as Reg

    _, home, status = census_run
    assert status == 0
    private = tmp_path / "home"
    private.mkdir()
    import shutil

    shutil.copy(Path(home) / "mlflow.db", private / "mlflow.db")
    rows = synthetic_census_rows(300, seed=11)
    write_census_csv(tmp_path / "in.csv", rows)
    status, stdout, err = mlops(["predict", "census:1", "--input", str(tmp_path / "in.csv"), "--output",
                                 str(tmp_path / "o.csv"), "--label-column", "income_bracket", "--home", str(private)], capsys)
    assert status == 0, err
    predicted = read_csv(tmp_path / "o.csv")
    assert len(predicted) == 300 and list(predicted[0])[:1] == ["income_bracket"]
    assert Reg(default_uri(private)).version("census", 1).pushed_path in err
    accuracy = float(stdout.split("accuracy ")[1].split()[0])
    assert accuracy > 0.6  # the synthetic rule is learnable; a broken feature mapping scores ~0.5
