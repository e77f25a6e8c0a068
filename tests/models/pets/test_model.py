"""pets Xception-lite backbone (models/pets/model.py), its serving variants and the tuner's search space
(the EfficientNet-Lite0 backbone: test_efficientnet_lite.py)."""
import numpy as np
import tensorflow as tf

from models.pets import features as F


def test_xception_lite_structure_and_output():
    import keras

    from models.pets.model import block_widths, build_model, inference_model

    assert block_widths(32, 3) == [32, 64, 128]
    assert block_widths(64, 5) == [64, 128, 256, 512, 512]
    model = build_model({"backbone": "xception_lite", "base_width": 16, "num_blocks": 3, "entry_width": 8}, image_size=32)
    core = inference_model(model)
    kinds = [type(layer).__name__ for layer in core.layers]
    assert kinds.count("SeparableConv2D") == 2 * 3 + 1
    projections = [layer for layer in core.layers if layer.name.endswith("_project")]
    assert len(projections) == 3 and all(p.kernel_size == (1, 1) and p.strides == (2, 2) for p in projections)
    assert kinds.count("MaxPooling2D") == 3 and "GlobalAveragePooling2D" in kinds
    x = np.random.default_rng(0).random((5, 32, 32, 3)).astype("float32")
    probs = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    assert probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_augmentation_only_when_training():
    import keras

    from models.pets.model import build_model

    model = build_model({"backbone": "xception_lite", "base_width": 16, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    augmentation = model.get_layer("augmentation")
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(x, training=False)), x)
    assert not np.allclose(keras.ops.convert_to_numpy(augmentation(x, training=True)), x)
    first = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    second = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    np.testing.assert_array_equal(first, second)


def _saved_and_loaded(network, tmp_path, size=32):
    """network (images dict -> probabilities) saved as a TF SavedModel with a `serve` function, reloaded
    (keep a reference to the result while calling it: its functions do not hold its variables)."""
    module = tf.Module()
    module.model = network
    module.serve = tf.function(lambda images: network({F.IMAGE_XF: images}, training=False),
                               input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    return tf.saved_model.load(str(tmp_path / "saved"))


def test_exported_network_has_no_augmentation_and_matches_inference(tmp_path):
    import keras

    from models.pets.model import build_model, inference_model

    model = build_model({"backbone": "xception_lite", "base_width": 16, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    core = inference_model(model)
    assert "augmentation" in [layer.name for layer in model.layers]
    assert "augmentation" not in [layer.name for layer in core.layers]
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(model({F.IMAGE_XF: x}, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(core({F.IMAGE_XF: x}, training=False)), expected)
    # It saves as a TF SavedModel (the random layers' seed state would not).
    loaded = _saved_and_loaded(core, tmp_path)
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, rtol=1e-5)


def test_translation_and_contrast_are_added_only_when_set():
    import keras

    from models.pets.model import build_model

    plain = build_model({"backbone": "xception_lite", "base_width": 8, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    names = [layer.name for layer in plain.get_layer("augmentation").layers]
    assert names == ["random_flip", "random_rotation", "random_zoom"]
    strong = build_model({"backbone": "xception_lite", "base_width": 8, "num_blocks": 2, "entry_width": 8, "translation": 0.1,
                          "contrast": 0.3}, image_size=32, seed=1)
    augmentation = strong.get_layer("augmentation")
    assert [layer.name for layer in augmentation.layers][-2:] == ["random_translation", "random_contrast"]
    x = np.random.default_rng(0).random((4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(x, training=False)), x)
    augmented = keras.ops.convert_to_numpy(augmentation(x, training=True))
    assert augmented.shape == x.shape and not np.allclose(augmented, x)


def test_flip_averaged_model_is_mirror_invariant_and_exports(tmp_path):
    import keras

    from models.pets.model import FlipAveraged, build_model, inference_model

    model = build_model({"backbone": "xception_lite", "base_width": 8, "num_blocks": 2, "entry_width": 8}, image_size=32, seed=1)
    network = inference_model(model)
    averaged = inference_model(model, flip_average=True)
    assert isinstance(averaged, FlipAveraged) and averaged.network is network
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    mirrored = x[:, :, ::-1, :].copy()

    def run(m, images):
        return keras.ops.convert_to_numpy(m({F.IMAGE_XF: images}, training=False))

    expected = 0.5 * (run(network, x) + run(network, mirrored))
    np.testing.assert_allclose(run(averaged, x), expected, rtol=1e-5, atol=1e-6)
    # Same answer for a photo and its mirror image; the plain network does not have that property.
    np.testing.assert_allclose(run(averaged, mirrored), run(averaged, x), rtol=1e-5, atol=1e-6)
    assert not np.allclose(run(network, mirrored), run(network, x))
    np.testing.assert_allclose(run(averaged, x).sum(axis=1), 1.0, rtol=1e-5)
    loaded = _saved_and_loaded(averaged, tmp_path)
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_every_tuner_choice_builds():
    import keras_tuner

    from models.pets import tuner

    for base in tuner.BASE_WIDTHS + (64,):
        for blocks in range(tuner.NUM_BLOCKS[0], tuner.NUM_BLOCKS[1] + 1):
            hp = keras_tuner.HyperParameters()
            hp.Fixed("base_width", base)
            hp.Fixed("num_blocks", blocks)
            values = tuner.search_space(hp, tuner.BASE_WIDTHS + (64,), "xception_lite")
            assert values["base_width"] == base and values["num_blocks"] == blocks
            from models.pets.model import build_model

            model = build_model({**values, "backbone": "xception_lite"}, image_size=32)
            assert model.output_shape == (None, 2)


def test_pretrained_backbone_searches_only_dropout_and_learning_rate():
    import keras_tuner

    from models.pets import tuner

    values = tuner.search_space(keras_tuner.HyperParameters(), backbone="efficientnet_lite0")
    assert sorted(values) == ["dropout", "learning_rate"]
