"""BERT WordPiece tokenisation as TensorFlow ops (tensorflow-text), matching BERT's own tokenizer.

The same module runs in the training input path and inside the exported SavedModel, so the model
takes raw text. Steps, as in BERT's uncased tokenizer: drop control characters and U+FFFD, lower-case,
strip accents (NFD, drop combining marks), split on whitespace/punctuation/CJK, WordPiece with the
checkpoint's vocab.txt, truncate, add [CLS]/[SEP], pad to max_seq_length.

Truncation keeps the first pieces (BERT's default) or, with head_tokens=h, the first h pieces and
the last ones ("head+tail": Sun et al. 2019, How to Fine-Tune BERT for Text Classification, found
it best on IMDB, where a review's verdict is often in its closing lines).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import tensorflow as tf
import tensorflow_text as tf_text


def read_vocab(path: Path) -> list:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


class WordPieceTokenizer(tf.Module):
    """text [batch] string -> (input_ids, attention_mask), int32 [batch, max_seq_length]."""

    def __init__(self, vocab: list, max_seq_length: int, head_tokens: Optional[int] = None,
                 name: str = "wordpiece_tokenizer"):
        super().__init__(name=name)
        if max_seq_length < 3:
            raise ValueError("max_seq_length must leave room for [CLS] and [SEP]")
        if head_tokens is not None and not 0 <= head_tokens <= max_seq_length - 2:
            raise ValueError(f"head_tokens must be between 0 and max_seq_length - 2 = {max_seq_length - 2}, "
                             f"got {head_tokens}")
        self.max_seq_length = max_seq_length
        self.head_tokens = head_tokens
        ids = {token: i for i, token in enumerate(vocab)}
        for special in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            if special not in ids:
                raise ValueError(f"vocabulary lacks {special}")
        self.cls_id, self.sep_id, self.pad_id = ids["[CLS]"], ids["[SEP]"], ids["[PAD]"]
        self.table = tf.lookup.StaticVocabularyTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(vocab), tf.range(len(vocab), dtype=tf.int64)
            ),
            num_oov_buckets=1,
        )
        self.bert_tokenizer = tf_text.BertTokenizer(
            self.table, lower_case=False, unknown_token="[UNK]", token_out_type=tf.int64
        )

    @staticmethod
    def normalize(text: tf.Tensor) -> tf.Tensor:
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")
        text = tf.strings.regex_replace(text, r"[\t\n\r]", " ")
        text = tf.strings.regex_replace(text, r"[\p{C}\x{FFFD}]", "")
        text = tf.strings.lower(text, encoding="utf-8")
        text = tf_text.normalize_utf8(text, "NFD")
        return tf.strings.regex_replace(text, r"\p{Mn}", "")

    def truncate(self, pieces: tf.RaggedTensor, budget: int) -> tf.RaggedTensor:
        """At most budget pieces per row: the first ones, or the first head_tokens and the last
        budget - head_tokens when head_tokens is set. Rows within budget are unchanged."""
        if self.head_tokens is None or self.head_tokens == budget:
            return pieces[:, :budget]
        rows = pieces.value_rowids()
        position = tf.range(tf.size(rows, out_type=tf.int64)) - tf.gather(pieces.row_starts(), rows)
        length = tf.gather(pieces.row_lengths(), rows)
        keep = (position < self.head_tokens) | (position >= length - (budget - self.head_tokens))
        return tf.RaggedTensor.from_value_rowids(
            tf.boolean_mask(pieces.values, keep), tf.boolean_mask(rows, keep), nrows=pieces.nrows())

    def __call__(self, text: tf.Tensor):
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        pieces = self.bert_tokenizer.tokenize(self.normalize(text)).merge_dims(-2, -1)
        pieces = self.truncate(pieces, self.max_seq_length - 2)
        batch = tf.shape(text, out_type=tf.int64)[:1]
        cls = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.cls_id, tf.int64))
        sep = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.sep_id, tf.int64))
        ids = tf.concat([cls, pieces, sep], axis=1)
        mask = tf.ones_like(ids)
        input_ids = ids.to_tensor(default_value=self.pad_id, shape=[None, self.max_seq_length])
        attention_mask = mask.to_tensor(default_value=0, shape=[None, self.max_seq_length])
        return tf.cast(input_ids, tf.int32), tf.cast(attention_mask, tf.int32)
