"""heart model: one-hot categoricals + numbers -> softmax (no pipeline run; see test_e2e_heart.py)."""
import numpy as np

from models.heart import features as F


def test_model_one_hot_encodes_categoricals_and_outputs_probabilities():
    from models.heart.model import build_model

    sizes = {name: 3 + i for i, name in enumerate(F.MODEL_CATEGORICAL)}
    model = build_model(sizes)
    rng = np.random.default_rng(0)
    batch = {n: rng.integers(0, s, size=5).astype("int64") for n, s in sizes.items()}
    batch.update({n: rng.normal(size=5).astype("float32") for n in F.MODEL_NUMERIC})
    probs = model(batch, training=False).numpy()
    assert probs.shape == (5, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    widths = {layer.name: layer.output.shape[-1] for layer in model.layers if layer.name.endswith("_one_hot")}
    assert widths == {f"{n}_one_hot": s for n, s in sizes.items()}
