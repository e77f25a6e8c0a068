"""Small tensor helpers shared by preprocessing functions."""
import tensorflow as tf


def to_dense_1d(x, default_value):
    """A [batch] dense tensor from a [batch, 1] dense or a sparse/ragged feature (missing -> default)."""
    if isinstance(x, tf.sparse.SparseTensor):
        x = tf.sparse.to_dense(
            tf.sparse.reset_shape(x, [x.dense_shape[0], 1]), default_value=default_value
        )
    elif isinstance(x, tf.RaggedTensor):
        x = x.to_tensor(default_value=default_value, shape=[None, 1])
    return tf.reshape(x, [-1])
