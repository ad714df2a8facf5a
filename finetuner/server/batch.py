"""Predicting a whole file, away from the web process.

    python -m finetuner.server.batch RUN_DIR INPUT OUTPUT [--progress FILE] [--max-rows N]

One worker process per file: its own process group, nice'd, one torch thread, the scrubbed
environment of `finetuner.server.environment.worker_env`, stdout and stderr in batch.log. It reads
the file, refuses one over the row cap before it loads the model, predicts 1,000 rows at a time into
OUTPUT (written as OUTPUT.partial and renamed once complete) and keeps a small JSON file up to
date: {"state": reading|loading|predicting|done|failed, "done", "total", "pid", "error"}. It
stops by itself when the server that started it is gone.

`BatchJobs` (web process, no torch) starts those workers: one file at a time per user, at most
`max_jobs` on the server (FINETUNER_MAX_BATCH_JOBS), each killed with its process group once
it runs past `timeout` seconds (FINETUNER_BATCH_TIMEOUT_SECONDS). The CLI
(`python -m finetuner predict --file`) still predicts in its own process, directly.
"""

from __future__ import annotations

import argparse
import atexit
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
import weakref
from dataclasses import dataclass, field
from pathlib import Path

from finetuner.data.bounds import Bounds
from finetuner.english import plural
from finetuner.errors import FinetunerError
from finetuner.runs import read_json, tail, write_json
from finetuner.server.environment import worker_env
from finetuner.tasks import DEFAULT_TASK

CHUNK_ROWS = 1000
NICE = 10
KEEP_PER_USER = 5  # finished file predictions kept in a user's folder (the newest)
_MANAGERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:  # the web process exits: its file predictions end with it
    for manager in list(_MANAGERS):
        manager.shutdown()


# ---------------------------------------------------------------------------- web process


@dataclass
class BatchJob:
    id: str
    user: str
    folder: Path
    output: Path
    proc: subprocess.Popen
    timeout: float
    started: float = field(default_factory=time.time)
    ended: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None  # "timeout" or "cancelled" when we ended it

    @property
    def progress_path(self) -> Path:
        return self.folder / "progress.json"

    @property
    def log(self) -> Path:
        return self.folder / "batch.log"

    def state(self) -> dict:
        return read_json(self.progress_path) or {}

    def running(self) -> bool:
        return not self.ended.is_set()

    def settled(self) -> bool:
        """Ended, or said done or failed (the process may still be exiting)."""
        return self.ended.is_set() or self.state().get("state") in ("done", "failed")

    def wait(self, seconds: float) -> bool:
        """True once the worker has ended."""
        return self.ended.wait(seconds)

    def message(self) -> str:
        state = self.state()
        total, done = state.get("total"), state.get("done") or 0
        if state.get("state") in ("predicting", "done") and total:
            return f"Predicted {done:,} of {total:,} rows."
        if state.get("state") == "loading" and total is not None:
            return f"Loading the model to predict {total:,} rows…"
        return "Reading the file…"

    def result(self) -> Path:
        """The finished CSV, or a FinetunerError that says why there is none."""
        state = self.state()
        done, total = state.get("done") or 0, state.get("total")
        so_far = f" after {done:,} of {total:,} rows" if total else ""
        if self.reason == "timeout":
            raise FinetunerError(
                f"The file prediction ran past this server's limit of {self.timeout:,.0f} s "
                f"per file (FINETUNER_BATCH_TIMEOUT_SECONDS) and was stopped{so_far}.",
                "Split the file into smaller ones, or ask the administrator to raise the "
                "limit.", code="batch_timeout")
        if self.reason == "cancelled":
            raise FinetunerError(f"The file prediction was stopped{so_far}.",
                                 code="batch_cancelled")
        if state.get("state") == "done" and self.output.exists():
            return self.output
        error = state.get("error") or {}
        if error.get("message"):
            raise FinetunerError(error["message"], error.get("remedy", ""),
                                 code=error.get("code", "batch_failed"))
        code = self.proc.returncode
        raise FinetunerError(
            f"The file prediction process ended unexpectedly (exit code {code}){so_far}.",
            "Try again; if it repeats, the file may be too large for this server's memory. "
            "Last lines of its log:\n" + tail(self.log, 3), code="batch_crashed")


class BatchJobs:
    def __init__(self, max_jobs: int = 1, timeout: float = 3600, max_rows: int = 100_000,
                 python: str = sys.executable, env: dict | None = None,
                 module: str = "finetuner.server.batch") -> None:
        self.max_jobs = max(1, max_jobs)
        self.timeout = timeout
        self.max_rows = max_rows
        self.python = python
        self.env = env
        self.module = module
        self._jobs: list[BatchJob] = []
        self._lock = threading.Lock()
        _MANAGERS.add(self)

    def active(self) -> list[BatchJob]:
        with self._lock:
            return [j for j in self._jobs if j.running()]

    def start(self, user: str, run_dir: str | Path, source: str | Path,
              folder: str | Path) -> BatchJob:
        """Start predicting `source` with the run's model into a new folder under `folder`,
        or refuse with a sentence when this user or the server is busy."""
        with self._lock:
            # a job that said done is over even while its process exits
            self._jobs = [j for j in self._jobs if not j.settled()]
            mine = [j for j in self._jobs if j.user == user]
            if mine:
                state = mine[0].state()
                so_far = (f" ({state.get('done') or 0:,} of {state['total']:,} rows done)"
                          if state.get("total") else "")
                raise FinetunerError(
                    f"You are already predicting a file{so_far}; this server predicts one "
                    "file at a time per user.",
                    "Wait for it to finish, then start the next.", code="batch_busy")
            if len(self._jobs) >= self.max_jobs:
                raise FinetunerError(
                    f"This server is already predicting {plural(len(self._jobs), 'file')} for "
                    f"other users, its limit at once (FINETUNER_MAX_BATCH_JOBS).",
                    "Try again in a few minutes.", code="batch_full")
            _sweep(Path(folder), KEEP_PER_USER - 1)
            job_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(4)
            job_dir = Path(folder) / job_id
            job_dir.mkdir(parents=True)
            stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(source).stem)
            output = job_dir / f"{stem[:60] or 'file'}-predictions.csv"
            env = worker_env(self.env, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                             TOKENIZERS_PARALLELISM="false")
            with open(job_dir / "batch.log", "ab") as log:
                proc = subprocess.Popen(
                    [self.python, "-m", self.module, str(run_dir), str(source), str(output),
                     "--progress", str(job_dir / "progress.json"),
                     "--max-rows", str(self.max_rows)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, env=env, cwd=str(job_dir))
            job = BatchJob(id=job_id, user=user, folder=job_dir, output=output, proc=proc,
                           timeout=self.timeout)
            self._jobs.append(job)
        threading.Thread(target=self._watch, args=(job,), daemon=True,
                         name=f"batch-{job_id}").start()
        return job

    def _watch(self, job: BatchJob) -> None:
        try:
            job.proc.wait(timeout=job.timeout)
        except subprocess.TimeoutExpired:
            job.reason = "timeout"
            _kill_group(job.proc)
        finally:
            try:
                job.proc.wait(30)
            finally:
                job.ended.set()

    def cancel(self, job: BatchJob) -> None:
        """Stop a worker that has not settled (one that said done is left to exit)."""
        if job.running() and not job.settled():
            job.reason = job.reason or "cancelled"
            _kill_group(job.proc)

    def shutdown(self) -> None:
        for job in self.active():
            self.cancel(job)


def _sweep(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` earlier job folders of one user (none is running:
    a user runs one at a time)."""
    if folder.is_dir():
        for old in sorted(p for p in folder.iterdir() if p.is_dir())[: -keep or None]:
            shutil.rmtree(old, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------- worker process


def run(run_dir: Path, source: Path, output: Path, progress: Path, max_rows: int) -> int:
    parent = os.getppid()
    state = {"state": "reading", "pid": os.getpid(), "done": 0, "total": None,
             "started": time.time()}

    def report(**changes) -> None:
        state.update(changes, updated=time.time())
        write_json(progress, state)

    report()
    try:
        from finetuner.data.tables import read_table
        from finetuner.serving.export import read_meta
        from finetuner.tasks import get_task

        meta = read_meta(run_dir / "model" if (run_dir / "model").is_dir() else run_dir)
        if not meta:
            raise FinetunerError("This run holds no finished model.",
                                 "Pick a run that completed.", code="no_model")
        frame = read_table(source, bounds=Bounds.default(
            max_rows, "FINETUNER_MAX_PREDICT_ROWS")).frame
        impl = get_task(meta.get("task", DEFAULT_TASK)).impl()
        examples = impl.examples_from_frame(frame, meta.get("columns") or {})
        report(state="loading", total=len(examples))

        import torch

        torch.set_num_threads(1)
        from finetuner.serving.inference import Predictor

        predictor = Predictor.load(run_dir, batch=True)  # files: fastest in batches
        report(state="predicting")
        partial = output.with_name(output.name + ".partial")

        def step(done: int) -> None:
            report(done=done)
            if os.getppid() != parent:  # the server is gone: nobody will collect this
                print("the server that started this prediction has gone; stopping",
                      flush=True)
                os._exit(3)

        predictor.write_predictions(frame, examples, partial, CHUNK_ROWS, step)
        os.replace(partial, output)
        # the log line first: whoever sees "done" may read the log at once
        print(f"predicted {len(examples):,} rows into {output.name}", flush=True)
        report(state="done", done=len(examples), rows=len(examples))
        return 0
    except FinetunerError as exc:
        print(f"Error: {exc.text}", flush=True)
        report(state="failed", error=exc.to_dict())
        return 2
    except Exception as exc:  # noqa: BLE001 - the user gets a sentence, the log the trace
        traceback.print_exc()
        report(state="failed", error={
            "code": "batch_crashed",
            "message": f"The file could not be predicted ({type(exc).__name__}: {exc}).",
            "remedy": "Check that the file has the columns the model was trained on."})
        return 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m finetuner.server.batch",
                                 description="Predict a data file with a finished run.")
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("input", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--progress", type=Path, help="JSON progress file (default: next to "
                                                  "OUTPUT)")
    ap.add_argument("--max-rows", type=int, default=100_000)
    ap.add_argument("--nice", type=int, default=NICE)
    args = ap.parse_args(argv)
    try:
        os.nice(args.nice)
    except OSError:
        pass
    progress = args.progress or args.output.with_name("progress.json")
    return run(args.run_dir, args.input, args.output, progress, args.max_rows)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # everything is written: skip the slow teardown of torch
