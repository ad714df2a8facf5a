"""Compare & tune: start a comparison of methods or a search from the Model & method tab, watch
it live, stop or continue it, and put finished runs side by side from Your runs."""

from __future__ import annotations

import math

import gradio as gr

from finetuner.errors import FinetunerError
from finetuner.server.compare import parse_vary
from finetuner.ui import render, render_groups
from finetuner.ui.forms import _num
from finetuner.ui.wiring import FORM, GROUP_OUT, Wiring

VARY_CHOICES = [("Nothing else", ""), ("Learning rate", "learning_rate"),
                ("LoRA rank", "lora_r"), ("Epochs", "epochs"), ("Batch size", "batch_size"),
                ("Weight decay", "weight_decay"), ("Dropout", "dropout")]


def _positive(value) -> float | None:
    """A budget: a positive finite number, else none (no limit)."""
    number = _num(value, float, None)
    return number if number and number > 0 and math.isfinite(number) else None


class GroupsTab:
    """Handlers of the comparison and search views (finetuner.server.groups does the work)."""

    @staticmethod
    def _groups(ws, groups) -> list[tuple[str, str]]:
        kinds = {"compare": "comparison", "search": "search", "curve": "learning curve"}
        return [(f"{g['name']} · {kinds.get(g['kind'], g['kind'])} · "
                 f"{render_groups.GROUP_STATUS.get(g['status'], g['status'])} · {g['created']}",
                 g["id"]) for g in groups.list(ws)]

    def _opened(self, user: str, group_id: str, text: str) -> dict:
        ws = self.studio.workspace(user)
        out = self.group_view(user, {"group_pick": group_id})
        out.update(group_pick=gr.update(choices=self._groups(ws, self.studio.groups),
                                        value=group_id),
                   tabs=gr.update(selected="groups"), group_msg=render.message(text, "ok"),
                   run_name="")  # the name was for this group
        return out

    def compare(self, user: str, form: dict) -> dict:
        ws, config = self.checked_config(user, form)
        methods = list(form.get("cmp_methods") or [])
        vary = None
        if form.get("cmp_vary"):
            values = str(form.get("cmp_values") or "").strip()
            if not values:
                raise FinetunerError("No values to try.", "Type two or more values, separated "
                                     "by commas, for example 1e-4, 3e-4.", code="bad_setting")
            vary = parse_vary(f"{form['cmp_vary']}={values.replace(' ', '')}")
        group_id = self.studio.groups.start_compare(
            ws, config, methods or None, vary, max_minutes=_positive(form.get("cmp_minutes")),
            max_memory_mb=_positive(form.get("cmp_memory")), name=form.get("run_name") or "")
        return self._opened(user, group_id, "Comparison queued: each member is a run in your "
                            "queue, on identical splits. This view follows them live.")

    def curve(self, user: str, form: dict) -> dict:
        """A learning curve of the settings on the Model & method tab."""
        ws, config = self.checked_config(user, form)
        group_id = self.studio.groups.start_curve(ws, config, name=form.get("run_name") or "")
        return self._opened(user, group_id, "Learning curve queued: the same settings on 25%, "
                            "50% and all of the training split, one after another in your "
                            "queue. This view follows them live.")

    def tune(self, user: str, form: dict) -> dict:
        ws, config = self.checked_config(user, form)
        trials = int(_num(form.get("tune_trials"), float, 10) or 10)
        group_id = self.studio.groups.start_search(
            ws, config, trials=trials, minutes=_positive(form.get("tune_minutes")),
            pruner=form.get("tune_pruner") or "median", seed=int(config.training.seed),
            name=form.get("run_name") or "")
        return self._opened(user, group_id, f"Search started: up to {trials} trials, one at a "
                            "time in your queue, scored on validation only.")

    def groups_list(self, user: str, form: dict) -> dict:
        ws = self.studio.workspace(user)
        return {"group_pick": gr.update(choices=self._groups(ws, self.studio.groups))}

    def group_view(self, user: str, form: dict) -> dict:
        group_id = form.get("group_pick")
        if not group_id:
            return {"group_status": render.message("Pick a comparison or a search, or start "
                                                   "one from the Model & method tab.", "info")}
        ws = self.studio.workspace(user)
        return self._render(self.studio.groups.view(ws, group_id), ws)

    def _render(self, view: dict, ws=None) -> dict:
        status = (view.get("meta") or {}).get("status")
        live = status in ("running", "stopping")
        can_continue = view["kind"] == "search" and status in ("stopped", "finished")
        if view["kind"] == "search":
            table, chart = render_groups.search_frame(view), render_groups.search_chart(view)
            summary = render_groups.search_html(view)
        elif view["kind"] == "curve":
            table, chart = render_groups.compare_frame(view), render_groups.curve_chart(view)
            summary = render_groups.curve_html(view)
        else:
            table, chart = render_groups.compare_frame(view), render_groups.compare_chart(view)
            summary = render_groups.compare_html(view)
        ended = {} if live else {"group_msg": ""}  # "queued…" is stale once it has ended
        return {**ended, "group_seen": _key(view),
                "group_status": render_groups.status_line(view),
                "group_summary": summary, "group_table": table, "group_plot": chart,
                "group_stop": gr.update(interactive=live),
                "group_continue": gr.update(visible=can_continue),
                "group_more": gr.update(visible=can_continue),
                # the list's labels carry each group's status: kept current
                "group_pick": gr.skip() if ws is None else gr.update(
                    choices=self._groups(ws, self.studio.groups))}

    def group_tick(self, user: str, form: dict) -> dict:
        """Redrawn while the group runs, and only when something changed."""
        group_id = form.get("group_pick")
        seen = form.get("group_seen") or {}
        if seen.get("side"):  # runs put side by side are shown until a group is picked
            return {}
        if not group_id or (seen.get("id") == group_id and not seen.get("live")):
            return {}
        ws = self.studio.workspace(user)
        try:
            view = self.studio.groups.view(ws, group_id)
        except FinetunerError:
            return {}
        if _key(view) == seen:
            return {}
        return self._render(view, ws)

    def group_stop(self, user: str, form: dict) -> dict:
        text = self.studio.groups.stop(self.studio.workspace(user), form.get("group_pick"))
        return {**self.group_view(user, form), "group_msg": render.message(text, "info")}

    def group_continue(self, user: str, form: dict) -> dict:
        more = int(_num(form.get("group_more"), float, 0) or 0)
        text = self.studio.groups.resume(self.studio.workspace(user), form.get("group_pick"),
                                         more_trials=more)
        return {**self.group_view(user, form), "group_msg": render.message(text, "ok")}

    def group_delete(self, user: str, form: dict) -> dict:
        ws = self.studio.workspace(user)
        text = self.studio.groups.delete(ws, form.get("group_pick"))
        return {"group_pick": gr.update(choices=self._groups(ws, self.studio.groups),
                                        value=None),
                "group_msg": render.message(text, "ok"), "group_seen": None,
                "group_status": "", "group_summary": "", "group_table": None,
                "group_plot": ""}

    def side_by_side(self, user: str, form: dict) -> dict:
        view = self.studio.groups.side_by_side(self.studio.workspace(user),
                                               list(form.get("runs_select") or []))
        out = self._render(view)
        out.update(group_pick=gr.update(value=None), tabs=gr.update(selected="groups"),
                   group_msg=render.message(
                       f"{len(view['summary']['members'])} of your runs side by side, chosen "
                       "on validation.", "ok"),
                   # no group is open now: the timer must not draw the last one back over it
                   group_seen={"side": True})
        return out


def _key(view: dict) -> dict:
    """What changes while a group runs: member states and evaluation counts."""
    meta = view.get("meta") or {}
    s = view["summary"]
    rows = s.get("members") or s.get("trials") or []
    return {"id": view.get("id") or meta.get("id"), "live": meta.get("status") in (
        "running", "stopping"), "status": meta.get("status"),
        "rows": [(r.get("status") or r.get("state"), len(r.get("curve") or []),
                  r.get("value") if "value" in r else r.get("validation"),
                  r.get("last_reported"))
                 for r in rows], "final": str(s.get("final"))}


def wire(w: Wiring) -> None:
    """The Compare & tune tab's events: start a comparison, a search or a learning curve;
    follow, stop, continue or delete one."""
    C, bind = w.C, w.bind
    group_out = GROUP_OUT
    group_in = ["group_pick", "group_seen"]
    started = [*group_out, "group_pick", "tabs", "group_msg", "run_name"]
    bind(C["compare_btn"].click, "compare", [*FORM, "run_name", "cmp_methods", "cmp_vary",
                                             "cmp_values", "cmp_minutes", "cmp_memory"],
         started, "cmp_msg", concurrency_limit=1)
    bind(C["tune_btn"].click, "tune", [*FORM, "run_name", "tune_trials", "tune_minutes",
                                       "tune_pruner"], started, "cmp_msg",
         concurrency_limit=1)
    bind(C["curve_btn"].click, "curve", [*FORM, "run_name"], started, "cmp_msg",
         concurrency_limit=1)
    bind(C["group_pick"].input, "group_view", group_in, group_out, "group_msg")
    dep = bind(C["group_refresh"].click, "groups_list", [], ["group_pick"], "group_msg")
    bind(dep.then, "group_view", group_in, group_out, "group_msg", api_name=False)
    bind(C["group_timer"].tick, "group_tick", group_in, group_out, "group_msg",
         api_name=False, show_progress="hidden", queue=False)
    bind(C["group_stop"].click, "group_stop", group_in, group_out, "group_msg")
    bind(C["group_continue"].click, "group_continue", [*group_in, "group_more"], group_out,
         "group_msg")
    bind(C["group_delete"].click, "group_delete", group_in,
         [*group_out, "group_pick"], "group_msg")
