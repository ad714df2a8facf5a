"""The page: Data → Model & method → Train → Results → Try it, plus the list of runs.

Components are registered by name in `C`; `bind` wires an event to a handler of
`finetuner.ui.handlers.Handlers`, passes the named inputs as a dict, maps the returned names
back to components and turns any exception into an inline message (never a traceback).
"""

from __future__ import annotations

import logging
import warnings

import gradio as gr

from finetuner.server.studio import Studio
from finetuner.ui import (
    layout,
    render,
    tab_admin,
    tab_data,
    tab_groups,
    tab_model,
    tab_results,
    tab_runs,
    tab_train,
    tab_try,
)
from finetuner.ui.forms import COLUMN_FIELDS
from finetuner.ui.handlers import Handlers
from finetuner.ui.wiring import COST_IN, COST_OUT, FORM, RUNS_OUT, Wiring

log = logging.getLogger("finetuner.ui")
CSS = """
.ft-msg code, .ft-report code {font-size: .95em}
table.ft-methods {border-collapse: collapse; width: 100%}
table.ft-methods td, table.ft-methods th {border-bottom: 1px solid #ddd; padding: 6px;
  text-align: left; vertical-align: top}
.ft-confusion th, .ft-confusion td {border: 1px solid #ccc}
/* Tables (gr.Dataframe). Gradio sizes the columns from a hidden one-row "sizing body" laid out
   with white-space: nowrap, so one long text takes the whole width and pushes the other columns
   off to the right, while the headers (word-break: break-word) are squeezed into pieces of
   words. Here the sizing row wraps at spaces (no column needs more than its longest word, at
   most 22em), headers wrap only at spaces, and a long cell shows three lines (click it to read
   all); what still does not fit scrolls inside the table. */
.gradio-container .table-wrap .sizing-body td {white-space: normal}
.gradio-container .table-wrap .sizing-body td .cell-wrap {max-width: 22em;
  word-break: normal; overflow-wrap: normal}
.gradio-container .table-wrap th.header-cell {text-align: left; vertical-align: bottom}
.gradio-container .table-wrap th.header-cell .header-content span.header {white-space: normal;
  word-break: normal; overflow-wrap: normal; hyphens: manual}
.gradio-container .table-wrap .body-cell:not(.cell-solo) .cell-wrap > span.text.wrap {
  display: -webkit-box; -webkit-box-orient: vertical; -webkit-line-clamp: 3; overflow: hidden}
.gradio-container .table-wrap .virtual-table-viewport {scrollbar-width: auto}
/* Your runs: a run's name (a comparison member's ends with its method, "... · full") gets
   room for its words rather than the width of its longest one (three clipped lines of
   "compare head-only vs LoRA vs..." told the members apart only by another column) */
#runs-table .table-wrap .sizing-body td:first-child .cell-wrap {min-width: 12em}
#runs-table .table-wrap td.body-cell:first-child .cell-wrap > span.text.wrap {
  -webkit-line-clamp: 4}
/* Code boxes: the line numbers in the code's own font (they inherited another monospace,
   whose taller lines drifted from the code's wherever the page's font is not installed) */
.gradio-container .cm-editor .cm-gutters {font-family: var(--font-mono)}
"""
INTRO = """# Fine-tuning studio
Teach a pretrained language model your own labels, without writing code. Work through the tabs
from left to right: **1 Data** (upload and check), **2 Model & method**, **3 Train** (watch it
learn), **4 Results** (honest test scores and a verdict), **5 Try it**. Training runs in a
separate process, so you can close this page and come back."""


ANONYMOUS_BANNER = (
    "No sign-in on this server: everyone who reaches this server shares one workspace, and "
    "can see, use and delete every upload, run and model in it. The administrator can give each "
    "person their own with FINETUNER_AUTH.")


def build_app(studio: Studio, auth_mode: str = "none",
              shared_anonymous: bool = False) -> gr.Blocks:
    """auth_mode: none (one local user), password (FINETUNER_AUTH) or oauth (Spaces).
    shared_anonymous: no sign-in on an address others can reach; a banner says so."""
    w = Wiring(Handlers(studio, auth_mode), auth_mode)
    add = w.add
    # gradio counts the injected request as an input and warns about the count; it is fine
    warnings.filterwarnings("ignore", message="Expected (at least )?\\d+ arguments")
    # uploads leave gradio's cache after FINETUNER_UPLOAD_TTL_S, and all of them at shutdown
    # (a run copies its data; the registry of who uploaded what does not outlive the process)
    with gr.Blocks(title="Fine-tuning studio", analytics_enabled=False,
                   delete_cache=studio.files.cache_policy()) as demo:
        if shared_anonymous:
            gr.HTML(render.message(ANONYMOUS_BANNER, "warning"), elem_id="ft-anonymous")
        if auth_mode == "oauth":
            gr.LoginButton()
        add("current_run", gr.State(None))
        add("seen", gr.State(None))
        add("data_state", gr.State(None))
        add("model_state", gr.State(None))
        add("advice_state", gr.State(None))
        add("group_seen", gr.State(None))
        add("runs_seen", gr.State(None))
        gr.Markdown(INTRO)
        with add("tabs", gr.Tabs(selected="data")):
            with gr.Tab("1 · Data", id="data"):
                layout.data_tab(add)
            with gr.Tab("2 · Model & method", id="model"):
                layout.model_tab(add)
            with gr.Tab("3 · Train", id="train"):
                layout.train_tab(add)
            with gr.Tab("4 · Results", id="results"):
                layout.results_tab(add)
            with gr.Tab("5 · Try it", id="try"):
                layout.try_tab(add)
            with gr.Tab("Your runs", id="runs"):
                layout.runs_tab(add)
            with gr.Tab("Compare & tune", id="groups"):
                layout.groups_tab(add)
            with add("admin_tab", gr.Tab("Admin: all jobs", id="admin", visible=False)):
                layout.admin_tab(add)
        _wire(w, demo)
    demo.ft_components = dict(w.C)  # every widget by its name (for tests and embedding)
    return demo


def _wire(w: Wiring, demo: gr.Blocks) -> None:
    """Every event of the page, tab by tab, and the page load (re-attach to a running job)."""
    for tab in (tab_data, tab_model, tab_train, tab_results, tab_try, tab_runs, tab_groups,
                tab_admin):
        tab.wire(w)
    dep = w.bind(demo.load, "attach", FORM,
                 [*RUNS_OUT, "current_run", "seen", "train_msg", "model_state", "tabs",
                  "admin_tab", "group_pick"], "train_msg", api_name="attach")
    # its own step: its inputs are read when `attach` has answered (and, by Gradio, once an
    # upload in flight has landed), so a file uploaded while the page loaded is kept
    dep = w.bind(dep.then, "restore_data", FORM,
                 ["train_file", "val_file", "test_file", "task", "max_length", *COLUMN_FIELDS,
                  "method", "epochs", "lr", "max_steps", "batch_size",
                  "lora_r", "onnx"], "train_msg", api_name=False)
    w.bind(dep.then, "costs", COST_IN, COST_OUT, "method_info", api_name=False)
