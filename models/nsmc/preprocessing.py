"""TF Transform for nsmc: clean text (valid UTF-8), label id, review-length bucket for slicing.

SentencePiece tokenisation happens inside the model (models/common/text/e5_tokenizer.py), so the
exported SavedModel takes raw text.
"""
import tensorflow as tf

from models.common.tensors import to_dense_1d
from models.nsmc import features as F


def length_bucket_names(boundaries=F.LENGTH_BOUNDARIES):
    names = [f"<{boundaries[0]} chars"]
    names += [f"{lo}-{hi - 1} chars" for lo, hi in zip(boundaries[:-1], boundaries[1:])]
    names.append(f"{boundaries[-1]}+ chars")
    return names


def preprocessing_fn(inputs):
    text = tf.strings.unicode_transcode(to_dense_1d(inputs[F.TEXT_KEY], ""), "UTF-8", "UTF-8", errors="replace")
    chars = tf.cast(tf.strings.length(text, unit="UTF8_CHAR"), tf.float32)
    bucket = tf.raw_ops.Bucketize(input=chars, boundaries=[float(b) for b in F.LENGTH_BOUNDARIES])
    outputs = {F.TEXT_XF: text, F.LENGTH_BUCKET_XF: tf.gather(tf.constant(length_bucket_names()), bucket)}
    if F.LABEL_KEY in inputs:
        outputs[F.LABEL_XF] = tf.cast(to_dense_1d(inputs[F.LABEL_KEY], -1), tf.int64)
    return outputs
