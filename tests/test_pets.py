"""pets: image ExampleGen, preprocessing, Xception-lite, tuner space, task config (no pipeline run)."""
from __future__ import annotations

import glob
import json
import logging
import shutil

import numpy as np
import pytest
import tensorflow as tf

from components import image_example_gen as ieg
from models.pets import features as F
from models.pets import preprocessing as P
from tests.pets_images import encode, synthetic_image, write_pets, write_truncated_jpeg

VERSION = {"md5": "0123abcd.dir", "dirty": False, "target": "data.dvc"}


def run_image_example_gen(input_base, out_uri, data_version=VERSION):
    """Run ImageExampleGen's executor the way the launcher does (exec properties as JSON)."""
    from google.protobuf import message
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    component = ieg.image_example_gen(str(input_base), data_version)
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
    rows = read_split(examples, "train") + read_split(examples, "eval")
    assert len(rows) == 40
    for row in rows:
        label, filename = feature(row, "label").decode(), feature(row, "filename").decode()
        assert label in ("cat", "dog") and filename.startswith(label + "/")
        assert feature(row, "image") == (data / filename).read_bytes()
    assert sorted(feature(r, "label") for r in rows).count(b"cat") == 20


def test_corrupt_and_non_image_files_are_skipped_counted_and_recorded(ingested):
    _, examples = ingested
    names = {feature(r, "filename") for s in ("train", "eval") for r in read_split(examples, s)}
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
    """Same names -> same split, even when every image's bytes differ; both splits non-empty."""
    data, first = ingested
    copy = write_pets(tmp_path / "data", per_class=20, seed=99)  # same names, different pixels
    shutil.copy(data / "cat" / "cat.broken.jpg", copy / "cat")
    second = run_image_example_gen(copy, tmp_path / "examples")
    for split in ("train", "eval"):
        a = sorted(feature(r, "filename") for r in read_split(first, split))
        b = sorted(feature(r, "filename") for r in read_split(second, split))
        assert a == b and a, split
    assert len(read_split(first, "eval")) < len(read_split(first, "train"))


def test_no_images_at_all_is_a_clear_error(tmp_path):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "data" / "cat" / "readme.txt").write_text("nothing here")
    with pytest.raises(ValueError, match="no decodable JPEG/PNG images"):
        run_image_example_gen(tmp_path / "data", tmp_path / "examples")


# --- preprocessing --------------------------------------------------------------------------------

def test_decode_resizes_jpeg_png_grey_and_rgba_to_unit_range():
    rng = np.random.default_rng(1)
    red = synthetic_image("cat", rng, size=48)
    grey = tf.io.encode_png(np.full((30, 50, 1), 128, np.uint8)).numpy()
    rgba = tf.io.encode_png(np.dstack([red, np.full(red.shape[:2], 255, np.uint8)])).numpy()
    images = P.decode_images(tf.constant([encode(red, "jpg"), encode(red, "png"), grey, rgba]), 24).numpy()
    assert images.shape == (4, 24, 24, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images[0, ..., 0].mean() > images[0, ..., 2].mean() + 0.3  # still mostly red
    np.testing.assert_allclose(images[2], 128 / 255, atol=1e-3)
    np.testing.assert_allclose(images[1], images[3], atol=1e-5)  # alpha channel dropped


def test_preprocessing_fn_outputs_image_label_id_and_name():
    rng = np.random.default_rng(2)
    images = [encode(synthetic_image(c, rng), "jpg") for c in ("cat", "dog", "dog")]
    inputs = {
        F.IMAGE_KEY: tf.constant([[b] for b in images]),
        F.LABEL_KEY: tf.constant([[b"cat"], [b"dog"], [b"dog"]]),
        F.FILENAME_KEY: tf.constant([[b"a"], [b"b"], [b"c"]]),
    }
    out = P.preprocessing_fn_32(inputs)
    assert set(out) == {F.IMAGE_XF, F.LABEL_XF, F.LABEL_NAME_XF}
    assert out[F.IMAGE_XF].shape == (3, 32, 32, 3)
    assert out[F.LABEL_XF].numpy().tolist() == [0, 1, 1]
    assert out[F.LABEL_NAME_XF].numpy().tolist() == [b"cat", b"dog", b"dog"]
    assert P.preprocessing_fn(inputs)[F.IMAGE_XF].shape[1] == F.DEFAULT_IMAGE_SIZE


def test_preprocessing_fn_is_named_by_image_size():
    from pipelines.config import import_object

    path = P.preprocessing_fn_path(160)
    assert path == "models.pets.preprocessing.preprocessing_fn_160"
    assert import_object(path).__name__ == "preprocessing_fn_160"
    with pytest.raises(AttributeError):
        P.preprocessing_fn_big  # noqa: B018
    with pytest.raises(ValueError):
        P.make_preprocessing_fn(4)


# --- model and tuner ------------------------------------------------------------------------------

def test_xception_lite_structure_and_output():
    import keras

    from models.pets.model import block_widths, build_model, inference_model

    assert block_widths(32, 3) == [32, 64, 128]
    assert block_widths(64, 5) == [64, 128, 256, 512, 512]
    model = build_model({"base_width": 16, "num_blocks": 3, "entry_width": 8}, image_size=32)
    core = inference_model(model)
    kinds = [type(layer).__name__ for layer in core.layers]
    assert kinds.count("SeparableConv2D") == 2 * 3 + 1
    projections = [layer for layer in core.layers if layer.name.endswith("_project")]
    assert len(projections) == 3 and all(p.kernel_size == (1, 1) and p.strides == (2, 2) for p in projections)
    assert kinds.count("MaxPooling2D") == 3 and "GlobalAveragePooling2D" in kinds
    x = np.random.default_rng(0).random((5, 32, 32, 3)).astype("float32")
    probs = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    assert probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_augmentation_only_when_training():
    import keras

    from models.pets.model import build_model

    model = build_model({"base_width": 16, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    augmentation = model.get_layer("augmentation")
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(augmentation(x, training=True)), x)
    first = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    second = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    np.testing.assert_array_equal(first, second)


def _saved_and_loaded(network, tmp_path, size=32):
    """network (images dict -> probabilities) saved as a TF SavedModel with a `serve` function, reloaded
    (keep a reference to the result while calling it: its functions do not hold its variables)."""
    module = tf.Module()
    module.model = network
    module.serve = tf.function(lambda images: network({F.IMAGE_XF: images}, training=False),
                               input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    return tf.saved_model.load(str(tmp_path / "saved"))


def test_exported_network_has_no_augmentation_and_matches_inference(tmp_path):
    import keras

    from models.pets.model import build_model, inference_model

    model = build_model({"base_width": 16, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    core = inference_model(model)
    assert "augmentation" in [layer.name for layer in model.layers]
    assert "augmentation" not in [layer.name for layer in core.layers]
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(core({F.IMAGE_XF: x}, training=False)), expected)
    # It saves as a TF SavedModel (the random layers' seed state would not).
    loaded = _saved_and_loaded(core, tmp_path)
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, rtol=1e-5)


def test_translation_and_contrast_are_added_only_when_set():
    import keras

    from models.pets.model import build_model

    plain = build_model({"base_width": 8, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    names = [layer.name for layer in plain.get_layer("augmentation").layers]
    assert names == ["random_flip", "random_rotation", "random_zoom"]
    strong = build_model({"base_width": 8, "num_blocks": 2, "entry_width": 8, "translation": 0.1,
                          "contrast": 0.3}, image_size=32, seed=1)
    augmentation = strong.get_layer("augmentation")
    assert [layer.name for layer in augmentation.layers][-2:] == ["random_translation", "random_contrast"]
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(x, training=False)), x)
    augmented = keras.ops.convert_to_numpy(augmentation(x, training=True))
    assert augmented.shape == x.shape and not np.allclose(augmented, x)


def test_flip_averaged_model_is_mirror_invariant_and_exports(tmp_path):
    import keras

    from models.pets.model import FlipAveraged, build_model, inference_model

    model = build_model({"base_width": 8, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    network = inference_model(model)
    averaged = inference_model(model, flip_average=True)
    assert isinstance(averaged, FlipAveraged) and averaged.network is network
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    mirrored = x[:, :, ::-1, :].copy()

    def run(m, images):
        return keras.ops.convert_to_numpy(m({F.IMAGE_XF: images}, training=False))

    expected = 0.5 * (run(network, x) + run(network, mirrored))
    np.testing.assert_allclose(run(averaged, x), expected, rtol=1e-5, atol=1e-6)
    # Same answer for a photo and its mirror image; the plain network does not have that property.
    np.testing.assert_allclose(run(averaged, mirrored), run(averaged, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(run(network, mirrored), run(network, x))
    np.testing.assert_allclose(run(averaged, x).sum(axis=1), 1.0, rtol=1e-5)
    loaded = _saved_and_loaded(averaged, tmp_path)
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_every_tuner_choice_builds():
    import keras_tuner

    from models.pets import tuner

    for base in tuner.BASE_WIDTHS + (64,):
        for blocks in range(tuner.NUM_BLOCKS[0], tuner.NUM_BLOCKS[1] + 1):
            hp = keras_tuner.HyperParameters()
            hp.Fixed("base_width", base)
            hp.Fixed("num_blocks", blocks)
            values = tuner.search_space(hp, tuner.BASE_WIDTHS + (64,))
            assert values["base_width"] == base and values["num_blocks"] == blocks
            from models.pets.model import build_model

            model = build_model(values, image_size=32)
            assert model.output_shape == (None, 2)


def test_throughput_logger_writes_images_per_second(tmp_path):
    from models.pets.model import build_model
    from models.pets.trainer import ThroughputLogger

    model = build_model({"base_width": 8, "num_blocks": 2, "entry_width": 8}, image_size=16)
    x = np.random.default_rng(0).random((32, 16, 16, 3)).astype("float32")
    y = np.arange(32) % 2
    path = tmp_path / "run" / "throughput.json"
    model.fit({F.IMAGE_XF: x}, y, batch_size=8, epochs=2, verbose=0,
              callbacks=[ThroughputLogger(8, str(path))])
    result = json.loads(path.read_text())
    assert result["images_per_second"] > 0 and result["images"] == 64
    assert [e["steps"] for e in result["epochs"]] == [4, 4]


# --- task config ----------------------------------------------------------------------------------

def test_pets_task_is_registered_with_profiles():
    from models.pets import config
    from pipelines.config import import_object, load_task

    task = load_task("pets")
    assert task is config.TASK and task.example_gen == "components.image_example_gen.image_example_gen"
    assert callable(import_object(task.preprocessing_fn)) and task.schema_file
    assert set(config.PROFILES) >= {"default", "gpu"}
    gpu = config.PROFILES["gpu"]
    assert gpu.preprocessing_fn.endswith("_192") and task.preprocessing_fn.endswith(f"_{F.DEFAULT_IMAGE_SIZE}")
    assert gpu.tuner_max_trials > task.tuner_max_trials
    assert gpu.resources["Trainer"].gpu == 1
    assert gpu.custom_config["checkpoints"] == task.custom_config["checkpoints"]  # merged, not replaced


def test_pets_eval_config_metrics_exist_in_tfma():
    import tensorflow_model_analysis as tfma

    from models.pets.config import TASK
    from pipelines.factory import build_eval_config

    for name in TASK.eval.metrics:
        assert hasattr(tfma.metrics, name), name
    config = build_eval_config(TASK)
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], [F.LABEL_NAME_XF]]


def test_curated_schema_has_no_domain_on_image_and_knows_the_classes():
    import tensorflow_data_validation as tfdv

    from pipelines.factory import resolve_package_file
    from models.pets.config import TASK

    schema = tfdv.load_schema_text(resolve_package_file(TASK.schema_file))
    features = {f.name: f for f in schema.feature}
    assert set(features) == {"image", "label", "filename"}
    assert not features["image"].HasField("domain")
    assert list(tfdv.get_domain(schema, "label").value) == list(F.CLASS_NAMES)
