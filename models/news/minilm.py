"""Profile "minilm" of news: the packaged MiniLM encoder (all-MiniLM-L6-v2, the checkpoint reviews
fine-tunes) fine-tuned on the same data, so the from-scratch Transformer is measured against a
pretrained one. `models.news.minilm.run_fn`: the shared text classifier
(models/common/text/classifier.py) over the normalised title + description Transform writes
(text_xf), tokenised in the graph, so the served model takes raw text like the default profile's.
"""
from __future__ import annotations

from typing import Mapping

from models.common.text import classifier
from models.common.text.encoders import encoder_hparams
from models.news import features as F

DEFAULT_HPARAMS = {**classifier.CLASSIFIER_HPARAMS, **encoder_hparams("minilm"), "max_seq_length": 96}


def build_classifier(hparams: Mapping[str, object], total_steps: int,
                     num_classes: int = len(F.CLASS_NAMES)) -> classifier.TextClassifier:
    """The compiled classifier (AdamW schedule over total_steps)."""
    hp = {**DEFAULT_HPARAMS, **dict(hparams)}
    model = classifier.build_classifier(hp, num_classes, F.TEXT_XF)
    classifier.compile_classifier(model, hp, total_steps)
    return model


def run_fn(fn_args):
    return classifier.fit_and_export(fn_args, default_hparams=DEFAULT_HPARAMS, text_key=F.TEXT_XF,
                                     label_key=F.LABEL_KEY, serving_features=F.TEXT_FEATURES,
                                     num_classes=len(F.CLASS_NAMES), checkpoints=3)
