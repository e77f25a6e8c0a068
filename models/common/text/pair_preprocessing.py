"""TF Transform of the similarity tasks (sts, sts_ko): the sentences cleaned to valid UTF-8 and the
gold score scaled to [0, 1]. Tokenisation happens inside the model (the encoder's in-graph
tokenizer, models/common/text/encoders.py), so the exported SavedModel takes raw text.
"""
import tensorflow as tf

from models.common.contract import LABEL_XF
from models.common.tensors import to_dense_1d
from models.common.text import pairs as F


def _clean(text):
    # Invalid UTF-8 bytes become U+FFFD (the tokenizers then drop them, as BERT's does).
    return tf.strings.unicode_transcode(to_dense_1d(text, ""), "UTF-8", "UTF-8", errors="replace")


def preprocessing_fn(inputs):
    outputs = {}
    for raw, xf in ((F.SENTENCE1_KEY, F.SENTENCE1_XF), (F.SENTENCE2_KEY, F.SENTENCE2_XF)):
        if raw in inputs:
            outputs[xf] = _clean(inputs[raw])
    if F.SCORE_KEY in inputs:
        score = tf.cast(to_dense_1d(inputs[F.SCORE_KEY], 0.0), tf.float32)
        outputs[LABEL_XF] = tf.clip_by_value(score / F.MAX_SCORE, 0.0, 1.0)
    return outputs
