"""The app's handlers called directly: data checks, costs, start, tick, results, try it, runs."""

from __future__ import annotations

import html
import re
import time

import pytest
from conftest import EXAMPLES, wait_for, write_csv

from finetuner.server.studio import Studio
from finetuner.ui.forms import FORM_FIELDS, NONE
from finetuner.ui.handlers import Handlers

DEFAULTS = {"task": "classification", "text_pair_column": NONE, "model_choice": "default",
            "method": "full", "epochs": 3, "lr": 1e-4, "batch_size": 0, "max_length": 128,
            "weight_decay": 0.01, "warmup_ratio": 0.06, "evals_per_epoch": 4, "patience": 3,
            "seed": 42, "precision": "auto", "max_steps": 0, "val_split": 0.1,
            "test_split": 0.1, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1,
            "lora_targets": "", "adapter_only": False, "report_to": [],
            "onnx": False}


def text(markup: str) -> str:
    """What a reader sees in an HTML fragment."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup or ""))


def form(**values) -> dict:
    out = {name: None for name in FORM_FIELDS}
    out.update(DEFAULTS)
    out.update(values)
    return out


@pytest.fixture
def handlers(tmp_path):
    studio = Studio(tmp_path / "home")
    yield Handlers(studio)
    studio.jobs.shutdown()


def test_data_upload_detects_columns_and_reports(handlers):
    out = handlers.data_changed("alice", form(train_file=str(EXAMPLES / "sentiment.csv")))
    assert out["text_column"]["value"] == "text" and out["label_column"]["value"] == "label"
    assert out["text_pair_column"]["value"] == NONE
    assert "ready to train" in text(out["data_msg"])
    assert "Rows: train 320, validation 40, test 40" in text(out["report"])
    assert "negative" in out["label_plot"] and "positive" in out["label_plot"]
    assert "aria-label='positive: 175'" in out["label_plot"]
    assert out["data_state"]["n_train"] == 320 and out["data_state"]["labels"] == [
        "negative", "positive"]
    assert len(out["preview"]) == 10


def test_pairs_are_detected(handlers):
    out = handlers.data_changed("alice", form(train_file=str(EXAMPLES / "pairs.csv")))
    assert out["text_pair_column"]["value"] == "hypothesis"
    assert out["data_state"]["pairs"] is True


@pytest.mark.parametrize("content, words", [
    (b"", "is empty"),
    (b"text,label\n", "no data rows"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not a text file"),
])
def test_bad_files_give_an_inline_sentence_and_no_train_state(handlers, tmp_path, content,
                                                              words):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    out = handlers.data_changed("alice", form(train_file=str(path)))
    assert words in text(out["data_msg"]) and "ft-error" in out["data_msg"]
    assert out["data_state"] is None


def test_choosing_a_wrong_label_column_is_explained(handlers, tmp_path):
    rows = [{"text": f"t {i}", "label": "a" if i % 2 else "b", "same": "x"} for i in range(40)]
    path = write_csv(tmp_path / "d.csv", rows)
    out = handlers.check_data("alice", form(train_file=str(path), text_column="text",
                                            label_column="same"))
    assert "Only one label ('x')" in text(out["data_msg"]) and out["data_state"] is None
    assert out["label_column"]["value"] == "same"  # the choice stays visible


def test_costs_and_advice(handlers):
    data = handlers.data_changed("alice", form(train_file=str(EXAMPLES / "sentiment.csv")))
    model = handlers.model_changed("alice", form())
    assert "all-MiniLM-L6-v2" in text(model["model_msg"])
    out = handlers.costs("alice", form(data_state=data["data_state"],
                                       model_state=model["model_state"]))
    assert "22,566,146 of 22,566,146" in text(out["method_info"])
    assert "one pass, the head is fitted on the frozen features" in text(out["method_info"])
    assert "per epoch" in text(out["method_info"])
    assert "Recommended" in text(out["advice"]) and out["advice_state"]["method"] == "full"
    applied = handlers.apply_advice("alice", {"advice_state": out["advice_state"]})
    assert applied == {"method": "full", "epochs": 4, "lr": 1e-4}
    # the form still says 3 epochs: the advice says it is not applied
    assert "Not applied: your settings are used until you press" in text(out["advice"])
    # its method and epochs but another rate: not applied either
    for rate, said in ((1e-4, "Your settings match it."), (3e-5, "Not applied")):
        same = handlers.costs("alice", form(data_state=data["data_state"], epochs=4,
                                            model_state=model["model_state"], lr=rate))
        assert said in text(same["advice"]), rate
    # beside Start: what it would train now
    plan = text(out["train_plan"])
    assert "Start trains: " in plan and "320 training, 40 validation rows" in plan
    assert "all-MiniLM-L6-v2" in plan and "3 epochs, learning rate 0.0001, about" in plan
    # the method table's time for the whole run is the plan's (it said "3 min for 3" epochs
    # beside "about 6 min" for the floor of steps)
    whole = re.search(r"about ([\d.]+ (?:s|min|h))", plan).group(1)
    assert f"per epoch; this run about {whole} (at least 100 steps" in text(out["method_info"])
    # 320 rows at batch 32 are 30 steps in 3 epochs: the run trains the floor of 100
    assert ("at least 100 steps on this small data; early stopping may end it after 3 "
            "epochs)" in plan)
    # early stopping turned off: the plan does not promise it, and half an epoch is still
    # at least one before early stopping may end a run
    off = text(handlers.costs("alice", form(data_state=data["data_state"], patience=0,
                                            model_state=model["model_state"]))["train_plan"])
    assert "(at least 100 steps on this small data; early stopping off)" in off, off
    half = text(handlers.costs("alice", form(data_state=data["data_state"], epochs=0.5,
                                             model_state=model["model_state"]))["train_plan"])
    assert "early stopping may end it after 1 epoch)" in half, half
    # a patience that is not a number (the API takes any value) still gives the page its
    # plan and costs: Start is the one that names the bad value
    bad = handlers.costs("alice", form(data_state=data["data_state"], patience="abc",
                                       model_state=model["model_state"]))
    assert "Start trains: " in text(bad["train_plan"]) and "per epoch" in text(bad["method_info"])
    # the estimate reads the settings Start reads: 100 evaluations an epoch cost time (it
    # assumed 4 whatever the form said; the CLI's plan comes from the same helper). A long run
    # and settings far apart: the plan rounds to minutes (20 against 4 evaluations on 3,200
    # rows came out 7 against 6 min on a slow machine)
    def about(evals: int) -> float:  # 32,000 rows: 1,000 steps an epoch
        words = text(handlers.costs("alice", form(
            data_state={**data["data_state"], "n_train": 32000}, evals_per_epoch=evals,
            model_state=model["model_state"]))["train_plan"])
        n, unit = re.search(r"about ([\d.]+) (s|min|h)\b", words).groups()
        return float(n) * {"s": 1, "min": 60, "h": 3600}[unit]

    assert about(100) > 1.1 * about(4)
    now = handlers.costs("alice", form(data_state=data["data_state"], epochs=4,
                                       model_state=model["model_state"]))
    assert "Your settings match it." in text(now["advice"]) and "4 epochs" in text(
        now["train_plan"])
    # settings that outlive a run (after a comparison, a new upload) are said, not carried
    # silently
    kept = text(handlers.costs("alice", form(
        data_state=data["data_state"], model_state=model["model_state"], method="head",
        onnx=True, max_steps=8, lr=0.02))["train_plan"])
    # head-only is one fit on the frozen features: no epochs, no learning rate
    assert "Head only (frozen encoder): one pass, the new head is fitted on the frozen " \
           "encoder's features, about" in kept, kept
    assert "epoch" not in kept and "learning rate" not in kept
    assert "at least 100 steps" not in kept  # one pass (and Max steps decides anyway)
    assert "Also set: at most 8 steps; ONNX export after training." in kept, kept
    assert "Also set" not in plan
    # settings above the server's caps: the plan says Start will refuse them, not "Start
    # trains" (it read "Ready ... 100 epoch(s)" above "Problem: ... cap of 50")
    capped = text(handlers.costs("alice", form(
        train_file=str(EXAMPLES / "sentiment.csv"), data_state=data["data_state"],
        model_state=model["model_state"], epochs=handlers.studio.limits.max_epochs + 1))[
        "train_plan"])
    assert "Start will refuse these settings" in capped and "FINETUNER_MAX_EPOCHS" in capped
    assert "Start trains" not in capped
    locked = handlers.costs("alice", form(data_state=None, model_state=model["model_state"]))
    assert "Start is locked: upload a training file" in text(locked["train_plan"])


def test_a_setting_out_of_range_is_named_as_on_the_page_before_and_at_start(handlers):
    """200 epochs typed in the box: the plan beside Start says Start will refuse it, and
    Start refuses it, both naming the setting by its label on the page (the page's labels
    reach the handlers as the page is built: see test_browser's run of the same)."""
    from finetuner.errors import FinetunerError
    from finetuner.ui.forms import on_page

    handlers.labels.update({"epochs": "Epochs", "lr": "Learning rate", "batch_size":
                            "Batch size", "max_steps": "Max steps",
                            "warmup_ratio": "Warmup share of steps"})
    data = handlers.data_changed("alice", form(train_file=str(EXAMPLES / "sentiment.csv")))
    model = handlers.model_changed("alice", form())
    for field, value, words in (("epochs", 200, "Epochs is 200. Use between 0.1 and 100."),
                                ("lr", 2, "Learning rate is 2."),
                                ("warmup_ratio", 2, "Warmup share of steps is 2."),
                                # 0 picks the default; a negative number is a typo, not "0"
                                ("lr", -5, "Learning rate is -5."),
                                ("batch_size", -5, "Batch size is -5."),
                                ("max_steps", -5, "Max steps is -5. Use 1 or more, or no "
                                 "limit (leave it out; 0 on the page).")):
        values = form(train_file=str(EXAMPLES / "sentiment.csv"), data_state=data["data_state"],
                      model_state=model["model_state"], **{field: value})
        plan = text(handlers.costs("alice", values)["train_plan"])
        assert f"Start will refuse these settings: {words}" in plan, plan
        with pytest.raises(FinetunerError) as refused:
            handlers.start("alice", values)
        assert on_page(refused.value, handlers.labels).startswith(words)
    assert not handlers.studio.workspace("alice").list_runs()
    # a comparison's or search's budget: a positive finite number, else no limit
    from finetuner.ui.tab_groups import _positive

    assert [_positive(v) for v in (5, 0, -5, float("inf"), float("nan"), None, "")] == [
        5.0, None, None, None, None, None, None]


def test_wrong_model_path_and_offline_hub(handlers, monkeypatch):
    out = handlers.model_changed("alice", form(model_choice="folder", model_path="/no/such"))
    assert "does not exist" in text(out["model_msg"]) and out["model_state"] is None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.time()
    out = handlers.model_changed("alice", form(model_choice="hub", model_path="bert-base-cased"))
    assert "not reachable" in text(out["model_msg"]) and time.time() - t < 5


def test_cli_preview_reproduces_the_form(handlers):
    out = handlers.preview_config("alice", form(train_file=str(EXAMPLES / "sentiment.csv"),
                                                method="lora", epochs=2, lr=0.002))
    assert out["cli"].startswith("python -m finetuner train --data sentiment.csv")
    assert "--method lora --epochs 2 --lr 0.002" in out["cli"]
    assert "method: lora" in out["cli"]
    # trackers ticked in Advanced settings reach the config and the command line
    ticked = form(train_file=str(EXAMPLES / "sentiment.csv"), report_to=["tensorboard",
                                                                         "mlflow"])
    assert handlers.config("alice", ticked).training.report_to == ["tensorboard", "mlflow"]
    assert "--report-to tensorboard,mlflow" in handlers.preview_config("alice", ticked)["cli"]
    switches = form(train_file=str(EXAMPLES / "sentiment.csv"), onnx=True, method="lora",
                    adapter_only=True)
    cli = handlers.preview_config("alice", switches)["cli"]
    assert "--adapter-only --onnx --output runs/my-run" in cli and "onnx: true" in cli
    assert handlers.config("alice", form(train_file=str(EXAMPLES / "sentiment.csv"),
                                         report_to=[])).training.report_to == []


def wait_until_done(handlers, user, run_id, timeout=180):
    state = {"seen": None, "last": {}}

    def finished():
        out = handlers.tick(user, {"current_run": run_id, "seen": state["seen"]})
        if out:
            state["last"] = {**state["last"], **out}
            state["seen"] = out.get("seen", state["seen"])
        seen = state["seen"]
        return seen and seen["status"] in ("completed", "stopped", "failed")
    wait_for(finished, timeout, 0.5, f"run {run_id} to finish")
    return state["last"]


def test_train_results_try_and_delete(handlers, tiny_model, tmp_path):
    user = "alice"
    values = form(train_file=str(EXAMPLES / "sentiment.csv"), model_choice="folder",
                  model_path=str(tiny_model), max_steps=6, lr=3e-3, run_name="first try")
    started = handlers.start(user, values)
    run_id = started["current_run"]
    assert "Started run 'first try'" in text(started["train_msg"])
    with pytest.raises(Exception, match="already running"):
        handlers.start(user, values)
    last = wait_until_done(handlers, user, run_id)
    assert last["seen"]["status"] == "completed"
    assert "step 6 / 6" in last["progress"]
    assert last["run_title"] == "### Your last run: first try"
    # a finished run's line gives the average the Results tab gives, not the last moment's
    average = re.search(r"(\d+) examples/s on average", last["progress"]).group(1)
    assert f"its steps ran at {average} examples/s on average" in text(last["metrics"])
    assert "<svg" in last["loss_plot"] and "<polyline" in last["loss_plot"]
    assert "training loss" in last["loss_plot"] and "validation loss" in last["loss_plot"]
    assert "validation (" in last["metric_plot"] and "training sample" in last["metric_plot"]
    assert "Macro-F1 (higher is better)" in last["metric_plot"]  # the cards' own title
    assert "ft-verdict" in last["verdict"] and "data-metric='accuracy'" in last["metrics"]
    assert list(last["per_class"]["value"]["label"]) == ["negative", "positive"]
    assert "Confusion matrix" in last["confusion"]
    assert last["download"]["value"].endswith("model.zip")
    # suspected label errors: the table and a private copy of the CSV when there are any
    import json

    run_root = handlers.studio.workspace(user).runs_dir / run_id
    info = json.loads((run_root / "results.json").read_text())["label_issues"]
    assert info["checked"] > 0
    issues, csv_file = last["label_issues"], last["label_issues_file"]
    assert issues["visible"] == csv_file["visible"] == bool(info["flagged"])
    if info["flagged"]:
        assert len(issues["value"]) == min(50, info["flagged"])
        assert f"{info['flagged']:,} flagged among {info['checked']:,} training rows" in \
            issues["label"]
        assert "agrees with" in issues["label"]
        assert csv_file["value"].endswith("label_issues.csv")
        assert open(csv_file["value"]).read().startswith("file_row,text,given_label")
        assert not csv_file["value"].startswith(str(run_root))  # a per-user copy

    pred = handlers.predict(user, {"try_run": run_id, "try_text": "I loved it"})
    assert set(pred["try_out"]) == {"negative", "positive"}
    empty = handlers.predict(user, {"try_run": run_id, "try_text": "  "})
    assert "Type a text" in text(empty["try_msg"])
    src = write_csv(tmp_path / "new.csv", [{"text": "great"}, {"text": "awful"}])
    *progress, out = handlers.predict_file(user, {"try_run": run_id, "batch_file": str(src)})
    assert open(out["batch_out"]).read().startswith("text,predicted_label,confidence")
    assert "Predicted 2 rows" in text(out["try_msg"])
    assert all("ft-info" in p["try_msg"] for p in progress)  # a worker process predicted it
    assert list(handlers.studio.workspace(user).root.glob("batch/*/new-predictions.csv"))

    runs = handlers.runs_view(user, {})
    assert runs["runs_table"]["name"].tolist() == ["first try"]
    # plain words: "macro-F1 0.9", a time a person reads, never a code name
    assert runs["runs_table"]["best validation score"][0].startswith("Macro-F1 0."), runs
    assert re.fullmatch(r"\d+ s|\d+ min( \d+ s)?", runs["runs_table"]["train time"][0])
    assert "not running" in text(handlers.stop(user, {"current_run": run_id})["train_msg"])
    kept = handlers.delete_run(user, {"run_pick": run_id, "confirm_delete": False})
    assert "to confirm" in text(kept["runs_msg"])
    gone = handlers.delete_run(user, {"run_pick": run_id, "confirm_delete": True,
                                      "current_run": run_id})
    assert "Deleted" in text(gone["runs_msg"]) and gone["current_run"] is None
    assert handlers.runs_view(user, {})["runs_table"].empty


def test_users_never_see_each_others_runs(handlers, tiny_model):
    values = form(train_file=str(EXAMPLES / "sentiment.csv"), model_choice="folder",
                  model_path=str(tiny_model), max_steps=2)
    run_id = handlers.start("alice", values)["current_run"]
    wait_until_done(handlers, "alice", run_id)
    assert handlers.runs_view("bob", {})["runs_table"].empty
    for call, args in ((handlers.results_view, {"result_run": run_id}),
                       (handlers.predict, {"try_run": run_id, "try_text": "hi"}),
                       (handlers.delete_run, {"run_pick": run_id, "confirm_delete": True}),
                       (handlers.open_run, {"run_pick": run_id})):
        with pytest.raises(Exception, match="No such run"):
            call("bob", args)
    with pytest.raises(Exception, match="No such run"):
        handlers.results_view("bob", {"result_run": "../" + run_id})
    assert handlers.runs_view("alice", {})["runs_table"]["id"].tolist() == [run_id]


def test_task_switch_relabels_columns_and_checks_again(handlers):
    ner = handlers.load_example("alice", form(example="News sentences with names (entities, "
                                                      "CoNLL)"))
    assert ner["task"] == "ner" and ner["max_length"] == 128
    assert ner["text_column"]["label"] == "Tokens column"
    assert ner["text_pair_column"]["visible"] is False
    out = handlers.data_changed("alice", form(task="ner", train_file=ner["train_file"]))
    assert "ready to train" in text(out["data_msg"])
    assert list(out["preview"].columns) == ["sentence", "tags"]
    assert "Entities per type" in out["label_plot"] and "PER" in out["label_plot"]
    assert out["text_column"]["interactive"] is False  # CoNLL has no column names to pick
    qa = handlers.task_changed("alice", form(task="qa", train_file=str(EXAMPLES / "qa.jsonl")))
    assert qa["max_length"] == 384 and qa["text_column"]["label"] == "Question column"
    assert qa["text_pair_column"]["value"] == "context"
    assert qa["label_column"]["value"] == "answer_text"
    assert "ready to train" in text(qa["data_msg"])


def test_multi_label_learns_at_twice_the_rate_unless_told_otherwise(handlers):
    """Multi-label gains from twice full fine-tuning's rate (bench/RESULTS.md): picking the
    task sets the Learning rate box to it, a rate of the user's own stays, leaving the task
    sets it back, and the config's own default (the CLI, a comparison, a search) agrees."""
    clauses = str(EXAMPLES / "clauses.csv")
    assert handlers.task_changed("alice", form(task="multi-label", lr=1e-4))["lr"] == 2e-4
    assert "lr" not in handlers.task_changed("alice", form(task="multi-label", lr=5e-5))
    assert handlers.task_changed("alice", form(task="classification", lr=2e-4))["lr"] == 1e-4
    # LoRA and head-only keep their rates on every task
    lora = form(task="multi-label", method="lora", lr=2e-3)
    assert handlers.task_changed("alice", lora)["lr"] == 2e-3
    assert handlers.method_defaults("alice", {**lora, "method": "full"})["lr"] == 2e-4
    # an upload or an example that switches the task switches the rate with it
    switched = handlers.suggest_task("alice", form(task="classification", lr=1e-4,
                                                   train_file=clauses))
    assert switched["task"] == "multi-label" and switched["lr"] == 2e-4
    example = handlers.load_example("alice", form(example="Contract clauses, any number of "
                                                          "categories (multi-label)"))
    assert example["task"] == "multi-label" and example["lr"] == 2e-4
    from finetuner.config import RunConfig

    assert RunConfig.from_dict({"task": "multi-label"}).learning_rate() == 2e-4
    assert RunConfig.from_dict({"task": "classification"}).learning_rate() == 1e-4
    assert RunConfig.from_dict({"task": "multi-label", "method": {"method": "lora"}}
                               ).learning_rate() == 2e-3
    assert RunConfig.from_dict({"task": "multi-label", "training": {"learning_rate": 3e-5}}
                               ).learning_rate() == 3e-5
    from finetuner.models.estimate import recommend

    assert recommend(1000, 2, 30.0).learning_rate == 1e-4
    # small data: the defaults, which matched or beat LoRA for 8 epochs on 64 and 256 SST-2
    # sentences (the advice had said LoRA "overfits less"; bench/RESULTS.md)
    small = recommend(200, 2, 30.0, full_factor=2.0)
    assert (small.method, small.epochs, small.learning_rate) == ("full", 3, 2e-4)
    assert "overfits less" not in small.reason and "Compare methods" in small.reason
    # at the rate a model of this size defaults to: a base-size model's 5e-5, not MiniLM's
    # 1e-4 (the page said "Your settings match it" while the form held 5e-05)
    assert recommend(200, 2, 30.0, n_params=110_000_000).learning_rate == 5e-5
    assert recommend(1000, 2, 30.0, n_params=110_000_000).learning_rate == 5e-5
    assert recommend(1000, 9, 30.0, full_factor=2.0).learning_rate == 2e-4


@pytest.mark.parametrize("task, data, query, pair", [
    ("ner", "ner.conll", "Maria Lindqvist flew to Dublin.", None),
    ("qa", "qa.jsonl", "When was it founded?", "The town was founded in 1412 by fishermen."),
])
def test_other_tasks_train_and_answer(handlers, tiny_model, task, data, query, pair):
    values = form(task=task, train_file=str(EXAMPLES / data), model_choice="folder",
                  model_path=str(tiny_model), max_steps=3, max_length=None)
    run_id = handlers.start("alice", values)["current_run"]
    last = wait_until_done(handlers, "alice", run_id)
    assert last["seen"]["status"] == "completed"
    assert "data-metric='f1'" in last["metrics"]
    layout = handlers.try_layout("alice", {"try_run": run_id})
    assert layout["try_out"]["visible"] is False and layout["try_spans"]["visible"] is True
    if task == "qa":
        missing = handlers.predict("alice", {"try_run": run_id, "try_text": query})
        assert "Fill in the passage (context) too." in text(missing["try_msg"])
    out = handlers.predict("alice", {"try_run": run_id, "try_text": query, "try_pair": pair})
    assert out["try_spans"]["text"] == (pair or query)
    assert out["try_details"]


def test_method_defaults_follow_the_model_size(handlers, tiny_model, tmp_path):
    from transformers import BertConfig

    small = handlers.method_defaults("alice", form(method="full", model_state={
        "path": str(tiny_model)}))
    assert small["lr"] == 1e-4  # the small-encoder rate measured on SST-2
    big = tmp_path / "base-size"
    config = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                        num_attention_heads=12, intermediate_size=3072)
    config.save_pretrained(big)  # only the config is read: sizes come from the meta device
    assert handlers.method_defaults("alice", form(method="full", model_state={
        "path": str(big)}))["lr"] == 5e-5
    assert handlers.method_defaults("alice", form(method="lora", model_state={
        "path": str(big)}))["lr"] == 1e-3



def test_an_optional_file_that_does_not_fit_a_new_training_file_is_named(handlers):
    """A page can hold a test file out of sight (under Optional: restored with an earlier
    run's data). A new training file with other columns gets its own columns picked, and the
    sentence names the optional file as the problem, with the fix; the section opens."""
    values = form(train_file=str(EXAMPLES / "pairs.csv"),
                  test_file=str(EXAMPLES / "sentiment.csv"))
    out = handlers.data_changed("alice", values)
    message = text(out["data_msg"])
    assert "Column 'premise' is not in 'sentiment.csv'" in message, message
    assert "one of your optional validation/test files" in message
    assert "remove it there" in message and "(premise, hypothesis, label)" in message
    assert out["text_column"]["value"] == "premise"
    assert out["text_pair_column"]["value"] == "hypothesis"
    assert out["label_column"]["value"] == "label"
    assert out["optional_files"]["open"] is True and out["data_state"] is None
    # a training file with a problem of its own is not blamed on the optional file
    broken = handlers.check_data("alice", form(
        train_file=str(EXAMPLES / "pairs.csv"), test_file=str(EXAMPLES / "sentiment.csv"),
        label_column="nope"))
    assert "optional" not in text(broken["data_msg"])


def test_a_new_file_switches_the_task_either_way(handlers):
    """Scores switch classification to regression; re-uploading the reviews switches it back
    (with the columns picked again), instead of leaving a regression check on class labels."""
    ratings = form(train_file=str(EXAMPLES / "ratings.csv"))
    out = handlers.suggest_task("alice", ratings)
    assert out["task"] == "regression" and "Switched the task to" in text(out["data_msg"])
    reviews = form(task="regression", train_file=str(EXAMPLES / "sentiment.csv"))
    out = handlers.suggest_task("alice", reviews)
    assert out["task"] == "classification", out.get("task")
    message = text(out["data_msg"])
    assert "Switched the task to" in message and "one class per row" in message
    assert "ready to train" in message and "distinct value" not in message
    assert out["label_column"]["value"] == "label" and out["text_column"]["value"] == "text"
    clauses = form(task="regression", train_file=str(EXAMPLES / "clauses.csv"))
    assert handlers.suggest_task("alice", clauses)["task"] == "multi-label"
    # a task that fits stays; NER and QA are never switched by a table
    assert handlers.suggest_task("alice", form(task="regression", train_file=str(
        EXAMPLES / "ratings.csv"))) == {}
    assert handlers.suggest_task("alice", form(task="qa", train_file=str(
        EXAMPLES / "sentiment.csv"))) == {}
    # token-per-line entity data uploaded while a table task is picked: switched to NER
    conll = handlers.suggest_task("alice", form(task="regression", train_file=str(
        EXAMPLES / "ner.conll")))
    assert conll["task"] == "ner" and "CoNLL entity data" in text(conll["data_msg"])
    assert "ready to train" in text(conll["data_msg"])


def test_your_runs_follows_new_and_deleted_runs_by_itself(handlers, tiny_model, tmp_path):
    """The runs list redraws on its timer only when a run came, changed state or went."""
    assert handlers.runs_tick("alice", {"runs_seen": None})["runs_table"].empty
    mark = handlers.runs_tick("alice", {"runs_seen": None})["runs_seen"]
    assert handlers.runs_tick("alice", {"runs_seen": mark}) == {}  # nothing changed
    ws = handlers.studio.workspace("alice")
    from finetuner.config import RunConfig

    config = RunConfig.from_dict({"data": {"train_file": str(EXAMPLES / "sentiment.csv")},
                                  "model": {"name_or_path": str(tiny_model)},
                                  "training": {"max_steps": 2, "epochs": 1}})
    run = ws.create(config, "made elsewhere")  # as a comparison member would be
    out = handlers.runs_tick("alice", {"runs_seen": mark})
    assert "made elsewhere" in out["runs_table"]["name"].tolist()
    assert out["runs_seen"] != mark
    mark = out["runs_seen"]
    import shutil

    shutil.rmtree(run.root)
    out = handlers.runs_tick("alice", {"runs_seen": mark})
    assert out["runs_table"].empty
    # bob's list is his own
    assert handlers.runs_tick("bob", {"runs_seen": None})["runs_table"].empty


def test_a_deleted_run_is_let_go_by_every_picker_that_showed_it(handlers, tiny_model):
    """The run on the Results and Try it tabs (and ticked to compare) is deleted, here or on
    another page: the runs tick lets it go in the same update that drops it from the choices.
    The pickers kept it while their choices lost it, and Gradio then refused every later
    event that read them (Predict included) with "Value: ... is not in the list of choices"."""
    values = form(train_file=str(EXAMPLES / "sentiment.csv"), model_choice="folder",
                  model_path=str(tiny_model), max_steps=2)
    ids = []
    for _ in range(2):
        ids.append(handlers.start("alice", values)["current_run"])
        wait_until_done(handlers, "alice", ids[-1])
    gone, kept = ids
    shown = {"run_pick": gone, "result_run": gone, "try_run": gone,
             "runs_select": [gone, kept]}
    mark = handlers.runs_tick("alice", {"runs_seen": None, **shown})["runs_seen"]
    deleted = handlers.delete_run("alice", {"run_pick": gone, "confirm_delete": True,
                                            "current_run": gone})
    assert "Deleted" in text(deleted["runs_msg"]) and deleted["run_pick"]["value"] is None
    # the other pickers are left to the tick, which knows what they show
    assert not {"result_run", "try_run", "runs_select"} & set(deleted)
    out = handlers.runs_tick("alice", {"runs_seen": mark, **shown})
    for key in ("run_pick", "result_run", "try_run"):
        assert out[key]["value"] is None and gone not in {v for _, v in out[key]["choices"]}
    assert out["runs_select"]["value"] == [kept]
    # a picker showing a run that is still there keeps it (no value sent back: unchanged)
    out = handlers.runs_tick("alice", {"runs_seen": None, "result_run": kept, "try_run": kept,
                                       "run_pick": kept, "runs_select": [kept]})
    assert all("value" not in out[key] for key in ("run_pick", "result_run", "try_run",
                                                   "runs_select"))
    # the hidden "Your model" picker, read by every form event, lets a deleted model go too
    for choice in ("default", "mine"):
        own = handlers.model_changed("alice", form(model_choice=choice,
                                                   model_own=f"run:{gone}"))["model_own"]
        assert own["value"] is None and f"run:{gone}" not in {v for _, v in own["choices"]}
    own = handlers.model_changed("alice", form(model_choice="mine", model_own=f"run:{kept}"))
    assert own["model_own"]["value"] == f"run:{kept}" and "Model:" in text(own["model_msg"])


def test_an_example_is_only_ever_one_of_the_listed_files(handlers):
    """The example picker sends a title; a crafted one (a path, a file name, another user's
    upload) is refused with a sentence, never read from disk."""
    for crafted in ("../../etc/passwd", "sentiment.csv", "/etc/hostname", ""):
        with pytest.raises(Exception, match="Pick an example first"):
            handlers.load_example("mallory", form(example=crafted))


def test_a_page_reloaded_during_a_comparison_keeps_the_users_own_settings(handlers,
                                                                          tiny_model):
    """A comparison's member trains with what the comparison varied (head-only, LoRA...):
    the reloaded page gets the comparison's data back but the settings the user started it
    with, so that the next Start trains what they chose, not the member that was running."""
    user = "alice"
    values = form(train_file=str(EXAMPLES / "sentiment.csv"), model_choice="folder",
                  model_path=str(tiny_model), method="full", max_steps=3, epochs=2,
                  cmp_methods=["head", "lora"], cmp_vary="", cmp_values="", cmp_minutes=0,
                  cmp_memory=0)
    handlers.compare(user, values)
    ws = handlers.studio.workspace(user)
    group = wait_for(lambda: handlers.studio.groups.list(ws), 30, what="the comparison")[0]
    handlers.studio.groups.wait(ws, group["id"], timeout=180)
    members = [ws.run(r.id) for r in ws.list_runs()]
    assert len(members) == 2
    for run in members:
        out = handlers._restore_data(user, run, form())
        assert out["train_file"].endswith("sentiment.csv") and out["method"] == "full"
        assert out["max_steps"] == 3 and out["epochs"] == 2 and out["lr"] == values["lr"]
    # a plain run still gets its own settings back
    plain = handlers.start(user, form(train_file=str(EXAMPLES / "sentiment.csv"),
                                      model_choice="folder", model_path=str(tiny_model),
                                      method="lora", max_steps=2))["current_run"]
    wait_until_done(handlers, user, plain)
    assert handlers._restore_data(user, ws.run(plain), form())["method"] == "lora"


def test_a_head_only_run_is_not_said_to_have_steps():
    """Head-only on a mean-pooled body trains in one pass, no optimizer steps: its results
    said "its steps ran at 0 examples/s on average" (seen in a browser walk)."""
    from finetuner.ui.render_results import metrics_html

    base = {"status": "completed", "best_step": 0, "test": {"accuracy": 0.9, "n": 16}}
    one_pass = metrics_html({**base, "timing": {"train_seconds": 3.0, "steps": 0,
                                                "train_samples_per_second": 0.0}})
    assert "one pass, the head fitted on the frozen encoder" in one_pass
    assert "examples/s" not in one_pass
    stepped = metrics_html({**base, "timing": {"train_seconds": 30.0, "steps": 40,
                                               "train_samples_per_second": 42.0}})
    assert "its steps ran at 42 examples/s on average" in stepped
