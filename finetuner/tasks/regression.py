"""Regression: a number per text or pair of texts (a rating, a score, a similarity).

The target is standardised with the training split's mean and standard deviation for training
(mean-squared-error loss, transformers' `regression` problem type, one output); outputs are
turned back into the target's units for every metric and answer. The exported model has the
scale folded into its last layer (`before_save`), so plain transformers gives the number
itself. Example dicts look like {"text", "pair"?, "label": float, "row"}.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pandas as pd

from finetuner.config import RunConfig
from finetuner.data.splits import Finding, TokenCounter, clean_label
from finetuner.english import plural
from finetuner.errors import DataError
from finetuner.tasks import PreparedData, bagofwords, windows
from finetuner.tasks.classification import example_from_input, examples_from_frame  # noqa: F401 - same
from finetuner.tasks.table import MISSING, RowKind, featurize_rows, prepare_rows

MIN_DISTINCT = 3
BINS = 6


def looks_like_regression(values) -> bool:
    """A label column that holds numbers with many distinct values (ratings 1-5 stay classes;
    scores such as 3.8 or 0-100 are targets)."""
    cells = [v for v in map(clean_label, values) if v]
    numbers = pd.to_numeric(pd.Series(cells, dtype="object"), errors="coerce")
    if not cells or numbers.isna().mean() > 0.02:
        return False
    distinct = numbers.dropna().nunique()
    fractional = (numbers.dropna() % 1 != 0).mean()
    return distinct > 20 or (distinct > 10 and fractional > 0.2)


def _read_labels(frame, columns: dict) -> list:
    out = []
    for cell in frame[columns["label"]].map(clean_label):
        try:
            value = float(cell) if cell else math.nan
        except ValueError:
            value = math.nan
        out.append(value if math.isfinite(value) else MISSING)
    return out


def _check_train(train: list[dict], splitting: bool) -> None:
    values = {e["label"] for e in train}
    if len(values) < MIN_DISTINCT:
        raise DataError(
            f"The training targets take only {plural(len(values), 'distinct value')}.",
            "Regression learns a number that varies; for a few fixed answers choose text "
            "classification.", code="constant_target",
        )


def _stats(train: list[dict]) -> tuple[float, float]:
    y = np.array([e["label"] for e in train], dtype="float64")
    return float(y.mean()), float(y.std() or 1.0)


def _report(splits: dict, labels: list[str], findings: list[Finding]) -> tuple[dict, dict]:
    y = np.array([e["label"] for e in splits["train"]], dtype="float64")
    low, high = float(y.min()), float(y.max())
    edges = np.linspace(low, high, BINS + 1)

    def histogram(rows):
        values = np.array([e["label"] for e in rows], dtype="float64")
        counts, _ = np.histogram(np.clip(values, low, high), bins=edges)
        return {f"{edges[i]:.3g} to {edges[i + 1]:.3g}": int(c) for i, c in enumerate(counts)}

    counts = {s: histogram(rows) for s, rows in splits.items()}
    mean, std = _stats(splits["train"])
    findings.append(Finding(
        "info", "target",
        f"Target '{labels[0]}': {len(y):,} training values from {low:.4g} to {high:.4g} "
        f"(mean {mean:.4g}, standard deviation {std:.4g}). Predicting the mean alone gives a "
        f"mean absolute error of {float(np.abs(y - mean).mean()):.4g}.",
    ))
    outside = sum(1 for s in ("validation", "test") for e in splits[s]
                  if not low <= e["label"] <= high)
    if outside:
        findings.append(Finding(
            "warning", "outside_range",
            f"{plural(outside, 'validation/test value')} lie outside the training range "
            f"{low:.4g}-{high:.4g}: models predict those poorly.",
        ))
    return counts, {"target": {"min": low, "max": high, "mean": round(mean, 6),
                               "std": round(std, 6)}}


def _options(splits, labels, config, report) -> dict:
    mean, std = _stats(splits["train"])
    y = [e["label"] for e in splits["train"]]
    return {"target_mean": mean, "target_std": std, "target_min": min(y), "target_max": max(y)}


KIND = RowKind(
    name="regression", read_labels=_read_labels,
    label_names=lambda train: [],  # filled in by prepare: the target column's name
    stratum=lambda e: "",  # replaced per data by quantile bins
    check_train=_check_train, check=lambda splits, labels, config: None,
    report=_report, options=_options, missing_label="a target that is not a number",
)


def prepare(config: RunConfig, count_tokens: TokenCounter | None = None,
            check_rows=None) -> PreparedData:
    state: dict = {}

    def check_train(train, splitting):
        _check_train(train, splitting)
        # split by quantile: every range of the target reaches validation and test
        cuts = np.quantile([e["label"] for e in train], np.linspace(0, 1, BINS + 1)[1:-1])
        state["cuts"] = cuts

    def stratum(example):
        return f"q{int(np.searchsorted(state['cuts'], example['label'], side='right'))}"

    def names(train):
        return [state.get("target") or "value"]

    def read(frame, columns):
        state["target"] = columns["label"]
        return _read_labels(frame, columns)

    kind = replace(KIND, read_labels=read, label_names=names, stratum=stratum,
                   check_train=check_train)
    return prepare_rows(config, kind, count_tokens, check_rows, detect_label=_detect_label)


def _detect_label(frame, detected: dict) -> str | None:
    """The named label column if it holds numbers, else the first numeric column with many
    distinct values."""
    taken = (detected.get("text"), detected.get("text_pair"))
    named = detected.get("label")
    if named and looks_like_regression(frame[named]):
        return named
    for column in map(str, frame.columns):
        if column not in taken and looks_like_regression(frame[column]):
            return column
    return None


# ---------------------------------------------------------------------------- model side


def _scale(options: dict) -> tuple[float, float]:
    return float(options.get("target_mean", 0.0)), float(options.get("target_std", 1.0)) or 1.0


def featurize(examples: list[dict], tokenizer, max_length: int, label2id: dict,
              **options) -> list[dict]:
    mean, std = _scale(options)

    def label_of(example):
        value = example.get("label")
        return None if value is None else float((value - mean) / std)

    return featurize_rows(examples, tokenizer, max_length, options, label_of)


def values(outputs, features, examples, options: dict) -> np.ndarray:
    """One predicted number per example, in the target's units."""
    mean, std = _scale(options)
    pooled = windows.pool(outputs, features, len(examples), options.get("pooling", "mean"))
    return np.array([float(np.ravel(p)[0]) for p in pooled]) * std + mean


def metrics(outputs, features, examples, labels: list[str], **options) -> dict:
    from finetuner.metrics.regression import regression_metrics

    return regression_metrics([e["label"] for e in examples],
                              values(outputs, features, examples, options))


def paired_record(outputs, features, examples, labels: list[str], **options) -> dict:
    """Gold and predicted number per row, for the paired test (finetuner.evaluation.paired)."""
    return {"kind": "pearson", "gold": [float(e["label"]) for e in examples],
            "pred": [float(v) for v in values(outputs, features, examples, options)]}


def decode(outputs, features, examples, labels: list[str], **options) -> list[dict]:
    """{"value", "label" (the value as text)} per example."""
    span = ({"range": [options["target_min"], options["target_max"]]}
            if "target_min" in options else {})
    return [{"value": float(v), "label": f"{v:.4g}", **span}
            for v in values(outputs, features, examples, options)]


def prediction_rows(outputs, features, examples: list[dict], labels: list[str],
                    **options) -> list[dict]:
    """Test rows with the predicted number, the worst predicted first."""
    rows = []
    for example, v in zip(examples, values(outputs, features, examples, options)):
        row = {"true": round(example["label"], 5), "predicted": round(float(v), 5),
               "error": round(float(v) - example["label"], 5), "text": example["text"],
               **({"text_pair": example["pair"]} if "pair" in example else {})}
        rows.append(row)
    spread = np.std([r["true"] for r in rows]) if rows else 0.0
    for row in rows:  # "wrong" for the errors table: off by more than half a standard deviation
        row["correct"] = bool(abs(row["error"]) <= 0.5 * spread)
    rows.sort(key=lambda r: -abs(r["error"]))
    return rows


def output_columns(prediction: dict, labels: list[str]) -> dict:
    return {f"predicted_{labels[0] if labels else 'value'}": round(prediction["value"], 6)}


def before_save(model, options: dict) -> dict:
    """Fold the target's scale into the last layer (weights x std, bias x std + mean), so the
    saved model outputs the number itself; returns the options the export keeps."""
    import torch

    mean, std = _scale(options)
    with torch.no_grad():
        for _, module in _output_layers(model):
            module.weight.mul_(std)
            if module.bias is not None:
                module.bias.mul_(std).add_(mean)
    return {**options, "target_mean": 0.0, "target_std": 1.0,
            "trained_target_mean": mean, "trained_target_std": std}


def _output_layers(model):
    """The one-output linear layers of the head (and of peft's saved copy of it)."""
    import torch

    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and m.out_features == 1]


USAGE = """import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model = AutoModelForSequenceClassification.from_pretrained("{path}")  # regression, 1 output
tokenizer = AutoTokenizer.from_pretrained("{path}")
inputs = tokenizer(["A man is playing a guitar."], {pair}return_tensors="pt")
with torch.no_grad():
    print(model(**inputs).logits[0, 0].item())  # the predicted {target}, in its own units"""


def usage_snippet(meta: dict, path: str) -> str:
    pair = '["A man plays the guitar."], ' if (meta.get("columns") or {}).get("text_pair") \
        else ""
    target = (meta.get("labels") or ["value"])[0]
    return USAGE.format(path=path, pair=pair, target=target)


def preview_rows(examples: list[dict]) -> tuple[list[dict], list[str]]:
    pairs = any(e.get("pair") for e in examples)
    cols = ["text", *(["pair"] if pairs else []), "label"]
    return [{c: e.get(c) for c in cols} for e in examples], cols


def baselines(train: list[dict], validation: list[dict], test: list[dict],
              labels: list[str] | None = None) -> dict:
    """Predicting the training mean, and TF-IDF + ridge regression (its strength chosen on
    validation Pearson)."""
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
    x_train, x_val, x_test = bagofwords.tfidf(train, validation, test)
    best = None
    for alpha in (0.1, 1.0, 10.0):  # chosen on validation, never test
        model = Ridge(alpha=alpha).fit(x_train, y)
        val = scores(validation, model.predict(x_val))
        if best is None or val["pearson"] > best[0]["pearson"]:
            best = (val, model, alpha)
    val, model, alpha = best
    out["tfidf_ridge"] = {"title": "word counts (TF-IDF) + ridge regression", "alpha": alpha,
                          "validation": val, "test": scores(test, model.predict(x_test)),
                          "seconds": round(time.perf_counter() - t0, 2)}
    return out


def decision(prediction: dict):
    """What a prediction decides: the number."""
    return float(prediction["value"])


def summary(prediction: dict) -> str:
    """The number."""
    return f"{prediction['value']:.4g}"
