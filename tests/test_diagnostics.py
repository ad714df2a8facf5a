"""The verdict on synthetic curves: one case per verdict, with the numbers in the evidence."""

from __future__ import annotations

import pytest

from finetuner.evaluation.diagnostics import (
    baseline_gap,
    best_row,
    chance_scores,
    diagnose,
    history_from_events,
    warning,
)

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
    # the last checkpoint is the best one: stopping sooner would have cost nothing
    assert d.remedies[0].startswith("Train for fewer epochs or keep early stopping on")
    assert any(r.startswith("Compare methods") and "LoRA" in r for r in d.remedies)


def test_a_gap_while_validation_still_rises_is_not_overfitting():
    """66,338 SST-2 sentences, one epoch of the base-size model: the training sample reached
    0.98 while validation rose at every evaluation to 0.95. That is a model still getting
    better (train longer), not one memorising at unseen data's cost ("train fewer epochs"
    would be the wrong advice). Training's own evaluation at its very end, two steps after a
    scheduled one, is not a point of the curve, whichever of the two is kept."""
    val = [0.897, 0.924, 0.936, 0.947, 0.951, 0.951]
    history = curve([0.3, 0.22, 0.2, 0.19, 0.14, 0.14], [0.26, 0.22, 0.2, 0.18, 0.143, 0.143],
                    val, [0.896, 0.939, 0.962, 0.968, 0.984, 0.984])
    history[-1]["step"] = history[-2]["step"] + 2  # the end's repeat
    data = {"n_train": 66338, "n_validation": 1011, "label_counts": {"a": 29332, "b": 37006}}
    for kept in (400, 500, 502):
        d = diagnose(history, {}, data, method="full", best_step=kept)
        assert d.verdict == "still_improving", (kept, d.evidence)
        assert not any("memorised" in e for e in d.evidence)
        assert not any("was kept, not the last" in e for e in d.evidence)  # a tie at the end
        assert "more epochs" in d.remedies[0]


def test_overfitting_from_a_falling_validation_metric_and_gap():
    history = curve([0.5, 0.3, 0.15, 0.08, 0.03], [0.45, 0.35, 0.42, 0.5, 0.61],
                    [0.82, 0.86, 0.85, 0.84, 0.83], [0.85, 0.92, 0.97, 0.99, 0.995])
    d = diagnose(history, {"accuracy": 0.84}, BIG, method="full")
    assert d.verdict == "overfitting"
    # the score against the score, the loss said apart (it read "accuracy 0.99, training loss
    # 0.03 vs validation 0.83", a loss set against a score)
    assert any(e.startswith("Train macro-F1 0.99 vs validation macro-F1 0.83 at the last "
                            "evaluation (training loss then 0.030): a gap of 0.17")
               for e in d.evidence), d.evidence
    assert any("step 200" in e and "was kept" in e for e in d.evidence)
    # early stopping already kept the best checkpoint: "fewer epochs" would give it back, and
    # a smaller method is something to measure (on small SST-2 it scored lower), not a cure
    assert d.remedies[0].startswith("Add more training data") and \
        "Fewer epochs would not help" in d.remedies[0]
    assert not any("Train for fewer epochs" in r for r in d.remedies)
    assert any(r.startswith("Compare methods") and "LoRA" in r for r in d.remedies)
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
    # no cure it cannot back: on 64 to 1,000 SST-2 sentences head-only scored below full
    # fine-tuning from the fitted head and LoRA at most level with it (bench/RESULTS.md)
    assert not any("head-only" in r or "LoRA" in r for r in d.remedies), d.remedies
    assert any(r.startswith("Compare methods (Model & method") and "python -m finetuner "
               "compare" in r and "picks by validation" in r for r in d.remedies), d.remedies


def test_the_model_beside_its_best_baseline_in_words():
    """A tie is a tie: the results said "trails the best baseline (...) by 0.0 points" when
    both scored 1.000 on the test split."""
    from finetuner.evaluation.baselines import comparison, standing
    from finetuner.ui.render_results import baselines_html

    def results(model: float, baseline: float) -> dict:
        return {"metric": "macro_f1", "validation": {"macro_f1": model},
                "test": {"macro_f1": model},
                "baselines": {"tfidf": {"title": "word counts", "validation": {
                    "macro_f1": baseline}, "test": {"macro_f1": baseline}}}}

    assert "fine-tuning ties the best baseline (word counts).</p>" in baselines_html(
        results(1.0, 1.0))
    assert "by 0.0 points" not in baselines_html(results(0.8123, 0.8124))
    assert "beats the best baseline (word counts) by 1.2 points." in baselines_html(
        results(0.812, 0.8))
    assert "trails the best baseline (word counts) by 10.0 points." in baselines_html(
        results(0.7, 0.8))
    assert comparison(results(0.8, 0.8)["baselines"], "macro_f1", 0.8) == [
        "Fine-tuning ties the baseline 'word counts' (0.800) on the validation split."]
    assert standing(-0.06, "X") == "trails X by 0.1 points"
    assert standing(0.04, "X") == "ties X"


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

    from finetuner.tasks import classification, ner

    rows = sentiment_rows(200)
    out = classification.baselines(rows[:140], rows[140:170], rows[170:], ["neg", "pos"])
    assert out["majority"]["test"]["accuracy"] == 0.5
    assert out["tfidf_logreg"]["validation"]["macro_f1"] > 0.9  # the words give it away
    assert "TF-IDF" in out["tfidf_logreg"]["title"] and out["tfidf_logreg"]["C"] in (0.1, 1, 10)
    train = [{"tokens": ["Ann", "met", "Bob", "Lee"], "tags": ["B-PER", "O", "B-PER", "I-PER"]},
             {"tokens": ["in", "Paris"], "tags": ["O", "B-LOC"]}]
    test = [{"tokens": ["Bob", "Lee", "left", "Paris", "Rome"],
             "tags": ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]}]
    memorised = ner.baselines(train, test, test)["memorised_entities"]["test"]
    assert memorised["precision"] == 1.0 and round(memorised["recall"], 3) == 0.667


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


# ---------------------------------------------------------------- worse than a simple baseline
TFIDF = "word counts (TF-IDF) + logistic regression"


def test_trailing_a_baseline_beyond_noise_leads_even_when_data_is_tiny():
    """The issue's first case: 'too little data' while TF-IDF was far ahead. The baseline
    verdict leads, with both scores, the gap in points and the validation size; the data
    finding stays below it."""
    history = curve([0.69, 0.6], [0.69, 0.62], [0.5, 0.6], [0.55, 0.62])
    data = {"n_train": 60, "n_validation": 100, "label_counts": {"a": 30, "b": 30},
            "baselines": {TFIDF: 0.85, "always answering a": 0.33}}
    d = diagnose(history, {}, data)
    assert d.verdict == "behind_baseline" and d.finding == "too_little_data"
    assert d.title.startswith("Worse than a simple baseline")
    assert d.evidence[0] == (f"'{TFIDF}' scores 0.85 validation macro-F1, the fine-tuned model "
                             "0.60: 25 points behind, more than the ±12 points of noise that "
                             "100 validation rows allow.")
    assert "Second finding: Too little data" in " ".join(d.evidence)
    assert "Only 60 training examples (fewer than 100)." in d.evidence
    assert d.remedies[0].startswith("Raise the learning rate")  # it did not fit its own rows
    assert any("do not use this one" in r and TFIDF in r for r in d.remedies)
    assert d.baseline == {"title": TFIDF, "value": 0.85, "model": 0.6,
                          "gap": d.baseline["gap"], "band": d.baseline["band"],
                          "n_validation": 100, "metric_title": "macro-F1"}
    assert round(d.baseline["gap"], 2) == 0.25


def test_trailing_a_baseline_leads_over_underfitting_with_a_strong_remedy():
    """The issue's second case: 'underfitting ... raise the learning rate a little' with the
    baseline 55 points ahead."""
    history = curve([0.69, 0.68, 0.67, 0.66], [0.69, 0.69, 0.68, 0.68],
                    [0.58, 0.6, 0.62, 0.62], [0.58, 0.6, 0.63, 0.63])
    data = {**BIG, "baselines": {TFIDF: 0.9}}
    d = diagnose(history, {}, data, method="full")
    assert d.verdict == "behind_baseline" and d.finding == "underfitting"
    assert "28 points behind" in d.evidence[0] and "250 validation rows" in d.evidence[0]
    assert "only 0.63, less than the baseline" in d.evidence[1]
    assert d.remedies[0].startswith("Raise the learning rate (2 to 5 times")
    assert not any("a little" in r for r in d.remedies)
    head = diagnose(history, {}, data, method="head")
    assert head.remedies[0].startswith("Switch to full fine-tuning")
    assert any("Check the labels" in r for r in d.remedies)  # the second finding's remedy


def test_a_model_that_fits_its_rows_but_trails_is_told_to_use_the_baseline():
    history = curve([0.3, 0.05], [0.5, 0.6], [0.7, 0.7], [0.95, 0.99])
    d = diagnose(history, {}, {**BIG, "baselines": {TFIDF: 0.86}}, method="full")
    assert d.verdict == "behind_baseline" and d.finding in ("overfitting", "healthy")
    assert "it learned them, but carries less over" in d.evidence[1]
    assert d.remedies[0].startswith("Until a fine-tuned model beats it, do not use this one")
    assert any(r.startswith("Add labelled examples") for r in d.remedies)


def test_a_tie_within_noise_keeps_the_verdict_and_says_as_good_as():
    # 250 validation rows: the band of the difference is about ±0.06
    history = curve([0.6, 0.4, 0.3], [0.55, 0.45, 0.4], [0.8, 0.85, 0.85], [0.82, 0.87, 0.86])
    alone = diagnose(history, {}, BIG).verdict
    for base, band in ((0.86, "0.063"), (0.89, "0.060")):
        d = diagnose(history, {}, {**BIG, "baselines": {TFIDF: base}})
        assert d.verdict == alone and d.finding is None and not d.baseline
        assert d.evidence[0].startswith(f"A simple baseline does as well: '{TFIDF}'")
        assert f"within the ±{band} that 250 validation rows allow" in d.evidence[0]
    d = diagnose(history, {}, {**BIG, "baselines": {TFIDF: 0.93}})
    assert d.verdict == "behind_baseline" and d.finding == alone
    # tiny data, baseline 0.2 ahead but 6 validation rows: noise, the data verdict stays
    tiny = {"n_train": 54, "n_validation": 6, "label_counts": {"a": 27, "b": 27},
            "baselines": {TFIDF: 0.83}}
    d = diagnose(curve([0.6, 0.3], [0.6, 0.5], [0.6, 0.63], [0.8, 0.96]), {}, tiny)
    assert d.verdict == "too_little_data"


def test_losing_to_a_learnable_baseline_at_chance_names_the_learning_rate_first():
    history = curve([0.69, 0.69, 0.69], [0.69, 0.69, 0.69], [0.5, 0.51, 0.5], [0.5, 0.5, 0.5])
    d = diagnose(history, {}, {**BIG, "baselines": {TFIDF: 0.8}})
    assert d.verdict == "behind_baseline" and d.finding == "no_signal"
    assert d.remedies[0].startswith("Raise the learning rate (for example 3 to 10 times)")
    # a baseline that itself scores about chance does not make a loss: labels unlearnable
    d = diagnose(history, {}, {**BIG, "baselines": {TFIDF: 0.56, "always a": 0.33}})
    assert d.verdict == "no_signal" and d.remedies[0].startswith("Check the labels")


@pytest.mark.parametrize("task, metric, title", [
    ("multi-label", "micro_f1", "micro-F1"), ("regression", "pearson", "Pearson correlation"),
    ("ner", "f1", "entity F1")])
def test_every_task_with_baselines_gets_the_baseline_verdict(task, metric, title):
    history = curve([0.9, 0.8, 0.7], [0.9, 0.85, 0.8], [0.2, 0.28, 0.3], [0.22, 0.3, 0.33])
    data = {"n_train": 800, "n_validation": 300, "baselines": {"a simple baseline": 0.72}}
    d = diagnose(history, {}, data, title, task=task, metric=metric)
    assert d.verdict == "behind_baseline", d.evidence
    assert d.evidence[0].startswith(f"'a simple baseline' scores 0.72 validation {title}, the "
                                    "fine-tuned model 0.30: 42 points behind")


def test_a_metric_where_lower_is_better_compares_the_right_way():
    from finetuner.evaluation.curves import Curves

    best = {"step": 1, "val_metric": 0.9, "train_metric": 0.8}
    curves = Curves([best], best, 400, "MAE", 0.0, {})
    ahead = baseline_gap(curves, {"ridge": 0.5}, higher_is_better=False)
    assert ahead["behind"] and round(ahead["gap"], 2) == 0.4
    assert not baseline_gap(curves, {"ridge": 1.2}, higher_is_better=False)["behind"]
    assert baseline_gap(curves, {"ridge": 0.5})["gap"] < 0  # read as higher-is-better: ahead


def test_the_warning_reaches_try_it_and_the_model_card():
    from finetuner.serving import tryit
    from finetuner.serving.export import _card_diagnosis
    from finetuner.ui.render import diagnosis_html

    history = curve([0.69, 0.68, 0.67], [0.69, 0.69, 0.68], [0.55, 0.58, 0.6], [0.56, 0.6, 0.62])
    d = diagnose(history, {}, {**BIG, "baselines": {TFIDF: 0.9}}).to_dict()
    text = tryit.warning({"diagnosis": d})
    assert text.startswith("This model does worse than a simple baseline: validation macro-F1 "
                           f"0.60 against 0.90 for '{TFIDF}', 30 points behind on 250")
    assert "Results tab" in text
    card = _card_diagnosis(d)
    first = f"> **Warning:** {warning(d, 'the diagnosis below')}"
    assert card[:4] == ["", "## Diagnosis", "", first]
    assert card[5] == f"**{d['title']}**"
    assert "ft-verdict-bad" in diagnosis_html(d) and "behind_baseline" in diagnosis_html(d)
    healthy = diagnose(curve([0.5], [0.5], [0.9], [0.91]), {}, BIG).to_dict()
    assert tryit.warning({"diagnosis": healthy}) == "" and tryit.warning(None) == ""
    assert not any("Warning" in line for line in _card_diagnosis(healthy))
    old = {"verdict": "behind_baseline", "title": "Worse", "evidence": [], "remedies": []}
    assert warning(old).startswith("This model does worse than a simple baseline on the")


def test_try_it_reads_the_warning_from_the_runs_results(tmp_path):
    from finetuner.results import write_results
    from finetuner.ui.tab_try import TryTab

    class Run:
        results = tmp_path / "results.json"

    history = curve([0.69, 0.68, 0.67], [0.69, 0.69, 0.68], [0.55, 0.58, 0.6], [0.56, 0.6, 0.62])
    d = diagnose(history, {}, {**BIG, "baselines": {TFIDF: 0.9}}).to_dict()
    write_results(Run.results, {"status": "completed", "diagnosis": d})
    html = TryTab._try_warning(Run)
    assert "ft-warning" in html and "does worse than a simple baseline" in html
    write_results(Run.results, {"status": "completed", "diagnosis": {**d, "verdict": "healthy"}})
    assert TryTab._try_warning(Run) == ""
    Run.results = tmp_path / "missing.json"
    assert TryTab._try_warning(Run) == ""


def test_labels_never_predicted_are_named_with_their_training_counts():
    """Multi-label: a label the kept model never answers on validation, although validation
    holds it, is named (with how few training examples it had), not left out in silence."""
    from finetuner.evaluation.diagnostics import never_predicted_note

    validation = {"per_label": {
        "ch1": {"support": 12, "predicted": 10, "f1": 0.7},
        "ch3": {"support": 2, "predicted": 0, "f1": 0.0},
        "ch7": {"support": 0, "predicted": 0, "f1": 0.0}}}  # absent: nothing to say
    note = never_predicted_note(validation, {"label_counts": {"ch1": 80, "ch3": 1}})
    assert "'ch3' (1 training example)" in note and "ch1" not in note and "ch7" not in note
    assert "too rare to learn" in note
    assert never_predicted_note({"per_label": {"a": {"support": 3, "predicted": 1}}}, {}) is None
    assert never_predicted_note({"accuracy": 0.9}, {}) is None  # classification: no table


def test_a_solved_task_gets_no_over_confidence_note_about_losses_near_zero():
    """Seen on the example reviews: every score 1.00 and the validation loss 0.0002 -> 0.0004
    read "Validation loss rose from 0.000 to 0.000 ... grew over-confident". A rise too small
    to show is not worth a note."""
    history = curve([0.05, 0.001, 0.0005, 0.0004], [0.0003, 0.0002, 0.0003, 0.0004],
                    [1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0])
    d = diagnose(history, {}, BIG)
    assert not any("over-confident" in n for n in d.notes), d.notes


def test_the_table_of_wrong_test_examples_says_when_there_are_none():
    """An empty table showed gradio's "1 2 3" header under "Test examples the model got
    wrong"; it says that all were right instead."""
    from finetuner.ui.render_results import errors_frame

    right = [{"text": "a", "label": "x", "correct": True}] * 40
    assert list(errors_frame(right).columns) == [
        "None: the model got all 40 test examples right."]
    mixed = right + [{"text": "b", "label": "y", "predicted": "x", "correct": False}]
    frame = errors_frame(mixed)
    assert list(frame.columns) == ["text", "label", "predicted"] and len(frame) == 1
    pairs = [{"text": "a", "text_pair": "b", "true": "x", "predicted": "y", "correct": False}]
    assert list(errors_frame(pairs).columns) == ["text", "second text", "true", "predicted"]


def test_the_page_shows_the_run_log_in_its_own_words():
    """The log box on the Train tab speaks the cards' words; other lines stay as written
    (a status line can quote a file or a label called 'f1')."""
    from finetuner.ui.words import plain_log

    log = ("13:19:17 eval step 0: validation micro_f1 0.8301 macro_f1 0.3708 loss 0.0266 | "
           "train micro_f1 0.9094 *best*\n"
           "13:20:01 step 2/222 epoch 0.03 loss 0.0622 lr 1.43e-05 25 samples/s ETA 1m\n"
           "13:11:14 [preparing] Reading f1_scores.csv with labels f1, lr")
    lines = plain_log(log).split("\n")
    assert lines[0] == ("13:19:17 eval step 0: validation Micro-F1 0.8301 Macro-F1 0.3708 "
                        "loss 0.0266 | train Micro-F1 0.9094 (best so far)")
    assert "learning rate 1.43e-05 25 examples/s" in lines[1]
    assert lines[2] == "13:11:14 [preparing] Reading f1_scores.csv with labels f1, lr"


def test_the_thresholds_rule_is_said_one_clause_a_way():
    from finetuner.ui.render_results import thresholds_html

    page = thresholds_html({"threshold_rule": {"rule": "micro", "check": {
        "per_label": 0.419, "one": 0.447, "micro": 0.455}}})
    assert ("scored on the other (micro-F1): each label on its own 0.419; one threshold for "
            "all 0.447; one per label, chosen together 0.455 (chosen).") in page
    assert "against" not in page
