"""heart: the importer, the curated schema and the model (no pipeline run; see test_e2e_heart.py)."""
import numpy as np
import pytest

from models.heart import features as F
from pipelines import datasets
from pipelines.config import load_task
from tests.heart_data import synthetic_heart_rows, write_heart_csv


def test_importer_copies_the_csv_unchanged(tmp_path):
    source = write_heart_csv(tmp_path / "src" / "heart.csv", synthetic_heart_rows(10))
    target = datasets.IMPORTERS["heart"](source.parent, tmp_path / "data")
    assert target == tmp_path / "data" / "heart" / "heart.csv"
    assert target.read_bytes() == source.read_bytes()


def test_importer_rejects_other_columns_and_missing_files(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(FileNotFoundError):
        datasets.IMPORTERS["heart"](tmp_path / "src", tmp_path / "data")
    (tmp_path / "src" / "heart.csv").write_text("age,sex\n1,0\n")
    with pytest.raises(ValueError, match="header"):
        datasets.IMPORTERS["heart"](tmp_path / "src", tmp_path / "data")


def test_curated_schema_covers_every_column_and_hides_the_label_when_serving():
    import tensorflow_data_validation as tfdv

    from tests.conftest import REPO

    schema = tfdv.load_schema_text(str(REPO / load_task("heart").schema_file))
    assert [f.name for f in schema.feature] == list(F.CSV_COLUMNS)
    label = next(f for f in schema.feature if f.name == F.LABEL_KEY)
    assert list(label.not_in_environment) == ["SERVING"]
    thal = next(d for d in schema.string_domain if d.name == "thal")
    assert {"normal", "fixed", "reversible"} <= set(thal.value)


def test_model_one_hot_encodes_categoricals_and_outputs_probabilities():
    from models.heart.model import build_model

    sizes = {name: 3 + i for i, name in enumerate(F.MODEL_CATEGORICAL)}
    model = build_model(sizes)
    rng = np.random.default_rng(0)
    batch = {n: rng.integers(0, s, size=5).astype("int64") for n, s in sizes.items()}
    batch.update({n: rng.normal(size=5).astype("float32") for n in F.MODEL_NUMERIC})
    probs = model(batch, training=False).numpy()
    assert probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    widths = {layer.name: layer.output.shape[-1] for layer in model.layers if layer.name.endswith("_one_hot")}
    assert widths == {f"{n}_one_hot": s for n, s in sizes.items()}


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
    target = datasets.IMPORTERS["heart"](shared, tmp_path)
    lines = target.read_text().splitlines()
    assert len(lines) == 303 + 1 and lines[1] == "63,1,1,145,233,1,2,150,0,2.3,3,0,fixed,0"
    assert ("heart/heart.csv", hashlib.md5(target.read_bytes()).hexdigest()) in _tracked_md5s()
