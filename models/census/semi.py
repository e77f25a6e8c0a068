"""Semi-supervised TabTransformer for census: masked-column pre-training on unlabelled rows, then
supervised fine-tuning on the labelled ones (the TabTransformer paper's semi-supervised recipe, with
masked-token reconstruction as the pre-training objective).

Selected by custom_config (profile "semi" in pipelines/tasks/census.py):
  "pretrain": {"epochs": N (passes over the train split) or "steps": N, "mask_rate": 0.15,
               "learning_rate": optional, defaults to the model's}
  "label_fraction": f  keep the label of only a fraction f of the training rows (deterministic per
                       row); pre-training still sees every training row, without labels.

Pre-training: each of the 13 token columns (8 categoricals + 5 binned numerics) of a row is replaced
by that column's [MASK] id (one extra embedding row per column) with probability mask_rate; the
transformer's contextual embedding of every masked position predicts the original category through
a per-column softmax head (cross-entropy over masked positions only). The category embeddings,
column embedding and transformer blocks are the classifier's own layers, so fine-tuning starts from
them; the reconstruction heads are dropped afterwards. Serving is unchanged (the [MASK] ids never
occur outside pre-training).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import keras
import tensorflow as tf
from keras import layers

from models.census import features as F
from models.census.model import Stack

IGNORE = -1  # target of an unmasked position: no loss


def with_mask_tokens(vocab_sizes: Mapping[str, int]) -> dict:
    """Embedding sizes with one extra id per column: the [MASK] id is the column's old size."""
    return {name: size + 1 for name, size in vocab_sizes.items()}


def mask_ids(vocab_sizes_with_mask: Mapping[str, int]) -> dict:
    return {name: size - 1 for name, size in vocab_sizes_with_mask.items()}


class TakeColumn(layers.Layer):
    """x[:, index, :] of a [batch, columns, dim] tensor."""

    def __init__(self, index: int, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, x):
        return x[:, self.index, :]

    def get_config(self):
        return {**super().get_config(), "index": self.index}


def reconstruction_head_name(column: str) -> str:
    return f"{column}_reconstruction"


def build_pretrainer(classifier: keras.Model, vocab_sizes_with_mask: Mapping[str, int],
                     num_transformer_blocks: int, use_column_embedding: bool = True) -> keras.Model:
    """Masked-column reconstruction model sharing the classifier's embeddings and transformer blocks.

    Inputs: the token columns (some ids replaced by their [MASK] id). Outputs: per column, softmax
    over that column's real categories (the [MASK] id itself is never a target)."""
    columns = list(vocab_sizes_with_mask)
    inputs = {name: keras.Input(shape=(), dtype="int64", name=name) for name in columns}
    embedded = [classifier.get_layer(f"{name}_embedding")(inputs[name]) for name in columns]
    x = Stack(name="pretrain_stack")(embedded)
    if use_column_embedding:
        x = classifier.get_layer("column_embedding")(x)
    for block in range(num_transformer_blocks):
        attention = classifier.get_layer(f"attention{block}")(x, x)
        x = classifier.get_layer(f"attention_norm{block}")(layers.Add()([x, attention]))
        ff = classifier.get_layer(f"ffn{block}_drop")(classifier.get_layer(f"ffn{block}_dense")(x))
        x = classifier.get_layer(f"ffn_norm{block}")(layers.Add()([x, ff]))
    outputs = {
        reconstruction_head_name(name): layers.Dense(
            vocab_sizes_with_mask[name] - 1, activation="softmax", name=reconstruction_head_name(name)
        )(TakeColumn(i, name=f"{name}_contextual")(x))
        for i, name in enumerate(columns)
    }
    return keras.Model(inputs, outputs, name="tabtransformer_pretrainer")


def masking_fn(mask_id: Mapping[str, int], mask_rate: float):
    """(features, label[, weight]) batch -> (masked token columns, reconstruction targets)."""
    columns = sorted(mask_id)

    def mask(features, *_):
        inputs, targets = {}, {}
        for name in columns:
            ids = features[name]
            masked = tf.random.uniform(tf.shape(ids)) < mask_rate
            inputs[name] = tf.where(masked, tf.constant(mask_id[name], ids.dtype), ids)
            targets[reconstruction_head_name(name)] = tf.where(masked, ids, tf.constant(IGNORE, ids.dtype))
        return inputs, targets

    return mask


def label_kept(features: Mapping[str, tf.Tensor], fraction: float, buckets: int = 10000) -> tf.Tensor:
    """Which rows keep their label: a hash of each row's transformed values (tensors of shape [batch]
    or scalars), so the same rows are labelled in every epoch, run and arm of a comparison."""
    parts = [tf.strings.as_string(features[name]) for name in sorted(features)]
    rows = tf.strings.reduce_join(tf.stack(parts, axis=0), axis=0, separator="|")
    return tf.strings.to_hash_bucket_fast(rows, buckets) < int(round(fraction * buckets))


def keep_labelled(dataset: tf.data.Dataset, fraction: float, batch_size: int) -> tf.data.Dataset:
    """The labelled subset of a batched (features, label[, weight]) dataset, re-batched to batch_size."""
    if fraction >= 1.0:
        return dataset

    def keep(features, label, *weight):
        kept = label_kept({**features, "__label": label, **({"__weight": weight[0]} if weight else {})}, fraction)
        subset = {name: tf.boolean_mask(value, kept) for name, value in features.items()}
        return (subset, tf.boolean_mask(label, kept), *(tf.boolean_mask(w, kept) for w in weight))

    return dataset.map(keep, num_parallel_calls=tf.data.AUTOTUNE).unbatch().batch(batch_size).prefetch(
        tf.data.AUTOTUNE)


def pretrain_steps(settings: Mapping[str, object], train_rows: int, batch_size: int) -> int:
    if "steps" in settings:
        return max(1, int(settings["steps"]))
    return max(1, int(float(settings.get("epochs", 1)) * math.ceil(train_rows / batch_size)))


def pretrain(classifier: keras.Model, dataset: tf.data.Dataset, vocab_sizes_with_mask: Mapping[str, int],
             hparams: Mapping[str, object], settings: Mapping[str, object], steps: int,
             callbacks: Sequence = ()) -> keras.callbacks.History:
    """Pre-train the classifier's embeddings and transformer blocks by masked-column reconstruction
    on `dataset` (labels ignored) for `steps` steps."""
    if hparams.get("model", "tabtransformer") != "tabtransformer":
        raise ValueError("pre-training needs the TabTransformer (custom_config['model'] = 'tabtransformer')")
    pretrainer = build_pretrainer(
        classifier, vocab_sizes_with_mask, int(hparams["num_transformer_blocks"]),
        bool(hparams.get("use_column_embedding", True)),
    )
    pretrainer.compile(
        optimizer=keras.optimizers.AdamW(
            learning_rate=float(settings.get("learning_rate", hparams["learning_rate"])),
            weight_decay=float(hparams["weight_decay"]),
        ),
        loss={
            reconstruction_head_name(name): keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE)
            for name in vocab_sizes_with_mask
        },
    )
    masked = dataset.map(
        masking_fn(mask_ids(vocab_sizes_with_mask), float(settings.get("mask_rate", 0.15))),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    epochs = min(10, steps)
    return pretrainer.fit(masked, epochs=epochs, steps_per_epoch=max(1, steps // epochs),
                          callbacks=list(callbacks), verbose=2)


def count_rows(files, data_accessor, tf_transform_output, feature: str = F.LABEL_XF) -> int:
    """Rows in the transformed examples (one pass, label column only)."""
    from tfx_bsl.public import tfxio

    dataset = data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=1024, shuffle=False, num_epochs=1),
        tf_transform_output.transformed_metadata.schema,
    )
    return int(sum(int(tf.shape(batch[feature])[0]) for batch in dataset))
