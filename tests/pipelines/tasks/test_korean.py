"""sts_ko and nsmc: importers (split rule, columns, row-count checks) and eval configs (no pipeline
run; see tests/e2e/test_sts_ko.py, tests/e2e/test_nsmc.py and tests/models/common/test_e5.py)."""
import csv
import gzip
import json

import pytest

from models.nsmc import features as NF
from models.sts_ko import features as SF
from pipelines.tasks import load_task
from pipelines.tasks import nsmc as nsmc_declaration
from pipelines.tasks import sts_ko as sts_ko_declaration


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _klue_source(directory, train_rows=45):
    directory.mkdir(parents=True)
    with open(directory / "klue_sts_train.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence1", "sentence2", "label"])
        writer.writerows([[f"숙소가 좋아요, \"정말\" {i}", f"숙소 {i}", f"{i / 10:.3f}"] for i in range(train_rows)])
    dev = [{"guid": f"klue-sts-v1_dev_{i:05d}", "source": "airbnb-rtt", "sentence1": f"문장 {i}",
            "sentence2": f"다른 문장 {i}", "labels": {"label": 1.0, "real-label": 1.0 + i / 7, "binary-label": 0}}
           for i in range(3)]
    (directory / "klue-sts-v1.1_dev.json").write_text(json.dumps(dev, ensure_ascii=False), encoding="utf-8")
    return directory


def test_sts_ko_importer_splits_train_and_takes_the_official_dev_as_test(tmp_path, monkeypatch):
    monkeypatch.setattr(sts_ko_declaration, "EXPECTED_ROWS", None)
    out = load_task("sts_ko").importer(_klue_source(tmp_path / "src"), tmp_path / "data")
    rows = {folder: _read(out / folder / SF.FILES[folder]) for folder in ("train", "validation", "test")}
    assert all(r[0] == list(SF.CSV_COLUMNS) for r in rows.values())
    assert len(rows["validation"]) - 1 == 3 and len(rows["train"]) - 1 == 42  # rows 0, 20, 40
    assert rows["validation"][2][1:] == ["klue-sts-train-00020", "2.000", "숙소가 좋아요, \"정말\" 20", "숙소 20"]
    assert rows["test"][1] == ["airbnb-rtt", "klue-sts-v1_dev_00000", "1.0", "문장 0", "다른 문장 0"]
    assert float(rows["test"][2][2]) == pytest.approx(1 + 1 / 7, abs=1e-12)  # real-label, not rounded


def test_sts_ko_importer_checks_row_counts(tmp_path):
    with pytest.raises(ValueError, match="rows, expected 11668"):
        load_task("sts_ko").importer(_klue_source(tmp_path / "src"), tmp_path / "data")


def _nsmc_source(directory, rows=(61, 4)):
    directory.mkdir(parents=True)
    for name, n in zip(("nsmc_raw_train.tsv.gz", "nsmc_raw_test.tsv.gz"), rows):
        lines = ["id\tdocument\tlabel"] + [f"{100 + i}\t재밌다, \"진짜\" ㅋㅋ {i}\t{i % 2}" for i in range(n)]
        with gzip.open(directory / name, "wt", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return directory


def test_nsmc_importer_splits_train_and_keeps_the_text(tmp_path, monkeypatch):
    monkeypatch.setattr(nsmc_declaration, "EXPECTED_ROWS", None)
    out = load_task("nsmc").importer(_nsmc_source(tmp_path / "src"), tmp_path / "data")
    rows = {folder: _read(out / folder / NF.FILES[folder]) for folder in ("train", "validation", "test")}
    assert all(r[0] == list(NF.CSV_COLUMNS) for r in rows.values())
    assert [len(r) - 1 for r in (rows["train"], rows["validation"], rows["test"])] == [58, 3, 4]
    assert rows["validation"][2] == ["130", "재밌다, \"진짜\" ㅋㅋ 30", "0"]


def test_nsmc_importer_refuses_bad_rows_and_counts(tmp_path, monkeypatch):
    source = _nsmc_source(tmp_path / "src")
    with pytest.raises(ValueError, match="rows, expected 150000"):
        load_task("nsmc").importer(source, tmp_path / "data")
    monkeypatch.setattr(nsmc_declaration, "EXPECTED_ROWS", None)
    with gzip.open(source / "nsmc_raw_test.tsv.gz", "wt", encoding="utf-8") as f:
        f.write("id\tdocument\tlabel\n1\tno label\n")
    with pytest.raises(ValueError, match="expected id<TAB>document<TAB>0|1"):
        load_task("nsmc").importer(source, tmp_path / "data")


def test_eval_configs_bless_on_test_spearman_and_accuracy():
    sts_ko, nsmc = load_task("sts_ko"), load_task("nsmc")
    assert sts_ko.eval.threshold_metric.endswith("SpearmanCorrelation") and sts_ko.eval.positive_class_id is None
    assert (SF.SOURCE_KEY,) in sts_ko.eval.slices and sts_ko.eval.min_value == 0.80
    assert nsmc.eval.threshold_metric == "BinaryAccuracy" and ("label",) in nsmc.eval.slices
    assert sts_ko.tuner_fn is None and nsmc.tuner_fn is None
