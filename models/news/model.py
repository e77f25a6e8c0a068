"""The from-scratch news classifier in Keras 3: token + position embeddings, N Transformer encoder
blocks, masked mean pooling, dropout and a softmax over the four topics; by default a seed ensemble
of ENSEMBLE_SIZE such networks trained in one graph and served as their average
(models/common/ensemble.py).

Input: the transformed token ids [batch, MAX_TOKENS] (0 = padding, see preprocessing.py); output:
class probabilities [batch, num_classes]. The Tuner searches around DEFAULT_HPARAMS (tuner.py).
"""
from __future__ import annotations

from typing import Mapping

import keras
from keras import layers, ops

from models.common import ensemble
from models.news import features as F

# dropout 0.3 and learning rate 5e-4 (rather than 0.2 and 1e-3): validation accuracy 0.864 vs 0.854 on
# the real data (same Transform output, seed 42, early stopping on validation loss); the model
# overfits the 7,241 training articles after one or two passes either way.
DEFAULT_HPARAMS = {
    "embedding_dim": 64,
    "num_heads": 4,
    "ff_dim": 128,
    "num_blocks": 1,
    "dropout": 0.3,
    "learning_rate": 5e-4,
    "weight_decay": 1e-4,
    "batch_size": 64,
    "ensemble_size": 5,
}
# Why five members (validation split only): one network lands between 0.79 and 0.86 accuracy by seed
# (five seeds trained apart, mean 0.832; their average 0.856). Trained together as the Trainer does
# (trainer.py's validation schedule), seeds 42 / 43: ensemble 0.846 / 0.862, its members' mean
# 0.838 / 0.857. Members share the hyperparameters; the Tuner searches one network (tuner.py).


class TokenAndPositionEmbedding(layers.Layer):
    """Token embedding + learned position embedding; id 0 is padding."""

    def __init__(self, vocab_size: int, max_len: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.max_len, self.dim = vocab_size, max_len, dim
        self.tokens = layers.Embedding(vocab_size, dim, name="tokens")
        self.positions = layers.Embedding(max_len, dim, name="positions")

    def call(self, ids):
        positions = ops.arange(0, ops.shape(ids)[-1])
        return self.tokens(ids) + self.positions(positions)[None]

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "max_len": self.max_len, "dim": self.dim}


class EncoderBlock(layers.Layer):
    """Post-norm Transformer encoder block: self-attention over the real tokens, then a feed-forward net."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heads, self.ff_dim, self.rate = dim, heads, ff_dim, dropout
        self.attention = layers.MultiHeadAttention(heads, key_dim=max(1, dim // heads), dropout=dropout)
        self.ff1 = layers.Dense(ff_dim, activation="gelu")
        self.ff2 = layers.Dense(dim)
        self.norm1 = layers.LayerNormalization(epsilon=1e-6)
        self.norm2 = layers.LayerNormalization(epsilon=1e-6)
        self.drop1 = layers.Dropout(dropout)
        self.drop2 = layers.Dropout(dropout)

    def call(self, x, mask, training=False):
        # [batch, 1, T]: every query attends to the real tokens only.
        attended = self.attention(x, x, attention_mask=mask[:, None, :], training=training)
        x = self.norm1(x + self.drop1(attended, training=training))
        return self.norm2(x + self.drop2(self.ff2(self.ff1(x)), training=training))

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "heads": self.heads, "ff_dim": self.ff_dim,
                "dropout": self.rate}


class MaskedMeanPool(layers.Layer):
    """Mean of the token vectors where the mask is set (zeros for a text without tokens)."""

    def call(self, x, mask):
        weights = ops.cast(mask, x.dtype)[:, :, None]
        return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)


class NotPadding(layers.Layer):
    def call(self, ids):
        return ops.not_equal(ids, 0)


def network(hp: Mapping[str, object], vocab_size: int, num_classes: int, max_len: int, name: str) -> keras.Model:
    """One uncompiled classifier: token ids [batch, max_len] -> probabilities [batch, num_classes]."""
    dim, heads = int(hp["embedding_dim"]), int(hp["num_heads"])
    dropout = float(hp["dropout"])
    ids = keras.Input(shape=(max_len,), dtype="int64", name=F.TOKENS_XF)
    mask = NotPadding(name="not_padding")(ids)
    x = TokenAndPositionEmbedding(vocab_size, max_len, dim, name="embedding")(ids)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    for i in range(int(hp["num_blocks"])):
        x = EncoderBlock(dim, heads, int(hp["ff_dim"]), dropout, name=f"encoder{i}")(x, mask)
    x = MaskedMeanPool(name="pool")(x, mask)
    x = layers.Dropout(dropout, name="dropout")(x)
    probabilities = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model({F.TOKENS_XF: ids}, probabilities, name=name)


def build_model(hparams: Mapping[str, object], vocab_size: int, num_classes: int = len(F.CLASS_NAMES),
                max_len: int = F.MAX_TOKENS) -> keras.Model:
    """The compiled classifier. vocab_size counts every id the input can hold (padding and OOV included).
    hparams["ensemble_size"] > 1: that many networks in one graph, outputs stacked [batch, K, classes],
    each trained on its own loss; `served_model(model)` is what to export."""
    hp = {**DEFAULT_HPARAMS, **dict(hparams)}
    size = int(hp["ensemble_size"])
    if size > 1:
        model = ensemble.build_ensemble(
            lambda i: network(hp, vocab_size, num_classes, max_len, name=f"member{i}"), size)
        loss, accuracy = ensemble.MemberCrossentropy(), ensemble.EnsembleAccuracy(name="accuracy")
    else:
        model = network(hp, vocab_size, num_classes, max_len, name="news_transformer")
        loss = keras.losses.SparseCategoricalCrossentropy()
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=float(hp["learning_rate"]),
                                         weight_decay=float(hp["weight_decay"])),
        loss=loss,
        metrics=[accuracy],
    )
    return model


def served_model(model: keras.Model) -> keras.Model:
    """The model to export: an ensemble's members averaged ([batch, classes]), else the model."""
    return ensemble.served(model)
