"""TF Transform for news: the normalised title + description, its tokens looked up in a vocabulary
learnt on the train split (TF Transform analyzer), the class id and a length bucket for slicing.

Normalisation: valid UTF-8, AG News' escapes (a backslash stands for a line break, `#36;`-style
HTML entities) to spaces, lower case, every run of characters other than letters and digits is one
separator. The token ids are the vocabulary index + 1, so 0 pads; tokens outside the vocabulary
share one OOV id (vocabulary size + 1). An empty or missing title and description give a row of
padding, which the model reads as no token (its pooling is masked).
"""
import tensorflow as tf
import tensorflow_transform as tft

from models.common.tensors import to_dense_1d
from models.news import features as F


def length_bucket_names(boundaries=F.LENGTH_BOUNDARIES):
    names = [f"<{boundaries[0]} words"]
    names += [f"{lo}-{hi - 1} words" for lo, hi in zip(boundaries[:-1], boundaries[1:])]
    names.append(f"{boundaries[-1]}+ words")
    return names


def normalize(text: tf.Tensor) -> tf.Tensor:
    text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
    text = tf.strings.regex_replace(text, r"#\d+;|&\w+;|\\", " ")
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"[^\p{L}\p{N}]+", " ")
    return tf.strings.strip(text)


def text_of(inputs) -> tf.Tensor:
    """title + ' ' + description as one [batch] string (a missing column is empty)."""
    parts = [to_dense_1d(inputs[key], "") if key in inputs else None for key in F.TEXT_FEATURES]
    parts = [p for p in parts if p is not None]
    return tf.strings.reduce_join(tf.stack(parts, axis=1), axis=1, separator=" ")


def label_id(topic: tf.Tensor) -> tf.Tensor:
    """Index of the topic in CLASS_NAMES (an AG News class index 1..4 is accepted too); -1 if neither."""
    topic = tf.strings.strip(topic)
    names = tf.constant(F.CLASS_NAMES)
    numbers = tf.constant([str(i + 1) for i in range(len(F.CLASS_NAMES))])
    hits = tf.cast(tf.equal(topic[:, None], names[None, :]) | tf.equal(topic[:, None], numbers[None, :]), tf.int64)
    index = tf.argmax(hits, axis=1)
    return tf.where(tf.reduce_any(hits > 0, axis=1), index, tf.constant(-1, tf.int64))


def token_ids(text: tf.Tensor) -> tf.Tensor:
    """[batch, MAX_TOKENS] int64 ids (vocabulary index + 1; 0 pads) of the normalised text's tokens."""
    tokens = tf.strings.split(text)[:, : F.MAX_TOKENS]
    ids = tft.compute_and_apply_vocabulary(
        tokens, top_k=F.VOCAB_SIZE, frequency_threshold=F.VOCAB_MIN_COUNT,
        num_oov_buckets=F.NUM_OOV_BUCKETS, vocab_filename=F.VOCAB_NAME)
    return (ids + 1).to_tensor(default_value=0, shape=[None, F.MAX_TOKENS])


def preprocessing_fn(inputs):
    text = normalize(text_of(inputs))
    words = tf.cast(tf.strings.split(text).row_lengths(), tf.float32)
    bucket = tf.raw_ops.Bucketize(input=words, boundaries=[float(b) for b in F.LENGTH_BOUNDARIES])
    outputs = {
        F.TEXT_XF: text,
        F.TOKENS_XF: token_ids(text),
        F.LENGTH_BUCKET_XF: tf.gather(tf.constant(length_bucket_names()), bucket),
    }
    if F.TOPIC_KEY in inputs:
        outputs[F.LABEL_XF] = label_id(to_dense_1d(inputs[F.TOPIC_KEY], ""))
    return outputs
