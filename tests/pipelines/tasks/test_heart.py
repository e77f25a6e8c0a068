"""heart: the importer and the curated schema (no pipeline run; see tests/e2e/test_heart.py; the model is
tested in tests/models/heart/)."""
import pytest

from models.heart import features as F
from pipelines.tasks import load_task
from tests.heart_data import synthetic_heart_rows, write_heart_csv


def test_importer_copies_the_csv_unchanged(tmp_path):
    source = write_heart_csv(tmp_path / "src" / "heart.csv", synthetic_heart_rows(10))
    target = load_task("heart").importer(source.parent, tmp_path / "data")
    assert target == tmp_path / "data" / "heart" / "heart.csv"
    assert target.read_bytes() == source.read_bytes()


def test_importer_rejects_other_columns_and_missing_files(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(FileNotFoundError):
        load_task("heart").importer(tmp_path / "src", tmp_path / "data")
    (tmp_path / "src" / "heart.csv").write_text("age,sex\n1,0\n")
    with pytest.raises(ValueError, match="header"):
        load_task("heart").importer(tmp_path / "src", tmp_path / "data")


def test_curated_schema_covers_every_column_and_hides_the_label_when_serving():
    import tensorflow_data_validation as tfdv

    from tests.conftest import REPO

    schema = tfdv.load_schema_text(str(REPO / load_task("heart").schema_file))
    assert [f.name for f in schema.feature] == list(F.CSV_COLUMNS)
    label = next(f for f in schema.feature if f.name == F.LABEL_KEY)
    assert list(label.not_in_environment) == ["SERVING"]
    thal = next(d for d in schema.string_domain if d.name == "thal")
    assert {"normal", "fixed", "reversible"} <= set(thal.value)


def _tracked_md5s():
    import json

    from tests.conftest import REPO

    manifests = (REPO / ".dvc" / "storage" / "files" / "md5").rglob("*.dir")
    return {(e["relpath"], e["md5"]) for m in manifests for e in json.loads(m.read_text())}


def test_heart_import_reproduces_the_tracked_file(tmp_path):
    import hashlib

    from tests.conftest import REPO

    shared = REPO.parent / "shared" / "datasets" / "heart"
    if not (shared / "heart.csv").exists():
        pytest.skip("shared datasets not present")
    target = load_task("heart").importer(shared, tmp_path)
    lines = target.read_text().splitlines()
    assert len(lines) == 303 + 1 and lines[1] == "63,1,1,145,233,1,2,150,0,2.3,3,0,fixed,0"
    assert ("heart/heart.csv", hashlib.md5(target.read_bytes()).hexdigest()) in _tracked_md5s()
