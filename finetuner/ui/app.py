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

from ..config import DEFAULT_LEARNING_RATE, PRECISIONS, RunConfig
from ..errors import FinetunerError
from ..studio import Studio
from . import render
from .auth import username
from .forms import EXAMPLES, FORM_FIELDS, METHOD_CHOICES, MODEL_CHOICES, NONE
from .handlers import Handlers
from .tasks import TASK_CHOICES, TASK_INFO

log = logging.getLogger("finetuner.ui")
DATA_TYPES = [".csv", ".tsv", ".tab", ".txt", ".json", ".jsonl", ".ndjson", ".parquet",
              ".conll", ".iob", ".bio"]
CSS = """
.ft-msg code, .ft-report code {font-size: .95em}
table.ft-methods {border-collapse: collapse; width: 100%}
table.ft-methods td, table.ft-methods th {border-bottom: 1px solid #ddd; padding: 6px;
  text-align: left; vertical-align: top}
.ft-confusion th, .ft-confusion td {border: 1px solid #ccc}
"""
INTRO = """# Fine-tuning studio
Teach a pretrained language model your own labels, without writing code. Work through the tabs
from left to right: **1 Data** (upload and check), **2 Model & method**, **3 Train** (watch it
learn), **4 Results** (honest test scores and a verdict), **5 Try it**. Training runs in a
separate process, so you can close this page and come back."""


# outputs that are text for people (messages, the log, progress), scrubbed of server paths;
# file outputs carry paths on purpose and are never rewritten
TEXT_OUTPUTS = {"data_msg", "model_msg", "train_msg", "results_msg", "hub_msg", "try_msg",
                "runs_msg", "admin_msg", "log", "progress", "method_info", "advice", "cli"}
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
        gr.Markdown(INTRO)
        with add("tabs", gr.Tabs(selected="data")):
            with gr.Tab("1 · Data", id="data"):
                _data_tab(add)
            with gr.Tab("2 · Model & method", id="model"):
                _model_tab(add)
            with gr.Tab("3 · Train", id="train"):
                _train_tab(add)
            with gr.Tab("4 · Results", id="results"):
                _results_tab(add)
            with gr.Tab("5 · Try it", id="try"):
                _try_tab(add)
            with gr.Tab("Your runs", id="runs"):
                _runs_tab(add)
            with add("admin_tab", gr.Tab("Admin: all jobs", id="admin", visible=False)):
                _admin_tab(add)
        _wire(w, demo)
    return demo


def _data_tab(add) -> None:
    add("task", gr.Radio(TASK_CHOICES, value="classification", label="Task", info=TASK_INFO))
    with gr.Row():
        with gr.Column(scale=3):
            add("train_file", gr.File(label="Training data file", file_types=DATA_TYPES))
        with gr.Column(scale=2):
            add("example", gr.Dropdown(list(EXAMPLES), label="Or start from an example",
                                       value=None))
            add("example_btn", gr.Button("Load example"))
    with gr.Accordion("Optional: your own validation and test files", open=False):
        gr.Markdown("Without them, 10% of the training file is held out for validation (to "
                    "pick the best checkpoint) and 10% for the final test, keeping the label "
                    "mix. The test part is never used to make any choice.")
        with gr.Row():
            add("val_file", gr.File(label="Validation file (optional)", file_types=DATA_TYPES))
            add("test_file", gr.File(label="Test file (optional)", file_types=DATA_TYPES))
    add("data_msg", gr.HTML(render.message("Upload a training file to begin: CSV, TSV, JSON, "
                                           "JSONL or Parquet, one example per row.", "info")))
    with gr.Row():
        add("text_col", gr.Dropdown([], label="Text column", info="The text to classify."))
        add("pair_col", gr.Dropdown([NONE], value=NONE, label="Second text column (optional)",
                                    info="Only for tasks about a pair of texts."))
        add("label_col", gr.Dropdown([], label="Label column", info="The answer to learn."))
    add("preview", gr.Dataframe(label="Preview: the first rows of the training file",
                                interactive=False, max_height=300, wrap=True))
    with gr.Row():
        with gr.Column(scale=3):
            add("report", gr.HTML(label="Data report"))
        with gr.Column(scale=2):
            add("label_plot", gr.HTML())


D = RunConfig()  # the widgets start at the config's own defaults


def _model_tab(add) -> None:
    add("model_choice", gr.Radio(MODEL_CHOICES, value="default", label="Model"))
    add("model_path", gr.Textbox(label="Model folder or hub id", visible=False,
                                 placeholder="/models/my-bert  or  bert-base-uncased"))
    add("model_zip", gr.File(label="Model zip", file_types=[".zip"], visible=False))
    add("model_own", gr.Dropdown([], label="Your model", visible=False,
                                 info="A model you trained here, or a zip you uploaded before."))
    add("model_msg", gr.HTML(render.message(
        "Model: all-MiniLM-L6-v2 (embedded, 22.7M parameters)", "ok")))
    add("method", gr.Radio(METHOD_CHOICES, value="full", label="Method",
                           info="How much of the model to train: more is usually more accurate "
                                "but slower."))
    add("method_info", gr.HTML())
    with gr.Row():
        add("advice", gr.HTML())
        add("advice_btn", gr.Button("Use the recommended settings", size="sm"))
    with gr.Row():
        add("epochs", gr.Number(value=D.training.epochs, label="Epochs", minimum=0.1, maximum=100,
                                info="Passes over the training data. Early stopping ends "
                                     "sooner if validation stops improving."))
        add("lr", gr.Number(value=DEFAULT_LEARNING_RATE["full"], label="Learning rate",
                            minimum=0, maximum=1, step=0.00001,
                            info="Set to a good default for each method when you pick it."))
        add("batch_size", gr.Number(value=0, precision=0, label="Batch size", minimum=0,
                                    maximum=4096, info="Examples per step; 0 picks 32 on a "
                                                       "CPU and more on a GPU."))
    with gr.Accordion("Advanced settings", open=False):
        with gr.Row():
            add("max_length", gr.Number(value=D.data.max_length, precision=0,
                                        label="Max length (tokens)", minimum=8, maximum=8192,
                                        info="Longer texts are cut or read in windows; see "
                                             "the data report."))
            add("weight_decay", gr.Number(value=D.training.weight_decay, label="Weight decay"))
            add("warmup_ratio", gr.Number(value=D.training.warmup_ratio,
                                          label="Warmup share of steps"))
            add("seed", gr.Number(value=D.training.seed, precision=0, label="Seed"))
        with gr.Row():
            add("evals_per_epoch", gr.Number(value=D.training.evals_per_epoch, precision=0,
                                             label="Evaluations per epoch"))
            add("patience", gr.Number(value=D.training.early_stopping_patience, precision=0,
                                      label="Early stopping patience",
                                      info="Evaluations without improvement; 0 turns it off."))
            add("max_steps", gr.Number(value=0, precision=0, label="Max steps",
                                       minimum=0, info="Stop after this many steps (quick "
                                                       "trials); 0 means no limit."))
            add("precision", gr.Dropdown(list(PRECISIONS), value=D.training.precision,
                                         label="Precision"))
        with gr.Row():
            add("val_split", gr.Number(value=D.data.validation_split, label="Validation share"))
            add("test_split", gr.Number(value=D.data.test_split, label="Test share"))
            add("long_documents", gr.Dropdown(
                [("Auto: windows when 5%+ of texts are longer", "auto"),
                 ("Read every word in windows", "windows"), ("Cut at max length", "truncate")],
                value=D.data.long_documents, label="Texts longer than max length",
                info="Classification, multi-label, regression: windows of a long text are "
                     "read one by one and their scores pooled."))
            add("window_pooling", gr.Dropdown([("Mean of the windows", "mean"),
                                               ("Strongest window (max)", "max")],
                                              value=D.data.window_pooling,
                                              label="Pooling of windows"))
            add("label_separator", gr.Textbox(label="Multi-label separator",
                                              placeholder="detected (; | or ,)", max_lines=1))
        with gr.Row():
            add("lora_r", gr.Number(value=D.method.lora_r, precision=0, label="LoRA rank"))
            add("lora_alpha", gr.Number(value=D.method.lora_alpha, precision=0,
                                        label="LoRA alpha"))
            add("lora_dropout", gr.Number(value=D.method.lora_dropout, label="LoRA dropout"))
            add("lora_targets", gr.Textbox(label="LoRA target modules",
                                           placeholder="empty: chosen for the architecture"))
            add("adapter_only", gr.Checkbox(False, label="Export the LoRA adapter only"))
    add("cli", gr.Code(label="The same run from the command line", language="shell",
                       interactive=False, lines=8, elem_id="cli"))


def _train_tab(add) -> None:
    with gr.Row():
        add("run_name", gr.Textbox(label="Run name (optional)", scale=3))
        add("train_btn", gr.Button("Start training", variant="primary", interactive=False,
                                   scale=1))
        add("stop_btn", gr.Button("Stop training", variant="stop", interactive=False, scale=1))
        add("resume_btn", gr.Button("Resume training", visible=False, scale=1))
    add("train_msg", gr.HTML(render.message("Check your data on the Data tab; the Start "
                                            "button unlocks when it can be used.", "info")))
    add("run_title", gr.Markdown(""))
    add("progress", gr.HTML())
    with gr.Row():
        add("loss_plot", gr.HTML(render.line_chart(None, "Loss (lower is better)")))
        add("metric_plot", gr.HTML(render.line_chart(None, "Score (higher is better)")))
    add("log", gr.Textbox(label="Training log (last lines)", lines=8, max_lines=12,
                          interactive=False))
    add("timer", gr.Timer(1.0))


def _results_tab(add) -> None:
    add("result_run", gr.Dropdown([], label="Run", info="Any of your finished runs."))
    add("results_msg", gr.HTML())
    add("verdict", gr.HTML())
    add("metrics", gr.HTML())
    with gr.Row():
        add("per_class", gr.Dataframe(label="Scores per label (test split)", interactive=False))
        add("confusion", gr.HTML())
    add("errors", gr.Dataframe(label="Test examples the model got wrong (worst first)",
                               interactive=False, max_height=320, wrap=True))
    add("label_issues", gr.Dataframe(
        label="Suspected label errors in the training data (most suspicious first)",
        interactive=False, max_height=320, wrap=True, visible=False))
    add("label_issues_file", gr.DownloadButton("Download suspected label errors (.csv)",
                                               visible=False))
    add("download", gr.DownloadButton("Download model (.zip)", interactive=False))
    add("snippet", gr.Code(label="Load the downloaded model with plain transformers",
                           language="python", interactive=False))
    with gr.Accordion("Publish to the Hugging Face hub (needs internet)", open=False):
        with gr.Row():
            add("hub_repo", gr.Textbox(label="Repository id", placeholder="your-name/model-name"))
            add("hub_token", gr.Textbox(label="Hub write token", type="password",
                                        info="Used for this upload only, never stored."))
            add("hub_private", gr.Checkbox(True, label="Private repository"))
        add("publish_btn", gr.Button("Publish model"))
        add("hub_msg", gr.HTML())


def _try_tab(add) -> None:
    add("try_run", gr.Dropdown([], label="Model to try", info="Any of your finished runs."))
    add("try_text", gr.Textbox(label="Text to classify", lines=3,
                               placeholder="Type a sentence…"))
    add("try_pair", gr.Textbox(label="Second text", lines=2, visible=False))
    add("predict_btn", gr.Button("Predict", variant="primary"))
    add("try_msg", gr.HTML())
    add("try_out", gr.Label(label="Predicted label", num_top_classes=6))
    add("try_spans", gr.HighlightedText(label="Found in the text", visible=False,
                                        combine_adjacent=False, show_legend=True))
    add("try_details", gr.HTML(elem_id="try-details"))
    with gr.Accordion("Predict a whole file", open=False):
        add("batch_file", gr.File(label="File to predict", file_types=DATA_TYPES))
        add("batch_btn", gr.Button("Predict file"))
        add("batch_out", gr.File(label="Predictions (CSV)", interactive=False))


def _runs_tab(add) -> None:
    add("runs_table", gr.Dataframe(label="Your runs", interactive=False, wrap=True))
    with gr.Row():
        add("run_pick", gr.Dropdown([], label="Select a run", scale=3))
        add("refresh_btn", gr.Button("Refresh", scale=1))
        add("open_btn", gr.Button("Open", variant="primary", scale=1))
    with gr.Row():
        add("resume_pick_btn", gr.Button("Resume (interrupted runs)"))
        add("confirm_delete", gr.Checkbox(False, label="Yes, delete it"))
        add("delete_btn", gr.Button("Delete run", variant="stop"))
    add("runs_msg", gr.HTML())


def _admin_tab(add) -> None:
    gr.Markdown("Every user's running and waiting trainings on this server (names, owners, "
                "progress; never their data). Only administrators (FINETUNER_ADMINS) see this.")
    add("admin_table", gr.Dataframe(label="Jobs", interactive=False, wrap=True))
    with gr.Row():
        add("admin_pick", gr.Dropdown([], label="Job", scale=3))
        add("admin_refresh", gr.Button("Refresh", scale=1))
        add("admin_cancel_btn", gr.Button("Cancel this job", variant="stop", scale=1))
    add("admin_msg", gr.HTML())


def _wire(w: Wiring, demo: gr.Blocks) -> None:
    C, bind = w.C, w.bind
    form = list(FORM_FIELDS)
    data_out = ["preview", "text_col", "pair_col", "label_col", "report", "label_plot",
                "data_state"]
    cost_in = [*form, "data_state", "model_state"]
    cost_out = ["method_info", "advice", "advice_state"]

    def unlock(state):
        return gr.update(interactive=state is not None)

    def after_data(dep):
        dep = dep.then(unlock, C["data_state"], C["train_btn"], api_name=False)
        dep = bind(dep.then, "costs", cost_in, cost_out, "method_info", api_name=False)
        bind(dep.then, "preview_config", form, ["cli"], "cli", api_name=False)

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
    for name in ("method", "epochs", "lora_r"):
        bind(C[name].change, "costs", cost_in, cost_out, "method_info",
             api_name=f"costs_{name}")
    bind(C["method"].change, "method_defaults", [*form, "model_state"], ["lr"], "method_info",
         api_name="method_defaults")
    bind(C["advice_btn"].click, "apply_advice", ["advice_state"], ["method", "epochs", "lr"],
         "advice")
    for name in form:
        event = getattr(C[name], "input", None) or C[name].change
        if name not in ("train_file", "task", "model_zip"):
            bind(event, "preview_config", form, ["cli"], "cli",
                 api_name=False, show_progress="hidden")

    start_out = ["current_run", "seen", "tabs", "train_msg", "stop_btn", "train_btn"]
    bind(C["train_btn"].click, "start", [*form, "run_name"], start_out, "train_msg",
         concurrency_limit=1)
    bind(C["stop_btn"].click, "stop", ["current_run"], [], "train_msg")
    bind(C["resume_btn"].click, "resume", ["current_run"],
         ["current_run", "seen", "tabs", "train_msg"], "train_msg")
    try_view = ["try_text", "try_pair", "try_out", "try_spans", "try_details"]
    # new outputs go last: API clients unpack results_view by position
    results_out = ["verdict", "metrics", "per_class", "confusion", "errors", "snippet",
                   "download", "label_issues", "label_issues_file"]
    tick_out = ["seen", "progress", "loss_plot", "metric_plot", "log", "run_title", "stop_btn",
                "resume_btn", "current_run", "runs_table", "run_pick", "result_run", "try_run",
                *results_out, *try_view]
    bind(C["timer"].tick, "tick", ["current_run", "seen"], tick_out, "train_msg",
         api_name=False, show_progress="hidden", queue=False)

    bind(C["result_run"].input, "results_view", ["result_run"], results_out, "results_msg")
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

    runs_out = ["runs_table", "run_pick", "result_run", "try_run"]
    bind(C["refresh_btn"].click, "runs_view", [], runs_out, "runs_msg")
    bind(C["open_btn"].click, "open_run", ["run_pick"],
         [*results_out, "result_run", "try_run", "current_run", "seen", "tabs"], "runs_msg")
    bind(C["resume_pick_btn"].click, "resume", ["run_pick"],
         ["current_run", "seen", "tabs", "train_msg"], "runs_msg", api_name="resume_pick")
    bind(C["delete_btn"].click, "delete_run", ["run_pick", "confirm_delete", "current_run"],
         [*runs_out, "confirm_delete", "current_run"], "runs_msg")
    admin_out = ["admin_table", "admin_pick"]
    bind(C["admin_refresh"].click, "admin_view", [], admin_out, "admin_msg")
    bind(C["admin_cancel_btn"].click, "admin_cancel", ["admin_pick"], admin_out, "admin_msg")
    dep = bind(demo.load, "attach", form,
               [*runs_out, "current_run", "seen", "train_msg", "model_state", "tabs",
                "admin_tab"], "train_msg", api_name="attach")
    bind(dep.then, "costs", cost_in, cost_out, "method_info", api_name=False)
