"""The pets declaration: profiles, eval config and curated schema."""
from __future__ import annotations

from models.pets import features as F


def test_pets_task_is_registered_with_profiles():
    from pipelines.config import import_object
    from pipelines.tasks import load_task
    from pipelines.tasks import pets as config

    task = load_task("pets")
    assert task is config.TASK and task.example_gen == "components.image_example_gen.image_example_gen"
    assert callable(import_object(task.preprocessing_fn)) and task.schema_file
    assert set(config.PROFILES) >= {"default", "gpu"}
    gpu = config.PROFILES["gpu"]
    assert gpu.preprocessing_fn.endswith("_192") and task.preprocessing_fn.endswith(f"_{F.DEFAULT_IMAGE_SIZE}")
    assert gpu.tuner_max_trials > task.tuner_max_trials
    assert gpu.resources["Trainer"].gpu == 1
    assert gpu.custom_config["checkpoints"] == task.custom_config["checkpoints"]  # merged, not replaced


def test_xception_lite_profile_trains_from_scratch_and_searches_width_and_depth():
    import keras_tuner

    from models.pets.tuner import search_space
    from pipelines.tasks import load_task
    from pipelines.tasks import pets as config

    task = load_task("pets", "xception-lite")
    assert task is config.PROFILES["xception-lite"]
    assert task.custom_config["hparams"]["backbone"] == "xception_lite"
    assert task.custom_config["checkpoints"] == config.TASK.custom_config["checkpoints"]  # merged, not replaced
    assert task.preprocessing_fn == config.TASK.preprocessing_fn and task.tuner_fn == config.TASK.tuner_fn
    assert task.train_steps > config.TASK.train_steps and task.tuner_max_trials >= 4
    assert "from scratch" in task.intended_use and "EfficientNet" not in task.intended_use
    space = search_space(keras_tuner.HyperParameters(), task.custom_config["tuner_base_widths"], "xception_lite")
    assert {"base_width", "num_blocks", "dropout", "learning_rate"} <= set(space)
    assert config.make_xception_lite_task(image_size=32).preprocessing_fn.endswith("_32")


def test_pets_eval_config_metrics_exist_in_tfma():
    import tensorflow_model_analysis as tfma

    from pipelines.tasks.pets import TASK
    from pipelines.factory import build_eval_config

    for name in TASK.eval.metrics:
        assert hasattr(tfma.metrics, name), name
    config = build_eval_config(TASK)
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], [F.LABEL_NAME_XF]]


def test_curated_schema_has_no_domain_on_image_and_knows_the_classes():
    import tensorflow_data_validation as tfdv

    from pipelines.factory import resolve_package_file
    from pipelines.tasks.pets import TASK

    schema = tfdv.load_schema_text(resolve_package_file(TASK.schema_file))
    features = {f.name: f for f in schema.feature}
    assert set(features) == {"image", "label", "filename"}
    assert not features["image"].HasField("domain")
    assert list(tfdv.get_domain(schema, "label").value) == list(F.CLASS_NAMES)
