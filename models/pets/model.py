"""The pets network in Keras 3: ImageNet-pretrained EfficientNet-Lite0 features (default) or an
Xception-lite trained from scratch, under the same augmentation and softmax head.

With hparams["backbone"] = "efficientnet_lite0" (the default), the core is the frozen
EfficientNet-Lite0 of models/pets/efficientnet_lite.py (its BatchNorm statistics frozen too), then
dropout and a Dense softmax: only the head trains. 1,450 photos are too few to learn visual features
from scratch; features learnt on ImageNet's 1.3 M photos (which include cats and dogs) are what a
team would start from, as reviews starts from a pretrained BERT.

With "xception_lite":

    image [size, size, 3] in [0, 1]
      -> augmentation (random flip / rotation / zoom; active only when training)
      -> entry: Conv2D 3×3 stride 2 + BatchNorm + ReLU
      -> N residual blocks: [ReLU] SeparableConv2D + BN + ReLU, SeparableConv2D + BN, MaxPool 3×3/2,
         plus a 1×1 stride-2 Conv2D (+ BN) projection of the block input added on
      -> SeparableConv2D + BN + ReLU, global average pooling, dropout
      -> Dense softmax: probabilities [batch, num_classes]

Block widths double from `base_width` (capped at MAX_WIDTH); the final separable conv is
`final_multiplier` times the last block width.

The training model is `augmentation -> core`; `inference_model()` returns the core network alone
(same weights), which is what gets exported: Keras' random layers hold seed-generator state that a
TF SavedModel cannot track, and serving has no use for them.
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import keras
from keras import layers

from models.pets import efficientnet_lite, features as F
from models.pets.mixup import SoftTargetCrossentropy, accuracy_metric

MAX_WIDTH = 512
CORE_NAME = "network"
BACKBONES = ("xception_lite", "efficientnet_lite0")

# Defaults; the Tuner searches around them (search space: pipelines/tasks/pets.py).
DEFAULT_HPARAMS = {
    # "efficientnet_lite0" (ImageNet features, frozen) or "xception_lite" (trained from scratch; the
    # width, depth and BatchNorm settings below shape it only).
    "backbone": "efficientnet_lite0",
    "entry_width": 32,
    "base_width": 32,
    "num_blocks": 3,
    "final_multiplier": 2,
    "dropout": 0.3,
    "learning_rate": 2e-3,
    "weight_decay": 0.01,
    "rotation": 0.1,
    "zoom": 0.2,
    # Random shift (fraction of the side) and contrast; 0 turns a transform off.
    "translation": 0.0,
    "contrast": 0.0,
    # Faster-moving BatchNorm statistics than Keras' 0.99: with ~50 steps per epoch on ~1,500 photos
    # the inference-time statistics otherwise lag training for several epochs.
    "bn_momentum": 0.9,
    "batch_size": 32,
    # Regularisation of the targets (models/pets/mixup.py): mixup's Beta(alpha, alpha) (0: off)
    # and label smoothing towards uniform (0: off).
    "mixup_alpha": 0.0,
    "label_smoothing": 0.0,
}


def block_widths(base_width: int, num_blocks: int, max_width: int = MAX_WIDTH) -> list:
    """Widths of the residual blocks: base, 2·base, 4·base, … (capped at max_width)."""
    return [min(int(base_width) * 2**i, max_width) for i in range(int(num_blocks))]


def augmentation(rotation: float, zoom: float, translation: float = 0.0, contrast: float = 0.0,
                 seed: Optional[int] = None) -> keras.Sequential:
    """Random horizontal flip, rotation (fraction of a full turn), zoom and, when non-zero,
    translation (fraction of the side) and contrast. Keras applies these only when called with
    training=True; at inference they pass images through unchanged."""
    steps = [
        layers.RandomFlip("horizontal", seed=seed, name="random_flip"),
        layers.RandomRotation(rotation, fill_mode="reflect", seed=seed, name="random_rotation"),
        layers.RandomZoom(zoom, fill_mode="reflect", seed=seed, name="random_zoom"),
    ]
    if translation:
        steps.append(layers.RandomTranslation(translation, translation, fill_mode="reflect", seed=seed,
                                              name="random_translation"))
    if contrast:
        # value_range: the images are already scaled to [0, 1].
        steps.append(layers.RandomContrast(contrast, value_range=(0.0, 1.0), seed=seed, name="random_contrast"))
    return keras.Sequential(steps, name="augmentation")


def _conv_bn(x, width: int, name: str, bn_momentum: float, relu: bool = True):
    x = layers.SeparableConv2D(width, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(x)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def build_network(
    image_size: int,
    num_classes: int = 2,
    entry_width: int = 32,
    widths: Sequence[int] = (32, 64, 128),
    final_width: Optional[int] = None,
    dropout: float = 0.3,
    rotation: float = 0.1,
    zoom: float = 0.2,
    translation: float = 0.0,
    contrast: float = 0.0,
    augment: bool = True,
    bn_momentum: float = 0.9,
    seed: Optional[int] = None,
    backbone: str = "xception_lite",
) -> keras.Model:
    """The (uncompiled) network; input is the transformed feature F.IMAGE_XF (a dict). The width
    arguments shape the Xception-lite backbone only."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown pets backbone {backbone!r}; expected one of {', '.join(BACKBONES)}")
    core_inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name=F.IMAGE_XF)
    if backbone == "efficientnet_lite0":
        features = efficientnet_lite.build_backbone(image_size)
        features.trainable = False
        x = features(core_inputs, training=False)
    else:
        x = _xception_features(core_inputs, entry_width, widths, final_width, bn_momentum)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    core = keras.Model({F.IMAGE_XF: core_inputs}, outputs, name=CORE_NAME)
    if not augment:
        return core
    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name=F.IMAGE_XF)
    augmented = augmentation(rotation, zoom, translation, contrast, seed)(inputs)
    return keras.Model({F.IMAGE_XF: inputs}, core({F.IMAGE_XF: augmented}), name=f"{CORE_NAME}_augmented")


def _xception_features(core_inputs, entry_width: int, widths: Sequence[int], final_width: Optional[int],
                       bn_momentum: float):
    """Entry conv, residual separable-conv blocks, exit conv, global average pooling."""
    x = layers.Conv2D(entry_width, 3, strides=2, padding="same", use_bias=False, name="entry_conv")(core_inputs)
    x = layers.BatchNormalization(momentum=bn_momentum, name="entry_bn")(x)
    x = layers.ReLU(name="entry_relu")(x)

    for i, width in enumerate(widths):
        name = f"block{i}"
        block_input = x
        # The entry already ends in a ReLU; later blocks start with one (pre-activation).
        y = x if i == 0 else layers.ReLU(name=f"{name}_pre_relu")(x)
        y = _conv_bn(y, width, f"{name}_sep1", bn_momentum)
        y = _conv_bn(y, width, f"{name}_sep2", bn_momentum, relu=False)
        y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(y)
        residual = layers.Conv2D(width, 1, strides=2, padding="same", use_bias=False,
                                 name=f"{name}_project")(block_input)
        residual = layers.BatchNormalization(momentum=bn_momentum, name=f"{name}_project_bn")(residual)
        x = layers.Add(name=f"{name}_add")([y, residual])

    x = _conv_bn(x, final_width or 2 * widths[-1], "exit_sep", bn_momentum)
    return layers.GlobalAveragePooling2D(name="avg_pool")(x)


class FlipAveraged(keras.Model):
    """Test-time augmentation: the mean of the network's probabilities on the image and on its
    mirror image (the flip the network was trained with), so a prediction does not depend on
    which way the animal faces."""

    def __init__(self, network: keras.Model):
        super().__init__(name=f"{network.name}_flip_averaged")
        self.network = network

    def call(self, inputs, training=False):
        images = inputs[F.IMAGE_XF]
        mirrored = keras.ops.flip(images, axis=2)  # [batch, height, width, channels]: flip the width
        return 0.5 * (self.network({F.IMAGE_XF: images}, training=training)
                      + self.network({F.IMAGE_XF: mirrored}, training=training))


def inference_model(model: keras.Model, flip_average: bool = False) -> keras.Model:
    """The network without its augmentation layers (shares the trained weights); with flip_average,
    wrapped in FlipAveraged."""
    try:
        network = model.get_layer(CORE_NAME)
    except ValueError:
        network = model
    return FlipAveraged(network) if flip_average else network


def build_model(
    hparams: Mapping[str, object],
    image_size: int,
    num_classes: int = 2,
    decay_steps: Optional[int] = None,
    seed: Optional[int] = None,
) -> keras.Model:
    """Build and compile the pets network from hyperparameters: AdamW, cosine-decayed learning rate
    over decay_steps (constant when None), cross-entropy (class ids or, under mixup, class
    probabilities as targets; label smoothing from hparams), accuracy."""
    hp = {**DEFAULT_HPARAMS, **hparams}
    widths = block_widths(int(hp["base_width"]), int(hp["num_blocks"]))
    model = build_network(
        image_size,
        num_classes=num_classes,
        entry_width=int(hp["entry_width"]),
        widths=widths,
        final_width=int(hp["final_multiplier"]) * widths[-1],
        dropout=float(hp["dropout"]),
        rotation=float(hp["rotation"]),
        zoom=float(hp["zoom"]),
        translation=float(hp["translation"]),
        contrast=float(hp["contrast"]),
        bn_momentum=float(hp["bn_momentum"]),
        seed=seed,
        backbone=str(hp["backbone"]),
    )
    learning_rate = float(hp["learning_rate"])
    if decay_steps:
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=int(decay_steps), alpha=0.02
        )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=float(hp["weight_decay"])),
        loss=SoftTargetCrossentropy(num_classes, label_smoothing=float(hp["label_smoothing"])),
        metrics=[accuracy_metric(num_classes)],
    )
    return model
