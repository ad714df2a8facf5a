"""Warm starts (finetuner.server.warmstart): a server forks its training workers from a process that
has already imported torch and transformers. A warm worker must be the same worker: its own
session, its own scrubbed environment, the same numbers, the same ends (stopped, killed by
the system, failed), and a server must go on (cold) when the warm process is gone."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import sentiment_rows, write_csv
from test_worker import events_of, wait_for

from finetuner.config import RunConfig
from finetuner.runs import create_run
from finetuner.server import warmstart
from finetuner.server.jobs import JobManager

SECRET = "hf_never_in_a_warm_worker"
pytestmark = pytest.mark.skipif(not warmstart.usable(), reason="warm starts are off on GPU hosts")


def new_run(tmp_path: Path, model: Path, name: str, **training):
    data = tmp_path / "s.csv"
    if not data.exists():
        write_csv(data, sentiment_rows(80))
    cfg = RunConfig.from_dict({
        "data": {"train_file": str(data), "max_length": 32},
        "model": {"name_or_path": str(model)},
        "training": {"batch_size": 16, "max_steps": 4, "checkpoints": False,
                     "precision": "fp32", **training}})
    return create_run(tmp_path / "runs", cfg, run_id=name)


def submitted(manager: JobManager, run) -> float:
    at = time.time()
    manager.submit(run, "alice")
    return at


def started_after(run, at: float) -> float:
    """Seconds from the submission to the worker's first event."""
    return events_of(run)[0]["time"] - at


def test_a_warm_worker_is_a_worker_of_its_own(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", SECRET)  # a server secret: scrubbed from every worker
    manager = JobManager(warm=True, max_job_seconds=3600)
    runs = [new_run(tmp_path, tiny_model, f"r{i}") for i in range(2)]
    at = [0.0, 0.0]
    for i, run in enumerate(runs):
        at[i] = submitted(manager, run)
        assert manager.wait(run, 120)["status"] == "completed"
    starter = manager._starter
    assert starter.ready and starter.alive()
    # the warm process holds no secret either, and a warm worker begins within a second
    assert SECRET.encode() not in Path(f"/proc/{starter.proc.pid}/environ").read_bytes()
    assert started_after(runs[1], at[1]) < 2.0
    # its own session (a stop or a kill of its group touches nobody else), its run folder as
    # its working directory, and its job's variables (the cap per training)
    slow = new_run(tmp_path, tiny_model, "slow", max_steps=2000, evals_per_epoch=1)
    manager.submit(slow, "alice")
    assert wait_for(lambda: events_of(slow, "progress"), 60)
    pid = manager._jobs[slow.id].pid
    assert b"finetuner.server.warmstart" in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert os.getpgid(pid) == pid != os.getpgid(starter.proc.pid)
    assert Path(os.readlink(f"/proc/{pid}/cwd")) == slow.root.resolve()
    assert "Stopping" in manager.stop(slow)
    results = manager.wait(slow, 30)
    assert results["status"] == "stopped"
    assert "Training" in slow.log.read_text()  # its output went to its own log


def test_a_warm_worker_killed_by_the_system_says_so(tmp_path, tiny_model):
    manager = JobManager(warm=True)
    manager.warm_up()
    assert manager._starter.wait_ready(60)
    run = new_run(tmp_path, tiny_model, "oom", max_steps=2000, evals_per_epoch=1)
    manager.submit(run, "alice")
    assert wait_for(lambda: events_of(run, "progress"), 60)
    job = manager._jobs[run.id]
    assert isinstance(job.proc, warmstart.WarmProcess)
    os.killpg(job.pid, signal.SIGKILL)  # what the kernel's out-of-memory killer does
    results = manager.wait(run, 30)
    assert results["status"] == "failed" and "ran out of memory" in results["error"]["message"]
    assert job.proc.returncode == -signal.SIGKILL  # the exit code came through its parent


def test_without_the_warm_process_trainings_start_cold_and_a_new_one_comes_up(tmp_path,
                                                                              tiny_model):
    manager = JobManager(warm=True)
    manager.warm_up()
    first = manager._starter
    assert first.wait_ready(60)
    first.proc.kill()  # killed by hand or by the system
    first.proc.wait()
    assert wait_for(lambda: not first.ready, 5)
    run = new_run(tmp_path, tiny_model, "after")
    manager.submit(run, "alice")
    assert manager.wait(run, 120)["status"] == "completed"
    assert manager._starter is not first and manager._starter.wait_ready(60)
    again = new_run(tmp_path, tiny_model, "again")
    at = submitted(manager, again)
    assert manager.wait(again, 120)["status"] == "completed"
    assert started_after(again, at) < 2.0


def test_a_job_whose_libraries_read_other_settings_is_not_forked(tmp_path, tiny_model):
    """Variables the libraries read once at import (HF_*, OMP_*, ...) cannot change in a
    forked child: such a job is not forked from a warm process imported with other values
    (its manager starts it cold, or from a warm process of its own)."""
    manager = JobManager(warm=True)
    manager.warm_up()
    starter = manager._starter
    assert starter.wait_ready(60)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    assert starter.spawn(str(tmp_path), env, str(tmp_path / "x.log")) is None
    assert warmstart.import_time_env(env) != starter.import_env
    assert not (tmp_path / "x.log").exists()
    run = new_run(tmp_path, tiny_model, "same")  # the usual variables: forked
    manager.submit(run, "alice")
    assert manager.wait(run, 120)["status"] == "completed"
    assert isinstance(manager._jobs[run.id].proc, warmstart.WarmProcess)


@pytest.mark.parametrize("value", ["0", "off", "False"])
def test_the_setting_turns_warm_starts_off(tmp_path, monkeypatch, value):
    from finetuner.server.studio import Studio

    monkeypatch.setenv("FINETUNER_WARM_START", value)
    studio = Studio(tmp_path / "home")
    try:
        assert studio.jobs.warm is False
    finally:
        studio.shutdown()
    monkeypatch.setenv("FINETUNER_WARM_START", "1")
    studio = Studio(tmp_path / "home2")
    try:
        assert studio.jobs.warm is True
    finally:
        studio.shutdown()
