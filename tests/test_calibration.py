"""Temperature scaling: fitted on validation, measured where nothing was fitted."""

from __future__ import annotations

import numpy as np

from finetuner.evaluation.calibration import (
    calibrate,
    fit_temperature,
    reliability,
    scale_outputs,
)
from finetuner.tasks.ner import calibration_pairs as token_pairs
from finetuner.tasks.qa import calibration_pairs as span_pairs


def overconfident(n: int, seed: int, accuracy: float = 0.7, sharpness: float = 6.0):
    """Logits whose argmax is right `accuracy` of the time but that claim ~99% confidence."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < accuracy, gold, (gold + 1) % 3)
    logits = rng.normal(0, 0.3, (n, 3))
    logits[np.arange(n), pred] += 1.0
    return logits * sharpness, gold


def test_an_overconfident_model_gets_a_temperature_above_one_and_a_lower_error():
    val, test = overconfident(600, 0), overconfident(600, 1)
    t = fit_temperature(*val)
    assert t > 2.0
    result = calibrate(val, test, "examples")
    assert result["split"] == "test" and result["n"] == 600
    assert result["ece_before"] > 0.2 and result["ece_after"] < result["ece_before"] / 3
    assert result["nll_after"] < result["nll_before"]
    # the argmax does not move
    assert (np.argmax(test[0] / t, -1) == np.argmax(test[0], -1)).all()


def test_a_calibrated_model_keeps_a_temperature_near_one():
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1.5, (4000, 4))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    gold = np.array([rng.choice(4, p=p) for p in probs])
    assert 0.85 < fit_temperature(logits, gold) < 1.15
    ece, bins = reliability(logits, gold)
    assert ece < 0.05 and sum(b["count"] for b in bins) == 4000


def test_pairs_and_scaling_for_tokens_and_spans():
    out = [np.ones((4, 3)), np.zeros((2, 3))]
    feats = [{"labels": [-100, 1, 2, -100]}, {"labels": [0, -100]}]
    logits, gold = token_pairs(out, feats)
    assert logits.shape == (3, 3) and gold.tolist() == [1, 2, 0]
    spans = [(np.arange(5.0), np.arange(5.0)[::-1].copy())]
    logits, gold = span_pairs(spans, [{"input_ids": [1] * 4, "start_positions": 2,
                                       "end_positions": 3}])
    assert logits.shape == (2, 4) and gold.tolist() == [2, 3]
    scaled = scale_outputs(spans, 2.0)
    assert isinstance(scaled[0], tuple) and scaled[0][0][4] == 2.0
    assert scale_outputs(out, 1.0) is out


def test_a_perfect_validation_split_never_sharpens_the_probabilities():
    logits = np.array([[2.0, -2.0], [-1.5, 1.5], [3.0, 0.0]] * 20)
    gold = np.array([0, 1, 0] * 20)
    result = calibrate((logits, gold), (logits, gold), "examples")
    assert result["temperature"] >= 1.0  # the NLL alone would push T to its floor


def test_a_reliability_plot_is_drawn_only_where_it_means_something():
    from finetuner.ui.render_results import calibration_html

    def results(n, counts):
        bins = [{"confidence": 0.55 + 0.1 * i, "accuracy": 0.5 + 0.1 * i, "count": c}
                for i, c in enumerate(counts)]
        return {"calibration": {"temperature": 1.3, "split": "test", "n": n,
                                "units": "examples", "ece_before": 0.08, "ece_after": 0.03,
                                "bins_before": bins, "bins_after": bins}}
    small = calibration_html(results(99, [40, 30, 20, 9]))
    assert "No reliability plot: on 99 examples" in small and "<svg" not in small
    large = calibration_html(results(800, [400, 300, 95, 5]))
    assert "<svg" in large
    assert "Each point is a bin of 95 to 400 answers; bins of fewer than 10 are left out" in \
        large
    # before and calibrated (the 5-answer bin left out), and the diagonal's two ends
    assert large.count("<circle") == 2 * 3 + 2
