"""Comparisons and searches on the server: groups of ordinary runs in a user's own queue.

A group lives in its owner's workspace, `users/<key>/groups/<id>/`: `group.json` (kind, name,
settings, budget, which run is which member, status), the data files copied once (so a
restart months later still has them), and for a search Optuna's `study.journal` and
`search.json` (finetuner.server.search). Every member and every trial is a normal run of the user,
submitted through `Workspace.submit`, so it waits in the fair queue, counts against the
user's caps (FINETUNER_MAX_QUEUED_PER_USER, FINETUNER_MAX_GROUPS_PER_USER), shows on the admin
view and can be stopped like any run.

A driver thread of the web process walks each active group: a comparison submits its members
as the user's cap allows and waits for them; a search runs `Search.run` with a launcher into
the user's queue. On a restart, `recover` starts the drivers of every group still running:
runs a SIGKILLed server left behind are adopted by the job manager and followed, runs a
clean shutdown stopped (marked SHUTDOWN) are trained again, an interrupted run is resumed
from its checkpoint. The test split of a trial is never scored; a comparison's members
each score theirs (shown, labelled as not used for the choice).
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.results import read_results
from finetuner.runs import (
    FINAL_STATUSES,
    RunPaths,
    copy_data,
    new_run_id,
    read_json,
    write_json,
)
from finetuner.server.compare import METHOD_NAMES, members
from finetuner.server.exits import mark_interrupted
from finetuner.server.follow import Launcher
from finetuner.server.groupviews import GroupViews

log = logging.getLogger("finetuner.server.groups")
POLL = 1.0


class GroupClosed(Exception):
    """The group was stopped or the server is shutting down: the driver ends here."""


class Groups(GroupViews):
    """Every user's groups on one server, and the threads that drive them."""

    def __init__(self, studio, max_per_user: int = 2) -> None:
        self.studio = studio
        self.max_per_user = max_per_user
        self.closing = False
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- where
    def folder(self, ws, group_id: str) -> Path:
        """The user's own group, or 'No such comparison or search'; never another path."""
        from finetuner.runs import RUN_ID

        folder = ws.root / "groups" / str(group_id or "")
        if not isinstance(group_id, str) or not RUN_ID.match(group_id) or \
                not (folder / "group.json").is_file():
            raise FinetunerError("No such comparison or search.",
                                 "Pick one of yours from the list.", code="no_group")
        return folder

    def list(self, ws) -> list[dict]:
        root = ws.root / "groups"
        out = []
        for folder in sorted(root.iterdir(), reverse=True) if root.is_dir() else []:
            meta = read_json(folder / "group.json")
            if meta:
                out.append({"id": folder.name, "name": meta.get("name", folder.name),
                            "kind": meta.get("kind"), "status": meta.get("status"),
                            "created": meta.get("created", "")})
        return out

    def active(self, ws) -> list[dict]:
        return [g for g in self.list(ws) if g["status"] in ("running", "stopping")]

    # ---------------------------------------------------------------- starting
    def start_compare(self, ws, base: RunConfig, methods: list[str] | None = None,
                      vary: tuple[str, list] | None = None, max_minutes: float | None = None,
                      max_memory_mb: float | None = None, name: str = "") -> str:
        planned = members(base, methods, vary)  # refuses fewer than two members
        for member, config in planned:  # every member's final settings, before anything runs
            try:
                ws.admit(config)
            except FinetunerError as exc:
                raise FinetunerError(f"Member '{member}': {exc.message}", exc.remedy,
                                     code=exc.code) from None
        label = name.strip()[:60] or "compare " + " vs ".join(
            METHOD_NAMES.get(n, n) for n, _ in planned)
        return self._create(ws, base, "compare", label, {
            "methods": list(methods or []) or None, "vary": list(vary) if vary else None,
            "budget": {"minutes": max_minutes, "memory_mb": max_memory_mb},
            "planned": [n for n, _ in planned], "members": {}})

    def start_curve(self, ws, base: RunConfig, fractions=None, name: str = "") -> str:
        """A learning curve: the configuration on nested shares of its training split."""
        from finetuner.server import learning_curve

        fractions = list(fractions or learning_curve.FRACTIONS)
        planned = learning_curve.members(base, fractions)
        for _member, config in planned:
            ws.admit(config)
        label = name.strip()[:60] or "learning curve " + METHOD_NAMES.get(
            base.method.method, base.method.method)
        return self._create(ws, base, "curve", label, {
            "fractions": fractions, "planned": [n for n, _ in planned], "members": {}})

    def start_search(self, ws, base: RunConfig, trials: int = 10, minutes: float | None = None,
                     pruner: str = "median", seed: int = 0, name: str = "") -> str:
        from finetuner.server.search import Search, _pruner

        _pruner(pruner)  # an unknown pruner is refused before anything is created
        self.studio.limits.check_trials(int(trials))
        ws.admit(base)
        label = name.strip()[:60] or f"tune {METHOD_NAMES.get(base.method.method)}"

        def setup(folder: Path, copied: RunConfig) -> None:
            Search(folder, copied, seed=int(seed), pruner=pruner)
        return self._create(ws, base, "search", label, {
            "budget": {"trials": int(trials), "minutes": minutes}}, setup)

    def _create(self, ws, base: RunConfig, kind: str, name: str, extra: dict,
                setup=None) -> str:
        if self.closing:
            raise FinetunerError("The server is shutting down.", "Try again in a minute.",
                                 code="closing")
        with self._lock:
            if len(self.active(ws)) >= self.max_per_user:
                raise FinetunerError(
                    f"You already have {self.max_per_user} comparisons or searches running "
                    "(FINETUNER_MAX_GROUPS_PER_USER).",
                    "Wait for one to finish, or stop one on the Compare & tune tab.",
                    code="groups_full")
            ws.check_quota()
            group_id = new_run_id()
            folder = ws.root / "groups" / group_id
            copied = copy_data(base, folder / "data")
            if setup is not None:
                setup(folder, copied)
            write_json(folder / "group.json", {
                "kind": kind, "name": name, "status": "running",
                "created": time.strftime("%Y-%m-%d %H:%M"), "user": ws.user,
                "base": copied.to_dict(), **extra})
        self._drive(ws.user, folder)
        return group_id

    def _drive(self, user: str, folder: Path) -> None:
        with self._lock:
            thread = self._threads.get(str(folder))
            if thread is not None and thread.is_alive():
                return
            thread = threading.Thread(target=self._run, args=(user, folder), daemon=True,
                                      name=f"group-{folder.name}")
            self._threads[str(folder)] = thread
            thread.start()

    def recover(self) -> int:
        """After a restart: drive again every group that was running (or being stopped)."""
        count = 0
        for meta_path in sorted((self.studio.home / "users").glob("*/groups/*/group.json")):
            meta = read_json(meta_path) or {}
            if meta.get("status") in ("running", "stopping") and meta.get("user"):
                self._drive(meta["user"], meta_path.parent)
                count += 1
        return count

    def delete(self, ws, group_id: str) -> str:
        """Remove a finished group's own folder (its study and data copy); its runs stay in
        Your runs."""
        folder = self.folder(ws, group_id)
        meta = read_json(folder / "group.json") or {}
        if meta.get("status") in ("running", "stopping"):
            raise FinetunerError("It is still running.", "Stop it first, then delete it.",
                                 code="busy")
        shutil.rmtree(folder, ignore_errors=True)
        return f"Deleted {meta.get('name', 'it')} (its runs stay in Your runs)."

    def owner_active(self, ws, run: RunPaths) -> str | None:
        """The name of the running group this run belongs to, if any."""
        try:
            group_id = (run.root / "group.txt").read_text().strip()
            meta = read_json(self.folder(ws, group_id) / "group.json") or {}
        except (OSError, FinetunerError):
            return None
        return meta.get("name") if meta.get("status") in ("running", "stopping") else None

    def base_of(self, ws, run: RunPaths) -> dict | None:
        """The settings the user started this run's comparison, search or learning curve
        with (a member's own config differs in what the group varies), or None for a run
        that belongs to no group of theirs."""
        try:
            group_id = (run.root / "group.txt").read_text().strip()
            meta = read_json(self.folder(ws, group_id) / "group.json") or {}
        except (OSError, FinetunerError):
            return None
        return meta.get("base") or None

    def wait(self, ws, group_id: str, timeout: float | None = None) -> None:
        thread = self._threads.get(str(self.folder(ws, group_id)))
        if thread is not None:
            thread.join(timeout)

    # ---------------------------------------------------------------- stopping
    def stop(self, ws, group_id: str) -> str:
        """Stop a group: its waiting members leave the queue, its running ones stop (each
        keeps its best checkpoint), a search starts no further trial."""
        folder = self.folder(ws, group_id)
        meta = read_json(folder / "group.json") or {}
        if meta.get("status") not in ("running", "stopping"):
            return "It has already finished."
        (folder / "STOP").touch()
        _update(folder, status="stopping")
        for run in self._runs(ws, folder):
            if ws.status(run) in ("running", "queued"):
                self.studio.jobs.stop(run)
        return ("Stopping: waiting members leave the queue and running ones stop within a few "
                "seconds.")

    def resume(self, ws, group_id: str, more_trials: int = 0) -> str:
        """Carry on a stopped or finished search (optionally with more trials), from its
        stored study."""
        folder = self.folder(ws, group_id)
        meta = read_json(folder / "group.json") or {}
        if meta.get("kind") != "search":
            raise FinetunerError("Only a search can be continued.",
                                 "Start a new comparison instead.", code="bad_setting")
        if meta.get("status") in ("running", "stopping"):
            return "It is still running."
        with self._lock:
            if len(self.active(ws)) >= self.max_per_user:
                raise FinetunerError(
                    f"You already have {self.max_per_user} comparisons or searches running.",
                    "Wait for one to finish first.", code="groups_full")
            budget = dict(meta.get("budget") or {})
            budget["trials"] = int(budget.get("trials") or 0) + max(0, int(more_trials or 0))
            self.studio.limits.check_trials(budget["trials"])  # in all, not per continuation
            ws.admit(RunConfig.from_dict(meta["base"]))
            (folder / "STOP").unlink(missing_ok=True)
            _update(folder, status="running", budget=budget)
        self._drive(ws.user, folder)
        return f"Continuing the search, up to {budget['trials']} trials in all."

    # ---------------------------------------------------------------- the driver
    def _launcher(self, ws, folder: Path) -> Launcher:
        meta = read_json(folder / "group.json") or {}

        def halted() -> bool:
            return self.closing or (folder / "STOP").exists()

        def queued(action):
            """Run `action` when the user's queue has room (a group waits its turn among the
            user's own trainings rather than failing)."""
            while True:
                if halted():
                    raise GroupClosed
                try:
                    return action()
                except FinetunerError as exc:
                    if exc.code != "queue_full":
                        raise
                time.sleep(2 * POLL)

        def submit(config: RunConfig, name: str) -> RunPaths:
            run, _state = queued(lambda: ws.submit(config, f"{meta.get('name')} · {name}",
                                                   duplicate_ok=True))
            (run.root / "group.txt").write_text(folder.name)
            return run

        def find(name: str) -> RunPaths | None:
            """This group's run of that name (group.txt is written just after the submit: a
            run without it yet, of the same name, is this group's too)."""
            full = f"{meta.get('name')} · {name}"
            for summary in sorted(ws.list_runs(), key=lambda r: r.id, reverse=True):
                if summary.name != full:
                    continue
                run = ws.run(summary.id)
                mark = run.root / "group.txt"
                if not mark.exists() or mark.read_text().strip() == folder.name:
                    return run
            return None

        launcher = Launcher(submit=submit, stop=self.studio.jobs.stop,
                            resume=lambda run: queued(lambda: ws.resume(run.id)),
                            wait=lambda run: self.studio.jobs.wait(run, timeout=60), find=find)
        launcher.closing = lambda: self.closing  # type: ignore[attr-defined]
        return launcher

    def _run(self, user: str, folder: Path) -> None:
        ws = self.studio.workspace(user)
        meta = read_json(folder / "group.json") or {}
        try:
            if meta.get("kind") == "search":
                self._search(ws, folder, meta)
            else:
                self._compare(ws, folder, meta)
        except GroupClosed:
            pass
        except FinetunerError as exc:
            _update(folder, status="failed", error=f"{exc.text}")
            return
        except Exception as exc:  # noqa: BLE001 - a driver must never take the server down
            log.exception("group %s failed", folder.name)
            _update(folder, status="failed", error=f"{type(exc).__name__}: {exc}")
            return
        if self.closing:
            return  # driven again on the next start
        stopped = (folder / "STOP").exists()
        _update(folder, status="stopped" if stopped else "finished",
                finished=time.strftime("%Y-%m-%d %H:%M"))

    def _compare(self, ws, folder: Path, meta: dict) -> None:
        launcher = self._launcher(ws, folder)
        base = RunConfig.from_dict(meta["base"])
        done = dict(meta.get("members") or {})
        for name, config in _planned(meta, base):
            if name not in done:
                run = launcher.submit(config, name)
                done[name] = run.id
                _update(folder, members=done)
        resumed: set[str] = set()
        while True:
            open_ = 0
            for name, run_id in done.items():
                run = RunPaths(ws.runs_dir / run_id)
                if not run.config.exists():
                    continue  # the user deleted this member
                results = read_results(run.results) or {}
                status = results.get("status")
                if status == "stopped" and (run.root / "SHUTDOWN").exists() and \
                        not (folder / "STOP").exists():
                    results, status = mark_interrupted(run), "interrupted"
                if status == "interrupted" and name not in resumed and \
                        not (folder / "STOP").exists():
                    resumed.add(name)  # once: a run that keeps dying is reported as it is
                    launcher.resume(run)
                    status = None
                if status not in FINAL_STATUSES:
                    open_ += 1
            if not open_:
                break
            if self.closing:
                raise GroupClosed
            time.sleep(POLL)
        view = self.compare_view(ws, folder)
        _update(folder, summary=view["summary"],
                **({"curve": view["curve"]} if "curve" in view else {}))

    def _search(self, ws, folder: Path, meta: dict) -> None:
        from finetuner.server.search import Budget, Search

        budget = meta.get("budget") or {}
        search = Search(folder)
        lines = folder / "search.log"

        def note(text: str) -> None:
            with open(lines, "a", encoding="utf-8") as f:
                f.write(time.strftime("%H:%M:%S ") + text + "\n")
        search.run(self._launcher(ws, folder),
                   Budget(trials=int(budget.get("trials") or 10),
                          minutes=budget.get("minutes")), log=note,
                   cancel=lambda: (folder / "STOP").exists())

    # ---------------------------------------------------------------- reading
    def _runs(self, ws, folder: Path) -> list[RunPaths]:
        meta = read_json(folder / "group.json") or {}
        ids = list((meta.get("members") or {}).values())
        state = read_json(folder / "search.json") or {}
        ids += [Path(t["run"]).name for t in (state.get("trials") or {}).values()
                if t.get("run")]
        if state.get("final_run"):
            ids.append(Path(state["final_run"]).name)
        return [RunPaths(ws.runs_dir / i) for i in ids if (ws.runs_dir / i / "config.json")
                .exists()]


def _planned(meta: dict, base: RunConfig) -> list[tuple[str, RunConfig]]:
    """A comparison's or a learning curve's members, from its group.json."""
    if meta.get("kind") == "curve":
        from finetuner.server import learning_curve

        return learning_curve.members(base, meta.get("fractions"))
    vary = tuple(meta["vary"]) if meta.get("vary") else None
    return members(base, meta.get("methods"), vary)


_WRITE = threading.Lock()


def _update(folder: Path, **fields) -> None:
    with _WRITE:  # the driver and a stop from the page write group.json
        meta = read_json(folder / "group.json") or {}
        meta.update(fields)
        write_json(folder / "group.json", meta)
