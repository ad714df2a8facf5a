"""Admin tab: every job on the server, for administrators only."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from finetuner.english import plural
from finetuner.ui import render
from finetuner.ui.wiring import Wiring


class AdminTab:
    """Admin tab handlers."""

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
                "admin_msg": render.message(f"{plural(len(rows), 'job')} running or waiting.",
                                            "info")}

    def admin_cancel(self, user: str, form: dict) -> dict:
        text = self.studio.admin_cancel(user, form.get("admin_pick"))
        out = self.admin_view(user, form)
        out["admin_msg"] = render.message(text, "ok")
        return out


def wire(w: Wiring) -> None:
    """The Admin tab's events: every job, and cancelling one."""
    C, bind = w.C, w.bind
    admin_out = ["admin_table", "admin_pick"]
    bind(C["admin_refresh"].click, "admin_view", [], admin_out, "admin_msg")
    bind(C["admin_cancel_btn"].click, "admin_cancel", ["admin_pick"], admin_out, "admin_msg")
