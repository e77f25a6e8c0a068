"""Length-bucketed batching for text: batches of texts of similar length.

Padding to a batch's longest text (models/common/text/bert.trim_padding) saves little when every
batch mixes short and long texts; grouping them by length first lets a batch of short reviews cost
what it uses. The length is the word count (cheap, before tokenisation), a close proxy for the
number of WordPiece pieces.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def word_count(text: tf.Tensor) -> tf.Tensor:
    return tf.size(tf.strings.split(text), out_type=tf.int64)


def batches_by_length(dataset: tf.data.Dataset, text_key: str, batch_size: int,
                      boundaries: Sequence[int]) -> tf.data.Dataset:
    """Re-batch a dataset of (features, label[, weight]) batches so each batch holds texts from one
    word-count bucket: [0, b0), [b0, b1), ..., [b_last, inf). Batches keep batch_size; the order
    within a bucket is the input's (already shuffled) order."""
    edges = tf.constant(sorted(int(b) for b in boundaries), tf.int64)

    def bucket(features, *rest):
        return tf.reduce_sum(tf.cast(word_count(features[text_key]) >= edges, tf.int64))

    return (dataset.unbatch()
            .group_by_window(key_func=bucket, reduce_func=lambda _, window: window.batch(batch_size),
                             window_size=batch_size)
            .prefetch(tf.data.AUTOTUNE))
