"""2 · Model & method tab: the model choice, each method's cost, the advice, the plan
beside Start and the command-line preview."""

from __future__ import annotations

import dataclasses
import math
import shlex
from pathlib import Path

import gradio as gr
import yaml

from finetuner.config import RunConfig
from finetuner.english import plural
from finetuner.errors import FinetunerError
from finetuner.methods import METHOD_TITLES, default_learning_rate
from finetuner.models.estimate import human_seconds, method_costs, recommend, run_plan
from finetuner.models.modeling import embedded_name, resolve_model
from finetuner.tasks import DEFAULT_TASK, TASKS, get_task
from finetuner.ui import render
from finetuner.ui.forms import SETTINGS, _num, method_of, on_page, settings_from_form
from finetuner.ui.tasks import ui as task_ui
from finetuner.ui.wiring import COST_IN, COST_OUT, FORM, Wiring


class ModelTab:
    """Model & method tab handlers."""

    def model_changed(self, user: str, form: dict) -> dict:
        choice = form.get("model_choice") or "default"
        mine, own = self.studio.workspace(user).own_models(), form.get("model_own")
        out = {"model_path": gr.update(visible=choice in ("folder", "hub")),
               "model_zip": gr.update(visible=choice == "zip"),
               "model_own": gr.update(visible=choice == "mine", choices=mine,
                                      # a deleted model's value would stay behind, hidden,
                                      # and Gradio would refuse every form event for it
                                      value=own if own in {v for _, v in mine} else None)}
        if choice == "mine" and not own:
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
    def train_plan(form: dict, seconds: float | None = None, floor: int | None = None,
                   one_pass: bool = False) -> str:
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
        method = METHOD_TITLES.get(method_of(form), form.get("method"))
        task = task_ui(form.get("task") or DEFAULT_TASK).choice
        when = f", about {human_seconds(seconds)}" if seconds else ""
        rate = _num(form.get("lr"), float, None)
        rate = f", learning rate {rate:g}" if rate else ""
        extras = _extras(form)
        try:  # patience 0: every step is trained
            stops = _num(form.get("patience"), float, 3) != 0
        except FinetunerError:  # not this line's to judge: Start names the bad value
            stops = True
        notes = [f"at least {floor} steps on this small data"] if floor else []
        if stops:  # early stopping waits for the floor or the epochs asked for (loop.plan_run)
            notes.append(f"early stopping may end it after {plural(max(epochs, 1), 'epoch')}"
                         if floor else "early stopping may end it sooner")
        else:
            notes.append("early stopping off")
        how = (f"{method}: one pass, the new head is fitted on the frozen encoder's features"
               f"{when}." if one_pass else
               f"{method}, {plural(epochs, 'epoch')}{rate}{when} ({'; '.join(notes)}).")
        return render.message(
            f"Start trains: {task} on {rows}; model {model.get('display') or 'chosen'}; {how}"
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
        try:  # the settings as Start would read them (Max steps, evaluations, the floor)
            settings = settings_from_form(form)
            planning = RunConfig.from_dict({
                "task": spec.name, "method": {"method": method_of(form), **settings["method"]},
                "training": settings["training"]})
        except FinetunerError:
            planning = None  # not this view's to judge (the preview below Start says it)
        n_val, tokens = (data or {}).get("n_validation", 0), (data or {}).get("mean_tokens", 32.0)

        def plan_of(method: str):  # (steps, seconds, floored) of a run with this method
            if planning is None or not n_train:
                return None
            config = dataclasses.replace(
                planning, method=dataclasses.replace(planning.method, method=method))
            return run_plan(config, spec, model["path"], n_train, n_val, tokens, labels)

        rows = []
        for c in costs:
            chosen = c.method == method_of(form)
            planned = plan_of(c.method) if c.seconds_per_epoch else None
            # the whole run as set (its epochs, Max steps or the floor of steps), the same
            # number as the plan beside Start
            run_text = f"; this run about {human_seconds(planned[1])}" + (
                f" (at least {planning.training.min_steps} steps on this small data)"
                if planned[2] else "") if planned and not c.one_pass else ""
            time_text = (f"≈ {human_seconds(c.seconds_per_epoch)}: one pass, the head is "
                         "fitted on the frozen features" if c.one_pass and c.seconds_per_epoch
                         else f"≈ {human_seconds(c.seconds_per_epoch)} per epoch{run_text}"
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
        advice = recommend(n_train, labels, full.seconds_per_epoch,
                           full_factor=spec.full_lr_factor, n_params=full.total) \
            if n_train else None
        epochs = _num(form.get("epochs"), float, 3.0) or 3.0
        form_rate = _num(form.get("lr"), float, None)
        applied = advice is not None and advice.method == method_of(form) and \
            float(advice.epochs) == float(epochs) and form_rate is not None and \
            math.isclose(form_rate, advice.learning_rate, rel_tol=1e-6)
        advice_html = render.message(
            f"Recommended: {METHOD_TITLES[advice.method]}, {advice.epochs} epochs, "
            f"learning rate {advice.learning_rate:g}. {advice.reason}"
            + (" Your settings match it." if applied else
               " Not applied: your settings are used until you press \"Use the recommended "
               "settings\"."), "info") if advice else ""
        seconds = floor = None
        planned = plan_of(method_of(form))
        if planned is not None:  # the steps: its epochs, Max steps, or the floor for small data
            _, seconds, floored = planned
            floor = planning.training.min_steps if floored else None
        chosen_cost = next((c for c in costs if c.method == method_of(form)), None)
        plan = self.train_plan(form, seconds, floor,
                               one_pass=bool(chosen_cost and chosen_cost.one_pass))
        try:
            config = self.config(user, form, model=resolve_model("default")) if data else None
        except FinetunerError as exc:
            config = None
            if exc.code == "bad_setting":  # a setting out of its range, named as on the page
                plan = render.message("Start will refuse these settings: "
                                      f"{on_page(exc, self.labels)}", "warning")
        if config is not None:  # settings Start would refuse (a server's caps): said here
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
        """The learning rate for the method, the task and the size of the chosen model."""
        task = get_task(form.get("task") or DEFAULT_TASK)
        return {"lr": default_learning_rate(method_of(form), _model_params(form),
                                            task.full_lr_factor)}

    @staticmethod
    def task_defaults(form: dict, task: str) -> dict:
        """The Learning rate box follows a change of task while it holds a default (the
        method's rate for some task); a rate of the user's own stays."""
        rate = _num(form.get("lr"), float, None)
        method, n_params = method_of(form), _model_params(form)
        ours = {default_learning_rate(method, n_params, t.full_lr_factor) for t in TASKS.values()}
        if rate is None or any(math.isclose(rate, d, rel_tol=1e-6) for d in ours):
            return {"lr": default_learning_rate(method, n_params, get_task(task).full_lr_factor)}
        return {}

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
        from finetuner.cli.flags import FLAGS

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


def _model_params(form: dict) -> int | None:
    """The chosen model's parameter count (None when unknown: the small-model rates)."""
    model = form.get("model_state") or {}
    if not model.get("path"):
        return None
    try:
        from finetuner.models.estimate import counts

        return counts(model["path"], get_task(DEFAULT_TASK), 2)["full"][1]
    except Exception:  # noqa: BLE001 - no size known: the small-model default
        return None


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
    if form.get("adapter_only") and method_of(form) == "lora":
        out.append("the LoRA adapter exported alone")
    if form.get("report_to"):
        out.append("reported to " + ", ".join(map(str, form["report_to"])))
    return out


def wire(w: Wiring) -> None:
    """The Model & method tab's events: the model, the method and settings (costs and the
    plan beside Start follow), the advice, and the preview that follows every field."""
    C, bind = w.C, w.bind
    form, cost_in, cost_out = FORM, COST_IN, COST_OUT
    for name in ("model_choice", "model_path", "model_zip", "model_own"):
        dep = bind(C[name].change, "model_changed", form,
                   ["model_path", "model_zip", "model_own", "model_state"], "model_msg",
                   api_name=f"model_{name}")
        bind(dep.then, "costs", cost_in, cost_out, "method_info", api_name=False)
    named = ("method", "epochs", "lora_r", "lr", "max_steps", "batch_size", "onnx",
             "adapter_only", "report_to")  # what the plan beside Start says
    for name in named:
        bind(C[name].change, "costs", cost_in, cost_out, "method_info",
             api_name=f"costs_{name}")
    # every other setting too: its time (evaluations per epoch) or its refusal ("Start will
    # refuse these settings: Max length (tokens) is 10000 ...") is the plan's to say
    for name in SETTINGS:
        if name not in named:
            bind(C[name].change, "costs", cost_in, cost_out, "method_info", api_name=False)
    # the user's own choice of method brings its learning rate; a method set by the page (a
    # reload restoring a run's settings, the recommendation) comes with its own
    bind(C["method"].input, "method_defaults", [*form, "model_state"], ["lr"], "method_info",
         api_name="method_defaults")
    dep = bind(C["advice_btn"].click, "apply_advice", ["advice_state"],
               ["method", "epochs", "lr"], "advice")
    # the fields changed by a handler fire no input event: the preview and the plan follow
    dep = bind(dep.then, "costs", cost_in, cost_out, "method_info", api_name=False)
    bind(dep.then, "preview_config", form, ["cli", "train_msg"], "cli", api_name=False)
    for name in form:
        event = getattr(C[name], "input", None) or C[name].change
        if name not in ("train_file", "task", "model_zip"):
            # a changed setting also clears the last run's "Run completed": it was about
            # that run, and the plan beside Start now says what the next one does
            bind(event, "preview_config", form, ["cli", "train_msg"], "cli",
                 api_name=False, show_progress="hidden")
