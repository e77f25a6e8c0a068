"""reviews' classifier: the shared fine-tuned text classifier (models/common/text/classifier.py) on
the packaged MiniLM (WordPiece), over the IMDB review text; raw text in, probabilities out."""
from __future__ import annotations

from typing import Mapping

from models.common.text import classifier
from models.common.text.encoders import encoder_hparams, head_tokens_of  # noqa: F401  (head_tokens_of: tests)
from models.reviews import features as F

DEFAULT_HPARAMS = {
    **classifier.CLASSIFIER_HPARAMS,
    **encoder_hparams("minilm"),  # checkpoint "packaged" or a directory with config.json + vocab.txt (+ weights)
    "max_seq_length": 128,
    # Truncation of long reviews: None keeps the first max_seq_length - 2 pieces; a fraction keeps
    # that share of them from the head and the rest from the end (encoders.head_tokens_of).
    "head_fraction": None,
}


def build_classifier(hparams: Mapping[str, object], num_classes: int = len(F.CLASS_NAMES)) -> classifier.TextClassifier:
    return classifier.build_classifier({**DEFAULT_HPARAMS, **hparams}, num_classes, F.TEXT_XF)
