"""Text classification (single texts or sentence pairs): what differs from the other tasks.

Column detection, label checks, the stratified split, the data report, tokenisation, metrics
and prediction decoding. Example dicts look like {"text", "pair" (optional), "label", "row"}.
"""

from __future__ import annotations

import time
from collections import Counter

from finetuner.config import RunConfig
from finetuner.data.splits import Finding, TokenCounter, clean_label, clean_text, sort_labels
from finetuner.english import listed, plural
from finetuner.errors import DataError
from finetuner.tasks import PreparedData, bagofwords, windows
from finetuner.tasks.table import MISSING, RowKind, detect_columns, featurize_rows, prepare_rows

MIN_PER_CLASS_WARN = 10
IMBALANCE_WARN = 4.0


# ---------------------------------------------------------------------------- preparation


def _read_labels(frame, columns: dict) -> list:
    return [label or MISSING for label in frame[columns["label"]].map(clean_label)]


def _check_train(train: list[dict], splitting: bool) -> None:
    counts = Counter(e["label"] for e in train)
    if len(counts) < 2:
        only = next(iter(counts))
        raise DataError(
            f"Only one label ('{only}') occurs in the training data.",
            "A classifier needs examples of at least two labels.",
            code="one_class",
        )
    single = sorted(label for label, n in counts.items() if n == 1)
    if single and len(counts) > 20 and all(_is_number(label) for label in counts):
        raise DataError(
            f"The label column holds {len(counts)} different numbers (such as "
            f"{', '.join(single[:3])}): as classes, most would occur once or twice.",
            "To predict the number, choose the task 'Regression (a number)'.",
            code="looks_like_regression",
        )
    if splitting and single:
        rows = [e["row"] for e in train if e["label"] in single][:5]
        raise DataError(
            (f"Label {single[0]!r} occurs only once (row {rows[0]}). " if len(single) == 1
             else f"Labels {', '.join(repr(s) for s in single)} occur only once (rows "
             f"{rows}). ") + "One example can be neither learned nor tested.",
            "Add more examples of it, fix it if it is a typo, or remove that row.",
            code="single_example",
        )


def _check_unseen(splits: dict, labels: list[str], config: RunConfig) -> None:
    known = set(labels)
    for split in ("validation", "test"):
        unseen = Counter(e["label"] for e in splits[split] if e["label"] not in known)
        if unseen:
            raise DataError(
                f"The {split} data has {listed(sorted(unseen), 'label')} that never occur in "
                "the training data.",
                "The model cannot learn a label it never sees: add training examples of it or "
                f"remove {'that' if sum(unseen.values()) == 1 else 'those'} "
                f"{plural(sum(unseen.values()), 'row')} from the {split} file.",
                code="unseen_label",
            )


def _report(splits: dict, labels: list[str], findings: list[Finding]) -> tuple[dict, dict]:
    order = {name: i for i, name in enumerate(labels)}
    counts = {s: dict(sorted(Counter(e["label"] for e in ex).items(),
                             key=lambda kv: order.get(kv[0], 0)))
              for s, ex in splits.items()}
    train_counts = counts["train"]
    big_label = max(train_counts, key=train_counts.get)
    small_label = min(train_counts, key=train_counts.get)
    ratio = train_counts[big_label] / train_counts[small_label]
    if ratio >= IMBALANCE_WARN:
        findings.append(Finding(
            "warning", "imbalance",
            f"Labels are imbalanced: '{big_label}' has {ratio:.1f}x as many training examples "
            f"as '{small_label}'. Accuracy can look good while '{small_label}' is missed; "
            "judge by macro-F1 (used to pick the best checkpoint) and add examples of rare "
            "labels if you can.",
        ))
    rare = [k for k, v in train_counts.items() if v < MIN_PER_CLASS_WARN]
    if rare:
        findings.append(Finding(
            "warning", "rare_classes",
            f"{listed(rare, 'Label', ('has', 'have'))} fewer than {MIN_PER_CLASS_WARN} "
            "training examples; the model will learn them poorly and their test scores are "
            "noisy.",
        ))
    return counts, {"imbalance_ratio": round(ratio, 2)}


KIND = RowKind(
    name="classification",
    read_labels=_read_labels,
    label_names=lambda train: sort_labels([e["label"] for e in train]),
    stratum=lambda e: e["label"],
    check_train=_check_train,
    check=_check_unseen,
    report=_report,
)


def prepare(config: RunConfig, count_tokens: TokenCounter | None = None,
            check_rows=None) -> PreparedData:
    prepared = prepare_rows(config, KIND, count_tokens, check_rows)
    _suggest_other_kind(prepared)
    return prepared


def _suggest_other_kind(prepared: PreparedData) -> None:
    """A warning when the labels look like numbers to predict or like several labels per
    row: single-label classification would learn each distinct value as a class."""
    labels = prepared.labels
    numeric = sum(1 for name in labels if _is_number(name))
    joined = [name for name in labels if any(sep in name for sep in (";", "|"))]
    if len(labels) > 20 and numeric == len(labels):
        prepared.report.findings.append(Finding(
            "warning", "looks_like_regression",
            f"The label column holds {len(labels)} different numbers: as classification each "
            "value is a class of its own. Choose the task 'Regression (a number)' to predict "
            "the number."))
    elif joined and len(joined) >= 0.2 * len(labels):
        prepared.report.findings.append(Finding(
            "warning", "looks_like_multilabel",
            f"{len(joined)} of the {len(labels)} labels hold several names joined by ';' or "
            f"'|' (such as '{joined[0]}'): as classification each combination is a class of "
            "its own. Choose the task 'Multi-label classification' to learn each label."))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- model side


def featurize(examples: list[dict], tokenizer, max_length: int, label2id: dict,
              **options) -> list[dict]:
    def label_of(example):
        return label2id.get(example.get("label")) if example.get("label") is not None else None

    return featurize_rows(examples, tokenizer, max_length, options, label_of)


def example_logits(outputs, features, examples, options: dict):
    """(examples, labels) logits: one row per example, its windows pooled."""
    import numpy as np

    pooled = windows.pool(outputs, features, len(examples), options.get("pooling", "mean"))
    return np.stack(pooled).astype("float64")


def metrics(outputs, features, examples, labels: list[str], **options) -> dict:
    from finetuner.metrics.classification import classification_metrics

    pred = example_logits(outputs, features, examples, options).argmax(-1)
    gold = [labels.index(e["label"]) for e in examples]
    return classification_metrics(gold, pred.tolist(), labels)


def paired_record(outputs, features, examples, labels: list[str], **options) -> dict:
    """Gold and predicted class per row, for the paired test of two runs
    (finetuner.evaluation.paired)."""
    pred = example_logits(outputs, features, examples, options).argmax(-1)
    return {"kind": "confusion", "classes": len(labels), "pred": pred.tolist(),
            "gold": [labels.index(e["label"]) for e in examples]}


def decode(outputs, features, examples, labels: list[str], **options) -> list[dict]:
    """Logits → {"label", "score", "probabilities"} per example."""
    import numpy as np

    logits = example_logits(outputs, features, examples, options)
    logits -= logits.max(-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(-1, keepdims=True)
    out = []
    for row in probs:
        best = int(row.argmax())
        out.append({
            "label": labels[best],
            "score": float(row[best]),
            "probabilities": {labels[j]: float(p) for j, p in enumerate(row)},
        })
    return out


def prediction_rows(outputs, features, examples: list[dict], labels: list[str],
                    **options) -> list[dict]:
    """Test rows with the model's answer, wrong ones first (most confident first)."""
    predictions = decode(outputs, features, examples, labels, **options)
    rows = []
    for example, pred in zip(examples, predictions):
        row = {"text": example["text"]}
        if "pair" in example:
            row["text_pair"] = example["pair"]
        row.update(true=example["label"], predicted=pred["label"],
                   confidence=round(pred["score"], 4), correct=example["label"] == pred["label"])
        rows.append(row)
    rows.sort(key=lambda r: (r["correct"], -r["confidence"]))
    return rows


# ---------------------------------------------------------------------------- try it and files


def examples_from_frame(frame, columns: dict) -> list[dict]:
    """Rows of a file to predict: the trained text (and pair) columns, else detected ones."""
    names = [str(c) for c in frame.columns]
    text = columns.get("text") if columns.get("text") in names else None
    pair = columns.get("text_pair") if columns.get("text_pair") in names else None
    if text is None:
        text = detect_columns(frame)[0]["text"]
    if text is None:
        raise DataError("Could not find a text column to predict.",
                        f"The columns are: {', '.join(names)}.", code="no_text_column")
    if columns.get("text_pair") and pair is None:
        raise DataError(f"This model compares two texts, but the file has no "
                        f"'{columns['text_pair']}' column.",
                        f"The columns are: {', '.join(names)}.", code="missing_column")
    texts = frame[text].map(clean_text).tolist()
    pairs = frame[pair].map(clean_text).tolist() if pair else None
    return [{"text": t, **({"pair": pairs[i]} if pairs else {})} for i, t in enumerate(texts)]


def output_columns(prediction: dict, labels: list[str]) -> dict:
    """The columns a prediction adds to a row of a predicted file."""
    out = {"predicted_label": prediction["label"], "confidence": round(prediction["score"], 5)}
    for label in labels:
        out[f"p_{label}"] = round(prediction["probabilities"][label], 5)
    return out


USAGE = """from transformers import pipeline

classifier = pipeline("text-classification", model="{path}", top_k=None)
print(classifier("What a wonderful, clever film!"))"""


def usage_snippet(meta: dict, path: str) -> str:
    return USAGE.format(path=path)


def example_from_input(text: str, pair: str | None) -> dict:
    """The try-it boxes as one example."""
    return {"text": text, **({"pair": pair} if pair else {})}


def preview_rows(examples: list[dict]) -> tuple[list[dict], list[str]]:
    """Rows and columns of the data preview (tables are shown as they are instead)."""
    pairs = any(e.get("pair") for e in examples)
    cols = ["text", *(["pair"] if pairs else []), "label"]
    return [{c: e.get(c) for c in cols} for e in examples], cols


def _headline(metrics: dict) -> dict:
    return {k: metrics[k] for k in ("accuracy", "macro_f1", "weighted_f1") if k in metrics}


def baselines(train: list[dict], validation: list[dict], test: list[dict],
              labels: list[str]) -> dict:
    """The majority label of the training split, and TF-IDF (word 1-2 grams) with a logistic
    regression whose regularisation is chosen on validation macro-F1, each with validation and
    test scores."""
    from finetuner.metrics.classification import classification_metrics

    index = {name: i for i, name in enumerate(labels)}
    y = {split: [index[e["label"]] for e in rows] for split, rows in
         (("train", train), ("validation", validation), ("test", test))}
    common = Counter(y["train"]).most_common(1)[0][0]

    def scores(split: str, predicted: list[int]) -> dict:
        return _headline(classification_metrics(y[split], predicted, labels))

    out = {"majority": {"title": f"always answering {labels[common]}",
                        "validation": scores("validation", [common] * len(validation)),
                        "test": scores("test", [common] * len(test))}}
    if len(set(y["train"])) < 2:
        return out
    from sklearn.linear_model import LogisticRegression

    t0 = time.perf_counter()
    x_train, x_val, x_test = bagofwords.tfidf(train, validation, test)
    best = None
    for c in bagofwords.C_GRID:
        model = LogisticRegression(C=c, max_iter=2000, class_weight="balanced")
        model.fit(x_train, y["train"])
        val = scores("validation", model.predict(x_val).tolist())
        if best is None or val["macro_f1"] > best[1]["macro_f1"]:
            best = (model, val, c)
    model, val, c = best
    test_scores = scores("test", model.predict(x_test).tolist())
    out["tfidf_logreg"] = {"title": "word counts (TF-IDF) + logistic regression", "C": c,
                           "validation": val, "test": test_scores,
                           "seconds": round(time.perf_counter() - t0, 2)}
    return out


def calibration_pairs(outputs: list, features: list[dict]):
    """(logits, gold class) of every labelled feature, for temperature scaling."""
    import numpy as np

    keep = [i for i, f in enumerate(features) if "labels" in f]
    if not keep:
        return None
    return (np.stack([outputs[i] for i in keep]).astype("float64"),
            np.array([features[i]["labels"] for i in keep]))


def decision(prediction: dict):
    """What a prediction decides, without its probabilities: the label."""
    return prediction.get("label")


def summary(prediction: dict) -> str:
    """The label, its probability and every label's, most likely first."""
    probs = ", ".join(f"{k} {v:.3f}" for k, v in sorted(
        prediction["probabilities"].items(), key=lambda kv: -kv[1]))
    return f"{prediction['label']}\t{prediction['score']:.3f}\t({probs})"
