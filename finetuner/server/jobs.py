"""Job lifecycle: a first-in first-out queue of runs, a worker process per running run, stop,
cancel, resume, and recovery after a restart.

A worker is `python -m finetuner.training.worker RUN_DIR` in its own process group (so a stop
reaches everything it started), with stdout/stderr appended to RUN_DIR/worker.log, never to a pipe
that could fill up. At most `max_jobs` workers run at once; the rest wait in order. Stopping is
cooperative first (STOP file and SIGTERM: the worker finishes the step, keeps the best weights
and writes results.json), then the process group is killed once the grace period is over. A
worker that dies without results.json gets one written for it with the reason.

The job table (`JobStore`, SQLite under FINETUNER_HOME on a server) survives restarts: queued
runs stay queued; a worker still alive from before is adopted; a run whose worker died with
the server is marked interrupted and can be resumed from its last checkpoint. No torch here.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from finetuner.procs import alive as _alive
from finetuner.results import read_results
from finetuner.runs import FINAL_STATUSES, RunPaths, read_json
from finetuner.server.environment import worker_env
from finetuner.server.exits import finalize, is_worker, last_state, mark_interrupted
from finetuner.server.jobqueue import JobQueue
from finetuner.server.jobstore import JobStore
from finetuner.server.warmstart import READY_SECONDS, shared, usable
from finetuner.training.distributed import launch_command, processes_for

log = logging.getLogger("finetuner.server.jobs")

STOP_GRACE_SECONDS = 3.5  # cooperative window; the kill follows, well inside 5 s
# ...unless the worker says it is finishing (saving its best checkpoint): a busy machine may
# need longer to write the model, and a kill then would lose the whole run
FINISH_GRACE_SECONDS = 45.0
FINISHING = frozenset({"stopping", "testing", "baselines", "label_check", "saving",
                       "reporting", "trackers"})


@dataclass
class Job:
    run: RunPaths
    pid: int
    proc: subprocess.Popen | None = None  # None for a worker adopted after a restart
    started: float = field(default_factory=time.time)
    stop_requested: float | None = None
    killed: bool = False
    processes: int = 1  # > 1: torchrun and its ranks (finetuner.training.distributed)
    remote: bool = False  # submitted to a backend (Ray): followed by its status, not a pid
    done: threading.Event = field(default_factory=threading.Event)


class JobManager(JobQueue):
    """Owns the queue (`JobQueue`) and the worker processes of one server or CLI invocation."""

    def __init__(self, python: str = sys.executable, grace_seconds: float = STOP_GRACE_SECONDS,
                 env: dict | None = None, worker_module: str = "finetuner.training.worker",
                 store: JobStore | None = None, max_jobs: int | None = None,
                 max_queued_per_user: int | None = None,
                 max_job_seconds: float | None = None, gpu_slots=None,
                 backend=None, stop_with_me: bool = False, warm: bool = False) -> None:
        self.python = python
        # warm starts (finetuner.server.warmstart): a server forks its one-process local workers
        # from a process that has the libraries imported; started with the first training
        if warm:
            warm = usable()
        self.warm = warm and backend is None
        self._starter = None
        self.worker_module = worker_module
        self.grace = grace_seconds
        self.env = env
        self.store = store or JobStore(None)
        self.max_jobs = max_jobs
        self.max_queued_per_user = max_queued_per_user
        # the worker ends itself at the wall-clock cap (keeping its best checkpoint); the
        # watcher kills its process group if it is still there a minute later
        self.max_job_seconds = max_job_seconds
        self.worker_vars: dict[str, str] = (
            {"FINETUNER_WORKER_MAX_SECONDS": str(max_job_seconds)} if max_job_seconds else {})
        if stop_with_me:  # the CLI: its workers stop cleanly when it is gone, however it ends
            self.worker_vars["FINETUNER_STOP_WITH_PID"] = str(os.getpid())
        # GPU sets (finetuner.models.gpus.GpuSlots): a job starts only on a free set and its worker
        # sees only that set; None (or no sets) leaves devices to torch
        self.gpu_slots = gpu_slots if gpu_slots else None
        # where workers run: None for local processes, else a finetuner.server.raybackend.RayBackend
        self.backend = backend
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._closing = False  # set by shutdown(): nothing new starts
        # admit(run, user): the server's admission check, run again when a queued job is
        # about to start; a FinetunerError fails the run with its sentence instead
        self.admit = None

    # -- starting (the CLI starts directly; a server goes through submit)
    def start(self, run: RunPaths) -> Job:
        with self._lock:
            if self.store.get(run.id) is None:
                self.store.add(run.id, "local", str(run.root))
            return self._launch(run)

    def _launch(self, run: RunPaths) -> Job:
        current = self._jobs.get(run.id)
        if current and not current.done.is_set():
            return current  # a second click on Train does not start a second worker
        extra = dict(self.worker_vars)
        devices = self.gpu_slots.acquire(run.id) if self.gpu_slots is not None else None
        if devices is not None:
            extra["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
            (run.root / "gpus.txt").write_text(",".join(devices))
        env = worker_env(self.env, **extra)

        processes = processes_for(read_json(run.config) or {}, devices)
        if self.backend is not None:
            return self._submit_remote(run, env, processes, devices)
        proc = self._warm_start(run, env) if processes == 1 else None
        if proc is None:
            with open(run.log, "ab") as log:
                proc = subprocess.Popen(
                    # absolute: the worker runs inside the run folder (a relative --output
                    # broke); several processes: through torchrun (finetuner.training.distributed)
                    launch_command(self.python, self.worker_module, str(run.root.resolve()),
                                   processes),
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, env=env, cwd=str(run.root.resolve()),
                )
        job = Job(run=run, pid=proc.pid, proc=proc, processes=processes)
        self._jobs[run.id] = job
        self.store.set(run.id, status="running", started_at=time.time(), pid=proc.pid,
                       gpus=",".join(devices) if devices is not None else None)
        threading.Thread(target=self._watch, args=(job,), daemon=True,
                         name=f"watch-{run.id}").start()
        return job

    def warm_up(self) -> None:
        """Start the warm process now (a server at boot), not with the first training."""

        with self._lock:
            if self.warm and not self._closing:
                self._starter = shared(self.python, worker_env(self.env))

    def _warm_start(self, run: RunPaths, env: dict):
        """The worker forked by the warm process, or None (not a warm manager, a custom
        worker module, the warm process still importing or unusable): start it cold."""
        if not self.warm or self.worker_module != "finetuner.training.worker":
            return None

        self.warm_up()
        starter = self._starter
        if starter is None:
            return None
        if not starter.wait_ready(READY_SECONDS):
            self.warm = starter.alive() or starter.broken is None  # broken: never again
            return None
        return starter.spawn(str(run.root.resolve()), env, str(run.log.resolve()))

    def _submit_remote(self, run: RunPaths, env: dict, processes: int, devices) -> Job:
        """The worker as a job of the backend (Ray), under the run id; followed by status."""

        command = launch_command("python", self.worker_module, str(run.root.resolve()),
                                 processes)
        # GPUs asked of Ray: FINETUNER_RAY_GPUS_PER_PROCESS (0: a CPU job) x processes
        per_process = float(os.environ.get("FINETUNER_RAY_GPUS_PER_PROCESS") or 0)
        self.backend.submit(run.id, command, str(run.root.resolve()), env,
                            num_cpus=max(1, processes), num_gpus=per_process * processes)
        job = Job(run=run, pid=0, processes=processes, remote=True)
        self._jobs[run.id] = job
        self.store.set(run.id, status="running", started_at=time.time(), pid=0,
                       gpus=",".join(devices) if devices is not None else None)
        threading.Thread(target=self._watch, args=(job,), daemon=True,
                         name=f"watch-{run.id}").start()
        return job

    def _watch(self, job: Job) -> None:
        code = None
        unknown_since = None
        while True:
            if job.remote:  # the backend's status is the truth
                state = self.backend.status(job.run.id)
                if state in ("SUCCEEDED", "FAILED", "STOPPED"):
                    code = 0 if state == "SUCCEEDED" else 1
                    break
                # the cluster no longer knows the job (restarted, wiped) or cannot be asked:
                # after two minutes the run is over, not followed forever
                unknown_since = (unknown_since or time.time()) if state is None else None
                if unknown_since and time.time() - unknown_since > 120:
                    break
                time.sleep(1.0)
            elif job.proc is not None:
                try:
                    code = job.proc.wait(timeout=2.0)
                    break
                except subprocess.TimeoutExpired:
                    pass
            elif not _alive(job.pid):  # adopted: not our child, so poll
                break
            else:
                time.sleep(1.0)
            if (self.max_job_seconds and job.stop_requested is None
                    and time.time() - job.started > self.max_job_seconds + 60):
                self.stop(job.run)  # a worker that ignores its own deadline
        try:
            results = finalize(job.run, code, job.stop_requested is not None, job.killed)
            self.store.set(job.run.id, status=results["status"], finished_at=time.time())
        finally:
            if self.gpu_slots is not None:
                self.gpu_slots.release(job.run.id)
            job.done.set()
            self._schedule()

    # -- stopping
    def stop(self, run: RunPaths) -> str:
        """Ask a run to stop (or leave the queue); returns a sentence for the user."""
        if self.state(run) == "queued":
            return self.cancel(run)
        with self._lock:
            job = self._jobs.get(run.id)
        results = read_results(run.results) or {}
        if job is None or job.done.is_set() or results.get("status") in FINAL_STATUSES:
            return "This run is not running: it has already finished."
        if job.stop_requested is not None:
            return "Already stopping; it will end within a few seconds."
        job.stop_requested = time.time()
        run.stop_flag.touch()
        try:
            # one process: SIGTERM too. torchrun would tear its ranks down at once on a
            # SIGTERM; its ranks read the STOP file instead and agree on the step to stop at
            if job.processes <= 1 and not job.remote:
                os.kill(job.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        threading.Thread(target=self._kill_later, args=(job,), daemon=True).start()
        return "Stopping: the run keeps its best checkpoint so far."

    def _kill_later(self, job: Job) -> None:
        if job.done.wait(self.grace):
            return
        deadline = time.time() + FINISH_GRACE_SECONDS
        while time.time() < deadline and last_state(job.run) in FINISHING:
            if job.done.wait(0.5):  # still saving what it kept: not stuck, not killed
                return
        job.killed = True
        if job.remote:
            self.backend.stop(job.run.id)  # Ray ends the job (its process group)
            return
        try:
            os.killpg(job.pid, signal.SIGKILL)
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
        return read_results(run.results)

    def forget(self, run: RunPaths) -> None:
        with self._lock:
            self._jobs.pop(run.id, None)
            self.store.delete(run.id)

    # -- restarts
    def recover(self) -> dict:
        """After a restart: adopt live workers, mark dead ones interrupted, restart the queue."""
        counts = {"adopted": 0, "interrupted": 0, "finished": 0}
        for row in self.store.with_status("running"):
            run = RunPaths(Path(row["run_dir"]))
            results = read_results(run.results) or {}
            if results.get("status") in FINAL_STATUSES:
                self.store.set(run.id, status=results["status"], finished_at=time.time())
                counts["finished"] += 1
            elif self.backend is not None and self.backend.status(run.id) in (
                    "PENDING", "RUNNING"):
                job = Job(run=run, pid=0, started=row["started_at"] or time.time(),
                          remote=True)  # re-attached to its Ray job by id
                self._jobs[run.id] = job
                threading.Thread(target=self._watch, args=(job,), daemon=True).start()
                counts["adopted"] += 1
            elif self.backend is None and row["pid"] and is_worker(row["pid"], run):
                job = Job(run=run, pid=row["pid"], started=row["started_at"] or time.time())
                if self.gpu_slots is not None and row.get("gpus"):
                    self.gpu_slots.adopt(run.id, tuple(row["gpus"].split(",")))
                self._jobs[run.id] = job
                threading.Thread(target=self._watch, args=(job,), daemon=True).start()
                counts["adopted"] += 1
            else:
                mark_interrupted(run)
                self.store.set(run.id, status="interrupted", finished_at=time.time())
                counts["interrupted"] += 1
        self._schedule()
        return counts

    def shutdown(self, stop_running: bool = True) -> None:
        """Stop every worker this manager started, adopted or resumed (the server exits);
        queued runs stay queued for the next start."""
        with self._lock:
            self._closing = True
            jobs = [j for j in self._jobs.values() if not j.done.is_set()]
        if not stop_running:
            return
        for job in jobs:
            # marked, so a search or a comparison trains it again on the next start instead
            # of taking its cut-short score (finetuner.server.search.stopped_by_server)
            (job.run.root / "SHUTDOWN").touch()
            self.stop(job.run)
        deadline = time.time() + self.grace + 2
        for job in jobs:
            if not job.done.wait(max(0.0, deadline - time.time())):
                if job.remote:
                    self.backend.stop(job.run.id)
                    continue
                try:  # past the grace period the kill thread should have done this
                    os.killpg(job.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                job.done.wait(2)
