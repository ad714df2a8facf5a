"""One run on two processes (torchrun, the Trainer's DDP, gloo on this CPU): the same numbers
as one process with the same global batch, events and results written once, a stop that ends
every rank within 5 s, a rank that dies failing the run with its reason, and the embedded
default model for a few steps."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, ROOT, wait_for

from finetuner.config import RunConfig
from finetuner.runs import create_run
from finetuner.server.jobs import JobManager

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="torchrun with gloo on Linux")


def train(out: Path, model, processes: int, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "finetuner", "train", "--data", str(EXAMPLES / "sentiment.csv"),
         "--model", str(model), "--gpus", str(processes), "--batch-size", "16",
         "--precision", "fp32", "--output", str(out), "--quiet", *map(str, extra)],
        cwd=ROOT, capture_output=True, text=True, timeout=400,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})


def evals(run: Path) -> list[dict]:
    return [e for e in map(json.loads, (run / "events.jsonl").read_text().splitlines())
            if e["type"] == "eval"]


def test_two_processes_match_one_and_write_once(tmp_path, tiny_model):
    # (SetFit's pair objective off: one process pairs the whole batch, two their halves)
    args = ("--max-steps", 12, "--lr", 0.001, "--dropout", 0, "--evals-per-epoch", 4,
            "--no-pair-loss")
    one, two = tmp_path / "one", tmp_path / "two"
    for out, n in ((one, 1), (two, 2)):
        proc = train(out, tiny_model, n, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    a, b = evals(one), evals(two)
    # the same global batches, the same averaged gradients: equal up to float summation order
    assert [e["step"] for e in a] == [e["step"] for e in b] == [5, 10, 12]
    for x, y in zip(a, b):
        assert y["eval_loss"] == pytest.approx(x["eval_loss"], abs=1e-4)
        assert (y["train_loss"] is None) == (x["train_loss"] is None)  # none at step 0
        if x["train_loss"] is not None:
            assert y["train_loss"] == pytest.approx(x["train_loss"], abs=1e-4)
    ra, rb = (json.loads((r / "results.json").read_text()) for r in (one, two))
    assert rb["test"]["accuracy"] == pytest.approx(ra["test"]["accuracy"], abs=1e-9)
    assert rb["timing"]["processes"] == 2 and rb["timing"]["per_device_batch_size"] == 8
    assert rb["timing"]["batch_size"] == 16  # the global batch, as configured
    # rank 0 alone writes: one start, one done, one line per evaluation in the log
    events = [json.loads(line) for line in (two / "events.jsonl").read_text().splitlines()]
    assert sum(e.get("state") == "starting" for e in events) == 1
    assert sum(e["type"] == "done" for e in events) == 1
    log = (two / "worker.log").read_text() if (two / "worker.log").exists() else ""
    assert log.count("eval step 5:") <= 1
    assert (two / "model" / "model.safetensors").exists()
    assert not list(two.glob("rank-*-error.json"))


def make_run(tmp_path: Path, model, name: str, **training) -> object:
    return create_run(tmp_path / name, RunConfig.from_dict({
        "data": {"train_file": str(EXAMPLES / "sentiment.csv"), "max_length": 32},
        "model": {"name_or_path": str(model)},
        "training": {"processes": 2, "batch_size": 16, "precision": "fp32",
                     "max_steps": 5000, "early_stopping_patience": 0, "checkpoints": False,
                     **training}}), run_id="")


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout.split()
    return [int(x) for x in out]


def progressed(run) -> bool:
    return run.events.exists() and '"type": "progress"' in run.events.read_text()


def test_a_stop_ends_every_rank_and_a_dead_rank_fails_the_run(tmp_path, tiny_model):
    manager = JobManager()
    run = make_run(tmp_path, tiny_model, "stop")
    job = manager.start(run)
    assert wait_for(lambda: progressed(run)), (run.root / "worker.log").read_text()
    ranks = children(job.pid)
    assert len(ranks) == 2  # torchrun and its two workers
    t0 = time.time()
    manager.stop(run)
    assert job.done.wait(10)
    assert time.time() - t0 < 5, time.time() - t0
    results = json.loads(run.results.read_text())
    assert results["status"] == "stopped", results
    assert all(not Path(f"/proc/{pid}").exists() for pid in ranks)

    run = make_run(tmp_path, tiny_model, "crash")
    job = manager.start(run)
    assert wait_for(lambda: progressed(run))
    ranks = children(job.pid)
    worker_of_rank_1 = next(pid for pid in ranks if "RANK=1" in Path(
        f"/proc/{pid}/environ").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    os.kill(worker_of_rank_1, signal.SIGKILL)  # one rank dies mid-run
    assert job.done.wait(90)
    results = json.loads(run.results.read_text())
    assert results["status"] == "failed"
    assert "died" in results["error"]["message"] or "failed" in results["error"]["message"]
    assert "process" in results["error"]["message"].lower()
    assert all(not Path(f"/proc/{pid}").exists() for pid in ranks)


def test_the_embedded_model_on_two_processes(tmp_path):
    proc = train(tmp_path / "mini", "default", 2, "--max-steps", 4, "--max-length", 64,
                 "--evals-per-epoch", 40)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((tmp_path / "mini" / "results.json").read_text())
    assert results["status"] == "completed" and results["timing"]["processes"] == 2
    assert results["test"]["accuracy"] is not None
