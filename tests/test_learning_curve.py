"""What more data would buy (finetuner.server.learning_curve): nested, stratified subsets of the
training split with the validation split untouched; the fit and its sentence on curves whose
answer is known; the whole curve through the CLI with real workers (the server's group, its
view and its page: tests/test_browser_groups.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, sentiment_rows, write_csv

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.server import learning_curve
from finetuner.tasks.pipeline import subsample


def test_subsets_are_nested_stratified_and_seeded():
    train = [{"text": f"t{i}", "label": "rare" if i % 20 == 0 else "common"}
             for i in range(400)]
    quarter, half, whole = (subsample(train, f, seed=3) for f in (0.25, 0.5, 1.0))
    assert whole is train and len(quarter) == 100 and len(half) == 200
    assert all(e in half for e in quarter)  # the smaller inside the larger
    assert sum(e["label"] == "rare" for e in quarter) == 5  # each label in proportion
    assert subsample(train, 0.01, 3)[0]["label"] == "rare" or any(
        e["label"] == "rare" for e in subsample(train, 0.01, 3))  # at least one of each
    assert subsample(train, 0.25, 3) == quarter and subsample(train, 0.25, 4) != quarter
    spans = [{"tokens": ["a"], "tags": ["O"], "n": i} for i in range(40)]  # no label to cut by
    assert len(subsample(spans, 0.5, 0)) == 20
    with pytest.raises(FinetunerError, match="train_fraction is 0"):
        RunConfig.from_dict({"data": {"train_file": "x.csv", "train_fraction": 0}})


def rows(points, n_val=1000, status="completed"):
    return [{"name": f"{n}", "run": f"r{n}", "status": status, "validation": score,
             "metric": "macro_f1", "splits": {"train": n, "validation": n_val}}
            for n, score in points]


def test_a_rising_curve_predicts_the_next_doubling():
    # error = 2 * n ** -0.5: 0.8 at 25, 0.9 at 100, 0.95 at 400
    out = learning_curve.analyse(rows([(25, 0.6), (100, 0.8), (400, 0.9)]), "macro-F1")
    assert abs(out["fit"]["b"] - 0.5) < 1e-9 and abs(out["fit"]["a"] - 2.0) < 1e-9
    assert abs(out["predicted"]["score"] - (1 - 2 * 800 ** -0.5)) < 1e-9
    assert out["flat"] is False
    assert out["sentence"].startswith("Doubling the training data (from 400 to 800 examples) "
                                      "would likely raise validation macro-F1 by about 2.9 "
                                      "points (to about 0.929)"), out["sentence"]
    assert "the last step, from 100 examples, gained +10.0 points" in out["sentence"]


def test_a_flat_curve_says_so_and_a_worse_point_is_noise():
    out = learning_curve.analyse(rows([(100, 0.80), (200, 0.81), (400, 0.805)], n_val=200),
                                 "accuracy")
    assert out["flat"] and out["predicted"]["gain"] < 0.01
    assert out["sentence"].startswith("The curve is flat: from 200 to 400 training examples, "
                                      "validation accuracy moved -0.5 points, within the ±"), \
        out["sentence"]
    assert "of 200 validation rows" in out["sentence"]
    # rising, but each step inside the noise of 200 validation rows: an estimate, said so
    rough = learning_curve.analyse(rows([(200, 0.78), (400, 0.83), (800, 0.86)], n_val=200),
                                   "macro-F1")
    assert not rough["flat"] and "raise validation macro-F1 by about 2.9" in rough["sentence"]
    assert "within the noise: read the estimate as a direction" in rough["sentence"]
    top = learning_curve.analyse(rows([(50, 0.99), (100, 1.0)]), "accuracy")
    assert "is already 1.000 with 100 training examples" in top["sentence"]


def test_no_sentence_before_every_point_has_ended():
    points = rows([(100, 0.7)]) + rows([(200, None)], status="running")
    out = learning_curve.analyse(points, "macro-F1", expected=3)
    assert out["fit"] is None and len(out["points"]) == 1
    assert out["sentence"].startswith("The curve is drawn as its points finish (1 of 3")
    failed = learning_curve.analyse(rows([(100, 0.7)]) + rows([(200, None)], status="failed"),
                                    "macro-F1")
    assert "Fewer than two points" in failed["sentence"]
    one_lost = learning_curve.analyse(rows([(100, 0.7), (200, 0.8)]) + rows(
        [(400, None)], status="failed"), "macro-F1")
    assert one_lost["sentence"].startswith("Not every point finished (400: see its run); read "
                                           "from the 2 that did. Doubling"), one_lost["sentence"]
    assert learning_curve.parse_fractions("0.5, 0.25,1") == [0.25, 0.5, 1.0]
    for bad in ("1", "0,0.5", "0.5,2", "a,b"):
        with pytest.raises(FinetunerError, match="Cannot read the fractions"):
            learning_curve.parse_fractions(bad)


def test_the_cli_draws_a_curve_on_nested_subsets(tmp_path, tiny_model):
    data = write_csv(tmp_path / "reviews.csv", sentiment_rows(160))
    out = tmp_path / "curve"
    proc = subprocess.run(
        [sys.executable, "-m", "finetuner", "learning-curve", "--data", str(data), "--model",
         str(tiny_model), "--max-steps", "3", "--batch-size", "8", "--max-length", "32",
         "--fractions", "0.5,1", "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert "| training examples | validation score | noise (±) | member |" in proc.stdout
    curve = json.loads((out / "learning_curve.json").read_text())
    ns = [p["n"] for p in curve["points"]]
    assert len(ns) == 2 and ns == [64, 128], ns
    assert curve["sentence"] and "Traceback" not in proc.stderr
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("*/data_report.json"))]
    assert sorted(r["rows"]["train"] for r in reports) == ns
    # every point on the same validation rows, with the same split as the full run
    assert len({r["rows"]["validation"] for r in reports}) == 1
    assert len({r["extra"]["split_digest"] for r in reports}) == 1
    assert sorted(r["extra"].get("train_fraction", 1.0) for r in reports) == [0.5, 1.0]
    # label counts follow the subset (the verdict's "too little data" reads them)
    small = min(reports, key=lambda r: r["rows"]["train"])
    assert sum(small["label_counts"]["train"].values()) == small["rows"]["train"]
