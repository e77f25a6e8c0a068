"""The fine-tuned text classifier of reviews, nsmc and news' minilm profile (tf_keras, as transformers'
TF BERT requires): raw text -> the encoder's in-graph tokenizer -> BERT -> mean pooling -> dropout ->
softmax; sparse categorical cross-entropy, AdamW with linear warmup then linear decay. The encoder is
picked by hparams["encoder"] (models/common/text/encoders.py); a task brings its defaults, its columns
and its class count, and the shared skeleton (models/common/trainer_base.py) trains and exports
(raw text in, class probabilities out).
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import tensorflow as tf
import tf_keras

from models.common import trainer_base
from models.common.text.batching import length_bucketed
from models.common.text.bert import make_optimizer, pooled_embeddings
from models.common.text.encoders import encoder_and_tokenizer, split_texts

CLASSIFIER_HPARAMS = {
    "max_seq_length": 128,
    # Training batches of texts of similar length (bucket boundaries in length_unit: words, chars
    # or the encoder's pieces; empty: plain shuffled batches). With the padding trimmed to each
    # batch's longest text, a batch of short texts then costs what it uses (text/batching.py).
    "length_buckets": (),
    "length_unit": "words",
    "dropout": 0.1,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 32,
}


class TextClassifier(tf_keras.Model):
    """{text_key: text} (or text) -> token ids -> BERT -> mean pooling -> dropout -> softmax."""

    def __init__(self, bert, tokenizer, num_classes: int, dropout: float, text_key: str, **kwargs):
        super().__init__(**kwargs)
        self.text_key = text_key
        self.tokenizer = tokenizer
        self.bert = bert
        self.dropout = tf_keras.layers.Dropout(dropout)
        self.classifier = tf_keras.layers.Dense(
            num_classes, activation="softmax", name="probabilities",
            kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02),
        )

    def embed(self, text, training=False):
        """Mean-pooled sentence embeddings [batch, hidden] (the input of the softmax layer)."""
        return pooled_embeddings(self.bert, *self.tokenizer(text), training=training)

    def call(self, inputs, training=False):
        text = inputs[self.text_key] if isinstance(inputs, Mapping) else inputs
        return self.classifier(self.dropout(self.embed(text, training=training), training=training))


def build_classifier(hparams: Mapping[str, object], num_classes: int, text_key: str,
                     train_texts: Optional[Callable[[], tf.data.Dataset]] = None) -> TextClassifier:
    """The classifier over the encoder hparams name; train_texts: see encoders.encoder_and_tokenizer."""
    hp = {**CLASSIFIER_HPARAMS, **hparams}
    bert, tokenizer = encoder_and_tokenizer(hp, train_texts)
    model = TextClassifier(bert, tokenizer, num_classes, float(hp["dropout"]), text_key)
    model({text_key: tf.constant(["build"])})
    return model


def compile_classifier(model: TextClassifier, hparams: Mapping[str, object], total_steps: int) -> None:
    """Sparse categorical cross-entropy and accuracy, with AdamW + linear warmup then decay over total_steps."""
    optimizer, _ = make_optimizer({**CLASSIFIER_HPARAMS, **hparams}, total_steps)
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def fit_and_export(fn_args, *, default_hparams: Mapping[str, object], text_key: str, label_key: str,
                   serving_features: Sequence[str], num_classes: int, checkpoints: int = 4) -> dict:
    """A task's run_fn body: build, compile (the schedule spans the steps fit runs), train, export.
    throughput.json names its figure train_examples_per_second."""

    def build(run: trainer_base.TrainingRun):
        model = build_classifier(run.hparams, num_classes, text_key, lambda: split_texts(run, (text_key,)))
        compile_classifier(model, run.hparams, run.scheduled_steps)
        return model

    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams={**CLASSIFIER_HPARAMS, **default_hparams},
        model_features=(text_key,),
        label_key=label_key,
        serving_features=list(serving_features),
        keras_module=tf_keras,
        before_fit=length_bucketed((text_key,), lambda model: model.tokenizer),
        checkpoints=checkpoints,
        throughput_unit="train_examples",
    )
