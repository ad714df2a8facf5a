"""1 · Data tab: uploads and their checks, the task, the columns, the examples."""

from __future__ import annotations

import gradio as gr

from finetuner.data.tables import read_table
from finetuner.english import plural
from finetuner.errors import FinetunerError
from finetuner.models.modeling import resolve_model
from finetuner.tasks import DEFAULT_TASK, get_task
from finetuner.training.checks import prepare_data
from finetuner.ui import render
from finetuner.ui.forms import COLUMN_FIELDS, EXAMPLES, EXAMPLES_DIR, _path
from finetuner.ui.tasks import chosen_columns, picker_values, picker_words
from finetuner.ui.tasks import preview as task_preview
from finetuner.ui.tasks import ui as task_ui
from finetuner.ui.wiring import COST_IN, COST_OUT, FORM, Wiring


class DataTab:
    """Data tab handlers."""

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
        """Another task: relabel the column pickers, its default max length and learning rate
        (unless the box holds a rate of the user's own), check again."""
        task = form.get("task") or DEFAULT_TASK
        out = {"max_length": get_task(task).default_max_length, **self.task_defaults(form, task)}
        for field, words in picker_words(task).items():
            out[field] = gr.update(**words)
        if _path(form.get("train_file")):
            checked = self.data_changed(user, {**form, "max_length": out["max_length"]})
            for name in COLUMN_FIELDS:
                if name in checked:
                    checked[name] = {**out[name], **checked[name]}
            out.update(checked)
        return out

    def data_changed(self, user: str, form: dict) -> dict:
        """A new training file: forget the old column choices and detect again."""
        form = {**form, **dict.fromkeys(COLUMN_FIELDS)}
        if not _path(form.get("train_file")):
            task = form.get("task") or DEFAULT_TASK
            return {"data_msg": render.message("Upload a training file to begin.", "info"),
                    "preview": render.placeholder(
                        "upload a file or load an example to see its first rows"),
                    "report": "", "label_plot": "", "data_state": None,
                    **{field: gr.update(**values)
                       for field, values in picker_values(task, [], {}).items()}}
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
        from finetuner.tasks.suggest import suggest_from_text, suggest_task

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
            result.update(self._column_updates(task, columns, form))
            if exc.code == "missing_column":
                result.update(self._optional_file_mismatch(user, form, exc, task, columns))
            return result
        report = prepared.report.to_dict()
        chosen = chosen_columns(task, report["columns"])
        out = {"preview": task_preview(task, frame, prepared)}
        out.update(self._column_updates(task, columns or [c for c in chosen.values() if c],
                                        chosen, editable=bool(columns)))
        tokens = report.get("token_lengths") or {}
        out["data_state"] = {
            # long texts read in windows train on every window: the cost counts windows
            "task": task, "n_train": round(report["rows"]["train"] *
                                           tokens.get("windows_mean", 1.0)),
            "n_validation": report["rows"]["validation"], "labels": prepared.labels,
            "mean_tokens": tokens.get("mean", 32.0),
            "pairs": bool(chosen.get("text_pair_column")),
            "columns": report["columns"],
        }
        warnings = len(prepared.report.warnings())
        ready = "The data is ready to train on." + (
            f" Read the {plural(warnings, 'warning')} below." if warnings else "")
        out["data_msg"] = render.message(ready, "warning" if warnings else "ok")
        out["report"] = render.report_html(report)
        out["label_plot"] = render.label_chart(report)
        return out

    def _optional_file_mismatch(self, user: str, form: dict, exc: FinetunerError, task: str,
                                columns: list[str]) -> dict:
        """A validation or test file (under 'Optional', often out of sight: one restored
        with an earlier run's data) that lacks a column of a new training file: the training
        file's own columns are detected and picked as usual, the sentence says which file
        is the problem and how to fix it, and the Optional section opens on it."""
        optional = [form.get(key) for key in ("val_file", "test_file") if _path(form.get(key))]
        if not optional:
            return {}
        alone = {**form, "val_file": None, "test_file": None}
        try:
            prepared = prepare_data(self.config(user, alone, model=resolve_model("default")),
                                    None, count_tokens=False)
        except FinetunerError:
            return {}  # the training file has its own problem: the sentence above says it
        chosen = chosen_columns(task, prepared.report.to_dict()["columns"])
        return {**self._column_updates(task, columns, chosen),
                "data_msg": render.message(
                    f"{exc.text} That is one of your optional validation/test files (opened "
                    "below), not the training file: remove it there (its ×) to hold out part "
                    "of the training file instead, or upload one with the training file's "
                    f"columns ({', '.join(c for c in chosen.values() if c)}).", "error"),
                "optional_files": gr.update(open=True)}

    @staticmethod
    def _column_updates(task: str, columns: list[str], chosen: dict,
                        editable: bool = True) -> dict:
        """Dropdown choices and values; files without named columns (CoNLL) are not editable."""
        return {field: gr.update(**values, interactive=editable)
                for field, values in picker_values(task, columns, chosen).items()}

    @staticmethod
    def _data_error(exc: FinetunerError) -> dict:
        return {"data_msg": render.message(exc.text, "error"), "report": "",
                "label_plot": "",
                "data_state": None}

    def _token_source(self, user: str, form: dict):
        try:
            return self.model_source(user, form)
        except FinetunerError:
            return resolve_model("default")  # count tokens with the default until fixed


def wire(w: Wiring) -> None:
    """The Data tab's events: a file, the task, the columns, an example; each new check
    unlocks Start and refreshes the costs, the plan and the command-line preview."""
    C, bind = w.C, w.bind
    form, cost_in, cost_out = FORM, COST_IN, COST_OUT
    data_out = ["preview", *COLUMN_FIELDS, "report", "label_plot", "data_state",
                "optional_files"]

    def unlock(state):
        return (gr.update(interactive=state is not None),) * 4

    def after_data(dep):
        dep = dep.then(unlock, C["data_state"], [C["train_btn"], C["compare_btn"],
                                                 C["tune_btn"], C["curve_btn"]],
                       api_name=False)
        dep = bind(dep.then, "costs", cost_in, cost_out, "method_info", api_name=False)
        bind(dep.then, "preview_config", form, ["cli", "train_msg"], "cli", api_name=False)

    after_data(bind(C["task"].input, "task_changed", form,
                    ["max_length", "lr", *data_out], "data_msg"))
    bind(C["example_btn"].click, "load_example", [*form, "example"],
         ["train_file", "task", "max_length", "lr", *COLUMN_FIELDS], "data_msg")
    # a new file can then switch the task (numbers: regression; joined labels: multi-label)
    checked = bind(C["train_file"].change, "data_changed", form, data_out, "data_msg")
    after_data(bind(checked.then, "suggest_task", form,
                    ["task", "max_length", "lr", *data_out], "data_msg"))
    for name in ("val_file", "test_file"):
        after_data(bind(C[name].change, "check_data", form, data_out, "data_msg",
                        api_name=f"check_{name}"))
    for name in (*COLUMN_FIELDS, "long_documents", "label_separator"):
        after_data(bind(C[name].input, "check_data", form, data_out, "data_msg",
                        api_name=f"check_{name}"))
