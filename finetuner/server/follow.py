"""Following runs that something else started: what compare groups and searches build on.

A `Launcher` hides where runs go (the CLI's own `JobManager`, or a user's queue on the
server): `submit` a config under a name and get its run directory, `stop` it, `resume` it
after a restart. `follow` reads a run's events as they come (every evaluation is handed to a
callback that may ask for the run to stop) until its results.json says it is over. Runs are
never read through the job table, only through their run directory: the run directory is
the API, on every backend.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.results import read_results
from finetuner.runs import FINAL_STATUSES, RunPaths, create_run, read_events
from finetuner.server.exits import is_worker, mark_interrupted


@dataclass
class Launcher:
    submit: Callable[[RunConfig, str], RunPaths]
    stop: Callable[[RunPaths], object]
    resume: Callable[[RunPaths], object]
    wait: Callable[[RunPaths], object] | None = None  # until the run's process has exited
    # the run submitted under this name, if any: a process killed between submitting a
    # trial and recording it finds the trial's run again on restart
    find: Callable[[str], RunPaths | None] | None = None


def local_launcher(folder: Path, manager=None) -> Launcher:
    """Runs as folders under `folder`, each started at once by a JobManager (the CLI's way)."""
    from finetuner.server.jobs import JobManager

    manager = manager or JobManager(stop_with_me=True)
    folder = Path(folder)

    def submit(config: RunConfig, name: str) -> RunPaths:
        run = create_run(folder / name, config, run_id="")
        manager.start(run)
        return run

    def resume(run: RunPaths) -> None:
        manager.resume(run)
        manager.start(run)

    def find(name: str) -> RunPaths | None:
        run = RunPaths(folder / name)
        return run if run.config.exists() else None

    def stop(run: RunPaths) -> None:
        manager.stop(run)
        if not manager.is_running(run):  # a worker an earlier process started: its STOP file
            run.stop_flag.touch()

    launcher = Launcher(submit=submit, stop=stop, resume=resume,
                        wait=lambda run: manager.wait(run, timeout=60), find=find)
    launcher.manager = manager  # type: ignore[attr-defined]
    return launcher


@dataclass
class Followed:
    """What `follow` saw of one run."""

    results: dict = field(default_factory=dict)
    evals: list[dict] = field(default_factory=list)
    stopped_by_us: bool = False


def follow(run: RunPaths, on_eval: Callable[[dict, int], bool] | None = None,
           stop: Callable[[RunPaths], object] | None = None, poll: float = 0.5,
           timeout: float | None = None) -> Followed:
    """Read `run`'s events until its results are final. `on_eval(event, k)` gets the k-th
    evaluation (k = 1, 2, ...); when it returns True the run is stopped (once) with `stop`.
    A run whose worker died without results (a reboot, a killed server) is marked
    interrupted, so nothing waits for it forever. A run already over is read in one pass."""
    seen = Followed()
    offset, start, checked = 0, time.monotonic(), time.monotonic()

    def take(events: list[dict], may_stop: bool) -> None:
        for event in events:
            if event.get("type") != "eval":
                continue
            seen.evals.append(event)
            if on_eval is not None and on_eval(event, len(seen.evals)) and may_stop and \
                    not seen.stopped_by_us and stop is not None:
                seen.stopped_by_us = True
                stop(run)

    while True:
        events, offset = read_events(run.events, offset)
        take(events, may_stop=True)
        results = read_results(run.results) or {}
        if results.get("status") in FINAL_STATUSES:
            take(read_events(run.events, offset)[0], may_stop=False)  # the last lines
            seen.results = results
            return seen
        if time.monotonic() - checked > 10:
            checked = time.monotonic()
            if worker_died(run):
                seen.results = mark_interrupted(run)
                return seen
        if timeout is not None and time.monotonic() - start > timeout:
            seen.results = results
            return seen
        time.sleep(poll)


def worker_died(run: RunPaths) -> bool:
    """True when the run's worker started (its first event names its pid) and that process
    is gone, with no results written. A run still waiting in a queue has no worker yet."""

    pid = host = None
    for event in read_events(run.events)[0]:
        if event.get("type") == "status" and event.get("pid"):
            pid = event["pid"]  # the latest start (a resumed run starts again)
            host = event.get("host")
    if host and host != socket.gethostname():
        return False  # a worker on a cluster node: its job manager follows the backend's status
    if pid is None or is_worker(int(pid), run):
        return False
    time.sleep(1.0)  # results may be being written as the process exits
    return (read_results(run.results) or {}).get("status") not in FINAL_STATUSES
