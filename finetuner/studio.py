"""The studio service behind the web app: per-user workspaces, runs, predictors.

One `Studio` per server owns the job manager and a small cache of loaded predictors. Each user
gets a `Workspace` under FINETUNER_HOME/users/<key>/; every run id a handler receives is checked
against that user's own folder, so nobody can reach another user's data, runs or models, not
by listing, not by guessing ids, not with crafted paths. No gradio here: the app only renders.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from .config import RunConfig
from .errors import FinetunerError
from .jobs import JobManager
from .runs import FINAL_STATUSES, RunPaths, create_run, new_run_id, read_events, read_json

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{16}$")
LOCAL_USER = "local"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def user_key(user: str) -> str:
    """A folder name for a user: readable prefix plus a hash, never a path."""
    slug = SAFE_NAME.sub("-", user or LOCAL_USER).strip("-.")[:24] or "user"
    return f"{slug}-{hashlib.sha256((user or LOCAL_USER).encode()).hexdigest()[:12]}"


def safe_filename(name: str, default: str = "data.csv") -> str:
    base = SAFE_NAME.sub("_", Path(name or default).name).strip("._") or default
    return base[-100:]


@dataclass
class RunSummary:
    id: str
    name: str
    created: str
    status: str
    task: str
    method: str
    model: str
    metric: str
    value: float | None
    seconds: float | None

    def row(self) -> list:
        value = "" if self.value is None else f"{self.value:.4f}"
        secs = "" if self.seconds is None else f"{self.seconds:.0f} s"
        return [self.name, self.status, self.task, self.method, f"{self.metric} {value}".strip(),
                secs, self.created, self.id]


class Workspace:
    """One user's area: uploads and runs."""

    def __init__(self, studio: Studio, user: str) -> None:
        self.studio = studio
        self.user = user or LOCAL_USER
        self.root = studio.home / "users" / user_key(self.user)
        self.runs_dir = self.root / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)

    # -- runs
    def run(self, run_id: str) -> RunPaths:
        """The user's own run, or a FinetunerError; never a path outside the workspace."""
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise FinetunerError("No such run.", "Pick one of your runs from the list.",
                                 code="no_run")
        path = self.runs_dir / run_id
        if not (path / "config.json").is_file():
            raise FinetunerError("No such run.", "Pick one of your runs from the list.",
                                 code="no_run")
        return RunPaths(path)

    def create(self, config: RunConfig, name: str = "") -> RunPaths:
        """Copy the data files into a new run folder and write its config there."""
        run_id = new_run_id()
        folder = self.runs_dir / run_id
        data_dir = folder / "data"
        data_dir.mkdir(parents=True)
        raw = config.to_dict()
        for key in ("train_file", "validation_file", "test_file"):
            src = raw["data"].get(key)
            if src:
                dest = data_dir / f"{key.split('_')[0]}-{safe_filename(src)}"
                shutil.copyfile(src, dest)
                raw["data"][key] = str(dest)
        run = create_run(self.runs_dir, RunConfig.from_dict(raw), run_id=run_id)
        (run.root / "name.txt").write_text((name or "").strip()[:80] or _default_name(config))
        return run

    def delete(self, run_id: str) -> str:
        run = self.run(run_id)
        if self.status(run) == "running":
            raise FinetunerError("This run is still training.", "Stop it first, then delete.",
                                 code="busy")
        self.studio.jobs.wait(run, timeout=10)  # a finished worker may still be exiting
        self.studio.forget_predictor(run)
        shutil.rmtree(run.root, ignore_errors=True)
        return f"Deleted run {self.name_of(run)}."

    def name_of(self, run: RunPaths) -> str:
        try:
            return (run.root / "name.txt").read_text().strip() or run.id
        except OSError:
            return run.id

    def status(self, run: RunPaths) -> str:
        results = read_json(run.results)
        if results and results.get("status") in FINAL_STATUSES:
            return results["status"]
        if self.studio.jobs.is_running(run):
            return "running"
        return "interrupted" if run.events.exists() else "created"

    def list_runs(self) -> list[RunSummary]:
        out = []
        for folder in sorted(self.runs_dir.iterdir(), reverse=True):
            if not RUN_ID.match(folder.name) or not (folder / "config.json").exists():
                continue
            out.append(self.summary(RunPaths(folder)))
        return out

    def summary(self, run: RunPaths) -> RunSummary:
        config = read_json(run.config) or {}
        results = read_json(run.results) or {}
        metric = results.get("metric") or "macro_f1"
        test = results.get("test") or {}
        value = test.get(metric)
        if value is None:
            evals = [e for e in read_events(run.events)[0] if e.get("type") == "eval"]
            value = (evals[-1].get("validation") or {}).get(metric) if evals else None
        timing = results.get("timing") or {}
        created = time.strftime("%Y-%m-%d %H:%M", time.strptime(run.id[:15], "%Y%m%d-%H%M%S"))
        return RunSummary(id=run.id, name=self.name_of(run), created=created,
                          status=self.status(run), task=config.get("task", ""),
                          method=(config.get("method") or {}).get("method", ""),
                          model=results.get("model") or (config.get("model") or {}).get(
                              "name_or_path", ""),
                          metric=metric, value=value, seconds=timing.get("train_seconds"))

    def active_run(self) -> RunPaths | None:
        """The newest run still training, so a reloaded page re-attaches to it."""
        for folder in sorted(self.runs_dir.iterdir(), reverse=True):
            if RUN_ID.match(folder.name) and self.status(RunPaths(folder)) == "running":
                return RunPaths(folder)
        return None

    def predictor(self, run_id: str):
        return self.studio.predictor(self.run(run_id))


def _default_name(config: RunConfig) -> str:
    stem = Path(config.data.train_file).stem.split("-", 1)[-1] or "run"
    return f"{stem} · {config.method.method}"


class Studio:
    """Process-wide state of one server: the job manager and loaded predictors."""

    def __init__(self, home: str | Path, jobs: JobManager | None = None,
                 cache_size: int = 4) -> None:
        self.home = Path(home).expanduser()
        self.home.mkdir(parents=True, exist_ok=True)
        self.jobs = jobs or JobManager()
        self._predictors: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self.cache_size = cache_size

    def workspace(self, user: str | None) -> Workspace:
        return Workspace(self, user or LOCAL_USER)

    def predictor(self, run: RunPaths):
        from .inference import Predictor

        key = str(run.root)
        with self._lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key]
        predictor = Predictor.load(run.root)
        with self._lock:
            self._predictors[key] = predictor
            while len(self._predictors) > self.cache_size:
                self._predictors.popitem(last=False)
        return predictor

    def forget_predictor(self, run: RunPaths) -> None:
        with self._lock:
            self._predictors.pop(str(run.root), None)

    def new_run_id(self) -> str:
        return new_run_id()
