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

from finetuner.evaluation import diagnostics

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "diagnosis").glob("*.json"))
EXPECTED = {"healthy", "tiny", "shuffled", "overfit", "improving", "lowlr", "slowlr", "plateau",
            "ner", "qa"}
# runs a simple baseline beat beyond the noise: the baseline verdict leads, and what the
# scenario was built to show (its truth) is kept as the second finding
LOST_TO_BASELINE = {"lowlr", "slowlr", "ner"}


def test_every_scenario_is_recorded():
    assert {p.stem for p in FIXTURES} >= EXPECTED


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_a_recorded_run_gets_its_true_verdict(path):
    fixture = json.loads(path.read_text())
    d = diagnostics.from_inputs(fixture["inputs"])
    if path.stem in LOST_TO_BASELINE:
        assert (d.verdict, d.finding) == ("behind_baseline", fixture["truth"]), d.evidence
    else:
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
    assert (low.verdict, low.finding) == ("behind_baseline", "no_signal")  # TF-IDF: 0.79
    assert low.remedies[0].startswith("Raise the learning rate")
    assert any("the labels do follow from the texts" in e for e in low.evidence)
    bad = diagnostics.from_inputs(json.loads((folder / "shuffled.json").read_text())["inputs"])
    assert bad.remedies[0].startswith("Check the labels")
    assert not any("follow from the texts" in e for e in bad.evidence)


def test_a_recorded_run_that_lost_to_tfidf_says_so_first_with_its_numbers():
    """lowlr.json: a real run (2,000 SST-2 sentences, one epoch at 1e-5) that TF-IDF + logistic
    regression beat by 23 points on 200 validation rows. The verdict leads with the baseline,
    both scores, the gap in points and the validation size; 'learned nothing' stays below it
    as the second finding, and Try it and the model card carry the warning."""
    fixture = json.loads((Path(__file__).parent / "fixtures" / "diagnosis" /
                          "lowlr.json").read_text())
    inputs = fixture["inputs"]
    d = diagnostics.from_inputs(inputs)
    assert d.verdict == "behind_baseline" and d.finding == "no_signal"
    assert d.title.startswith("Worse than a simple baseline")
    title = "word counts (TF-IDF) + logistic regression"
    base, model = inputs["data"]["baselines"][title], fixture["row"]["val"]
    assert (round(base, 2), round(model, 2), inputs["data"]["n_validation"]) == (0.79, 0.56, 200)
    assert d.evidence[0] == (f"'{title}' scores 0.79 validation macro-F1, the fine-tuned model "
                             "0.56: 23 points behind, more than the ±9 points of noise that "
                             "200 validation rows allow.")
    assert "Second finding: Learned nothing" in d.evidence[2]
    assert any("within the ±0.070 that 200 validation rows allow" in e for e in d.evidence)
    assert d.remedies[0].startswith("Raise the learning rate (for example 3 to 10 times)")
    assert any(title in r and "do not use this one" in r for r in d.remedies)
    text = diagnostics.warning(d.to_dict())
    assert "macro-F1 0.56 against 0.79" in text and "23 points behind on 200" in text
    # the entity run lost to a lookup of the entities seen in training: 0.41 against 0.58
    ner = diagnostics.from_inputs(json.loads((Path(__file__).parent / "fixtures" /
                                              "diagnosis" / "ner.json").read_text())["inputs"])
    assert ner.verdict == "behind_baseline" and "17 points behind" in ner.evidence[0]
