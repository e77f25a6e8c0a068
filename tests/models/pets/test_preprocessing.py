"""pets preprocessing (models/pets/preprocessing.py): decoding, resizing, labels, sized names."""
import numpy as np
import pytest
import tensorflow as tf

from models.pets import features as F
from models.pets import preprocessing as P
from tests.pets_images import encode, synthetic_image


def test_decode_resizes_jpeg_png_grey_and_rgba_to_unit_range():
    rng = np.random.default_rng(1)
    red = synthetic_image("cat", rng, size=48)
    grey = tf.io.encode_png(np.full((30, 50, 1), 128, np.uint8)).numpy()
    rgba = tf.io.encode_png(np.dstack([red, np.full(red.shape[:2], 255, np.uint8)])).numpy()
    images = P.decode_images(tf.constant([encode(red, "jpg"), encode(red, "png"), grey, rgba]), 24).numpy()
    assert images.shape == (4, 24, 24, 3) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert images[0, ..., 0].mean() > images[0, ..., 2].mean() + 0.3  # still mostly red
    np.testing.assert_allclose(images[2], 128 / 255, atol=1e-3)
    np.testing.assert_allclose(images[1], images[3], atol=1e-5)  # alpha channel dropped


def test_preprocessing_fn_outputs_image_label_id_and_name():
    rng = np.random.default_rng(2)
    images = [encode(synthetic_image(c, rng), "jpg") for c in ("cat", "dog", "dog")]
    inputs = {
        F.IMAGE_KEY: tf.constant([[b] for b in images]),
        F.LABEL_KEY: tf.constant([[b"cat"], [b"dog"], [b"dog"]]),
        F.FILENAME_KEY: tf.constant([[b"a"], [b"b"], [b"c"]]),
    }
    out = P.preprocessing_fn_32(inputs)
    assert set(out) == {F.IMAGE_XF, F.LABEL_XF, F.LABEL_NAME_XF}
    assert out[F.IMAGE_XF].shape == (3, 32, 32, 3)
    assert out[F.LABEL_XF].numpy().tolist() == [0, 1, 1]
    assert out[F.LABEL_NAME_XF].numpy().tolist() == [b"cat", b"dog", b"dog"]
    assert P.preprocessing_fn(inputs)[F.IMAGE_XF].shape[1] == F.DEFAULT_IMAGE_SIZE


def test_preprocessing_fn_is_named_by_image_size():
    from pipelines.config import import_object

    path = P.preprocessing_fn_path(160)
    assert path == "models.pets.preprocessing.preprocessing_fn_160"
    assert import_object(path).__name__ == "preprocessing_fn_160"
    with pytest.raises(AttributeError):
        P.preprocessing_fn_big  # noqa: B018
    with pytest.raises(ValueError):
        P.make_preprocessing_fn(4)
