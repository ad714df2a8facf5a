"""5 · Try it tab: one prediction at a time, or a whole file."""

from __future__ import annotations

import gradio as gr

from finetuner.errors import FinetunerError
from finetuner.results import read_results
from finetuner.serving import tryit
from finetuner.serving.export import read_meta
from finetuner.tasks import DEFAULT_TASK
from finetuner.ui import render
from finetuner.ui.tasks import answer as task_answer
from finetuner.ui.tasks import example_for
from finetuner.ui.tasks import ui as task_ui
from finetuner.ui.wiring import TRY_VIEW, Wiring


class TryTab:
    """Try it tab handlers."""

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
                "try_spans": gr.update(visible=spec.highlights, value=None),
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
        """Predict a whole file in a worker process (finetuner.server.batch), never in the web
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


def wire(w: Wiring) -> None:
    """The Try it tab's events: a model picked, a prediction, a file of predictions."""
    C, bind = w.C, w.bind
    try_view = TRY_VIEW
    bind(C["try_run"].change, "try_layout", ["try_run"], try_view, "try_msg")
    answer = ["try_out", "try_spans", "try_details"]
    # try it: answered at once, outside gradio's queue, so nobody waits behind another
    # user's flood; the handler caps each user (FINETUNER_MAX_PREDICTIONS_PER_USER) instead
    bind(C["predict_btn"].click, "predict", ["try_run", "try_text", "try_pair"], answer,
         "try_msg", queue=False)
    bind(C["try_text"].submit, "predict", ["try_run", "try_text", "try_pair"], answer,
         "try_msg", api_name="predict_submit", queue=False)
    bind(C["batch_btn"].click, "predict_file", ["try_run", "batch_file"], ["batch_out"],
         "try_msg", concurrency_limit=2)
