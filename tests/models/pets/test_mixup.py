"""Mixup and label smoothing for pets: mixed batches, and a loss/accuracy that take ids or probabilities."""
import numpy as np
import pytest
import tensorflow as tf

from models.pets import features as F
from models.pets.mixup import SoftTargetCrossentropy, accuracy_metric, mix_batches


def batches(seed=0, count=3, batch=8, size=4):
    rng = np.random.default_rng(seed)
    images = rng.random((count * batch, size, size, 3), dtype=np.float32)
    ids = rng.integers(0, 2, count * batch)
    return tf.data.Dataset.from_tensor_slices(({F.IMAGE_XF: images}, ids)).batch(batch)


def test_mixup_blends_each_photo_with_its_neighbour_and_its_label_alike():
    for (inputs, ids), (mixed, targets) in zip(batches(), mix_batches(batches(), 0.4, 2, seed=7)):
        images, ids = inputs[F.IMAGE_XF].numpy(), ids.numpy()
        targets = targets.numpy()
        one_hot = np.eye(2)[ids]
        np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
        # λ is the weight of the photo's own label; with a neighbour of the other class it is visible
        lam = np.where(ids == np.roll(ids, 1), 1.0, targets[np.arange(len(ids)), ids])
        differing = ids != np.roll(ids, 1)
        assert differing.any()
        assert (lam[differing] >= 0.5).all() and (lam[differing] < 1.0).all()
        expected = (lam[differing, None, None, None] * images[differing]
                    + (1 - lam[differing, None, None, None]) * np.roll(images, 1, axis=0)[differing])
        np.testing.assert_allclose(mixed[F.IMAGE_XF].numpy()[differing], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(targets[~differing], one_hot[~differing], atol=1e-6)


def test_mixup_is_repeatable_for_a_seed_and_differs_across_seeds():
    def images(seed):
        return np.concatenate([x[F.IMAGE_XF].numpy() for x, _ in mix_batches(batches(), 0.4, 2, seed=seed)])

    np.testing.assert_array_equal(images(1), images(1))
    assert not np.allclose(images(1), images(2))


def test_loss_takes_ids_or_probabilities_and_smooths_them():
    probabilities = tf.constant([[0.8, 0.2], [0.3, 0.7]])
    ids = tf.constant([0, 1])
    plain = SoftTargetCrossentropy(2)
    expected = -np.mean(np.log([0.8, 0.7]))
    assert float(plain(ids, probabilities)) == pytest.approx(expected, rel=1e-5)
    assert float(plain(tf.one_hot(ids, 2), probabilities)) == pytest.approx(expected, rel=1e-5)
    smoothed = SoftTargetCrossentropy(2, label_smoothing=0.2)  # targets 0.9 / 0.1
    expected_smoothed = -np.mean([0.9 * np.log(0.8) + 0.1 * np.log(0.2), 0.1 * np.log(0.3) + 0.9 * np.log(0.7)])
    assert float(smoothed(ids, probabilities)) == pytest.approx(expected_smoothed, rel=1e-5)


def test_accuracy_reads_the_most_probable_target_class():
    metric = accuracy_metric(2)
    metric.update_state(tf.constant([0, 1]), tf.constant([[0.8, 0.2], [0.6, 0.4]]))
    assert float(metric.result()) == pytest.approx(0.5)
    metric.reset_state()
    metric.update_state(tf.constant([[0.3, 0.7], [0.6, 0.4]]), tf.constant([[0.1, 0.9], [0.6, 0.4]]))
    assert float(metric.result()) == pytest.approx(1.0)
