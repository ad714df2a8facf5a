"""Cheap baselines scored beside every fine-tuned model, so a score means something.

Classification: the majority label of the training split, and TF-IDF (word 1-2 grams) with a
logistic regression whose regularisation is chosen on the validation split (seconds on a CPU).
NER: "memorised entities": every span seen in training, tagged with its most frequent type,
found again by longest match. Each baseline reports its validation score (which the diagnosis
may compare against: choices use validation only) and its test score (shown beside the model's,
used for nothing). scikit-learn only; no torch.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

from finetuner.metrics.classification import classification_metrics
from finetuner.metrics.ner import entities, entity_metrics

C_GRID = (0.1, 1.0, 10.0)
MAX_FEATURES = 200_000


def _texts(examples: list[dict]) -> list[str]:
    return [e["text"] + (" [SEP] " + e["pair"] if e.get("pair") else "") for e in examples]


def _scores(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("accuracy", "macro_f1", "weighted_f1") if k in metrics}


def classification(train: list[dict], validation: list[dict], test: list[dict],
                   labels: list[str]) -> dict:
    """{"majority": {...}, "tfidf_logreg": {...}}, each with validation and test scores."""
    index = {name: i for i, name in enumerate(labels)}
    y = {split: [index[e["label"]] for e in rows] for split, rows in
         (("train", train), ("validation", validation), ("test", test))}
    common = Counter(y["train"]).most_common(1)[0][0]
    out = {"majority": {
        "title": f"always answering {labels[common]}",
        "validation": _scores(classification_metrics(y["validation"], [common] *
                                                     len(validation), labels)),
        "test": _scores(classification_metrics(y["test"], [common] * len(test), labels)),
    }}
    if len(set(y["train"])) < 2:
        return out
    out["tfidf_logreg"] = _tfidf(train, validation, test, y, labels)
    return out


def _tfidf(train, validation, test, y, labels) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1,
                                 max_features=MAX_FEATURES)
    x_train = vectorizer.fit_transform(_texts(train))
    x_val, x_test = vectorizer.transform(_texts(validation)), vectorizer.transform(_texts(test))
    best = None
    for c in C_GRID:  # regularisation chosen on validation macro-F1, never on test
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(x_train, y["train"])
        val = classification_metrics(y["validation"], model.predict(x_val).tolist(), labels)
        if best is None or val["macro_f1"] > best[1]["macro_f1"]:
            best = (model, val, c)
    model, val, c = best
    test_metrics = classification_metrics(y["test"], model.predict(x_test).tolist(), labels)
    return {"title": "word counts (TF-IDF) + logistic regression", "C": c,
            "validation": _scores(val), "test": _scores(test_metrics),
            "seconds": round(time.perf_counter() - t0, 2)}


def ner(train: list[dict], validation: list[dict], test: list[dict],
        labels: list[str] | None = None) -> dict:
    """Tag every span seen in training with its most frequent type (longest match first)."""
    seen: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for sentence in train:
        for kind, start, end in entities(sentence["tags"]):
            seen[tuple(sentence["tokens"][start:end])][kind] += 1
    lookup = {span: counts.most_common(1)[0][0] for span, counts in seen.items()}
    longest = max((len(s) for s in lookup), default=0)

    def tag(tokens: list[str]) -> list[str]:
        out, i = ["O"] * len(tokens), 0
        while i < len(tokens):
            for n in range(min(longest, len(tokens) - i), 0, -1):
                kind = lookup.get(tuple(tokens[i:i + n]))
                if kind:
                    out[i:i + n] = [f"B-{kind}"] + [f"I-{kind}"] * (n - 1)
                    i += n
                    break
            else:
                i += 1
        return out

    def score(rows):
        metrics = entity_metrics([r["tags"] for r in rows], [tag(r["tokens"]) for r in rows])
        return {k: metrics[k] for k in ("precision", "recall", "f1") if k in metrics}

    return {"memorised_entities": {"title": "every entity seen in training, tagged with its "
                                            "most frequent type",
                                   "validation": score(validation), "test": score(test)}}


def multilabel(train: list[dict], validation: list[dict], test: list[dict],
               labels: list[str]) -> dict:
    """Answering "none of these" for every text, and TF-IDF + one logistic regression per
    label (threshold 0.5, regularisation chosen on validation micro-F1)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from finetuner.metrics.multilabel import multilabel_metrics

    def gold(rows):
        index = {n: j for j, n in enumerate(labels)}
        out = np.zeros((len(rows), len(labels)), dtype=bool)
        for i, e in enumerate(rows):
            for n in e["label"]:
                out[i, index[n]] = True
        return out

    keys = ("micro_f1", "macro_f1", "subset_accuracy")

    def scores(rows, pred):
        metrics = multilabel_metrics(gold(rows), pred, labels)
        return {k: metrics[k] for k in keys}

    out = {"none": {"title": "always answering none of the labels",
                    "validation": scores(validation, np.zeros((len(validation), len(labels)))),
                    "test": scores(test, np.zeros((len(test), len(labels))))}}
    t0 = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                 max_features=MAX_FEATURES)
    x_train = vectorizer.fit_transform(_texts(train))
    x_val, x_test = vectorizer.transform(_texts(validation)), vectorizer.transform(_texts(test))
    y = gold(train)

    def fit(c):
        pred_val = np.zeros((len(validation), len(labels)), dtype=bool)
        pred_test = np.zeros((len(test), len(labels)), dtype=bool)
        for j in range(len(labels)):
            if y[:, j].all() or not y[:, j].any():
                pred_val[:, j] = pred_test[:, j] = bool(y[:, j].all())
                continue
            model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
            model.fit(x_train, y[:, j])
            pred_val[:, j], pred_test[:, j] = model.predict(x_val), model.predict(x_test)
        return pred_val, pred_test

    best = None
    for c in C_GRID:
        pred_val, pred_test = fit(c)
        val = scores(validation, pred_val)
        if best is None or val["micro_f1"] > best[0]["micro_f1"]:
            best = (val, pred_test, c)
    val, pred_test, c = best
    out["tfidf_logreg"] = {"title": "word counts (TF-IDF) + logistic regression per label",
                           "C": c, "validation": val, "test": scores(test, pred_test),
                           "seconds": round(time.perf_counter() - t0, 2)}
    return out


def regression(train: list[dict], validation: list[dict], test: list[dict],
               labels: list[str] | None = None) -> dict:
    """Predicting the training mean, and TF-IDF + ridge regression (its strength chosen on
    validation Pearson)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    from finetuner.metrics.regression import regression_metrics

    y = np.array([e["label"] for e in train], dtype="float64")

    def scores(rows, pred):
        return regression_metrics([e["label"] for e in rows], pred)

    def constant(rows):  # correlations of a constant are undefined, not 0: left empty
        return {**scores(rows, [mean] * len(rows)), "pearson": None, "spearman": None}

    mean = float(y.mean())
    out = {"mean": {"title": f"always predicting the training mean ({mean:.3g})",
                    "validation": constant(validation), "test": constant(test)}}
    t0 = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                 max_features=MAX_FEATURES)
    x_train = vectorizer.fit_transform(_texts(train))
    x_val, x_test = vectorizer.transform(_texts(validation)), vectorizer.transform(_texts(test))
    best = None
    for alpha in (0.1, 1.0, 10.0):
        model = Ridge(alpha=alpha).fit(x_train, y)
        val = scores(validation, model.predict(x_val))
        if best is None or val["pearson"] > best[0]["pearson"]:
            best = (val, model, alpha)
    val, model, alpha = best
    out["tfidf_ridge"] = {"title": "word counts (TF-IDF) + ridge regression", "alpha": alpha,
                          "validation": val, "test": scores(test, model.predict(x_test)),
                          "seconds": round(time.perf_counter() - t0, 2)}
    return out


def for_task(task: str, prepared) -> dict:
    """The baselines a task names (TaskSpec.baselines) on its prepared splits ({} for tasks
    without one)."""
    from finetuner.tasks import get_task

    name = get_task(task).baselines
    if not name:
        return {}
    return globals()[name](prepared.train, prepared.validation, prepared.test, prepared.labels)


def comparison(baselines: dict, metric: str, model_value: float | None,
               split: str = "validation") -> list[str]:
    """Sentences setting the model beside each baseline on one split."""
    out = []
    for base in baselines.values():
        value = (base.get(split) or {}).get(metric)
        if value is None or model_value is None:
            continue
        diff = (model_value - value) * 100
        verb = "beats" if diff > 0.05 else "trails" if diff < -0.05 else "ties"
        out.append(f"Fine-tuning {verb} the baseline '{base['title']}' "
                   f"({value:.3f}) by {abs(diff):.1f} points on the {split} split.")
    return out
