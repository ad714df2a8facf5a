"""Multi-label metrics from 0/1 matrices: micro- and macro-F1, subset accuracy, per label
precision / recall / F1 / support, and decision thresholds tuned on validation.

Three rules set the thresholds: each label at its own best F1 (`per_label`: good for rare
labels, but on many labels with few positives each it says yes too often and micro-F1 falls),
one threshold for every label at the best micro-F1 (`one`), and one per label chosen for
micro-F1 together (`micro`: coordinate ascent from `one`). `choose_thresholds` picks the rule
by a cross-check inside the validation split (tuned on one half, scored on the other, several
random halvings) and tunes it on the whole split. Labels with fewer than MIN_POSITIVES_TO_TUNE
positives never get a threshold of their own."""

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


THRESHOLD_RULES = ("per_label", "one", "micro")
RULE_WORDS = {"per_label": "each label at its own best F1",
              "one": "one threshold for every label, at the best micro-F1",
              "micro": "one per label, chosen together for the best micro-F1"}
RULE_CHECK_REPEATS = 3  # random halvings of the validation split for the rule's cross-check


def _counts(gold: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(labels, grid, 3): true positives, false positives and false negatives of each label at
    each threshold of THRESHOLD_GRID."""
    grid = np.asarray(THRESHOLD_GRID)
    out = np.zeros((gold.shape[1], len(grid), 3), dtype=np.int64)
    step = max(1, 2_000_000 // max(1, len(gold) * len(grid)))  # labels at a time: bounded memory
    for start in range(0, gold.shape[1], step):
        part = slice(start, start + step)
        pred = probs[:, part, None] >= grid[None, None, :]  # rows, labels, grid
        g = gold[:, part, None]
        out[part] = np.stack([(g & pred).sum(0), (~g & pred).sum(0), (g & ~pred).sum(0)], -1)
    return out


def _micro(totals: np.ndarray) -> float:
    tp, fp, fn = totals
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _rule(rule: str, gold: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Thresholds (one per label) by a rule, tuned on these rows."""
    grid = np.asarray(THRESHOLD_GRID)
    counts = _counts(gold, probs)  # labels, grid, 3
    tunable = gold.sum(0) >= MIN_POSITIVES_TO_TUNE
    if rule == "per_label":
        tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(1, 2 * tp + fp + fn), 0.0)
        rank = np.round(f1, 6) - 1e-9 * np.abs(grid - 0.5)[None, :]  # ties: nearest 0.5
        return np.where(tunable, grid[rank.argmax(1)], 0.5)
    # one threshold for all: the best micro-F1 (ties: nearest 0.5)
    scores = [_micro(counts[:, k].sum(0)) - 1e-9 * abs(grid[k] - 0.5) for k in range(len(grid))]
    one = int(np.argmax(scores))
    at = np.full(len(tunable), one)
    if rule == "micro":  # each tunable label in turn at its best, the others held (2 rounds);
        # a label with too few positives keeps the threshold of all
        for _ in range(2):
            for j in np.flatnonzero(tunable):
                rest = counts[np.arange(len(at)), at].sum(0) - counts[j, at[j]]
                gain = [_micro(rest + counts[j, k]) - 1e-9 * abs(k - at[j])
                        for k in range(len(grid))]
                at[j] = int(np.argmax(gain))
    return grid[at]


def choose_thresholds(gold: np.ndarray, probs: np.ndarray, labels: list[str],
                      seed: int = 0) -> tuple[dict, str, dict]:
    """The thresholds of the rule with the best micro-F1 on held-out halves of these rows
    (ties: per_label), tuned on all of them; the rule; each rule's cross-checked micro-F1."""
    gold = np.asarray(gold, dtype=bool).reshape(-1, len(labels))
    probs = np.asarray(probs, dtype=float).reshape(-1, len(labels))
    check = {rule: [] for rule in THRESHOLD_RULES}
    rng = np.random.default_rng(seed)
    if len(gold) >= 20:  # too few rows to halve: each label at its own best
        for _ in range(RULE_CHECK_REPEATS):
            order = rng.permutation(len(gold))
            halves = (order[: len(order) // 2], order[len(order) // 2:])
            for fit, score in (halves, halves[::-1]):
                for rule in THRESHOLD_RULES:
                    thr = _rule(rule, gold[fit], probs[fit])
                    pred = probs[score] >= thr
                    g = gold[score]
                    check[rule].append(_micro(np.array([(g & pred).sum(), (~g & pred).sum(),
                                                        (g & ~pred).sum()])))
    means = {rule: round(float(np.mean(v)), 4) for rule, v in check.items() if v}
    rule = max(means, key=lambda r: (means[r], r == "per_label")) if means else "per_label"
    thr = _rule(rule, gold, probs)
    return {n: float(t) for n, t in zip(labels, thr)}, rule, means


def tune_thresholds(gold: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    """Per label, the threshold of THRESHOLD_GRID with the best F1 (ties: the one nearest
    0.5); 0.5 for labels with fewer than MIN_POSITIVES_TO_TUNE positives."""
    gold = np.asarray(gold, dtype=bool).reshape(-1, len(labels))
    thr = _rule("per_label", gold, np.asarray(probs, dtype=float).reshape(-1, len(labels)))
    return {n: float(t) for n, t in zip(labels, thr)}
