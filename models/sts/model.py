"""sts's model: the shared siamese sentence encoder (models/common/text/siamese.py) on the packaged
MiniLM (WordPiece), with sts's fine-tuning defaults."""
from __future__ import annotations

from typing import Callable, Mapping, Optional

import tensorflow as tf

from models.common.text import siamese
from models.common.text.encoders import encoder_hparams

# checkpoint "packaged" or a directory with config.json + vocab.txt (+ model.safetensors)
DEFAULT_HPARAMS = {**encoder_hparams("minilm"), **siamese.SIAMESE_HPARAMS}


def build_model(hparams: Mapping[str, object],
                train_texts: Optional[Callable[[], tf.data.Dataset]] = None) -> siamese.SiameseSimilarity:
    return siamese.build_model({**DEFAULT_HPARAMS, **hparams}, train_texts)
