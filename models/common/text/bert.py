"""BERT fine-tuning pieces shared by the text tasks: sentence-transformers' mean pooling and
transformers' AdamW schedule (tf_keras, as transformers' TF BERT requires)."""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf


def mean_pool(hidden: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Average of the token vectors where attention_mask is 1 (sentence-transformers' pooling)."""
    mask = tf.cast(mask, hidden.dtype)[:, :, None]
    return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)


def trim_padding(input_ids: tf.Tensor, attention_mask: tf.Tensor):
    """Drop the padding columns no text of the batch reaches. BERT masks padding out, so the
    outputs at real tokens are unchanged, and a batch of short texts costs only what it uses
    (the tokenizer pads every batch to max_seq_length)."""
    longest = tf.maximum(tf.reduce_max(tf.reduce_sum(attention_mask, axis=1)), 1)
    return input_ids[:, :longest], attention_mask[:, :longest]


def make_optimizer(hparams: Mapping[str, object], total_steps: int):
    """AdamW (decoupled weight decay, not on LayerNorm or biases) with linear warmup over the first
    hparams["warmup_fraction"] of the steps, then linear decay to 0: transformers' create_optimizer.
    hparams needs learning_rate, warmup_fraction and weight_decay. Returns (optimizer, schedule)."""
    from transformers import create_optimizer

    total_steps = max(1, int(total_steps))
    return create_optimizer(
        init_lr=float(hparams["learning_rate"]),
        num_train_steps=total_steps,
        num_warmup_steps=int(round(float(hparams["warmup_fraction"]) * total_steps)),
        weight_decay_rate=float(hparams["weight_decay"]),
    )
