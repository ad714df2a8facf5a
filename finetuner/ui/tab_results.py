"""4 · Results tab: test metrics and the verdict, label errors, downloads, the
ONNX export and publishing to the hub."""

from __future__ import annotations

import json

import gradio as gr
import pandas as pd

from finetuner.errors import FinetunerError
from finetuner.methods import METHODS
from finetuner.results import read_results
from finetuner.serving.export import read_meta, usage_snippet
from finetuner.ui import charts, render, render_results
from finetuner.ui.forms import METHOD_CHOICES
from finetuner.ui.wiring import RESULTS_OUT, Wiring


class ResultsTab:
    """Results tab handlers."""

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

        rows = []
        if run.predictions.exists():
            rows = [json.loads(line) for line in run.predictions.read_text("utf-8").splitlines()]
        meta = read_meta(run.model)
        has_model = bool(meta)
        download = gr.update(value=None, interactive=False)
        if has_model:
            from finetuner.serving.export import make_zip

            archive = run.root / "model.zip"
            if not archive.exists():
                make_zip(run, archive)
            from finetuner.server.studio import safe_filename

            # saved under the run's own name, not one more "model.zip" in Downloads
            name = safe_filename(ws.name_of(run), "run") + "-model.zip"
            download = gr.update(value=self._share(user, archive, run.id, name),
                                 interactive=True)
        from finetuner.server import export_job

        onnx_now = export_job.state(run) if has_model else "done"
        return {
            "onnx_btn": gr.update(visible=onnx_now == "none"),
            "results_timer": gr.Timer(active=onnx_now == "running"),
            "verdict": render.diagnosis_html(results.get("diagnosis")),
            "metrics": render_results.metrics_html(results),
            "per_class": gr.update(value=render_results.per_class_frame(results),
                                   visible=not render_results.per_class_frame(results).empty),
            "confusion": render_results.confusion_html(results) or charts.scatter_html(rows),
            "errors": render_results.errors_frame(rows),
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
        from finetuner.server import export_job

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
        frame = render_results.label_issues_frame(info)
        shown = bool(info.get("flagged")) and path.exists()
        return {"label_issues": gr.update(value=frame, visible=shown,
                                          label=render_results.label_issues_title(info)),
                "label_issues_file": gr.update(
                    value=self._share(user, path, run.id) if shown else None, visible=shown)}

    def publish(self, user: str, form: dict) -> dict:
        from finetuner.serving.export import push_to_hub

        run = self.studio.workspace(user).run(form.get("result_run"))
        try:
            url = push_to_hub(run, form.get("hub_repo") or "", form.get("hub_token") or "",
                              private=bool(form.get("hub_private", True)))
        except FinetunerError as exc:
            return {"hub_msg": render.message(exc.text, "error"), "hub_token": ""}
        return {"hub_msg": render.message(f"Published to {url}", "ok"), "hub_token": ""}


assert set(METHODS) == {m for _, m in METHOD_CHOICES}


def wire(w: Wiring) -> None:
    """The Results tab's events: a run picked, its export, its tick, publishing."""
    C, bind = w.C, w.bind
    results_out = RESULTS_OUT
    bind(C["result_run"].input, "results_view", ["result_run"], results_out, "results_msg")
    bind(C["onnx_btn"].click, "export_onnx", ["result_run"], results_out, "results_msg")
    bind(C["results_timer"].tick, "results_tick", ["result_run"], results_out, "results_msg",
         api_name=False, show_progress="hidden", queue=False)
    bind(C["publish_btn"].click, "publish", ["result_run", "hub_repo", "hub_token",
                                              "hub_private"], ["hub_token"], "hub_msg")
