"""The app through its HTTP API (gradio_client) against a real server on 127.0.0.1."""

from __future__ import annotations

import html
import re

import pytest
from conftest import EXAMPLES, start_app, stop_app, wait_for, write_csv
from gradio_client import Client, handle_file
from test_ui_handlers import DEFAULTS

from finetuner.ui.forms import FORM_FIELDS


def text(markup) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", str(markup or "")))


def form(**values) -> dict:
    out = {name: None for name in FORM_FIELDS}
    out.update(DEFAULTS)
    out.update({"text_column": None, "label_column": None, "model_path": "", "lora_targets": ""})
    out.update(values)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("api") / "home"
    proc, url = start_app(home)
    yield url
    stop_app(proc)


def test_data_check_over_http(server):
    client = Client(server, verbose=False)
    out = client.predict(**form(train_file=handle_file(str(EXAMPLES / "spam.jsonl"))),
                         api_name="/data_changed")
    preview, text_column, text_pair_column, label_column, report, plot, message = out
    assert text_column["value"] == "message" and label_column["value"] == "label"
    assert "imbalanced" in text(report) and "ready to train" in text(message)


def test_bad_upload_over_http(server, tmp_path):
    bad = tmp_path / "empty.csv"
    bad.write_text("")
    client = Client(server, verbose=False)
    out = client.predict(**form(train_file=handle_file(str(bad))), api_name="/data_changed")
    assert "is empty" in text(out[-1])


def test_train_predict_and_download_over_http(server, tiny_model, tmp_path):
    client = Client(server, verbose=False)
    values = form(train_file=handle_file(str(EXAMPLES / "sentiment.csv")),
                  model_choice="folder", model_path=str(tiny_model), max_steps=4)
    message = client.predict(**values, run_name="api run", api_name="/start")
    assert "Started run 'api run'" in text(message)
    again = client.predict(**values, run_name="api run", api_name="/start")
    assert "already running" in text(again)
    def finished():
        table = client.predict(api_name="/runs_view")[0]
        done = table["data"] and table["data"][0][1] in ("completed", "failed", "stopped")
        return table if done else None

    table = wait_for(finished, 120, 1.0, "the run to finish")
    rows, headers = table["data"], table["headers"]
    row = dict(zip(headers, rows[0]))
    assert row["status"] == "completed", row
    run_id = row["id"]
    out = client.predict(result_run=run_id, api_name="/results_view")
    verdict, metrics, per_class, confusion, errors, snippet, download, label_issues, \
        issues_csv, _onnx_button, msg = out  # (the export timer is not in the API)
    issues_csv = (issues_csv or {}).get("value")
    if issues_csv:  # suspected label errors come as a CSV fetched over HTTP, like the model
        assert open(issues_csv).readline().startswith("file_row,text,given_label")
        assert label_issues["value"]["data"]
    assert "Accuracy" in text(metrics) and "ft-verdict" in verdict
    assert 'pipeline("text-classification"' in snippet
    assert download["value"].endswith("model.zip")  # the client fetched the file over HTTP
    import zipfile

    assert "model/config.json" in zipfile.ZipFile(download["value"]).namelist()
    label, *_ = client.predict(try_run=run_id, try_text="What a film!", try_pair="",
                                api_name="/predict")
    assert label["label"] in ("negative", "positive")
    csv_path, msg = client.predict(try_run=run_id,
                                   batch_file=handle_file(str(EXAMPLES / "sentiment.csv")),
                                   api_name="/predict_file")
    assert open(csv_path).readline().startswith("text,label,predicted_label")
    # cells a spreadsheet would run come back as text; numbers stay numbers
    hostile = write_csv(tmp_path / "hostile.csv", [
        {"text": '=HYPERLINK("http://evil.example","click")', "score": -3.5},
        {"text": "+cmd|' /C calc'!A0", "score": 2},
        {"text": "@SUM(A1:A9)", "score": "-7"},
        {"text": "-2+3", "score": "+1e3"},
        {"text": "\tplain", "score": 0}])
    csv_path, msg = client.predict(try_run=run_id, batch_file=handle_file(str(hostile)),
                                   api_name="/predict_file")
    import csv as csvlib

    got = list(csvlib.DictReader(open(csv_path, encoding="utf-8")))
    assert [r["text"] for r in got] == [
        '\'=HYPERLINK("http://evil.example","click")', "'+cmd|' /C calc'!A0", "'@SUM(A1:A9)",
        "'-2+3", "'\tplain"]
    assert [r["score"] for r in got] == ["-3.5", "2", "-7", "+1e3", "0"]
    assert all(r["predicted_label"] in ("negative", "positive") for r in got)
    # a run id that is not one of this session's choices is refused before any handler runs
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(result_run="20260101-000000-0123456789abcdef", api_name="/results_view")
