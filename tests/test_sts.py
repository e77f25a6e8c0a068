"""sts: importer, correlation metrics (plain and as TFMA metrics), eval config and the encoder
(no pipeline run; see test_e2e_sts.py)."""
import numpy as np
import pytest
import tensorflow as tf

from models.sts import features as F
from pipelines import datasets, factory
from pipelines.config import load_task


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

    monkeypatch.setattr(datasets, "STS_EXPECTED_ROWS", None)
    source = _write_source(tmp_path / "src")
    out = datasets.IMPORTERS["sts"](source, tmp_path / "data")
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
        datasets.IMPORTERS["sts"](source, tmp_path / "data")
    monkeypatch.setattr(datasets, "STS_EXPECTED_ROWS", None)
    (source / "sts-dev.csv").write_text("main-news\theadlines\t2015\n")
    with pytest.raises(ValueError, match="7 or 9"):
        datasets.IMPORTERS["sts"](source, tmp_path / "data")
    (source / "sts-dev.csv").unlink()
    with pytest.raises(FileNotFoundError):
        datasets.IMPORTERS["sts"](source, tmp_path / "data")


def test_correlations_match_scipy_including_ties():
    from scipy import stats

    from models.sts.metrics import pearson, spearman

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=50).astype(float)  # many ties, like STS gold scores
    predictions = labels + rng.normal(scale=2.0, size=50)
    assert pearson(labels, predictions) == pytest.approx(stats.pearsonr(labels, predictions)[0])
    assert spearman(labels, predictions) == pytest.approx(stats.spearmanr(labels, predictions)[0])
    assert np.isnan(pearson(np.ones(5), predictions[:5])) and np.isnan(spearman(labels[:1], predictions[:1]))


def test_tfma_metrics_combine_pairs_across_accumulators():
    from tensorflow_model_analysis.metrics import metric_types

    from models.sts.metrics import PearsonCorrelation, SpearmanCorrelation, pearson, spearman

    labels = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    predictions = np.array([0.1, 0.0, 0.5, 0.4, 0.9, 0.7])
    for metric, expected in ((SpearmanCorrelation(), spearman), (PearsonCorrelation(), pearson)):
        (computation,) = metric.computations(example_weighted=False)
        combiner = computation.combiner
        halves = []
        for part in (slice(0, 3), slice(3, 6)):
            acc = combiner.create_accumulator()
            for label, prediction in zip(labels[part], predictions[part]):
                inputs = metric_types.StandardMetricInputs(
                    labels=np.array([label]), predictions=np.array([prediction]), example_weights=np.array([1.0])
                )
                acc = combiner.add_input(acc, inputs)
            halves.append(acc)
        (key, value), = combiner.extract_output(combiner.merge_accumulators(halves)).items()
        assert key.name == metric.name
        assert value == pytest.approx(expected(labels, predictions))


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


def test_encoder_trims_padding_without_changing_embeddings(tmp_path):
    from models.reviews.model import mean_pool
    from models.sts.model import build_model
    from tests.sts_data import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path / "tiny")
    model = build_model({"checkpoint": str(checkpoint), "pretrained": False, "max_seq_length": 24})
    text = tf.constant(["a man is playing the guitar on the beach.", "a dog."])
    trimmed = model.encoder(text).numpy()
    ids, mask = model.encoder.tokenizer(text)  # padded to 24
    full = mean_pool(model.encoder.bert(input_ids=ids, attention_mask=mask).last_hidden_state, mask).numpy()
    np.testing.assert_allclose(trimmed, full, atol=1e-5)
    pair = {F.SENTENCE1_XF: text, F.SENTENCE2_XF: tf.constant(["a dog.", "a dog."])}
    similarity = model(pair).numpy()
    assert similarity.shape == (2,) and similarity[1] == pytest.approx(1.0, abs=1e-5)


def test_sts_import_reproduces_the_tracked_files(tmp_path):
    import hashlib
    import json

    from tests.conftest import REPO

    shared = REPO.parent / "shared" / "datasets" / "stsbenchmark"
    if not (shared / "sts-train.csv").exists():
        pytest.skip("shared datasets not present")
    out = datasets.IMPORTERS["sts"](shared, tmp_path)  # also checks 5,749 / 1,500 / 1,379 rows
    manifests = (REPO / ".dvc" / "storage" / "files" / "md5").rglob("*.dir")
    tracked = {(e["relpath"], e["md5"]) for m in manifests for e in json.loads(m.read_text())}
    for folder, name in F.SOURCE_FILES.items():
        md5 = hashlib.md5((out / folder / name).read_bytes()).hexdigest()
        assert (f"sts/{folder}/{name}", md5) in tracked
