"""TFX Trainer entry point for sts: `models.sts.trainer.run_fn` (siamese MiniLM fine-tuning).

The exported SavedModel (StsServingModule) has three signatures:
  serving_default(examples: serialized tf.Example with `sentence1`, `sentence2` bytes)
      -> {"similarity": float32 [batch]}, the cosine similarity of the two sentence embeddings
         (in [-1, 1]; trained towards gold score / 5)
  embed(examples: serialized tf.Example with a `text` bytes feature)
      -> {"embedding": float32 [batch, hidden]}, L2-normalised mean-pooled sentence embeddings
  transform_features(examples: the raw columns with `score`) -> the transformed features (TFMA)
The shared skeleton (models/common/trainer_base.py) does the training.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from models.common import trainer_base
from models.common.contract import SERVING_SIGNATURE, TRANSFORM_SIGNATURE
from models.sts import features as F
from models.sts.model import DEFAULT_HPARAMS, build_model, compile_model


class StsServingModule(tf.Module):
    """The sts SavedModel root: pair similarity, text embedding, and TFT's transform for TFMA."""

    def __init__(self, model, tf_transform_output: tft.TFTransformOutput):
        super().__init__()
        self.model = model
        self.tft_layer = tf_transform_output.transform_features_layer()
        raw_spec = tf_transform_output.raw_feature_spec()
        pair_spec = {k: raw_spec[k] for k in (F.SENTENCE1_KEY, F.SENTENCE2_KEY)}
        text_spec = {F.TEXT_KEY: tf.io.FixedLenFeature([], tf.string)}
        examples_spec = tf.TensorSpec([None], tf.string, name="examples")

        def similarity(examples):
            transformed = self.tft_layer(tf.io.parse_example(examples, pair_spec))
            inputs = {name: transformed[name] for name in F.MODEL_FEATURES}
            return {F.SIMILARITY: tf.cast(self.model(inputs, training=False), tf.float32)}

        def embed(examples):
            text = tf.io.parse_example(examples, text_spec)[F.TEXT_KEY]
            # The same clean-up as preprocessing_fn gives the sentences (invalid UTF-8 -> U+FFFD).
            text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
            return {F.EMBEDDING: tf.cast(self.model.embed(text, training=False), tf.float32)}

        def transform_features(examples):
            return self.tft_layer(tf.io.parse_example(examples, raw_spec))

        self.similarity = tf.function(similarity, input_signature=[examples_spec])
        self.embed = tf.function(embed, input_signature=[examples_spec])
        self.transform_features = tf.function(transform_features, input_signature=[examples_spec])

    def save(self, export_dir: str) -> None:
        tf.saved_model.save(
            self,
            export_dir,
            signatures={
                SERVING_SIGNATURE: self.similarity.get_concrete_function(),
                "embed": self.embed.get_concrete_function(),
                TRANSFORM_SIGNATURE: self.transform_features.get_concrete_function(),
            },
        )


def build(run: trainer_base.TrainingRun):
    model = build_model(run.hparams)
    compile_model(model, run.hparams, run.fn_args.train_steps)
    return model


def run_fn(fn_args):
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=DEFAULT_HPARAMS,
        model_features=F.MODEL_FEATURES,
        keras_module=tf_keras,
        checkpoints=4,
        serving_module=lambda run, model: StsServingModule(model, run.tf_transform_output),
    )
