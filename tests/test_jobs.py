"""The job queue and restarts, on a tiny model: order, cancel, per-user cap, interrupt, resume."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import write_csv
from test_worker import easy_rows, events_of, wait_for

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.runs import RunPaths, create_run, latest_checkpoint, read_json
from finetuner.server.jobs import JobManager
from finetuner.server.jobstore import JobStore


def new_run(tmp_path, tiny_model, name, **training):
    data = tmp_path / "train.csv"
    if not data.exists():
        write_csv(data, easy_rows())
    cfg = RunConfig.from_dict({
        "data": {"train_file": str(data)}, "model": {"name_or_path": str(tiny_model)},
        "training": {"batch_size": 16, "learning_rate": 3e-3, "max_steps": 4, **training}})
    return create_run(tmp_path / "runs", cfg, run_id=name)


def test_queue_runs_jobs_one_after_another_in_order(tmp_path, tiny_model):
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(store=store, max_jobs=1, warm=True)
    runs = [new_run(tmp_path, tiny_model, f"run{i}") for i in range(3)]
    states = [manager.submit(run, "alice") for run in runs]
    assert states[0]["state"] == "running"
    assert [s["position"] for s in states[1:]] == [1, 2]
    for run in runs:
        assert wait_for(lambda run=run: (read_json(run.results) or {}).get("status")
                        == "completed", 120)
    starts = [store.get(r.id)["started_at"] for r in runs]
    ends = [store.get(r.id)["finished_at"] for r in runs]
    assert starts == sorted(starts)
    assert starts[1] >= ends[0] - 0.5 and starts[2] >= ends[1] - 0.5  # never two at once


def test_cancel_and_per_user_cap(tmp_path, tiny_model):
    manager = JobManager(store=JobStore(None), max_jobs=1, max_queued_per_user=2, warm=True)
    first = new_run(tmp_path, tiny_model, "a1", max_steps=200)
    second = new_run(tmp_path, tiny_model, "a2")
    manager.submit(first, "alice")
    manager.submit(second, "alice")
    with pytest.raises(FinetunerError, match="limit is 2"):
        manager.submit(new_run(tmp_path, tiny_model, "a3"), "alice")
    bob = manager.submit(new_run(tmp_path, tiny_model, "b1"), "bob")
    # fair queue: alice already has a training running, so bob's first goes before her second
    assert bob == {"state": "queued", "position": 1}
    assert manager.position(second) == 2
    assert manager.stop(second) == "Removed from the queue."
    assert read_json(second.results)["status"] == "stopped"
    assert manager.position(RunPaths(tmp_path / "runs" / "b1")) == 1
    manager.stop(first)
    manager.wait(first, 20)
    assert wait_for(lambda: (read_json(tmp_path / "runs" / "b1" / "results.json")
                             or {}).get("status") == "completed", 120)


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("FINETUNER_CHECKPOINT_SECONDS", "0")
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(store=store, max_jobs=1)
    run = new_run(tmp_path, tiny_model, "long", max_steps=40, evals_per_epoch=4,
                  early_stopping_patience=0)
    job = manager.submit(run, "alice") and manager._jobs[run.id]
    assert wait_for(lambda: latest_checkpoint(run) is not None and len(
        events_of(run, "eval")) >= 2, 120)
    os.killpg(job.pid, signal.SIGKILL)  # the machine went down with the server
    job.done.wait(10)
    store.set(run.id, status="running")  # as the table looked when the server died
    (run.results).unlink(missing_ok=True)

    restarted = JobManager(store=JobStore(tmp_path / "jobs.sqlite"), max_jobs=1)
    assert restarted.recover()["interrupted"] == 1
    results = read_json(run.results)
    assert results["status"] == "interrupted" and results["resumable"] is True
    assert "Resume it to continue from its last checkpoint" in results["error"]["remedy"]
    step = int(latest_checkpoint(run).name.split("-")[-1])
    restarted.resume(run, "alice")
    assert restarted.wait(run, 120)["status"] == "completed"
    statuses = [e.get("message", "") for e in events_of(run, "status")]
    assert f"Resuming from step {step}" in statuses
    progress = [e["step"] for e in events_of(run, "progress")]
    assert progress[-1] == 40 and progress[0] == 1  # continued, not restarted
    assert not (run.root / "checkpoints").exists()  # freed once the model is saved
    assert restarted.store.get(run.id)["status"] == "completed"


def _noisy_rows(n=240):
    """Labels only partly predictable from the words: curves that move at every step, so any
    difference in batches or dropout masks after a resume shows in the numbers."""
    import random

    rng = random.Random(0)
    words = "good great fine bad awful poor item thing place food service movie".split()
    rows = []
    for _ in range(n):
        pos = rng.random() < 0.5
        text = " ".join(rng.choice(words[:3] if pos else words[3:6]) if rng.random() < 0.4
                        else rng.choice(words[6:]) for _ in range(8))
        rows.append({"text": text, "label": "pos" if pos else "neg"})
    return rows


def test_a_run_resumed_mid_epoch_ends_exactly_as_the_uninterrupted_one(tmp_path, tiny_model,
                                                                       monkeypatch):
    """Same seed, same run: killed after a checkpoint in the middle of epoch 2 and resumed, a
    run logs the same evaluations (losses to 6 decimals), keeps the same best step and scores
    the same test metrics as the one never interrupted."""
    monkeypatch.setenv("FINETUNER_CHECKPOINT_SECONDS", "0")
    data = write_csv(tmp_path / "noisy.csv", _noisy_rows())

    def config():
        return RunConfig.from_dict({
            "data": {"train_file": str(data)}, "model": {"name_or_path": str(tiny_model)},
            "training": {"batch_size": 16, "learning_rate": 3e-3, "epochs": 3,
                         "evals_per_epoch": 3, "early_stopping_patience": 3}})

    def evals(run):
        return [(e["step"], round(e["eval_loss"], 6), e["validation"]["macro_f1"],
                 round(e["train_loss"], 6), e["train"]["macro_f1"])
                for e in events_of(run, "eval") if e["step"]]  # step 0: the probe, no loss

    plain_manager = JobManager(store=JobStore(tmp_path / "a.sqlite"), max_jobs=1)
    plain = create_run(tmp_path / "runs", config(), run_id="plain")
    plain_manager.submit(plain, "alice")
    assert plain_manager.wait(plain, 180)["status"] == "completed"

    # the cut run and its resumption start warm (finetuner.server.warmstart), the plain one cold:
    # the same numbers either way
    store = JobStore(tmp_path / "b.sqlite")
    manager = JobManager(store=store, max_jobs=1, warm=True)
    cut = create_run(tmp_path / "runs", config(), run_id="cut")
    manager.submit(cut, "alice")
    job = manager._jobs[cut.id]
    # 192 training rows / 16 = 12 steps an epoch; evaluations (and checkpoints) every 5 steps
    assert wait_for(lambda: latest_checkpoint(cut) is not None and int(
        latest_checkpoint(cut).name.split("-")[-1]) >= 15, 120)
    os.killpg(job.pid, signal.SIGKILL)
    job.done.wait(10)
    store.set(cut.id, status="running")
    cut.results.unlink(missing_ok=True)
    step = int(latest_checkpoint(cut).name.split("-")[-1])
    assert step % 12, "the checkpoint must fall inside an epoch"
    restarted = JobManager(store=JobStore(tmp_path / "b.sqlite"), max_jobs=1, warm=True)
    restarted.recover()
    restarted.resume(cut, "alice")
    assert restarted.wait(cut, 180)["status"] == "completed"

    a, b = read_json(plain.results), read_json(cut.results)
    events = events_of(cut)
    resumed_at = next(i for i, e in enumerate(events) if e.get("message") ==
                      f"Resuming from step {step}")
    after = [(e["step"], round(e["eval_loss"], 6), e["validation"]["macro_f1"],
              round(e["train_loss"], 6), e["train"]["macro_f1"])
             for e in events[resumed_at:] if e["type"] == "eval"]
    assert after and after == [e for e in evals(plain) if e[0] > step]
    assert evals(plain)[-1][1] < evals(plain)[0][1] - 0.05, "the curve must move"
    assert a["best_step"] == b["best_step"]
    assert a["test"]["loss"] == b["test"]["loss"] and a["test"]["macro_f1"] == b["test"][
        "macro_f1"]
    assert a["validation"] == b["validation"]


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_live_worker_is_adopted_after_a_restart(tmp_path, tiny_model, warm):
    """A worker started cold is known by its command line, one forked warm by its working
    directory (its command line is the warm process's)."""
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(store=store, max_jobs=1, warm=warm)
    run = new_run(tmp_path, tiny_model, "adopt", max_steps=400)
    manager.submit(run, "alice")
    assert wait_for(lambda: events_of(run, "progress"), 60)
    pid = manager._jobs[run.id].pid
    from finetuner.server.warmstart import usable

    assert (b"finetuner.server.warmstart" in Path(f"/proc/{pid}/cmdline").read_bytes()) is (
        warm and usable())
    later = JobManager(store=JobStore(tmp_path / "jobs.sqlite"), max_jobs=1)
    assert later.recover()["adopted"] == 1
    assert later.is_running(run)
    assert "Stopping" in later.stop(run)
    assert wait_for(lambda: not later.is_running(run), 15)
    assert read_json(run.results)["status"] == "stopped"
    manager.wait(run, 10)
    time.sleep(0.2)


def test_fair_order_is_round_robin_between_users():
    store = JobStore(None)
    manager = JobManager(store=store, max_jobs=0)  # nothing starts: look at the order only
    manager._schedule = lambda: None
    for i, user in enumerate(["alice", "alice", "alice", "bob", "carol", "bob"]):
        store.add(f"r{i}", user, f"/runs/r{i}")
    assert [r["run_id"] for r in manager.fair_order()] == ["r0", "r3", "r4", "r1", "r5", "r2"]
    store.set("r0", status="running")  # alice already trains: everyone else goes first
    assert [r["run_id"] for r in manager.fair_order()] == ["r3", "r4", "r1", "r5", "r2"]


def test_worker_environment_holds_no_secrets():
    from finetuner.server.environment import worker_env

    env = worker_env({"PATH": "/bin", "FINETUNER_AUTH": "a:b", "HF_TOKEN": "hf_x",
                      "HUGGING_FACE_HUB_TOKEN": "hf_y", "OAUTH_CLIENT_SECRET": "s",
                      "AWS_SECRET_ACCESS_KEY": "k", "LC_ALL": "C", "HF_HOME": "/h",
                      "FINETUNER_CHECKPOINT_SECONDS": "0"}, FINETUNER_WORKER_MAX_SECONDS="5")
    assert set(env) == {"PATH", "LC_ALL", "HF_HOME", "FINETUNER_CHECKPOINT_SECONDS",
                        "FINETUNER_WORKER_MAX_SECONDS", "PYTHONPATH", "PYTHONUNBUFFERED"}


def test_the_early_stopping_state_travels_with_each_checkpoint(tmp_path):
    """Resume restores patience, the best loss, the counters and the best weights as they were
    at the checkpoint (they used to restart from zero, so a resumed run stopped differently)."""
    import types

    import torch

    from finetuner.training.loop import RunCallback

    def fresh():
        return RunCallback(None, lambda: False, None, metric="accuracy", batch_size=8,
                           eval_every=5, checkpoints=tmp_path / "checkpoints")

    cb = fresh()
    tracker, progress = cb.tracker, cb.progress
    tracker.best_value, tracker.best_step, tracker.bad_evals = (0.91, -0.3), 20, 2
    tracker.best_loss = 0.3
    progress.last_loss, progress.eval_seconds, progress.evals = 0.25, 1.5, 5
    tracker.best_state = {"classifier.weight": torch.ones(2, 3)}
    (tmp_path / "checkpoint-25").mkdir()
    cb.on_save(types.SimpleNamespace(output_dir=str(tmp_path)),
               types.SimpleNamespace(global_step=25), None)
    back = fresh()
    assert back.load_state(tmp_path / "checkpoint-25")
    for key in RunCallback.STATE_FIELDS:
        assert getattr(back, key) == getattr(cb, key), key
    assert back.best_value == (0.91, -0.3)
    assert torch.equal(back.best_state["classifier.weight"], torch.ones(2, 3))
    assert not fresh().load_state(tmp_path / "missing")
