"""Job lifecycle: start a worker process per run, stop it, notice how it ended.

A worker is `python -m finetuner.worker RUN_DIR` in its own process group (so a stop reaches
everything it started), with stdout/stderr appended to RUN_DIR/worker.log, never to a pipe
that could fill up. Stopping is cooperative first (STOP file and SIGTERM; the worker finishes
the step, keeps the best weights and writes results.json), then the process group is killed
once the grace period is over. A worker that dies without results.json (killed by the system,
crashed interpreter) gets one written for it with the reason. No torch here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .runs import FINAL_STATUSES, RunPaths, read_json, tail, write_json

PACKAGE_PARENT = str(Path(__file__).resolve().parent.parent)
STOP_GRACE_SECONDS = 3.5  # cooperative window; the kill follows, well inside 5 s


@dataclass
class Job:
    run: RunPaths
    proc: subprocess.Popen
    started: float = field(default_factory=time.time)
    stop_requested: float | None = None
    killed: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class JobManager:
    """Owns the worker processes of one server or CLI invocation."""

    def __init__(self, python: str = sys.executable, grace_seconds: float = STOP_GRACE_SECONDS,
                 env: dict | None = None, worker_module: str = "finetuner.worker") -> None:
        self.python = python
        self.worker_module = worker_module
        self.grace = grace_seconds
        self.env = env
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    # -- starting
    def start(self, run: RunPaths) -> Job:
        with self._lock:
            current = self._jobs.get(run.id)
            if current and current.proc.poll() is None:
                return current  # a second click on Train does not start a second worker
            env = dict(os.environ if self.env is None else self.env)
            env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
            env.setdefault("PYTHONUNBUFFERED", "1")
            with open(run.log, "ab") as log:
                proc = subprocess.Popen(
                    [self.python, "-m", self.worker_module, str(run.root)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, env=env, cwd=str(run.root),
                )
            job = Job(run=run, proc=proc)
            self._jobs[run.id] = job
        threading.Thread(target=self._watch, args=(job,), daemon=True,
                         name=f"watch-{run.id}").start()
        return job

    def _watch(self, job: Job) -> None:
        code = job.proc.wait()
        try:
            finalize(job.run, code, job.stop_requested is not None, job.killed)
        finally:
            job.done.set()

    # -- stopping
    def stop(self, run: RunPaths) -> str:
        """Ask a run to stop; returns a sentence for the user."""
        with self._lock:
            job = self._jobs.get(run.id)
        results = read_json(run.results) or {}
        if job is None or job.proc.poll() is not None or results.get("status") in FINAL_STATUSES:
            return "This run is not running: it has already finished."
        if job.stop_requested is not None:
            return "Already stopping; it will end within a few seconds."
        job.stop_requested = time.time()
        run.stop_flag.touch()
        try:
            job.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        threading.Thread(target=self._kill_later, args=(job,), daemon=True).start()
        return "Stopping: the run keeps its best checkpoint so far."

    def _kill_later(self, job: Job) -> None:
        if job.done.wait(self.grace):
            return
        job.killed = True
        try:
            os.killpg(job.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # -- looking
    def is_running(self, run: RunPaths) -> bool:
        with self._lock:
            job = self._jobs.get(run.id)
        return job is not None and not job.done.is_set()

    def wait(self, run: RunPaths, timeout: float | None = None) -> dict | None:
        with self._lock:
            job = self._jobs.get(run.id)
        if job is not None:
            job.done.wait(timeout)
        return read_json(run.results)

    def shutdown(self) -> None:
        """Stop every running worker (used when the server exits)."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if not job.done.is_set():
                self.stop(job.run)
        for job in jobs:
            job.done.wait(self.grace + 2)


def finalize(run: RunPaths, code: int, stop_requested: bool, killed: bool) -> dict:
    """Make sure results.json exists and says how the worker ended."""
    results = read_json(run.results)
    if results and results.get("status") in FINAL_STATUSES:
        return results
    config = read_json(run.config) or {}
    base = {"task": config.get("task"), "method": (config.get("method") or {}).get("method"),
            "test": None, "validation": None, "diagnosis": None, "params": None,
            "timing": None, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    if stop_requested:
        results = {**base, "status": "stopped",
                   "note": "Stopped by force after the grace period; nothing was saved."}
    elif code == -signal.SIGKILL:
        results = {**base, "status": "failed", "error": {
            "code": "killed",
            "message": "The training process was killed by the system, most likely because "
                       "the machine ran out of memory.",
            "remedy": "Lower the batch size or max length, or use LoRA or head-only training."}}
    else:
        last = tail(run.log, 8)
        results = {**base, "status": "failed", "error": {
            "code": "crashed",
            "message": f"The training process ended unexpectedly (exit code {code}).",
            "remedy": "See worker.log for details. Last lines:\n" + last}}
    write_json(run.results, results)
    return results
