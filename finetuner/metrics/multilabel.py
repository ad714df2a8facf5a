"""Multi-label metrics from 0/1 matrices: micro- and macro-F1, subset accuracy, per label
precision / recall / F1 / support, and thresholds tuned per label."""

from __future__ import annotations

import numpy as np

THRESHOLD_GRID = tuple(round(x, 2) for x in np.arange(0.05, 0.951, 0.05))
MIN_POSITIVES_TO_TUNE = 5  # fewer positives in validation: keep 0.5 (a tuned value is noise)


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def multilabel_metrics(gold: np.ndarray, pred: np.ndarray, labels: list[str]) -> dict:
    """gold and pred are (examples, labels) 0/1 arrays. Macro-F1 averages the labels that
    occur in the gold answers or the predictions of this split (a label absent from both has
    nothing to score)."""
    gold = np.asarray(gold, dtype=bool).reshape(-1, len(labels))
    pred = np.asarray(pred, dtype=bool).reshape(-1, len(labels))
    tp = (gold & pred).sum(0).astype(float)
    fp = (~gold & pred).sum(0).astype(float)
    fn = (gold & ~pred).sum(0).astype(float)
    per_label, macro = {}, []
    for j, name in enumerate(labels):
        p, r, f = _prf(tp[j], fp[j], fn[j])
        support = int(gold[:, j].sum())
        per_label[name] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
                           "support": support, "predicted": int(pred[:, j].sum())}
        if support or pred[:, j].any():
            macro.append(f)
    _, _, micro = _prf(tp.sum(), fp.sum(), fn.sum())
    n = len(gold)
    return {
        "micro_f1": round(micro, 4),
        "macro_f1": round(float(np.mean(macro)) if macro else 0.0, 4),
        "subset_accuracy": round(float((gold == pred).all(1).mean()) if n else 0.0, 4),
        "none_predicted_share": round(float((~pred.any(1)).mean()) if n else 0.0, 4),
        "per_label": per_label,
        "labels": list(labels),
        "n": n,
    }


def tune_thresholds(gold: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Per label, the threshold of THRESHOLD_GRID with the best F1 (ties: the one nearest
    0.5); 0.5 for labels with fewer than MIN_POSITIVES_TO_TUNE positives."""
    gold = np.asarray(gold, dtype=bool).reshape(-1, len(labels))
    out = {}
    for j, name in enumerate(labels):
        if gold[:, j].sum() < MIN_POSITIVES_TO_TUNE:
            out[name] = 0.5
            continue
        best = None
        for t in THRESHOLD_GRID:
            pred = probs[:, j] >= t
            _, _, f = _prf((gold[:, j] & pred).sum(), (~gold[:, j] & pred).sum(),
                           (gold[:, j] & ~pred).sum())
            rank = (round(f, 6), -abs(t - 0.5))
            if best is None or rank > best[0]:
                best = (rank, t)
        out[name] = float(best[1])
    return out
