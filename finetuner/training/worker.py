"""The training process: `python -m finetuner.training.worker RUN_DIR`.

Started by `finetuner.server.jobs` in its own process group with stdout/stderr going to
RUN_DIR/worker.log. Reads RUN_DIR/config.json, appends to RUN_DIR/events.jsonl and always ends
by writing RUN_DIR/results.json with status completed, stopped or failed (with a readable
reason and remedy). A stop request (RUN_DIR/STOP or SIGTERM) is honoured at the next step.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import socket
import sys
import time
import traceback
import warnings
from pathlib import Path

from finetuner.training import distributed


def quiet_environment() -> None:
    """No telemetry, no progress bars, no advisory chatter in worker.log (also applied to a
    worker forked warm, whose environment is replaced after the libraries were imported)."""
    for key, value in (("TOKENIZERS_PARALLELISM", "false"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                       ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"),
                       ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TRANSFORMERS_VERBOSITY", "error")):
        os.environ.setdefault(key, value)
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecations, not news


quiet_environment()
from finetuner.errors import FinetunerError  # noqa: E402
from finetuner.procs import alive as _alive  # noqa: E402
from finetuner.procs import started as _started  # noqa: E402
from finetuner.results import write_results  # noqa: E402
from finetuner.runs import EventWriter, RunPaths  # noqa: E402

OOM_REMEDY = ("Lower the batch size or max length, or use LoRA or head-only training, which "
              "need far less memory.")


class StopSignal:
    """True once the user asked to stop (a STOP file in the run directory, or SIGTERM) or the
    server's wall-clock cap per training (FINETUNER_WORKER_MAX_SECONDS, set by the job
    manager from FINETUNER_MAX_JOB_HOURS) has passed."""

    def __init__(self, run: RunPaths, max_seconds: float | None = None,
                 parent: int | None = None) -> None:
        self.run = run
        self.at: float | None = None
        self.reason: str | None = None
        self.deadline = time.time() + max_seconds if max_seconds else None
        # the command-line process this worker belongs to (FINETUNER_STOP_WITH_PID, set by
        # the CLI's job manager): when it is gone, however it ended, the run stops cleanly
        self.parent = parent
        self._born = _started(parent) if parent else None  # a reused pid is not the parent
        self._looked = 0.0

    def __call__(self) -> bool:
        if self.at is None and self.run.stop_flag.exists():
            self.at = time.time()
        if self.at is None and self.parent and time.time() - self._looked >= 1.0:
            self._looked = time.time()

            if not _alive(self.parent) or _started(self.parent) != self._born:
                self.at, self.reason = time.time(), "parent_gone"
                # marked like a server's shutdown: a search or a comparison resumes it on
                # its next start instead of taking its cut-short score
                (self.run.root / "SHUTDOWN").touch()
        if self.at is None and self.deadline is not None and time.time() >= self.deadline:
            self.at, self.reason = time.time(), "time_limit"
        return self.at is not None

    def trip(self, *_args) -> None:
        if self.at is None:
            self.at = time.time()


def time_limit_note(seconds: float, saved: bool) -> str:
    hours = seconds / 3600
    span = f"{hours:g} h" if hours >= 1 else f"{seconds / 60:.3g} min"
    kept = "the best checkpoint so far was kept" if saved else "it ended before its first " \
        "evaluation, so no model was saved"
    return (f"Ended by this server's time limit of {span} per training "
            f"(FINETUNER_MAX_JOB_HOURS); {kept}. Ask the administrator to raise the limit, or "
            "train for fewer epochs or on less data.")


def lost_peer(exc: BaseException) -> bool:
    """A collective that failed because another rank is gone (gloo or NCCL)."""
    text = f"{type(exc).__name__}: {exc}".lower()
    return any(s in text for s in ("gloo", "nccl", "connection closed by peer",
                                   "connection reset by peer", "processgroup", "broken pipe"))


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or any(
        s in text for s in ("out of memory", "can't allocate memory", "not enough memory",
                            "cannot allocate memory",
                            # a library loaded late, past the address-space cap
                            "failed to map segment from shared object"))


DISK_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", 122)}
# what torch's checkpoint writer says when a write fails (it hides the errno)
WRITE_FAILED = ("unexpected pos", "iostream error", "failed writing file",
                "no space left on device", "disk quota exceeded")


def disk_full(exc: BaseException, where: Path | None = None) -> bool:
    """A write that failed because the disk (or the user's quota) is full: an OSError with
    ENOSPC / EDQUOT anywhere in the exception's chain, or torch's writer failing (it hides the
    errno) while under 1 GiB is free where the run writes."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in DISK_ERRNOS:
            return True
        if any(s in str(e).lower() for s in WRITE_FAILED) and _free_mb(where) < 1024:
            return True
        todo += [e.__cause__, e.__context__]
    return False


def _free_mb(path: Path | None = None) -> float:
    try:
        return shutil.disk_usage(path or Path.cwd()).free / 2**20
    except OSError:
        return float("inf")


def disk_full_failure(task, method, run: RunPaths) -> dict:
    free = _free_mb(run.root)
    return failure(
        task, method, "The disk is full: the training could not write its files "
        f"({free:,.0f} MB free now where runs are kept).",
        "Free disk space (delete runs you no longer need in Your runs, or ask the "
        "administrator), then start the run again.", "disk_full")


def limit_memory(extra_mb: int | None) -> None:
    """Cap the address space at its current size plus extra_mb, so a run that needs more
    fails with a clean out-of-memory error instead of taking the machine down."""
    if not extra_mb:
        return
    with open("/proc/self/status") as fh:
        vm_kb = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    limit = (vm_kb * 1024) + extra_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def unlimit_memory() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))


def peak_memory_mb() -> dict:
    """Peak resident memory of this process (and GPU memory when one was used), in MiB."""
    out = {"rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["gpu"] = round(torch.cuda.max_memory_allocated() / 2**20)
    return out


def log_line(event: dict) -> None:
    """The worker log reads like the CLI: one readable line per event."""
    from finetuner.runs import format_event

    line = format_event(event)
    if line:
        print(time.strftime("%H:%M:%S ") + line, flush=True)


def failure(config_task: str | None, method: str | None, message: str, remedy: str,
            code: str) -> dict:
    return {"status": "failed", "task": config_task, "method": method,
            "error": {"message": message, "remedy": remedy, "code": code},
            "test": None, "validation": None, "diagnosis": None, "params": None,
            "timing": None}


class QuietEvents(EventWriter):
    """The events of a rank other than 0 under torchrun: seen by nobody (rank 0 writes)."""

    def __init__(self) -> None:
        self.path, self.echo, self.listeners = None, None, []

    def emit(self, type_: str, **fields) -> dict:
        return {"type": type_, **fields}


def run(run_dir: Path) -> dict:
    run = RunPaths(run_dir)
    main_rank = distributed.is_main()
    events = EventWriter(run.events, echo=log_line) if main_rank else QuietEvents()
    max_seconds = float(os.environ.get("FINETUNER_WORKER_MAX_SECONDS") or 0) or None
    stop = StopSignal(run, max_seconds,
                      int(os.environ.get("FINETUNER_STOP_WITH_PID") or 0) or None)
    signal.signal(signal.SIGTERM, stop.trip)
    events.emit("status", state="starting", pid=os.getpid(), host=socket.gethostname(),
                message="Starting the worker"
                + (f" ({distributed.world_size()} processes)" if distributed.distributed()
                   else ""))
    task = method = ctx = None
    try:
        config = run.load_config()
        task, method = config.task, config.method.method
        from finetuner.training import (
            loop as training,  # heavy imports (torch, transformers) happen here
        )

        limit_memory(config.training.max_memory_mb)
        ctx = training.Context(run=run, config=config, events=events, should_stop=stop)
        results = training.train(ctx)
    except FinetunerError as exc:
        results = failure(task, method, exc.message, exc.remedy, exc.code)
    except BaseException as exc:  # noqa: BLE001 - the run must always end with results.json
        traceback.print_exc()
        if is_oom(exc):
            results = failure(task, method, "The training ran out of memory.", OOM_REMEDY, "oom")
        elif disk_full(exc, run.root):
            results = disk_full_failure(task, method, run)
        elif distributed.distributed() and lost_peer(exc):
            results = failure(
                task, method, f"Another of this run's {distributed.world_size()} training "
                "processes died, so this one could not go on (the run was ended).",
                "See worker.log for the process that failed first; if memory ran out, lower "
                "the batch size or train on fewer processes.", "rank_died")
        elif isinstance(exc, KeyboardInterrupt):
            results = failure(task, method, "The training was interrupted.", "", "interrupted")
        else:
            results = failure(
                task, method,
                f"The training failed with an unexpected error: {type(exc).__name__}: {exc}",
                "The full traceback is in worker.log; please report it with your settings.",
                "unexpected",
            )
    unlimit_memory()
    if not main_rank:  # rank 0 writes the results; a failing rank leaves its reason
        if results.get("status") == "failed":
            distributed.write_rank_error(run.root, results)
        return results
    if stop.reason == "time_limit" and results.get("status") in ("stopped", "completed"):
        results["status"] = "stopped"
        results["limit"] = "max_job_hours"
        results["note"] = time_limit_note(max_seconds, bool(results.get("model_dir")))
    if stop.reason == "parent_gone" and results.get("status") == "stopped":
        results["note"] = ("Stopped because the command that started it ended. "
                           + (results.get("note") or ""))
    if stop.at is not None:
        results.setdefault("stop_seconds", round(time.time() - stop.at, 2))
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["peak_memory_mb"] = peak_memory_mb()
    if (results.get("onnx") or {}).get("pending") and results.get("status") != "completed":
        # the time cap turned a finished run into a stopped one: no export follows
        from finetuner.serving.runtimes import STOPPED

        results["onnx"] = {"error": STOPPED}
    write_results(run.results, results)
    if ctx is not None and ctx.onnx_splits and results.get("status") == "completed":
        results = export_onnx(run, ctx, results, stop)
    events.emit("done", status=results["status"], error=results.get("error"))
    return results


def export_onnx(run: RunPaths, ctx, results: dict, stop) -> dict:
    """The ONNX export, after results.json says the run completed (a stop or a kill during
    the export keeps the finished run); the export makes the zip again, then results.json
    is written with its check."""
    from finetuner.training.finishing import onnx_step

    results["onnx"] = onnx_step(run, ctx.onnx_splits, ctx.events, stop)
    write_results(run.results, results)
    return results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m finetuner.training.worker RUN_DIR", file=sys.stderr)
        return 2
    results = run(Path(argv[0]))
    return 0 if results["status"] in ("completed", "stopped", "rank-done") else 1


if __name__ == "__main__":
    status = main()
    # results.json and the last event are written: skip the interpreter's teardown of torch
    # and the datasets (1.5 s on a 2-core CPU, during which the run looked still running)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
