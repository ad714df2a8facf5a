"""Regression metrics: MAE, RMSE, Pearson, Spearman and R² of predictions against targets."""

from __future__ import annotations

import numpy as np


def regression_metrics(gold, pred) -> dict:
    gold = np.asarray(gold, dtype="float64")
    pred = np.asarray(pred, dtype="float64")
    n = len(gold)
    if n == 0:
        return {"mae": None, "rmse": None, "pearson": 0.0, "spearman": 0.0, "r2": 0.0, "n": 0}
    from scipy.stats import pearsonr, spearmanr

    err = pred - gold
    # a constant answer has no correlation (np.std of equal floats can be 1e-16, not 0)
    flat = np.ptp(gold) == 0 or np.ptp(pred) == 0
    pearson = 0.0 if flat or n < 2 else float(pearsonr(gold, pred)[0])
    spearman = 0.0 if flat or n < 2 else float(spearmanr(gold, pred)[0])
    total = float(((gold - gold.mean()) ** 2).sum())
    r2 = 1.0 - float((err ** 2).sum()) / total if total else 0.0
    return {
        "mae": round(float(np.abs(err).mean()), 4),
        "rmse": round(float(np.sqrt((err ** 2).mean())), 4),
        "pearson": round(pearson, 4),
        "spearman": round(spearman, 4),
        "r2": round(r2, 4),
        "n": n,
    }
