"""The image ExampleGen: class folders become tf.Examples; corrupt and non-image files are skipped,
counted and recorded, never examples; the split depends on the file name only."""
from __future__ import annotations

import glob
import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf

from components import image_example_gen as ieg
from models.common.contract import SPLITS, TEST_SPLIT, TRAIN_SPLIT, VALIDATION_SPLIT
from models.pets import features as F
from pipelines import lineage
from pipelines.outcome import data_notes
from tests.csv_data import records as _records
from tests.pets_images import encode, synthetic_image, write_pets, write_truncated_jpeg

VERSION = {"md5": "0123abcd.dir", "dirty": False, "target": "data.dvc"}
RATIO = (3, 1, 1)  # train:validation:test hash buckets


def run_image_example_gen(input_base, out_uri, data_version=VERSION):
    """Run ImageExampleGen's executor the way the launcher does (exec properties as JSON)."""
    from google.protobuf import message
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    component = ieg.image_example_gen(str(input_base), data_version, RATIO)
    props = {
        k: proto_utils.proto_to_json(v) if isinstance(v, message.Message) else v
        for k, v in component.exec_properties.items()
        if v is not None
    }
    examples = standard_artifacts.Examples()
    examples.uri = str(out_uri)
    ieg.ImageExampleGenExecutor().Do({}, {"examples": [examples]}, props)
    return examples


def read_split(examples, split):
    files = glob.glob(f"{examples.uri}/Split-{split}/*")
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(r.numpy()) for r in records]


def feature(example, name):
    return example.features.feature[name].bytes_list.value[0]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    """20 images per class plus a truncated JPEG and a text file in the class folders."""
    root = tmp_path_factory.mktemp("pets")
    data = write_pets(root / "data", per_class=20, seed=3)
    write_truncated_jpeg(data / "cat" / "cat.broken.jpg")
    (data / "dog" / "notes.txt").write_text("not an image")
    return data, run_image_example_gen(data, root / "examples")


# --- ImageExampleGen ------------------------------------------------------------------------------

def test_why_unusable_checks_magic_bytes_and_decoding(tmp_path):
    image = synthetic_image("dog", np.random.default_rng(0))
    assert ieg.why_unusable(encode(image, "jpg")) is None
    assert ieg.why_unusable(encode(image, "png")) is None
    assert ieg.why_unusable(b"") == "empty file"
    assert "not a JPEG or PNG" in ieg.why_unusable(b"GIF89a....")
    truncated = write_truncated_jpeg(tmp_path / "t.jpg").read_bytes()
    assert ieg.image_format(truncated) == "jpeg"
    assert ieg.why_unusable(truncated).startswith("jpeg does not decode")
    assert ieg.why_unusable(ieg.PNG_MAGIC + b"\x00" * 40).startswith("png does not decode")


def test_example_gen_writes_image_label_filename(ingested):
    data, examples = ingested
    rows = [row for split in SPLITS for row in read_split(examples, split)]
    assert len(rows) == 40
    for row in rows:
        label, filename = feature(row, "label").decode(), feature(row, "filename").decode()
        assert label in ("cat", "dog") and filename.startswith(label + "/")
        assert feature(row, "image") == (data / filename).read_bytes()
    assert sorted(feature(r, "label") for r in rows).count(b"cat") == 20


def test_corrupt_and_non_image_files_are_skipped_counted_and_recorded(ingested):
    _, examples = ingested
    names = {feature(r, "filename") for s in SPLITS for r in read_split(examples, s)}
    assert b"cat/cat.broken.jpg" not in names and b"dog/notes.txt" not in names
    props = examples.mlmd_artifact.custom_properties
    assert props[ieg.PROP_SKIPPED_COUNT].int_value == 2
    assert props[ieg.PROP_SKIPPED_FILES].string_value == "cat/cat.broken.jpg, dog/notes.txt"
    assert props[ieg.PROP_IMAGE_COUNT].int_value == 40
    # ... the DVC data version, like the CSV ExampleGen ...
    assert props["dvc_data_md5"].string_value == VERSION["md5"]
    assert props["dvc_data_dirty"].int_value == 0
    # ... and the full report (with reasons) next to the splits.
    report = ieg.read_reports(examples.uri)
    assert report["images"] == {"cat": 20, "dog": 20}
    reasons = {s["file"]: s["reason"] for s in report["skipped"]}
    assert reasons["cat/cat.broken.jpg"].startswith("jpeg does not decode")
    assert reasons["dog/notes.txt"].startswith("not a JPEG or PNG")


def test_skipped_files_are_named_in_a_warning(tmp_path, caplog):
    data = write_pets(tmp_path / "data", per_class=3, seed=4)
    (data / "cat" / "Thumbs.db").write_bytes(b"\x00\x01junk")
    with caplog.at_level(logging.WARNING):
        examples = run_image_example_gen(data, tmp_path / "examples")
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING)
    assert "cat/Thumbs.db" in warnings and "skipped 1 file" in warnings
    assert examples.mlmd_artifact.custom_properties[ieg.PROP_SKIPPED_COUNT].int_value == 1


def test_split_depends_on_the_file_name_only(ingested, tmp_path):
    """Same names -> same split, even when every image's bytes differ; every split non-empty."""
    data, first = ingested
    copy = write_pets(tmp_path / "data", per_class=20, seed=99)  # same names, different pixels
    shutil.copy(data / "cat" / "cat.broken.jpg", copy / "cat")
    second = run_image_example_gen(copy, tmp_path / "examples")
    for split in SPLITS:
        a = sorted(feature(r, "filename") for r in read_split(first, split))
        b = sorted(feature(r, "filename") for r in read_split(second, split))
        assert a == b and a, split
    assert len(read_split(first, VALIDATION_SPLIT)) < len(read_split(first, TRAIN_SPLIT))
    assert len(read_split(first, TEST_SPLIT)) < len(read_split(first, TRAIN_SPLIT))


def test_no_images_at_all_is_a_clear_error(tmp_path):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "cat" / "readme.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="no decodable JPEG/PNG images"):
        run_image_example_gen(tmp_path / "data", tmp_path / "examples")


def test_corrupt_image_is_skipped_counted_and_never_reaches_training(tmp_path):
    """The ImageExampleGen executor on a folder with one truncated JPEG. (The full pets run with a
    corrupt file, blessed and pushed on the good images, is tests/test_e2e_pets.py.)"""
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    from components import data_version as dv
    from components import image_example_gen as ieg
    from tests.pets_images import write_pets, write_truncated_jpeg

    write_pets(tmp_path / "pets", per_class=6, seed=3)
    write_truncated_jpeg(tmp_path / "pets" / "cat" / "cat.broken.jpg")
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    ieg.ImageExampleGenExecutor().Do({}, {"examples": [examples]}, {
        "input_base": str(tmp_path / "pets"),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(
            splits=[example_gen_pb2.Input.Split(name="images", pattern=ieg.INPUT_PATTERN)])),
        "output_config": proto_utils.proto_to_json(ieg.split_output_config(RATIO)),
        "custom_config": proto_utils.proto_to_json(dv.to_custom_config({"md5": "untracked", "dirty": True})),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    })
    assert examples.get_int_custom_property("skipped_count") == 1
    assert examples.get_string_custom_property("skipped_files") == "cat/cat.broken.jpg"
    names = [e.features.feature["filename"].bytes_list.value[0].decode()
             for split in SPLITS for e in _records(examples.uri, split)]
    assert len(names) == 12 and "cat/cat.broken.jpg" not in names
    record = lineage.ArtifactRecord(0, "Examples", examples.uri, "examples", {
        "skipped_count": 1, "skipped_files": "cat/cat.broken.jpg"})
    assert data_notes(record) == ["1 input record(s) skipped (not used for training): cat/cat.broken.jpg"]
