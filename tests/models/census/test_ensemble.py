"""The census seed ensemble (models/common/ensemble.py): members trained on their own losses in one
graph, served as their average with the single model's serving contract."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from models.common import ensemble
from models.census import features as F
from models.census.model import build_model, served_model
from tests.conftest import synthetic_census_rows
from tests.records import serialized_examples

VOCAB = {name: 5 + i for i, name in enumerate(F.MODEL_CATEGORICAL)}
SMALL = {"num_transformer_blocks": 1, "embedding_dim": 8, "num_heads": 2}


def _batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    batch = {name: rng.integers(0, VOCAB[name], size=n).astype("int64") for name in F.MODEL_CATEGORICAL}
    batch.update({name: rng.normal(size=n).astype("float32") for name in F.MODEL_NUMERIC})
    return batch, rng.integers(0, 2, size=n), rng.uniform(0.5, 2.0, size=n).astype("float32")


@pytest.mark.parametrize("kind", ["tabtransformer", "mlp"])
def test_the_served_ensemble_averages_its_trained_members(kind):
    features, labels, weights = _batch()
    model = build_model({**SMALL, "model": kind, "ensemble_size": 3}, VOCAB)
    model.fit(features, labels, sample_weight=weights, epochs=2, batch_size=8, verbose=0)
    stacked = model(features, training=False).numpy()
    assert stacked.shape == (16, 3, 2)
    assert not np.allclose(stacked[:, 0], stacked[:, 1])  # members start from their own weights
    served = served_model(model)
    probs = served(features, training=False).numpy()
    assert probs.shape == (16, 2)
    np.testing.assert_allclose(probs, stacked.mean(axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert len(served.trainable_weights) == len(model.trainable_weights)  # shared, not copied


def test_a_single_model_is_served_as_it_is():
    model = build_model(SMALL, VOCAB)
    assert served_model(model) is model
    with pytest.raises(ValueError, match="at least 2 members"):
        ensemble.build_ensemble(lambda i: model, 1)


def test_each_member_is_fitted_on_its_own_loss_and_accuracy_scores_the_average():
    labels = np.array([1, 0])
    stacked = np.array([[[0.2, 0.8], [0.6, 0.4]], [[0.9, 0.1], [0.3, 0.7]]], dtype="float32")  # [2, K=2, 2]
    loss = ensemble.MemberCrossentropy(reduction=None)(labels, stacked).numpy()
    expected = [np.mean([-np.log(0.8), -np.log(0.4)]), np.mean([-np.log(0.9), -np.log(0.3)])]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    accuracy = ensemble.EnsembleAccuracy()
    accuracy.update_state(labels, stacked)  # averages: [0.4, 0.6] -> 1 (right), [0.6, 0.4] -> 0 (right)
    assert float(accuracy.result()) == 1.0


@pytest.fixture(scope="module")
def census_transform(tmp_path_factory):
    """The census preprocessing_fn's transform graph over synthetic rows, and one file of
    transformed tf.Examples per split."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import metadata_io

    from models.census.preprocessing import preprocessing_fn

    root = tmp_path_factory.mktemp("census_transform")
    spec = {name: tf.io.FixedLenFeature([], tf.int64) for name in F.NUMERIC_FEATURES + (F.WEIGHT_KEY,)}
    spec.update({name: tf.io.FixedLenFeature([], tf.string) for name in F.CATEGORICAL_FEATURES + (F.LABEL_KEY,)})
    metadata = tft.DatasetMetadata.from_feature_spec(spec)
    rows = {"train": synthetic_census_rows(160, seed=0), "validation": synthetic_census_rows(40, seed=1)}
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(root / "tmp"), force_tf_compat_v1=False):
        raw = pipeline | beam.Create([{k: v.encode() if isinstance(v, str) else v for k, v in r.items()}
                                      for r in rows["train"]])
        _, transform_fn = (raw, metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(root / "transform"))
    metadata_io.write_metadata(metadata, str(root / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    output = tft.TFTransformOutput(str(root / "transform"))
    files = {}
    for split, split_rows in rows.items():
        parsed = tf.io.parse_example(tf.constant(serialized_examples(split_rows)), spec)
        transformed = output.transform_raw_features(parsed)
        names = list(output.transformed_feature_spec())
        values = {n: transformed[n].numpy().tolist() for n in names}
        examples = serialized_examples([
            {n: (values[n][i].decode() if isinstance(values[n][i], bytes) else values[n][i]) for n in names}
            for i in range(len(split_rows))])
        files[split] = str(root / f"{split}.tfrecord")
        with tf.io.TFRecordWriter(files[split]) as writer:
            for example in examples:
                writer.write(example)
    return str(root / "transform"), files


def test_the_trainer_exports_an_ensemble_with_the_census_serving_contract(census_transform, tmp_path):
    from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
    from tfx_bsl.public import tfxio

    from models.census import trainer

    def factory(file_pattern, options, schema):
        return tfxio.TFExampleRecord(file_pattern=file_pattern, schema=schema,
                                     telemetry_descriptors=["test"]).TensorFlowDataset(options)

    transform_dir, files = census_transform
    fn_args = FnArgs(
        working_dir=str(tmp_path / "working"), train_files=[files["train"]], eval_files=[files["validation"]],
        train_steps=6, eval_steps=2, transform_graph_path=transform_dir, transform_output=transform_dir,
        data_accessor=DataAccessor(factory, None, None), serving_model_dir=str(tmp_path / "serving"),
        model_run_dir=str(tmp_path / "model_run"),
        custom_config={"model": "tabtransformer", "checkpoints": 2,
                       "hparams": {**SMALL, "batch_size": 16, "ensemble_size": 3, "lr_schedule": "cosine"}},
    )
    info = trainer.run_fn(fn_args)
    assert info["hparams"]["ensemble_size"] == 3
    loaded = tf.saved_model.load(fn_args.serving_model_dir)
    assert set(loaded.signatures) >= {"serving_default", "transform_features"}
    rows = synthetic_census_rows(12, seed=5)
    out = loaded.signatures["serving_default"](examples=tf.constant(serialized_examples(rows, drop={F.LABEL_KEY})))
    assert list(out) == ["probabilities"]
    probs = out["probabilities"].numpy()
    assert probs.shape == (12, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    with open(os.path.join(fn_args.model_run_dir, "training_info.json")) as f:
        assert json.load(f)["hparams"]["lr_schedule"] == "cosine"


def test_tuner_trials_train_one_model_with_the_tasks_other_hyperparameters():
    from models.census.tuner import trial_hparams

    hp = trial_hparams({"ensemble_size": 4, "lr_schedule": "cosine", "dropout": 0.2}, {"dropout": 0.1})
    assert hp == {"ensemble_size": 1, "lr_schedule": "cosine", "dropout": 0.1}
    assert trial_hparams(None, {"embedding_dim": 8}) == {"embedding_dim": 8, "ensemble_size": 1}
