"""ONNX export and ONNX Runtime inference: runs trained by real workers with the onnx setting
(classification, multi-label, regression, NER, QA on the tiny model), the export checked
against PyTorch, predictors on each runtime answering alike, the card's onnxruntime snippet
executed, a later export from the CLI, int8 dropped when it loses too much on validation, a
run whose data changed refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest
from conftest import EXAMPLES, ROOT

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError

pytest.importorskip("onnxruntime")

TASKS = {
    "classification": {"data": {"train_file": str(EXAMPLES / "sentiment.csv"),
                                "max_length": 48}},
    "multi-label": {"data": {"train_file": str(EXAMPLES / "clauses.csv"), "max_length": 48}},
    "regression": {"data": {"train_file": str(EXAMPLES / "ratings.csv"), "max_length": 48}},
    "ner": {"data": {"train_file": str(EXAMPLES / "ner.jsonl"), "max_length": 48}},
    "qa": {"data": {"train_file": str(EXAMPLES / "qa.jsonl"), "max_length": 64,
                    "doc_stride": 24}},
}
CONTEXT = "The tower was finished in 1889. It stands in Paris, on the Champ de Mars."


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    """What auto picks is the CPU's choice (on a GPU machine auto stays with PyTorch)."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model):
    """task -> (task, run, results) of a run trained by a real worker with training.onnx on
    (each trained once, when a test first asks for it)."""
    from finetuner.runs import create_run
    from finetuner.server.jobs import JobManager

    done: dict = {}

    def get(task: str):
        if task not in done:
            cfg = RunConfig.from_dict({
                "task": task, **TASKS[task], "model": {"name_or_path": str(tiny_model)},
                "training": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3,
                             "max_steps": 4, "evals_per_epoch": 1, "onnx": True,
                             "checkpoints": False},
            })
            run = create_run(tmp_path_factory.mktemp(f"onnx-{task}") / "runs", cfg)
            manager = JobManager(warm=True)
            manager.start(run)
            results = manager.wait(run, timeout=300)
            assert results["status"] == "completed", results
            done[task] = (task, run, results)
        return done[task]

    return get


@pytest.fixture(params=list(TASKS))
def exported(request, trained):
    return trained(request.param)


def test_the_run_exports_and_checks_onnx(exported):
    task, run, results = exported
    summary = results["onnx"]
    assert "error" not in summary, summary
    assert (run.model / "onnx" / "model.onnx").stat().st_size > 1e5
    on_disk = json.loads((run.model / "onnx" / "onnx.json").read_text())
    assert on_disk["preferred"] == summary["preferred"] in ("torch", "onnx", "onnx-int8")
    val, test = summary["splits"]["validation"], summary["splits"]["test"]
    assert val["n"] == results["data"]["validation"] and test["n"] == results["data"]["test"]
    # fp32 ONNX decides exactly as PyTorch fp32 on both splits, with the same score
    assert val["onnx"]["agreement"] == 1.0 and test["onnx"]["agreement"] == 1.0
    # (a number's score moves with float noise: the tiny model's scores span a few 1e-4, so
    # a Pearson correlation moved 0.02 points on a difference of 5e-7)
    assert abs(val["onnx"]["difference_points"]) < (0.1 if task == "regression" else 0.01)
    assert val["onnx"]["max_output_difference"] < 1e-3
    assert summary["kept"]["onnx"]["kept"]
    if task == "regression":  # numbers: how far apart the answers are, in the target's units
        assert val["onnx"]["max_answer_difference"] < 1e-3
        assert 0 <= val["onnx-int8"]["max_answer_difference"] < 10
    # int8: kept exactly when its validation score is within 0.5 points of PyTorch's and it
    # gives PyTorch's answer on at least 90% of validation (a QA model in fp32 on a CPU
    # without AVX512 lost 0.17 points but moved more than a tenth of its answer spans)
    int8 = val["onnx-int8"]
    assert summary["kept"]["onnx-int8"]["kept"] == (int8["difference_points"] >= -0.5
                                                    and int8["agreement"] >= 0.9), int8
    assert (run.model / "onnx" / "model_int8.onnx").exists() == \
        summary["kept"]["onnx-int8"]["kept"]
    assert set(summary["latency_ms"]) == {"torch", "onnx", "onnx-int8"}
    meta = json.loads((run.model / "finetuner.json").read_text())
    assert meta["onnx"]["preferred"] == summary["preferred"]
    card = (run.model / "README.md").read_text()
    assert card.count("## ONNX") == 1 and "onnxruntime" in card and "optimum" in card
    names = zipfile.ZipFile(run.root / "model.zip").namelist()
    assert "model/onnx/model.onnx" in names and "model/onnx/tokenizer.json" in names
    assert "model/onnx/config.json" in names
    events = run.events.read_text()
    assert '"state": "onnx"' in events


def _same(a, b, task):
    if task == "multi-label":
        assert a["labels"] == b["labels"]
        for k, v in a["probabilities"].items():
            assert abs(v - b["probabilities"][k]) < 1e-4
    elif task == "classification":
        assert a["label"] == b["label"]
        for k, v in a["probabilities"].items():
            assert abs(v - b["probabilities"][k]) < 1e-4
    elif task == "regression":
        assert abs(a["value"] - b["value"]) < 1e-3
    elif task == "ner":
        assert [(e["type"], e["start"], e["end"]) for e in a["entities"]] == \
            [(e["type"], e["start"], e["end"]) for e in b["entities"]]
        assert a["tags"] == b["tags"]
    else:
        assert (a["answer"], a["start"], a["end"]) == (b["answer"], b["start"], b["end"])
        assert abs(a["probability"] - b["probability"]) < 1e-3


def test_predictors_on_each_runtime_answer_alike(exported, monkeypatch):
    from finetuner.serving.inference import Predictor
    from finetuner.serving.onnxexport import OnnxModel

    task, run, results = exported
    torch_p = Predictor.load(run.root, runtime="torch")
    onnx_p = Predictor.load(run.root, runtime="onnx")
    assert isinstance(onnx_p.model, OnnxModel) and onnx_p.runtime == "onnx"
    assert onnx_p.amp is None
    monkeypatch.setenv("FINETUNER_RUNTIME", "torch")
    assert Predictor.load(run.root).runtime == "torch"
    monkeypatch.setenv("FINETUNER_RUNTIME", "auto")
    assert Predictor.load(run.root).runtime == results["onnx"]["preferred"]
    # whole files: the runtime fastest in batches (measured by the check)
    rates = results["onnx"]["rows_per_second"]
    fastest = max((n for n in rates if n == "torch" or results["onnx"]["kept"][n]["kept"]),
                  key=rates.get)
    assert Predictor.load(run.root, batch=True).runtime == fastest
    if task == "qa":
        inputs = [{"question": q, "context": CONTEXT}
                  for q in ("Where does the tower stand?", "When was it finished?")]
    elif task == "ner":
        inputs = [{"text": t} for t in ("Ann Lee visited Oslo on Monday",
                                        "Bo Chen and Cy Diaz flew to Rome")]
    else:
        inputs = [{"text": t} for t in ("A lovely film.", "It broke after a day.", "fine " * 30,
                                        "Payment is due within thirty days of the invoice.")]
    for a, b in zip(onnx_p.predict_examples(inputs), torch_p.predict_examples(inputs)):
        _same(a, b, task)
    # many rows at once (batched, sorted by length) answer as one at a time does
    many = inputs * 12
    for a, b in zip(onnx_p.predict_examples(many), [p for p in
                                                    onnx_p.predict_examples(inputs)] * 12):
        _same(a, b, task)


def test_card_snippet_runs_with_onnxruntime_alone(exported):
    """The card's onnxruntime code, executed as written, gives PyTorch's logits."""
    import torch

    from finetuner.serving.export import read_meta
    from finetuner.serving.inference import Predictor
    from finetuner.serving.onnxreport import usage

    task, run, _ = exported
    meta = read_meta(run.model)
    code = usage(meta, str(run.model), runtime="onnx")
    scope: dict = {}
    exec(compile(code, "onnx_usage", "exec"), scope)
    enc = scope["enc"]
    model = Predictor.load(run.root, runtime="torch").model
    with torch.inference_mode():
        ref = model(**{k: torch.from_numpy(np.asarray(v, dtype=np.int64))
                       for k, v in enc.items() if k in scope["feeds"]})
    if task == "qa":
        got, want = scope["start_logits"], ref.start_logits.cpu().numpy()
    else:
        got, want = scope["logits"], ref.logits.cpu().numpy()
    # float32 noise between runtimes, times a head fitted to convergence (larger weights than
    # a random head's): a few 1e-4 on logits of size 6
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_later_export_rebuilds_splits_and_drops_int8_that_loses(trained, monkeypatch, tmp_path):
    from finetuner.runs import RunPaths
    from finetuner.serving import onnxexport
    from finetuner.serving.inference import Predictor

    _, run, _ = trained("classification")
    copy = RunPaths(tmp_path / run.id)
    shutil.copytree(run.root, copy.root)
    # int8 that lost more than 0.5 points on validation is not kept, and not offered
    monkeypatch.setattr(onnxexport, "INT8_MAX_DROP", -1000.0)  # every score "drops too much"
    summary = onnxexport.export_run(copy.root)
    assert not summary["kept"]["onnx-int8"]["kept"] and summary["kept"]["onnx"]["kept"] is False
    assert not (copy.model / "onnx" / "model_int8.onnx").exists()
    assert summary["preferred"] == "torch"
    with pytest.raises(FinetunerError, match="not kept"):
        Predictor.load(copy.root, runtime="onnx-int8")
    assert Predictor.load(copy.root).runtime == "torch"  # auto falls back to PyTorch
    results = json.loads(copy.results.read_text())
    assert results["onnx"]["kept"]["onnx-int8"]["kept"] is False
    # the zip is made again before results.json says the export is there (the results page
    # offers whatever zip it finds when it reads results.json)
    assert (copy.root / "model.zip").stat().st_mtime_ns <= copy.results.stat().st_mtime_ns
    assert "model/onnx/onnx.json" in zipfile.ZipFile(copy.root / "model.zip").namelist()
    # the card is rewritten, not appended to
    assert (copy.model / "README.md").read_text().count("## ONNX") == 1


def test_export_from_the_cli_and_a_run_whose_data_changed(trained, tmp_path, capsys):
    from finetuner.__main__ import main

    _, run, _ = trained("classification")
    copy = tmp_path / "copy"
    shutil.copytree(run.root, copy)
    shutil.rmtree(copy / "model" / "onnx")
    proc = subprocess.run([sys.executable, "-m", "finetuner", "export", "--run", str(copy),
                           "--onnx", "--zip", str(tmp_path / "m.zip")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ONNX Runtime fp32: kept; agreement with PyTorch 100.0% validation" in proc.stdout
    assert "Predictor uses" in proc.stdout
    assert "model/onnx/model.onnx" in zipfile.ZipFile(tmp_path / "m.zip").namelist()
    # the same CLI in this process (no second interpreter start)
    capsys.readouterr()
    assert main(["predict", "--run", str(copy), "--runtime", "onnx", "--text",
                 "A lovely film.", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("positive", "negative")
    # the data file changed since training: its splits are no longer the run's own
    data = tmp_path / "reviews.csv"
    lines = (EXAMPLES / "sentiment.csv").read_text().splitlines()
    data.write_text("\n".join(lines[:1] + lines[1:][::-1][:300]) + "\n")
    cfg = json.loads((copy / "config.json").read_text())
    cfg["data"]["train_file"] = str(data)
    (copy / "config.json").write_text(json.dumps(cfg))
    assert main(["export", "--run", str(copy), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert "changed since it trained" in err and "Traceback" not in err
    assert main(["export", "--run", str(copy)]) == 2
    assert "Nothing to export" in capsys.readouterr().err


def test_runtime_choices_fail_clearly(tmp_path):
    from finetuner.serving.runtimes import pick

    meta = {"task": "classification"}
    with pytest.raises(FinetunerError, match="no ONNX export"):
        pick(tmp_path, meta, "onnx")
    with pytest.raises(FinetunerError, match="Unknown runtime"):
        pick(tmp_path, meta, "tensorrt")
    assert pick(tmp_path, meta, "auto") == "torch"
    # an export whose file went missing: auto takes PyTorch, an explicit choice says why
    meta = {"onnx": {"files": {"onnx": "onnx/model.onnx"}, "preferred": "onnx",
                     "kept": {"onnx": {"kept": True}}}}
    assert pick(tmp_path, meta, "auto") == "torch"
    with pytest.raises(FinetunerError, match="not kept"):
        pick(tmp_path, meta, "onnx")
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"x")
    assert pick(tmp_path, meta, None) == "onnx"


def test_the_form_asks_for_it_and_the_results_page_shows_the_check(trained):
    import html
    import re

    from finetuner.ui.forms import settings_from_form
    from finetuner.ui.render_results import metrics_html

    assert settings_from_form({"onnx": True})["training"] == {"onnx": True}
    assert "onnx" not in settings_from_form({"onnx": False})["training"]  # the default
    _, _, results = trained("classification")
    page = html.unescape(re.sub(r"<[^>]+>", " ", metrics_html(results)))
    assert "ONNX Runtime fp32" in page and "100.0% / 100.0%" in page
    assert "The try-it box uses" in page and "test column is reported, not used" in page
    broken = dict(results, onnx={"error": "ONNX export failed (KeyError: x); the PyTorch "
                                          "model is saved and works as usual."})
    assert "the PyTorch model is saved" in html.unescape(metrics_html(broken))


def test_a_failing_export_never_fails_the_run(tmp_path):
    """finishing.onnx_step turns any failure into a warning event and a note in the results."""
    from types import SimpleNamespace

    from finetuner.runs import RunPaths
    from finetuner.training.finishing import onnx_step

    emitted = []
    events = SimpleNamespace(emit=lambda kind, **kw: emitted.append((kind, kw)))
    out = onnx_step(RunPaths(tmp_path), {"validation": [], "test": []}, events, lambda: False)
    assert "ONNX export failed" in out["error"] and "PyTorch model is saved" in out["error"]
    assert emitted[-1][0] == "warning" and emitted[-1][1]["message"] == out["error"]


def test_what_is_kept_never_depends_on_the_test_split():
    """A report that is fine on validation and bad on test keeps int8; the reverse not."""
    from finetuner.serving import onnxexport

    report = {"splits": {"validation": {"onnx-int8": {"difference_points": -0.2,
                                                       "agreement": 0.97}},
                         "test": {"onnx-int8": {"difference_points": -9.0}}}}
    assert onnxexport._kept(report, "onnx-int8")[0]
    report["splits"]["validation"]["onnx-int8"]["difference_points"] = -0.8
    report["splits"]["test"]["onnx-int8"]["difference_points"] = 0.0
    assert not onnxexport._kept(report, "onnx-int8")[0]
    assert not onnxexport._kept({"splits": {"test": {"onnx": {}}}}, "onnx")[0]  # no validation
    # a weak model's score barely moves while a quarter of its answers change: not kept
    weak = {"splits": {"validation": {"onnx-int8": {"difference_points": -0.1,
                                                     "agreement": 0.75}}}}
    assert onnxexport._kept(weak, "onnx-int8") == (
        False, "agrees with PyTorch on only 75.0% of validation")


def test_a_stop_during_the_export_leaves_no_half_made_files(trained, tmp_path):
    from types import SimpleNamespace

    from finetuner.runs import RunPaths
    from finetuner.training.finishing import onnx_step

    _, run, _ = trained("classification")
    copy = RunPaths(tmp_path / "copy")
    shutil.copytree(run.root, copy.root)
    shutil.rmtree(copy.model / "onnx")
    emitted = []
    events = SimpleNamespace(emit=lambda kind, **kw: emitted.append((kind, kw)))
    calls = []

    def stop_on_second_poll():  # after the export itself: during quantising or the check
        calls.append(1)
        return len(calls) >= 2

    out = onnx_step(copy, {"validation": [], "test": []}, events, stop_on_second_poll)
    assert "cut short by a stop" in out["error"]
    assert not (copy.model / "onnx").exists() and not (copy.model / "onnx.part").exists()
    assert emitted[-1][0] == "warning"


def test_the_try_it_cache_picks_up_an_export_that_lands_later(trained, tmp_path):
    """The try-it box loaded the model while its ONNX export was still running: once the
    export is recorded, the next prediction uses the new runtime, not the stale PyTorch one."""
    from finetuner.runs import RunPaths
    from finetuner.server.studio import Studio

    _, run, results = trained("classification")
    copy = RunPaths(tmp_path / "home" / "users" / "alice" / "runs" / run.id)
    shutil.copytree(run.root, copy.root)
    meta_file = copy.model / "finetuner.json"
    exported = meta_file.read_text()
    meta = json.loads(exported)
    meta.pop("onnx")
    meta_file.write_text(json.dumps(meta))  # as it was before the export landed
    studio = Studio(tmp_path / "home")
    try:
        assert studio.predictor(copy).runtime == "torch"
        assert studio.predictor(copy).runtime == "torch"  # cached
        meta_file.write_text(exported)
        import os
        import time

        later = time.time() + 5
        os.utime(meta_file, (later, later))
        assert studio.predictor(copy).runtime == results["onnx"]["preferred"]
    finally:
        studio.jobs.shutdown()


def test_agreement_means_something_for_every_kind_of_answer():
    """A number agrees within 1% of the span of PyTorch's answers, in the target's units (not
    to two decimals, which made a good int8 regression model read '16% the same')."""
    from finetuner.serving.onnxexport import _agree, same_means
    from finetuner.tasks import TASKS

    def _decision(prediction):
        return TASKS["regression"].impl().decision(prediction)

    reference = [0.0, 2.5, 5.0, 10.0]
    close = [0.05, 2.45, 5.09, 9.95]  # all within 0.1 = 1% of the span of 10
    assert _agree(close, reference) == 1.0
    assert _agree([0.5, 2.5, 5.0, 10.0], reference) == 0.75
    assert _decision({"value": 3.14159}) == 3.14159
    assert _agree(["a", "b", "a"], ["a", "b", "b"]) == 2 / 3
    assert "within 1% of the range" in same_means(TASKS["regression"])
    assert same_means(TASKS["classification"]) == "the same label"
    assert same_means(TASKS["multi-label"]) == "the same set of labels"
    assert same_means(TASKS["ner"]).startswith("the same entities")
    assert same_means(TASKS["qa"]) == "the same answer span"


def test_a_finished_run_is_exported_later_from_the_results_tab(trained, tmp_path):
    """A run trained without ONNX: the Results tab offers *Export to ONNX*, which exports in
    its own process while the page polls; a second click is refused, the button goes once the
    check lands, another user cannot export the run, and a failed or cut-short export offers
    the button again with the reason."""
    import html

    from finetuner.runs import RunPaths
    from finetuner.server import export_job
    from finetuner.server.studio import Studio
    from finetuner.ui.handlers import Handlers

    _, run, _ = trained("classification")
    studio = Studio(tmp_path / "home")
    handlers = Handlers(studio)
    copy = RunPaths(studio.workspace("alice").runs_dir / run.id)
    shutil.copytree(run.root, copy.root)
    shutil.rmtree(copy.model / "onnx")
    meta = json.loads((copy.model / "finetuner.json").read_text())
    meta.pop("onnx")
    (copy.model / "finetuner.json").write_text(json.dumps(meta))
    results = json.loads(copy.results.read_text())
    results.pop("onnx")
    copy.results.write_text(json.dumps(results))
    try:
        view = handlers.results_view("alice", {"result_run": run.id})
        assert view["onnx_btn"]["visible"] is True and "ONNX" not in view["metrics"]
        with pytest.raises(FinetunerError, match="No such run"):
            handlers.export_onnx("bob", {"result_run": run.id})
        out = handlers.export_onnx("alice", {"result_run": run.id})
        assert out["results_msg"] == ""  # the export section says it all, and goes on saying
        assert out["onnx_btn"]["visible"] is False and out["results_timer"].active
        assert "being exported to ONNX" in html.unescape(out["metrics"])
        assert "python -m" not in out["metrics"]  # the page speaks in buttons
        with pytest.raises(FinetunerError, match="already running"):
            handlers.export_onnx("alice", {"result_run": run.id})
        # a second run of hers waits: one export at a time per user on a shared server
        twin = run.id[:-1] + ("1" if run.id.endswith("0") else "0")  # another valid run id
        other = RunPaths(studio.workspace("alice").runs_dir / twin)
        shutil.copytree(copy.root, other.root)
        other.results.write_text(json.dumps(results))
        (other.root / export_job.PID).unlink(missing_ok=True)
        with pytest.raises(FinetunerError, match="is still running"):
            handlers.export_onnx("alice", {"result_run": other.id})
        deadline = time.time() + 240
        while not (tick := handlers.results_tick("alice", {"result_run": run.id})):
            assert time.time() < deadline, (copy.root / export_job.LOG).read_text()
            time.sleep(0.5)
        page = html.unescape(tick["metrics"])
        assert "ONNX Runtime fp32" in page and "100.0% / 100.0%" in page, page
        assert tick["onnx_btn"]["visible"] is False and not tick["results_timer"].active
        assert "onnx" in json.loads((copy.model / "finetuner.json").read_text())
        # the export process removes its pid file on its way out, a moment after it wrote
        # the check the page shows (CI: read in between once)
        gone = time.time() + 30
        while (copy.root / export_job.PID).exists() and time.time() < gone:
            time.sleep(0.2)
        assert not (copy.root / export_job.PID).exists()
        with pytest.raises(FinetunerError, match="exported to ONNX already"):
            handlers.export_onnx("alice", {"result_run": run.id})
        # cut short by a server restart: a pending mark and no process; then a failing export
        results = json.loads(copy.results.read_text())
        copy.results.write_text(json.dumps({**results, "onnx": {"pending": True}}))
        assert export_job.state(copy) == "none"
        assert handlers.results_view("alice", {"result_run": run.id})["onnx_btn"]["visible"]
        (copy.model / "model.safetensors").write_bytes(b"not a model")
        assert export_job.main([str(copy.root)]) == 1
        view = handlers.results_view("alice", {"result_run": run.id})
        assert "ONNX export failed" in html.unescape(view["metrics"])
        assert view["onnx_btn"]["visible"] is True
    finally:
        studio.jobs.shutdown()


def test_a_regression_export_is_judged_in_the_targets_units():
    """For numbers the table gives how far ONNX's answers are from PyTorch's in the target's
    units, then the share that counts as the same (it gave only '50.0% agree', which read as
    half the answers being wrong), and no exporter jargon."""
    from finetuner.ui.render_results import onnx_html

    def row(diff, share, points):
        return {"score": 0.58, "agreement": share, "max_answer_difference": diff,
                "difference_points": points}

    info = {"metric": "pearson", "exporter": "torch.onnx, dynamo exporter",
            "max_drop_points": 0.5, "min_agreement": 0.9, "preferred": "onnx",
            "preferred_batch": "onnx", "same_means": "a number within 1% of the range of "
            "PyTorch's answers", "latency_ms": {"torch": 21.4, "onnx": 7.8, "onnx-int8": 5.3},
            "rows_per_second": {"torch": 149, "onnx": 178, "onnx-int8": 164},
            "kept": {"onnx": {"kept": True, "why": ""},
                     "onnx-int8": {"kept": False, "why": "agrees on only 50.0% of validation"}},
            "splits": {s: {"torch": {"score": 0.58}, "onnx": row(0.00021, 1.0, 0.0),
                           "onnx-int8": row(0.19, 0.5, 0.95)} for s in ("validation", "test")}}
    import html
    import re

    def text(markup: str) -> str:
        return html.unescape(re.sub(r"<[^>]+>", " ", markup))

    page = " ".join(text(onnx_html({"onnx": info})).split())
    assert "largest difference from PyTorch's number, in your target's units" in page
    assert "0.00021 / 0.00021 (the same on 100.0% / 100.0%)" in page
    assert "0.19 / 0.19 (the same on 50.0% / 50.0%)" in page
    assert "answers that agree" not in page and "dynamo" not in page
    # a classifier's table keeps the share of answers
    for split in info["splits"].values():
        for name in ("onnx", "onnx-int8"):
            del split[name]["max_answer_difference"]
    assert "answers that agree with PyTorch" in " ".join(text(onnx_html({"onnx": info})).split())
