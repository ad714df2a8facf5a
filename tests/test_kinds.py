"""Multi-label classification, regression and long documents: reading the data, the metrics,
thresholds, windows, and each kind end to end (a tiny random model in process, the embedded
model through the CLI with the export loaded in plain transformers)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    EXAMPLES,
    ROOT,
    assert_record_scores_the_validation,
    card_logits,
    card_recipe,
    write_csv,
)

from finetuner.config import DataConfig, RunConfig
from finetuner.errors import DataError


def cfg(task, path, **data):
    return RunConfig(task=task, data=DataConfig(train_file=str(path), **data))


def prepare(task, path, count_tokens=None, **data):
    from finetuner.tasks import get_task

    return get_task(task).impl().prepare(cfg(task, path, **data), count_tokens=count_tokens)


def clause_rows(n=90):
    kinds = ["pay", "end", "secret"]
    rows = []
    for i in range(n):
        chosen = [k for j, k in enumerate(kinds) if (i >> j) & 1]
        rows.append({"clause": f"clause {i} about " + " and ".join(chosen or ["nothing"]),
                     "labels": ";".join(chosen)})
    return rows


# ---------------------------------------------------------------------------- multi-label


def test_multilabel_reads_joined_labels_and_empty_cells_as_none(tmp_path):
    path = write_csv(tmp_path / "c.csv", clause_rows())
    p = prepare("multi-label", path)
    assert p.labels == ["end", "pay", "secret"]
    assert p.report.columns["label"] == "labels" and p.report.columns["text"] == "clause"
    assert p.report.extra["options"]["separator"] == ";"
    every = p.train + p.validation + p.test
    assert len(every) == 90  # an empty label cell is a row with no label, not a dropped row
    assert sum(1 for e in every if not e["label"]) == 90 // 8 + 1
    assert {tuple(e["label"]) for e in every} >= {(), ("end", "pay", "secret")}
    counts = p.report.label_counts["train"]
    assert counts["(none)"] == sum(1 for e in p.train if not e["label"])
    assert counts["pay"] == sum(1 for e in p.train if "pay" in e["label"])
    pairs = {(a, b): n for a, b, n in p.report.extra["cooccurrence"]}
    assert pairs[("end", "pay")] == sum(1 for e in p.train if {"end", "pay"} <= set(e["label"]))
    assert any(f.code == "multilabel" and "carry none" in f.message for f in p.report.findings)


def test_multilabel_separator_override_and_binary_columns(tmp_path):
    rows = [{"text": f"t {i}", "tags": "a|b" if i % 2 else "a, c|b"} for i in range(40)]
    path = write_csv(tmp_path / "s.csv", rows)
    assert prepare("multi-label", path).labels == ["a", "a, c", "b"]  # '|' detected
    assert prepare("multi-label", path, label_separator=",").labels == ["a", "a|b", "c|b"]
    binary = [{"text": f"text {i}", "toxic": i % 2, "spam": int(i % 3 == 0), "id": i}
              for i in range(60)]
    path = write_csv(tmp_path / "b.csv", binary)
    p = prepare("multi-label", path)
    assert p.report.columns["label"] == "toxic,spam" and p.labels == ["spam", "toxic"]
    assert p.report.extra["options"]["label_format"] == "columns"
    row7 = next(e for e in p.train + p.validation + p.test if e["text"] == "text 6")
    assert row7["label"] == ["spam"]
    binary[5]["toxic"] = "maybe"  # not 0/1: that row is dropped, and the report says why
    p = prepare("multi-label", write_csv(tmp_path / "b2.csv", binary),
                label_column="toxic,spam")
    assert p.report.dropped == {"a label value that is not 0 or 1": 1}


def test_multilabel_refuses_data_it_cannot_learn(tmp_path):
    rows = [{"text": f"t {i}", "labels": ""} for i in range(30)]
    with pytest.raises(DataError, match="No row of the training data carries a label"):
        prepare("multi-label", write_csv(tmp_path / "e.csv", rows))
    train = write_csv(tmp_path / "tr.csv", clause_rows())
    test = write_csv(tmp_path / "te.csv", [{"clause": "x", "labels": "pay;refund"}])
    with pytest.raises(DataError, match="'refund' that never occur"):
        prepare("multi-label", train, test_file=str(test))
    rows = clause_rows() + [{"clause": f"odd {i}", "labels": "rare"} for i in range(3)]
    p = prepare("multi-label", write_csv(tmp_path / "r.csv", rows))
    assert p.report.extra["too_rare"] == ["rare"]
    assert any(f.code == "too_rare" for f in p.report.findings)


def test_multilabel_metrics_by_hand():
    from finetuner.metrics.multilabel import multilabel_metrics

    gold = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 1]])
    pred = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]])
    m = multilabel_metrics(gold, pred, ["a", "b", "c"])
    # tp 2, fp 1, fn 2: P 2/3, R 1/2, F1 4/7
    assert m["micro_f1"] == round(4 / 7, 4)
    # a: F1 1; b: 0 (one missed, one wrong); c: 0 (missed) -> macro 1/3
    assert m["macro_f1"] == round(1 / 3, 4)
    assert m["subset_accuracy"] == 0.25
    assert m["per_label"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2,
                                   "predicted": 2}
    assert m["per_label"]["b"]["support"] == 1 and m["per_label"]["b"]["predicted"] == 1
    # a label absent from both the answers and the predictions is left out of macro-F1
    m = multilabel_metrics(gold[:, :2], pred[:, :2] * 0 + np.array([1, 0]), ["a", "b"])
    assert m["per_label"]["b"]["support"] == 1 and m["macro_f1"] == round((2 / 3 + 0) / 2, 4)


def test_thresholds_are_tuned_per_label_and_need_enough_positives():
    from finetuner.metrics.multilabel import tune_thresholds

    rng = np.random.default_rng(0)
    gold = rng.random((400, 2)) < 0.3
    # label a: positives score 0.25-0.45, negatives 0-0.2 -> 0.5 finds none, ~0.25 finds all
    probs = np.where(gold, 0.25 + 0.2 * rng.random((400, 2)), 0.2 * rng.random((400, 2)))
    probs[:, 1] = np.where(gold[:, 1], 0.9, 0.1)
    t = tune_thresholds(gold, probs, ["a", "b"])
    assert 0.2 <= t["a"] <= 0.25 and t["b"] == 0.5  # a tie keeps the value nearest 0.5
    few = np.zeros((50, 1), dtype=bool)
    few[:3] = True
    assert tune_thresholds(few, np.where(few, 0.3, 0.1), ["x"]) == {"x": 0.5}



def _noisy_labels(rng, rows: int, labels: int):
    """Many labels with few positives each and weak, overlapping scores: the GoEmotions kind,
    where each label's own best F1 on validation is tuned on a handful of positives."""
    gold = rng.random((rows, labels)) < 0.02
    probs = 0.1 + 0.4 * gold * rng.random((rows, labels)) + 0.5 * rng.random((rows, labels)) ** 3
    return gold, probs


def _micro_f1(gold, pred) -> float:
    tp, fp, fn = (gold & pred).sum(), (~gold & pred).sum(), (gold & ~pred).sum()
    return 2 * tp / (2 * tp + fp + fn)


def test_the_threshold_rule_is_the_one_that_holds_up_on_unseen_rows():
    """Per-label thresholds tuned on few positives each overfit validation and say yes too
    often; the rule is chosen on held-out halves of validation, and the chosen rule scores
    better than each label's own best on rows it never saw. With plenty of positives and
    labels that need different thresholds, a threshold per label is kept."""
    from finetuner.metrics.multilabel import _rule, choose_thresholds

    rng = np.random.default_rng(3)
    labels = [f"l{j}" for j in range(28)]
    gold, probs = _noisy_labels(rng, 1000, 28)
    fresh_gold, fresh_probs = _noisy_labels(rng, 4000, 28)
    thresholds, rule, check = choose_thresholds(gold, probs, labels)
    assert rule in ("one", "micro") and check[rule] > check["per_label"], check
    chosen = fresh_probs >= np.array([thresholds[n] for n in labels])
    per_label = fresh_probs >= _rule("per_label", gold, probs)
    assert _micro_f1(fresh_gold, chosen) > _micro_f1(fresh_gold, per_label) + 0.05

    # two well-separated labels that need thresholds far apart: one for all cannot serve both
    gold = rng.random((600, 2)) < 0.4
    probs = np.stack([np.where(gold[:, 0], 0.3, 0.1), np.where(gold[:, 1], 0.9, 0.7)], 1)
    probs = probs + 0.05 * rng.random((600, 2))
    thresholds, rule, check = choose_thresholds(gold, probs, ["a", "b"])
    assert rule in ("per_label", "micro") and check[rule] == 1.0 and check["one"] < 1.0
    assert thresholds["a"] < 0.35 < 0.7 < thresholds["b"] <= 0.95
    # too few rows to halve: each label at its own best, no cross-check
    assert choose_thresholds(gold[:10], probs[:10], ["a", "b"])[1:] == ("per_label", {})

# ---------------------------------------------------------------------------- regression


def test_regression_reads_numbers_and_drops_the_rest(tmp_path):
    rows = [{"review": f"review {i}", "score": i / 10} for i in range(60)]
    rows[3]["score"] = "n/a"
    rows[4]["score"] = ""
    p = prepare("regression", write_csv(tmp_path / "r.csv", rows))
    assert p.labels == ["score"] and p.report.dropped == {"a target that is not a number": 2}
    y = [e["label"] for e in p.train]
    opts = p.report.extra["options"]
    assert opts["target_mean"] == pytest.approx(np.mean(y))
    assert opts["target_std"] == pytest.approx(np.std(y))
    # the split is stratified by range: validation spans low and high targets
    val = sorted(e["label"] for e in p.validation)
    assert val[0] < 1.5 and val[-1] > 4.5
    assert sum(p.report.label_counts["train"].values()) == len(p.train)
    with pytest.raises(DataError, match="only 2 distinct"):
        prepare("regression", write_csv(tmp_path / "c.csv", [
            {"text": f"t {i}", "label": i % 2} for i in range(40)]))


def test_numeric_labels_are_detected_and_classification_warns():
    import pandas as pd

    from finetuner.tasks.suggest import suggest_task

    ratings = pd.read_csv(EXAMPLES / "ratings.csv")
    assert suggest_task(ratings)[0] == "regression"
    clauses = pd.read_csv(EXAMPLES / "clauses.csv")
    assert suggest_task(clauses)[0] == "multi-label"
    assert suggest_task(pd.read_csv(EXAMPLES / "sentiment.csv")) is None
    stars = pd.DataFrame({"text": [f"t {i}" for i in range(50)], "stars": [i % 5 + 1
                                                                           for i in range(50)]})
    assert suggest_task(stars) is None  # five star ratings stay classes
    with pytest.raises(DataError, match="choose the task 'Regression") as info:
        prepare("classification", EXAMPLES / "ratings.csv")
    assert info.value.code == "looks_like_regression"


def test_regression_metrics_by_hand():
    from scipy.stats import pearsonr, spearmanr

    from finetuner.metrics.regression import regression_metrics

    gold = [1.0, 2.0, 3.0, 4.0]
    pred = [1.5, 1.5, 3.5, 5.0]
    m = regression_metrics(gold, pred)
    assert m["mae"] == round((0.5 + 0.5 + 0.5 + 1.0) / 4, 4)
    assert m["rmse"] == round(float(np.sqrt((0.25 * 3 + 1) / 4)), 4)
    assert m["pearson"] == round(float(pearsonr(gold, pred)[0]), 4)
    assert m["spearman"] == round(float(spearmanr(gold, pred)[0]), 4)
    assert m["r2"] == round(1 - 1.75 / 5.0, 4)
    assert regression_metrics(gold, [2.5] * 4)["pearson"] == 0.0  # constant: no correlation


def test_folding_the_target_scale_keeps_every_prediction(tiny_model):
    import torch
    import transformers

    from finetuner.tasks import regression

    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=1, problem_type="regression").eval()
    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    examples = [{"text": "a fine film"}, {"text": "dull and slow"}]
    options = {"target_mean": 3.2, "target_std": 1.7}
    feats = regression.featurize(examples, tok, 32, {}, **options)
    enc = tok([e["text"] for e in examples], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = regression.values(list(model(**enc).logits.numpy()), feats, examples, options)
        saved = regression.before_save(model, options)
        raw = model(**enc).logits[:, 0].numpy()
    assert np.allclose(raw, before, atol=1e-4)  # the model now outputs the number itself
    assert saved["target_mean"] == 0.0 and saved["trained_target_std"] == 1.7
    after = regression.values(list(raw[:, None]), feats, examples, saved)
    assert np.allclose(after, before, atol=1e-4)


# ---------------------------------------------------------------------------- windows


def long_rows(n=40, words=120):
    """Documents whose label word sits only at the end: a cut at the start never sees it."""
    rows = []
    for i in range(n):
        label = "alpha" if i % 2 else "omega"
        rows.append({"text": f"doc {i} " + " ".join(["filler"] * words) + f" {label} {label}",
                     "label": label})
    return rows


def test_long_texts_are_read_in_windows_and_pooled(tmp_path, tiny_model):
    import transformers

    from finetuner.tasks import classification, windows

    tok = transformers.AutoTokenizer.from_pretrained(tiny_model)
    path = write_csv(tmp_path / "long.csv", long_rows())

    def count(texts, pairs):
        return [len(tok(t)["input_ids"]) for t in texts]

    p = prepare("classification", path, count_tokens=count, max_length=32)
    opts = p.report.extra["options"]
    assert opts["windows"] and opts["window_overlap"] == 8 and opts["pooling"] == "mean"
    note = next(f for f in p.report.findings if f.code == "windows")
    assert "100.0% of the texts are longer than 32 tokens" in note.message
    feats = classification.featurize(p.train[:3], tok, 32, {"alpha": 0, "omega": 1}, **opts)
    per_doc = windows.windows_of(feats, 3)
    n_tokens = len(tok(p.train[0]["text"])["input_ids"])
    expected = 1 + -(-(n_tokens - 32) // (32 - 2 - 8))  # windows of 30 words, 8 overlapping
    assert per_doc[0] == expected > 2 and all(len(f["input_ids"]) <= 32 for f in feats)
    # every window carries the document's label, and the last one holds the label word
    assert {f["labels"] for f in feats if f["doc"] == 0} == {0 if p.train[0]["label"] == "alpha"
                                                            else 1}
    last = [f for f in feats if f["doc"] == 0][-1]
    assert p.train[0]["label"] in tok.decode(last["input_ids"])
    outputs = [np.array([float(i), -float(i)]) for i in range(len(feats))]
    first = list(range(per_doc[0]))
    assert np.allclose(windows.pool(outputs, feats, 3, "mean")[0], [np.mean(first),
                                                                    -np.mean(first)])
    second = range(per_doc[0], per_doc[0] + per_doc[1])
    assert np.allclose(windows.pool(outputs, feats, 3, "max")[1], [max(second), -min(second)])
    capped = classification.featurize(p.train[:1], tok, 32, {}, **{**opts, "max_windows": 2})
    assert len(capped) == 2
    p = prepare("classification", path, count_tokens=count, max_length=32,
                long_documents="truncate")
    assert "windows" not in (p.report.extra.get("options") or {})
    assert any(f.code == "truncation" for f in p.report.findings)


def train_tiny(tmp_path, tiny_model, task, data, steps=2, **data_cfg):
    from finetuner.runs import EventWriter, create_run
    from finetuner.training import loop as training

    config = RunConfig.from_dict({
        "task": task, "data": {"train_file": str(data), **data_cfg},
        "model": {"name_or_path": str(tiny_model)},
        "training": {"epochs": 1, "max_steps": steps, "batch_size": 8,
                     "train_eval_samples": 8, "checkpoints": False, "precision": "fp32"}})
    run = create_run(tmp_path / "runs", config)
    ctx = training.Context(run=run, config=config, events=EventWriter(run.events),
                           should_stop=lambda: False)
    return run, training.train(ctx)


def test_windows_end_to_end_predict_the_pooled_answer(tmp_path, tiny_model):
    import torch
    import transformers

    from finetuner.serving.inference import Predictor

    path = write_csv(tmp_path / "long.csv", long_rows(48, words=60))
    run, results = train_tiny(tmp_path, tiny_model, "classification", path, max_length=32)
    assert results["status"] == "completed" and results["test"]["n"] == len(
        [json.loads(x) for x in run.predictions.read_text().splitlines()])
    predictor = Predictor.load(run.root)
    assert predictor.options.windows
    text = long_rows(1, words=60)[0]["text"]
    pred = predictor.predict(text)
    feats = predictor.impl.featurize([{"text": text}], predictor.tokenizer, 32, {},
                                     **predictor.options.hooks())
    assert len(feats) > 1
    with torch.no_grad():
        logits = [predictor.model(input_ids=torch.tensor([f["input_ids"]])).logits[0].numpy()
                  for f in feats]
    mean = np.mean(logits, axis=0) / predictor.temperature
    probs = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    assert np.allclose([pred["probabilities"][n] for n in predictor.labels], probs, atol=1e-4)
    # the model card's recipe, run as written on the export in plain transformers, reads the
    # whole document the same way
    card = (run.model / "README.md").read_text()
    assert "## Long documents" in card and "overlapping windows of 32 tokens" in card
    recipe = card.split("## Long documents", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    plain = {"tokenizer": transformers.AutoTokenizer.from_pretrained(run.model), "text": text,
             "model": transformers.AutoModelForSequenceClassification.from_pretrained(
                 run.model).eval()}
    exec(recipe, plain)  # noqa: S102 - the card's own snippet
    assert np.allclose(plain["logits"].numpy(), np.mean(logits, axis=0), atol=1e-4)


def test_multilabel_and_regression_end_to_end_in_process(tmp_path, tiny_model):
    from finetuner.serving.inference import Predictor

    run, results = train_tiny(tmp_path, tiny_model, "multi-label",
                              write_csv(tmp_path / "c.csv", clause_rows(120)), steps=4)
    assert results["status"] == "completed" and results["metric"] == "micro_f1"
    test = results["test"]
    assert {"micro_f1", "macro_f1", "subset_accuracy", "per_label"} <= set(test)
    assert set(results["thresholds"]) == set(results["labels"]) == {"end", "pay", "secret"}
    assert set(results["baselines"]) == {"none", "tfidf_logreg"}
    assert_record_scores_the_validation(run, results)
    assert results["baselines"]["none"]["validation"]["micro_f1"] == 0.0
    assert results["calibration"] is None and results["diagnosis"]["verdict"]
    meta = json.loads((run.model / "finetuner.json").read_text())
    assert meta["options"]["thresholds"] == results["thresholds"]
    # how the thresholds were set is recorded, served and said on the results page
    from finetuner.metrics.multilabel import RULE_WORDS
    from finetuner.ui.render_results import metrics_html

    rule = results["threshold_rule"]["rule"]
    assert rule in RULE_WORDS and meta["options"]["threshold_rule"] == rule
    assert f"Decision thresholds: {RULE_WORDS[rule]}" in metrics_html(results)
    pred = Predictor.load(run.root).predict("clause about pay and secret")
    assert set(pred["probabilities"]) == {"end", "pay", "secret"}
    assert pred["labels"] == [n for n in ["end", "pay", "secret"]
                              if pred["probabilities"][n] >= results["thresholds"][n]]
    rows = [{"review": f"superb {'good ' * (i % 5)}film {i}", "score": float(i % 5)}
            for i in range(80)]
    run, results = train_tiny(tmp_path / "r", tiny_model, "regression",
                              write_csv(tmp_path / "r.csv", rows), steps=4)
    test = results["test"]
    assert {"mae", "rmse", "pearson", "spearman", "r2"} <= set(test)
    assert results["baselines"]["mean"]["test"]["pearson"] is None  # undefined, not 0
    assert_record_scores_the_validation(run, results)
    worst = [json.loads(x) for x in run.predictions.read_text().splitlines()]
    assert abs(worst[0]["error"]) >= abs(worst[-1]["error"])
    value = Predictor.load(run.root).predict("superb good film")["value"]
    assert 0.0 - 3 <= value <= 4.0 + 3


# ---------------------------------------------------------------------------- CLI, real model


def cli(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "finetuner", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_multilabel_with_the_default_model_through_the_cli(tmp_path):
    import torch
    from transformers import AutoTokenizer

    out = tmp_path / "clauses"
    proc = cli("train", "--task", "multi-label", "--data", EXAMPLES / "clauses.csv",
               "--max-steps", "16", "--lr", "3e-4", "--evals-per-epoch", "2",
               "--max-length", "48", "--output", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Test: micro_f1" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    labels = ["confidentiality", "liability", "payment", "termination"]
    assert results["labels"] == labels
    # a learnable task: well above answering "none" and above chance co-occurrence
    assert results["test"]["micro_f1"] > 0.6, results["test"]
    proc = cli("predict", "--run", out, "--json", "--text",
               "Invoices are payable within forty-five days of receipt.")
    pred = json.loads(proc.stdout.splitlines()[0])
    assert set(pred["probabilities"]) == set(labels) and "thresholds" in pred
    recipe = card_recipe(out / "model")  # the card's own snippet, in plain transformers
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert recipe["model"].config.problem_type == "multi_label_classification"
    assert "text_logits" in recipe  # the default body is read by its mean-pooled vector
    probs = torch.sigmoid(card_logits(recipe, tok(pred["text"], return_tensors="pt")))[0]
    assert np.allclose(probs.numpy(), [pred["probabilities"][n] for n in labels], atol=1e-4)
    card = (out / "model" / "README.md").read_text()
    assert "thresholds = {" in card and "torch.sigmoid" in card
    assert "# tuned on the validation split: " in card


@pytest.mark.slow
def test_regression_with_the_default_model_through_the_cli(tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "ratings"
    proc = cli("train", "--task", "regression", "--data", EXAMPLES / "ratings.csv",
               "--max-steps", "16", "--lr", "3e-4", "--evals-per-epoch", "2",
               "--max-length", "48", "--output", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["labels"] == ["score"] and results["metric"] == "pearson"
    assert results["test"]["pearson"] > 0.5, results["test"]
    # better than always predicting the training mean
    assert results["test"]["mae"] < results["baselines"]["mean"]["test"]["mae"]
    text = "The camera works well, is sturdy and is great value."
    proc = cli("predict", "--run", out, "--json", "--text", text)
    value = json.loads(proc.stdout.splitlines()[0])["value"]
    recipe = card_recipe(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    raw = float(card_logits(recipe, tok(text, return_tensors="pt"))[0, 0])
    assert abs(raw - value) < 1e-3 and value > 5.0  # plain transformers gives the score itself
