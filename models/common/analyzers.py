"""Full-pass statistics for preprocessing_fn whose results do not depend on the order Beam combines them in.

Beam adds up partial sums in whatever order its bundles finish. In float32 that moves a mean or a
variance by an ulp between two runs of the same data (census, two runs of one commit on one
machine: capital_loss_xf differed in 24,874 of 26,082 training rows), and those ulps are enough to
send training elsewhere, so no seed could make a rebuild match. Here the statistics are computed in
float64, where reorderings move them around 1e-16, and rounded to 10 significant digits, which
erases that (unless a statistic sits within 1e-16 of a rounding edge: about one chance in a
million per statistic). Per-row arithmetic before them should be float64 too where a float32
kernel's result depends on the row's place in its batch (e.g. log1p; see census preprocessing).
"""
import tensorflow as tf
import tensorflow_transform as tft

SIGNIFICANT_DIGITS = 10


def settled(statistic: tf.Tensor, digits: int = SIGNIFICANT_DIGITS) -> tf.Tensor:
    """A float64 statistic rounded to `digits` significant digits (0 stays 0)."""
    magnitude = tf.math.floor(tf.math.log(tf.abs(statistic)) / tf.math.log(tf.constant(10.0, tf.float64)))
    scale = tf.pow(tf.constant(10.0, tf.float64), digits - 1 - magnitude)
    return tf.where(tf.equal(statistic, 0.0), tf.zeros_like(statistic), tf.round(statistic * scale) / scale)


def z_score(x: tf.Tensor) -> tf.Tensor:
    """(x - mean) / stddev over the whole dataset (x - mean where the variance is 0), as float32,
    like tft.scale_to_z_score but with settled float64 statistics."""
    x64 = tf.cast(x, tf.float64)
    mean, var = settled(tft.mean(x64)), settled(tft.var(x64))
    centered = x64 - mean
    positive = tf.greater(var, 0.0)
    z = tf.where(positive, centered / tf.sqrt(tf.where(positive, var, tf.ones_like(var))), centered)
    return tf.cast(z, tf.float32)


def mean(x: tf.Tensor) -> tf.Tensor:
    """The mean of x over the whole dataset, settled in float64, as float32."""
    return tf.cast(settled(tft.mean(tf.cast(x, tf.float64))), tf.float32)
