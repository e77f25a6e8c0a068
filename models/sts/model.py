"""SBERT-style siamese sentence encoder (tf_keras, as transformers' TF BERT requires).

One BERT encodes both sentences of a pair (shared weights: the two sides are concatenated into one
batch), mean pooling over the attention mask gives the sentence embedding, and the prediction is the
cosine similarity of the two embeddings. Trained with the cosine-similarity regression loss:
mean squared error between cos(u, v) and the gold score / 5 (sentence-transformers'
CosineSimilarityLoss). Optimiser: AdamW with 10 % linear warmup then linear decay. The checkpoint,
tokenizer, pooling and optimiser are the ones shared with the reviews task (models/common/text).
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf
import tf_keras

from models.common.text.bert import make_optimizer, mean_pool, trim_padding
from models.common.text.checkpoint import bert_and_tokenizer
from models.common.text.tokenizer import WordPieceTokenizer
from models.sts import features as F

DEFAULT_HPARAMS = {
    "checkpoint": "packaged",  # or a directory with config.json + vocab.txt (+ model.safetensors)
    "pretrained": True,
    "max_seq_length": 64,  # STS-B: 1 training sentence of 11,498 is longer (batches are trimmed to their longest)
    "learning_rate": 2e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 16,
}


def cosine_similarity(u: tf.Tensor, v: tf.Tensor) -> tf.Tensor:
    """Row-wise cosine similarity of [batch, dim] tensors -> [batch]."""
    return tf.reduce_sum(tf.math.l2_normalize(u, axis=-1) * tf.math.l2_normalize(v, axis=-1), axis=-1)


class SentenceEncoder(tf_keras.Model):
    """text [batch] -> WordPiece -> BERT -> mean pooling -> [batch, hidden] (not normalised)."""

    def __init__(self, bert, tokenizer: WordPieceTokenizer, **kwargs):
        super().__init__(**kwargs)
        self.bert = bert
        self.tokenizer = tokenizer

    def call(self, text, training=False):
        # Short sentences (STS-B median: 12 pieces) cost only their length.
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


def build_model(hparams: Mapping[str, object]) -> SiameseSimilarity:
    """The siamese model over the checkpoint named by hparams (pretrained weights unless told not to)."""
    hp = {**DEFAULT_HPARAMS, **hparams}
    bert, tokenizer = bert_and_tokenizer(str(hp["checkpoint"]), bool(hp["pretrained"]), int(hp["max_seq_length"]))
    model = SiameseSimilarity(SentenceEncoder(bert, tokenizer))
    model({F.SENTENCE1_XF: tf.constant(["build"]), F.SENTENCE2_XF: tf.constant(["build"])})
    return model


def cosine_similarity_loss(y_true, y_pred):
    """Per-pair squared error between the cosine similarity and the gold score / 5."""
    return tf.square(tf.reshape(tf.cast(y_true, y_pred.dtype), [-1]) - tf.reshape(y_pred, [-1]))


def compile_model(model: SiameseSimilarity, hparams: Mapping[str, object], total_steps: int) -> None:
    """Cosine-similarity regression loss (mean over the batch) with AdamW + linear warmup."""
    optimizer, _ = make_optimizer({**DEFAULT_HPARAMS, **hparams}, total_steps)
    model.compile(optimizer=optimizer, loss=cosine_similarity_loss)
