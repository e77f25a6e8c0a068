"""census task declaration: profile "semi" (the semi-supervised code itself is tested in
tests/models/census/test_semi.py)."""
import pytest

from models.census import features as F
from pipelines.tasks import load_task


def test_profiles_leave_the_census_default_alone():
    default, semi_task = load_task("census"), load_task("census", "semi")
    assert default.tuner_fn and "pretrain" not in default.custom_config
    assert semi_task.tuner_fn is None
    assert semi_task.custom_config["pretrain"]["mask_rate"] == 0.15
    assert semi_task.custom_config["hparams"] == {"learning_rate": 3e-4, "numeric_embedding": "none"}


def test_census_schema_sets_a_drift_threshold_on_every_numeric_model_feature():
    import tensorflow_data_validation as tfdv

    from tests.conftest import REPO

    schema = tfdv.load_schema_text(str(REPO / "models" / "census" / "schema.pbtxt"))
    thresholds = {f.name: f.drift_comparator.jensen_shannon_divergence.threshold
                  for f in schema.feature if f.HasField("drift_comparator")}
    assert thresholds == {name: pytest.approx(0.1) for name in F.NUMERIC_FEATURES}
