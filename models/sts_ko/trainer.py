"""TFX Trainer entry point for sts_ko: `models.sts_ko.trainer.run_fn` (siamese multilingual-e5-small
fine-tuning on KLUE STS).

The exported SavedModel (StsKoServingModule) has three signatures, as sts's:
  serving_default(examples: serialized tf.Example with `sentence1`, `sentence2` bytes)
      -> {"similarity": float32 [batch]}, the cosine similarity of the two sentence embeddings
  embed(examples: serialized tf.Example with a `text` bytes feature)
      -> {"embedding": float32 [batch, 384]}, L2-normalised mean-pooled E5 embeddings ("query: " prefix)
  transform_features(examples: the raw columns with `score`) -> the transformed features (TFMA)
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from models.common import trainer_base, training
from models.common.contract import SERVING_SIGNATURE, TRANSFORM_SIGNATURE
from models.sts_ko import features as F
from models.sts_ko.model import DEFAULT_HPARAMS, build_model, compile_model


class StsKoServingModule(tf.Module):
    """The sts_ko SavedModel root: pair similarity, text embedding, and TFT's transform for TFMA."""

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
    # The train split once, unshuffled, for the vocabulary (hparams["vocabulary"] == "train").
    train_pairs = training.make_dataset(run.fn_args.train_files, run.fn_args.data_accessor, run.tf_transform_output,
                                        256, F.MODEL_FEATURES, shuffle=False, repeat=False)
    model = build_model(run.hparams, train_pairs)
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
        serving_module=lambda run, model: StsKoServingModule(model, run.tf_transform_output),
    )
