"""The Ray backend against a real local Ray head started here (`ray start --head`, 2 CPUs, on
127.0.0.1; stopped at the end): a job submitted through the studio runs on Ray under its run
id and streams its events into the run directory, a restarted studio re-attaches to it by id,
a stop ends it cleanly, and two users' jobs stay apart. Skipped, with the reason, only where
Ray is not installed or cannot start."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, free_port, wait_for

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.server.limits import Limits
from finetuner.server.studio import Studio

RAY = shutil.which("ray", path=os.path.dirname(sys.executable) + os.pathsep
                   + os.environ.get("PATH", ""))


@pytest.fixture(scope="module")
def ray_address():
    if RAY is None:
        pytest.skip("Ray is not installed (pip install -r requirements-cluster.txt)")
    from ray.job_submission import JobSubmissionClient

    temp = tempfile.mkdtemp(prefix="/tmp/ray-")  # Ray's socket paths must stay short
    port, dashboard = free_port(), free_port()
    log = open(Path(temp) / "head.log", "wb")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}
    proc = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--num-cpus", "2", "--num-gpus", "0",
         "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard", "true",
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
         "--object-store-memory", str(80 * 2**20), "--temp-dir", temp,
         "--disable-usage-stats"], stdout=log, stderr=subprocess.STDOUT, env=env,
        start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    deadline, ready = time.time() + 120, False
    while time.time() < deadline and proc.poll() is None:
        try:
            JobSubmissionClient(address).list_jobs()
            ready = True
            break
        except Exception:  # noqa: BLE001 - not up yet
            time.sleep(1)
    try:
        if not ready:
            pytest.skip("Ray could not start a head on this machine: "
                        + (Path(temp) / "head.log").read_text(errors="replace")[-600:])
        yield address
    finally:
        # the head's whole process group (gcs, raylet, dashboard, workers): `ray start
        # --block` takes 30 s to wind down by itself, its children end on SIGTERM at once
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        shutil.rmtree(temp, ignore_errors=True)


def config(model, **training) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"train_file": str(EXAMPLES / "sentiment.csv"), "max_length": 32},
        "model": {"name_or_path": str(model)},
        "training": {"batch_size": 16, "precision": "fp32", "checkpoints": False,
                     **training}})


def test_jobs_run_on_ray_reattach_after_a_restart_stop_and_stay_apart(tmp_path, tiny_model,
                                                                      ray_address):
    from finetuner.server.raybackend import RayBackend

    home = tmp_path / "home"
    limits = Limits(max_jobs=2)
    studio = Studio(home, limits=limits, backend=RayBackend(ray_address))
    alice, bob = studio.workspace("alice"), studio.workspace("bob")
    long_run, _ = alice.submit(config(tiny_model, max_steps=4000, early_stopping_patience=0,
                                      learning_rate=1e-3), "long")
    backend = studio.jobs.backend
    assert wait_for(lambda: backend.status(long_run.id) == "RUNNING", 120)
    info = backend.client.get_job_info(long_run.id)  # submitted under the run id
    assert info.submission_id == long_run.id and "finetuner.training.worker" in info.entrypoint
    assert info.metadata["num_cpus"] == "1" and info.metadata["num_gpus"] == "0"
    # the worker on Ray writes its events into the shared run directory as it trains
    assert wait_for(lambda: long_run.events.exists() and
                    '"type": "eval"' in long_run.events.read_text(), 180)
    assert "eval step" in (long_run.root / "worker.log").read_text()

    short, _ = bob.submit(config(tiny_model, max_steps=3), "short")
    assert [s.name for s in alice.list_runs()] == ["long"]
    assert [s.name for s in bob.list_runs()] == ["short"]
    with pytest.raises(FinetunerError, match="No such run"):
        alice.run(short.id)

    # the studio restarts (a new job manager on the same home): it re-attaches by run id
    studio = Studio(home, limits=limits, backend=RayBackend(ray_address))
    counts = studio.jobs.recover()
    assert counts["adopted"] >= 1, counts
    alice, bob = studio.workspace("alice"), studio.workspace("bob")
    assert alice.status(long_run) == "running"
    steps = len(long_run.events.read_text().splitlines())
    assert wait_for(lambda: len(long_run.events.read_text().splitlines()) > steps, 60)
    assert wait_for(lambda: bob.status(short) == "completed", 180)
    assert (short.model / "model.safetensors").exists()

    t0 = time.time()
    assert "Stopping" in studio.jobs.stop(long_run)
    assert wait_for(lambda: alice.status(long_run) == "stopped", 60)
    results = json.loads(long_run.results.read_text())
    assert results["status"] == "stopped" and time.time() - t0 < 30
    assert wait_for(lambda: backend.status(long_run.id) in ("SUCCEEDED", "STOPPED"), 60)


def test_an_unreachable_cluster_is_one_sentence():
    from finetuner.server.raybackend import RayBackend, backend_from_env

    port = free_port()
    t0 = time.time()
    with pytest.raises(FinetunerError, match="cannot be reached"):
        RayBackend(f"http://127.0.0.1:{port}")
    assert time.time() - t0 < 30
    with pytest.raises(FinetunerError, match="needs RAY_ADDRESS"):
        backend_from_env({"FINETUNER_BACKEND": "ray"})
    with pytest.raises(FinetunerError, match="not known"):
        backend_from_env({"FINETUNER_BACKEND": "slurm"})
    assert backend_from_env({}) is None
