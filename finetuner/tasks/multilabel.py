"""Multi-label classification: each text carries any number of labels, none included.

Labels come as one column of names joined by a separator (`;`, `|` or `,`: detected, or
`label_separator`) or as several 0/1 columns (detected, or `label_column="a,b,c"`). An empty
cell or a row of zeros is a valid answer, "none of these". The model has a sigmoid output per
label trained with binary cross-entropy (transformers' `multi_label_classification`); one
decision threshold per label is tuned on the validation split after training (`tune`) and
travels in the export. Example dicts look like {"text", "pair"?, "label": [names], "row"}.
"""

from __future__ import annotations

import time
from collections import Counter
from itertools import combinations

import numpy as np

from finetuner.config import RunConfig
from finetuner.data.splits import Finding, TokenCounter, clean_label, sort_labels
from finetuner.english import listed, plural
from finetuner.errors import DataError
from finetuner.metrics.multilabel import (
    RULE_WORDS,
    choose_thresholds,
    multilabel_metrics,
    tune_thresholds,
)
from finetuner.tasks import NO_LABEL, PreparedData, bagofwords, windows
from finetuner.tasks.classification import example_from_input, examples_from_frame  # noqa: F401 - same
from finetuner.tasks.table import MISSING, RowKind, featurize_rows, label_columns, prepare_rows

SEPARATORS = (";", "|", ",")
TRUE_VALUES = {"1", "true", "yes", "y", "t"}
FALSE_VALUES = {"0", "false", "no", "n", "f", ""}
TOO_RARE = 5  # fewer training examples than this: too rare to learn
RARE = 10
NONE = NO_LABEL


# ---------------------------------------------------------------------------- reading


def detect_separator(values) -> str | None:
    """The separator found in the most label cells (None when every cell holds one label)."""
    cells = [v for v in values if v]
    counts = {sep: sum(1 for v in cells if sep in v) for sep in SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else None


def binary_columns(frame, taken: dict) -> list[str]:
    """Columns (other than the texts) whose every value is 0/1, true/false or yes/no."""
    out = []
    for column in map(str, frame.columns):
        if column in (taken.get("text"), taken.get("text_pair")):
            continue
        values = set(frame[column].head(2000).map(clean_label).str.lower())
        if values and values <= TRUE_VALUES | FALSE_VALUES and values & TRUE_VALUES:
            out.append(column)
    return out


def _detect_label(frame, detected: dict) -> str | None:
    binary = binary_columns(frame, detected)
    if len(binary) >= 2 and (detected.get("label") in (None, *binary)):
        return ",".join(binary)
    return None


class _Reader:
    """Reads label cells; the separator is detected on the training file and kept for the
    validation and test files."""

    def __init__(self, separator: str | None) -> None:
        self.separator, self.detected = separator, separator is not None

    def __call__(self, frame, columns: dict) -> list:
        names = label_columns(columns)
        if len(names) > 1:
            return [self._row(frame, names, i) for i in range(len(frame))]
        cells = frame[names[0]].map(clean_label).tolist()
        if not self.detected:
            self.separator, self.detected = detect_separator(cells), True
        sep = self.separator
        return [sorted({p.strip() for p in (c.split(sep) if sep else [c]) if p.strip()})
                for c in cells]

    @staticmethod
    def _row(frame, names: list[str], i: int):
        out = []
        for name in names:
            value = clean_label(frame[name].iat[i]).lower()
            if value in TRUE_VALUES:
                out.append(name)
            elif value not in FALSE_VALUES:
                return MISSING
        return out


def _check_train(train: list[dict], splitting: bool) -> None:
    if not any(e["label"] for e in train):
        raise DataError(
            "No row of the training data carries a label.",
            "Fill in the label column (names joined by ';') or choose the 0/1 label columns.",
            code="no_labels",
        )
    if len({name for e in train for name in e["label"]}) < 2 and all(e["label"] for e in train):
        raise DataError(
            "Every training row has the same single label.",
            "Multi-label needs at least two labels, or rows without any label.",
            code="one_class",
        )


def _check_unseen(splits: dict, labels: list[str], config: RunConfig) -> None:
    known = set(labels)
    for split in ("validation", "test"):
        unseen = Counter(n for e in splits[split] for n in e["label"] if n not in known)
        if unseen:
            raise DataError(
                f"The {split} data has {listed(sorted(unseen), 'label')} that never occur in "
                "the training data.",
                "The model cannot learn a label it never sees: add training examples of it or "
                f"remove it from the {split} file.",
                code="unseen_label",
            )


def _report(splits: dict, labels: list[str], findings: list[Finding]) -> tuple[dict, dict]:
    counts = {s: {name: sum(1 for e in ex if name in e["label"]) for name in labels}
              for s, ex in splits.items()}
    for s, ex in splits.items():
        counts[s][NONE] = sum(1 for e in ex if not e["label"])
    train = splits["train"]
    pairs = Counter(p for e in train for p in combinations(sorted(e["label"]), 2))
    too_rare = [n for n in labels if counts["train"][n] < TOO_RARE]
    rare = [n for n in labels if TOO_RARE <= counts["train"][n] < RARE]
    if too_rare:
        findings.append(Finding(
            "warning", "too_rare",
            f"{listed(too_rare, 'Label', ('has', 'have'))} fewer than {TOO_RARE} "
            "training examples: too rare to learn (the model will hardly ever predict them) "
            "and their scores mean little. Add examples, or merge or drop those labels.",
        ))
    if rare:
        findings.append(Finding(
            "warning", "rare_classes",
            f"{listed(rare, 'Label', ('has', 'have'))} fewer than {RARE} training "
            "examples; the model will learn them poorly.",
        ))
    absent = [n for n in labels if not counts["validation"].get(n)]
    if absent:
        findings.append(Finding(
            "info", "absent_in_validation",
            f"{plural(len(absent), 'label')} never occur in the validation split "
            f"({', '.join(repr(n) for n in absent[:8])}{'...' if len(absent) > 8 else ''}): "
            "their thresholds stay at 0.5 and the choice of checkpoint cannot see them.",
        ))
    cardinality = sum(len(e["label"]) for e in train) / max(1, len(train))
    none_share = counts["train"][NONE] / max(1, len(train))
    findings.append(Finding(
        "info", "multilabel",
        f"{len(labels)} labels; a training text carries {cardinality:.2f} on average and "
        f"{none_share:.0%} carry none." + (
            " Most often together: " + ", ".join(f"{a} + {b} ({n})"
                                                 for (a, b), n in pairs.most_common(3)) + "."
            if pairs else ""),
    ))
    return counts, {"cooccurrence": [[a, b, n] for (a, b), n in pairs.most_common(20)],
                    "label_cardinality": round(cardinality, 3),
                    "none_share": round(none_share, 4), "too_rare": too_rare}


def _options(splits, labels, config, report) -> dict:
    names = label_columns(report.columns)
    return {"label_format": "columns" if len(names) > 1 else "separator",
            "thresholds": {n: 0.5 for n in labels}}


def _stratum_of(train: list[dict]):
    """Split by each row's rarest label, so rare labels reach validation and test."""
    counts = Counter(n for e in train for n in e["label"])

    def stratum(example: dict) -> str:
        return min(example["label"], key=lambda n: (counts[n], n)) if example["label"] else ""

    return stratum


def prepare(config: RunConfig, count_tokens: TokenCounter | None = None,
            check_rows=None) -> PreparedData:
    reader = _Reader(config.data.label_separator)
    state: dict = {}

    def check_train(train, splitting):
        _check_train(train, splitting)
        state["stratum"] = _stratum_of(train)

    kind = RowKind(
        name="multi-label", read_labels=reader,
        label_names=lambda train: sort_labels([n for e in train for n in e["label"]]),
        stratum=lambda e: state["stratum"](e), check_train=check_train, check=_check_unseen,
        report=_report, options=_options, missing_label="a label value that is not 0 or 1",
    )
    prepared = prepare_rows(config, kind, count_tokens, check_rows, detect_label=_detect_label)
    if reader.separator and len(label_columns(prepared.report.columns)) == 1:
        prepared.report.extra["options"]["separator"] = reader.separator
    return prepared


# ---------------------------------------------------------------------------- model side


def featurize(examples: list[dict], tokenizer, max_length: int, label2id: dict,
              **options) -> list[dict]:
    def label_of(example):
        if example.get("label") is None or not label2id:
            return None
        vector = [0.0] * len(label2id)
        for name in example["label"]:
            if name in label2id:
                vector[label2id[name]] = 1.0
        return vector

    return featurize_rows(examples, tokenizer, max_length, options, label_of)


def probabilities(outputs, features, examples, options: dict) -> np.ndarray:
    """(examples, labels) sigmoid probabilities, windows pooled on the logits."""
    logits = np.stack(windows.pool(outputs, features, len(examples),
                                   options.get("pooling", "mean"))).astype("float64")
    return 1.0 / (1.0 + np.exp(-logits))


def _thresholds(labels: list[str], options: dict) -> np.ndarray:
    given = options.get("thresholds") or {}
    return np.array([float(given.get(n, 0.5)) for n in labels])


def _gold(examples: list[dict], labels: list[str]) -> np.ndarray:
    index = {n: j for j, n in enumerate(labels)}
    gold = np.zeros((len(examples), len(labels)), dtype=bool)
    for i, e in enumerate(examples):
        for n in e["label"]:
            if n in index:
                gold[i, index[n]] = True
    return gold


def metrics(outputs, features, examples, labels: list[str], **options) -> dict:
    probs = probabilities(outputs, features, examples, options)
    gold = _gold(examples, labels)
    if options.get("thresholds_tuned"):  # after training: the thresholds from validation
        thr = _thresholds(labels, options)
    else:  # during training each checkpoint is judged at its own best thresholds on this
        # split (validation only), not at 0.5, which an under-confident model never reaches
        tuned = tune_thresholds(gold, probs, labels)
        thr = np.array([tuned[n] for n in labels])
    return multilabel_metrics(gold, probs >= thr, labels)


def paired_record(outputs, features, examples, labels: list[str], **options) -> dict:
    """Label counts per row at the tuned thresholds, for the paired test
    (finetuner.evaluation.paired)."""
    pred = probabilities(outputs, features, examples, options) >= _thresholds(labels, options)
    gold = _gold(examples, labels)
    return {"kind": "counts", "tp": (gold & pred).sum(1).tolist(),
            "fp": (~gold & pred).sum(1).tolist(), "fn": (gold & ~pred).sum(1).tolist()}


def tune(outputs, features, examples, labels: list[str], **options) -> dict:
    """Options learned on the validation split after training: a threshold per label, by the
    rule that held up best on halves of the split (metrics.multilabel.choose_thresholds)."""
    probs = probabilities(outputs, features, examples, options)
    thresholds, rule, check = choose_thresholds(_gold(examples, labels), probs, labels)
    return {"thresholds": thresholds, "thresholds_tuned": True, "threshold_rule": rule,
            "threshold_check": check}


def decode(outputs, features, examples, labels: list[str], **options) -> list[dict]:
    """{"labels": [names above their threshold], "label": "a; b" or "(none)", "score",
    "probabilities", "thresholds"} per example."""
    probs = probabilities(outputs, features, examples, options)
    thr = _thresholds(labels, options)
    out = []
    for row in probs:
        chosen = [labels[j] for j in np.flatnonzero(row >= thr)]
        score = float(row[row >= thr].min()) if chosen else float(1 - row.max())
        out.append({"labels": chosen, "label": "; ".join(chosen) or NONE, "score": score,
                    "probabilities": {n: float(p) for n, p in zip(labels, row)},
                    "thresholds": {n: float(t) for n, t in zip(labels, thr)}})
    return out


def prediction_rows(outputs, features, examples: list[dict], labels: list[str],
                    **options) -> list[dict]:
    """Test rows with the predicted labels, those with most wrong labels first."""
    rows = []
    for example, pred in zip(examples, decode(outputs, features, examples, labels, **options)):
        gold, got = set(example["label"]), set(pred["labels"])
        # the short columns first: long clauses would push them out of view
        row = {"true": "; ".join(sorted(gold)) or NONE, "predicted": pred["label"],
               "missed": "; ".join(sorted(gold - got)), "extra": "; ".join(sorted(got - gold)),
               "text": example["text"], **({"text_pair": example["pair"]}
                                           if "pair" in example else {}),
               "correct": gold == got}
        rows.append(row)
    rows.sort(key=lambda r: (r["correct"], -(len(r["missed"]) + len(r["extra"]))))
    return rows


def output_columns(prediction: dict, labels: list[str]) -> dict:
    out = {"predicted_labels": "; ".join(prediction["labels"])}
    for label in labels:
        out[f"p_{label}"] = round(prediction["probabilities"][label], 5)
    return out


USAGE = """import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model = AutoModelForSequenceClassification.from_pretrained("{path}")  # multi_label_classification
tokenizer = AutoTokenizer.from_pretrained("{path}")
thresholds = {thresholds}  # tuned on the validation split: {rule}
inputs = tokenizer(["Either party may terminate this agreement with notice."], return_tensors="pt")
probs = torch.sigmoid(model(**inputs).logits)[0]
labels = [model.config.id2label[i] for i, p in enumerate(probs.tolist())
          if p >= thresholds[model.config.id2label[i]]]
print(labels)  # every label whose probability reaches its threshold; [] means none of them"""


def usage_snippet(meta: dict, path: str) -> str:
    options = meta.get("options") or {}
    thresholds = options.get("thresholds") or {}
    return USAGE.format(path=path, thresholds=repr({k: round(v, 2)
                                                    for k, v in thresholds.items()}),
                        rule=RULE_WORDS.get(options.get("threshold_rule") or "per_label"))


def preview_rows(examples: list[dict]) -> tuple[list[dict], list[str]]:
    pairs = any(e.get("pair") for e in examples)
    cols = ["text", *(["pair"] if pairs else []), "labels"]
    return [{"text": e["text"], "pair": e.get("pair"), "labels": "; ".join(e["label"]) or NONE}
            for e in examples], cols


def baselines(train: list[dict], validation: list[dict], test: list[dict],
              labels: list[str]) -> dict:
    """Answering "none of these" for every text, and TF-IDF + one logistic regression per
    label (threshold 0.5, regularisation chosen on validation micro-F1)."""
    from sklearn.linear_model import LogisticRegression

    def scores(rows, pred):
        metrics = multilabel_metrics(_gold(rows, labels), pred, labels)
        return {k: metrics[k] for k in ("micro_f1", "macro_f1", "subset_accuracy")}

    out = {"none": {"title": "always answering none of the labels",
                    "validation": scores(validation, np.zeros((len(validation), len(labels)))),
                    "test": scores(test, np.zeros((len(test), len(labels))))}}
    t0 = time.perf_counter()
    x_train, x_val, x_test = bagofwords.tfidf(train, validation, test)
    y = _gold(train, labels)

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
    for c in bagofwords.C_GRID:
        pred_val, pred_test = fit(c)
        val = scores(validation, pred_val)
        if best is None or val["micro_f1"] > best[0]["micro_f1"]:
            best = (val, pred_test, c)
    val, pred_test, c = best
    out["tfidf_logreg"] = {"title": "word counts (TF-IDF) + logistic regression per label",
                           "C": c, "validation": val, "test": scores(test, pred_test),
                           "seconds": round(time.perf_counter() - t0, 2)}
    return out


def decision(prediction: dict):
    """What a prediction decides, without its probabilities: the set of labels."""
    return tuple(sorted(prediction["labels"]))


def summary(prediction: dict) -> str:
    """The labels chosen, then every label's probability (* above its threshold)."""
    thresholds = prediction["thresholds"]
    probs = ", ".join(f"{k} {v:.3f}{'*' if v >= thresholds[k] else ''}" for k, v in sorted(
        prediction["probabilities"].items(), key=lambda kv: -kv[1]))
    return f"{prediction['label']}\t({probs})"
