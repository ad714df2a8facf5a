"""Train tab: start, resume, stop, re-attach and the live view (one tick a second)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from finetuner.errors import FinetunerError
from finetuner.methods import DEFAULT_METHOD
from finetuner.results import read_results
from finetuner.runs import FINAL_STATUSES, read_events, read_json, tail
from finetuner.tasks import DEFAULT_TASK, get_task
from finetuner.training.checks import prepare_data
from finetuner.ui import charts, render, words
from finetuner.ui.forms import _path
from finetuner.ui.wiring import FORM, RESULTS_OUT, TRY_VIEW, Wiring


class TrainTab:
    """Train tab: start, resume, stop, re-attach and the live view (one tick a second)."""

    # ------------------------------------------------------------------ training
    def checked_config(self, user: str, form: dict):
        """The form as a RunConfig, with its files, data and limits checked now (a problem
        is reported here, not minutes later by the worker)."""
        ws = self.studio.workspace(user)
        ws.check_quota()
        limits = self.studio.limits
        for key in ("train_file", "val_file", "test_file"):
            limits.check_file(self._file(user, form, key), "The uploaded file")
        source = self.model_source(user, form)
        config = self.config(user, form, model=source)
        from finetuner.training.tracking import check as check_trackers

        check_trackers(config.training.report_to)
        prepared = prepare_data(config, source, count_tokens=False)  # fail here, not later
        limits.check_config(config, sum(prepared.report.rows.values()))
        return ws, config

    def start(self, user: str, form: dict) -> dict:
        ws, config = self.checked_config(user, form)
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
                "stop_btn": gr.update(interactive=True),
                "run_name": ""}  # a name is for one run: the next one gets its own

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
        out["group_pick"] = gr.update(choices=self._groups(ws, self.studio.groups))
        group = self._group_to_show(ws, active)
        if group:  # a comparison or search is running: its view, not one member's curves
            out["group_pick"] = gr.update(choices=self._groups(ws, self.studio.groups),
                                          value=group)
            out["tabs"] = gr.update(selected="groups")
        elif active:
            out["train_msg"] = render.message(
                f"Re-attached to the running training '{ws.name_of(active)}'.", "info")
            out["tabs"] = gr.update(selected="train")
        return out

    def restore_data(self, user: str, form: dict) -> dict:
        """After `attach`, a page reloaded during a training gets that run's Data tab back,
        unless a file is already there. A step of its own, after `attach` has answered: it
        reads the form as it is now, so a file the user uploaded while the page was loading
        is kept (restoring it from `attach`'s snapshot of the empty page replaced, or with
        Gradio even merged with, that upload)."""
        if _path(form.get("train_file")):
            return {}
        active = self.studio.workspace(user).active_run()
        return self._restore_data(user, active, form) if active else {}

    def _restore_data(self, user: str, run, form: dict) -> dict:
        """The run's copies of its files (shared with this user only), its task and its
        settings; the files' change events then check them again, as after an upload."""
        data = (read_json(run.config) or {}).get("data") or {}
        out = {}
        for key, field in (("train_file", "train_file"), ("validation_file", "val_file"),
                           ("test_file", "test_file")):
            path = data.get(key)
            if path and Path(path).is_file() and Path(path).parent == run.root / "data":
                # the copy is named "train-<upload name>": offered under the upload's name
                name = Path(path).name.split("-", 1)[-1]
                out[field] = self._share(user, path, run.id, name)
        if "train_file" not in out:
            return {}
        config = read_json(run.config) or {}
        # the settings it trains with, so the page (the plan beside Start included) describes
        # the run it shows rather than the form's defaults; a comparison's or search's member
        # gives back the settings the user started the group with, not what the group varied
        # for this member (its method, rate, ...): the next Start trains what the user chose
        settings = self.studio.groups.base_of(self.studio.workspace(user), run) or config
        method, training = settings.get("method") or {}, settings.get("training") or {}
        out.update({"method": method.get("method") or DEFAULT_METHOD,
                    "epochs": training.get("epochs"), "lr": training.get("learning_rate"),
                    "max_steps": training.get("max_steps") or 0,
                    "batch_size": training.get("batch_size") or 0,
                    "lora_r": method.get("lora_r"), "onnx": bool(training.get("onnx"))})
        out = {k: v for k, v in out.items() if v is not None}
        task = config.get("task") or DEFAULT_TASK
        if task != (form.get("task") or DEFAULT_TASK):  # the run's own settings win
            out = {**self.task_changed(user, {**form, "task": task, "train_file": None}), **out}
            out["task"] = task
        return out

    def _group_to_show(self, ws, active) -> str | None:
        """The running group a reloaded page opens on: the one the active run belongs to,
        else any running group of the user (between two trials nothing trains)."""
        if active is not None:
            try:
                owner = (active.root / "group.txt").read_text().strip()
            except OSError:
                return None  # a plain training: the Train tab, as before
            return owner if self.studio.groups.owner_active(ws, active) else None
        running = self.studio.groups.active(ws)
        return running[0]["id"] if running else None

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
        results = read_results(run.results) or {}
        # the ONNX export runs after the results are written: show its check when it lands
        key = {"run": run_id, "events": len(events), "status": status,
               "onnx": bool((results.get("onnx") or {}).get("pending"))}
        if seen == key:
            return {}
        config = read_json(run.config) or {}
        spec = get_task(config.get("task", DEFAULT_TASK))
        progress = next((e for e in reversed(events) if e["type"] == "progress"), None)
        note = next((e.get("message", "") for e in reversed(events) if e["type"] == "status"),
                    "")
        if status in FINAL_STATUSES:
            note = (results.get("error") or {}).get("message") or results.get("note") or ""
        gpus = self.studio.jobs.gpus_of(run.id) if status == "running" else ""
        if gpus:  # GPU slots: which GPUs this job holds
            note = f"{note} · GPU {gpus}" if note else f"GPU {gpus}"
        if status == "queued":
            position = self.studio.jobs.position(run)
            note = f"position {position} of {self.studio.jobs.queue_length()}"
            key["position"] = position
        loss, score = render.curves(events, spec.primary_metric)
        metric = words.metric_title(spec.primary_metric)  # the cards' and tables' title
        average = (results.get("timing") or {}).get("train_samples_per_second") \
            if status in FINAL_STATUSES else None
        out = {"seen": key, "progress": render.progress_html(status, progress, note, average),
               "loss_plot": charts.line_chart(loss, "Loss (lower is better)"),
               "metric_plot": charts.line_chart(score, f"{metric} (higher is better)"),
               # as many lines as the box shows: the newest are in view without scrolling
               "log": words.plain_log(tail(run.log, 12)),
               # an ended run under the plan for the next one is the last run, not this one
               "run_title": f"### {'Your last run' if status in FINAL_STATUSES else 'Run'}: "
                            f"{ws.name_of(run)}",
               "stop_btn": gr.update(interactive=status in ("running", "queued")),
               "resume_btn": gr.update(visible=bool(results.get("resumable"))
                                       and status == "interrupted")}
        if status in FINAL_STATUSES and (seen.get("status") != status or
                                         seen.get("onnx") != key["onnx"]):
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


def wire(w: Wiring) -> None:
    """The Train tab's events: start, stop, resume and the live view's tick."""
    C, bind = w.C, w.bind
    form, try_view, results_out = FORM, TRY_VIEW, RESULTS_OUT
    start_out = ["current_run", "seen", "tabs", "train_msg", "stop_btn", "train_btn",
                 "run_name"]
    bind(C["train_btn"].click, "start", [*form, "run_name"], start_out, "train_msg",
         concurrency_limit=1)
    bind(C["stop_btn"].click, "stop", ["current_run"], [], "train_msg")
    bind(C["resume_btn"].click, "resume", ["current_run"],
         ["current_run", "seen", "tabs", "train_msg"], "train_msg")
    tick_out = ["seen", "progress", "loss_plot", "metric_plot", "log", "run_title", "stop_btn",
                "resume_btn", "current_run", "runs_table", "run_pick", "result_run", "try_run",
                *results_out, *try_view]
    from finetuner.ui.tab_runs import PICKERS

    # the runs pickers it redraws when a run ends are sent along, so that a run deleted on
    # another page is let go in the same update (tab_runs.runs_view), never left in a
    # picker whose choices lost it
    bind(C["timer"].tick, "tick", ["current_run", "seen", *PICKERS], tick_out, "train_msg",
         api_name=False, show_progress="hidden", queue=False)
