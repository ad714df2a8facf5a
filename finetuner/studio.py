"""The studio service behind the web app: per-user workspaces, runs, predictors.

One `Studio` per server owns the job manager and a small cache of loaded predictors. Each user
gets a `Workspace` under FINETUNER_HOME/users/<key>/; every run id a handler receives is checked
against that user's own folder, so nobody can reach another user's data, runs or models, not
by listing, not by guessing ids, not with crafted paths. No gradio here: the app only renders.
"""

from __future__ import annotations

import hashlib
import json
import os
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
from .jobstore import JobStore
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


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise FinetunerError(f"{name}={value!r} is not a whole number.", code="bad_env") from None


@dataclass(frozen=True)
class Limits:
    """Caps for a shared server, each refused with a sentence that names it."""

    max_upload_mb: int = 200
    max_rows: int = 2_000_000
    max_length: int = 512
    max_epochs: int = 50
    max_jobs: int = 1
    max_queued_per_user: int = 3

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            max_upload_mb=_env_int("FINETUNER_MAX_UPLOAD_MB", cls.max_upload_mb),
            max_rows=_env_int("FINETUNER_MAX_ROWS", cls.max_rows),
            max_length=_env_int("FINETUNER_MAX_LENGTH", cls.max_length),
            max_epochs=_env_int("FINETUNER_MAX_EPOCHS", cls.max_epochs),
            max_jobs=max(1, _env_int("FINETUNER_MAX_JOBS", cls.max_jobs)),
            max_queued_per_user=max(1, _env_int("FINETUNER_MAX_QUEUED_PER_USER",
                                                cls.max_queued_per_user)),
        )

    def check_file(self, path: str | None, what: str = "The file") -> None:
        if path and os.path.getsize(path) > self.max_upload_mb * 1024 * 1024:
            size = os.path.getsize(path) / 1024 / 1024
            raise FinetunerError(
                f"{what} is {size:.0f} MB; this server accepts at most {self.max_upload_mb} MB "
                "per upload (FINETUNER_MAX_UPLOAD_MB).",
                "Upload a smaller sample, or ask the administrator to raise the cap.",
                code="too_big")

    def check_config(self, config: RunConfig, rows: int | None = None) -> None:
        if config.data.max_length > self.max_length:
            raise FinetunerError(
                f"Max length {config.data.max_length} is above this server's cap of "
                f"{self.max_length} tokens (FINETUNER_MAX_LENGTH).",
                f"Use {self.max_length} or less.", code="cap_max_length")
        if config.training.epochs > self.max_epochs:
            raise FinetunerError(
                f"{config.training.epochs:g} epochs is above this server's cap of "
                f"{self.max_epochs} (FINETUNER_MAX_EPOCHS).",
                f"Use {self.max_epochs} or fewer.", code="cap_epochs")
        if rows is not None and rows > self.max_rows:
            raise FinetunerError(
                f"The data has {rows:,} rows; this server trains on at most {self.max_rows:,} "
                "(FINETUNER_MAX_ROWS).",
                "Upload a sample of your data, or ask the administrator to raise the cap.",
                code="cap_rows")


def fingerprint(config: RunConfig) -> str:
    """Same data (by content) and same settings → same fingerprint: a double click on Train."""
    raw = config.to_dict()
    for key in ("train_file", "validation_file", "test_file"):
        path = raw["data"].get(key)
        if path and os.path.exists(path):
            raw["data"][key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:32]


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

    def submit(self, config: RunConfig, name: str = "") -> tuple[RunPaths, dict]:
        """Create the run and put it in the queue; refuse an identical active run."""
        mark = fingerprint(config)
        for row in self.studio.jobs.active(self.user):
            if row["fingerprint"] == mark:
                raise FinetunerError(
                    "This exact training (same data, same settings) is already "
                    f"{'waiting' if row['status'] == 'queued' else 'running'}.",
                    "Watch it on the Train tab, or change a setting to start another.",
                    code="duplicate")
        run = self.create(config, name)
        try:
            state = self.studio.jobs.submit(run, self.user, mark)
        except FinetunerError:
            shutil.rmtree(run.root, ignore_errors=True)
            raise
        return run, state

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
        if self.status(run) == "queued":
            self.studio.jobs.cancel(run)
        self.studio.jobs.wait(run, timeout=10)  # a finished worker may still be exiting
        self.studio.jobs.forget(run)
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
        state = self.studio.jobs.state(run)
        if state in ("queued", "running"):
            return state
        if self.studio.jobs.is_running(run):
            return "running"
        return "interrupted" if run.events.exists() else "created"

    def resume(self, run_id: str) -> dict:
        return self.studio.jobs.resume(self.run(run_id), self.user)

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
        """The newest run still training or waiting, so a reloaded page re-attaches to it."""
        for folder in sorted(self.runs_dir.iterdir(), reverse=True):
            if RUN_ID.match(folder.name) and self.status(RunPaths(folder)) in ("running",
                                                                                  "queued"):
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
                 cache_size: int = 4, limits: Limits | None = None) -> None:
        self.home = Path(home).expanduser()
        self.home.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits()
        self.jobs = jobs or JobManager(store=JobStore(self.home / "jobs.sqlite"),
                                       max_jobs=self.limits.max_jobs,
                                       max_queued_per_user=self.limits.max_queued_per_user)
        self._predictors: OrderedDict[str, object] = OrderedDict()
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.cache_size = cache_size

    def workspace(self, user: str | None) -> Workspace:
        return Workspace(self, user or LOCAL_USER)

    def predictor(self, run: RunPaths):
        """A loaded model per run, shared by all requests; loaded once even when twenty
        requests for it arrive together."""
        from .inference import Predictor

        key = str(run.root)
        with self._lock:
            if key in self._predictors:
                self._predictors.move_to_end(key)
                return self._predictors[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._predictors:
                    return self._predictors[key]
            predictor = Predictor.load(run.root)
            with self._lock:
                self._predictors[key] = predictor
                self._loading.pop(key, None)
                while len(self._predictors) > self.cache_size:
                    self._predictors.popitem(last=False)
        return predictor

    def warm(self, run: RunPaths) -> None:
        """Load a run's model in the background, so the first prediction is quick."""
        if (run.model / "finetuner.json").exists() and str(run.root) not in self._predictors:
            threading.Thread(target=self._warm, args=(run,), daemon=True).start()

    def _warm(self, run: RunPaths) -> None:
        try:
            self.predictor(run)
        except Exception:  # noqa: BLE001 - the try-it box will report it when used
            pass

    def forget_predictor(self, run: RunPaths) -> None:
        with self._lock:
            self._predictors.pop(str(run.root), None)

    def new_run_id(self) -> str:
        return new_run_id()
