"""GPU slots (FINETUNER_GPUS, FINETUNER_GPUS_PER_JOB): parsing, the assignment of sets to jobs,
and a real JobManager whose stand-in workers record the CUDA_VISIBLE_DEVICES they were given,
with a fake device list (no GPU needed)."""

from __future__ import annotations

import os

import pytest
from conftest import ROOT, wait_for

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.models.gpus import GpuSlots, parse_devices, slots_from_env
from finetuner.runs import create_run
from finetuner.server.jobs import JobManager
from finetuner.server.jobstore import JobStore


def test_device_lists_and_sets():
    assert parse_devices("0,1, 3", visible=4) == ["0", "1", "3"]
    assert parse_devices("all", visible=3) == ["0", "1", "2"]
    assert parse_devices("", visible=8) == []
    assert parse_devices("0,0", visible=1) == ["0", "0"]  # two jobs share one GPU
    with pytest.raises(FinetunerError, match="sees no GPU"):
        parse_devices("all", visible=0)
    with pytest.raises(FinetunerError, match="'x' is not a GPU number"):
        parse_devices("0,x")
    with pytest.raises(FinetunerError, match="sees 2 GPU"):
        parse_devices("0,2", visible=2)
    assert GpuSlots(["0", "1", "2", "3"], 2).sets == [("0", "1"), ("2", "3")]
    assert GpuSlots(["0", "1", "2"], 2).sets == [("0", "1")]  # a remainder is left unused
    with pytest.raises(FinetunerError, match="lists only 2"):
        GpuSlots(["0", "1"], 3)
    assert not slots_from_env({}, visible=4)  # unset: no slots, nothing changes
    assert slots_from_env({"FINETUNER_GPUS": "all", "FINETUNER_GPUS_PER_JOB": "2"},
                          visible=4).sets == [("0", "1"), ("2", "3")]
    with pytest.raises(FinetunerError, match="not a whole number"):
        slots_from_env({"FINETUNER_GPUS": "0", "FINETUNER_GPUS_PER_JOB": "two"}, visible=1)


def test_acquire_release_and_adopt():
    slots = GpuSlots(["0", "1"], 1)
    assert slots.acquire("a") == ("0",) and slots.acquire("a") == ("0",)  # idempotent
    assert slots.acquire("b") == ("1",) and slots.acquire("c") is None and slots.free == 0
    slots.release("a")
    assert slots.acquire("c") == ("0",)
    assert slots.held() == {"b": ("1",), "c": ("0",)}
    fresh = GpuSlots(["0", "1"], 1)
    assert fresh.adopt("old", ("1",)) and not fresh.adopt("other", ("1",))
    assert fresh.acquire("new") == ("0",)


def test_jobs_run_on_their_own_gpu_sets_and_wait_for_a_free_one(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"), CUDA_VISIBLE_DEVICES="7")
    slots = GpuSlots(["0", "1", "2", "3"], per_job=2)
    store = JobStore(tmp_path / "jobs.sqlite")
    manager = JobManager(env=env, worker_module="gpu_probe_worker", store=store,
                         gpu_slots=slots)
    runs = [create_run(tmp_path / "runs", RunConfig.from_dict({"data": {"train_file": "x"}}),
                       run_id=f"r{i}") for i in range(3)]
    for i, run in enumerate(runs):
        manager.submit(run, user=f"user{i}")
    seen = [run.root / "seen_gpus.txt" for run in runs]
    assert wait_for(lambda: seen[0].exists() and seen[1].exists())
    # two sets of two GPUs: two jobs at once, each seeing only its own (not the server's 7)
    assert {seen[0].read_text(), seen[1].read_text()} == {"0,1", "2,3"}
    assert manager.state(runs[2]) == "queued" and not seen[2].exists()
    assert {manager.gpus_of(r.id) for r in runs[:2]} == {"0,1", "2,3"}
    (runs[0].root / "GO").touch()  # the first job ends: its set goes to the waiting one
    assert wait_for(lambda: seen[2].exists())
    assert seen[2].read_text() == seen[0].read_text()
    for run in runs[1:]:
        (run.root / "GO").touch()
    assert wait_for(lambda: all(manager.state(r) == "completed" for r in runs))
    assert slots.free == 2


def test_without_slots_nothing_changes(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "tests"), CUDA_VISIBLE_DEVICES="5")
    manager = JobManager(env=env, worker_module="gpu_probe_worker", max_jobs=1,
                         gpu_slots=GpuSlots([], 1))
    run = create_run(tmp_path / "runs", RunConfig.from_dict({"data": {"train_file": "x"}}),
                     run_id="only")
    manager.submit(run)
    assert wait_for(lambda: (run.root / "seen_gpus.txt").exists())
    assert (run.root / "seen_gpus.txt").read_text() == "5"  # the server's own setting
    (run.root / "GO").touch()
    assert wait_for(lambda: manager.state(run) == "completed")


def test_doctor_prints_what_the_studio_sees(tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "FINETUNER_GPUS_PER_JOB": "1"}
    env.pop("FINETUNER_GPUS", None)
    out = subprocess.run([sys.executable, "-m", "finetuner", "doctor", "--home",
                          str(tmp_path / "home")], cwd=ROOT, capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for expected in ("Default model: all-MiniLM-L6-v2", "CPU:", "bf16 units", "GPU slots: no "
                     "GPU slots", "Backend: local", f"Home: {tmp_path / 'home'}",
                     "transformers 5.", "torch 2."):
        assert expected in text, text
    if "GPU 0:" not in text:  # this machine has no GPU: FINETUNER_GPUS is refused, clearly
        bad = subprocess.run([sys.executable, "-m", "finetuner", "doctor"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120,
                             env={**env, "FINETUNER_GPUS": "0,1"})
        assert "GPU slots: problem: FINETUNER_GPUS='0,1', but this server sees no GPU" in \
            bad.stdout
