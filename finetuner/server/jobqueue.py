"""The job queue: waiting runs in a fair order (round-robin between users), admission when a
run's turn comes, a cap on each user's waiting runs, cancel and resume. A mixin of
`finetuner.server.jobs.JobManager`, which owns what it reads (`store`, the job table;
`_lock`; `_closing`; `max_jobs`, `max_queued_per_user`, `gpu_slots`, `admit`) and starts a
run whose turn came (`_launch`). No torch here."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from finetuner.errors import FinetunerError
from finetuner.results import read_results, write_results
from finetuner.runs import FINAL_STATUSES, RunPaths
from finetuner.server.exits import base_results

log = logging.getLogger("finetuner.server.jobs")


class JobQueue:
    """The queue half of a JobManager (see the module docstring)."""

    def submit(self, run: RunPaths, user: str = "local", fingerprint: str = "") -> dict:
        """Queue a run (or start it at once when a slot is free)."""
        with self._lock:
            mine = self.active(user)
            if self.max_queued_per_user and len(mine) >= self.max_queued_per_user:
                raise FinetunerError(
                    f"You already have {len(mine)} trainings running or waiting (the limit is "
                    f"{self.max_queued_per_user}).",
                    "Wait for one to finish or cancel one, then start this one.",
                    code="queue_full")
            self.store.add(run.id, user, str(run.root), fingerprint)
            self._schedule()
            return {"state": self.state(run), "position": self.position(run)}

    def active(self, user: str) -> list[dict]:
        """The user's queued and running jobs (a run that wrote its results is done, even if
        its process is still exiting)."""
        return [row for row in self.store.active(user)
                if (read_results(Path(row["run_dir"]) / "results.json") or {}).get("status")
                not in FINAL_STATUSES]

    def _schedule(self) -> None:
        with self._lock:
            if self._closing:  # a job that ends during shutdown must not start the next
                return
            running = len(self.store.with_status("running"))
            for row in self.fair_order():
                if self.max_jobs is not None and running >= self.max_jobs:
                    break
                if self.gpu_slots is not None and not self.gpu_slots.free:
                    break  # every GPU set is held: the next job waits for one
                run = RunPaths(Path(row["run_dir"]))
                if not self._admitted(run, row["user"]):
                    continue
                self._launch(run)
                running += 1

    def _admitted(self, run: RunPaths, user: str) -> bool:
        if self.admit is None:
            return True
        try:
            self.admit(run, user)
            return True
        except FinetunerError as exc:
            self.store.set(run.id, status="failed", finished_at=time.time())
            write_results(run.results, base_results(run, "failed", error={
                "code": exc.code or "refused", "message": exc.message,
                "remedy": exc.remedy or ""}))
            return False
        except Exception as exc:  # noqa: BLE001 - a broken run folder must not stop the queue
            log.exception("admission check of %s failed", run.id)
            self.store.set(run.id, status="failed", finished_at=time.time())
            write_results(run.results, base_results(run, "failed", error={
                "code": "refused", "message": "This run's settings could not be read when "
                f"its turn came ({type(exc).__name__}).", "remedy": "Start it again."}))
            return False

    def fair_order(self) -> list[dict]:
        """The waiting jobs in the order they will start: round-robin between users. A
        user's n-th waiting job comes after every other user's (n-1)-th, counting the jobs
        each user already has running, so one user's pile never holds the others back; ties
        go to whoever queued first."""
        queued = self.store.with_status("queued")
        busy: dict[str, int] = {}
        for row in self.store.with_status("running"):
            busy[row["user"]] = busy.get(row["user"], 0) + 1
        turn: dict[str, int] = {}
        ranked = []
        for i, row in enumerate(queued):
            n = turn.get(row["user"], busy.get(row["user"], 0))
            turn[row["user"]] = n + 1
            ranked.append((n, i, row))
        return [row for _, _, row in sorted(ranked, key=lambda t: (t[0], t[1]))]

    def position(self, run: RunPaths) -> int | None:
        """1 for the next to start; None when not waiting."""
        queued = [r["run_id"] for r in self.fair_order()]
        return queued.index(run.id) + 1 if run.id in queued else None

    def gpus_of(self, run_id: str) -> str:
        """The GPUs a running job holds ('' without GPU slots)."""
        row = self.store.get(run_id)
        return (row or {}).get("gpus") or ""

    def queue_length(self) -> int:
        return len(self.store.with_status("queued"))

    def state(self, run: RunPaths) -> str | None:
        row = self.store.get(run.id)
        return row["status"] if row else None

    def cancel(self, run: RunPaths) -> str:
        with self._lock:
            if self.state(run) != "queued":
                return "This run is not waiting in the queue."
            self.store.set(run.id, status="cancelled", finished_at=time.time())
        write_results(run.results, base_results(run, "stopped",
                                              note="Cancelled while waiting in the queue."))
        return "Removed from the queue."

    def resume(self, run: RunPaths, user: str = "local") -> dict:
        """Queue an interrupted run again; the worker continues from its last checkpoint."""
        results = read_results(run.results) or {}
        if results.get("status") != "interrupted":
            raise FinetunerError("Only an interrupted run can be resumed.", code="not_resumable")
        (run.root / "RESUME").touch()
        (run.root / "SHUTDOWN").unlink(missing_ok=True)
        run.results.unlink(missing_ok=True)
        run.stop_flag.unlink(missing_ok=True)
        return self.submit(run, user)
