"""Recorded real runs replayed through the diagnosis: each must get the verdict its scenario
was built to have.

The fixtures in tests/fixtures/diagnosis/ are the diagnosis_input.json of real runs of the
embedded default model on this CPU (written by `python bench/diagnosis.py --record`): every
evaluation event, the kept checkpoint's validation detail and the data facts. They hold
numbers and label names only, no rows of the data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from finetuner import diagnostics

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "diagnosis").glob("*.json"))
EXPECTED = {"healthy", "tiny", "shuffled", "overfit", "improving", "lowlr", "slowlr", "plateau",
            "ner", "qa"}


def test_every_scenario_is_recorded():
    assert {p.stem for p in FIXTURES} >= EXPECTED


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_a_recorded_run_gets_its_true_verdict(path):
    fixture = json.loads(path.read_text())
    d = diagnostics.from_inputs(fixture["inputs"])
    assert d.verdict == fixture["truth"], (fixture["why"], d.title, d.evidence)
    assert d.title == diagnostics.TITLES[d.verdict]
    assert d.evidence and d.remedies
    # the evidence names the checkpoint training kept, never another one
    inputs = fixture["inputs"]
    kept = inputs["best_step"]
    steps = {e["step"] for e in inputs["events"]}
    assert kept in steps
    for line in d.evidence:
        for named in re.findall(r"(?:checkpoint \(step|at step) (\d+)", line):
            if "fell from" not in line:
                assert int(named) == kept, line


def test_the_memorising_run_is_called_overfitting_with_its_cost():
    fixture = json.loads((Path(__file__).parent / "fixtures" / "diagnosis" /
                          "overfit.json").read_text())
    d = diagnostics.from_inputs(fixture["inputs"])
    assert d.verdict == "overfitting"
    assert any("memorised" in line for line in d.evidence)
    assert any("on new data expect about" in line for line in d.evidence)


def test_shuffled_labels_point_at_the_labels():
    fixture = json.loads((Path(__file__).parent / "fixtures" / "diagnosis" /
                          "shuffled.json").read_text())
    d = diagnostics.from_inputs(fixture["inputs"])
    assert d.verdict == "no_signal"
    assert d.remedies[0].startswith("Check the labels")


def test_a_learning_rate_too_low_is_told_apart_from_bad_labels():
    """Both runs score at chance; the TF-IDF baseline shows that the low-rate run's labels are
    learnable (so: raise the rate), the shuffled run's are not (so: check the labels)."""
    folder = Path(__file__).parent / "fixtures" / "diagnosis"
    low = diagnostics.from_inputs(json.loads((folder / "lowlr.json").read_text())["inputs"])
    assert low.verdict == "no_signal"
    assert low.remedies[0].startswith("Raise the learning rate")
    assert any("the labels do follow from the texts" in e for e in low.evidence)
    bad = diagnostics.from_inputs(json.loads((folder / "shuffled.json").read_text())["inputs"])
    assert bad.remedies[0].startswith("Check the labels")
    assert not any("follow from the texts" in e for e in bad.evidence)
