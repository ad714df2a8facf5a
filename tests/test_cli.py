"""The CLI end to end with the real embedded model, plus its error handling."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest
from conftest import EXAMPLES, ROOT, card_logits, card_recipe


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "finetuner", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_train_predict_export_with_the_default_model(tmp_path):
    out = tmp_path / "run"
    proc = cli("train", "--data", EXAMPLES / "sentiment.csv", "--method", "lora",
               "--max-steps", "12", "--evals-per-epoch", "20", "--output", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Rows: train 320, validation 40, test 40" in proc.stdout
    assert "all-MiniLM-L6-v2" in proc.stdout and "method lora" in proc.stdout
    assert "Test: accuracy" in proc.stdout and "Verdict:" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "completed" and results["test"]["accuracy"] > 0.5

    proc = cli("predict", "--run", out, "--text", "An absolute delight, I loved it.",
               "--text", "It broke after two days.", "--json")
    assert proc.returncode == 0, proc.stderr
    preds = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {p["label"] for p in preds} <= {"positive", "negative"}
    assert all(set(p["probabilities"]) == {"positive", "negative"} for p in preds)

    proc = cli("export", "--run", out, "--zip", tmp_path / "model.zip")
    assert proc.returncode == 0, proc.stderr
    assert "model/model.safetensors" in zipfile.ZipFile(tmp_path / "model.zip").namelist()

    # the card's own snippet loads the export in plain transformers and answers as we do
    from transformers import AutoTokenizer

    recipe = card_recipe(out / "model")
    text = "The hotel was dirty and smelled of smoke."
    logits = card_logits(recipe, AutoTokenizer.from_pretrained(out / "model")(
        text, return_tensors="pt"))
    id2label = recipe["model"].config.id2label
    ours = json.loads(cli("predict", "--run", out, "--text", text, "--json").stdout)
    assert id2label[int(logits[0].argmax())] == ours["label"]


def test_bad_input_prints_one_sentence(tmp_path):
    proc = cli("train", "--data", tmp_path / "missing.csv", "--output", tmp_path / "r")
    assert proc.returncode == 2
    assert proc.stderr.startswith("Error: The file") and "Traceback" not in proc.stderr
    proc = cli("train", "--data", EXAMPLES / "sentiment.csv", "--label-column", "stars",
               "--output", tmp_path / "r")
    assert proc.returncode == 2 and "The columns are: text, label" in proc.stderr
    proc = cli("train", "--data", EXAMPLES / "sentiment.csv", "--model", "./no/such/model",
               "--output", tmp_path / "r")
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = cli("predict", "--run", tmp_path, "--text", "hi")
    assert proc.returncode == 2 and "no finished model" in proc.stderr


def test_check_reports_the_data():
    proc = cli("check", "--data", EXAMPLES / "spam.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "Columns: text='message', label='label'" in proc.stdout
    assert "imbalanced" in proc.stdout
