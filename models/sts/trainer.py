"""TFX Trainer entry point for sts: `models.sts.trainer.run_fn`, the shared siamese fine-tuning and
serving module (models/common/text/siamese.py: similarity, embed and transform_features signatures)
over MiniLM."""
from __future__ import annotations

from models.common.text import siamese
from models.sts.model import DEFAULT_HPARAMS


def run_fn(fn_args):
    return siamese.fit_and_export(fn_args, DEFAULT_HPARAMS)
