"""BERT sentiment classifier (tf_keras, as transformers' TF BERT requires): raw text in, probabilities out."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import tensorflow as tf
import tf_keras

from models.reviews import checkpoint as ckpt
from models.reviews import features as F
from models.reviews.tokenizer import WordPieceTokenizer, read_vocab

DEFAULT_HPARAMS = {
    "checkpoint": "packaged",  # or a directory with config.json + vocab.txt (+ model.safetensors)
    "pretrained": True,
    "max_seq_length": 128,
    "dropout": 0.1,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 32,
}


def mean_pool(hidden: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Average of the token vectors where attention_mask is 1 (sentence-transformers' pooling)."""
    mask = tf.cast(mask, hidden.dtype)[:, :, None]
    return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)


class BertClassifier(tf_keras.Model):
    """text -> WordPiece ids -> BERT -> mean pooling -> dropout -> softmax over classes."""

    def __init__(self, bert, tokenizer: WordPieceTokenizer, num_classes: int, dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.bert = bert
        self.dropout = tf_keras.layers.Dropout(dropout)
        self.classifier = tf_keras.layers.Dense(
            num_classes, activation="softmax", name="probabilities",
            kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02),
        )

    def embed(self, text, training=False):
        input_ids, attention_mask = self.tokenizer(text)
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, training=training).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def call(self, inputs, training=False):
        text = inputs[F.TEXT_XF] if isinstance(inputs, Mapping) else inputs
        return self.classifier(self.dropout(self.embed(text, training=training), training=training))


def build_classifier(hparams: Mapping[str, object], num_classes: int = 2) -> BertClassifier:
    hp = {**DEFAULT_HPARAMS, **hparams}
    directory = ckpt.resolve(str(hp["checkpoint"]))
    bert = ckpt.load_bert(Path(directory), pretrained=bool(hp["pretrained"]))
    tokenizer = WordPieceTokenizer(read_vocab(Path(directory) / "vocab.txt"), int(hp["max_seq_length"]))
    model = BertClassifier(bert, tokenizer, num_classes, float(hp["dropout"]))
    model({F.TEXT_XF: tf.constant(["build"])})
    return model


def make_optimizer(hparams: Mapping[str, object], total_steps: int):
    """AdamW (decoupled weight decay) with linear warmup over the first warmup_fraction of the steps,
    then linear decay to 0 — transformers' create_optimizer. Returns (optimizer, schedule)."""
    from transformers import create_optimizer

    hp = {**DEFAULT_HPARAMS, **hparams}
    total_steps = max(1, int(total_steps))
    return create_optimizer(
        init_lr=float(hp["learning_rate"]),
        num_train_steps=total_steps,
        num_warmup_steps=int(round(float(hp["warmup_fraction"]) * total_steps)),
        weight_decay_rate=float(hp["weight_decay"]),
    )
