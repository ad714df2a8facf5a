"""Honest probabilities: one temperature fitted on the validation split after training.

A fine-tuned encoder is often over-confident (its validation loss rises while its accuracy
holds); dividing its logits by a temperature T > 1 before the softmax fixes much of that
without changing a single prediction (the argmax stays). T is fitted by minimising the
negative log-likelihood on the validation split; the expected calibration error (ECE: the gap
between confidence and accuracy, averaged over 15 confidence bins) is reported before and after
on the held-out test split, where nothing was fitted. Units: examples (classification), words'
first tokens (NER), answer start and end positions (QA). numpy only.
"""

from __future__ import annotations

import math

import numpy as np

BINS = 15
T_RANGE = (0.25, 20.0)


def _log_softmax(logits: np.ndarray, t: float) -> np.ndarray:
    z = logits / t
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def nll(logits: np.ndarray, gold: np.ndarray, t: float) -> float:
    return float(-_log_softmax(logits, t)[np.arange(len(gold)), gold].mean())


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The T in T_RANGE with the lowest NLL (golden-section search on log T, which is convex
    enough for this one-parameter problem); 1.0 when there is nothing to fit."""
    if len(gold) < 2:
        return 1.0
    logits = logits.astype("float64")
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    phi = (math.sqrt(5) - 1) / 2
    a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
    fa, fb = nll(logits, gold, math.exp(a)), nll(logits, gold, math.exp(b))
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - phi * (hi - lo)
            fa = nll(logits, gold, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + phi * (hi - lo)
            fb = nll(logits, gold, math.exp(b))
    return round(math.exp((lo + hi) / 2), 4)


def reliability(logits: np.ndarray, gold: np.ndarray, t: float = 1.0,
                bins: int = BINS) -> tuple[float, list[dict]]:
    """(ECE, bins): per confidence bin its mean confidence, accuracy and count."""
    if not len(gold):
        return 0.0, []
    probs = np.exp(_log_softmax(logits.astype("float64"), t))
    conf = probs.max(-1)
    right = probs.argmax(-1) == gold
    edges = np.linspace(0, 1, bins + 1)
    out, ece = [], 0.0
    for i in range(bins):
        mask = (conf > edges[i]) & (conf <= edges[i + 1]) if i else (conf <= edges[1])
        n = int(mask.sum())
        if not n:
            continue
        c, a = float(conf[mask].mean()), float(right[mask].mean())
        ece += n / len(gold) * abs(c - a)
        out.append({"confidence": round(c, 4), "accuracy": round(a, 4), "count": n})
    return round(ece, 4), out


def calibrate(val_pairs: tuple[np.ndarray, np.ndarray] | None,
              test_pairs: tuple[np.ndarray, np.ndarray] | None, units: str) -> dict | None:
    """Fit T on validation; ECE before and after on test (on validation when no test)."""
    if val_pairs is None or len(val_pairs[1]) < 2:
        return None
    t = fit_temperature(*val_pairs)
    if (val_pairs[0].argmax(-1) == val_pairs[1]).all():
        # no validation error to calibrate against: the NLL only falls by sharpening, which
        # would claim certainty nothing measured; soften if needed, never sharpen
        t = max(t, 1.0)
    split, pairs = ("test", test_pairs) if test_pairs is not None and len(test_pairs[1]) else \
        ("validation", val_pairs)
    before, bins_before = reliability(*pairs, 1.0)
    after, bins_after = reliability(*pairs, t)
    return {"temperature": t, "ece_before": before, "ece_after": after, "split": split,
            "units": units, "n": int(len(pairs[1])), "bins_before": bins_before,
            "bins_after": bins_after,
            "nll_before": round(nll(*pairs, 1.0), 4), "nll_after": round(nll(*pairs, t), 4)}


def scale_outputs(outputs: list, t: float) -> list:
    """Model outputs (arrays, or tuples of arrays for QA) with the logits divided by T."""
    if not t or t == 1.0:
        return outputs
    return [tuple(o / t for o in out) if isinstance(out, tuple) else out / t
            for out in outputs]


def pairs_for(spec):
    """The task's (pairs function, units): its module's optional `calibration_pairs` hook and
    `TaskSpec.calibration_units`; (None, None) for tasks without a temperature."""
    hook = getattr(spec.impl(), "calibration_pairs", None)
    if hook is None or spec.calibration_units is None:
        return None, None
    return hook, spec.calibration_units
