"""Results, Try it, Your runs and Admin tabs: metrics and verdict, downloads, predictions,
the runs list, deleting and the administrators' view."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from .. import tryit
from ..config import METHODS
from ..errors import FinetunerError
from ..export import read_meta, usage_snippet
from ..results import read_results
from ..runs import FINAL_STATUSES
from ..tasks import DEFAULT_TASK
from . import charts, render
from .forms import METHOD_CHOICES
from .tasks import answer as task_answer
from .tasks import example_for
from .tasks import ui as task_ui


class ResultsTabs:
    """Results, Try it, Your runs and Admin tabs: metrics and verdict, downloads, predictions,"""

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
                    "per_class": render.placeholder("pick a finished run"), "confusion": "",
                    "errors": render.placeholder("pick a finished run"),
                    "label_issues": gr.update(value=pd.DataFrame(), visible=False),
                    "label_issues_file": gr.update(value=None, visible=False), "snippet": "",
                    "download": gr.update(value=None, interactive=False),
                    "onnx_btn": gr.update(visible=False)}
        ws = self.studio.workspace(user)
        run = ws.run(run_id)
        results = read_results(run.results) or {}
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
            from ..studio import safe_filename

            # saved under the run's own name, not one more "model.zip" in Downloads
            name = safe_filename(ws.name_of(run), "run") + "-model.zip"
            download = gr.update(value=self._share(user, archive, run.id, name),
                                 interactive=True)
        from .. import export_job

        onnx_now = export_job.state(run) if has_model else "done"
        return {
            "onnx_btn": gr.update(visible=onnx_now == "none"),
            "results_timer": gr.Timer(active=onnx_now == "running"),
            "verdict": render.diagnosis_html(results.get("diagnosis")),
            "metrics": render.metrics_html(results),
            "per_class": gr.update(value=render.per_class_frame(results),
                                   visible=not render.per_class_frame(results).empty),
            "confusion": render.confusion_html(results) or charts.scatter_html(rows),
            "errors": render.errors_frame(rows),
            **self._label_issues(user, run, results),
            "snippet": usage_snippet(meta, "./model") if has_model else "",
            "download": download,
        }

    def export_onnx(self, user: str, form: dict) -> dict:
        """Export the shown run to ONNX now, in its own process; the view follows it."""
        run = self.studio.workspace(user).export_onnx(form.get("result_run"))
        # the export's own section below says it is running and then shows its check: no
        # second message above that would outlive it
        return {**self.results_view(user, {"result_run": run.id}), "results_msg": ""}

    def results_tick(self, user: str, form: dict) -> dict:
        """While an export runs: the view again once it has landed (or failed)."""
        from .. import export_job

        run_id = form.get("result_run")
        if not run_id:
            return {"results_timer": gr.Timer(active=False)}
        run = self.studio.workspace(user).run(run_id)
        if export_job.state(run) == "running":
            return {}
        return {**self.results_view(user, form), "results_msg": ""}

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
        task, pairs = DEFAULT_TASK, False
        if run_id:
            run = self.studio.workspace(user).run(run_id)
            self.studio.warm(run)
            meta = read_meta(run.model)
            task = meta.get("task") or DEFAULT_TASK
        spec = task_ui(task)
        if run_id:
            pairs = spec.pair_always or bool((meta.get("columns") or {}).get("text_pair"))
        label = spec.answer == "label"  # multi-label shows its own table of every label
        return {"try_msg": self._try_warning(run) if run_id else "",
                "try_text": gr.update(label=spec.text_label),
                "try_pair": gr.update(visible=pairs, label=spec.pair_label or "Second text",
                                      lines=6 if spec.pair_always else 2),
                "try_out": gr.update(visible=label, value=None),
                "try_spans": gr.update(visible=spec.answer == "spans", value=None),
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
                "try_msg": self._try_warning(ws.run(run_id))
                + (render.message(note, "info") if note else "")}

    @staticmethod
    def _try_warning(run) -> str:
        """Above the answer, when a simple baseline beats this run's model: say so first."""
        text = tryit.warning(read_results(run.results))
        return render.message(text, "warning") if text else ""

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
        ws.check_quota()  # the predictions CSV is written into the user's folder
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
        finished = [(f"{s.name} · {s.created}", s.id) for s in summaries
                    if s.status in ("completed", "stopped") and s.value is not None]
        return {"runs_table": render.runs_frame(summaries),
                "run_pick": gr.update(choices=choices),
                "result_run": gr.update(choices=self._finished(ws)),
                "try_run": gr.update(choices=self._usable(ws)),
                "runs_select": gr.update(choices=finished)}

    def runs_tick(self, user: str, form: dict) -> dict:
        """Every few seconds: the runs list again, only when a run came, went or changed
        state (a cheap look at the run folders first)."""
        mark = self.studio.workspace(user).runs_mark()
        if mark == form.get("runs_seen"):
            return {}
        return {**self.runs_view(user, form), "runs_seen": mark}

    # ------------------------------------------------------------------ administration
    def admin_view(self, user: str, form: dict) -> dict:
        rows = self.studio.admin_jobs(user)
        columns = ["run", "owner", "status", "queue position", "progress", "waiting since",
                   "id"]
        if self.studio.gpu_slots:  # which job holds which GPUs
            columns.insert(4, "GPUs")
        frame = pd.DataFrame(rows, columns=columns)
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
