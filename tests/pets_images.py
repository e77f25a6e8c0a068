"""Tiny synthetic pets data for tests: two visually separable classes ("cat" mostly red, "dog"
mostly blue) as small JPEG and PNG files in class sub-folders, plus helpers for bad files."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# Dominant colour (RGB) per class.
CLASS_COLOURS = {"cat": (200, 40, 40), "dog": (40, 60, 200)}


def synthetic_image(label: str, rng: np.random.Generator, size: int = 40) -> np.ndarray:
    """uint8 [h, w, 3]: the class colour with noise and a random grey rectangle (h, w vary)."""
    h, w = int(rng.integers(size - 8, size + 9)), int(rng.integers(size - 8, size + 9))
    base = np.array(CLASS_COLOURS[label], dtype=np.float32)
    image = base + rng.normal(0, 25, size=(h, w, 3))
    y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    image[y0:y0 + h // 3, x0:x0 + w // 3] = rng.integers(60, 200)
    return np.clip(image, 0, 255).astype(np.uint8)


def encode(image: np.ndarray, fmt: str) -> bytes:
    import tensorflow as tf

    encoder = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    return encoder(image).numpy()


def write_pets(root: Path, per_class: int = 60, seed: int = 0, size: int = 40) -> Path:
    """root/{cat,dog}/<class>.<i>.{jpg,png} (alternating formats); returns root."""
    rng = np.random.default_rng(seed)
    for label in CLASS_COLOURS:
        folder = Path(root) / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            fmt = "png" if i % 3 == 0 else "jpg"
            (folder / f"{label}.{i}.{fmt}").write_bytes(encode(synthetic_image(label, rng, size), fmt))
    return Path(root)


def write_truncated_jpeg(path: Path, seed: int = 1) -> Path:
    """A JPEG cut in half: right magic bytes, does not decode."""
    data = encode(synthetic_image("cat", np.random.default_rng(seed)), "jpg")
    path.write_bytes(data[: len(data) // 2])
    return path


def serialized_examples(images, fmt: str = "jpg", with_label=None) -> list:
    """Serialized tf.Examples with only `image`, as a client sends them; with labels, also `label`
    and `filename` (every raw feature, as ExampleGen writes them)."""
    import tensorflow as tf

    out = []
    for i, image in enumerate(images):
        feature = {"image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[encode(image, fmt)]))}
        if with_label is not None:
            name = f"{with_label[i]}/{with_label[i]}.{i}.{fmt}"
            feature["label"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[with_label[i].encode()]))
            feature["filename"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()]))
        out.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    return out
