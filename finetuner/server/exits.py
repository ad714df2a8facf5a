"""How a worker's end becomes its run's record: results.json written for a worker that died
without one (killed by the system, crashed, a failed rank of several, a server stopped under
it), the last state it reported, and whether a pid is still a run's worker after a restart.
No torch here."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path

from finetuner.procs import alive as _alive
from finetuner.results import read_results, write_results
from finetuner.runs import FINAL_STATUSES, RunPaths, latest_checkpoint, read_events, read_json, tail
from finetuner.training.distributed import rank_errors


def is_worker(pid: int, run: RunPaths) -> bool:
    """True when pid is still the worker of this run (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not _alive(pid):
        return False
    if str(run.root.resolve()).encode() in cmdline:
        return True
    try:  # forked warm (finetuner.server.warmstart): the command line is the warm process's
        return Path(os.readlink(f"/proc/{pid}/cwd")) == run.root.resolve()
    except OSError:
        return False


def base_results(run: RunPaths, status: str, **extra) -> dict:
    config = read_json(run.config) or {}
    return {"status": status, "task": config.get("task"),
            "method": (config.get("method") or {}).get("method"), "test": None,
            "validation": None, "diagnosis": None, "params": None, "timing": None,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"), **extra}


def mark_interrupted(run: RunPaths) -> dict:
    events, _ = read_events(run.events)
    steps = [e["step"] for e in events if e.get("type") == "progress"]
    checkpoint = latest_checkpoint(run)
    where = f" at step {steps[-1]}" if steps else ""
    remedy = (f"Resume it to continue from its last checkpoint (step "
              f"{checkpoint.name.split('-')[-1]})." if checkpoint else
              "It stopped before its first checkpoint: start it again.")
    results = base_results(run, "interrupted", resumable=checkpoint is not None, error={
        "code": "interrupted", "remedy": remedy,
        "message": f"The server stopped while this run was training{where}."})
    write_results(run.results, results)
    return results


def rank_failure(run: RunPaths) -> dict | None:
    """A run on several processes whose rank other than 0 failed or died: which, and why."""

    errors = rank_errors(run.root)
    if errors:
        e = errors[0]
        return {"code": e.get("code") or "rank_failed", "remedy": e.get("remedy", ""),
                "message": f"Training process {e.get('rank')} (of several) failed: "
                           f"{e.get('message', '')}"}
    text = tail(run.log, 60)
    if "ChildFailedError" in text:
        found = re.search(r"rank\s*:\s*(\d+)[^\n]*\n(?:.*\n){0,4}?.*exitcode\s*:\s*(-?\d+)", text)
        which = f" {found.group(1)} (exit code {found.group(2)})" if found else ""
        return {"code": "rank_died", "message": f"Training process{which} of this run died, "
                "so every process of it was ended.", "remedy": "See worker.log; if memory ran "
                "out, lower the batch size or use fewer processes. Last lines:\n"
                + tail(run.log, 8)}
    return None


def last_state(run: RunPaths) -> str | None:
    """The state of the worker's last status event (read from the end of its events)."""
    try:
        with open(run.events, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 16384))
            tail_bytes = fh.read()
    except OSError:
        return None
    for line in reversed(tail_bytes.splitlines()):
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("type") == "status":
            return event.get("state")
    return None


def finalize(run: RunPaths, code: int | None, stop_requested: bool, killed: bool) -> dict:
    """Make sure results.json exists and says how the worker ended."""
    results = read_results(run.results)
    if results and results.get("status") in FINAL_STATUSES:
        return results
    if stop_requested:
        results = base_results(run, "stopped",
                                note="Stopped by force after the grace period; nothing was "
                                     "saved.")
    elif code == -signal.SIGKILL:
        results = base_results(run, "failed", error={
            "code": "killed",
            "message": "The training process was killed by the system, most likely because "
                       "the machine ran out of memory.",
            "remedy": "Lower the batch size or max length, or use LoRA or head-only training."})
    elif code is None:  # adopted after a restart: its exit status is not ours to read
        results = base_results(run, "failed", error={
            "code": "killed",
            "message": "The training process disappeared without finishing: it was most "
                       "likely killed (for example by the system when memory ran out).",
            "remedy": "Start it again; if it happens again, lower the batch size or max "
                      "length, or use LoRA. Last lines of worker.log:\n" + tail(run.log, 5)})
    elif rank_failure(run):
        results = base_results(run, "failed", error=rank_failure(run))
    else:
        results = base_results(run, "failed", error={
            "code": "crashed",
            "message": f"The training process ended unexpectedly (exit code {code}).",
            "remedy": "See worker.log for details. Last lines:\n" + tail(run.log, 8)})
    write_results(run.results, results)
    return results
