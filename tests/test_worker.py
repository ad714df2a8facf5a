"""The worker process on a tiny random BERT: events, results, export, stop, crash, memory."""

from __future__ import annotations

import csv
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import (
    ROOT,
    assert_record_scores_the_validation,
    run_worker_here,
    wait_for,
    write_csv,
)

from finetuner.config import RunConfig
from finetuner.runs import create_run, read_events, read_json
from finetuner.server.jobs import JobManager


def easy_rows(n=160):
    return [{"text": ("good great fine " if i % 2 else "bad awful poor ") + f"item {i}",
             "label": "pos" if i % 2 else "neg"} for i in range(n)]


def make_run(tmp_path, tiny_model, **training):
    data = write_csv(tmp_path / "train.csv", easy_rows())
    method = training.pop("method", "full")
    adapter = training.pop("adapter_only", False)
    cfg = RunConfig.from_dict({
        "data": {"train_file": str(data)},
        "model": {"name_or_path": str(tiny_model)},
        "method": {"method": method, "lora_r": 4, "export_adapter_only": adapter},
        # no floor of steps: these runs check the cadence of exactly 2 epochs
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3, "min_steps": 0,
                     **training},
    })
    return create_run(tmp_path / "runs", cfg)


def events_of(run, kind=None):
    events, _ = read_events(run.events)
    return [e for e in events if kind is None or e["type"] == kind]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("finished")
    run = make_run(tmp, tiny_model)
    manager = JobManager(warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=180)
    return run, results


def test_results_have_every_promised_field(finished):
    run, results = finished
    assert results["status"] == "completed", results
    assert results["task"] == "classification" and results["method"] == "full"
    for key in ("accuracy", "macro_f1", "weighted_f1", "per_class", "confusion_matrix"):
        assert key in results["test"]
    assert set(results["test"]["per_class"]) == {"neg", "pos"}
    assert sum(map(sum, results["test"]["confusion_matrix"])) == 16
    assert "macro_f1" in results["validation"]
    from finetuner.evaluation.diagnostics import VERDICTS

    assert results["diagnosis"]["verdict"] in VERDICTS
    assert results["diagnosis"]["evidence"] and results["diagnosis"]["remedies"]
    assert results["params"]["trainable"] == results["params"]["total"] > 1_000_000
    assert results["timing"]["train_seconds"] > 0
    assert results["timing"]["train_samples_per_second"] > 0
    assert RunConfig.load(run.config).training.learning_rate == 3e-3


def test_events_carry_progress_and_evaluations(finished):
    run, _ = finished
    progress = events_of(run, "progress")
    assert progress, "no progress events"
    for key in ("step", "total_steps", "epoch", "loss", "learning_rate", "samples_per_second",
                "eta_seconds"):
        assert key in progress[-1]
    assert progress[-1]["total_steps"] == 16  # 128 rows / 16 per batch * 2 epochs
    evals = events_of(run, "eval")
    # 4 per epoch; no probe at step 0: this random model's pooler barely varies between
    # texts (heads.FLAT), so its head starts as it is
    assert [e["step"] for e in evals] == [4, 8, 12, 16]
    assert not events_of(run, "head_start")
    assert {"macro_f1", "accuracy", "loss"} <= set(evals[0]["validation"])
    assert "macro_f1" in evals[0]["train"]
    assert evals[0]["eval_loss"] is not None
    assert events_of(run, "done")[-1]["status"] == "completed"
    kinds = [e["type"] for e in events_of(run)]
    assert kinds.index("data") < kinds.index("model") < kinds.index("progress")


def test_the_best_validation_checkpoint_is_the_one_tested(finished):
    run, results = finished
    evals = events_of(run, "eval")
    best = max(evals, key=lambda e: (e["validation"]["macro_f1"], -e["validation"]["loss"]))
    assert results["best_step"] == best["step"]
    assert results["validation"] == best["validation"]
    assert_record_scores_the_validation(run, results)


def test_exported_model_loads_in_a_plain_pipeline(finished):
    from transformers import pipeline

    run, _ = finished
    clf = pipeline("text-classification", model=str(run.model))
    out = clf("good great fine thing")
    assert out[0]["label"] in ("neg", "pos")
    card = (run.model / "README.md").read_text()
    assert "## Held-out test metrics" in card and "pipeline(" in card and "## Diagnosis" in card
    assert json.loads((run.model / "finetuner.json").read_text())["labels"] == ["neg", "pos"]


def test_predictor_single_many_and_file(finished, tmp_path):
    from finetuner.serving.inference import Predictor

    run, _ = finished
    predictor = Predictor.load(run.root)
    one = predictor.predict("good great fine")
    assert one["label"] in ("neg", "pos")
    assert abs(sum(one["probabilities"].values()) - 1) < 1e-5
    many = predictor.predict(["bad awful", "good great", ""])
    assert len(many) == 3
    src = write_csv(tmp_path / "new.csv", [{"id": 1, "text": "good great"},
                                           {"id": 2, "text": "bad awful"}])
    out = predictor.predict_file(src, tmp_path / "pred.csv")
    rows = list(csv.DictReader(open(out)))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert {"predicted_label", "confidence", "p_neg", "p_pos"} <= set(rows[0])


def test_predictions_file_lists_wrong_answers_first(finished):
    run, results = finished
    rows = [json.loads(line) for line in run.predictions.read_text().splitlines()]
    assert len(rows) == 16
    flags = [r["correct"] for r in rows]
    assert flags == sorted(flags)


def test_zip_export(finished, tmp_path):
    import zipfile

    from finetuner.serving.export import make_zip

    run, _ = finished
    path = make_zip(run, tmp_path / "m.zip")
    names = zipfile.ZipFile(path).namelist()
    assert "model/config.json" in names and "model/model.safetensors" in names


@pytest.mark.parametrize("adapter_only", [False, True])
def test_lora_exports(tmp_path, tiny_model, adapter_only):
    run = make_run(tmp_path, tiny_model, method="lora", adapter_only=adapter_only, max_steps=6)
    manager = JobManager(warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=180)
    assert results["status"] == "completed", results
    assert results["params"]["trainable"] < results["params"]["total"] / 10
    names = {p.name for p in run.model.iterdir()}
    if adapter_only:
        assert "adapter_config.json" in names and "model.safetensors" not in names
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification

        base = AutoModelForSequenceClassification.from_pretrained(
            str(tiny_model), num_labels=2, id2label={0: "neg", 1: "pos"},
            label2id={"neg": 0, "pos": 1})
        model = PeftModel.from_pretrained(base, str(run.model))
        assert model.config.id2label[1] == "pos"
    else:
        from transformers import pipeline

        assert "model.safetensors" in names and "adapter_config.json" not in names
        assert pipeline("text-classification", model=str(run.model))("fine")[0]["label"] in (
            "neg", "pos")
    from finetuner.serving.inference import Predictor

    assert Predictor.load(run.root).predict("good")["label"] in ("neg", "pos")


def test_stop_ends_the_run_within_5_seconds_and_keeps_the_model(tmp_path, tiny_model):
    run = make_run(tmp_path, tiny_model, epochs=100, evals_per_epoch=2)
    manager = JobManager(warm=True)
    job = manager.start(run)
    assert wait_for(lambda: events_of(run, "eval")), "no evaluation happened"
    t0 = time.time()
    message = manager.stop(run)
    assert "Stopping" in message
    assert "Already stopping" in manager.stop(run)
    job.done.wait(10)
    assert time.time() - t0 < 5
    results = read_json(run.results)
    assert results["status"] == "stopped"
    assert (run.model / "model.safetensors").exists()
    assert "not running" in manager.stop(run)


def test_a_worker_that_ignores_stop_is_killed_with_its_children(tmp_path, tiny_model):
    run = make_run(tmp_path, tiny_model)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    manager = JobManager(env=env, worker_module="stuck_worker")
    job = manager.start(run)
    pid_file = run.root / "child.pid"
    assert wait_for(lambda: pid_file.exists(), 30)
    child = int(pid_file.read_text())
    t0 = time.time()
    manager.stop(run)
    job.done.wait(10)
    assert time.time() - t0 < 5
    assert wait_for(lambda: not _alive(child), 5), "the worker's child survived"
    results = read_json(run.results)
    assert results["status"] == "stopped" and "by force" in results["note"]


def test_a_stop_waits_for_a_worker_still_saving_its_best_checkpoint(tmp_path, tiny_model):
    """Past the grace period, a worker whose events say it is saving what it kept is given
    the time to finish (a kill then would lose the whole run); a silent one is killed."""
    run = make_run(tmp_path, tiny_model)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"))
    manager = JobManager(env=env, worker_module="slow_saver_worker")
    job = manager.start(run)
    assert wait_for(lambda: run.events.exists(), 30)
    t0 = time.time()
    manager.stop(run)
    assert job.done.wait(30)
    assert 5 < time.time() - t0 < 20
    results = read_json(run.results)
    assert results["status"] == "stopped" and "by force" not in results.get("note", "")
    assert not job.killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_worker_killed_by_the_system_is_reported(tmp_path, tiny_model):
    run = make_run(tmp_path, tiny_model, epochs=100)
    manager = JobManager(warm=True)
    job = manager.start(run)
    assert wait_for(lambda: events_of(run, "progress"))
    os.kill(job.proc.pid, signal.SIGKILL)
    job.done.wait(10)
    results = read_json(run.results)
    assert results["status"] == "failed"
    assert "killed" in results["error"]["message"] and "memory" in results["error"]["message"]


def test_data_that_vanished_fails_with_the_reason(tmp_path, tiny_model):
    run = make_run(tmp_path, tiny_model)
    (tmp_path / "train.csv").unlink()
    manager = JobManager(warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=120)
    assert results["status"] == "failed"
    assert "does not exist" in results["error"]["message"]
    assert events_of(run, "done")[-1]["status"] == "failed"


def test_corrupt_weights_fail_with_a_readable_reason(tmp_path, tiny_model):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not really safetensors")
    run = make_run(tmp_path, broken)
    manager = JobManager(warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=120)
    assert results["status"] == "failed"
    assert results["error"]["code"] == "bad_model"
    assert "could not be loaded" in results["error"]["message"]
    assert "model.safetensors" in results["error"]["remedy"]


def test_out_of_memory_fails_cleanly(tmp_path, tiny_model):
    data = write_csv(tmp_path / "long.csv", [
        {"text": " ".join(["word"] * 500) + f" {i}", "label": "a" if i % 2 else "b"}
        for i in range(120)])
    cfg = RunConfig.from_dict({
        "data": {"train_file": str(data), "max_length": 512},
        "model": {"name_or_path": str(tiny_model)},
        "training": {"batch_size": 96, "max_memory_mb": 150, "max_steps": 3},
    })
    run = create_run(tmp_path / "runs", cfg)
    manager = JobManager(warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=120)
    assert results["status"] == "failed", results
    assert results["error"]["code"] == "oom"
    assert "out of memory" in results["error"]["message"]
    assert "batch size" in results["error"]["remedy"]


def test_worker_usage_message():
    import subprocess

    proc = subprocess.run([sys.executable, "-m", "finetuner.training.worker"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 2 and "usage" in proc.stderr


def test_results_record_device_batch_and_peak_memory(finished):
    _, results = finished
    timing = results["timing"]
    assert timing["batch_size"] == 16 and timing["learning_rate"] == 3e-3
    assert timing["device"].startswith("CPU") or "GPU" in timing["device"] or timing["device"]
    assert results["peak_memory_mb"]["rss"] > 100


def test_auto_batch_size_is_32_on_a_cpu(tiny_model):
    import torch

    from finetuner.training.loop import auto_batch_size

    assert auto_batch_size(None, [], None, None, torch.device("cpu")) == 32


def test_a_full_disk_is_said_in_a_sentence_not_a_torch_error(tmp_path, monkeypatch):
    """A checkpoint write that fails because the disk is full ends the run with a sentence
    that says so and how much is free, not torch's "unexpected pos 189909568 vs 189909456"
    (what a full disk gave on this machine); the half-written state file is removed."""
    import errno

    import torch

    from finetuner.training import loop, worker
    from finetuner.training.callbacks import Checkpointer

    full = OSError(errno.ENOSPC, "No space left on device")
    assert worker.disk_full(full, tmp_path)
    # torch's writer hides the errno: its message counts only when little space is left
    try:
        try:
            raise RuntimeError("basic_ios::clear: iostream error")
        except RuntimeError:  # chained as torch chains it (context, not cause)
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos "  # noqa: B904
                               "189909568 vs 189909456")
    except RuntimeError as exc:
        torch_error = exc
    assert not worker.disk_full(torch_error, tmp_path)  # this disk has room
    monkeypatch.setattr(worker, "_free_mb", lambda path=None: 3.0)
    assert worker.disk_full(torch_error, tmp_path)
    assert not worker.disk_full(ValueError("no label column"), tmp_path)

    def save_until_full(obj, path):
        Path(path).write_bytes(b"x" * 1000)
        raise torch_error

    monkeypatch.setattr(torch, "save", save_until_full)
    checkpoint = tmp_path / "checkpoint-8"
    checkpoint.mkdir()
    with pytest.raises(RuntimeError):
        Checkpointer.write_state(checkpoint, {"step": 8})
    assert list(checkpoint.iterdir()) == []

    # the worker's record of it
    data = write_csv(tmp_path / "d.csv", [{"text": f"t {i}", "label": "ab"[i % 2]}
                                         for i in range(40)])
    run = create_run(tmp_path / "run", RunConfig.from_dict({"data": {"train_file": str(data)}}))
    def train(ctx):
        raise full

    monkeypatch.setattr(loop, "train", train)
    results = run_worker_here(run.root)
    assert results["status"] == "failed" and results["error"]["code"] == "disk_full"
    assert results["error"]["message"].startswith("The disk is full")
    assert "3 MB free now" in results["error"]["message"]
    assert "Free disk space" in results["error"]["remedy"]
    assert json.loads(run.results.read_text())["error"]["code"] == "disk_full"


def test_a_run_on_small_data_trains_its_floor_of_steps_before_early_stopping(tmp_path,
                                                                              tiny_model):
    """Labels no text predicts, patience 1, 5 epochs of 8 steps: early stopping ended such a
    run after its first epoch; it now waits for the floor of 30 steps for small data (the
    epochs asked for, 40 steps, end later), then ends it."""
    import random

    coin = random.Random(0)
    rows = [{"text": f"note number {i} about {coin.choice(['tea', 'rain', 'maps'])}",
             "label": coin.choice(["pos", "neg"])} for i in range(160)]
    data = write_csv(tmp_path / "train.csv", rows)
    cfg = RunConfig.from_dict({
        "data": {"train_file": str(data)},
        "model": {"name_or_path": str(tiny_model)},
        "training": {"epochs": 5, "batch_size": 16, "learning_rate": 3e-3, "min_steps": 30,
                     "early_stopping_patience": 1, "evals_per_epoch": 4},
    })
    run = create_run(tmp_path / "runs", cfg)
    manager = JobManager(warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=180)
    assert results["status"] == "completed", results
    evals = [e["step"] for e in events_of(run, "eval")]
    # the floor is trained (the old rule stopped at step 10), then patience ends the run at
    # once (not the 40 steps of the epochs): early stopping still works after the floor
    assert evals[-1] == 30 and results["timing"]["steps"] == 30, (results["timing"], evals)
    assert [e["step"] for e in events_of(run, "early_stop")] == [30]
