"""The pets pipeline end to end on tiny synthetic images (red "cats", blue "dogs", one corrupt
file): image ExampleGen, curated schema, image Transform, Tuner, Trainer, TFMA, Pusher."""
import glob
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from models.pets import features as F
from components import evaluation
from pipelines import cli, nodes
from tests.records import latest_run
from tests.pets_images import serialized_examples, synthetic_image, write_pets, write_truncated_jpeg

pytestmark = pytest.mark.e2e

# The task's default config with tiny images (see pets_run) and a tiny training budget.
IMAGE_SIZE = 32
BUDGET = ["--max-trials", "1", "--tuner-steps", "12", "--train-steps", "90", "--eval-steps", "1"]


@pytest.fixture(scope="module")
def pets_data(tmp_path_factory):
    """60 synthetic JPEG/PNG images per class plus one corrupt JPEG, shared by this module's runs."""
    data_root = tmp_path_factory.mktemp("pets-e2e-data")
    write_pets(data_root / "pets", per_class=60, seed=7)
    write_truncated_jpeg(data_root / "pets" / "dog" / "dog.corrupt.jpg")
    return data_root


@pytest.fixture(scope="module")
def pets_run(tmp_path_factory, pets_data):
    """One `mlops run pets` on pets_data.

    The CLI has budget flags but no image size, so the task it loads (pipelines.tasks.pets.TASK) is
    swapped for the same config at 32×32 for the duration of the run.
    """
    from pipelines.tasks import pets as config

    data_root = pets_data
    home = str(tmp_path_factory.mktemp("pets-e2e") / "home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(config, "TASK", config.make_task(image_size=IMAGE_SIZE))
        status = cli.main(["run", "pets", "--home", home, "--data-root", str(data_root)] + BUDGET)
    return home, status


def test_pets_run_trains_evaluates_blesses_and_pushes(pets_run):
    home, status = pets_run
    assert status == 0
    record = latest_run(home, "mlops-pets")
    for node in (nodes.EXAMPLE_GEN, nodes.STATISTICS_GEN, nodes.SCHEMA_GEN, nodes.EXAMPLE_VALIDATOR,
                 nodes.TRANSFORM, nodes.TUNER, nodes.TRAINER, nodes.EVALUATOR, nodes.PUSHER):
        assert record.nodes[node].state == "complete", node
    assert record.nodes[nodes.EVALUATOR].output("blessing").get("blessed") == 1
    pushed = record.nodes[nodes.PUSHER].output("pushed_model")
    assert pushed.get("pushed") == 1
    assert pushed.get("pushed_destination").startswith(os.path.join(home, "serving", "pets"))


def test_corrupt_file_is_skipped_and_recorded_on_the_examples(pets_run):
    home, _ = pets_run
    examples = latest_run(home, "mlops-pets").nodes[nodes.EXAMPLE_GEN].output("examples")
    assert examples.get("skipped_count") == 1
    assert examples.get("skipped_files") == "dog/dog.corrupt.jpg"
    assert examples.get("image_count") == 120
    assert examples.get("dvc_data_md5") == "untracked"  # a data root outside the DVC checkout


def test_evaluation_is_sliced_by_class(pets_run):
    home, _ = pets_run
    uri = latest_run(home, "mlops-pets").nodes[nodes.EVALUATOR].output("evaluation").uri
    slices = {m.slice: m.candidate for m in evaluation.load_slice_metrics(uri)}
    assert {"Overall", "label_name=cat", "label_name=dog"} <= set(slices)
    overall = slices["Overall"]
    for metric in ("binary_accuracy", "auc", "precision", "recall", "specificity", "negative_predictive_value"):
        assert metric in overall, metric
    assert overall["binary_accuracy"] >= 0.7


def test_trainer_logs_training_throughput(pets_run):
    home, _ = pets_run
    model_run = latest_run(home, "mlops-pets").nodes[nodes.TRAINER].output("model_run")
    result = json.loads(open(os.path.join(model_run.uri, "throughput.json")).read())
    assert result["images_per_second"] > 0 and result["batch_size"] == 32


def test_pushed_model_scores_raw_jpeg_and_png_examples(pets_run):
    home, _ = pets_run
    versions = sorted(glob.glob(os.path.join(home, "serving", "pets", "*")))
    assert versions, "nothing was pushed"
    model = tf.saved_model.load(versions[-1])
    assert set(model.signatures) >= {"serving_default", "transform_features"}
    rng = np.random.default_rng(123)
    labels = ["cat", "dog"] * 10
    images = [synthetic_image(label, rng) for label in labels]
    truth = np.array([F.CLASS_NAMES.index(label) for label in labels])
    for fmt in ("jpg", "png"):
        # Only `image` is sent: no label, no file name.
        request = tf.constant(serialized_examples(images, fmt))
        probs = model.signatures["serving_default"](examples=request)["probabilities"].numpy()
        assert probs.shape == (20, 2) and probs.dtype == np.float32
        assert np.all((probs >= 0) & (probs <= 1))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        # Red vs blue is learnable in a few steps: columns follow CLASS_NAMES (cat, dog).
        assert (probs.argmax(axis=1) == truth).mean() >= 0.8, fmt
    transformed = model.signatures["transform_features"](
        examples=tf.constant(serialized_examples(images[:4], "jpg", with_label=labels[:4]))
    )
    assert transformed[F.LABEL_XF].numpy().ravel().tolist() == [0, 1, 0, 1]
    assert transformed[F.IMAGE_XF].shape[1:] == (IMAGE_SIZE, IMAGE_SIZE, 3)


# ---- `--profile xception-lite`: the from-scratch network, its width/depth search, the same pipeline


@pytest.fixture(scope="module")
def xception_run(tmp_path_factory, pets_data):
    """`mlops run pets --profile xception-lite` on pets_data in its own home, the profile swapped
    for the same config at 32×32 and run on the tiny budget above."""
    from pipelines.tasks import pets as config

    home = str(tmp_path_factory.mktemp("pets-e2e-xception") / "home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(config.PROFILES, "xception-lite", config.make_xception_lite_task(image_size=IMAGE_SIZE))
        status = cli.main(["run", "pets", "--profile", "xception-lite", "--home", home,
                           "--data-root", str(pets_data)] + BUDGET)
    return home, status


def test_xception_lite_profile_searches_width_and_depth_trains_from_scratch_and_pushes(xception_run):
    home, status = xception_run
    assert status == 0
    record = latest_run(home, "mlops-pets")
    assert record.nodes[nodes.EVALUATOR].output("blessing").get("blessed") == 1
    assert record.nodes[nodes.PUSHER].output("pushed_model").get("pushed") == 1
    best = record.nodes[nodes.TUNER].output("best_hyperparameters").uri
    searched = json.loads(open(glob.glob(os.path.join(best, "*"))[0]).read())["values"]
    assert {"base_width", "num_blocks", "dropout", "learning_rate"} <= set(searched)
    model_run = record.nodes[nodes.TRAINER].output("model_run").uri
    hparams = json.loads(open(os.path.join(model_run, "training_info.json")).read())["hparams"]
    assert hparams["backbone"] == "xception_lite"
    assert (hparams["base_width"], hparams["num_blocks"]) == (searched["base_width"], searched["num_blocks"])


def test_xception_lite_pushed_model_is_the_from_scratch_network_and_scores_raw_images(xception_run):
    home, _ = xception_run
    version = sorted(glob.glob(os.path.join(home, "serving", "pets", "*")))[-1]
    model = tf.saved_model.load(version)
    # Far fewer weights than EfficientNet-Lite0's 3.4 M frozen features.
    saved = tf.train.list_variables(os.path.join(version, "variables", "variables"))
    assert 0 < sum(int(np.prod(shape)) for _, shape in saved) < 1_000_000
    rng = np.random.default_rng(321)
    labels = ["cat", "dog"] * 10
    request = tf.constant(serialized_examples([synthetic_image(label, rng) for label in labels], "jpg"))
    probs = model.signatures["serving_default"](examples=request)["probabilities"].numpy()
    assert probs.shape == (20, 2)
    truth = np.array([F.CLASS_NAMES.index(label) for label in labels])
    assert (probs.argmax(axis=1) == truth).mean() >= 0.8
