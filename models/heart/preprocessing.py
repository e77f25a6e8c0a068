"""TF Transform for heart: z-scores for the numeric columns, vocabulary ids for the categoricals.

Integer categoricals (sex, cp, ...) are turned into strings first so that they get a vocabulary just
like `thal`; the model one-hot encodes the ids (models/heart/model.py). Values unseen in training
(e.g. a new `thal` code) land in the OOV bucket.
"""
import tensorflow as tf
import tensorflow_transform as tft

from models.common import analyzers
from models.common.tensors import to_dense_1d
from models.heart import features as F


def preprocessing_fn(inputs):
    outputs = {}
    for name in F.NUMERIC_FEATURES:
        x = tf.cast(to_dense_1d(inputs[name], 0), tf.float32)
        outputs[F.xf(name)] = analyzers.z_score(x)
    for name in F.CATEGORICAL_FEATURES:
        x = to_dense_1d(inputs[name], "" if name in F.STRING_CATEGORICAL_FEATURES else -1)
        if x.dtype != tf.string:
            x = tf.strings.as_string(x)
        outputs[F.xf(name)] = tft.compute_and_apply_vocabulary(
            tf.strings.strip(x), num_oov_buckets=F.NUM_OOV_BUCKETS, vocab_filename=F.vocab_name(name)
        )
    if F.LABEL_KEY in inputs:
        outputs[F.LABEL_XF] = tf.cast(to_dense_1d(inputs[F.LABEL_KEY], -1), tf.int64)
    return outputs
