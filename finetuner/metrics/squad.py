"""SQuAD scoring: answer normalisation, exact match and token F1 (max over the gold answers).

The rules of the official SQuAD evaluation script: lowercase, strip punctuation and the
articles a/an/the, collapse whitespace. A question without gold answers (SQuAD 2 style
"unanswerable") counts as right only when the prediction is empty. Scores are on a 0-1 scale.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lowercase, drop punctuation and articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer."""
    if not golds:
        return float(normalize_answer(prediction) == "")
    pred = normalize_answer(prediction)
    return max(float(pred == normalize_answer(g)) for g in golds)


def _token_f1(prediction: str, gold: str) -> float:
    pred, true = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred or not true:
        return float(pred == true)
    common = sum((Counter(pred) & Counter(true)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(true)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """Token-overlap F1 with the best-matching gold answer."""
    if not golds:
        return float(normalize_answer(prediction) == "")
    return max(_token_f1(prediction, g) for g in golds)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict:
    """Mean exact match and F1 over questions; splits by answerable when some are not."""
    n = len(predictions)
    if n == 0:
        return {"exact_match": 0.0, "f1": 0.0, "n": 0}
    em = [exact_match(p, g) for p, g in zip(predictions, golds)]
    f1 = [f1_score(p, g) for p, g in zip(predictions, golds)]
    out = {"exact_match": round(sum(em) / n, 4), "f1": round(sum(f1) / n, 4), "n": n}
    unanswerable = [i for i, g in enumerate(golds) if not g]
    if unanswerable:
        answerable = [i for i, g in enumerate(golds) if g]
        out["no_answer_accuracy"] = round(sum(em[i] for i in unanswerable) / len(unanswerable), 4)
        if answerable:
            out["has_answer_f1"] = round(sum(f1[i] for i in answerable) / len(answerable), 4)
    return out
