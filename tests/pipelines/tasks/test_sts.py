"""sts: importer and eval config (no pipeline run; see tests/e2e/test_sts.py; the metrics and the encoder
are tested in tests/models/sts/)."""
import pytest

from models.sts import features as F
from pipelines import factory
from pipelines.tasks import load_task
from pipelines.tasks import sts as declaration


def _write_source(directory, rows_per_file=3):
    directory.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(F.SOURCE_FILES.values()):
        lines = []
        for j in range(rows_per_file):
            fields = ["main-news", "headlines", "2015", f"{j:04d}", f"{j + 1.5:.3f}",
                      f'He said "hi", then left {i}{j}. ', "Nigeria\\'s leader, again"]
            if j == 0:
                fields += ["licence", "source"]  # some rows carry two extra fields
            lines.append("\t".join(fields))
        (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return directory


def test_importer_writes_a_header_and_keeps_the_seven_fields_unchanged(tmp_path, monkeypatch):
    import csv

    monkeypatch.setattr(declaration, "STS_EXPECTED_ROWS", None)
    source = _write_source(tmp_path / "src")
    out = load_task("sts").importer(source, tmp_path / "data")
    assert out == tmp_path / "data" / "sts"
    for folder, name in F.SOURCE_FILES.items():
        with open(out / folder / name, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        original = [line.split("\t")[:7] for line in (source / name).read_text(encoding="utf-8").splitlines()]
        assert rows[0] == list(F.CSV_COLUMNS)
        assert rows[1:] == original  # quotes, commas, backslashes and trailing spaces survive


def test_importer_checks_row_counts_and_field_counts(tmp_path, monkeypatch):
    source = _write_source(tmp_path / "src")
    with pytest.raises(ValueError, match="expected 5749"):
        load_task("sts").importer(source, tmp_path / "data")
    monkeypatch.setattr(declaration, "STS_EXPECTED_ROWS", None)
    (source / "sts-dev.csv").write_text("main-news\theadlines\t2015\n")
    with pytest.raises(ValueError, match="7 or 9"):
        load_task("sts").importer(source, tmp_path / "data")
    (source / "sts-dev.csv").unlink()
    with pytest.raises(FileNotFoundError):
        load_task("sts").importer(source, tmp_path / "data")


def test_eval_config_uses_the_custom_metrics_on_the_similarity_without_binarizing():
    config = factory.build_eval_config(load_task("sts"))
    assert config.model_specs[0].prediction_key == F.SIMILARITY
    spec = config.metrics_specs[1]
    assert not spec.HasField("binarize")
    by_class = {m.class_name: m for m in spec.metrics}
    assert by_class["SpearmanCorrelation"].module == "models.sts.metrics"
    assert by_class["SpearmanCorrelation"].per_slice_thresholds
    assert not by_class["PearsonCorrelation"].per_slice_thresholds
    # Classification tasks are unchanged: binarized on the positive class, built-in metrics.
    census = factory.build_eval_config(load_task("census"))
    assert census.model_specs[0].prediction_key == "probabilities"
    assert list(census.metrics_specs[1].binarize.class_ids.values) == [1]
    assert all(not m.module for m in census.metrics_specs[1].metrics)


def test_sts_import_reproduces_the_tracked_files(tmp_path):
    import hashlib
    import json

    from tests.conftest import REPO

    shared = REPO.parent / "shared" / "datasets" / "stsbenchmark"
    if not (shared / "sts-train.csv").exists():
        pytest.skip("shared datasets not present")
    out = load_task("sts").importer(shared, tmp_path)  # also checks 5,749 / 1,500 / 1,379 rows
    manifests = (REPO / ".dvc" / "storage" / "files" / "md5").rglob("*.dir")
    tracked = {(e["relpath"], e["md5"]) for m in manifests for e in json.loads(m.read_text())}
    for folder, name in F.SOURCE_FILES.items():
        md5 = hashlib.md5((out / folder / name).read_bytes()).hexdigest()
        assert (f"sts/{folder}/{name}", md5) in tracked
