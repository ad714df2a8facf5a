"""Data and Model & method tabs: uploads and their checks, columns, model choice, method
costs and advice, the command-line preview."""

from __future__ import annotations

import shlex
from pathlib import Path

import gradio as gr
import yaml

from ..checks import prepare_data
from ..config import RunConfig, TrainingConfig, default_learning_rate
from ..errors import FinetunerError
from ..estimate import human_seconds, method_costs, planned_seconds, recommend
from ..modeling import embedded_name, resolve_model
from ..tables import read_table
from ..tasks import DEFAULT_TASK, get_task
from . import render
from .forms import EXAMPLES, EXAMPLES_DIR, METHOD_TITLES, NONE, _col, _num, _path
from .tasks import chosen_columns
from .tasks import preview as task_preview
from .tasks import ui as task_ui


class DataTabs:
    """Data and Model & method tabs: uploads and their checks, columns, model choice, method"""

    # ------------------------------------------------------------------ data
    def load_example(self, user: str, form: dict) -> dict:
        found = EXAMPLES.get(form.get("example") or "")
        if not found:
            raise FinetunerError("Pick an example first.", code="no_example")
        name, task = found
        out = {"train_file": self._share(user, EXAMPLES_DIR / name)}
        if task != (form.get("task") or DEFAULT_TASK):
            # relabel only: the new file's own change event runs the data check
            out.update(self.task_changed(user, {**form, "task": task, "train_file": None}))
            out["task"] = task
        return out

    def task_changed(self, user: str, form: dict) -> dict:
        """Another task: relabel the column pickers, its default max length, check again."""
        task = form.get("task") or DEFAULT_TASK
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
                    "preview": render.placeholder(
                        "upload a file or load an example to see its first rows"),
                    "report": "", "label_plot": "", "data_state": None,
                    "text_col": gr.update(choices=[], value=None),
                    "pair_col": gr.update(choices=[NONE], value=NONE),
                    "label_col": gr.update(choices=[], value=None)}
        return self.check_data(user, form)

    def suggest_task(self, user: str, form: dict) -> dict:
        """After a new file, among the table tasks (classification, multi-label, regression):
        switch to the one its labels look like, either way (a file of scores to regression, a
        file of classes back to classification), saying so; nothing when the task already
        fits, for the other tasks, or when the file cannot be read."""
        current = form.get("task") or DEFAULT_TASK
        if not get_task(current).tables_only or not _path(form.get("train_file")):
            return {}
        path = self._file(user, form, "train_file")
        try:
            frame = read_table(path).frame
        except FinetunerError:
            frame = None
        from ..tasks.suggest import suggest_from_text, suggest_task

        suggested = (suggest_task(frame) or (DEFAULT_TASK, "its labels look like one class "
                                             "per row")) if frame is not None else \
            suggest_from_text(path)
        if suggested is None:
            return {}
        task, why = suggested
        if task == current:
            return {}
        out = self.task_changed(user, {**form, "task": task})
        out["task"] = task
        note = (f"Switched the task to {task_ui(task).choice}: {why}. Pick another task above "
                "if that is wrong.")
        out["data_msg"] = render.message(note, "info") + out.get("data_msg", "")
        return out

    def check_data(self, user: str, form: dict) -> dict:
        task = form.get("task") or DEFAULT_TASK
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
            # long texts read in windows train on every window: the cost counts windows
            "task": task, "n_train": round(report["rows"]["train"] *
                                           tokens.get("windows_mean", 1.0)),
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

    @staticmethod
    def train_plan(form: dict, seconds: float | None = None, floor: int | None = None) -> str:
        """Beside Start: what it would train now, or why it is locked."""
        data, model = form.get("data_state"), form.get("model_state")
        if not data:
            return render.message("Start is locked: upload a training file on the Data tab and "
                                  "fix what its check reports.", "info")
        if not model:
            return render.message("Start is locked: choose a model that loads on the Model & "
                                  "method tab.", "info")
        rows = (f"{data.get('n_train', 0):,} training, {data.get('n_validation', 0):,} "
                "validation rows")
        epochs = _num(form.get("epochs"), float, 3.0) or 3.0
        method = METHOD_TITLES.get(form.get("method") or "full", form.get("method"))
        task = task_ui(form.get("task") or DEFAULT_TASK).choice
        when = f", about {human_seconds(seconds)}" if seconds else ""
        rate = _num(form.get("lr"), float, None)
        rate = f", learning rate {rate:g}" if rate else ""
        extras = _extras(form)
        return render.message(
            f"Start trains: {task} on {rows}; model {model.get('display') or 'chosen'}; "
            f"{method}, {epochs:g} epoch(s){rate}{when} ("
            + (f"at least {floor} steps on this small data; " if floor else "")
            + "early stopping may end it sooner)."
            + (f" Also set: {'; '.join(extras)}." if extras else ""), "ok")

    def costs(self, user: str, form: dict) -> dict:
        data, model = form.get("data_state"), form.get("model_state")
        if not model:
            return {"method_info": render.message("Choose a model that loads first.", "info"),
                    "advice": "", "train_plan": self.train_plan(form)}
        spec = get_task(form.get("task") or DEFAULT_TASK)
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
            time_text = (f"≈ {human_seconds(c.seconds_per_epoch)}: one pass, the head is "
                         "fitted on the frozen features" if c.one_pass and c.seconds_per_epoch
                         else f"≈ {human_seconds(c.seconds_per_epoch)} per epoch, "
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
        applied = advice is not None and advice.method == (form.get("method") or "full") and \
            float(advice.epochs) == float(epochs)
        advice_html = render.message(
            f"Recommended: {METHOD_TITLES[advice.method]}, {advice.epochs} epochs, "
            f"learning rate {advice.learning_rate:g}. {advice.reason}"
            + (" Your settings match it." if applied else
               " Not applied: your settings are used until you press \"Use the recommended "
               "settings\"."), "info") if advice else ""
        chosen = next((c for c in costs if c.method == (form.get("method") or "full")), None)
        seconds = floor = None
        if chosen is not None and chosen.seconds_per_epoch:
            # the steps the run will plan: its epochs, Max steps, or the floor for small data
            batch = _num(form.get("batch_size"), int, 0) or 32
            max_steps = _num(form.get("max_steps"), int, 0) or None
            floor = TrainingConfig().min_steps
            seconds = planned_seconds(chosen, n_train, epochs, batch, max_steps, floor)
            if max_steps or chosen.one_pass or -(-n_train // batch) * epochs >= floor:
                floor = None  # the epochs (or Max steps) decide, not the floor
        plan = self.train_plan(form, seconds, floor)
        try:  # settings Start would refuse (a server's caps): said here, not "Start trains"
            config = self.config(user, form, model=resolve_model("default")) if data else None
        except FinetunerError:
            config = None  # not this view's to judge (the preview below Start says it)
        if config is not None:
            try:
                self.studio.limits.check_config(config)
            except FinetunerError as exc:
                plan = render.message(f"Start will refuse these settings: {exc.text}",
                                      "warning")
        return {"method_info": table, "advice": advice_html,
                "advice_state": advice.__dict__ if advice else None, "train_plan": plan}

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
                from ..estimate import counts

                spec = get_task(form.get("task") or DEFAULT_TASK)
                n_params = counts(model["path"], spec, 2)["full"][1]
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
            return {"cli": f"# {exc.text}", "train_msg": ""}
        raw = config.to_dict()
        for key in ("train_file", "validation_file", "test_file"):
            if raw["data"][key]:
                raw["data"][key] = Path(raw["data"][key]).name
        # never a server path: the folder by its own name, as the user would have it
        shown = (embedded_name(model) if model.kind == "embedded" else model.display
                 if model.kind == "hub" else "path/to/" + model.portable)
        raw["model"] = {"name_or_path": shown}
        args = ["python", "-m", "finetuner", "train", "--data", raw["data"]["train_file"]]
        flags = [("--validation", raw["data"]["validation_file"]),
                 ("--test", raw["data"]["test_file"]),
                 ("--text-column", raw["data"]["text_column"]),
                 ("--text-pair-column", raw["data"]["text_pair_column"]),
                 ("--label-column", raw["data"]["label_column"]),
                 ("--model", None if shown == "default" else shown),
                 ("--method", raw["method"]["method"]),
                 ("--epochs", f"{raw['training']['epochs']:g}"),
                 ("--lr", raw["training"]["learning_rate"]),
                 ("--output", "runs/my-run")]
        defaults = RunConfig.from_dict({"task": raw["task"]}).to_dict()
        named = {flag for flag, _ in flags} | {"--data", "--task", "--output"}
        from ..cli_flags import FLAGS

        for flag, (section, name, _, _) in FLAGS.items():  # advanced settings a user changed
            value = raw[section][name] if section else raw[name]
            if flag not in named and value is not None and value != (
                    defaults[section][name] if section else defaults[name]):
                value = ",".join(value) if isinstance(value, list) else value
                flags.insert(-1, (flag, f"{value:g}" if isinstance(value, float) else value))
        if raw["task"] != DEFAULT_TASK:
            args += ["--task", raw["task"]]
        for flag, value in flags:
            if value is not None:
                args += [flag, str(value)]
        switches = (("--adapter-only", raw["method"]["export_adapter_only"]),
                    ("--onnx", raw["training"]["onnx"]))  # flags without a value
        args[-2:-2] = [flag for flag, on in switches if on]
        text = (" ".join(shlex.quote(a) for a in args) + "\n\n# or: python -m finetuner train "
                "--config run.yaml --output runs/my-run, with run.yaml:\n"
                + yaml.safe_dump(raw, sort_keys=False))
        return {"cli": text, "train_msg": ""}


def _extras(form: dict) -> list[str]:
    """Settings that outlive one run and change what Start does (they stay set after a
    comparison or a new upload): said beside Start, never carried silently."""
    out = []
    steps = _num(form.get("max_steps"), int, 0)
    if steps and steps > 0:
        out.append(f"at most {steps:,} steps")
    batch = _num(form.get("batch_size"), int, 0)
    if batch and batch > 0:
        out.append(f"batch size {batch}")
    if form.get("onnx"):
        out.append("ONNX export after training")
    if form.get("adapter_only") and (form.get("method") or "full") == "lora":
        out.append("the LoRA adapter exported alone")
    if form.get("report_to"):
        out.append("reported to " + ", ".join(map(str, form["report_to"])))
    return out
