"""The paired test a comparison runs on its members' validation predictions
(finetuner.evaluation.paired): each record kind scores exactly like the task's own metric, a
one-row lead on 100 rows is a tie, a real lead is not, and records of other rows are never
paired."""

from __future__ import annotations

import json

import numpy as np
from scipy.stats import pearsonr
from sklearn.metrics import f1_score

from finetuner.evaluation import paired
from finetuner.server.compare import summarize


def whole(record):
    return float(paired.scores(record, np.ones((1, paired._rows(record))))[0])


def test_each_kind_scores_like_the_task_metric():
    rng = np.random.default_rng(1)
    gold, pred = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    pred[:150] = gold[:150]
    rec = {"kind": "confusion", "classes": 5, "gold": gold.tolist(), "pred": pred.tolist()}
    assert abs(whole(rec) - f1_score(gold, pred, average="macro")) < 1e-9
    g, p = rng.random((200, 6)) < 0.3, rng.random((200, 6)) < 0.3
    counts = {"kind": "counts", "tp": (g & p).sum(1).tolist(), "fp": (~g & p).sum(1).tolist(),
              "fn": (g & ~p).sum(1).tolist()}
    assert abs(whole(counts) - f1_score(g, p, average="micro")) < 1e-9
    y = rng.normal(size=150)
    yhat = y + rng.normal(size=150)
    rec = {"kind": "pearson", "gold": y.tolist(), "pred": yhat.tolist()}
    assert abs(whole(rec) - pearsonr(y, yhat)[0]) < 1e-9
    assert whole({"kind": "mean", "values": [1.0, 0.5, 0.0, 0.5]}) == 0.5


def classifier(gold, wrong):
    pred = gold.copy()
    pred[wrong] = 1 - pred[wrong]
    return {"kind": "confusion", "classes": 2, "gold": gold.tolist(), "pred": pred.tolist(),
            "fingerprint": "f"}


def test_a_one_row_lead_is_chance_and_a_real_lead_is_not():
    gold = np.arange(100) % 2
    a, b = classifier(gold, list(range(10))), classifier(gold, list(range(11)))
    t = paired.paired_test(a, b)
    assert t["rows"] == 100 and t["difference"] > 0 and t["p"] > 0.2 and t["low"] <= 0 < t["high"]
    c = classifier(gold, list(range(30)))  # 20 more rows wrong, and no row the other way
    t = paired.paired_test(a, c)
    assert t["p"] < 0.01 and t["low"] > 0
    same = paired.paired_test(a, dict(a))
    assert same["difference"] == 0 and same["p"] == 1.0
    # other rows, another split or another kind: never paired
    assert paired.paired_test(a, {**b, "fingerprint": "g"}) is None
    assert paired.paired_test(a, classifier(np.arange(90) % 2, [])) is None
    assert paired.paired_test(a, {"kind": "mean", "values": [1.0] * 100,
                                  "fingerprint": "f"}) is None


def member(tmp_path, name, validation, seconds, record):
    folder = tmp_path / name
    folder.mkdir()
    paired.write(folder, record, "f")
    return {"name": name, "run": str(folder), "status": "completed", "method": name,
            "metric": "macro_f1", "validation": validation, "test": None,
            "train_seconds": seconds, "samples_per_second": 1.0, "peak_memory_mb": 1.0,
            "trainable": 1, "total": 2, "gap": 0.0, "verdict": "", "curve": [],
            "splits": {"validation": 400}, "fingerprint": "f"}


def test_the_comparison_reads_its_members_records(tmp_path):
    """400 validation rows: a 2-point lead the unpaired band (±7 points) would call a tie is
    real when the two members disagree on 8 rows only, all in the winner's favour; a 2-point
    lead made of 20 rows each way up and down is a tie."""
    gold = np.arange(400) % 2
    full = member(tmp_path, "full", 0.90, 100, classifier(gold, list(range(40))))
    lora = member(tmp_path, "lora", 0.88, 30, classifier(gold, list(range(48))))
    out = summarize([lora, full], expected=2)
    assert out["winner"] == "full" and out["tied"] == []
    assert "LoRA is 2.0 points behind (beyond chance on a paired test of the same 400 " \
           "validation rows, p = 0.0" in out["sentence"], out["sentence"]
    mixed = classifier(gold, list(range(20, 68)))  # 20 rows right that full got wrong
    (tmp_path / "lora" / paired.FILE).write_text(json.dumps({**mixed, "fingerprint": "f"}))
    out = summarize([lora, full], expected=2)
    assert out["sentence"].startswith("full fine-tuning and LoRA are tied within a paired test "
                                      "on the same 400 validation rows: p = "), out["sentence"]
    assert "LoRA trains in 0.30x the time: as good for less." in out["sentence"]
    # the page marks both, not a lone winner
    from finetuner.ui.render_groups import compare_frame, compare_html

    assert out["winner"] == "full" and out["tied"] == ["lora"]
    view = {"kind": "compare", "summary": out}
    assert compare_frame(view)["member"].tolist() == ["LoRA (tied)",
                                                      "full fine-tuning (best score, tied)"]
    assert "Best validation score, tied within noise" in compare_html(view)
    (tmp_path / "lora" / paired.FILE).unlink()  # an older run without a record: unpaired
    assert "tied within the noise of 400 validation rows" in summarize([lora, full])["sentence"]


def test_the_comparison_table_says_only_what_each_member_has_done(tmp_path):
    """'no steps (one pass)' is said of a finished head-only member only (not of one still
    queued or training), and a member whose training never beat its starting head says so
    beside its verdict: it shows a head-only member's numbers under another verdict."""
    from finetuner.ui.render_groups import compare_frame

    gold = np.arange(100) % 2
    head = {**member(tmp_path, "head", 0.83, 16, classifier(gold, list(range(17)))),
            "samples_per_second": None, "verdict": "healthy"}
    full = {**member(tmp_path, "full", 0.83, 184, classifier(gold, list(range(17)))),
            "verdict": "overfitting", "kept_start": True}
    lora = {**member(tmp_path, "lora", None, None, classifier(gold, [])),
            "status": "running", "samples_per_second": None}
    frame = compare_frame({"kind": "compare",
                           "summary": summarize([head, full, lora], expected=3)})
    speed = dict(zip(frame["member"].str.split(" \\(").str[0], frame.iloc[:, 5]))
    assert speed == {"head-only": "no steps (one pass)", "full fine-tuning": "1.0", "LoRA": ""}
    verdicts = frame["verdict"].tolist()
    assert "overfitting; kept its starting head (no step beat it)" in verdicts
    assert "healthy" in verdicts


def test_a_member_that_kept_its_starting_head_is_told_from_one_that_trained(tmp_path):
    """member_row reads the run's own record: the kept checkpoint is step 0 (the head fitted
    on the frozen encoder) after later evaluations, for full fine-tuning or LoRA; never for
    head-only (that is its whole training) or a run whose steps beat the start."""
    from finetuner.runs import RunPaths
    from finetuner.server.compare import member_row

    def run(name, method, best_step, scores=(0.83, 0.64, 0.80)):
        root = tmp_path / name
        root.mkdir()
        (root / "config.json").write_text(json.dumps({"method": {"method": method}}))
        (root / "events.jsonl").write_text("".join(
            json.dumps({"type": "eval", "step": 5 * i, "validation": {"macro_f1": v},
                        "train": {"macro_f1": 0.9}}) + "\n" for i, v in enumerate(scores)))
        (root / "results.json").write_text(json.dumps(
            {"status": "completed", "metric": "macro_f1", "best_step": best_step}))
        return member_row(name, RunPaths(root))

    assert run("full", "full", 0)["kept_start"] is True
    assert run("lora", "lora", 0)["kept_start"] is True
    assert run("head", "head", 0, scores=(0.83,))["kept_start"] is False
    assert run("trained", "full", 10, scores=(0.70, 0.75, 0.80))["kept_start"] is False
    assert run("first-only", "full", 0, scores=(0.83,))["kept_start"] is False
