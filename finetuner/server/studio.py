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
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.models.modeling import ModelPolicy
from finetuner.models.modelzip import sweep_unused
from finetuner.naming import LOCAL_USER, safe_filename, user_key  # noqa: F401 - named here by callers
from finetuner.results import read_results
from finetuner.runs import (
    FINAL_STATUSES,
    RUN_ID,
    RunPaths,
    copy_data,
    create_run,
    new_run_id,
    read_events,
    read_json,
)
from finetuner.server.batch import BatchJobs
from finetuner.server.files import FileRegistry
from finetuner.server.jobs import JobManager
from finetuner.server.jobstore import JobStore
from finetuner.server.limits import Limits
from finetuner.server.owned import OwnModels, folder_bytes
from finetuner.server.sharing import PredictionSlots, PredictorCache


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
    value: float | None  # the best validation score: what runs are compared by
    seconds: float | None
    size_bytes: int = 0
    test_value: float | None = None  # shown, never used to sort, rank or recommend
    baseline_gap: float | None = None  # best validation minus the best baseline's


class Workspace(OwnModels):
    """One user's area: uploads, runs, models of their own and the disk they use."""

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

    def admit(self, config: RunConfig, rows: int | None = None) -> None:
        """The one admission check for work: every cap on the final configuration (length,
        epochs, steps, rows when known) and the disk quota. Every path that creates or extends
        a training passes here: start, resume, comparison members, search trials and the
        search's final run (through `submit`), and the job manager again when a queued job
        is about to start (the caps or the user's disk may have changed meanwhile)."""
        self.studio.limits.check_config(config, rows)
        self.check_quota()

    def submit(self, config: RunConfig, name: str = "",
               duplicate_ok: bool = False) -> tuple[RunPaths, dict]:
        """Admit the configuration, create the run and put it in the queue; refuse an
        identical active run (a second click), unless `duplicate_ok` (a comparison member or
        a search trial is a run of its own, even when another run has the same settings)."""
        self.admit(config)
        mark = fingerprint(config)
        for row in [] if duplicate_ok else self.studio.jobs.active(self.user):
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
        # the name first: a run is listed once its config.json exists, never nameless
        (folder / "name.txt").write_text((name or "").strip()[:80] or _default_name(config))
        return create_run(self.runs_dir, copy_data(config, data_dir), run_id=run_id)

    def delete(self, run_id: str) -> str:
        run = self.run(run_id)
        if self.status(run) == "running":
            raise FinetunerError("This run is still training.", "Stop it first, then delete.",
                                 code="busy")
        group = self.studio.groups.owner_active(self, run)
        if group:
            raise FinetunerError(f"This run belongs to '{group}', which is still running.",
                                 "Stop it on the Compare & tune tab first, then delete.",
                                 code="busy")
        if self.status(run) == "queued":
            self.studio.jobs.cancel(run)
        self.studio.jobs.wait(run, timeout=10)  # a finished worker may still be exiting
        self.studio.jobs.forget(run)
        self.studio.forget_predictor(run)
        self.studio.files.forget_run(self.user, run.id)  # a held download link dies too
        name = self.name_of(run)
        shutil.rmtree(run.root, ignore_errors=True)

        sweep_unused(self.models_dir, self._models_in_use())  # uploads only that run used
        return f"Deleted run {name}."

    def export_onnx(self, run_id: str) -> RunPaths:
        """Export a finished run's model to ONNX in its own process (finetuner.server.export_job);
        the export's files count against the user's disk quota like any other."""
        from finetuner.server import export_job

        run = self.run(run_id)
        if self.status(run) not in ("completed", "stopped"):
            raise FinetunerError("Only a finished run can be exported.",
                                 "Wait for the run to end, then export it.", code="busy")
        self.check_quota()
        with self.studio.export_lock:  # two clicks at once start one export
            # one export at a time per user: each loads a model in its own process, and a
            # shared server must not be flooded with them by one user's clicks
            busy = [r for r in self.runs_dir.iterdir() if r.name != run.id
                    and (r / export_job.PID).exists()
                    and export_job.state(RunPaths(r)) == "running"]
            if busy:
                raise FinetunerError(
                    f"An ONNX export of your run '{self.name_of(RunPaths(busy[0]))}' is still "
                    "running.", "Export this one when it is done (usually under a minute).",
                    code="busy")
            export_job.start(run)
        return run

    def name_of(self, run: RunPaths) -> str:
        try:
            return (run.root / "name.txt").read_text().strip() or run.id
        except OSError:
            return run.id

    def status(self, run: RunPaths) -> str:
        results = read_results(run.results)
        if results and results.get("status") in FINAL_STATUSES:
            return results["status"]
        state = self.studio.jobs.state(run)
        if state in ("queued", "running"):
            return state
        if self.studio.jobs.is_running(run):
            return "running"
        return "interrupted" if run.events.exists() else "created"

    def resume(self, run_id: str) -> dict:
        run = self.run(run_id)
        self.admit(RunConfig.load(run.config))
        return self.studio.jobs.resume(run, self.user)

    def runs_mark(self) -> str:
        """A short fingerprint of the run list: which runs exist and when each last wrote its
        results or events (status changes), without reading them."""

        parts = []
        for folder in sorted(self.runs_dir.iterdir()) if self.runs_dir.is_dir() else []:
            stamps = ["started" if (folder / "events.jsonl").exists() else "waiting"]
            for name in ("results.json", "name.txt"):  # not the events: they change each step
                try:
                    stamps.append(str((folder / name).stat().st_mtime_ns))
                except OSError:
                    stamps.append("-")
            parts.append(folder.name + ":" + ",".join(stamps))
        return hashlib.sha1("|".join(parts).encode()).hexdigest()

    def list_runs(self) -> list[RunSummary]:
        out = []
        for folder in sorted(self.runs_dir.iterdir(), reverse=True):
            if not RUN_ID.match(folder.name) or not (folder / "config.json").exists():
                continue
            out.append(self.summary(RunPaths(folder)))
        return out

    def summary(self, run: RunPaths) -> RunSummary:
        config = read_json(run.config) or {}
        results = read_results(run.results) or {}
        metric = results.get("metric") or "macro_f1"
        test = results.get("test") or {}
        # runs are compared by the best validation score (the kept checkpoint's); the test
        # score is only displayed
        value = (results.get("validation") or {}).get(metric)
        if value is None:
            evals = [e for e in read_events(run.events)[0] if e.get("type") == "eval"]
            scores = [(e.get("validation") or {}).get(metric) for e in evals]
            value = max((x for x in scores if x is not None), default=None)
        timing = results.get("timing") or {}
        created = time.strftime("%Y-%m-%d %H:%M", time.strptime(run.id[:15], "%Y%m%d-%H%M%S"))
        return RunSummary(id=run.id, name=self.name_of(run), created=created,
                          status=self.status(run), task=config.get("task", ""),
                          method=(config.get("method") or {}).get("method", ""),
                          model=results.get("model") or (config.get("model") or {}).get(
                              "name_or_path", ""),
                          metric=metric, value=value, seconds=timing.get("train_seconds"),
                          size_bytes=folder_bytes(run.root), test_value=test.get(metric),
                          baseline_gap=_baseline_gap(results, metric, value))

    def active_run(self) -> RunPaths | None:
        """The newest run still training or waiting, so a reloaded page re-attaches to it."""
        for folder in sorted(self.runs_dir.iterdir(), reverse=True):
            if RUN_ID.match(folder.name) and self.status(RunPaths(folder)) in ("running",
                                                                                  "queued"):
                return RunPaths(folder)
        return None

    def predictor(self, run_id: str):
        return self.studio.predictor(self.run(run_id))


def _baseline_gap(results: dict, metric: str, value: float | None) -> float | None:
    scores = [(b.get("validation") or {}).get(metric)
              for b in (results.get("baselines") or {}).values()]
    scores = [x for x in scores if x is not None]
    return None if value is None or not scores else value - max(scores)


def _default_name(config: RunConfig) -> str:
    stem = Path(config.data.train_file).stem.split("-", 1)[-1] or "run"
    return f"{stem} · {config.method.method}"


def _load_predictor(run_dir: str):
    from finetuner.serving.inference import Predictor

    stamp = _model_stamp(RunPaths(Path(run_dir)))
    predictor = Predictor.load(run_dir)
    predictor.stamp = stamp  # which finetuner.json it was loaded from
    return predictor


def _model_stamp(run: RunPaths) -> int | None:
    try:
        return (run.model / "finetuner.json").stat().st_mtime_ns
    except OSError:
        return None


class Studio:
    """Process-wide state of one server: the job manager and loaded predictors."""

    def __init__(self, home: str | Path, jobs: JobManager | None = None,
                 cache_size: int | None = None, limits: Limits | None = None,
                 model_policy: ModelPolicy | None = None,
                 files: FileRegistry | None = None, loader=None,
                 admins: frozenset[str] | set[str] = frozenset(), gpu_slots=None,
                 backend=None, warm: bool | None = None) -> None:
        """gpu_slots: FINETUNER_GPUS / FINETUNER_GPUS_PER_JOB as a finetuner.models.gpus.GpuSlots;
        with slots, as many jobs run as there are free sets (FINETUNER_MAX_JOBS, when set,
        caps that further). warm: fork workers from a process with the libraries imported
        (finetuner.server.warmstart); default on, FINETUNER_WARM_START=0 turns it off."""
        if warm is None:
            warm = os.environ.get("FINETUNER_WARM_START", "1").strip().lower() not in (
                "0", "false", "no", "off")
        self.home = Path(home).expanduser()
        self.home.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits()
        self.model_policy = model_policy or ModelPolicy()
        self.admins = frozenset(admins)  # FINETUNER_ADMINS: see and cancel every user's jobs
        self.files = files or FileRegistry()  # who owns which upload and download link
        self.gpu_slots = gpu_slots
        max_jobs = self.limits.max_jobs
        if gpu_slots and not self.limits.max_jobs_given:
            max_jobs = None  # the free GPU sets decide
        self.jobs = jobs or JobManager(store=JobStore(self.home / "jobs.sqlite"),
                                       max_jobs=max_jobs, gpu_slots=gpu_slots,
                                       backend=backend,
                                       max_queued_per_user=self.limits.max_queued_per_user,
                                       max_job_seconds=self.limits.max_job_hours * 3600 or None,
                                       warm=warm)
        # a queued job is admitted again when its turn comes (caps and disk may have changed)
        self.jobs.admit = lambda run, user: self.workspace(user).admit(
            RunConfig.load(run.config))
        # the web process is shared fairly: loaded models, try-it calls and file predictions
        # (the loader is injectable so the cache policy is tested without torch)
        self.cache_size = cache_size or self.limits.predictor_cache
        self.predictors = PredictorCache(loader or _load_predictor, size=self.cache_size,
                                         per_user=self.limits.max_models_per_user)
        self.slots = PredictionSlots(self.limits.max_predictions_per_user)
        self.export_lock = threading.Lock()
        from finetuner.server.groups import Groups

        # comparisons and searches: groups of ordinary runs in each user's queue
        self.groups = Groups(self, max_per_user=self.limits.max_groups_per_user)
        self.batches = BatchJobs(max_jobs=self.limits.max_batch_jobs,
                                 timeout=self.limits.batch_timeout_seconds,
                                 max_rows=self.limits.max_predict_rows)

    def workspace(self, user: str | None) -> Workspace:
        return Workspace(self, user or LOCAL_USER)

    def predictor(self, run: RunPaths):
        """A loaded model per run, shared by all requests; loaded once even when twenty
        requests for it arrive together. The run's owner is its workspace folder: each user
        keeps at most FINETUNER_MAX_MODELS_PER_USER loaded (see finetuner.server.sharing)."""
        owner, key = run.root.parent.parent.name, str(run.root)
        predictor = self.predictors.get(owner, key)
        stamp = _model_stamp(run)
        if getattr(predictor, "stamp", stamp) != stamp:  # e.g. its ONNX export landed since
            self.predictors.pop(key)
            predictor = self.predictors.get(owner, key)
        return predictor

    def warm(self, run: RunPaths) -> None:
        """Load a run's model in the background, so the first prediction is quick."""
        if (run.model / "finetuner.json").exists() and str(run.root) not in self.predictors:
            threading.Thread(target=self._warm, args=(run,), daemon=True).start()

    def _warm(self, run: RunPaths) -> None:
        try:
            self.predictor(run)
        except Exception:  # noqa: BLE001 - the try-it box will report it when used
            pass

    def forget_predictor(self, run: RunPaths) -> None:
        self.predictors.pop(str(run.root))

    def new_run_id(self) -> str:
        return new_run_id()

    def shutdown(self) -> None:
        """The server exits: groups start nothing new, then every training stops (each
        keeps its best checkpoint; a group's cut-short runs are trained again next start)."""
        self.groups.closing = True
        self.jobs.shutdown()

    # -- administration: every user's queued and running jobs (names, owners, progress; never
    # their data), and cancelling any of them
    def is_admin(self, user: str) -> bool:
        return user in self.admins

    def _require_admin(self, user: str) -> None:
        if not self.is_admin(user):
            raise FinetunerError("This view is for the server's administrators.",
                                 "Ask an administrator (FINETUNER_ADMINS).", code="not_admin")

    def admin_jobs(self, user: str) -> list[dict]:
        self._require_admin(user)
        order = {row["run_id"]: i + 1 for i, row in enumerate(self.jobs.fair_order())}
        out = []
        for row in self.jobs.store.with_status("running", "queued"):
            run = RunPaths(Path(row["run_dir"]))
            events, _ = read_events(run.events)
            progress = next((e for e in reversed(events) if e.get("type") == "progress"), {})
            try:
                name = (run.root / "name.txt").read_text().strip()
            except OSError:
                name = run.id
            step = f"{progress.get('step', 0)} / {progress.get('total_steps', '?')}" \
                if progress else ""
            out.append({"run": name, "owner": row["user"], "status": row["status"],
                        "queue position": order.get(row["run_id"], ""), "progress": step,
                        "GPUs": row.get("gpus") or "",
                        "waiting since": time.strftime("%H:%M:%S",
                                                       time.localtime(row["queued_at"])),
                        "id": row["run_id"]})
        return out

    def admin_cancel(self, user: str, run_id: str) -> str:
        self._require_admin(user)
        row = self.jobs.store.get(str(run_id or ""))
        if row is None or row["status"] not in ("running", "queued"):
            raise FinetunerError("That job is not running or waiting.", "Refresh the list.",
                                 code="no_run")
        text = self.jobs.stop(RunPaths(Path(row["run_dir"])))
        return f"{row['user']}'s job: {text}"
