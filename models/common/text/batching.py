"""Length-bucketed batching for text: batches of texts of similar length.

Padding to a batch's longest text (models/common/text/bert.trim_padding) saves little when every
batch mixes short and long texts; grouping them by length first lets a batch of short reviews cost
what it uses. The length is measured before tokenisation, cheaply: in words (a close proxy for the
number of WordPiece pieces of English) or in characters (for text whose spacing says little about
its length in pieces, e.g. Korean reviews: on NSMC, character buckets halve the padding that word
buckets leave).
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def word_count(text: tf.Tensor) -> tf.Tensor:
    return tf.size(tf.strings.split(text), out_type=tf.int64)


def char_count(text: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.int64)


LENGTH_UNITS = {"words": word_count, "chars": char_count}


def batches_by_length(dataset: tf.data.Dataset, text_key: str, batch_size: int,
                      boundaries: Sequence[int], unit: str = "words") -> tf.data.Dataset:
    """Re-batch a dataset of (features, label[, weight]) batches so each batch holds texts from one
    length bucket, in `unit` (words | chars): [0, b0), [b0, b1), ..., [b_last, inf). Batches keep
    batch_size; the order within a bucket is the input's (already shuffled) order."""
    if unit not in LENGTH_UNITS:
        raise ValueError(f"hparam length_unit must be one of {', '.join(LENGTH_UNITS)}, got {unit!r}")
    length = LENGTH_UNITS[unit]
    edges = tf.constant(sorted(int(b) for b in boundaries), tf.int64)

    def bucket(features, *rest):
        return tf.reduce_sum(tf.cast(length(features[text_key]) >= edges, tf.int64))

    return (dataset.unbatch()
            .group_by_window(key_func=bucket, reduce_func=lambda _, window: window.batch(batch_size),
                             window_size=batch_size)
            .prefetch(tf.data.AUTOTUNE))
