"""The web process shared fairly: try-it caps, per-user prediction slots, the predictor cache
policy, file predictions in a worker process, generator handlers, sampled token counts."""

from __future__ import annotations

import csv
import json
import os
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import wait_for, write_csv

from finetuner.errors import FinetunerError
from finetuner.server.batch import BatchJobs
from finetuner.server.limits import Limits
from finetuner.server.sharing import PredictionSlots, PredictorCache
from finetuner.server.studio import Studio
from finetuner.ui.handlers import Handlers

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------- settings


def test_limits_read_the_new_settings(monkeypatch, tmp_path):
    values = {"FINETUNER_MAX_TRY_CHARS": "500", "FINETUNER_MAX_QA_WINDOWS": "4",
              "FINETUNER_MAX_PREDICTIONS_PER_USER": "3", "FINETUNER_MAX_BATCH_JOBS": "2",
              "FINETUNER_MAX_PREDICT_ROWS": "1000", "FINETUNER_BATCH_TIMEOUT_SECONDS": "60",
              "FINETUNER_MAX_MODELS_PER_USER": "1", "FINETUNER_PREDICTOR_CACHE": "8"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    limits = Limits.from_env()
    assert (limits.max_try_chars, limits.max_qa_windows, limits.max_predictions_per_user,
            limits.max_batch_jobs, limits.max_predict_rows, limits.batch_timeout_seconds,
            limits.max_models_per_user, limits.predictor_cache) == (500, 4, 3, 2, 1000, 60, 1, 8)
    monkeypatch.setenv("FINETUNER_MAX_TRY_CHARS", "lots")
    with pytest.raises(FinetunerError, match="FINETUNER_MAX_TRY_CHARS='lots' is not a whole"):
        Limits.from_env()
    studio = Studio(tmp_path / "home", limits=Limits(predictor_cache=3, max_models_per_user=1))
    assert studio.predictors.size == 3 and studio.predictors.per_user == 1


# ---------------------------------------------------------------------------------- cache


class Loads:
    """A fake loader that records what it loaded."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.delay = delay

    def __call__(self, key: str):
        self.calls.append(key)
        time.sleep(self.delay)
        if key.startswith("bad"):
            raise FinetunerError("no model", code="no_model")
        return f"model {key}"


def test_a_user_keeps_at_most_their_share_and_evicts_their_own_first():
    cache = PredictorCache(Loads(), size=4, per_user=2)
    for key in ("b1", "c1"):
        cache.get(key[0], key)
    for i in range(10):  # alice tries model after model
        assert cache.get("a", f"a{i}") == f"model a{i}"
    assert cache.holdings() == {"b": ["b1"], "c": ["c1"], "a": ["a8", "a9"]}


def test_when_full_the_biggest_holder_gives_up_their_least_recent():
    loads = Loads()
    cache = PredictorCache(loads, size=4, per_user=2)
    for owner, key in (("b", "b1"), ("b", "b2"), ("c", "c1"), ("a", "a1")):
        cache.get(owner, key)
    cache.get("b", "b1")  # b1 is used again: b2 is now bob's least recent
    cache.get("d", "d1")  # full: bob holds the most, his least recently used goes
    assert cache.holdings() == {"c": ["c1"], "a": ["a1"], "b": ["b1"], "d": ["d1"]}
    cache.get("e", "e1")  # everyone holds one: the one unused for longest goes (c1)
    assert cache.holdings() == {"a": ["a1"], "b": ["b1"], "d": ["d1"], "e": ["e1"]}
    assert loads.calls == ["b1", "b2", "c1", "a1", "d1", "e1"]  # hits load nothing


def test_a_model_loads_once_for_many_callers_and_errors_are_not_cached():
    loads = Loads(delay=0.2)
    cache = PredictorCache(loads, size=4, per_user=2)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("a", "a1")))
               for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == ["model a1"] * 20 and loads.calls == ["a1"]
    for _ in range(2):
        with pytest.raises(FinetunerError, match="no model"):
            cache.get("a", "bad")
    assert loads.calls.count("bad") == 2 and "bad" not in cache
    cache.pop("a1")
    assert len(cache) == 0


def test_studio_caches_per_run_owner_with_an_injected_loader(tmp_path):
    loads = Loads()
    studio = Studio(tmp_path / "home", loader=loads,
                    limits=Limits(predictor_cache=3, max_models_per_user=1))
    from finetuner.runs import RunPaths

    def run(user: str, n: int) -> RunPaths:
        return RunPaths(studio.workspace(user).runs_dir / f"20260101-00000{n}-{n:016x}")

    bob = run("bob", 1)
    studio.predictor(bob)
    for n in range(5):
        studio.predictor(run("alice", n))
    assert str(bob.root) in studio.predictors and len(studio.predictors) == 2
    assert studio.predictor(bob) == f"model {bob.root}" and loads.calls.count(
        str(bob.root)) == 1


# ---------------------------------------------------------------------------------- try it


def test_prediction_slots_refuse_the_third_at_once():
    slots = PredictionSlots(per_user=2)
    with slots.take("alice"), slots.take("alice"):
        with pytest.raises(FinetunerError, match=r"2 predictions running.*"
                                                 r"FINETUNER_MAX_PREDICTIONS_PER_USER"):
            with slots.take("alice"):
                pass
        with slots.take("bob"):
            assert slots.running("bob") == 1
    with slots.take("alice"):
        assert slots.running("alice") == 1


def _refusing_loader(key):
    raise AssertionError("the model must not be loaded for a refused call")


def test_try_it_caps_are_checked_before_any_model_or_tokenizer(tmp_path):
    studio = Studio(tmp_path / "home", loader=_refusing_loader,
                    limits=Limits(max_try_chars=100, max_predictions_per_user=2))
    handlers = Handlers(studio)
    for form in ({"try_text": "x" * 101}, {"try_text": "ok?", "try_pair": "y" * 1000}):
        with pytest.raises(FinetunerError, match=r"at most 100 \(FINETUNER_MAX_TRY_CHARS\)"):
            handlers.predict("alice", {"try_run": "20260101-000000-0123456789abcdef", **form})
    with ExitStack() as stack:
        for _ in range(2):
            stack.enter_context(studio.slots.take("alice"))
        with pytest.raises(FinetunerError, match="FINETUNER_MAX_PREDICTIONS_PER_USER"):
            handlers.predict("alice", {"try_run": "20260101-000000-0123456789abcdef",
                                       "try_text": "hello"})
    with pytest.raises(FinetunerError, match="No such run"):  # bob is not held up by alice
        handlers.predict("bob", {"try_run": "20260101-000000-0123456789abcdef",
                                 "try_text": "hello"})


@pytest.fixture(scope="module")
def predictors(tiny_model):
    """A classification and a QA predictor on the tiny random BERT (no training needed)."""
    import transformers

    from finetuner.serving.inference import Predictor

    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model)
    cls = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_model,
                                                                          num_labels=2)
    qa = transformers.AutoModelForQuestionAnswering.from_pretrained(tiny_model)
    return {"classification": Predictor(cls, tokenizer, {"task": "classification",
                                                         "labels": ["a", "b"],
                                                         "max_length": 16}),
            "qa": Predictor(qa, tokenizer, {"task": "qa", "max_length": 64,
                                            "options": {"doc_stride": 16}})}


def test_a_long_passage_is_searched_in_at_most_the_window_cap(predictors):
    from finetuner.serving import tryit
    from finetuner.tasks import qa

    p = predictors["qa"]
    context = " ".join(f"sentence {i} tells of place{i}." for i in range(400))
    example = {"question": "Where is it?", "context": context}
    every = qa.featurize([example], p.tokenizer, 64, {}, doc_stride=16)
    fitted, note = tryit.fit(p, example, max_qa_windows=3)
    assert len(qa.featurize([fitted], p.tokenizer, 64, {}, doc_stride=16)) == 3
    assert context.startswith(fitted["context"]) and len(fitted["context"]) < len(context)
    assert f"({len(every)} windows of 64 tokens)" in note
    assert f"of {len(context):,} characters" in note and "FINETUNER_MAX_QA_WINDOWS" in note
    answer = p.predict_examples([fitted])[0]
    assert answer.get("end") is None or answer["end"] <= len(fitted["context"])
    short = {"question": "Where?", "context": "It is in Paris."}
    assert tryit.fit(p, short, max_qa_windows=3) == (short, "")
    assert tryit.fit(p, example, max_qa_windows=len(every)) == (example, "")


def test_a_text_longer_than_the_max_length_says_what_was_read(predictors):
    from finetuner.serving import tryit

    p = predictors["classification"]
    example = {"text": " ".join(["word"] * 50)}
    assert tryit.fit(p, example, 16)[1].startswith("The model read the first 16 of this "
                                                    "text's 52 tokens")
    assert tryit.fit(p, {"text": "short"}, 16) == ({"text": "short"}, "")


# ---------------------------------------------------------------------------------- batch


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_model) -> Path:
    """A run folder with a finished (untrained) classification model."""
    import transformers

    run = tmp_path_factory.mktemp("batch-run")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tiny_model,
                                                                            num_labels=2)
    model.save_pretrained(run / "model")
    transformers.AutoTokenizer.from_pretrained(tiny_model).save_pretrained(run / "model")
    (run / "model" / "finetuner.json").write_text(json.dumps({
        "task": "classification", "labels": ["neg", "pos"], "max_length": 32,
        "columns": {"text": "text"}}))
    return run


def _rows(path: Path, n: int) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "id"])
        writer.writerows([f"a fine film, number {i}", i] for i in range(n))
    return path


def test_a_file_is_predicted_by_a_worker_process(run_dir, tmp_path):
    jobs = BatchJobs(max_rows=3000)
    job = jobs.start("alice", run_dir, _rows(tmp_path / "in.csv", 2500), tmp_path / "out")
    seen = set()
    while not job.settled():
        job.wait(0.2)
        seen.add(job.message())
    out = job.result()
    assert out.parent.parent == tmp_path / "out" and out.name == "in-predictions.csv"
    lines = out.read_text().splitlines()
    assert lines[0] == "text,id,predicted_label,confidence,p_neg,p_pos" and len(lines) == 2501
    with open(out, encoding="utf-8") as fh:
        assert [row["id"] for row in csv.DictReader(fh)] == [str(i) for i in range(2500)]
    state = job.state()
    assert state["state"] == "done" and state["rows"] == 2500
    assert state["pid"] != os.getpid() and state["pid"] == job.proc.pid
    # progress was reported while it ran (which counts the 0.2 s polls catch depends on load)
    assert any(m.startswith("Predicted ") and m.endswith(" of 2,500 rows.") for m in seen), seen
    assert "predicted 2,500 rows" in job.log.read_text()
    assert not list(out.parent.glob("*.partial"))

    big = jobs.start("alice", run_dir, _rows(tmp_path / "big.csv", 3001), tmp_path / "out")
    big.wait(60)
    with pytest.raises(FinetunerError, match=r"more than 3,000 rows; this server reads at most "
                                             r"3,000 rows per file \(FINETUNER_MAX_PREDICT_"):
        big.result()
    assert big.state()["total"] is None  # refused before the model was loaded


def test_batch_jobs_one_per_user_a_server_cap_and_a_timeout(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    jobs = BatchJobs(max_jobs=2, timeout=2, env=env, module="stuck_worker")
    source = _rows(tmp_path / "in.csv", 3)
    runs = {user: tmp_path / user for user in ("alice", "bob", "carol")}
    for folder in runs.values():
        folder.mkdir()
    first = jobs.start("alice", runs["alice"], source, tmp_path / "a")
    with pytest.raises(FinetunerError, match="already predicting a file; this server "
                                             "predicts one file at a time per user"):
        jobs.start("alice", runs["alice"], source, tmp_path / "a")
    jobs.start("bob", runs["bob"], source, tmp_path / "b")
    with pytest.raises(FinetunerError, match=r"already predicting 2 files for other users, "
                                             r"its limit at once \(FINETUNER_MAX_BATCH_JOBS\)"):
        jobs.start("carol", runs["carol"], source, tmp_path / "c")
    # stuck_worker ignores SIGTERM and starts a child: the whole group is killed at 2 s
    wait_for((runs["alice"] / "child.pid").exists, 10, 0.1, "the stuck worker's child")
    child = int((runs["alice"] / "child.pid").read_text())
    assert first.wait(10), "the stuck worker was not killed"
    with pytest.raises(FinetunerError, match=r"limit of 2 s per file "
                                             r"\(FINETUNER_BATCH_TIMEOUT_SECONDS\)"):
        first.result()
    wait_for(lambda: not _alive(child), 5, 0.1, "the stuck worker's child to be killed")
    jobs.start("alice", runs["alice"], source, tmp_path / "a")  # her slot is free again
    jobs.shutdown()
    assert not jobs.active() or all(j.wait(5) for j in jobs.active())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


# ---------------------------------------------------------------------------------- wiring


class FakeHandlers:
    def __init__(self, home: Path) -> None:
        from types import SimpleNamespace

        self.studio = SimpleNamespace(home=home)

    def steps(self, user, form):
        yield {"out": "one"}
        yield {"out": "two", "ignored": 1}
        raise FinetunerError(f"stopped at {form['x']}", code="x")

    def plain(self, user, form):
        return {"out": form["x"] * 2}

    def broken(self, user, form):
        raise ValueError("boom")

    def slow(self, user, form):
        return {"out": "late"}


def test_bind_streams_generator_handlers_and_keeps_errors_inline(tmp_path):
    import inspect

    import gradio as gr

    from finetuner.ui.wiring import Wiring

    w = Wiring(FakeHandlers(tmp_path))
    with gr.Blocks():
        out, x, msg = (w.add(n, gr.Textbox()) for n in ("out", "x", "msg"))

        def bind(handler):
            return w.bind(lambda fn, **kw: fn, handler, ["x"], ["out"], "msg")

        steps, plain, broken = bind("steps"), bind("plain"), bind("broken")
    assert inspect.isgeneratorfunction(steps) and not inspect.isgeneratorfunction(plain)
    got = list(steps("x1", None))
    assert got[:2] == [{out: "one"}, {out: "two"}]
    assert "stopped at x1" in got[2][msg] and "ft-error" in got[2][msg]
    assert plain("ab", None) == {out: "abab"}
    assert "Something went wrong (ValueError: boom)" in broken("?", None)[msg]


def test_a_slow_handler_is_logged_by_name(tmp_path, monkeypatch, caplog):
    """What an operator reads when pages feel slow: which handler, how long."""
    from types import SimpleNamespace

    import gradio as gr

    from finetuner.ui import wiring

    # a clock that a loaded machine cannot upset: 'slow' takes 4 s, 'plain' 1 s
    took = {"plain": 1.0, "slow": 4.0}
    ticks = []

    def monotonic():
        ticks.append(len(ticks))
        return 0.0 if len(ticks) % 2 else took[current[0]]

    current = ["plain"]
    monkeypatch.setattr(wiring, "time", SimpleNamespace(monotonic=monotonic))
    w = wiring.Wiring(FakeHandlers(tmp_path))
    with gr.Blocks():
        for n in ("out", "x", "msg"):
            w.add(n, gr.Textbox())
        slow = w.bind(lambda fn, **kw: fn, "slow", ["x"], ["out"], "msg")
        plain = w.bind(lambda fn, **kw: fn, "plain", ["x"], ["out"], "msg")
    with caplog.at_level("WARNING", logger="finetuner.ui"):
        plain("ab", None)
        assert not caplog.records
        current[0] = "slow"
        slow("ab", None)
    assert [r.getMessage() for r in caplog.records] == ["handler slow took 4.0 s"]


# ---------------------------------------------------------------------------------- data check


def test_token_statistics_come_from_a_sample_and_the_row_cap_comes_first(tmp_path,
                                                                         monkeypatch):
    from finetuner.config import RunConfig
    from finetuner.data.splits import TOKEN_SAMPLE_ROWS
    from finetuner.tasks import classification

    n = TOKEN_SAMPLE_ROWS + 5000
    path = write_csv(tmp_path / "many.csv", [{"text": f"text number {i} " + "w " * (i % 40),
                                             "label": "ab"[i % 2]} for i in range(n)])
    config = RunConfig.from_dict({"data": {"train_file": str(path), "max_length": 30,
                                           "long_documents": "truncate"}})
    counted = []

    def count(texts, pairs):
        counted.append(len(texts))
        return [len(t.split()) + 2 for t in texts]

    report = classification.prepare(config, count).report
    assert counted == [TOKEN_SAMPLE_ROWS]
    tokens = report.token_lengths
    assert tokens["sample"] == TOKEN_SAMPLE_ROWS and tokens["of"] == n
    note = next(f.message for f in report.findings if f.code == "truncation")
    assert note.startswith("About ") and f"of {n:,} examples" in note
    assert f"from a random sample of {TOKEN_SAMPLE_ROWS:,} of {n:,}" in "\n".join(
        report.summary_lines())
    again = classification.prepare(config, count).report.token_lengths
    assert again == tokens  # seeded: the same sample every time

    def refuse(rows):
        raise FinetunerError(f"{rows} rows is too many", code="cap_rows")

    counted.clear()
    with pytest.raises(FinetunerError, match=f"{n} rows is too many"):
        classification.prepare(config, count, check_rows=refuse)
    assert counted == []


def test_the_data_check_refuses_too_many_rows_before_tokenising(tmp_path, monkeypatch):
    from conftest import EXAMPLES
    from test_ui_handlers import form

    import finetuner.training.checks

    def no_counter(source):
        def count(texts, pairs):
            raise AssertionError("tokenised before the row cap was checked")
        return count

    monkeypatch.setattr(finetuner.training.checks, "token_counter", no_counter)
    handlers = Handlers(Studio(tmp_path / "home", limits=Limits(max_rows=100)))
    out = handlers.data_changed("alice", form(train_file=str(EXAMPLES / "sentiment.csv")))
    assert "at most 100 (FINETUNER_MAX_ROWS)" in out["data_msg"]


def _own_run(studio: Studio, user: str, model: Path) -> str:
    """A finished run in the user's workspace (its model copied from `model`)."""
    import shutil

    run_id = f"20260101-000000-{os.urandom(8).hex()}"
    folder = studio.workspace(user).runs_dir / run_id
    shutil.copytree(model, folder / "model")
    (folder / "config.json").write_text("{}")
    return run_id


def test_predict_file_streams_progress_and_is_capped(run_dir, tmp_path):
    from test_ui_handlers import text

    studio = Studio(tmp_path / "home", limits=Limits(max_upload_mb=1, max_batch_jobs=1))
    h = Handlers(studio)
    alice, bob = _own_run(studio, "alice", run_dir / "model"), _own_run(studio, "bob",
                                                                        run_dir / "model")
    big = tmp_path / "big.csv"
    big.write_text("text\n" + "a rather long review of a film\n" * 40_000)
    with pytest.raises(FinetunerError, match=r"at most 1 MB per upload "
                                             r"\(FINETUNER_MAX_UPLOAD_MB\)"):
        next(iter(h.predict_file("alice", {"try_run": alice, "batch_file": str(big)})))
    source = _rows(tmp_path / "few.csv", 1500)
    steps = h.predict_file("alice", {"try_run": alice, "batch_file": str(source)})
    first = next(steps)
    assert "ft-info" in first["try_msg"] and "batch_out" not in first
    with pytest.raises(FinetunerError, match="FINETUNER_MAX_BATCH_JOBS"):
        next(iter(h.predict_file("bob", {"try_run": bob, "batch_file": str(source)})))
    *progress, last = [first, *steps]
    assert all("ft-info" in p["try_msg"] for p in progress)
    assert "Predicted 1,500 rows. Download the CSV below." in text(last["try_msg"])
    with open(last["batch_out"], encoding="utf-8") as fh:
        assert sum(1 for _ in fh) == 1501
    assert list(studio.workspace("alice").root.glob("batch/*/few-predictions.csv"))
    # the page goes away mid-way: the worker is stopped and bob may start
    steps = h.predict_file("alice", {"try_run": alice, "batch_file": str(source)})
    next(steps)
    (job,) = studio.batches.active()
    steps.close()
    assert job.wait(10) and job.reason == "cancelled"
    gone = h.predict_file("bob", {"try_run": bob, "batch_file": str(source)})
    assert "ft-info" in next(gone)["try_msg"]
    gone.close()
