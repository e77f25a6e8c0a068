"""Order-independent full-pass statistics (models/common/analyzers.py)."""
import numpy as np
import tensorflow as tf

from models.common.analyzers import settled


def test_settled_statistics_round_away_reordering_noise_and_keep_zero():
    mean = 0.1 + 0.2  # 0.30000000000000004: what one summation order gives
    values = tf.constant([mean, 0.3, 0.0, -98765.43210987654, 3.3e-7], tf.float64)
    out = settled(values).numpy()
    assert out[0] == out[1] == 0.3
    assert out[2] == 0.0 and not np.isnan(out[2])
    assert out[3] == -98765.43211 and out[4] == 3.3e-7
