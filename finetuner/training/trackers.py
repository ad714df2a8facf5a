"""Optional experiment tracking: TensorBoard, MLflow and trackio, through their own libraries.

Nothing is reported anywhere unless `training.report_to` names a tracker (the default is an
empty list). Each tracker writes inside the run folder, so the users of a shared server never
see each other's runs:

    RUN_DIR/trackers/tensorboard/  TensorBoard event files
                                   (tensorboard --logdir RUN_DIR/trackers/tensorboard)
    RUN_DIR/trackers/mlruns/       an MLflow file store, or MLFLOW_TRACKING_URI when the
                                   administrator set it for the workers (experiment
                                   MLFLOW_EXPERIMENT_NAME, else "finetuner"; run named after
                                   the run id)
                                   (MLFLOW_ALLOW_FILE_STORE=true mlflow ui
                                    --backend-store-uri file:///RUN_DIR/trackers/mlruns)
    RUN_DIR/trackers/trackio/      trackio's local SQLite store, project "finetuner"
                                   (TRACKIO_DIR=RUN_DIR/trackers/trackio trackio show)

transformers' own integrations (`TrainingArguments.report_to`) send the training curves (loss,
learning rate, gradient norm, epoch) with the TrainingArguments and the model's config. This
module adds what only finetuner knows: its config (flattened, data files and model folders by
their own names, never a server path) and the plan (batch size, learning rate, steps), the
validation curve of each evaluation ("eval" events), the final validation and test metrics,
and the verdict. Nothing contacts the network: MLflow's telemetry is off and it never starts
a server; trackio never looks for a Space, a bucket, a self-hosted server or the hub user;
TensorBoard only writes files. A library that is not installed fails the run at its start
with one sentence (`check`); a tracker that fails later is switched off with a "warning"
event and the training goes on, so an error there never costs the trained model.

The libraries are imported only when a run asks for them (they read their folders from the
environment at import time, so the worker sets it first).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from finetuner.training.tracking import PROJECT, check, flat_config, verdict_text

# transformers' callback class for each tracker (transformers.integrations.integration_utils)
CALLBACKS = {"TensorBoardCallback": "tensorboard", "MLflowCallback": "mlflow",
             "TrackioCallback": "trackio"}
# trackio variables that would send a run to a Space, a bucket, a dataset, a self-hosted
# server or a webhook instead of the local store
TRACKIO_REMOTE = ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_BUCKET_ID",
                  "TRACKIO_DATASET_ID", "TRACKIO_WEBHOOK_URL", "TRACKIO_WRITE_TOKEN")


def folder(run) -> Path:
    return run.root / "trackers"


def _scalars(metrics: dict | None, prefix: str) -> dict:
    return {f"{prefix}/{k}": float(v) for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "n"}


def _table(params: dict) -> str:
    return "| setting | value |\n| --- | --- |\n" + "\n".join(
        f"| {k} | {v} |" for k, v in params.items())


def _no_hub_user():
    raise RuntimeError("finetuner keeps trackio local: no hub user lookup")


def _hide_password(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class Reporter:
    """The trackers of one run: opened before the data is read, attached to the Trainer,
    following the evaluations, and closed with the final metrics and the verdict."""

    def __init__(self, run, names: list[str], events) -> None:
        self.run, self.names, self.events = run, list(names), events
        self.active = list(names)  # a tracker that failed is dropped from here
        self.dir = folder(run)
        self.where: dict = {}
        self.step = 0
        self.tb = None  # our own SummaryWriter, beside the Trainer's
        self.mlflow = self.mlflow_client = self.mlflow_run_id = None
        self.trackio = self.trackio_run = None
        self.params: dict = {}
        self.closed = False

    # -- opening
    @classmethod
    def open(cls, ctx) -> Reporter | None:
        """None unless the config names a tracker; a missing library fails here, first."""
        names = ctx.config.training.report_to
        if not names:
            return None
        check(names)
        ctx.events.emit("status", state="trackers",
                        message=f"Opening the trackers: {', '.join(names)}")
        reporter = cls(ctx.run, names, ctx.events)
        reporter.start(flat_config(ctx.config))
        ctx.events.listeners.append(reporter.on_event)
        return reporter

    def start(self, params: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.params = dict(params)
        for name in list(self.active):
            self._safely(name, "start", getattr(self, f"_start_{name}"))

    def _start_tensorboard(self) -> None:
        logdir = self.dir / "tensorboard"
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(logdir)  # the Trainer's callback, too
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(log_dir=str(logdir))
        self.tb.add_text("finetuner/config", _table(self.params), 0)
        self.tb.flush()
        self.where["tensorboard"] = {"logdir": str(logdir),
                                     "view": f"tensorboard --logdir {logdir}"}

    def _start_mlflow(self) -> None:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # MLflow 3 phones home otherwise
        admin = os.environ.get("MLFLOW_TRACKING_URI")
        uri = admin or (self.dir / "mlruns").resolve().as_uri()
        if not admin:
            # MLflow 3.7+ refuses a new file store unless asked; it is the lightest local store
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(uri)
        experiment = os.environ.get("MLFLOW_EXPERIMENT_NAME") or PROJECT
        mlflow.set_experiment(experiment)
        id_file = self.dir / "mlflow_run_id"
        saved = id_file.read_text().strip() if id_file.exists() else ""
        run = None
        if saved:  # a run resumed after a restart carries on in its own MLflow run
            try:
                run = mlflow.start_run(run_id=saved)
            except Exception:  # noqa: BLE001 - gone from the store: start afresh
                run = None
        if run is None:
            run = mlflow.start_run(run_name=self.run.id, tags={
                "finetuner.run": self.run.id, "finetuner.task": self.params.get("task"),
                "finetuner.method": self.params.get("method.method"),
                "finetuner.model": self.params.get("model.name_or_path")})
        self.mlflow, self.mlflow_client = mlflow, MlflowClient(tracking_uri=uri)
        self.mlflow_run_id = run.info.run_id
        id_file.write_text(self.mlflow_run_id + "\n")
        self._mlflow_params(self.params)
        shown = _hide_password(uri)
        self.where["mlflow"] = {
            "tracking_uri": shown, "experiment": experiment, "run_id": self.mlflow_run_id,
            "view": f"{'' if admin else 'MLFLOW_ALLOW_FILE_STORE=true '}mlflow ui "
                    f"--backend-store-uri {shown}"}

    def _start_trackio(self) -> None:
        store = self.dir / "trackio"
        loaded = sys.modules.get("trackio.utils")
        if loaded is not None and Path(loaded.TRACKIO_DIR) != store:
            raise RuntimeError("trackio was loaded before this run chose its folder")
        os.environ["TRACKIO_DIR"] = str(store)  # read once, when trackio is imported
        for name in TRACKIO_REMOTE:
            os.environ.pop(name, None)
        import trackio
        import trackio.run

        if hasattr(trackio.run, "_get_default_namespace"):
            # trackio names the run's user by asking the hub (whoami) when a token is saved
            trackio.run._get_default_namespace = _no_hub_user
        self.trackio = trackio
        self.where["trackio"] = {"dir": str(store), "project": PROJECT, "run": self.run.id,
                                 "view": f"TRACKIO_DIR={store} trackio show --project "
                                         f"{PROJECT}"}

    # -- the Trainer
    def training_args(self) -> dict:
        """TrainingArguments for transformers' own integrations, kept local."""
        return {"report_to": list(self.active) or "none", "run_name": self.run.id,
                "project": PROJECT, "trackio_space_id": None,
                "trackio_static_space_id": False}

    def attach(self, trainer, plan: dict) -> None:
        """Wrap the Trainer's tracker callbacks so that an error switches that tracker off
        instead of failing the training, and record the plan."""
        callbacks = trainer.callback_handler.callbacks
        for i, callback in enumerate(callbacks):
            name = CALLBACKS.get(type(callback).__name__)
            if name:
                callbacks[i] = guarded(callback, name, self)
        plan = {f"run.{k}": v for k, v in plan.items()}
        self.params.update(plan)
        if "tensorboard" in self.active:
            self._safely("tensorboard", "plan",
                         lambda: self.tb.add_text("finetuner/plan", _table(plan), 0))
        if "mlflow" in self.active:
            self._safely("mlflow", "plan", lambda: self._mlflow_params(plan))

    def started(self, name: str) -> None:
        """After a tracker's own callback began its run (trackio creates it there)."""
        if name == "trackio":
            self.trackio_run = self.trackio.context_vars.current_run.get()
            # logged with the run's first row: finetuner's settings beside the Trainer's
            self.trackio_run.config.update({f"finetuner/{k}": v for k, v in self.params.items()})

    def _mlflow_params(self, params: dict) -> None:
        have = self.mlflow_client.get_run(self.mlflow_run_id).data.params
        new = {k: str(v) for k, v in params.items() if k not in have}
        from mlflow.entities import Param

        keys = list(new)
        for i in range(0, len(keys), 100):  # MLflow's batch limit
            self.mlflow_client.log_batch(self.mlflow_run_id,
                                         params=[Param(k, new[k]) for k in keys[i:i + 100]])

    # -- during the run
    def on_event(self, event: dict) -> None:
        """Each evaluation: the validation (and training-sample) curve at its step."""
        if self.closed or event.get("type") != "eval":
            return
        step = int(event.get("step") or 0)
        self.step = max(self.step, step)
        metrics = {**_scalars(event.get("validation"), "validation"),
                   **_scalars(event.get("train"), "train_sample")}
        if event.get("epoch") is not None:
            metrics["validation/epoch"] = float(event["epoch"])
        self.log(metrics, step)

    def log(self, metrics: dict, step: int, texts: dict | None = None,
            labels: dict | None = None) -> None:
        """Scalars at a step to every tracker still working; `texts` (Markdown) and
        `labels` (short strings: TensorBoard text, MLflow tags, trackio values) too."""
        for name in ("tensorboard", "mlflow", "trackio"):
            if name in self.active:
                self._safely(name, "log", getattr(self, f"_log_{name}"), metrics, step,
                             texts or {}, labels or {})

    def _log_tensorboard(self, metrics: dict, step: int, texts: dict, labels: dict) -> None:
        for key, value in metrics.items():
            self.tb.add_scalar(key, value, step)
        for key, value in {**texts, **labels}.items():
            self.tb.add_text(key, value, step)
        self.tb.flush()

    def _log_mlflow(self, metrics: dict, step: int, texts: dict, labels: dict) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        self.mlflow_client.log_batch(
            self.mlflow_run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()],
            tags=[RunTag(k, str(v)) for k, v in labels.items()])
        for key, value in texts.items():
            self.mlflow_client.log_text(self.mlflow_run_id, value, f"{key}.md")

    def _log_trackio(self, metrics: dict, step: int, texts: dict, labels: dict) -> None:
        run = self.trackio_run
        if run is None:  # the Trainer's callback had not begun its run
            run = self.trackio_run = self.trackio.init(
                project=PROJECT, name=self.run.id, resume="allow",
                config={f"finetuner/{k}": v for k, v in self.params.items()},
                auto_log_cpu=False, auto_log_gpu=False, embed=False)
        row = {**metrics, **labels, "train/global_step": step}
        row.update({key: self.trackio.Markdown(value) for key, value in texts.items()})
        run.log(row)  # trackio's own step counter, as the Trainer's callback does

    # -- closing
    def report(self, results) -> None:
        """The final validation and test metrics and the verdict, then close every tracker;
        where each one wrote goes into results["trackers"]."""
        if self.closed:
            return
        timing = results.get("timing") or {}
        step = max(self.step, int(timing.get("steps") or 0))
        metrics = {**_scalars(results.get("validation"), "best_validation"),
                   **_scalars(results.get("test"), "test")}
        for key in ("train_seconds", "train_samples_per_second"):
            if isinstance(timing.get(key), (int, float)):
                metrics[f"timing/{key}"] = float(timing[key])
        diagnosis = results.get("diagnosis") or {}
        text = verdict_text(diagnosis)
        labels = {"finetuner.status": results.get("status") or ""}
        if diagnosis:
            labels.update({"verdict": diagnosis.get("verdict") or "",
                           "verdict_title": diagnosis.get("title") or ""})
        self.log(metrics, step, {"verdict_text": text} if text else None, labels)
        self.close({"completed": "FINISHED", "stopped": "KILLED"}.get(
            results.get("status"), "FAILED"))
        results["trackers"] = {name: self.where[name] for name in self.names
                               if name in self.where}
        for name in self.names:
            if name not in self.active and name in results["trackers"]:
                results["trackers"][name]["incomplete"] = True

    def close(self, status: str = "FAILED") -> None:
        """End every tracker's run (MLflow status FINISHED, KILLED or FAILED); idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.on_event in self.events.listeners:
            self.events.listeners.remove(self.on_event)
        if self.tb is not None and "tensorboard" in self.active:
            self._safely("tensorboard", "close", self.tb.close)
        if self.mlflow is not None and "mlflow" in self.active:
            self._safely("mlflow", "close", self.mlflow.end_run, status)
        if self.trackio_run is not None and "trackio" in self.active:
            self._safely("trackio", "close", self._finish_trackio)

    def _finish_trackio(self) -> None:
        try:
            self.trackio_run.finish()  # flushes the local store
        finally:
            current = self.trackio.context_vars.current_run
            if current.get() is self.trackio_run:
                current.set(None)  # as trackio.finish() does: nothing left for its atexit

    def _safely(self, name: str, what: str, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - a tracker never fails the training
            self.fail(name, what, exc)

    def fail(self, name: str, what: str, exc: BaseException) -> None:
        """Switch a tracker off with a warning event; the run goes on."""
        if name not in self.active:
            return
        self.active.remove(name)
        traceback.print_exception(exc)
        self.events.emit(
            "warning", source="tracker", tracker=name, stage=what,
            message=f"Reporting to {name} stopped ({what}: {type(exc).__name__}: {exc}); "
                    "the training goes on and the run folder keeps everything.")


def guarded(callback, name: str, reporter: Reporter):
    """transformers' callback for one tracker, every event caught: an exception switches
    that tracker off with a warning event. trackio's run is finished by the reporter, with
    the final metrics, rather than at the end of training."""
    from transformers import TrainerCallback

    class Guarded(TrainerCallback):
        inner = callback

        def __repr__(self) -> str:
            return f"Guarded({type(callback).__name__})"

    def forward(event: str):
        def method(self, args, state, control, **kw):
            if name not in reporter.active or reporter.closed or (
                    event == "on_train_end" and name == "trackio"):
                return None
            try:
                out = getattr(callback, event)(args, state, control, **kw)
                if event == "on_train_begin":
                    reporter.started(name)
                return out
            except Exception as exc:  # noqa: BLE001 - a tracker never fails the training
                reporter.fail(name, event, exc)
                return None
        return method

    for event in [n for n in vars(TrainerCallback) if n.startswith("on_")]:
        setattr(Guarded, event, forward(event))
    return Guarded()


__all__ = ["Reporter", "guarded"]
