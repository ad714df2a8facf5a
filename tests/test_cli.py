"""The CLI end to end with the real embedded model, plus its error handling."""

from __future__ import annotations

import json
import re
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
    # before training, what it will train and about how long (the Train tab's estimate)
    plan = re.search(r"Plan: LoRA, 12 steps; about (\d+) (s|min) on this machine's CPU",
                     proc.stdout)
    assert plan, proc.stdout[:800]
    estimate = int(plan[1]) * (60 if plan[2] == "min" else 1)
    assert "all-MiniLM-L6-v2" in proc.stdout and "method lora" in proc.stdout
    assert "Test: accuracy" in proc.stdout and "Verdict:" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "completed" and results["test"]["accuracy"] > 0.5
    took = results["timing"]["train_seconds"]
    assert took / 4 <= estimate <= took * 4 + 10, (estimate, results["timing"])

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


@pytest.mark.parametrize("command", [None, "train", "check", "compare", "search",
                                     "learning-curve", "predict", "export", "push", "doctor"])
def test_every_command_explains_itself(command, capsys):
    """--help of the program and of each command prints (a '%' in a help text once broke
    argparse's formatting of the whole program's help)."""
    from finetuner.__main__ import main

    with pytest.raises(SystemExit) as done:
        main([command, "--help"] if command else ["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m finetuner")
    if command is None:
        assert "learning-curve" in out and "train on 25/50/100% of the data" in out


def test_check_reports_the_data():
    proc = cli("check", "--data", EXAMPLES / "spam.jsonl")
    assert proc.returncode == 0, proc.stderr
    assert "Columns: text='message', label='label'" in proc.stdout
    assert "imbalanced" in proc.stdout


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        return "State:\tZ" not in open(f"/proc/{pid}/status").read()
    except OSError:
        return False


@pytest.mark.parametrize("how", ["SIGHUP", "SIGKILL"])
def test_a_killed_command_never_leaves_its_worker_behind(tmp_path, tiny_model, how):
    """`timeout`, a CI job limit or a closed terminal ends `finetuner train` with SIGTERM or
    SIGHUP: the worker is told to stop and waited for (the run ends as stopped, its best
    checkpoint kept). SIGKILL cannot be caught: the worker notices its command is gone and
    stops by itself within seconds."""
    import signal
    import time

    from conftest import sentiment_rows, write_csv

    data = write_csv(tmp_path / "d.csv", sentiment_rows(200))
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "finetuner", "train", "--data", data, "--model", tiny_model,
         "--epochs", "100", "--patience", "0", "--evals-per-epoch", "4",
         "--batch-size", "8", "--output", out],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    events = out / "events.jsonl"
    while time.time() < deadline and not (
            events.exists() and events.read_text().count('"type": "eval"') >= 2):
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.3)
    started = [json.loads(line) for line in events.read_text().splitlines()]
    worker = [e["pid"] for e in started if e.get("state") == "starting"][-1]
    assert _alive(worker)
    proc.send_signal(getattr(signal, how))
    output, _ = proc.communicate(timeout=120)
    gone = time.time() + 60
    while time.time() < gone and _alive(worker):
        time.sleep(0.2)
    assert not _alive(worker), f"worker {worker} still training after {how}"
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "stopped", results
    assert (out / "model" / "model.safetensors").exists()  # the best checkpoint so far
    # stopped because its command died (not by a person): marked for a search or a comparison
    # to resume it on its next start, and said so on the run's page
    gone_by_itself = how == "SIGKILL"
    assert (out / "SHUTDOWN").exists() == gone_by_itself
    assert results.get("note", "").startswith("Stopped because the command that started it "
                                              "ended") == gone_by_itself, results
    if how != "SIGKILL":
        assert proc.returncode == 130, output
        assert "Stopping" in output or "stop" in output.lower(), output[-500:]
