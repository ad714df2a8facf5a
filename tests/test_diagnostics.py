"""The verdict on synthetic curves: one case per verdict, with the numbers in the evidence."""

from __future__ import annotations

from finetuner.diagnostics import best_row, chance_scores, diagnose, history_from_events

BIG = {"n_train": 2000, "n_validation": 250, "label_counts": {"a": 1000, "b": 1000}}


def curve(train_loss, eval_loss, val_metric, train_metric):
    return [{"step": 100 * (i + 1), "epoch": 0.5 * (i + 1), "train_loss": t, "eval_loss": e,
             "val_metric": v, "train_metric": m}
            for i, (t, e, v, m) in enumerate(zip(train_loss, eval_loss, val_metric, train_metric))]


def test_healthy():
    history = curve([0.6, 0.4, 0.3, 0.25], [0.55, 0.4, 0.33, 0.31], [0.8, 0.9, 0.89, 0.9],
                    [0.81, 0.91, 0.92, 0.92])
    d = diagnose(history, {"accuracy": 0.9, "macro_f1": 0.9}, BIG)
    assert d.verdict == "healthy"
    # equal scores at steps 200 and 400: the lower validation loss (step 400) is kept
    assert "Best validation macro-F1 0.90 at step 400." in d.evidence
    assert any("gap of 0.02" in e and "within noise" in e for e in d.evidence)
    assert any("Guessing would score 0.50" in e for e in d.evidence)
    assert d.remedies[0].startswith("Nothing to fix")


def test_still_improving_says_so_and_suggests_more_epochs():
    history = curve([0.6, 0.4, 0.3, 0.25], [0.55, 0.4, 0.33, 0.31], [0.8, 0.86, 0.89, 0.9],
                    [0.81, 0.88, 0.91, 0.92])
    d = diagnose(history, {}, BIG)
    assert d.verdict == "still_improving"
    assert any("at or next to the last evaluation" in e for e in d.evidence)
    assert "more epochs" in d.remedies[0]


def test_rising_loss_with_a_rising_metric_is_over_confidence_not_overfitting():
    # the finding of issue 10: loss .26 -> .33 while accuracy .89 -> .905, best at the end
    history = curve([0.3, 0.2, 0.12, 0.08], [0.26, 0.28, 0.31, 0.33], [0.89, 0.895, 0.9, 0.905],
                    [0.93, 0.95, 0.96, 0.97])
    d = diagnose(history, {}, BIG, method="full", metric="accuracy", metric_title="accuracy")
    assert d.verdict != "overfitting"
    assert d.verdict == "healthy"  # +0.01 over the last evaluations is within noise
    assert any("grew over-confident" in n and "0.26" in n and "0.33" in n for n in d.notes)
    assert not any("LoRA or head-only" in r for r in d.remedies)


def test_memorising_is_overfitting_whatever_the_kept_checkpoint_scores():
    # 200 reviews, 40 epochs, early stopping off: train 1.00 from epoch 5, val .89 -> .91
    val = [0.89, 0.9, 0.9, 0.91, 0.9, 0.91]
    history = curve([0.3, 0.01, 0.003, 0.001, 0.0008, 0.0007],
                    [0.38, 0.45, 0.52, 0.58, 0.63, 0.68], val, [0.95, 1.0, 1.0, 1.0, 1.0, 1.0])
    data = {"n_train": 200, "n_validation": 200, "label_counts": {"a": 100, "b": 100}}
    d = diagnose(history, {}, data, method="full", metric="accuracy", metric_title="accuracy")
    assert d.verdict == "overfitting"
    assert any("memorised its training rows" in e and "gap of 0.09" in e for e in d.evidence)
    assert any("LoRA or head-only" in r for r in d.remedies)


def test_overfitting_from_a_falling_validation_metric_and_gap():
    history = curve([0.5, 0.3, 0.15, 0.08, 0.03], [0.45, 0.35, 0.42, 0.5, 0.61],
                    [0.82, 0.86, 0.85, 0.84, 0.83], [0.85, 0.92, 0.97, 0.99, 0.995])
    d = diagnose(history, {"accuracy": 0.84}, BIG, method="full")
    assert d.verdict == "overfitting"
    assert any("vs validation 0.83 at the last evaluation: a gap of 0.17" in e
               for e in d.evidence)
    assert any("step 200" in e and "was kept" in e for e in d.evidence)
    assert any("LoRA or head-only" in r for r in d.remedies)
    falling = curve([0.5, 0.3, 0.1, 0.05], [0.4, 0.3, 0.5, 0.7], [0.8, 0.9, 0.8, 0.75],
                    [0.8, 0.9, 0.93, 0.95])
    d = diagnose(falling, {}, BIG, method="lora")
    assert d.verdict == "overfitting"
    assert any("fell from 0.90 (step 200) to 0.75" in e for e in d.evidence)


def test_underfitting_is_judged_against_chance():
    history = curve([0.69, 0.68, 0.67, 0.66], [0.69, 0.69, 0.68, 0.68], [0.58, 0.6, 0.62, 0.62],
                    [0.58, 0.6, 0.63, 0.63])
    d = diagnose(history, {"accuracy": 0.62}, BIG, method="head")
    assert d.verdict == "underfitting"
    assert any("only 0.63" in e and "guessing scores 0.50" in e for e in d.evidence)
    assert d.remedies[0].startswith("Use LoRA or full fine-tuning")
    # NER: nothing to guess, so the bar is half of a perfect score
    d = diagnose(curve([1.0, 0.9, 0.9], [1.0, 0.9, 0.9], [0.4, 0.41, 0.4], [0.45, 0.45, 0.46]),
                 {}, {"n_train": 500, "n_validation": 100, "label_counts": {"PER": 400,
                                                               "LOC": 300}},
                 "entity F1", task="ner", metric="f1")
    assert d.verdict == "underfitting"
    assert any("only 0.45" in e and "guessing" not in e for e in d.evidence)
    # far from fitting but still climbing steeply at the end: the cure is more training
    d = diagnose(curve([1.0, 0.9, 0.6], [1.0, 0.8, 0.6], [0.0, 0.27, 0.41], [0.0, 0.3, 0.41]),
                 {}, {"n_train": 1500, "n_validation": 500}, "entity F1", task="ner",
                 metric="f1")
    assert d.verdict == "still_improving"
    assert d.remedies[0].startswith("Train for more epochs")
    assert any("only 0.41" in e for e in d.evidence)


def test_shuffled_labels_learn_nothing():
    history = curve([0.7, 0.5, 0.2, 0.05], [0.7, 0.75, 0.9, 1.2], [0.49, 0.52, 0.5, 0.51],
                    [0.55, 0.7, 0.9, 0.98])
    d = diagnose(history, {}, BIG, method="full")
    assert d.verdict == "no_signal"
    assert any("within the ±" in e and "250 validation rows" in e for e in d.evidence)
    assert any("memorised the training rows" in e for e in d.evidence)
    assert "shuffled" in d.remedies[0]


def test_the_kept_checkpoint_is_the_one_training_kept():
    # equal validation scores: training keeps the one with the lower validation loss
    history = curve([0.5, 0.4, 0.3], [0.5, 0.45, 0.47], [0.9, 0.94, 0.94], [0.9, 0.95, 0.96])
    history[2]["eval_loss"] = 0.40  # the later tie has the lower loss
    d = diagnose(history, {}, BIG)
    assert not any("was kept" in e for e in d.evidence)  # step 300 is the last: no note
    assert best_row(history)["step"] == 300
    assert best_row(history, best_step=200)["step"] == 200


def test_chance_scores():
    assert chance_scores({"a": 90, "b": 10}, "accuracy") == {"majority": 0.9, "random": 0.5}
    scores = chance_scores({"a": 50, "b": 50})
    assert round(scores["majority"], 3) == 0.333 and round(scores["random"], 3) == 0.5
    assert chance_scores({}) == {"majority": 0.0, "random": 0.0}


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
                             "97% of validation rows.")
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


def test_the_diagnosis_says_so_when_a_baseline_is_as_good():
    history = curve([0.6, 0.4, 0.3], [0.55, 0.45, 0.4], [0.8, 0.85, 0.85], [0.82, 0.87, 0.86])
    data = {**BIG, "baselines": {"TF-IDF + logistic regression": 0.86, "always a": 0.33}}
    d = diagnose(history, {}, data)
    assert d.evidence[0].startswith("A simple baseline does as well: 'TF-IDF")
    assert "simple baseline is as good" in d.remedies[0] and "more epochs" in d.remedies[0]
    perfect = curve([0.3, 0.1, 0.05], [0.2, 0.1, 0.1], [0.98, 1.0, 1.0], [0.99, 1.0, 1.0])
    d = diagnose(perfect, {}, {**BIG, "baselines": {"TF-IDF": 1.0}})
    assert "more epochs" not in d.remedies[0]  # nothing to gain on a perfect score
    d = diagnose(history, {}, {**BIG, "baselines": {"always a": 0.33}})
    assert not any("does as well" in e for e in d.evidence)


def test_baselines_on_real_splits():
    from conftest import sentiment_rows

    from finetuner import baselines

    rows = sentiment_rows(200)
    out = baselines.classification(rows[:140], rows[140:170], rows[170:], ["neg", "pos"])
    assert out["majority"]["test"]["accuracy"] == 0.5
    assert out["tfidf_logreg"]["validation"]["macro_f1"] > 0.9  # the words give it away
    assert "TF-IDF" in out["tfidf_logreg"]["title"] and out["tfidf_logreg"]["C"] in (0.1, 1, 10)
    train = [{"tokens": ["Ann", "met", "Bob", "Lee"], "tags": ["B-PER", "O", "B-PER", "I-PER"]},
             {"tokens": ["in", "Paris"], "tags": ["O", "B-LOC"]}]
    test = [{"tokens": ["Bob", "Lee", "left", "Paris", "Rome"],
             "tags": ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]}]
    ner = baselines.ner(train, test, test)["memorised_entities"]["test"]
    assert ner["precision"] == 1.0 and round(ner["recall"], 3) == 0.667


def test_a_slow_rise_inside_the_noise_is_still_improving_when_the_loss_keeps_falling():
    """Head-only style: the metric creeps up by less than its noise between evaluations, but
    the end is a new best and the validation loss a new low: train longer. A tie at the end
    with the same falling loss is a plateau (test_healthy)."""
    val = [0.56, 0.65, 0.61, 0.68, 0.68, 0.71, 0.69, 0.70, 0.72]
    loss = [0.71, 0.76, 0.88, 0.74, 0.60, 0.58, 0.57, 0.56, 0.55]
    train = [0.6, 0.7, 0.68, 0.73, 0.68, 0.81, 0.73, 0.8, 0.8]
    data = {"n_train": 1800, "n_validation": 200, "label_counts": {"a": 900, "b": 900}}
    d = diagnose(curve(loss, loss, val, train), {}, data, method="head")
    assert d.verdict == "still_improving"
    assert any("validation loss was still falling" in e for e in d.evidence)
    flat = val[:-1] + [0.71]  # ties the earlier best: a plateau
    assert diagnose(curve(loss, loss, flat, train), {}, data).verdict == "healthy"
