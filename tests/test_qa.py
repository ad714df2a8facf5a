"""Extractive question answering: reading, answer placement, windows, span decoding, SQuAD
scores, an end-to-end worker run on the tiny model and a CLI run with the real model."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    EXAMPLES,
    ROOT,
    SHARED_DATA,
    assert_record_scores_the_validation,
    write_csv,
    write_jsonl,
)

from finetuner.config import RunConfig
from finetuner.errors import DataError
from finetuner.metrics.squad import exact_match, f1_score, normalize_answer, squad_scores
from finetuner.models.batching import pad_batch
from finetuner.tasks import qa, qa_spans

CONTEXT = "The Eiffel Tower stands in Paris. It was finished in 1889 for a world fair."


def config(path, **data) -> RunConfig:
    data = {"train_file": str(path), "max_length": 256, **data}
    return RunConfig.from_dict({"task": "qa", "data": data})


def flat_rows(n_contexts: int = 12, titles: bool = False) -> list[dict]:
    rows = []
    for i in range(n_contexts):
        context = f"Town {i} lies on river R{i}. It was founded in year {1000 + i} by settlers."
        for question, answer in ((f"Where does town {i} lie?", f"river R{i}"),
                                 (f"When was town {i} founded?", f"year {1000 + i}")):
            row = {"question": question, "context": context, "answer_text": answer}
            if titles:
                row["title"] = f"article {i % 12}"
            rows.append(row)
    return rows


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from finetuner.models.modeling import embedded_model_path

    return AutoTokenizer.from_pretrained(embedded_model_path())


# ---------------------------------------------------------------------------- reading


def test_flat_example_file_reads_and_splits_by_paragraph():
    prepared = qa.prepare(config(EXAMPLES / "qa.jsonl"))
    report = prepared.report
    assert sum(report.rows.values()) == 141 and report.task == "qa" and prepared.labels == []
    assert report.columns["question"] == "question" and report.columns["answer"] == "answer_text"
    assert report.extra["split_by"] == "paragraph"
    contexts = [{e["context"] for e in s} for s in (prepared.train, prepared.validation,
                                                    prepared.test)]
    assert not (contexts[0] & contexts[1] or contexts[0] & contexts[2] or contexts[1] & contexts[2])
    example = prepared.train[0]
    assert set(example) == {"id", "question", "context", "answers", "title", "row"}
    for e in prepared.train:
        start, text = e["answers"]["answer_start"][0], e["answers"]["text"][0]
        assert e["context"][start : start + len(text)] == text


def test_squad_json_with_unanswerable_questions():
    prepared = qa.prepare(config(EXAMPLES / "squad_small.json", max_length=128, doc_stride=64))
    report = prepared.report
    assert sum(report.rows.values()) == 26 and report.columns["format"] == "squad"
    every = prepared.train + prepared.validation + prepared.test
    assert sum(1 for e in every if not e["answers"]["text"]) == 3
    assert {e["title"] for e in every} == {"Paper", "Windmills", "Salt", "Clocks"}
    assert report.extra["options"]["allow_no_answer"] is True
    assert any(f.code == "unanswerable" for f in report.findings)


def test_missing_answer_start_is_found_whole_word_first(tmp_path):
    rows = flat_rows()
    rows[0] = {"question": "How many queens?", "context": "A honeybee colony has one queen.",
               "answer_text": "one"}
    prepared = qa.prepare(config(write_csv(tmp_path / "qa.csv", rows)))
    every = prepared.train + prepared.validation + prepared.test
    bee = next(e for e in every if e["question"] == "How many queens?")
    assert bee["answers"]["answer_start"] == [22]
    assert any(f.code == "answer_start_found" for f in prepared.report.findings)


def test_answer_not_in_context_names_the_row(tmp_path):
    rows = flat_rows()
    rows[1]["answer_text"] = "Lyon"
    rows[3]["answer_text"] = rows[3]["answer_text"].upper()
    with pytest.raises(DataError) as err:
        qa.prepare(config(write_csv(tmp_path / "qa.csv", rows)))
    text = str(err.value)
    assert "row 3 of 'qa.csv'" in text and "'Lyon'" in text and "row 5" in text
    assert "with other capitals" in text and "copied exactly" in text


def test_wrong_answer_start_is_moved_with_a_warning(tmp_path):
    rows = flat_rows()
    for row in rows:
        row["answer_start"] = row["context"].find(row["answer_text"])
    rows[0]["answer_start"] = 0
    prepared = qa.prepare(config(write_jsonl(tmp_path / "qa.jsonl", rows)))
    moved = [f for f in prepared.report.findings if f.code == "answer_moved"]
    assert moved and "line 1 of 'qa.jsonl'" in moved[0].message
    rows[2]["answer_start"] = "abc"
    with pytest.raises(DataError, match="line 3 of 'qa.jsonl' is 'abc'"):
        qa.prepare(config(write_jsonl(tmp_path / "qa.jsonl", rows)))


def test_empty_rows_are_dropped_and_empty_answers_are_unanswerable(tmp_path):
    rows = flat_rows()
    rows[0]["question"] = ""
    rows[2]["context"] = " "
    rows[4]["answer_text"] = ""
    prepared = qa.prepare(config(write_csv(tmp_path / "qa.csv", rows)))
    assert prepared.report.dropped == {"empty question or context": 2}
    assert sum(prepared.report.extra["unanswerable"].values()) == 1
    assert any(f.code == "dropped" for f in prepared.report.findings)


def test_missing_columns_and_overrides(tmp_path):
    rows = [{"q": "Where?", "passage_text": CONTEXT, "gold": "Paris"} for _ in range(30)]
    path = write_csv(tmp_path / "odd.csv", rows)
    with pytest.raises(DataError) as err:
        qa.prepare(config(path))
    assert "context column" in str(err.value) and "q, passage_text, gold" in str(err.value)
    with pytest.raises(DataError, match="Column 'nope' is not in 'odd.csv'"):
        qa.prepare(config(path, text_column="nope"))
    rows = [{"q": f"Where {i}?", "passage_text": CONTEXT + f" {i}", "gold": "Paris"}
            for i in range(30)]
    prepared = qa.prepare(config(write_csv(path, rows), text_column="q",
                                 text_pair_column="passage_text", label_column="gold"))
    assert prepared.report.columns == {"question": "q", "context": "passage_text",
                                       "answer": "gold"}


def test_bad_squad_shape(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": [{"title": "x", "paragraphs": [{"context": "c"}]}]}))
    with pytest.raises(DataError, match="looks like SQuAD JSON, but paragraph 1 of article 'x'"):
        qa.prepare(config(path))


def test_split_by_article_keeps_articles_whole(tmp_path):
    prepared = qa.prepare(config(write_csv(tmp_path / "qa.csv", flat_rows(36, titles=True))))
    assert prepared.report.extra["split_by"] == "article"
    titles = [{e["title"] for e in s} for s in (prepared.train, prepared.validation,
                                                prepared.test)]
    assert titles[1] and titles[2] and not (titles[0] & titles[1] or titles[0] & titles[2])


# ---------------------------------------------------------------------------- windows


def test_windows_map_the_answer_with_doc_stride(tokenizer):
    filler = " ".join(f"word{i}" for i in range(40))
    context = f"{filler}. The treasure lies under the old oak tree. {filler}."
    start = context.index("the old oak tree")
    example = {"question": "Where is the treasure?", "context": context,
               "answers": {"text": ["the old oak tree"], "answer_start": [start]}}
    feats = qa.featurize([example], tokenizer, 96, {}, doc_stride=32)
    assert len(feats) >= 3 and all(f["example_index"] == 0 for f in feats)
    first = feats[0]
    assert (first["start_positions"], first["end_positions"]) == (0, 0)  # answer not here
    hits = [f for f in feats if f["start_positions"]]
    assert hits and feats.index(hits[0]) == 1  # the answer sits in the 2nd window
    for f in hits:
        offsets = f["offset_mapping"]
        span = context[offsets[f["start_positions"]][0] : offsets[f["end_positions"]][1]]
        assert span == "the old oak tree"
        assert offsets[0] is None and all(len(f["input_ids"]) <= 96 for f in feats)
    # consecutive windows overlap by doc_stride context tokens
    ctx = [[o for o in f["offset_mapping"] if o is not None] for f in feats[:2]]
    assert ctx[0][-32:] == ctx[1][:32]


def test_long_questions_and_inference_examples_featurize(tokenizer):
    long_question = "why " * 200
    feats = qa.featurize([{"text": long_question, "pair": CONTEXT * 5}], tokenizer, 64, {},
                         doc_stride=48)
    assert feats and all(len(f["input_ids"]) <= 64 for f in feats)
    assert "start_positions" not in feats[0]
    mixed = qa.featurize([{"question": "Where?", "context": CONTEXT},
                          {"question": "When?", "context": CONTEXT,
                           "answers": {"text": ["1889"], "answer_start": [CONTEXT.index("1889")]}}],
                         tokenizer, 64, {})
    assert [f["start_positions"] > 0 for f in mixed] == [False, True]
    batch = pad_batch(mixed, tokenizer.pad_token_id)
    assert set(batch) >= {"input_ids", "attention_mask", "start_positions", "end_positions"}


# ---------------------------------------------------------------------------- decoding


def feature(offsets, index=0):
    return {"input_ids": [0] * len(offsets), "offset_mapping": offsets, "example_index": index}


def logits(n, **at):
    out = np.full(n, -5.0, dtype=np.float32)
    for i, v in at.items():
        out[int(i[1:])] = v
    return out


# tokens: [CLS] q q [SEP] The(0-3) Eiffel(4-10) Tower(11-16) stands(17-23) in(24-26)
# Paris(27-32) .(32-33) [SEP]
OFFSETS = [None, None, None, None, (0, 3), (4, 10), (11, 16), (17, 23), (24, 26), (27, 32),
           (32, 33), None]


def test_decoding_finds_the_best_span():
    start, end = logits(12, t9=4.0, t5=2.0, t1=9.0), logits(12, t9=3.0, t6=2.5, t2=9.0)
    out = qa.decode([(start, end)], [feature(OFFSETS)], [{"context": CONTEXT}], [])[0]
    assert (out["answer"], out["start"], out["end"]) == ("Paris", 27, 32)  # question ignored
    assert out["score"] == 7.0 and 0.5 < out["probability"] <= 1 and not out["no_answer"]
    assert out["runners_up"] and out["runners_up"][0]["answer"] != "Paris"
    assert len(out["runners_up"]) <= 4


def test_decoding_respects_max_answer_length_and_order():
    start, end = logits(12, t4=6.0, t9=1.0), logits(12, t9=6.0, t4=-1.0)
    out = qa.decode([(start, end)], [feature(OFFSETS)], [{"context": CONTEXT}], [],
                    max_answer_length=3)[0]
    assert out["answer"] != CONTEXT[0:32] and len(out["answer"].split()) <= 3
    wide = qa.decode([(start, end)], [feature(OFFSETS)], [{"context": CONTEXT}], [],
                     max_answer_length=30)[0]
    assert wide["answer"] == "The Eiffel Tower stands in Paris"
    backwards = qa_spans.feature_spans(logits(12, t9=9.0), logits(12, t5=9.0), OFFSETS, 30)
    assert all(a < b for _, a, b in backwards)
    best = max(backwards)
    assert (best[1], best[2]) != (27, 10)


def test_decoding_takes_the_best_window_and_no_answer_only_when_allowed():
    second = [None, None, None, None, (17, 23), (24, 26), (27, 32), None]
    feats = [feature(OFFSETS[:8] + [None]), feature(second)]
    outputs = [(logits(9, t0=8.0, t5=2.0), logits(9, t0=8.0, t5=2.0)),
               (logits(8, t0=1.0, t6=5.0), logits(8, t0=1.0, t6=5.0))]
    out = qa.decode(outputs, feats, [{"context": CONTEXT}], [])[0]
    assert out["answer"] == "Paris"
    # the lowest [CLS] score over windows (2.0) loses to Paris (10.0) even when allowed
    assert qa.decode(outputs, feats, [{"context": CONTEXT}], [],
                     allow_no_answer=True)[0]["answer"] == "Paris"
    one = [(logits(12, t0=9.0, t9=2.0), logits(12, t0=9.0, t9=2.0))]
    allowed = qa.decode(one, [feature(OFFSETS)], [{"context": CONTEXT}], [],
                        allow_no_answer=True)[0]
    assert allowed["no_answer"] and allowed["answer"] == "" and allowed["start"] is None
    assert allowed["runners_up"][0]["answer"] == "Paris"
    assert qa.decode(one, [feature(OFFSETS)], [{"context": CONTEXT}], [])[0]["answer"] == "Paris"
    empty = qa.decode([(logits(4), logits(4))], [feature([None] * 4)], [{"context": ""}], [])
    assert empty[0]["answer"] == "" and empty[0]["no_answer"]


def test_runners_up_are_whole_words_without_repeats():
    # "1412" is read as two pieces, 141 and ##2; spans ending after "141" cut the word
    context = "The town was founded in 1412 by herring fishermen."
    offsets = [None, None, (0, 3), (4, 8), (9, 12), (13, 20), (21, 23), (24, 27), (27, 28),
               (29, 31), (32, 39), (40, 49), (49, 50), None]
    start = logits(14, t7=6.0, t10=3.0, t8=2.0)
    end = logits(14, t8=6.0, t7=5.5, t10=3.0)
    out = qa.decode([(start, end)], [feature(offsets)], [{"context": context}], [])[0]
    assert out["answer"] == "1412"
    others = [r["answer"] for r in out["runners_up"]]
    assert others and "141" not in others and "2" not in others and "1412" not in others
    assert len(others) == len(set(others)) <= 4
    assert "1412 by herring" in others and "herring" in others


# ---------------------------------------------------------------------------- scores


def test_squad_normalisation_and_scores():
    assert normalize_answer("  The Eiffel-Tower, an icon!") == "eiffeltower icon"
    assert exact_match("the Eiffel Tower", ["Eiffel tower"]) == 1.0
    assert f1_score("in Paris France", ["Paris"]) == pytest.approx(0.5)
    assert f1_score("Paris", ["London", "in Paris"]) == pytest.approx(2 / 3)
    assert exact_match("", []) == 1.0 and f1_score("Paris", []) == 0.0
    scores = squad_scores(["the Eiffel Tower", "in Paris France", ""],
                          [["Eiffel tower"], ["Paris"], []])
    assert scores["exact_match"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["f1"] == pytest.approx(2.5 / 3, abs=1e-4) and scores["n"] == 3
    assert scores["no_answer_accuracy"] == 1.0 and scores["has_answer_f1"] == 0.75


def test_metrics_and_prediction_rows_from_outputs():
    examples = [{"question": "Where?", "context": CONTEXT,
                 "answers": {"text": ["Paris"], "answer_start": [27]}},
                {"question": "What?", "context": CONTEXT,
                 "answers": {"text": ["The Eiffel Tower"], "answer_start": [0]}}]
    outputs = [(logits(12, t9=5.0), logits(12, t9=5.0))] * 2
    feats = [feature(OFFSETS, 0), feature(OFFSETS, 1)]
    assert qa.metrics(outputs, feats, examples, []) == {"exact_match": 0.5, "f1": 0.5, "n": 2}
    rows = qa.prediction_rows(outputs, feats, examples, [])
    assert [r["correct"] for r in rows] == [False, True] and rows[0]["true"] == "The Eiffel Tower"
    assert set(rows[0]) >= {"question", "context", "true", "predicted", "confidence", "correct"}


# ---------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model):
    from finetuner.runs import create_run
    from finetuner.server.jobs import JobManager

    tmp = tmp_path_factory.mktemp("qa-run")
    cfg = RunConfig.from_dict({
        "task": "qa",
        "data": {"train_file": str(EXAMPLES / "qa.jsonl"), "max_length": 64, "doc_stride": 24},
        "model": {"name_or_path": str(tiny_model)},
        "training": {"epochs": 1, "batch_size": 16, "learning_rate": 3e-3, "max_steps": 6,
                     "evals_per_epoch": 2},
    })
    run = create_run(tmp / "runs", cfg)
    manager = JobManager(warm=True)
    manager.start(run)
    return run, manager.wait(run, timeout=180)


def test_worker_trains_tests_and_exports(finished):
    run, results = finished
    assert results["status"] == "completed", results
    assert_record_scores_the_validation(run, results)
    assert results["task"] == "qa" and results["metric"] == "f1"
    assert {"exact_match", "f1", "n", "loss"} <= set(results["test"])
    assert results["test"]["loss"] is not None and results["test"]["n"] == results["data"]["test"]
    assert (run.model / "model.safetensors").exists()
    meta = json.loads((run.model / "finetuner.json").read_text())
    assert meta["task"] == "qa" and meta["options"]["allow_no_answer"] is False
    rows = [json.loads(line) for line in run.predictions.read_text().splitlines()]
    assert len(rows) == results["data"]["test"] and "predicted" in rows[0]
    assert "AutoModelForQuestionAnswering" in (run.model / "README.md").read_text()


def test_predictor_answers_inside_the_context(finished, tmp_path):
    from finetuner.serving.inference import Predictor

    run, _ = finished
    predictor = Predictor.load(run.root)
    out = predictor.answer("Where does the tower stand?", CONTEXT)
    assert out["answer"] and CONTEXT[out["start"] : out["end"]] == out["answer"]
    assert 0 < out["probability"] <= 1
    assert predictor.predict("Where?", CONTEXT)["answer"] in CONTEXT
    src = write_csv(tmp_path / "ask.csv", [{"id": 1, "question": "When?", "context": CONTEXT}])
    import csv

    rows = list(csv.DictReader(open(predictor.predict_file(src, tmp_path / "out.csv"))))
    assert rows[0]["id"] == "1" and rows[0]["answer"] in CONTEXT and rows[0]["confidence"]


def test_usage_snippet_runs_with_plain_transformers(finished):
    from finetuner.serving.export import read_meta, usage_snippet

    run, _ = finished
    code = usage_snippet(read_meta(run.model), str(run.model))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "usage_snippet", "exec"), {})
    answer = printed.getvalue().strip()
    assert answer in "The tower was finished in 1889. It stands in Paris, on the Champ de Mars."


@pytest.mark.slow
def test_cli_train_and_predict_with_the_default_model(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "finetuner", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)

    out = tmp_path / "run"
    proc = cli("train", "--task", "qa", "--data", EXAMPLES / "qa.jsonl", "--max-length", 256,
               "--max-steps", 8, "--batch-size", 8, "--evals-per-epoch", 1, "--output", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Rows: train 114, validation 13, test 14" in proc.stdout
    assert "Test: exact_match" in proc.stdout and "f1" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "completed" and results["test"]["f1"] >= 0
    proc = cli("predict", "--run", out, "--question", "When was the tower finished?",
               "--context", CONTEXT, "--json")
    assert proc.returncode == 0, proc.stderr
    pred = json.loads(proc.stdout.splitlines()[0])
    assert pred["answer"] in CONTEXT and pred["question"] == "When was the tower finished?"
    proc = cli("predict", "--run", out, "--question", "Where?")
    assert proc.returncode == 2 and "--context" in proc.stderr


@pytest.mark.skipif(not (SHARED_DATA / "squad_v1.1" / "dev-v1.1.json").exists(),
                    reason="../shared/data/squad_v1.1 is not here")
def test_squad_dev_parses():
    path = SHARED_DATA / "squad_v1.1" / "dev-v1.1.json"
    log = qa._Log()
    examples, columns = qa.read_examples(path, config(path, max_length=384), log)
    assert len(examples) == 10570 and len({e["title"] for e in examples}) == 48
    assert not log.moved and all(e["answers"]["text"] for e in examples)
