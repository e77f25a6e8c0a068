"""TF Transform preprocessing for pets: decode, resize, scale to [0, 1]; class name -> class id.

The image size is part of the transform graph, so it is chosen by the preprocessing_fn's name:
`preprocessing_fn` uses features.DEFAULT_IMAGE_SIZE and `preprocessing_fn_<N>` (any N >= 8, e.g.
`models.pets.preprocessing.preprocessing_fn_160`) resizes to N×N. The trainer reads the size back
from the transformed schema, so the TaskConfig names it in exactly one place.
"""
from __future__ import annotations

import re

import tensorflow as tf

from models.common.tensors import to_dense_1d
from models.pets import features as F


def decode_image(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """One JPEG/PNG (scalar string) -> float32 [size, size, 3] in [0, 1]; grey and RGBA become RGB."""
    image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
    image = tf.image.resize(image, [size, size], method="bilinear", antialias=True)
    return tf.clip_by_value(image / 255.0, 0.0, 1.0)


def decode_images(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """[batch] encoded images -> float32 [batch, size, size, 3]."""
    return tf.map_fn(
        lambda one: decode_image(one, size),
        encoded,
        fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32),
    )


def label_ids(names: tf.Tensor, class_names=F.CLASS_NAMES) -> tf.Tensor:
    """Class names -> int64 ids in class_names order. Unknown names would map to 0, but the
    curated schema (label domain) stops such data at the ExampleValidator."""
    matches = tf.equal(tf.expand_dims(names, -1), tf.constant(list(class_names)))
    return tf.argmax(tf.cast(matches, tf.int64), axis=-1, output_type=tf.int64)


def make_preprocessing_fn(size: int):
    """A preprocessing_fn that resizes to size×size."""
    if size < 8:
        raise ValueError(f"image size must be at least 8 pixels, got {size}")

    def preprocessing_fn(inputs):
        outputs = {F.IMAGE_XF: decode_images(to_dense_1d(inputs[F.IMAGE_KEY], ""), size)}
        # Serving requests carry no label: TFT's transform layer then drops these two outputs.
        names = to_dense_1d(inputs[F.LABEL_KEY], "")
        outputs[F.LABEL_XF] = label_ids(names)
        outputs[F.LABEL_NAME_XF] = names
        return outputs

    preprocessing_fn.__name__ = f"preprocessing_fn_{size}"
    preprocessing_fn.__qualname__ = preprocessing_fn.__name__
    return preprocessing_fn


preprocessing_fn = make_preprocessing_fn(F.DEFAULT_IMAGE_SIZE)

_SIZED = re.compile(r"preprocessing_fn_(\d+)")


def __getattr__(name: str):
    """`preprocessing_fn_<N>` for any N, so a TaskConfig can name the image size in its dotted path."""
    match = _SIZED.fullmatch(name)
    if match:
        return make_preprocessing_fn(int(match.group(1)))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def preprocessing_fn_path(size: int) -> str:
    """Dotted path of the preprocessing_fn for size×size images (for TaskConfig.preprocessing_fn)."""
    return f"{__name__}.preprocessing_fn_{int(size)}"


def image_size_of(tf_transform_output) -> int:
    """The image size baked into a transform graph (from the transformed feature spec)."""
    shape = tf_transform_output.transformed_feature_spec()[F.IMAGE_XF].shape
    return int(shape[0])
