"""sts correlation metrics, plain and as TFMA metrics (models/sts/metrics.py)."""
import numpy as np
import pytest


def test_correlations_match_scipy_including_ties():
    from scipy import stats

    from models.sts.metrics import pearson, spearman

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=50).astype(float)  # many ties, like STS gold scores
    predictions = labels + rng.normal(scale=2.0, size=50)
    assert pearson(labels, predictions) == pytest.approx(stats.pearsonr(labels, predictions)[0])
    assert spearman(labels, predictions) == pytest.approx(stats.spearmanr(labels, predictions)[0])
    assert np.isnan(pearson(np.ones(5), predictions[:5])) and np.isnan(spearman(labels[:1], predictions[:1]))


def test_tfma_metrics_combine_pairs_across_accumulators():
    from tensorflow_model_analysis.metrics import metric_types

    from models.sts.metrics import PearsonCorrelation, SpearmanCorrelation, pearson, spearman

    labels = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    predictions = np.array([0.1, 0.0, 0.5, 0.4, 0.9, 0.7])
    for metric, expected in ((SpearmanCorrelation(), spearman), (PearsonCorrelation(), pearson)):
        (computation,) = metric.computations(example_weighted=False)
        combiner = computation.combiner
        halves = []
        for part in (slice(0, 3), slice(3, 6)):
            acc = combiner.create_accumulator()
            for label, prediction in zip(labels[part], predictions[part]):
                inputs = metric_types.StandardMetricInputs(
                    labels=np.array([label]), predictions=np.array([prediction]), example_weights=np.array([1.0])
                )
                acc = combiner.add_input(acc, inputs)
            halves.append(acc)
        (key, value), = combiner.extract_output(combiner.merge_accumulators(halves)).items()
        assert key.name == metric.name
        assert value == pytest.approx(expected(labels, predictions))
