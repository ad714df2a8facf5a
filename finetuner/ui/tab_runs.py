"""Your runs tab: the user's runs, opening, resuming and deleting one."""

from __future__ import annotations

import gradio as gr

from finetuner.errors import FinetunerError
from finetuner.runs import FINAL_STATUSES
from finetuner.ui import render
from finetuner.ui.wiring import GROUP_OUT, RESULTS_OUT, RUNS_OUT, Wiring


class RunsTab:
    """Your runs tab handlers."""

    @staticmethod
    def _finished(ws) -> list[tuple[str, str]]:
        return [(f"{s.name} · {s.status} · {s.created}", s.id) for s in ws.list_runs()
                if s.status in FINAL_STATUSES]

    @staticmethod
    def _usable(ws) -> list[tuple[str, str]]:
        return [(f"{s.name} · {s.created}", s.id) for s in ws.list_runs()
                if (ws.runs_dir / s.id / "model" / "finetuner.json").exists()]

    def runs_view(self, user: str, form: dict) -> dict:
        ws = self.studio.workspace(user)
        summaries = ws.list_runs()
        choices = [(f"{s.name} · {s.status} · {s.created}", s.id) for s in summaries]
        finished = [(f"{s.name} · {s.created}", s.id) for s in summaries
                    if s.status in ("completed", "stopped") and s.value is not None]
        lists = {"run_pick": choices, "result_run": self._finished(ws),
                 "try_run": self._usable(ws), "runs_select": finished}
        out = {"runs_table": render.runs_frame(summaries)}
        for key, options in lists.items():
            update = {"choices": options}
            if key in form:  # what the page shows, sent along: a run no longer listed (deleted
                # here or on another page) is let go in the same update, else Gradio would
                # refuse every later event that reads this picker ("not in the list of choices")
                ids, value = {v for _, v in options}, form[key]
                if isinstance(value, list):
                    if any(v not in ids for v in value):
                        update["value"] = [v for v in value if v in ids]
                elif value and value not in ids:
                    update["value"] = None
            out[key] = gr.update(**update)
        return out

    def runs_tick(self, user: str, form: dict) -> dict:
        """Every few seconds: the runs list again, only when a run came, went or changed
        state (a cheap look at the run folders first)."""
        mark = self.studio.workspace(user).runs_mark()
        if mark == form.get("runs_seen"):
            return {}
        return {**self.runs_view(user, form), "runs_seen": mark}

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
        view = self.runs_view(user, form)
        # the other pickers are the runs tick's to redraw: it reads what each shows and lets
        # the deleted run go in the same update (changing their choices here, blind to their
        # values, would leave a picker holding a run Gradio no longer accepts)
        out = {"runs_table": view["runs_table"], "runs_msg": render.message(text, "ok"),
               "confirm_delete": False,
               "run_pick": gr.update(choices=view["run_pick"]["choices"], value=None)}
        if form.get("current_run") == run_id:
            out["current_run"] = None
        return out


PICKERS = ["run_pick", "result_run", "try_run", "runs_select"]  # every picker of runs


def wire(w: Wiring) -> None:
    """The Your runs tab's events: refresh and tick, open, resume, delete, side by side."""
    C, bind = w.C, w.bind
    runs_out, results_out = RUNS_OUT, RESULTS_OUT
    # Refresh reads what each runs picker shows, as the tick does, so that a run deleted on
    # another page is let go in the same update (blind to the values, it left a picker
    # holding a run Gradio then refused on every later event that read it)
    bind(C["refresh_btn"].click, "runs_view", PICKERS, runs_out, "runs_msg", api_name=False)
    bind(C["runs_api"].click, "runs_view", [], runs_out, "runs_msg", api_name="runs_view")
    bind(C["runs_timer"].tick, "runs_tick", ["runs_seen", *PICKERS], [*runs_out, "runs_seen"],
         "runs_msg", api_name=False, show_progress="hidden", queue=False)
    bind(C["open_btn"].click, "open_run", ["run_pick"],
         [*results_out, "result_run", "try_run", "current_run", "seen", "tabs"], "runs_msg")
    bind(C["resume_pick_btn"].click, "resume", ["run_pick"],
         ["current_run", "seen", "tabs", "train_msg"], "runs_msg", api_name="resume_pick")
    bind(C["delete_btn"].click, "delete_run", ["run_pick", "confirm_delete", "current_run"],
         [*runs_out, "confirm_delete", "current_run"], "runs_msg")
    bind(C["side_btn"].click, "side_by_side", ["runs_select"],
         [*GROUP_OUT, "group_pick", "tabs", "group_msg"], "runs_msg")
