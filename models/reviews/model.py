"""BERT sentiment classifier (tf_keras, as transformers' TF BERT requires): raw text in, probabilities out."""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf
import tf_keras

from models.common.text.bert import make_optimizer, mean_pool, trim_padding
from models.common.text.checkpoint import bert_and_tokenizer
from models.common.text.tokenizer import WordPieceTokenizer
from models.reviews import features as F

DEFAULT_HPARAMS = {
    "checkpoint": "packaged",  # or a directory with config.json + vocab.txt (+ model.safetensors)
    "pretrained": True,
    "max_seq_length": 128,
    # Truncation of long reviews: None keeps the first max_seq_length - 2 pieces; a fraction f keeps
    # the first round(f * (max_seq_length - 2)) and the rest from the end (head+tail, see
    # models/common/text/tokenizer.py). A fraction stays valid whatever max_seq_length is set to.
    "head_fraction": None,
    # Training batches of reviews of similar length (word-count bucket boundaries; empty: plain
    # shuffled batches). With the padding trimmed to each batch's longest review, a batch of short
    # reviews then costs what it uses. See models/common/text/batching.py.
    "length_buckets": (),
    "dropout": 0.1,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 32,
}


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
        input_ids, attention_mask = trim_padding(*self.tokenizer(text))
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, training=training).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def call(self, inputs, training=False):
        text = inputs[F.TEXT_XF] if isinstance(inputs, Mapping) else inputs
        return self.classifier(self.dropout(self.embed(text, training=training), training=training))


def head_tokens_of(head_fraction, max_seq_length: int):
    """How many leading pieces head+tail truncation keeps (None: plain truncation keeps the head)."""
    if head_fraction is None:
        return None
    fraction = float(head_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"hparam head_fraction must be between 0 and 1 (or null for head-only truncation), "
                         f"got {head_fraction}")
    return int(round(fraction * (max_seq_length - 2)))


def build_classifier(hparams: Mapping[str, object], num_classes: int = 2) -> BertClassifier:
    hp = {**DEFAULT_HPARAMS, **hparams}
    head_tokens = head_tokens_of(hp["head_fraction"], int(hp["max_seq_length"]))
    bert, tokenizer = bert_and_tokenizer(str(hp["checkpoint"]), bool(hp["pretrained"]), int(hp["max_seq_length"]),
                                         head_tokens)
    model = BertClassifier(bert, tokenizer, num_classes, float(hp["dropout"]))
    model({F.TEXT_XF: tf.constant(["build"])})
    return model


def compile_model(model: BertClassifier, hparams: Mapping[str, object], total_steps: int) -> None:
    """Sparse categorical cross-entropy and accuracy, with AdamW + linear warmup then decay."""
    optimizer, _ = make_optimizer({**DEFAULT_HPARAMS, **hparams}, total_steps)
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
