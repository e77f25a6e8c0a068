"""Profile "minilm" of news: the packaged MiniLM encoder (all-MiniLM-L6-v2, the checkpoint reviews
fine-tunes) fine-tuned on the same data, so the from-scratch Transformer is measured against a
pretrained one. `models.news.minilm.run_fn` (tf_keras, as transformers' TF BERT requires).

It reads the normalised title + description Transform writes (text_xf) and tokenises it in the
graph with the checkpoint's WordPiece vocabulary (models/common/text), so the served model takes
raw text like the default profile's.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf
import tf_keras

from models.common import trainer_base
from models.common.text.bert import make_optimizer, mean_pool, trim_padding
from models.common.text.checkpoint import bert_and_tokenizer
from models.news import features as F

DEFAULT_HPARAMS = {
    "checkpoint": "packaged",  # or a directory with config.json + vocab.txt (+ model.safetensors)
    "pretrained": True,
    "max_seq_length": 96,
    "dropout": 0.1,
    "learning_rate": 5e-5,
    "weight_decay": 0.01,
    "warmup_fraction": 0.1,
    "batch_size": 32,
}


class MiniLMClassifier(tf_keras.Model):
    """text -> WordPiece ids -> BERT -> mean pooling -> dropout -> softmax over the topics."""

    def __init__(self, bert, tokenizer, num_classes: int, dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.tokenizer = tokenizer
        self.bert = bert
        self.dropout = tf_keras.layers.Dropout(dropout)
        self.classifier = tf_keras.layers.Dense(
            num_classes, activation="softmax", name="probabilities",
            kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02))

    def call(self, inputs, training=False):
        text = inputs[F.TEXT_XF] if isinstance(inputs, Mapping) else inputs
        input_ids, attention_mask = trim_padding(*self.tokenizer(text))
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, training=training).last_hidden_state
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask), training=training))


def build_classifier(hparams: Mapping[str, object], total_steps: int,
                     num_classes: int = len(F.CLASS_NAMES)) -> MiniLMClassifier:
    """The compiled classifier: sparse categorical cross-entropy, AdamW with warmup then linear decay."""
    hp = {**DEFAULT_HPARAMS, **dict(hparams)}
    bert, tokenizer = bert_and_tokenizer(str(hp["checkpoint"]), bool(hp["pretrained"]), int(hp["max_seq_length"]))
    model = MiniLMClassifier(bert, tokenizer, num_classes, float(hp["dropout"]))
    model({F.TEXT_XF: tf.constant(["build"])})
    optimizer, _ = make_optimizer(hp, total_steps)
    model.compile(optimizer=optimizer, loss=tf_keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def build(run: trainer_base.TrainingRun):
    return build_classifier(run.hparams, run.scheduled_steps)


def run_fn(fn_args):
    return trainer_base.fit_and_export(
        fn_args,
        build_model=build,
        default_hparams=DEFAULT_HPARAMS,
        model_features=(F.TEXT_XF,),
        label_key=F.LABEL_KEY,
        serving_features=list(F.TEXT_FEATURES),
        keras_module=tf_keras,
        checkpoints=3,
        throughput_unit="train_examples",
    )
