"""Training helpers shared by every task: input pipelines, hyperparameters, vocabulary sizes, export."""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Optional, Sequence

import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

from models.common.contract import LABEL_XF, PROBABILITIES, SERVING_SIGNATURE, TRANSFORM_SIGNATURE


def make_dataset(
    file_pattern,
    data_accessor,
    tf_transform_output: tft.TFTransformOutput,
    batch_size: int,
    model_features: Sequence[str],
    weight_key: Optional[str] = None,
    shuffle: bool = True,
    repeat: bool = True,
) -> tf.data.Dataset:
    """(features, label[, weight]) batches of transformed examples, restricted to the model's inputs."""
    dataset = data_accessor.tf_dataset_factory(
        file_pattern,
        tfxio.TensorFlowDatasetOptions(
            batch_size=batch_size, label_key=LABEL_XF, shuffle=shuffle, num_epochs=None if repeat else 1
        ),
        tf_transform_output.transformed_metadata.schema,
    )

    def select(features, label):
        inputs = {name: features[name] for name in model_features}
        label = tf.reshape(label, [-1])
        if weight_key:
            return inputs, label, tf.reshape(features[weight_key], [-1])
        return inputs, label

    return dataset.map(select, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def train_and_eval_datasets(fn_args, tf_transform_output: tft.TFTransformOutput, batch_size: int,
                            model_features: Sequence[str], weight_key: Optional[str] = None):
    """The endless (train, eval) datasets of a Trainer or Tuner run; only the train split is shuffled."""
    def make(files, shuffle):
        return make_dataset(files, fn_args.data_accessor, tf_transform_output, batch_size, model_features,
                            weight_key=weight_key, shuffle=shuffle)

    return make(fn_args.train_files, True), make(fn_args.eval_files, False)


def validation_set(dataset: tf.data.Dataset, steps: int) -> tf.data.Dataset:
    """The first `steps` batches of an (endless) eval dataset as a finite, cached set that every
    validation pass of `fit` reuses: pass it as validation_data, without validation_steps.

    Keras drops its validation iterator after every pass. Dropping one on an endless, prefetching
    input pipeline blocked for about 20 s in half of the passes here (pets: 285 s of a 943 s
    Trainer); a finite set has nothing left in flight when its pass ends.
    """
    return dataset.take(max(1, int(steps))).cache()


def hyperparameters_from(fn_args, defaults: Mapping[str, object], overrides: Mapping[str, object] = ()):
    """defaults < task config overrides < the Tuner's best hyperparameters (when there was a Tuner)."""
    values = {**defaults, **dict(overrides)}
    if getattr(fn_args, "hyperparameters", None):
        import keras_tuner

        hp = fn_args.hyperparameters
        if isinstance(hp, dict) and "space" in hp:
            hp = keras_tuner.HyperParameters.from_config(hp).values
        values.update(hp)
    return values


def task_hyperparameters(fn_args, defaults: Mapping[str, object]) -> dict:
    """A task's hyperparameters, batch_size included: defaults < custom_config["hparams"] < the
    Tuner's best. Trainer and Tuner both read them here, so they agree on the batch size."""
    return hyperparameters_from(fn_args, defaults, (fn_args.custom_config or {}).get("hparams", {}))


def vocabulary_sizes(tf_transform_output: tft.TFTransformOutput, vocabularies: Mapping[str, str],
                     num_oov_buckets: int) -> dict:
    """{model feature: number of ids} for features looked up in a TFT vocabulary (vocabularies maps
    the feature to its vocabulary's name): the vocabulary plus its OOV buckets, the width an
    embedding table or a one-hot encoding needs."""
    return {
        feature: tf_transform_output.vocabulary_size_by_name(vocabulary) + num_oov_buckets
        for feature, vocabulary in vocabularies.items()
    }


def epochs_for(total_steps: int, checkpoints: int = 10):
    """Split a step budget into (epochs, steps_per_epoch) so early stopping gets a say."""
    total_steps = max(1, int(total_steps))
    steps_per_epoch = max(1, math.ceil(total_steps / checkpoints))
    return math.ceil(total_steps / steps_per_epoch), steps_per_epoch


class ServingModule(tf.Module):
    """A SavedModel root with the serving contract shared by every task.

    serving_default(examples: serialized tf.Example with raw features, no label)
        -> {"probabilities": float32 [batch, num_classes]}
    transform_features(examples: serialized tf.Example with raw features and label)
        -> the transformed features (TFMA slices and labels come from here)
    """

    def __init__(self, model, tf_transform_output: tft.TFTransformOutput, raw_label_key: str,
                 model_features: Iterable[str], serving_features: Optional[Iterable[str]] = None):
        """serving_features: the raw features a client sends (default: every raw feature but the label)."""
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        raw_spec = tf_transform_output.raw_feature_spec()
        wanted = set(serving_features) if serving_features is not None else set(raw_spec) - {raw_label_key}
        serving_spec = {k: v for k, v in raw_spec.items() if k in wanted}
        model_features = list(model_features)
        examples_spec = tf.TensorSpec([None], tf.string, name="examples")

        def serve(examples):
            transformed = self.tft_layer(tf.io.parse_example(examples, serving_spec))
            inputs = {name: transformed[name] for name in model_features}
            probabilities = tf.cast(self.model(inputs, training=False), tf.float32)
            return {PROBABILITIES: probabilities}

        def transform_features(examples):
            return self.tft_layer(tf.io.parse_example(examples, raw_spec))

        self.serve = tf.function(serve, input_signature=[examples_spec])
        self.transform_features = tf.function(transform_features, input_signature=[examples_spec])

    def save(self, export_dir: str) -> None:
        tf.saved_model.save(
            self,
            export_dir,
            signatures={
                SERVING_SIGNATURE: self.serve.get_concrete_function(),
                TRANSFORM_SIGNATURE: self.transform_features.get_concrete_function(),
            },
        )
