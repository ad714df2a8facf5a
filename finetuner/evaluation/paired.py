"""A paired test of two runs on the same validation rows: is one really better?

Each finished run keeps, per validation row, what its primary metric is made of
(`validation_record.json`, written by `finishing` from the kept checkpoint). A task builds the
record with its `paired_record` hook in one of four kinds, and this module scores it:

- "confusion": gold and predicted class per row, scored as macro-F1 over the classes present;
- "counts": true positives, false positives and false negatives per row, scored as micro-F1
  (multi-label labels, named entities);
- "mean": one score per row, scored as their mean (SQuAD F1 of each question);
- "pearson": gold and predicted number per row, scored as the Pearson correlation.

`compare` asks `paired_test(a, b)`: a paired bootstrap (both runs resampled on the same rows,
so what the rows share cancels out) of the difference of their primary metrics, with its
two-sided p-value and 95% interval. Imports numpy only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FILE = "validation_record.json"
KINDS = ("confusion", "counts", "mean", "pearson")
RESAMPLES = 2000


def write(root: Path, record: dict | None, fingerprint: str | None) -> None:
    if record is None:
        return
    assert record.get("kind") in KINDS, record.get("kind")
    (Path(root) / FILE).write_text(json.dumps({**record, "fingerprint": fingerprint}))


def read(root: str | Path) -> dict | None:
    try:
        record = json.loads((Path(root) / FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("kind") in KINDS else None


def _f1(tp, fp, fn):
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def scores(record: dict, weights: np.ndarray) -> np.ndarray:
    """The primary metric under each row of `weights` (resamples x rows, counts per row)."""
    kind = record["kind"]
    w = weights.astype(float)
    if kind == "mean":
        values = np.asarray(record["values"], dtype=float)
        return (w @ values) / np.maximum(w.sum(1), 1)
    if kind == "counts":
        tp, fp, fn = (w @ np.asarray(record[k], dtype=float) for k in ("tp", "fp", "fn"))
        return _f1(tp, fp, fn)
    if kind == "pearson":
        y, p = (np.asarray(record[k], dtype=float) for k in ("gold", "pred"))
        n = np.maximum(w.sum(1), 1)
        my, mp = (w @ y) / n, (w @ p) / n
        cov = (w @ (y * p)) / n - my * mp
        vy = np.maximum((w @ (y * y)) / n - my * my, 0)
        vp = np.maximum((w @ (p * p)) / n - mp * mp, 0)
        den = np.sqrt(vy * vp)
        return np.divide(cov, den, out=np.zeros_like(cov), where=den > 0)
    gold, pred = (np.asarray(record[k], dtype=int) for k in ("gold", "pred"))
    k = int(record["classes"])
    onehot_g, onehot_p = np.eye(k)[gold], np.eye(k)[pred]
    tp = w @ (onehot_g * onehot_p)
    n_gold, n_pred = w @ onehot_g, w @ onehot_p
    f1 = _f1(tp, n_pred - tp, n_gold - tp)
    present = (n_gold + n_pred) > 0  # scikit-learn's macro: classes in gold or predictions
    return (f1 * present).sum(1) / np.maximum(present.sum(1), 1)


def paired_test(a: dict, b: dict, resamples: int = RESAMPLES, seed: int = 0) -> dict | None:
    """a minus b on the same rows: {"difference", "low", "high", "p", "rows"}; None when the
    records are not of the same rows (other splits, other kinds)."""
    if a.get("kind") != b.get("kind") or a.get("fingerprint") != b.get("fingerprint"):
        return None
    n = _rows(a)
    if n != _rows(b) or n < 2:
        return None
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
    diff = scores(a, weights) - scores(b, weights)
    observed = float(scores(a, np.ones((1, n)))[0] - scores(b, np.ones((1, n)))[0])
    # two-sided: how often the resampled difference falls on the other side of zero
    p = min(1.0, 2 * min(float((diff <= 0).mean()), float((diff >= 0).mean())))
    low, high = np.percentile(diff, [2.5, 97.5])
    return {"difference": observed, "low": float(low), "high": float(high), "p": p, "rows": n}


def _rows(record: dict) -> int:
    key = {"mean": "values", "counts": "tp"}.get(record["kind"], "gold")
    return len(record.get(key) or [])
