"""The page's layout, one function per tab: which components it holds, their labels, help
and starting values (the widgets start at `RunConfig`'s own defaults). Each function adds its
components by name through `add`; `app` wires them to the handlers.
"""

from __future__ import annotations

import gradio as gr

from finetuner.config import PRECISIONS, RunConfig
from finetuner.methods import CPU_BATCH_SIZE, DEFAULT_LEARNING_RATE, DEFAULT_METHOD, METHOD_TITLES
from finetuner.server.learning_curve import FRACTIONS
from finetuner.server.search import Budget
from finetuner.tasks import DEFAULT_TASK
from finetuner.tasks.table import LONG_DOCUMENTS_AUTO_SHARE
from finetuner.ui import charts, render
from finetuner.ui.forms import EXAMPLES, METHOD_CHOICES, model_choices
from finetuner.ui.tasks import TASK_CHOICES, TASK_INFO, picker_values, picker_words

# The column pickers' choices change with every file, and every event that reads the form
# reads them: Gradio rejects a value that is not among the choices it last sent, in a red box
# saying "Value: text is not in the list of choices: [...]" and without running the handler,
# so an event sent just before the choices changed (a setting changed as a new file was
# checked, a file's own check right after a page load restored a run's columns) failed. The
# data check names a column the file lacks itself. The pickers of runs, models, comparisons
# and jobs keep Gradio's check as a second lock behind the handlers' own (their choices change
# on that page's own refresh, which also drops a value no longer among them).
RACE_SAFE = {"allow_custom_value": True}
# No number box has a minimum or maximum either: Gradio checks them before any handler runs and
# answers an out-of-range value with "Value 200 is greater than maximum value 100." in a red
# box, naming no setting, on every event that reads the form (the plan beside Start stayed on
# the old value). The settings' own checks (RunConfig, the server's limits) name the setting,
# its range and the fix; a comparison's or search's budget is a positive number or none.

DATA_TYPES = [".csv", ".tsv", ".tab", ".txt", ".json", ".jsonl", ".ndjson", ".parquet",
              ".conll", ".iob", ".bio"]


def data_tab(add) -> None:
    add("task", gr.Radio(TASK_CHOICES, value=DEFAULT_TASK, label="Task", info=TASK_INFO))
    with gr.Row():
        with gr.Column(scale=3):
            add("train_file", gr.File(label="Training data file", file_types=DATA_TYPES))
        with gr.Column(scale=2):
            # without the examples folder (a plain pip install) the picker is not shown
            add("example", gr.Dropdown(list(EXAMPLES), label="Or start from an example",
                                       value=None, visible=bool(EXAMPLES)))
            add("example_btn", gr.Button("Load example", visible=bool(EXAMPLES)))
    with add("optional_files", gr.Accordion("Optional: your own validation and test files",
                                            open=False)):
        gr.Markdown(f"Without them, {D.data.validation_split:.0%} of the training file is "
                    "held out for validation (to pick the best checkpoint) and "
                    f"{D.data.test_split:.0%} for the final test, keeping the label mix. The "
                    "test part is never used to make any choice.")
        with gr.Row():
            add("val_file", gr.File(label="Validation file (optional)", file_types=DATA_TYPES))
            add("test_file", gr.File(label="Test file (optional)", file_types=DATA_TYPES))
    add("data_msg", gr.HTML(render.message("Upload a training file to begin: CSV, TSV, JSON, "
                                           "JSONL or Parquet, one example per row.", "info")))
    with gr.Row():  # one picker per column field of any task, worded for the default task
        words = picker_words(DEFAULT_TASK)
        for field, values in picker_values(DEFAULT_TASK, [], {}).items():
            add(field, gr.Dropdown(**values, **words[field], **RACE_SAFE))
    add("preview", gr.Dataframe(
        render.placeholder("upload a file or load an example to see its first rows"),
        label="Preview: the first rows of the training file", interactive=False,
        max_height=300, wrap=True))
    with gr.Row():
        with gr.Column(scale=3):
            add("report", gr.HTML(label="Data report"))
        with gr.Column(scale=2):
            add("label_plot", gr.HTML())


D = RunConfig()  # the widgets start at the config's own defaults


def model_tab(add) -> None:
    add("model_choice", gr.Radio(model_choices(), value="default", label="Model"))
    add("model_path", gr.Textbox(label="Model folder or hub id", visible=False,
                                 placeholder="/models/my-bert  or  bert-base-uncased"))
    add("model_zip", gr.File(label="Model zip", file_types=[".zip"], visible=False))
    add("model_own", gr.Dropdown([], label="Your model", visible=False,
                                 info="A model you trained here, or a zip you uploaded before."))
    add("model_msg", gr.HTML(render.message(
        "Model: all-MiniLM-L6-v2 (embedded, 22.7M parameters)", "ok")))
    add("method", gr.Radio(METHOD_CHOICES, value=DEFAULT_METHOD, label="Method",
                           info="How much of the model to train: more is usually more accurate "
                                "but slower."))
    add("method_info", gr.HTML())
    with gr.Row():
        add("advice", gr.HTML())
        add("advice_btn", gr.Button("Use the recommended settings", size="sm"))
    with gr.Row():
        add("epochs", gr.Number(value=D.training.epochs, label="Epochs",
                                info="Passes over the training data. Early stopping ends "
                                     "sooner if validation stops improving."))
        add("lr", gr.Number(value=DEFAULT_LEARNING_RATE[DEFAULT_METHOD], label="Learning rate",
                            step=0.00001,
                            info="Set to a good default for each method (and task) when "
                                 "you pick it."))
        add("batch_size", gr.Number(
            value=0, precision=0, label="Batch size",
            info=f"Examples per step; 0 picks {CPU_BATCH_SIZE} on a CPU and more on a GPU."))
    with gr.Accordion("Advanced settings", open=False):
        _advanced(add)
    with gr.Accordion("Not sure? Compare methods, or tune the settings", open=False):
        _groups_form(add)
    add("cli", gr.Code(label="The same run from the command line", language="shell",
                       interactive=False, lines=8, elem_id="cli"))


def _advanced(add) -> None:
    """Advanced settings: lengths and long documents, schedule, splits, LoRA."""
    with gr.Row():
        add("max_length", gr.Number(value=D.data.max_length, precision=0,
                                    label="Max length (tokens)",
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
                                   info="Stop after this many steps (quick "
                                                   "trials); 0 means no limit."))
        add("precision", gr.Dropdown(list(PRECISIONS), value=D.training.precision,
                                     label="Precision"))
    with gr.Row():
        add("val_split", gr.Number(value=D.data.validation_split, label="Validation share"))
        add("test_split", gr.Number(value=D.data.test_split, label="Test share"))
        add("label_separator", gr.Textbox(label="Multi-label separator",
                                          placeholder="detected (; | or ,)", max_lines=1))
    with gr.Row():  # two wide choices in a row of their own (five in one cut their words)
        add("long_documents", gr.Dropdown(
            [(f"Auto: windows when {LONG_DOCUMENTS_AUTO_SHARE:.0%}+ of texts are longer",
              "auto"),
             ("Read every word in windows", "windows"), ("Cut at max length", "truncate")],
            value=D.data.long_documents, label="Texts longer than max length",
            info="Classification, multi-label, regression: windows of a long text are "
                 "read one by one and their scores pooled."))
        add("window_pooling", gr.Dropdown([("Mean of the windows", "mean"),
                                           ("Strongest window (max)", "max")],
                                          value=D.data.window_pooling,
                                          label="Pooling of windows"))
    with gr.Row():
        add("lora_r", gr.Number(value=D.method.lora_r, precision=0, label="LoRA rank"))
        add("lora_alpha", gr.Number(value=D.method.lora_alpha, precision=0,
                                    label="LoRA alpha"))
        add("lora_dropout", gr.Number(value=D.method.lora_dropout, label="LoRA dropout"))
        add("lora_targets", gr.Textbox(label="LoRA target modules",
                                       placeholder="empty: chosen for the architecture"))
        add("adapter_only", gr.Checkbox(False, label="Export the LoRA adapter only"))
    from finetuner.config import TRACKERS
    from finetuner.training.tracking import missing

    absent = set(missing(list(TRACKERS)))
    add("onnx", gr.Checkbox(D.training.onnx, label="Also export ONNX (fp32 and int8)",
                            info="Checked against PyTorch on the validation and test splits; "
                                 "the try-it box and batch prediction then use ONNX Runtime "
                                 "where the check found it faster."))
    add("report_to", gr.CheckboxGroup(
        [(f"{name} (not installed)" if name in absent else name, name) for name in TRACKERS],
        value=[], label="Also report the run to (optional)",
        info="Experiment trackers: the config, curves, final metrics and verdict, written "
             "inside the run's own folder. None ticked: nothing is reported anywhere."))


def _groups_form(add) -> None:
    """Compare methods side by side, or search the settings, on the data and model above."""
    gr.Markdown(
        "**Compare methods** trains each chosen method on identical splits (as runs in your "
        "queue) and names the best by validation score, within an optional budget. **Tune "
        "settings** searches the learning rate, epochs, batch size, warmup, weight decay, "
        "dropout (and LoRA's rank and alpha) for the method above with Optuna, on the "
        "validation split; the chosen settings are trained once more as a normal run, the "
        "only one scored on the test split.")
    from finetuner.ui.tab_groups import VARY_CHOICES

    with gr.Row():
        add("cmp_methods", gr.CheckboxGroup(
            [(METHOD_TITLES[m], m) for m in ("head", "lora", "full")],  # cheapest first
            value=["head", "lora", "full"], label="Methods to compare",
            elem_id="cmp-methods"))
        add("cmp_vary", gr.Dropdown(VARY_CHOICES, value="", label="Also vary",
                                    info="Each method is trained with each value."))
        add("cmp_values", gr.Textbox(label="Values", placeholder="e.g. 1e-4, 3e-4",
                                     max_lines=1))
    with gr.Row():
        add("cmp_minutes", gr.Number(value=0, label="Budget: minutes of training",
                                     info="0: no limit. A member over it cannot "
                                                     "win."))
        add("cmp_memory", gr.Number(value=0, label="Budget: peak memory (MiB)",
                                    info="0: no limit."))
        add("compare_btn", gr.Button("Compare methods", interactive=False))
    with gr.Row():
        add("tune_trials", gr.Number(value=Budget().trials, precision=0, label="Trials"))
        add("tune_minutes", gr.Number(value=0, label="Time budget (minutes)",
                                      info="0: no limit; no new trial starts after it."))
        add("tune_pruner", gr.Dropdown(
            [("Median: stop trials behind the others", "median"),
             ("Successive halving", "halving"), ("Never stop a trial early", "none")],
            value="median", label="Stop weak trials early"))
        add("tune_btn", gr.Button("Tune settings", interactive=False))
    with gr.Row():
        parts = ", ".join(f"{f:.0%}" for f in FRACTIONS[:-1])
        gr.Markdown(f"**What would more data buy?** Trains the settings above on {parts} and "
                    "all of your training split, plots the validation score against the number "
                    "of examples and says what doubling your data would likely gain.")
        add("curve_btn", gr.Button("Draw a learning curve", interactive=False))
    add("cmp_msg", gr.HTML())


def groups_tab(add) -> None:
    gr.Markdown("Comparisons and searches you started, live while they run. Each member and "
                "each trial is also an ordinary run in Your runs.")
    with gr.Row():
        add("group_pick", gr.Dropdown([], label="Comparison or search", scale=3))
        add("group_refresh", gr.Button("Refresh", scale=1))
        add("group_stop", gr.Button("Stop", variant="stop", interactive=False, scale=1))
    with gr.Row():
        add("group_more", gr.Number(value=5, precision=0, label="More trials",
                                    scale=1, visible=False))
        add("group_continue", gr.Button("Continue the search", visible=False, scale=1))
        add("group_delete", gr.Button("Delete (its runs stay)", scale=1))
    add("group_msg", gr.HTML())
    add("group_status", gr.HTML())
    add("group_summary", gr.HTML(elem_id="group-summary"))
    add("group_plot", gr.HTML(elem_id="group-plot"))
    add("group_table", gr.Dataframe(
        render.placeholder("start one on Model & method, under 'Not sure? Compare methods, or tune "
                     "the settings'"),
        label="Side by side", interactive=False, wrap=True, elem_id="group-table"))
    add("group_timer", gr.Timer(2.0))


def train_tab(add) -> None:
    with gr.Row():
        add("run_name", gr.Textbox(label="Run name (optional)", scale=3))
        add("train_btn", gr.Button("Start training", variant="primary", interactive=False,
                                   scale=1))
        add("stop_btn", gr.Button("Stop training", variant="stop", interactive=False, scale=1))
        add("resume_btn", gr.Button("Resume training", visible=False, scale=1))
    # what Start would train, or why it is locked: follows the Data and Model tabs
    add("train_plan", gr.HTML(render.message(
        "Start is locked: upload a training file on the Data tab first.", "info"),
        elem_id="train-plan"))
    add("train_msg", gr.HTML())
    add("run_title", gr.Markdown(""))
    add("progress", gr.HTML())
    with gr.Row():
        add("loss_plot", gr.HTML(charts.line_chart(None, "Loss (lower is better)")))
        add("metric_plot", gr.HTML(charts.line_chart(None, "Score (higher is better)")))
    add("log", gr.Textbox(label="Training log (last lines)", lines=12, max_lines=12,
                          interactive=False))
    add("timer", gr.Timer(1.0))


def results_tab(add) -> None:
    add("result_run", gr.Dropdown([], label="Run", info="Any of your finished runs."))
    add("results_msg", gr.HTML())
    add("verdict", gr.HTML())
    add("metrics", gr.HTML())
    with gr.Row():
        add("per_class", gr.Dataframe(render.placeholder("pick a finished run"),
                                      label="Scores per label (test split)", interactive=False,
                                      wrap=True))
        add("confusion", gr.HTML())
    add("errors", gr.Dataframe(render.placeholder("pick a finished run"),
                               label="Test examples the model got wrong (worst first)",
                               interactive=False, max_height=320, wrap=True))
    add("label_issues", gr.Dataframe(
        label="Suspected label errors in the training data (most suspicious first)",
        interactive=False, max_height=320, wrap=True, visible=False))
    add("label_issues_file", gr.DownloadButton("Download suspected label errors (.csv)",
                                               visible=False))
    with gr.Row():
        add("download", gr.DownloadButton("Download model (.zip)", interactive=False))
        add("onnx_btn", gr.Button(
            "Export to ONNX (fp32 and int8)", visible=False,
            elem_id="onnx-btn"))
    add("results_timer", gr.Timer(2.0, active=False))  # runs only while an export does
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


def try_tab(add) -> None:
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


def runs_tab(add) -> None:
    add("runs_table", gr.Dataframe(render.runs_frame([]), label="Your runs",
                                   interactive=False, wrap=True, elem_id="runs-table"))
    with gr.Row():
        add("run_pick", gr.Dropdown([], label="Select a run", scale=3))
        add("refresh_btn", gr.Button("Refresh", scale=1))
        # the API's runs_view (no inputs: a client has no pickers to send); the page's
        # Refresh sends what its pickers show (tab_runs.wire)
        add("runs_api", gr.Button("Runs", visible=False))
        add("open_btn", gr.Button("Open", variant="primary", scale=1))
    with gr.Row():
        add("resume_pick_btn", gr.Button("Resume (interrupted runs)"))
        add("confirm_delete", gr.Checkbox(False, label="Yes, delete it"))
        add("delete_btn", gr.Button("Delete run", variant="stop"))
    with gr.Row():
        add("runs_select", gr.Dropdown([], multiselect=True, scale=3,
                                       label="Put finished runs of the same data side by side"))
        add("side_btn", gr.Button("Compare selected runs", scale=1))
    add("runs_msg", gr.HTML())
    # the list follows new, finished and deleted runs by itself (comparison members, trials)
    add("runs_timer", gr.Timer(3.0))


def admin_tab(add) -> None:
    gr.Markdown("Every user's running and waiting trainings on this server (names, owners, "
                "progress; never their data). Only administrators (FINETUNER_ADMINS) see this.")
    add("admin_table", gr.Dataframe(label="Jobs", interactive=False, wrap=True))
    with gr.Row():
        add("admin_pick", gr.Dropdown([], label="Job", scale=3))
        add("admin_refresh", gr.Button("Refresh", scale=1))
        add("admin_cancel_btn", gr.Button("Cancel this job", variant="stop", scale=1))
    add("admin_msg", gr.HTML())
