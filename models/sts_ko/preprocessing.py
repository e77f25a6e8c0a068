"""TF Transform for KLUE STS: clean sentence text (valid UTF-8) and the gold score scaled to [0, 1].

SentencePiece tokenisation happens inside the model (models/common/text/e5_tokenizer.py), so the
exported SavedModel takes raw text.
"""
import tensorflow as tf

from models.common.tensors import to_dense_1d
from models.sts_ko import features as F


def _clean(text):
    return tf.strings.unicode_transcode(to_dense_1d(text, ""), "UTF-8", "UTF-8", errors="replace")


def preprocessing_fn(inputs):
    outputs = {}
    for raw, xf in ((F.SENTENCE1_KEY, F.SENTENCE1_XF), (F.SENTENCE2_KEY, F.SENTENCE2_XF)):
        if raw in inputs:
            outputs[xf] = _clean(inputs[raw])
    if F.LABEL_KEY in inputs:
        score = tf.cast(to_dense_1d(inputs[F.LABEL_KEY], 0.0), tf.float32)
        outputs[F.LABEL_XF] = tf.clip_by_value(score / F.MAX_SCORE, 0.0, 1.0)
    return outputs
