"""Suspected label errors: confident learning on out-of-fold probabilities, end to end."""

from __future__ import annotations

import csv

import numpy as np
from conftest import write_csv

from finetuner.config import RunConfig
from finetuner.evaluation import labelnoise
from finetuner.evaluation.diagnostics import diagnose, label_noise_note
from finetuner.runs import create_run
from finetuner.server.jobs import JobManager


def test_flipped_labels_in_separable_clusters_are_found():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, size=(3, 16))
    y = np.repeat(np.arange(3), 200)
    x = centers[y] + rng.normal(0, 1, size=(600, 16))
    flipped = rng.choice(600, 30, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + 1) % 3
    probs = labelnoise.out_of_fold(x, noisy, 3)
    found = labelnoise.find(probs, noisy)
    hits = set(found) & set(flipped.tolist())
    # confident learning trades recall for precision: it flags only what the out-of-fold
    # probabilities contradict beyond each label's own average confidence (measured: 24 of 30
    # found, none wrongly)
    assert len(hits) / 30 >= 0.7, "recall"
    assert len(hits) / max(1, len(found)) >= 0.9, "precision"
    # most suspicious first: the given label's probability rises down the list
    given = [probs[i, noisy[i]] for i in found]
    assert given[0] <= given[-1]


def test_clean_labels_flag_almost_nothing():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(2), 150)
    x = np.array([[4.0, 0.0], [-4.0, 0.0]])[y] + rng.normal(0, 1, size=(300, 2))
    assert len(labelnoise.find(labelnoise.out_of_fold(x, y, 2), y)) <= 3


def test_a_label_the_sample_lacks_does_not_break_the_check():
    rng = np.random.default_rng(2)
    y = np.repeat(np.array([0, 2]), 50)  # label 1 exists in the label list only
    x = np.array([[3.0], [0.0], [-3.0]])[y] + rng.normal(0, 0.5, size=(100, 1))
    probs = labelnoise.out_of_fold(x, y, 3)
    assert probs.shape == (100, 3) and np.allclose(probs[:, 1], 0)
    assert labelnoise.find(probs, y) == []


def test_the_diagnosis_mentions_many_suspects_only():
    history = [{"step": s, "epoch": s / 10, "train_loss": 0.3, "eval_loss": 0.3,
                "val_metric": 0.9, "train_metric": 0.92} for s in (10, 20, 30)]
    data = {"n_train": 2000, "n_validation": 400, "label_counts": {"a": 1000, "b": 1000}}
    many = {"checked": 2000, "flagged": 180, "share": 0.09}
    d = diagnose(history, {}, {**data, "label_issues": many})
    assert any("180 of the 2,000" in n for n in d.notes)
    few = {"checked": 2000, "flagged": 20, "share": 0.01}
    assert not any("mislabelled" in n for n in diagnose(history, {}, {
        **data, "label_issues": few}).notes)
    assert label_noise_note(None) is None


def test_a_real_run_lists_the_rows_whose_label_was_flipped(tmp_path, tiny_model):
    """A tiny BERT learns 'good'/'bad' words; 8 of 200 rows carry the opposite label. The
    check runs in the worker after training, and the flipped rows top its CSV."""
    rows = [{"text": ("good great fine " if i % 2 else "bad awful poor ") + f"item {i}",
             "label": "pos" if i % 2 else "neg"} for i in range(200)]
    flipped = set(range(3, 200, 25))
    for i in flipped:
        rows[i]["label"] = "neg" if rows[i]["label"] == "pos" else "pos"
    for row in rows:  # cells a spreadsheet would evaluate (all alike: no clue to the flips)
        row["text"] = "=" + row["text"]
    data = write_csv(tmp_path / "train.csv", rows)
    cfg = RunConfig.from_dict({
        "data": {"train_file": str(data)}, "model": {"name_or_path": str(tiny_model)},
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3}})
    run = create_run(tmp_path / "runs", cfg)
    manager = JobManager(warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=180)
    assert results["status"] == "completed", results
    info = results["label_issues"]
    assert info["checked"] == info["n_train"] == results["data"]["train"]
    with open(run.root / "label_issues.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert table and set(table[0]) == {"file_row", "text", "given_label", "suggested_label",
                                       "probability_of_given", "probability_of_suggested",
                                       "check_right_when_it_suggests_this"}
    # file rows: line 2 is the first data row
    flipped_rows = {i + 2 for i in flipped}
    in_train = {int(r["file_row"]) for r in table} & flipped_rows
    assert in_train, table[:5]
    top = {int(r["file_row"]) for r in table[:len(in_train)]}
    assert len(top & flipped_rows) >= len(in_train) - 1
    for r in table:
        if int(r["file_row"]) in flipped_rows:
            assert r["given_label"] != r["suggested_label"]
            # a spreadsheet shows the text, never runs it
            assert r["text"].startswith("'="), r["text"]
        assert not any(v.startswith(("=", "+", "@")) for v in r.values()), r
    assert info["flagged"] == len(table) and len(info["rows"]) == min(len(table), 50)


def test_no_label_note_when_the_model_learned_little():
    """Flags from features of a model that learned nothing say nothing about the labels."""
    history = [{"step": s, "epoch": s / 10, "train_loss": 0.69, "eval_loss": 0.69,
                "val_metric": 0.5, "train_metric": 0.5} for s in (10, 20, 30)]
    data = {"n_train": 2000, "n_validation": 400, "label_counts": {"a": 1000, "b": 1000},
            "label_issues": {"checked": 2000, "flagged": 600, "share": 0.3}}
    d = diagnose(history, {}, data)
    assert d.verdict == "no_signal"
    assert not any("mislabelled" in n for n in d.notes)


def test_the_label_error_table_says_what_was_flagged_and_how_sure_the_check_is():
    from finetuner.ui.render_results import label_issues_frame, label_issues_title

    info = {"checked": 801, "n_train": 801, "flagged": 10, "agreement": 0.82,
            "rows": [{"row": 7, "text": "You won't regret it!", "pair": None,
                      "given": "positive", "suggested": "negative",
                      "given_probability": 0.001, "suggested_probability": 0.999,
                      "check_precision": 0.74}]}
    title = label_issues_title(info)
    assert "10 flagged among 801 training rows checked" in title
    assert "agrees with 82% of the given labels; below 90% its flags are places to look, " \
           "not findings" in title
    assert "the 1 most suspicious shown" in title
    frame = label_issues_frame(info)
    assert frame.loc[0, "chance the given label is right"] == "<1%"
    assert frame.loc[0, "check right when it suggests this"] == "74%"


def test_a_check_too_weak_to_trust_flags_nothing_and_says_why(tmp_path, monkeypatch):
    """Out-of-fold agreement under 85% (little data, a weak model): no row is accused, and
    the results page says why; a reliable check with nothing to flag says that too."""
    from types import SimpleNamespace

    from finetuner.ui.render_results import metrics_html

    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(2), 60)
    x = rng.normal(0, 1, size=(120, 4))  # features that say nothing about the labels
    monkeypatch.setattr(labelnoise, "embed", lambda *a, **k: x)
    train = [{"text": f"t{i}", "label": "ab"[c], "row": i + 2} for i, c in enumerate(y)]
    (tmp_path / "label_issues.csv").write_text("stale")
    info = labelnoise.check(SimpleNamespace(), train, [{}] * 120, ["a", "b"], None, 8, None,
                            tmp_path)
    assert info["unreliable"] and info["flagged"] == 0 and info["rows"] == []
    assert info["agreement"] < labelnoise.MIN_AGREEMENT
    assert not (tmp_path / "label_issues.csv").exists()
    page = metrics_html({"metric": "macro_f1", "test": {"macro_f1": 0.5}, "label_issues": info})
    assert "Label check: no row is flagged" in page and "below the 85%" in page
    assert label_noise_note(info) is None  # and the verdict says nothing about label noise

