"""SBERT-style siamese sentence encoder shared by sts and sts_ko (tf_keras, as transformers' TF BERT
requires): model, training and the SavedModel it serves.

One BERT encodes both sentences of a pair (shared weights: the two sides are concatenated into one
batch), mean pooling over the attention mask gives the sentence embedding, and the prediction is the
cosine similarity of the two embeddings. hparams["loss"] picks the training loss: "cosine", the
cosine-similarity regression loss (mean squared error between cos(u, v) and the gold score / 5;
sentence-transformers' CosineSimilarityLoss), or "cosent", a ranking loss over the batch's pairs
(Su 2022, CoSENT: only the order of the similarities is trained, which is what Spearman scores).
Optimiser: AdamW with 10 % linear warmup then linear decay.
hparams["encoder"] picks the pretrained encoder (models/common/text/encoders.py): MiniLM for sts,
multilingual-e5-small for sts_ko. The exported SavedModel (PairServingModule) has three signatures:
  serving_default(examples: serialized tf.Example with `sentence1`, `sentence2` bytes)
      -> {"similarity": float32 [batch]}, the cosine similarity of the two sentence embeddings
         (in [-1, 1]; trained towards gold score / 5)
  embed(examples: serialized tf.Example with a `text` bytes feature)
      -> {"embedding": float32 [batch, hidden]}, L2-normalised mean-pooled sentence embeddings
  transform_features(examples: the raw columns with the score) -> the transformed features (TFMA)
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras

from models.common import trainer_base
from models.common.contract import SERVING_SIGNATURE, TRANSFORM_SIGNATURE
from models.common.text import pairs as F
from models.common.text.batching import length_bucketed
from models.common.text.bert import make_optimizer, pooled_embeddings
from models.common.text.encoders import encoder_and_tokenizer, split_texts

# What every encoder's siamese fine-tuning takes, with sts's values.
SIAMESE_HPARAMS = {
    "max_seq_length": 64,  # STS-B: 1 training sentence of 11,498 is longer (batches are trimmed to their longest)
    "learning_rate": 2e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 16,
    # Pair batches bucketed by the longer sentence's length (as the text classifier's; empty: off).
    "length_buckets": (),
    "length_unit": "pieces",
    "loss": "cosine",  # or "cosent" (cosent_loss)
    "cosent_scale": 20.0,
}


def cosine_similarity(u: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    """Row-wise cosine similarity of [batch, dim] tensors -> [batch]."""
    return tf.reduce_sum(tf.math.l2_normalize(u, axis=-1) * tf.math.l2_normalize(v, axis=-1), axis=-1)


class SentenceEncoder(tf_keras.Model):
    """text [batch] -> the encoder's tokenizer -> BERT -> mean pooling -> [batch, hidden] (not normalised)."""

    def __init__(self, bert, tokenizer, **kwargs):
        super().__init__(**kwargs)
        self.bert = bert
        self.tokenizer = tokenizer

    def call(self, text, training=False):
        # Short sentences (STS-B median: 12 pieces) cost only their length.
        return pooled_embeddings(self.bert, *self.tokenizer(text), training=training)


class SiameseSimilarity(tf_keras.Model):
    """{sentence1_xf, sentence2_xf} -> cosine similarity [batch] of their embeddings."""

    def __init__(self, encoder: SentenceEncoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder

    def embed(self, text, training=False):
        """L2-normalised sentence embeddings [batch, hidden] (dot product = cosine similarity)."""
        return tf.math.l2_normalize(self.encoder(text, training=training), axis=-1)

    def call(self, inputs, training=False):
        first = tf.reshape(inputs[F.SENTENCE1_XF], [-1])
        second = tf.reshape(inputs[F.SENTENCE2_XF], [-1])
        both = self.encoder(tf.concat([first, second], axis=0), training=training)
        u, v = tf.split(both, 2, axis=0)
        return cosine_similarity(u, v)


def build_model(hparams: Mapping[str, object],
                train_texts: Optional[Callable[[], tf.data.Dataset]] = None) -> SiameseSimilarity:
    """The siamese model over the encoder hparams name; train_texts: see encoders.encoder_and_tokenizer."""
    hp = {**SIAMESE_HPARAMS, **hparams}
    bert, tokenizer = encoder_and_tokenizer(hp, train_texts)
    model = SiameseSimilarity(SentenceEncoder(bert, tokenizer))
    model({F.SENTENCE1_XF: tf.constant(["build"]), F.SENTENCE2_XF: tf.constant(["build"])})
    return model


def cosine_similarity_loss(y_true, y_pred):
    """Per-pair squared error between the cosine similarity and the gold score / 5."""
    return tf.square(tf.reshape(tf.cast(y_true, y_pred.dtype), [-1]) - tf.reshape(y_pred, [-1]))


def cosent_loss(y_true, y_pred, scale: float = 20.0):
    """CoSENT over the batch: log(1 + sum over pairs i, j with gold_i > gold_j of
    exp(scale * (cos_j - cos_i))). Zero only when every more similar pair scores higher; the
    scale is the one sentence-transformers' CoSENTLoss uses (20)."""
    gold = tf.reshape(tf.cast(y_true, y_pred.dtype), [-1])
    cos = tf.reshape(y_pred, [-1])
    wrong_order = scale * (cos[None, :] - cos[:, None])  # [i, j]: scale * (cos_j - cos_i)
    ranked = gold[:, None] > gold[None, :]
    terms = tf.boolean_mask(wrong_order, ranked)
    return tf.reduce_logsumexp(tf.concat([tf.zeros([1], cos.dtype), terms], axis=0))


LOSSES = {"cosine": lambda hp: cosine_similarity_loss,
          "cosent": lambda hp: lambda y_true, y_pred: cosent_loss(y_true, y_pred, float(hp["cosent_scale"]))}


def compile_model(model: SiameseSimilarity, hparams: Mapping[str, object], total_steps: int) -> None:
    """The hparams' loss (cosine regression or CoSENT) with AdamW + linear warmup."""
    hp = {**SIAMESE_HPARAMS, **hparams}
    if hp["loss"] not in LOSSES:
        raise ValueError(f"unknown siamese loss {hp['loss']!r}; choose one of {sorted(LOSSES)}")
    optimizer, _ = make_optimizer(hp, total_steps)
    model.compile(optimizer=optimizer, loss=LOSSES[hp["loss"]](hp))


class PairServingModule(tf.Module):
    """The SavedModel root: pair similarity, text embedding, and TFT's transform for TFMA."""

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
    model = build_model(run.hparams, lambda: split_texts(run, F.MODEL_FEATURES))
    compile_model(model, run.hparams, run.scheduled_steps)
    return model


def fit_and_export(fn_args, default_hparams):
    """Train the siamese model with these defaults (the encoder's among them) and export it."""
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=default_hparams,
        model_features=F.MODEL_FEATURES,
        keras_module=tf_keras,
        checkpoints=4,
        before_fit=length_bucketed(F.MODEL_FEATURES, lambda model: model.encoder.tokenizer),
        serving_module=lambda run, model: PairServingModule(model, run.tf_transform_output),
    )
