"""TFX Trainer entry point for reviews: `models.reviews.trainer.run_fn` (MiniLM fine-tuning, tf_keras),
the shared text classifier's training (models/common/text/classifier.py) with reviews' defaults."""
from __future__ import annotations

from models.common.text import classifier
from models.reviews import features as F
from models.reviews.model import DEFAULT_HPARAMS


def run_fn(fn_args):
    return classifier.fit_and_export(fn_args, default_hparams=DEFAULT_HPARAMS, text_key=F.TEXT_XF,
                                     label_key=F.LABEL_KEY, serving_features=[F.TEXT_KEY],
                                     num_classes=len(F.CLASS_NAMES), checkpoints=4)
