"""components.batch_inference: real Beam DirectRunner runs over real (tiny) SavedModels that honour
the serving contract (serving_default(examples) -> probabilities / similarity).

The helpers at the top build those models; tests/pipelines/test_cli_predict.py reuses them."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from components import batch_inference as bi
from components.batch_inference import metrics, schema as schema_mod
from tests.conftest import REPO, synthetic_census_rows, write_census_csv

CENSUS_SCHEMA = str(REPO / "models" / "census" / "schema.pbtxt")
PETS_SCHEMA = str(REPO / "models" / "pets" / "schema.pbtxt")
STS_SCHEMA = str(REPO / "models" / "sts" / "schema.pbtxt")
CENSUS_CLASSES = ("<=50K", ">50K")
BEAM_ARGS = ("--direct_running_mode=in_memory", "--direct_num_workers=1")


# ------------------------------------------------------------------------------ tiny models


def _parse_spec(serving: bi.ServingSchema):
    dtypes = {"INT": tf.int64, "FLOAT": tf.float32, "BYTES": tf.string}
    return {name: tf.io.FixedLenFeature([], dtypes[kind]) for name, kind in serving.features.items()}


def save_census_model(export_dir: Path) -> Path:
    """A census-shaped classifier: parses every census serving feature (as the real model does, so
    an example without `age` is refused); P(>50K) = sigmoid((age - 40) / 10 + (education_num - 10) / 3)."""
    spec = _parse_spec(bi.from_schema_file(CENSUS_SCHEMA, "income_bracket"))

    class Census(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            f = tf.io.parse_example(examples, spec)
            z = (tf.cast(f["age"], tf.float32) - 40.0) / 10.0 + (tf.cast(f["education_num"], tf.float32) - 10.0) / 3.0
            p = tf.sigmoid(z)
            return {"probabilities": tf.stack([1.0 - p, p], axis=1)}

    module = Census()
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve.get_concrete_function()})
    return export_dir


def census_probability(age: int, education_num: int) -> float:
    return float(1.0 / (1.0 + np.exp(-((age - 40) / 10.0 + (education_num - 10) / 3.0))))


def save_pets_model(export_dir: Path) -> Path:
    """A pets-shaped classifier on the `image` bytes: P(dog) = the blue share of the mean colour."""

    class Pets(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            images = tf.io.parse_example(examples, {"image": tf.io.FixedLenFeature([], tf.string)})["image"]

            def mean_colour(data):
                image = tf.io.decode_image(data, channels=3, expand_animations=False)
                return tf.reduce_mean(tf.cast(image, tf.float32), axis=[0, 1])

            colour = tf.map_fn(mean_colour, images, fn_output_signature=tf.float32)
            dog = colour[:, 2] / (colour[:, 0] + colour[:, 2] + 1e-6)
            return {"probabilities": tf.stack([1.0 - dog, dog], axis=1)}

    module = Pets()
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve.get_concrete_function()})
    return export_dir


def save_sts_model(export_dir: Path) -> Path:
    """An sts-shaped scorer: similarity = 1 if the two sentences are equal, else the ratio of
    their lengths (shorter / longer)."""
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in ("sentence1", "sentence2")}

    class Sts(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            f = tf.io.parse_example(examples, spec)
            a = tf.cast(tf.strings.length(f["sentence1"]), tf.float32)
            b = tf.cast(tf.strings.length(f["sentence2"]), tf.float32)
            ratio = tf.minimum(a, b) / tf.maximum(tf.maximum(a, b), 1.0)
            return {"similarity": tf.where(tf.equal(f["sentence1"], f["sentence2"]), 1.0, ratio)}

    module = Sts()
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve.get_concrete_function()})
    return export_dir


# ------------------------------------------------------------------------------ input files


def write_mixed_census_csv(path: Path, n: int = 40):
    """census rows + an `id` column; row 5 misses its age, row 9 has hours_per_week 'forty',
    row 13 is cut short. Returns (rows, {bad id: expected reason fragment})."""
    rows = synthetic_census_rows(n, seed=3)
    for i, row in enumerate(rows):
        row["id"] = f"r{i}"
    rows[5]["age"] = ""
    rows[9]["hours_per_week"] = "forty"
    columns = write_columns()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for i, row in enumerate(rows):
            cells = [str(row[c]) for c in columns]
            writer.writerow(cells[:5] if i == 13 else cells)
    return rows, {"r5": "missing value in column 'age'", "r9": "'forty' is not an integer", "r13": "expected 16 fields"}


def write_columns():
    from models.census import features as F

    return ["id", *F.CSV_COLUMNS]


def read_csv(path) -> list:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def census_spec(model_dir) -> bi.ModelSpec:
    return bi.ModelSpec(str(model_dir), bi.from_schema_file(CENSUS_SCHEMA, "income_bracket"), "probabilities", CENSUS_CLASSES)


@pytest.fixture(scope="module")
def census_model(tmp_path_factory):
    return save_census_model(tmp_path_factory.mktemp("census") / "model")


# ------------------------------------------------------------------------------ tests


def test_serving_schema_from_census_schema_leaves_out_the_label():
    serving = bi.from_schema_file(CENSUS_SCHEMA, "income_bracket")
    assert "income_bracket" not in serving.features
    assert serving.features["age"] == "INT" and serving.features["workclass"] == "BYTES"
    assert "age" in serving.required
    with pytest.raises(bi.EncodeError, match="'x1' is not an integer"):
        schema_mod.to_feature("age", "INT", "x1")
    assert schema_mod.to_feature("age", "INT", "39.0").int64_list.value == [39]


def test_sts_and_pets_serving_features_follow_the_serving_environment():
    assert set(bi.from_schema_file(STS_SCHEMA, "score").features) == {"sentence1", "sentence2"}
    assert bi.from_schema_file(PETS_SCHEMA, "label").features == {"image": "BYTES"}


def test_mixed_csv_good_rows_predicted_in_order_bad_rows_rejected(census_model, tmp_path):
    rows, bad = write_mixed_census_csv(tmp_path / "in" / "people.csv")
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    outcome = bi.predict(census_spec(census_model), str(tmp_path / "in" / "people.csv"), bi.CSV, str(out),
                         batch_size=8, beam_args=BEAM_ARGS)
    assert (outcome.total, outcome.predicted, outcome.rejected) == (40, 37, 3)
    predicted = read_csv(out)
    good = [r for r in rows if r["id"] not in bad]
    assert [p["id"] for p in predicted] == [r["id"] for r in good]  # input order, id carried
    assert list(predicted[0]) == ["id", "income_bracket", "prediction", "probability_<=50K", "probability_>50K",
                                  "input_row"]
    # Each row says where it came from, as each reject does: the input and output join back.
    kept = [n + 2 for n, r in enumerate(rows) if r["id"] not in bad]
    assert [p["input_row"] for p in predicted] == [f"people.csv:{line}" for line in kept]
    for p, r in zip(predicted, good):
        total = float(p["probability_<=50K"]) + float(p["probability_>50K"])
        assert total == pytest.approx(1.0, abs=1e-5)
        assert float(p["probability_>50K"]) == pytest.approx(census_probability(r["age"], r["education_num"]), abs=1e-5)
        assert p["prediction"] == (">50K" if float(p["probability_>50K"]) > 0.5 else "<=50K")
        assert p["income_bracket"] == r["income_bracket"]
    rejects = read_csv(outcome.rejects_path)
    assert outcome.rejects_path == str(out) + ".rejects.csv"
    assert [r["location"] for r in rejects] == ["people.csv:7", "people.csv:11", "people.csv:15"]
    for reject, wanted in zip(rejects, bad.values()):
        assert wanted in reject["reason"]
    assert rejects[0]["id"] == "r5" and rejects[1]["hours_per_week"] == "forty"


def test_a_row_the_model_refuses_is_rejected_without_failing_its_batch(census_model, tmp_path):
    """A schema that does not require `age` lets an empty age through; the model (which needs it)
    refuses that example, and only that one."""
    serving = bi.from_schema_file(CENSUS_SCHEMA, "income_bracket")
    lenient = bi.ServingSchema(serving.features, frozenset(), "lenient")
    rows = synthetic_census_rows(10, seed=4)
    rows[3]["age"] = ""
    write_census_csv(tmp_path / "in.csv", rows)
    spec = bi.ModelSpec(str(census_model), lenient, "probabilities", CENSUS_CLASSES)
    outcome = bi.predict(spec, str(tmp_path / "in.csv"), bi.CSV, str(tmp_path / "out.csv"), batch_size=4, beam_args=BEAM_ARGS)
    assert (outcome.predicted, outcome.rejected) == (9, 1)
    (reject,) = read_csv(outcome.rejects_path)
    assert reject["location"] == "in.csv:5" and reject["reason"].startswith("the model refused the example")


def test_label_column_accuracy_and_auc(census_model, tmp_path):
    rows = synthetic_census_rows(60, seed=5)
    # Label = what the tiny model predicts, except 6 rows flipped: accuracy 54/60.
    for i, row in enumerate(rows):
        rich = census_probability(row["age"], row["education_num"]) > 0.5
        row["income_bracket"] = CENSUS_CLASSES[int(rich) ^ int(i % 10 == 0)]
    write_census_csv(tmp_path / "in.csv", rows)
    outcome = bi.predict(census_spec(census_model), str(tmp_path / "in.csv"), bi.CSV, str(tmp_path / "out.csv"),
                         beam_args=BEAM_ARGS, label_column="income_bracket")
    assert outcome.metrics["labelled"] == 60
    assert outcome.metrics["accuracy"] == pytest.approx(54 / 60)
    scores = np.array([census_probability(r["age"], r["education_num"]) for r in rows])
    positives = np.array([r["income_bracket"] == ">50K" for r in rows])
    assert outcome.metrics["auc"] == pytest.approx(metrics.auc(scores, positives), abs=1e-4)
    assert 0.5 < outcome.metrics["auc"] < 1.0


def test_auc_rank_statistic():
    assert metrics.auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([False, False, True, True])) == pytest.approx(0.75)
    assert metrics.auc(np.array([0.5, 0.5]), np.array([False, True])) == pytest.approx(0.5)
    assert metrics.class_index("1", ("neg", "pos")) == 1 and metrics.class_index(">50K", CENSUS_CLASSES) == 1
    assert metrics.class_index("maybe", CENSUS_CLASSES) is None


def test_image_folder_with_a_corrupt_file(tmp_path):
    from tests.pets_images import write_pets, write_truncated_jpeg

    model = save_pets_model(tmp_path / "pets_model")
    root = write_pets(tmp_path / "photos", per_class=4, size=24)
    write_truncated_jpeg(root / "cat" / "cat.broken.jpg")
    (root / "notes.txt").write_text("not an image")
    spec = bi.ModelSpec(str(model), bi.from_schema_file(PETS_SCHEMA, "label"), "probabilities", ("cat", "dog"))
    outcome = bi.predict(spec, str(root), bi.IMAGE_FOLDER, str(tmp_path / "pets.csv"), batch_size=3,
                         beam_args=BEAM_ARGS, label_column="label")
    assert (outcome.total, outcome.predicted, outcome.rejected) == (10, 8, 2)
    predicted = read_csv(tmp_path / "pets.csv")
    assert list(predicted[0]) == ["filename", "label", "prediction", "probability_cat", "probability_dog", "input_row"]
    assert [p["filename"] for p in predicted] == sorted(p["filename"] for p in predicted)
    assert all(p["prediction"] == p["label"] for p in predicted)  # red cats, blue dogs
    assert outcome.metrics["accuracy"] == 1.0 and outcome.metrics["auc"] == 1.0
    rejected = read_csv(outcome.rejects_path)
    assert [(r["filename"], r["label"]) for r in rejected] == [("cat/cat.broken.jpg", "cat"), ("notes.txt", "")]
    rejects = {r["location"]: r["reason"] for r in rejected}
    assert set(rejects) == {"cat/cat.broken.jpg", "notes.txt"}
    assert "does not decode" in rejects["cat/cat.broken.jpg"] and "not a JPEG or PNG" in rejects["notes.txt"]


def test_sts_pairs_get_a_similarity(tmp_path):
    model = save_sts_model(tmp_path / "sts_model")
    path = tmp_path / "pairs.csv"
    path.write_text("pair_id,sentence1,sentence2\n1,a dog runs,a dog runs\n2,abcd,ab\n3,,empty first\n4,\"x, y\",xy\n")
    spec = bi.ModelSpec(str(model), bi.from_schema_file(STS_SCHEMA, "score"), "similarity")
    outcome = bi.predict(spec, str(path), bi.CSV, str(tmp_path / "sim.csv"), beam_args=BEAM_ARGS)
    predicted = read_csv(tmp_path / "sim.csv")
    assert list(predicted[0]) == ["pair_id", "similarity", "input_row"]
    assert [(p["pair_id"], float(p["similarity"])) for p in predicted] == [("1", 1.0), ("2", 0.5), ("4", pytest.approx(0.5))]
    (reject,) = read_csv(outcome.rejects_path)
    assert reject["location"] == "pairs.csv:4" and "sentence1" in reject["reason"]


def test_invalid_utf8_in_a_model_feature_is_rejected_and_counted(census_model, tmp_path):
    """Replaced bytes would be scored as an unknown category: such a row is a reject with its line.
    Invalid bytes only in a carried column (an id) keep the row."""
    write_mixed_census_csv(tmp_path / "people.csv", n=20)
    lines = [line.split(b",") for line in (tmp_path / "people.csv").read_bytes().split(b"\n")]
    column = write_columns().index("workclass")
    lines[2][column] = b"Priv\xffte"  # rows[1] (line 3): a feature the model reads
    lines[3][0] = b"r\xfe2"  # rows[2] (line 4): the id only, carried
    (tmp_path / "people.csv").write_bytes(b"\n".join(b",".join(cells) for cells in lines))
    outcome = bi.predict(census_spec(census_model), str(tmp_path / "people.csv"), bi.CSV, str(tmp_path / "o.csv"),
                         beam_args=BEAM_ARGS)
    rejects = read_csv(outcome.rejects_path)
    assert [(r["location"], r["reason"]) for r in rejects if "UTF-8" in r["reason"]] == [
        ("people.csv:3", "column 'workclass': invalid UTF-8 (the model would read the replaced bytes as an unknown value)")]
    predicted = read_csv(tmp_path / "o.csv")
    assert "r\ufffd2" in [p["id"] for p in predicted] and "r1" not in [p["id"] for p in predicted]
    assert outcome.rejected == 1 + sum(1 for r in rejects if "UTF-8" not in r["reason"])


def test_input_errors_are_one_line(census_model, tmp_path):
    spec = census_spec(census_model)
    with pytest.raises(bi.InputError, match="does not exist"):
        bi.predict(spec, str(tmp_path / "nope.csv"), bi.CSV, str(tmp_path / "o.csv"))
    (tmp_path / "few.csv").write_text("id,age\n1,30\n")
    with pytest.raises(bi.InputError, match="has no column 'workclass'"):
        bi.predict(spec, str(tmp_path / "few.csv"), bi.CSV, str(tmp_path / "o.csv"))
    good = write_census_csv(tmp_path / "good.csv", synthetic_census_rows(3, seed=1))
    with pytest.raises(bi.InputError, match="would overwrite the input"):
        bi.predict(spec, str(good), bi.CSV, str(good))
    with pytest.raises(bi.InputError, match="folder .* does not exist"):
        bi.predict(spec, str(tmp_path / "few.csv"), bi.CSV, str(tmp_path / "missing" / "o.csv"))
