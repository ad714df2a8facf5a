"""What each button and upload does. Handlers take (user, form) and return {name: value}.

`form` maps component names to their current values; the returned dict maps component names
to new values or `gr.update(...)`. The app (`finetuner.ui.app`) wires names to components and
turns any exception into an inline message, so a handler may simply raise FinetunerError.
The server never trains: `start` hands a run directory to the job manager's worker process.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import gradio as gr
import pandas as pd
import yaml

from .. import tryit
from ..checks import prepare_data
from ..config import METHODS, RunConfig, default_learning_rate
from ..data import read_table
from ..errors import FinetunerError
from ..estimate import human_seconds, method_costs, recommend
from ..export import read_meta, usage_snippet
from ..modeling import ModelSource, model_config, resolve_model
from ..runs import FINAL_STATUSES, read_events, read_json, tail
from ..studio import Studio
from ..tasks import get_task
from . import render
from .tasks import answer as task_answer
from .tasks import chosen_columns, example_for
from .tasks import preview as task_preview
from .tasks import ui as task_ui

NONE = "(none)"
EXAMPLES_DIR = Path(__file__).resolve().parent.parent.parent / "examples"
EXAMPLES = {  # label: (file in examples/, task)
    "Film and product reviews (sentiment)": ("sentiment.csv", "classification"),
    "Text messages (spam, imbalanced)": ("spam.jsonl", "classification"),
    "News headlines (4 topics)": ("topics.tsv", "classification"),
    "Sentence pairs (entailment)": ("pairs.csv", "classification"),
    "News sentences with names (entities, CoNLL)": ("ner.conll", "ner"),
    "Questions about short passages (QA)": ("qa.jsonl", "qa"),
}
MODEL_CHOICES = [("Embedded default: all-MiniLM-L6-v2 (offline, 22.7M parameters)", "default"),
                 ("A model folder on this server", "folder"),
                 ("A Hugging Face hub id (needs internet)", "hub"),
                 ("Upload a model (.zip with safetensors weights)", "zip"),
                 ("One of your models (trained or uploaded here)", "mine")]
METHOD_CHOICES = [("Full fine-tuning", "full"), ("LoRA (adapters)", "lora"),
                  ("Head only (frozen encoder)", "head")]
METHOD_TITLES = {value: title for title, value in METHOD_CHOICES}
FORM_FIELDS = ("task", "train_file", "val_file", "test_file", "text_col", "pair_col",
               "label_col", "model_choice", "model_path", "model_zip", "model_own", "method",
               "epochs", "lr", "batch_size", "max_length", "weight_decay", "warmup_ratio",
               "evals_per_epoch", "patience", "seed", "precision", "max_steps", "val_split",
               "test_split", "lora_r", "lora_alpha", "lora_dropout", "lora_targets", "adapter_only")


def _path(value) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
    return str(getattr(value, "name", value))


NOT_YOURS = "That file is not one of your uploads; upload it again."


def _col(value) -> str | None:
    return None if value in (None, "", NONE) else str(value)


def _num(value, cast=float, default=None):
    if value is None or value == "":
        return default
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise FinetunerError(f"'{value}' is not a number.", "Enter a number.",
                             code="bad_number") from None


class Handlers:
    def __init__(self, studio: Studio, auth_mode: str = "none") -> None:
        self.studio = studio
        # one local user owns every file; on a shared server a file input must be the caller's
        self.check_files = auth_mode != "none"

    # ------------------------------------------------------------------ files
    def _file(self, user: str, form: dict, key: str) -> str | None:
        """The path of a file input, only when it is the caller's own upload (or a file
        `_share` handed to them): gradio names upload folders by content, so anyone who knows
        a file's content could name its path in a crafted request."""
        path = _path(form.get(key))
        if path and self.check_files and not self.studio.files.allowed(user, path):
            raise FinetunerError(NOT_YOURS, code="not_your_file")
        return path

    def _share(self, user: str, path: str | Path, run_id: str | None = None) -> str:
        """A private, short-lived copy of a server file for this user to download, inside
        gradio's cache (served as it is, and only to them; deleting the run removes it)."""
        return self.studio.files.share(user, path, run_id)

    # ------------------------------------------------------------------ config
    def model_source(self, user: str, form: dict) -> ModelSource:
        """The model the form names, checked; on a shared server a typed folder must lie
        inside FINETUNER_MODEL_DIRS, and a user's own models are picked from their list."""
        choice = form.get("model_choice") or "default"
        if choice == "default":
            return resolve_model("default")
        ws = self.studio.workspace(user)
        if choice == "zip":
            archive = self._file(user, form, "model_zip")
            if not archive:
                raise FinetunerError("No model zip uploaded yet.",
                                     "Upload a .zip of a saved model folder.", code="no_model")
            return ws.upload_model(archive)
        if choice == "mine":
            return ws.own_model(form.get("model_own"))
        name = (form.get("model_path") or "").strip()
        if not name:
            what = "folder path" if choice == "folder" else "hub id"
            raise FinetunerError(f"No model {what} given.", f"Type the {what}.",
                                 code="no_model")
        return resolve_model(name, policy=self.studio.model_policy)

    def config(self, user: str, form: dict, model: ModelSource | None = None) -> RunConfig:
        train = self._file(user, form, "train_file")
        if not train:
            raise FinetunerError("No training file yet.",
                                 "Upload a CSV, TSV, JSON, JSONL or Parquet file on the Data "
                                 "tab, or load an example.", code="no_data")
        method = form.get("method") or "full"
        lr = _num(form.get("lr"))
        return RunConfig.from_dict({
            "task": form.get("task") or "classification",
            "data": {
                "train_file": train,
                "validation_file": self._file(user, form, "val_file"),
                "test_file": self._file(user, form, "test_file"),
                "text_column": _col(form.get("text_col")),
                "text_pair_column": _col(form.get("pair_col")),
                "label_column": _col(form.get("label_col")),
                "validation_split": _num(form.get("val_split"), float, 0.1),
                "test_split": _num(form.get("test_split"), float, 0.1),
                "max_length": _num(form.get("max_length"), int, None),
            },
            "model": model_config(model or self.model_source(user, form)),
            "method": {
                "method": method,
                "lora_r": _num(form.get("lora_r"), int, 8),
                "lora_alpha": _num(form.get("lora_alpha"), int, 16),
                "lora_dropout": _num(form.get("lora_dropout"), float, 0.1),
                "lora_target_modules": (form.get("lora_targets") or "").strip() or None,
                "export_adapter_only": bool(form.get("adapter_only")),
            },
            "training": {
                "epochs": _num(form.get("epochs"), float, 3.0),
                "learning_rate": lr if lr and lr > 0 else None,
                "batch_size": _num(form.get("batch_size"), int, None) or None,
                "weight_decay": _num(form.get("weight_decay"), float, 0.01),
                "warmup_ratio": _num(form.get("warmup_ratio"), float, 0.06),
                "evals_per_epoch": _num(form.get("evals_per_epoch"), int, 4),
                "early_stopping_patience": _num(form.get("patience"), int, 3),
                "seed": _num(form.get("seed"), int, 42),
                "precision": form.get("precision") or "auto",
                "max_steps": _num(form.get("max_steps"), int, None) or None,
            },
        })

    # ------------------------------------------------------------------ data
    def load_example(self, user: str, form: dict) -> dict:
        found = EXAMPLES.get(form.get("example") or "")
        if not found:
            raise FinetunerError("Pick an example first.", code="no_example")
        name, task = found
        out = {"train_file": self._share(user, EXAMPLES_DIR / name)}
        if task != (form.get("task") or "classification"):
            # relabel only: the new file's own change event runs the data check
            out.update(self.task_changed(user, {**form, "task": task, "train_file": None}))
            out["task"] = task
        return out

    def task_changed(self, user: str, form: dict) -> dict:
        """Another task: relabel the column pickers, its default max length, check again."""
        task = form.get("task") or "classification"
        spec = task_ui(task)
        out = {"max_length": get_task(task).default_max_length}
        for i, name in enumerate(("text_col", "pair_col", "label_col")):
            out[name] = gr.update(label=spec.column_labels[i], info=spec.column_info[i],
                                  visible=spec.roles[i] is not None)
        if _path(form.get("train_file")):
            checked = self.data_changed(user, {**form, "max_length": out["max_length"]})
            for name in ("text_col", "pair_col", "label_col"):
                if name in checked:
                    checked[name] = {**out[name], **checked[name]}
            out.update(checked)
        return out

    def data_changed(self, user: str, form: dict) -> dict:
        """A new training file: forget the old column choices and detect again."""
        form = {**form, "text_col": None, "pair_col": None, "label_col": None}
        if not _path(form.get("train_file")):
            return {"data_msg": render.message("Upload a training file to begin.", "info"),
                    "preview": pd.DataFrame(), "report": "", "label_plot": "", "data_state": None,
                    "text_col": gr.update(choices=[], value=None),
                    "pair_col": gr.update(choices=[NONE], value=NONE),
                    "label_col": gr.update(choices=[], value=None)}
        return self.check_data(user, form)

    def check_data(self, user: str, form: dict) -> dict:
        task = form.get("task") or "classification"
        train = self._file(user, form, "train_file")
        frame, columns = None, []
        self.studio.workspace(user).check_quota()
        try:
            for key in ("train_file", "val_file", "test_file"):
                self.studio.limits.check_file(self._file(user, form, key), "The uploaded file")
            table = read_table(train)
            frame, columns = table.frame, [str(c) for c in table.frame.columns]
        except FinetunerError as exc:
            if get_task(task).tables_only or exc.code in (
                    "missing_file", "empty", "too_big", "binary", "not_your_file"):
                return self._data_error(exc)
            # CoNLL text or SQuAD JSON: the task reads its own formats
        config = self.config(user, form, model=resolve_model("default"))
        try:
            # the caps (rows above all) are checked before any tokenising
            prepared = prepare_data(config, self._token_source(user, form), check_rows=(
                lambda rows: self.studio.limits.check_config(config, rows)))
        except FinetunerError as exc:
            result = self._data_error(exc)
            result["preview"] = task_preview(task, frame, None)
            result.update(self._column_updates(columns, form))
            return result
        report = prepared.report.to_dict()
        chosen = chosen_columns(task, report["columns"])
        out = {"preview": task_preview(task, frame, prepared)}
        out.update(self._column_updates(columns or [c for c in chosen.values() if c], chosen,
                                        editable=bool(columns)))
        tokens = report.get("token_lengths") or {}
        out["data_state"] = {
            "task": task, "n_train": report["rows"]["train"],
            "n_validation": report["rows"]["validation"], "labels": prepared.labels,
            "mean_tokens": tokens.get("mean", 32.0), "pairs": bool(chosen.get("pair_col")),
            "columns": report["columns"],
        }
        warnings = len(prepared.report.warnings())
        ready = "The data is ready to train on." + (
            f" Read the {warnings} warning(s) below." if warnings else "")
        out["data_msg"] = render.message(ready, "warning" if warnings else "ok")
        out["report"] = render.report_html(report)
        out["label_plot"] = render.label_chart(report)
        return out

    def _token_source(self, user: str, form: dict):
        try:
            return self.model_source(user, form)
        except FinetunerError:
            return resolve_model("default")  # count tokens with the default until fixed

    @staticmethod
    def _column_updates(columns: list[str], chosen: dict, editable: bool = True) -> dict:
        """Dropdown choices and values; files without named columns (CoNLL) are not editable."""
        return {"text_col": gr.update(choices=columns, value=_col(chosen.get("text_col")),
                                      interactive=editable),
                "pair_col": gr.update(choices=[NONE, *columns],
                                      value=_col(chosen.get("pair_col")) or NONE,
                                      interactive=editable),
                "label_col": gr.update(choices=columns, value=_col(chosen.get("label_col")),
                                       interactive=editable)}

    @staticmethod
    def _data_error(exc: FinetunerError) -> dict:
        return {"data_msg": render.message(exc.text, "error"), "report": "",
                "label_plot": "",
                "data_state": None}

    # ------------------------------------------------------------------ model & method
    def model_changed(self, user: str, form: dict) -> dict:
        choice = form.get("model_choice") or "default"
        out = {"model_path": gr.update(visible=choice in ("folder", "hub")),
               "model_zip": gr.update(visible=choice == "zip"),
               "model_own": gr.update(visible=choice == "mine",
                                      choices=self.studio.workspace(user).own_models())}
        if choice == "mine" and not form.get("model_own"):
            out["model_msg"] = render.message("Pick one of your models from the list.", "info")
            out["model_state"] = None
            return out
        try:
            source = self.model_source(user, form)
        except FinetunerError as exc:
            out["model_msg"] = render.message(exc.text, "error")
            out["model_state"] = None
            return out
        out["model_msg"] = render.message(f"Model: {source.display}", "ok")
        out["model_state"] = {"path": source.path, "display": source.display}
        return out

    def costs(self, user: str, form: dict) -> dict:
        data, model = form.get("data_state"), form.get("model_state")
        if not model:
            return {"method_info": render.message("Choose a model that loads first.", "info"),
                    "advice": ""}
        spec = get_task(form.get("task") or "classification")
        n_train = (data or {}).get("n_train", 0)
        labels = len((data or {}).get("labels") or []) or 2
        costs = method_costs(model["path"], spec, labels, n_train,
                             (data or {}).get("mean_tokens", 32.0),
                             (data or {}).get("n_validation", 0),
                             _num(form.get("lora_r"), int, 8))
        epochs = _num(form.get("epochs"), float, 3.0) or 3.0
        rows = []
        for c in costs:
            chosen = c.method == (form.get("method") or "full")
            time_text = (f"≈ {human_seconds(c.seconds_per_epoch)} per epoch, "
                         f"{human_seconds(c.seconds_per_epoch * epochs)} for {epochs:g}"
                         if c.seconds_per_epoch else "upload data for a time estimate")
            rows.append(
                f"<tr{' class=ft-chosen style=font-weight:bold' if chosen else ''}>"
                f"<td>{render.esc(METHOD_TITLES[c.method])}</td>"
                f"<td>{c.trainable:,} of {c.total:,} ({c.share:.2%})</td>"
                f"<td>{render.esc(time_text)}</td><td>{render.esc(c.help)}</td></tr>")
        table = ("<table class='ft-methods'><thead><tr><th>Method</th><th>Trainable "
                 "parameters</th><th>Time on this machine (estimate)</th><th>What it does"
                 "</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
        full = next(c for c in costs if c.method == "full")
        advice = recommend(n_train, labels, full.seconds_per_epoch) if n_train else None
        advice_html = render.message(
            f"Recommended: {METHOD_TITLES[advice.method]}, {advice.epochs} epochs, "
            f"learning rate {advice.learning_rate:g}. {advice.reason}", "info") if advice else ""
        return {"method_info": table, "advice": advice_html,
                "advice_state": advice.__dict__ if advice else None}

    def apply_advice(self, user: str, form: dict) -> dict:
        advice = form.get("advice_state")
        if not advice:
            raise FinetunerError("Upload data first: the advice depends on its size.",
                                 code="no_data")
        return {"method": advice["method"], "epochs": advice["epochs"],
                "lr": advice["learning_rate"]}

    def method_defaults(self, user: str, form: dict) -> dict:
        """The learning rate for the method and the size of the chosen model."""
        method = form.get("method") or "full"
        model = form.get("model_state") or {}
        n_params = None
        if model.get("path"):
            try:
                from ..estimate import method_params

                spec = get_task(form.get("task") or "classification")
                counts = method_params(model["path"], spec.auto_model, spec.peft_task_type,
                                       spec.head_modules, 2)
                n_params = counts["full"][1]
            except Exception:  # noqa: BLE001 - no size known: the small-model default
                n_params = None
        return {"lr": default_learning_rate(method, n_params)}

    def preview_config(self, user: str, form: dict) -> dict:
        try:
            model = self.model_source(user, form)
        except FinetunerError:
            model = resolve_model("default")
        try:
            config = self.config(user, form, model=model)
        except FinetunerError as exc:
            return {"cli": f"# {exc.text}"}
        raw = config.to_dict()
        for key in ("train_file", "validation_file", "test_file"):
            if raw["data"][key]:
                raw["data"][key] = Path(raw["data"][key]).name
        # never a server path: the folder by its own name, as the user would have it
        shown = ("default" if model.kind == "embedded" else model.display if model.kind == "hub"
                 else "path/to/" + model.portable)
        raw["model"] = {"name_or_path": shown}
        args = ["python", "-m", "finetuner", "train", "--data", raw["data"]["train_file"]]
        flags = [("--validation", raw["data"]["validation_file"]),
                 ("--test", raw["data"]["test_file"]),
                 ("--text-column", raw["data"]["text_column"]),
                 ("--text-pair-column", raw["data"]["text_pair_column"]),
                 ("--label-column", raw["data"]["label_column"]),
                 ("--model", None if model.kind == "embedded" else shown),
                 ("--method", raw["method"]["method"]),
                 ("--epochs", f"{raw['training']['epochs']:g}"),
                 ("--lr", raw["training"]["learning_rate"]),
                 ("--output", "runs/my-run")]
        defaults = RunConfig.from_dict({"task": raw["task"]}).to_dict()
        named = {flag for flag, _ in flags} | {"--data", "--task", "--output"}
        from ..__main__ import FLAGS

        for flag, (section, name, _, _) in FLAGS.items():  # advanced settings a user changed
            value = raw[section][name] if section else raw[name]
            if flag not in named and value is not None and value != (
                    defaults[section][name] if section else defaults[name]):
                value = ",".join(value) if isinstance(value, list) else value
                flags.insert(-1, (flag, f"{value:g}" if isinstance(value, float) else value))
        if raw["task"] != "classification":
            args += ["--task", raw["task"]]
        for flag, value in flags:
            if value is not None:
                args += [flag, str(value)]
        text = (" ".join(shlex.quote(a) for a in args) + "\n\n# or: python -m finetuner train "
                "--config run.yaml --output runs/my-run, with run.yaml:\n"
                + yaml.safe_dump(raw, sort_keys=False))
        return {"cli": text}

    # ------------------------------------------------------------------ training
    def start(self, user: str, form: dict) -> dict:
        ws = self.studio.workspace(user)
        ws.check_quota()
        limits = self.studio.limits
        for key in ("train_file", "val_file", "test_file"):
            limits.check_file(self._file(user, form, key), "The uploaded file")
        source = self.model_source(user, form)
        config = self.config(user, form, model=source)
        prepared = prepare_data(config, source, count_tokens=False)  # fail here, not later
        limits.check_config(config, sum(prepared.report.rows.values()))
        run, state = ws.submit(config, form.get("run_name") or "")
        name = ws.name_of(run)
        if state["state"] == "queued":
            text = (f"Run '{name}' is waiting in the queue (position {state['position']}): "
                    "it starts when the trainings before it finish. Stop cancels it.")
        else:
            text = (f"Started run '{name}'. Training runs in its own process: you can leave "
                    "and come back.")
        return {"current_run": run.id, "seen": None, "tabs": gr.update(selected="train"),
                "train_msg": render.message(text, "ok"),
                "stop_btn": gr.update(interactive=True)}

    def resume(self, user: str, form: dict) -> dict:
        run_id = form.get("current_run") or form.get("run_pick")
        if not run_id:
            raise FinetunerError("Pick a run first.", code="no_run")
        state = self.studio.workspace(user).resume(run_id)
        where = "resumed" if state["state"] == "running" else \
            f"waiting in the queue (position {state['position']})"
        return {"current_run": run_id, "seen": None, "tabs": gr.update(selected="train"),
                "train_msg": render.message(f"The run is {where}: it continues from its last "
                                            "checkpoint.", "ok")}

    def stop(self, user: str, form: dict) -> dict:
        run_id = form.get("current_run")
        if not run_id:
            return {"train_msg": render.message("Nothing is training.", "info")}
        ws = self.studio.workspace(user)
        text = self.studio.jobs.stop(ws.run(run_id))
        return {"train_msg": render.message(text, "info")}

    def attach(self, user: str, form: dict) -> dict:
        """On page load: re-attach to a running job, else show the newest run."""
        ws = self.studio.workspace(user)
        active = ws.active_run()
        runs = ws.list_runs()
        current = active.id if active else (runs[0].id if runs else None)
        out = self.runs_view(user, form)
        out["current_run"] = current
        out["seen"] = None
        out["model_state"] = self.model_changed(user, form).get("model_state")
        out["admin_tab"] = gr.update(visible=self.studio.is_admin(user))
        if active:
            out["train_msg"] = render.message(
                f"Re-attached to the running training '{ws.name_of(active)}'.", "info")
            out["tabs"] = gr.update(selected="train")
        return out

    def tick(self, user: str, form: dict) -> dict:
        run_id = form.get("current_run")
        if not run_id:
            return {}
        ws = self.studio.workspace(user)
        try:
            run = ws.run(run_id)
        except FinetunerError:
            return {"current_run": None}
        status = ws.status(run)
        events, _ = read_events(run.events)
        seen = form.get("seen") or {}
        key = {"run": run_id, "events": len(events), "status": status}
        if seen == key:
            return {}
        config = read_json(run.config) or {}
        spec = get_task(config.get("task", "classification"))
        progress = next((e for e in reversed(events) if e["type"] == "progress"), None)
        note = next((e.get("message", "") for e in reversed(events) if e["type"] == "status"),
                    "")
        results = read_json(run.results) or {}
        if status in FINAL_STATUSES:
            note = (results.get("error") or {}).get("message") or results.get("note") or ""
        if status == "queued":
            position = self.studio.jobs.position(run)
            note = f"position {position} of {self.studio.jobs.queue_length()}"
            key["position"] = position
        loss, score = render.curves(events, spec.primary_metric)
        metric = spec.metric_title
        out = {"seen": key, "progress": render.progress_html(status, progress, note),
               "loss_plot": render.line_chart(loss, "Loss (lower is better)"),
               "metric_plot": render.line_chart(score, f"{metric} (higher is better)"),
               "log": tail(run.log, 25),
               "run_title": f"### Run: {ws.name_of(run)}",
               "stop_btn": gr.update(interactive=status in ("running", "queued")),
               "resume_btn": gr.update(visible=bool(results.get("resumable"))
                                       and status == "interrupted")}
        if status in FINAL_STATUSES and seen.get("status") != status:
            out.update(self.runs_view(user, form))
            out.update(self.results_view(user, {"result_run": run_id}))
            out["result_run"] = gr.update(choices=self._finished(ws), value=run_id)
            out["try_run"] = gr.update(choices=self._usable(ws), value=run_id if (
                run.model / "finetuner.json").exists() else None)
            out.update(self.try_layout(user, {"try_run": run_id}))
            if status in ("failed", "interrupted"):
                err = results.get("error") or {}
                out["train_msg"] = render.message(
                    f"{err.get('message', 'The run failed.')} {err.get('remedy', '')}", "error")
            elif not (run.model / "finetuner.json").exists():
                out["train_msg"] = render.message(
                    f"Run {status} before a model was saved: there are no results to see. "
                    "Start it again when you are ready.", "info")
            else:
                out["train_msg"] = render.message(
                    f"Run {status}. See the Results tab for the test metrics and the verdict.",
                    "ok")
        return out

    # ------------------------------------------------------------------ results
    @staticmethod
    def _finished(ws) -> list[tuple[str, str]]:
        return [(f"{s.name} · {s.status} · {s.created}", s.id) for s in ws.list_runs()
                if s.status in FINAL_STATUSES]

    @staticmethod
    def _usable(ws) -> list[tuple[str, str]]:
        return [(f"{s.name} · {s.created}", s.id) for s in ws.list_runs()
                if (ws.runs_dir / s.id / "model" / "finetuner.json").exists()]

    def results_view(self, user: str, form: dict) -> dict:
        run_id = form.get("result_run")
        if not run_id:
            return {"verdict": "", "metrics": render.message("Pick a finished run.", "info"),
                    "per_class": pd.DataFrame(), "confusion": "", "errors": pd.DataFrame(),
                    "label_issues": gr.update(value=pd.DataFrame(), visible=False),
                    "label_issues_file": gr.update(value=None, visible=False), "snippet": "",
                    "download": gr.update(value=None, interactive=False)}
        ws = self.studio.workspace(user)
        run = ws.run(run_id)
        results = read_json(run.results) or {}
        if not results:
            return {"metrics": render.message("This run has not finished yet.", "info")}
        import json

        rows = []
        if run.predictions.exists():
            rows = [json.loads(line) for line in run.predictions.read_text("utf-8").splitlines()]
        meta = read_meta(run.model)
        has_model = bool(meta)
        download = gr.update(value=None, interactive=False)
        if has_model:
            from ..export import make_zip

            archive = run.root / "model.zip"
            if not archive.exists():
                make_zip(run, archive)
            download = gr.update(value=self._share(user, archive, run.id), interactive=True)
        return {
            "verdict": render.diagnosis_html(results.get("diagnosis")),
            "metrics": render.metrics_html(results),
            "per_class": gr.update(value=render.per_class_frame(results),
                                   visible=bool((results.get("test") or {}).get("per_class"))),
            "confusion": render.confusion_html(results),
            "errors": render.errors_frame(rows),
            **self._label_issues(user, run, results),
            "snippet": usage_snippet(meta, "./model") if has_model else "",
            "download": download,
        }

    def _label_issues(self, user: str, run, results: dict) -> dict:
        """The suspected label errors table and its CSV, shown only when there are any."""
        info = results.get("label_issues") or {}
        path = run.root / "label_issues.csv"
        frame = render.label_issues_frame(info)
        shown = bool(info.get("flagged")) and path.exists()
        return {"label_issues": gr.update(value=frame, visible=shown,
                                          label=render.label_issues_title(info)),
                "label_issues_file": gr.update(
                    value=self._share(user, path, run.id) if shown else None, visible=shown)}

    def publish(self, user: str, form: dict) -> dict:
        from ..export import push_to_hub

        run = self.studio.workspace(user).run(form.get("result_run"))
        try:
            url = push_to_hub(run, form.get("hub_repo") or "", form.get("hub_token") or "",
                              private=bool(form.get("hub_private", True)))
        except FinetunerError as exc:
            return {"hub_msg": render.message(exc.text, "error"), "hub_token": ""}
        return {"hub_msg": render.message(f"Published to {url}", "ok"), "hub_token": ""}

    # ------------------------------------------------------------------ try it
    def try_layout(self, user: str, form: dict) -> dict:
        """Shape the try-it box for the chosen run's task (one or two boxes, label or
        highlights)."""
        run_id = form.get("try_run")
        task, pairs = "classification", False
        if run_id:
            run = self.studio.workspace(user).run(run_id)
            self.studio.warm(run)
            meta = read_meta(run.model)
            task = meta.get("task") or "classification"
        spec = task_ui(task)
        if run_id:
            pairs = spec.pair_always or bool((meta.get("columns") or {}).get("text_pair"))
        label = spec.answer == "label"
        return {"try_text": gr.update(label=spec.text_label),
                "try_pair": gr.update(visible=pairs, label=spec.pair_label or "Second text",
                                      lines=6 if spec.pair_always else 2),
                "try_out": gr.update(visible=label, value=None),
                "try_spans": gr.update(visible=not label, value=None),
                "try_details": ""}

    def predict(self, user: str, form: dict) -> dict:
        """The try-it box: capped in characters before anything is tokenised, at most
        FINETUNER_MAX_PREDICTIONS_PER_USER at once per user (more are refused at once)."""
        run_id = form.get("try_run")
        if not run_id:
            raise FinetunerError("Pick a finished run first.", code="no_run")
        limits = self.studio.limits
        limits.check_try_text(form.get("try_text"), "The text")
        limits.check_try_text(form.get("try_pair"), "The second text or passage")
        ws = self.studio.workspace(user)
        with self.studio.slots.take(ws.user):
            predictor = ws.predictor(run_id)
            task = predictor.spec.name
            spec = task_ui(task)
            text = (form.get("try_text") or "").strip()
            if not text:
                what = spec.text_label.lower()
                return {"try_msg": render.message(f"Type a {what} first.", "info"),
                        "try_out": None, "try_spans": None, "try_details": ""}
            pair = (form.get("try_pair") or "").strip() or None
            needs_pair = spec.pair_always or bool((predictor.meta.get("columns") or {}).get(
                "text_pair"))
            if pair is None and needs_pair:
                what = (spec.pair_label or "second text").lower()
                return {"try_msg": render.message(f"Fill in the {what} too.", "info"),
                        "try_out": None, "try_spans": None, "try_details": ""}
            example = example_for(task, text, pair)
            fitted, note = tryit.fit(predictor, example, limits.max_qa_windows)
            pred = predictor.predict_examples([fitted])[0]
        return {**task_answer(task, pred, example),
                "try_msg": render.message(note, "info") if note else ""}

    def predict_file(self, user: str, form: dict):
        """Predict a whole file in a worker process (finetuner.batch), never in the web
        process: yields progress while it runs, then the CSV (in the user's own folder)."""
        run_id = form.get("try_run")
        source = self._file(user, form, "batch_file")
        if not run_id or not source:
            raise FinetunerError("Pick a run and upload a file first.", code="no_input")
        ws = self.studio.workspace(user)
        run = ws.run(run_id)
        if not (run.model / "finetuner.json").exists():
            raise FinetunerError("This run has no finished model.", "Pick a completed run.",
                                 code="no_model")
        self.studio.limits.check_file(source, "The file to predict")
        batches = self.studio.batches
        job = batches.start(ws.user, run.root, source, ws.root / "batch")
        try:
            shown = None
            while not job.settled():
                job.wait(0.5)
                message = job.message()
                if message != shown:
                    shown = message
                    yield {"try_msg": render.message(message, "info")}
            out = job.result()
        finally:
            batches.cancel(job)  # the page went away mid-way: stop the worker too
        rows = job.state().get("rows", 0)
        yield {"batch_out": self._share(user, out, run_id), "try_msg": render.message(
            f"Predicted {rows:,} rows. Download the CSV below.", "ok")}

    # ------------------------------------------------------------------ runs
    def runs_view(self, user: str, form: dict) -> dict:
        ws = self.studio.workspace(user)
        summaries = ws.list_runs()
        choices = [(f"{s.name} · {s.status} · {s.created}", s.id) for s in summaries]
        return {"runs_table": render.runs_frame(summaries),
                "run_pick": gr.update(choices=choices),
                "result_run": gr.update(choices=self._finished(ws)),
                "try_run": gr.update(choices=self._usable(ws))}

    # ------------------------------------------------------------------ administration
    def admin_view(self, user: str, form: dict) -> dict:
        rows = self.studio.admin_jobs(user)
        frame = pd.DataFrame(rows, columns=["run", "owner", "status", "queue position",
                                            "progress", "waiting since", "id"])
        return {"admin_table": frame,
                "admin_pick": gr.update(choices=[(f"{r['run']} · {r['owner']} · {r['status']}",
                                                  r["id"]) for r in rows], value=None),
                "admin_msg": render.message(f"{len(rows)} job(s) running or waiting.", "info")}

    def admin_cancel(self, user: str, form: dict) -> dict:
        text = self.studio.admin_cancel(user, form.get("admin_pick"))
        out = self.admin_view(user, form)
        out["admin_msg"] = render.message(text, "ok")
        return out

    def open_run(self, user: str, form: dict) -> dict:
        run_id = form.get("run_pick")
        if not run_id:
            raise FinetunerError("Pick a run in the list first.", code="no_run")
        ws = self.studio.workspace(user)
        ws.run(run_id)
        out = self.results_view(user, {"result_run": run_id})
        out.update({"result_run": gr.update(choices=self._finished(ws), value=run_id),
                    "try_run": gr.update(choices=self._usable(ws), value=run_id),
                    "current_run": run_id, "seen": None, "tabs": gr.update(selected="results")})
        return out

    def delete_run(self, user: str, form: dict) -> dict:
        run_id = form.get("run_pick")
        if not run_id:
            raise FinetunerError("Pick a run in the list first.", code="no_run")
        if not form.get("confirm_delete"):
            return {"runs_msg": render.message("Tick 'Yes, delete it' to confirm.", "info")}
        text = self.studio.workspace(user).delete(run_id)
        out = self.runs_view(user, form)
        out.update({"runs_msg": render.message(text, "ok"), "confirm_delete": False,
                    "run_pick": gr.update(choices=out["run_pick"]["choices"], value=None)})
        if form.get("current_run") == run_id:
            out["current_run"] = None
        return out


assert set(METHODS) == {m for _, m in METHOD_CHOICES}
