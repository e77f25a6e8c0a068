"""TF Transform preprocessing for census: vocabularies, z-scores, 0/1 label, example weight."""
import tensorflow as tf
import tensorflow_transform as tft

from models.census import features as F
from models.common import analyzers
from models.common.tensors import to_dense_1d

NUM_OOV_BUCKETS = 1


def age_bucket_names(boundaries=F.AGE_BOUNDARIES):
    """Readable slice names such as '<25', '25-34', ..., '65+'."""
    names = [f"<{boundaries[0]}"]
    names += [f"{lo}-{hi - 1}" for lo, hi in zip(boundaries[:-1], boundaries[1:])]
    names.append(f"{boundaries[-1]}+")
    return names


def _age_bucket(age):
    idx = tf.raw_ops.Bucketize(input=tf.cast(age, tf.float32), boundaries=[float(b) for b in F.AGE_BOUNDARIES])
    return tf.gather(tf.constant(age_bucket_names()), idx)


def preprocessing_fn(inputs):
    """Map raw census columns to model inputs; the label and weight only when present."""
    outputs = {}
    for name in F.NUMERIC_FEATURES:
        # float64 up to the outputs: float32 log1p gives equal inputs results an ulp apart depending
        # on where they sit in a batch (vectorised vs scalar path), and Beam batches differ per run.
        x = tf.cast(to_dense_1d(inputs[name], 0), tf.float64)
        if name in F.LOG_FEATURES:
            x = tf.math.log1p(tf.maximum(x, 0.0))
        outputs[F.xf(name)] = analyzers.z_score(x)
        outputs[F.bin_name(name)] = tft.bucketize(tf.cast(x, tf.float32), num_buckets=F.NUM_BINS)
    for name in F.CATEGORICAL_FEATURES:
        x = tf.strings.strip(to_dense_1d(inputs[name], "?"))
        outputs[F.xf(name)] = tft.compute_and_apply_vocabulary(
            x, num_oov_buckets=NUM_OOV_BUCKETS, vocab_filename=F.vocab_name(name)
        )
    outputs[F.AGE_BUCKET_XF] = _age_bucket(to_dense_1d(inputs["age"], 0))
    # Weight: fnlwgt divided by its mean, so the average training example has weight 1.
    weight = tf.cast(to_dense_1d(inputs[F.WEIGHT_KEY], 0), tf.float32)
    outputs[F.WEIGHT_XF] = weight / analyzers.mean(weight)
    label = tf.strings.strip(to_dense_1d(inputs[F.LABEL_KEY], ""))
    outputs[F.LABEL_XF] = tf.cast(tf.equal(label, F.CLASS_NAMES[1]), tf.int64)
    return outputs
