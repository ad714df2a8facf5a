"""The page: Data → Model & method → Train → Results → Try it, plus the list of runs.

Components are registered by name in `C`; `bind` wires an event to a handler of
`finetuner.ui.handlers.Handlers`, passes the named inputs as a dict, maps the returned names
back to components and turns any exception into an inline message (never a traceback).
"""

from __future__ import annotations

import inspect
import logging
import traceback
import warnings

import gradio as gr

from ..errors import FinetunerError
from ..studio import Studio
from . import layout, render
from .auth import username
from .forms import FORM_FIELDS
from .handlers import Handlers
from .tab_groups import GROUP_OUT

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
"""
INTRO = """# Fine-tuning studio
Teach a pretrained language model your own labels, without writing code. Work through the tabs
from left to right: **1 Data** (upload and check), **2 Model & method**, **3 Train** (watch it
learn), **4 Results** (honest test scores and a verdict), **5 Try it**. Training runs in a
separate process, so you can close this page and come back."""


# outputs that are text for people (messages, the log, progress), scrubbed of server paths;
# file outputs carry paths on purpose and are never rewritten
TEXT_OUTPUTS = {"data_msg", "model_msg", "train_msg", "results_msg", "hub_msg", "try_msg",
                "runs_msg", "admin_msg", "group_msg", "cmp_msg", "group_status", "group_summary",
                "log", "progress", "method_info", "advice", "cli"}
ANONYMOUS_BANNER = (
    "No sign-in on this server: everyone who reaches this server shares one workspace, and "
    "can see, use and delete every upload, run and model in it. The administrator can give each "
    "person their own with FINETUNER_AUTH.")


class Wiring:
    def __init__(self, handlers: Handlers, auth_mode: str = "none") -> None:
        self.handlers = handlers
        self.auth_mode = auth_mode
        self.C: dict[str, gr.components.Component] = {}

    def add(self, name: str, component):
        self.C[name] = component
        return component

    def scrub(self, words: str) -> str:
        """No server path in a message: the studio's home, the upload cache and the Python
        installation are cut out of any text that reaches a user (a last line of defence;
        the messages themselves name files by their own names)."""
        import re
        import site
        import sys
        import tempfile

        roots = {str(self.handlers.studio.home), str(self.handlers.studio.home.resolve()),
                 tempfile.gettempdir(), sys.prefix, *site.getsitepackages()}
        for root in sorted((r for r in roots if r and len(r) > 1), key=len, reverse=True):
            words = re.sub(re.escape(root) + r"[^\s'\"<>]*", "…", words)
        return words

    def bind(self, event, handler: str, inputs: list[str], outputs: list[str], message: str,
             **kwargs):
        """Wire `event` to Handlers.<handler>; errors go to the `message` component."""
        fn = getattr(self.handlers, handler)
        outputs = list(dict.fromkeys([*outputs, message]))
        C = self.C

        def updates(*args, **kw):
            """The handler's result dicts, mapped to components: one for a plain handler, one
            per yield for a generator (a long job's progress); errors become a message."""
            form = dict(zip(inputs, args))
            request = args[len(inputs)] if len(args) > len(inputs) else kw.get("request")
            token = str(form.get("hub_token") or "")

            def hide(words: str) -> str:  # a hub token is never shown back, nor logged
                words = words.replace(token, "***") if len(token) >= 4 else words
                return self.scrub(words)

            def mapped(result: dict):
                if "hub_token" in outputs:  # cleared on every path, errors included
                    result = {**result, "hub_token": ""}
                update = {C[k]: hide(v) if isinstance(v, str) and k in TEXT_OUTPUTS else v
                          for k, v in result.items() if k in outputs}
                return update or tuple(gr.skip() for _ in outputs)

            out = None
            try:
                out = fn(username(request, self.auth_mode), form)
                for result in (out if inspect.isgenerator(out) else (out,)):
                    yield mapped(result)
            except FinetunerError as exc:
                yield mapped({message: render.message(hide(exc.text), "error")})
            except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
                log.error("handler %s failed:\n%s", handler, hide(traceback.format_exc()))
                yield mapped({message: render.message(hide(
                    f"Something went wrong ({type(exc).__name__}: {exc}). The server is fine; "
                    "try again, and report this if it repeats."), "error")})
            finally:
                if inspect.isgenerator(out):
                    out.close()  # the page went away: the handler's cleanup runs now

        if inspect.isgeneratorfunction(fn):
            def run(*args, **kw):
                yield from updates(*args, **kw)
        else:
            def run(*args, **kw):
                return list(updates(*args, **kw))[-1]

        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in inputs]
        # no default: gradio injects gr.Request only into parameters without one
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        annotation=gr.Request))
        run.__signature__ = inspect.Signature(params)
        run.__annotations__ = {"request": gr.Request}  # gradio reads type hints from here
        run.__name__ = handler
        return event(run, inputs=[C[n] for n in inputs], outputs=[C[n] for n in outputs],
                     api_name=kwargs.pop("api_name", handler), **kwargs)


def build_app(studio: Studio, auth_mode: str = "none",
              shared_anonymous: bool = False) -> gr.Blocks:
    """auth_mode: none (one local user), password (FINETUNER_AUTH) or oauth (Spaces).
    shared_anonymous: no sign-in on an address others can reach; a banner says so."""
    w = Wiring(Handlers(studio, auth_mode), auth_mode)
    add = w.add
    # gradio counts the injected request as an input and warns about the count; it is fine
    warnings.filterwarnings("ignore", message="Expected (at least )?\\d+ arguments")
    with gr.Blocks(title="Fine-tuning studio", analytics_enabled=False) as demo:
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
    return demo


FORM = list(FORM_FIELDS)
COST_IN = [*FORM, "data_state", "model_state"]
COST_OUT = ["method_info", "advice", "advice_state", "train_plan"]
RUNS_OUT = ["runs_table", "run_pick", "result_run", "try_run", "runs_select"]
TRY_VIEW = ["try_text", "try_pair", "try_out", "try_spans", "try_details"]
# new outputs go last: API clients unpack results_view by position
RESULTS_OUT = ["verdict", "metrics", "per_class", "confusion", "errors", "snippet", "download",
               "label_issues", "label_issues_file", "onnx_btn", "results_timer"]


def _wire(w: Wiring, demo: gr.Blocks) -> None:
    """Every event of the page, tab by tab, and the page load (re-attach to a running job)."""
    _wire_data_and_model(w)
    _wire_train_results_try(w)
    _wire_runs_and_admin(w)
    dep = w.bind(demo.load, "attach", FORM,
                 [*RUNS_OUT, "current_run", "seen", "train_msg", "model_state", "tabs",
                  "admin_tab", "group_pick"], "train_msg", api_name="attach")
    # its own step: its inputs are read when `attach` has answered (and, by Gradio, once an
    # upload in flight has landed), so a file uploaded while the page loaded is kept
    dep = w.bind(dep.then, "restore_data", FORM,
                 ["train_file", "val_file", "test_file", "task", "max_length", "text_col",
                  "pair_col", "label_col", "method", "epochs", "lr", "max_steps", "batch_size",
                  "lora_r", "onnx"], "train_msg", api_name=False)
    w.bind(dep.then, "costs", COST_IN, COST_OUT, "method_info", api_name=False)


def _wire_data_and_model(w: Wiring) -> None:
    C, bind = w.C, w.bind
    form, cost_in, cost_out = FORM, COST_IN, COST_OUT
    data_out = ["preview", "text_col", "pair_col", "label_col", "report", "label_plot",
                "data_state"]

    def unlock(state):
        return (gr.update(interactive=state is not None),) * 4

    def after_data(dep):
        dep = dep.then(unlock, C["data_state"], [C["train_btn"], C["compare_btn"],
                                                 C["tune_btn"], C["curve_btn"]],
                       api_name=False)
        dep = bind(dep.then, "costs", cost_in, cost_out, "method_info", api_name=False)
        bind(dep.then, "preview_config", form, ["cli", "train_msg"], "cli", api_name=False)

    column_pickers = ["text_col", "pair_col", "label_col"]
    after_data(bind(C["task"].input, "task_changed", form,
                    ["max_length", *data_out], "data_msg"))
    bind(C["example_btn"].click, "load_example", [*form, "example"],
         ["train_file", "task", "max_length", *column_pickers], "data_msg")
    # a new file can then switch the task (numbers: regression; joined labels: multi-label)
    checked = bind(C["train_file"].change, "data_changed", form, data_out, "data_msg")
    after_data(bind(checked.then, "suggest_task", form, ["task", "max_length", *data_out],
                    "data_msg"))
    for name in ("val_file", "test_file"):
        after_data(bind(C[name].change, "check_data", form, data_out, "data_msg",
                        api_name=f"check_{name}"))
    for name in ("text_col", "pair_col", "label_col", "long_documents", "label_separator"):
        after_data(bind(C[name].input, "check_data", form, data_out, "data_msg",
                        api_name=f"check_{name}"))
    for name in ("model_choice", "model_path", "model_zip", "model_own"):
        dep = bind(C[name].change, "model_changed", form,
                   ["model_path", "model_zip", "model_own", "model_state"], "model_msg",
                   api_name=f"model_{name}")
        bind(dep.then, "costs", cost_in, cost_out, "method_info", api_name=False)
    for name in ("method", "epochs", "lora_r", "lr", "max_steps", "batch_size", "onnx",
                 "adapter_only", "report_to"):  # what the plan beside Start says
        bind(C[name].change, "costs", cost_in, cost_out, "method_info",
             api_name=f"costs_{name}")
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


def _wire_train_results_try(w: Wiring) -> None:
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
    bind(C["timer"].tick, "tick", ["current_run", "seen"], tick_out, "train_msg",
         api_name=False, show_progress="hidden", queue=False)

    bind(C["result_run"].input, "results_view", ["result_run"], results_out, "results_msg")
    bind(C["onnx_btn"].click, "export_onnx", ["result_run"], results_out, "results_msg")
    bind(C["results_timer"].tick, "results_tick", ["result_run"], results_out, "results_msg",
         api_name=False, show_progress="hidden", queue=False)
    bind(C["publish_btn"].click, "publish", ["result_run", "hub_repo", "hub_token",
                                              "hub_private"], ["hub_token"], "hub_msg")
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


def _wire_runs_and_admin(w: Wiring) -> None:
    C, bind = w.C, w.bind
    runs_out, results_out = RUNS_OUT, RESULTS_OUT
    bind(C["refresh_btn"].click, "runs_view", [], runs_out, "runs_msg")
    bind(C["runs_timer"].tick, "runs_tick", ["runs_seen"], [*runs_out, "runs_seen"], "runs_msg",
         api_name=False, show_progress="hidden", queue=False)
    bind(C["open_btn"].click, "open_run", ["run_pick"],
         [*results_out, "result_run", "try_run", "current_run", "seen", "tabs"], "runs_msg")
    bind(C["resume_pick_btn"].click, "resume", ["run_pick"],
         ["current_run", "seen", "tabs", "train_msg"], "runs_msg", api_name="resume_pick")
    bind(C["delete_btn"].click, "delete_run", ["run_pick", "confirm_delete", "current_run"],
         [*runs_out, "confirm_delete", "current_run"], "runs_msg")
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
    bind(C["side_btn"].click, "side_by_side", ["runs_select"],
         [*group_out, "group_pick", "tabs", "group_msg"], "runs_msg")
    admin_out = ["admin_table", "admin_pick"]
    bind(C["admin_refresh"].click, "admin_view", [], admin_out, "admin_msg")
    bind(C["admin_cancel_btn"].click, "admin_cancel", ["admin_pick"], admin_out, "admin_msg")
