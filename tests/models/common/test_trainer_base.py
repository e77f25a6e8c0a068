"""The shared Trainer skeleton (models/common/trainer_base.py) on a tiny real Transform output:
seed, batch size, throughput and training info, for Keras 3 and tf_keras models."""
from __future__ import annotations

import glob
import json
import random

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.framework import config as tf_config

from models.common import trainer_base, training, tuning
from models.common.training_info import read_training_info
from tests.records import serialized_examples

COLORS = ("red", "green", "blue")
TINY_HPARAMS = {"units": 4, "dropout": 0.3, "learning_rate": 0.05, "batch_size": 8}


def preprocessing_fn(inputs):
    import tensorflow_transform as tft

    return {
        "x_xf": tft.scale_to_z_score(inputs["x"]),
        "color_xf": tft.compute_and_apply_vocabulary(inputs["color"], num_oov_buckets=1,
                                                     vocab_filename="color_vocab"),
        "label": inputs["y"],
    }


def tiny_rows(n: int, seed: int):
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        x, color = rng.uniform(-2, 2), rng.choice(COLORS)
        rows.append({"x": x, "color": color, "y": int(x > 0 or color == "red")})
    return rows


@pytest.fixture(scope="module")
def transform_run(tmp_path_factory):
    """A transform graph over x (z-score), color (vocabulary + 1 OOV bucket) and the label y, and
    one file of transformed tf.Examples per split."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import metadata_io

    root = tmp_path_factory.mktemp("tiny_transform")
    raw_spec = {"x": tf.io.FixedLenFeature([], tf.float32), "color": tf.io.FixedLenFeature([], tf.string),
                "y": tf.io.FixedLenFeature([], tf.int64)}
    metadata = tft.DatasetMetadata.from_feature_spec(raw_spec)
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(root / "tmp"), force_tf_compat_v1=False):
        raw = pipeline | beam.Create(tiny_rows(120, seed=0))
        _, transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    # TFX's Transform also records the raw schema there; serving parses raw examples with it.
    metadata_io.write_metadata(metadata, str(root / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    output = tft.TFTransformOutput(str(root / "transform"))
    files = {}
    for split, rows in (("train", tiny_rows(120, seed=0)), ("validation", tiny_rows(40, seed=1))):
        transformed = output.transform_raw_features(
            {"x": tf.constant([r["x"] for r in rows], tf.float32), "color": tf.constant([r["color"] for r in rows]),
             "y": tf.constant([r["y"] for r in rows], tf.int64)})
        columns = {name: transformed[name].numpy().tolist() for name in ("x_xf", "color_xf", "label")}
        examples = serialized_examples([{name: columns[name][i] for name in columns} for i in range(len(rows))])
        files[split] = str(root / f"{split}.tfrecord")
        with tf.io.TFRecordWriter(files[split]) as writer:
            for example in examples:
                writer.write(example)
    return str(root / "transform"), files


def fn_args_for(transform_run, out_dir, custom_config, train_steps=6):
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx_bsl.public import tfxio

    def tf_dataset_factory(file_pattern, options, schema):
        return tfxio.TFExampleRecord(file_pattern=file_pattern, schema=schema,
                                     telemetry_descriptors=["test"]).TensorFlowDataset(options)

    transform_dir, files = transform_run
    return FnArgs(
        working_dir=str(out_dir / "working"), train_files=[files["train"]], eval_files=[files["validation"]],
        train_steps=train_steps, eval_steps=2, transform_graph_path=transform_dir, transform_output=transform_dir,
        data_accessor=DataAccessor(tf_dataset_factory, None, None),
        serving_model_dir=str(out_dir / "model" / "Format-Serving"), model_run_dir=str(out_dir / "model_run"),
        custom_config={"checkpoints": 3, **custom_config},
    )


class Observed:
    """What the hooks saw: the first random draw after seeding, and the training batch size."""

    def __init__(self):
        self.first_draw = None
        self.batch_rows = None

    def build(self, run):
        self.first_draw = random.random()  # the seed is applied before the model is built
        k = run.keras
        sizes = training.vocabulary_sizes(run.tf_transform_output, {"color_xf": "color_vocab"}, 1)
        x = k.Input(shape=(), dtype="float32", name="x_xf")
        color = k.Input(shape=(), dtype="int64", name="color_xf")
        one_hot = k.layers.CategoryEncoding(num_tokens=sizes["color_xf"], output_mode="one_hot")(color)
        hidden = k.layers.Concatenate()([k.layers.Reshape((1,))(x), one_hot])
        hidden = k.layers.Dense(int(run.hparams["units"]), activation="relu")(hidden)
        hidden = k.layers.Dropout(float(run.hparams["dropout"]))(hidden)
        model = k.Model({"x_xf": x, "color_xf": color}, k.layers.Dense(2, activation="softmax")(hidden))
        model.compile(k.optimizers.Adam(float(run.hparams["learning_rate"])), "sparse_categorical_crossentropy")
        return model

    def before_fit(self, run, model, train_ds):
        self.batch_rows = int(next(iter(train_ds))[1].shape[0])
        return train_ds


def train(transform_run, out_dir, custom_config=(), keras_name="keras", **kwargs):
    import importlib

    observed = Observed()
    fn_args = fn_args_for(transform_run, out_dir, dict(custom_config))
    info = trainer_base.fit_and_export(
        fn_args, build_model=observed.build, before_fit=observed.before_fit, default_hparams=TINY_HPARAMS,
        model_features=("x_xf", "color_xf"), label_key="y", keras_module=importlib.import_module(keras_name),
        **kwargs)
    return fn_args, info, observed


def probabilities(serving_model_dir):
    model = tf.saved_model.load(serving_model_dir)
    rows = [{"x": x, "color": c} for x, c in zip(np.linspace(-2, 2, 9).tolist(), COLORS * 3)]
    return model.signatures["serving_default"](examples=tf.constant(serialized_examples(rows)))["probabilities"].numpy()


def test_seed_is_applied_before_building_and_recorded_next_to_the_logs_and_in_the_saved_model(
        transform_run, tmp_path):
    fn_args, info, observed = train(transform_run, tmp_path, {"seed": 7})
    random.seed(7)
    assert observed.first_draw == random.random()
    in_run = json.loads((tmp_path / "model_run" / "training_info.json").read_text())
    in_model = json.loads((tmp_path / "model" / "Format-Serving" / "assets.extra" / "training_info.json").read_text())
    assert in_run == in_model == json.loads(json.dumps(info))
    assert in_model["seed"] == 7 and in_model["deterministic"] is False and in_model["framework"] == "keras"
    assert (in_model["epochs"], in_model["steps_per_epoch"], in_model["train_steps"], in_model["eval_steps"]) == (3, 2, 6, 2)
    assert in_model["hparams"] == TINY_HPARAMS and in_model["examples_per_second"] > 0
    # Readers find it from the Model artifact, the SavedModel or the run's log folder.
    for directory in (tmp_path / "model", tmp_path / "model" / "Format-Serving", tmp_path / "model_run"):
        assert read_training_info(str(directory))["seed"] == 7
    with pytest.raises(FileNotFoundError, match="training_info.json"):
        read_training_info(str(tmp_path / "working"))
    # The serving contract is unchanged by the extra file.
    assert probabilities(fn_args.serving_model_dir).shape == (9, 2)


def test_seed_defaults_to_42(transform_run, tmp_path):
    _, info, observed = train(transform_run, tmp_path)
    random.seed(42)
    assert info["seed"] == 42 and observed.first_draw == random.random()


@pytest.mark.parametrize("keras_name", ["keras", "tf_keras"])
def test_the_same_seed_trains_the_same_weights(transform_run, tmp_path, keras_name):
    runs = [train(transform_run, tmp_path / name, {"seed": seed}, keras_name)
            for name, seed in (("first", 5), ("again", 5), ("other", 6))]
    first, again, other = (probabilities(fn_args.serving_model_dir) for fn_args, _, _ in runs)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)
    assert runs[0][1]["framework"] == keras_name


def test_deterministic_ops_on_request(transform_run, tmp_path):
    try:
        _, info, _ = train(transform_run, tmp_path, {"deterministic": True})
        assert info["deterministic"] is True and tf_config.is_op_determinism_enabled()
    finally:
        tf_config.disable_op_determinism()


def test_batch_size_comes_from_hparams_only(transform_run, tmp_path):
    _, info, observed = train(transform_run, tmp_path / "set", {"batch_size": 99, "hparams": {"batch_size": 4}})
    assert observed.batch_rows == 4 and info["batch_size"] == info["hparams"]["batch_size"] == 4
    _, info, observed = train(transform_run, tmp_path / "default", {"batch_size": 99})
    assert observed.batch_rows == 8 and info["batch_size"] == 8


def test_tuner_takes_the_batch_size_from_hparams_too(transform_run, tmp_path):
    import tensorflow_transform as tft

    fn_args = fn_args_for(transform_run, tmp_path, {"batch_size": 99, "hparams": {"batch_size": 4}})
    result = tuning.bayesian_search(
        fn_args, lambda hp: None, objective="val_loss", direction="min", project="tiny", default_trials=1,
        default_hparams=TINY_HPARAMS, tf_transform_output=tft.TFTransformOutput(fn_args.transform_graph_path),
        model_features=("x_xf", "color_xf"), epochs=1, steps_per_epoch=1)
    features, labels = next(iter(result.fit_kwargs["x"]))
    assert labels.shape[0] == 4 and set(features) == {"x_xf", "color_xf"}


def test_throughput_file_is_written_once_under_the_task_unit(transform_run, tmp_path):
    _, info, _ = train(transform_run, tmp_path, throughput_unit="images")
    written = glob.glob(str(tmp_path / "**" / "*throughput*"), recursive=True)
    assert written == [str(tmp_path / "model_run" / "throughput.json")]
    throughput = json.loads(open(written[0]).read())
    assert throughput["images"] == (6 - 1) * 8  # every batch but the traced first one
    assert throughput["images_per_second"] == info["examples_per_second"] > 0
    assert [e["steps"] for e in throughput["epochs"]] == [1, 2, 2] and throughput["batch_size"] == 8


def test_early_stopping_only_with_a_patience(transform_run, tmp_path):
    import keras

    names = [type(c).__name__ for c in trainer_base.fit_callbacks(keras, str(tmp_path), None)]
    assert names == ["TensorBoard"]
    names = [type(c).__name__ for c in trainer_base.fit_callbacks(keras, str(tmp_path), 3)]
    assert names == ["TensorBoard", "EarlyStopping"]
    _, info, _ = train(transform_run, tmp_path, {"early_stopping_patience": 2}, early_stopping_patience=None)
    assert info["early_stopping_patience"] == 2


def test_vocabulary_sizes_add_the_oov_buckets(transform_run):
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(transform_run[0])
    assert training.vocabulary_sizes(output, {"color_xf": "color_vocab"}, 1) == {"color_xf": len(COLORS) + 1}
    assert training.vocabulary_sizes(output, {"color_xf": "color_vocab"}, 3) == {"color_xf": len(COLORS) + 3}


def test_hyperparameters_defaults_then_config_then_tuner_then_fixed(transform_run, tmp_path):
    fn_args = fn_args_for(transform_run, tmp_path, {"hparams": {"units": 3, "dropout": 0.2}})
    fn_args.hyperparameters = {"units": 5}
    assert training.task_hyperparameters(fn_args, TINY_HPARAMS) == {**TINY_HPARAMS, "units": 5, "dropout": 0.2}
    _, info, _ = train(transform_run, tmp_path, {"hparams": {"units": 3}}, fixed_hparams={"units": 2})
    assert info["hparams"]["units"] == 2
