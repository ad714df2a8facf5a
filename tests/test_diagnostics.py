"""The verdict on synthetic curves: one case per verdict, with the numbers in the evidence."""

from __future__ import annotations

from finetuner.diagnostics import diagnose, history_from_events

BIG = {"n_train": 2000, "n_validation": 250, "label_counts": {"a": 1000, "b": 1000}}


def curve(train_loss, eval_loss, val_metric, train_metric):
    return [{"step": 100 * (i + 1), "epoch": 0.5 * (i + 1), "train_loss": t, "eval_loss": e,
             "val_metric": v, "train_metric": m}
            for i, (t, e, v, m) in enumerate(zip(train_loss, eval_loss, val_metric, train_metric))]


def test_healthy():
    history = curve([0.6, 0.4, 0.3, 0.25], [0.55, 0.4, 0.33, 0.31], [0.8, 0.86, 0.89, 0.9],
                    [0.81, 0.88, 0.91, 0.92])
    d = diagnose(history, {"accuracy": 0.9, "macro_f1": 0.9}, BIG)
    assert d.verdict == "healthy"
    assert "Best validation macro-F1 0.90 at step 400." in d.evidence
    assert any("gap of 0.02" in e for e in d.evidence)
    assert "still rising" in d.remedies[0]


def test_overfitting_from_rising_validation_loss_and_gap():
    history = curve([0.5, 0.3, 0.15, 0.08, 0.03], [0.45, 0.35, 0.42, 0.5, 0.61],
                    [0.82, 0.86, 0.85, 0.84, 0.83], [0.85, 0.92, 0.97, 0.99, 0.995])
    d = diagnose(history, {"accuracy": 0.84}, BIG, method="full")
    assert d.verdict == "overfitting"
    assert any("rose 3 evaluations in a row" in e and "0.35" in e and "0.61" in e
               and "fell 90%" in e for e in d.evidence)
    assert any("Train macro-F1 0.99 vs validation 0.83" in e for e in d.evidence)
    assert any("step 200" in e and "was kept" in e for e in d.evidence)
    assert any("LoRA or head-only" in r for r in d.remedies)


def test_underfitting():
    history = curve([0.69, 0.68, 0.67, 0.66], [0.69, 0.69, 0.68, 0.68], [0.5, 0.52, 0.55, 0.55],
                    [0.51, 0.53, 0.55, 0.56])
    d = diagnose(history, {"accuracy": 0.55}, BIG, method="head")
    assert d.verdict == "underfitting"
    assert any("only 0.56" in e for e in d.evidence)
    assert any("fell only 4%" in e for e in d.evidence)
    assert d.remedies[0].startswith("Use LoRA or full fine-tuning")


def test_too_little_data():
    history = curve([0.6, 0.3], [0.6, 0.5], [0.7, 0.8], [0.8, 0.95])
    d = diagnose(history, {"accuracy": 0.8}, {"n_train": 40, "n_validation": 5,
                                              "label_counts": {"a": 35, "b": 5}})
    assert d.verdict == "too_little_data"
    assert "Only 40 training examples (fewer than 100)." in d.evidence
    assert "Label 'b' has only 5 training examples." in d.evidence
    assert any("moves the score by 20 points" in e for e in d.evidence)


def test_class_imbalance_dominating():
    final = {"accuracy": 0.9, "macro_f1": 0.55, "predicted_share": {"ham": 0.97, "spam": 0.03},
             "per_class": {"ham": {"recall": 0.99, "support": 180},
                           "spam": {"recall": 0.2, "support": 20}}}
    data = {"n_train": 1600, "n_validation": 200, "label_counts": {"ham": 1440, "spam": 160}}
    history = curve([0.4, 0.3], [0.35, 0.33], [0.55, 0.56], [0.57, 0.58])
    d = diagnose(history, final, data)
    assert d.verdict == "class_imbalance"
    assert d.evidence[0] == ("'ham' is 90% of the training data and the model predicts it for "
                             "97% of test rows.")
    assert "Recall on 'spam' is 0.20: it finds 20% of them." in d.evidence
    assert any("'spam'" in r for r in d.remedies)


def test_balanced_data_with_a_weak_class_is_not_called_imbalance():
    final = {"accuracy": 0.7, "macro_f1": 0.6, "predicted_share": {"a": 0.5, "b": 0.5},
             "per_class": {"a": {"recall": 0.9, "support": 100},
                           "b": {"recall": 0.4, "support": 100}}}
    d = diagnose(curve([0.5], [0.5], [0.6], [0.62]), final, BIG)
    assert d.verdict != "class_imbalance"


def test_history_from_events():
    events = [{"type": "progress", "step": 1},
              {"type": "eval", "step": 10, "epoch": 0.5, "train_loss": 0.5, "eval_loss": 0.4,
               "validation": {"macro_f1": 0.8}, "train": {"macro_f1": 0.85}}]
    assert history_from_events(events, "macro_f1") == [{
        "step": 10, "epoch": 0.5, "train_loss": 0.5, "eval_loss": 0.4, "val_metric": 0.8,
        "train_metric": 0.85}]
