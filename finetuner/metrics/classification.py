"""Classification metrics: accuracy, macro/weighted F1, per-class scores, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(gold: Sequence[int], pred: Sequence[int], labels: list[str]) -> dict:
    ids = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(
        gold, pred, labels=ids, average=None, zero_division=0
    )
    _, _, macro, _ = precision_recall_fscore_support(
        gold, pred, labels=ids, average="macro", zero_division=0
    )
    _, _, weighted, _ = precision_recall_fscore_support(
        gold, pred, labels=ids, average="weighted", zero_division=0
    )
    per_class = {
        name: {
            "precision": round(float(p[i]), 4),
            "recall": round(float(r[i]), 4),
            "f1": round(float(f[i]), 4),
            "support": int(s[i]),
        }
        for i, name in enumerate(labels)
    }
    n = len(gold)
    predicted_share = {name: round(sum(1 for x in pred if x == i) / n, 4) if n else 0.0
                       for i, name in enumerate(labels)}
    return {
        "accuracy": round(float(accuracy_score(gold, pred)), 4) if n else 0.0,
        "macro_f1": round(float(macro), 4),
        "weighted_f1": round(float(weighted), 4),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(gold, pred, labels=ids).tolist(),
        "labels": list(labels),
        "predicted_share": predicted_share,
        "n": n,
    }
