"""Named entity recognition: reading and checking tagged data, label alignment, entity metrics,
decoding, a worker run on the tiny model and a CLI run with the real default model."""

from __future__ import annotations

import json
import random
import subprocess
import sys

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
from finetuner.metrics.ner import entities, entity_metrics
from finetuner.models.batching import pad_batch
from finetuner.tasks import ner

CONLL4 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""


def cfg(path, **data) -> RunConfig:
    return RunConfig.from_dict({"task": "ner", "data": {"train_file": str(path), **data}})


def conll(path, sentences) -> str:
    """Write [(tokens, tags), ...] as CoNLL text; returns the path as a string."""
    blocks = ["\n".join(f"{w} {t}" for w, t in zip(*s)) for s in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return str(path)


def toy_sentences(n=60, seed=0):
    rng = random.Random(seed)
    people, places = ["Ann Lee", "Bo Chen", "Cy Diaz", "Dee Ray"], ["Oslo", "Lima", "Rome"]
    out = []
    for i in range(n):
        person, place = rng.choice(people).split(), rng.choice(places)
        tokens = [*person, "visited", place, "on", f"day{i}"]
        out.append((tokens, ["B-PER", "I-PER", "O", "B-LOC", "O", "O"]))
    return out


def fail(path_or_cfg, **data) -> DataError:
    config = path_or_cfg if isinstance(path_or_cfg, RunConfig) else cfg(path_or_cfg, **data)
    with pytest.raises(DataError) as info:
        ner.prepare(config)
    return info.value


# ---------------------------------------------------------------------------- reading


def test_conll_with_docstart_and_four_columns(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(CONLL4)
    source = ner.read_sentences(path, cfg(path).data)
    assert [s["tokens"] for s in source.sentences] == [
        ["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn"],
        ["BRUSSELS", "1996-08-22"]]
    assert source.sentences[0]["tags"] == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert [s["row"] for s in source.sentences] == [3, 9, 14]
    assert source.columns == {"tokens": "column 1", "tags": "column 4"}
    assert source.scheme == "BIO"


def test_txt_is_read_as_conll_only_when_it_looks_like_it(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text(CONLL4)
    assert len(ner.read_sentences(text, cfg(text).data).sentences) == 3
    table = tmp_path / "table.txt"
    write_csv(table, [{"tokens": "John lives in Rome", "tags": "B-PER O O B-LOC"}])
    source = ner.read_sentences(table, cfg(table).data)
    assert source.sentences[0]["tags"] == ["B-PER", "O", "O", "B-LOC"]
    assert source.columns == {"tokens": "tokens", "tags": "tags"}


def test_jsonl_json_and_column_names(tmp_path):
    rows = [{"id": i, "words": t, "ner_tags": g} for i, (t, g) in enumerate(toy_sentences(3))]
    jsonl = write_jsonl(tmp_path / "a.jsonl", rows)
    source = ner.read_sentences(jsonl, cfg(jsonl).data)
    assert source.columns == {"tokens": "words", "tags": "ner_tags"}
    assert source.sentences[1]["tokens"][2] == "visited" and source.sentences[1]["row"] == 2
    other = [{"a": t, "b": g, "c": "x"} for t, g in toy_sentences(3)]
    path = tmp_path / "b.json"
    path.write_text(json.dumps(other))
    source = ner.read_sentences(path, cfg(path, text_column="a", label_column="b").data)
    assert source.columns == {"tokens": "a", "tags": "b"}
    guessed = ner.read_sentences(path, cfg(path).data)  # tags recognised by their values
    assert guessed.columns == {"tokens": "a", "tags": "b"}


def test_csv_and_tsv_with_space_separated_tokens(tmp_path):
    rows = [{"sentence": " ".join(t), "labels": " ".join(g)} for t, g in toy_sentences(4)]
    for name, sep in (("a.csv", ","), ("a.tsv", "\t")):
        path = write_csv(tmp_path / name, rows, delimiter=sep)
        source = ner.read_sentences(path, cfg(path).data)
        assert source.sentences[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC", "O", "O"]
        assert source.sentences[0]["row"] == 2  # the header is line 1


def test_iob1_is_converted_to_bio(tmp_path):
    path = tmp_path / "iob1.conll"
    conll(path, [(["Ann", "Lee", "met", "Bo", "in", "Rome"], ["I-PER", "I-PER", "O", "I-PER", "O",
                                                             "I-LOC"]),
                 (["Ann", "Bo", "left"], ["I-PER", "B-PER", "O"])])
    source = ner.read_sentences(path, cfg(path).data)
    assert source.scheme == "IOB1"
    assert source.sentences[0]["tags"] == ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"]
    assert source.sentences[1]["tags"] == ["B-PER", "B-PER", "O"]
    note = next(f for f in source.findings if f.code == "scheme")
    assert "IOB1" in note.message and "4 opening I- tags were converted" in note.message


def test_an_i_tag_opening_an_entity_in_bio_is_repaired_with_a_warning(tmp_path):
    path = tmp_path / "bio.conll"
    conll(path, [(["Ann", "Lee", "met", "Bo"], ["B-PER", "I-PER", "O", "I-PER"]),
                 (["Rome", "and", "Oslo"], ["B-LOC", "O", "B-LOC"]),
                 (["in", "New", "York"], ["O", "I-LOC", "I-LOC"])])
    source = ner.read_sentences(path, cfg(path).data)
    assert source.scheme == "BIO"
    assert source.sentences[0]["tags"][3] == "B-PER"
    assert source.sentences[2]["tags"] == ["O", "B-LOC", "I-LOC"]
    warning = next(f for f in source.findings if f.code == "repaired_tags")
    assert warning.level == "warning"
    assert warning.message.startswith("2 I- tags in") and "lines [1, 10]" in warning.message


def test_bioes_is_converted(tmp_path):
    path = tmp_path / "bioes.conll"
    conll(path, [(["Ann", "Lee", "in", "Rome"], ["B-PER", "E-PER", "O", "S-LOC"])])
    source = ner.read_sentences(path, cfg(path).data)
    assert source.scheme == "BIOES"
    assert source.sentences[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]


# ---------------------------------------------------------------------------- errors


def test_token_and_tag_counts_must_match(tmp_path):
    rows = [{"tokens": t, "tags": g} for t, g in toy_sentences(4)]
    rows[2]["tags"] = rows[2]["tags"][:-1]
    error = fail(write_jsonl(tmp_path / "bad.jsonl", rows))
    assert error.code == "tag_count"
    assert "Record 3 of 'bad.jsonl' has 6 tokens but 5 tags" in error.message
    assert "one tag per token" in error.remedy
    path = tmp_path / "bad.conll"
    path.write_text("Ann B-PER\nLee I-PER\n\nBo\nleft O\n")
    error = fail(path)
    assert error.code == "tag_count" and "Line 4 of 'bad.conll'" in error.message
    assert "last column" in error.remedy


def test_empty_sentences_are_skipped_or_fatal(tmp_path):
    rows = [{"tokens": t, "tags": g} for t, g in toy_sentences(40)]
    rows[5] = {"tokens": [], "tags": []}
    rows[9] = {"tokens": "", "tags": ""}
    prepared = ner.prepare(cfg(write_jsonl(tmp_path / "some.jsonl", rows)))
    assert prepared.report.dropped == {"empty sentence": 2}
    assert "Skipped 2 empty sentences." in prepared.report.warnings()
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"tokens": [], "tags": []}] * 3)
    assert fail(empty).code == "all_texts_empty"


def test_a_single_tag_and_malformed_tags_are_refused(tmp_path):
    path = conll(tmp_path / "one.conll", [(["a", "b"], ["O", "O"]), (["c"], ["O"])])
    error = fail(path)
    assert error.code == "one_class" and "Only one tag ('O')" in error.message
    assert "B-PER" in error.remedy
    path = conll(tmp_path / "bad.conll", [(["Ann", "in", "Rome"], ["B-PER", "O", "B-LOC"]),
                                          (["Bo", "in", "Oslo"], ["PER", "O", "B_LOC"])])
    error = fail(path)
    assert error.code == "bad_tags"
    assert "2 malformed tags" in error.message and "'PER'" in error.message
    assert "line 5" in error.message and "B-TYPE / I-TYPE" in error.remedy


def test_numeric_tags_empty_and_unknown_files(tmp_path):
    path = write_jsonl(tmp_path / "ids.jsonl", [{"tokens": ["a", "b"], "ner_tags": [1, 0]}])
    error = fail(path)
    assert error.code == "numeric_tags" and "B-PER" in error.remedy
    empty = tmp_path / "empty.conll"
    empty.write_text("\n\n")
    assert fail(empty).code == "empty"
    sheet = tmp_path / "data.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    error = fail(sheet)
    assert error.code == "unknown_extension" and ".conll" in error.remedy
    table = write_csv(tmp_path / "x.csv", [{"a": "x y", "b": "1 2"}])
    assert fail(table).code == "no_label_column"
    error = fail(EXAMPLES / "sentiment.csv")
    assert error.code == "not_ner" and "text classification task" in error.remedy


def test_entity_types_missing_from_training_are_refused(tmp_path):
    train = conll(tmp_path / "train.conll", toy_sentences(30))
    test = conll(tmp_path / "test.conll", [(["Acme", "Corp", "grew"], ["B-ORG", "I-ORG", "O"]),
                                           (["Ann", "Lee"], ["B-PER", "I-PER"])])
    error = fail(cfg(train, test_file=test))
    assert error.code == "unseen_label"
    assert "The test data has entity type 'ORG'" in error.message
    assert "lines [1]" in error.message


def test_too_few_sentences(tmp_path):
    path = conll(tmp_path / "tiny.conll", toy_sentences(2))
    assert fail(path).code == "too_small"


# ---------------------------------------------------------------------------- preparation


def test_prepare_splits_by_sentence_and_reports_entity_types(tmp_path):
    sentences = toy_sentences(60)
    sentences += [sentences[0]] * 5  # identical sentences must stay in one split
    path = conll(tmp_path / "train.conll", sentences)

    def count_tokens(texts, pairs):
        return [len(t.split()) + 3 for t in texts]

    prepared = ner.prepare(cfg(path, max_length=8), count_tokens)
    report = prepared.report
    assert prepared.labels == ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
    assert sum(report.rows.values()) == 65 and report.rows["test"] in (6, 7, 11, 12)
    key = " ".join(sentences[0][0])
    holders = [s for s, ex in (("train", prepared.train), ("validation", prepared.validation),
                               ("test", prepared.test)) if any(ner._key(e) == key for e in ex)]
    assert len(holders) == 1
    assert report.task == "ner" and report.extra["scheme"] == "BIO"
    assert report.label_counts["train"] == {"LOC": len(prepared.train),
                                            "PER": len(prepared.train)}
    assert sum(report.label_counts[s]["PER"] for s in report.rows) == 65
    codes = {f.code for f in report.findings}
    assert {"scheme", "duplicates", "truncation"} <= codes
    assert report.token_lengths["max"] == 9 and report.token_lengths["truncated_share"] == 1.0
    again = ner.prepare(cfg(path, max_length=8), count_tokens)
    assert [e["row"] for e in again.test] == [e["row"] for e in prepared.test]  # seeded


def test_rare_types_truncation_and_leakage_are_reported(tmp_path):
    sentences = toy_sentences(40)
    sentences.append((["Zed", "Inc", "hired", "Ann", "and", "Bo", "and", "Cy", "and", "Dee"],
                      ["B-ORG", "I-ORG", "O", "B-PER", "O", "B-PER", "O", "B-PER", "O", "B-PER"]))
    train = conll(tmp_path / "train.conll", sentences)
    test = conll(tmp_path / "test.conll", toy_sentences(5))  # the same first sentences: leaked

    def count_tokens(texts, pairs):
        return [len(t.split()) * 2 for t in texts]

    report = ner.prepare(cfg(train, validation_file=test, test_file=test, max_length=10),
                         count_tokens).report
    messages = " ".join(report.warnings())
    assert "Entity type 'ORG' has fewer than 10" in messages
    assert "5 test sentences also appear in the training data" in messages
    assert "cut" in messages and "Words cut off are predicted O." in messages
    assert report.rows == {"train": 41, "validation": 5, "test": 5}


# ---------------------------------------------------------------------------- model side


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from finetuner.models.modeling import embedded_model_path

    return AutoTokenizer.from_pretrained(embedded_model_path())


LABELS = ["O", "B-LOC", "B-PER", "I-LOC", "I-PER"]
L2I = {name: i for i, name in enumerate(LABELS)}


def test_labels_go_on_the_first_subword_of_each_word(tokenizer):
    example = {"tokens": ["Angela", "Merkel", "visited", "Paris"],
               "tags": ["B-PER", "I-PER", "O", "B-LOC"]}
    feat = ner.featurize([example], tokenizer, 128, L2I)[0]
    pieces = tokenizer.convert_ids_to_tokens(feat["input_ids"])
    assert pieces == ["[CLS]", "angela", "mer", "##kel", "visited", "paris", "[SEP]"]
    assert feat["word_ids"] == [None, 0, 1, 1, 2, 3, None]
    assert feat["labels"] == [-100, L2I["B-PER"], L2I["I-PER"], -100, L2I["O"], L2I["B-LOC"],
                              -100]
    short = ner.featurize([example], tokenizer, 4, L2I)[0]  # truncation keeps the alignment
    assert short["word_ids"] == [None, 0, 1, None] and len(short["labels"]) == 4
    inference = ner.featurize([{"text": "Angela Merkel visited Paris."}], tokenizer, 128, {})[0]
    assert "labels" not in inference and inference["word_ids"][-2:] == [4, None]
    batch = pad_batch([feat, short], tokenizer.pad_token_id)
    assert batch["labels"].shape == (2, 7) and batch["labels"][1, -1] == -100
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}


def one_hot(feat, word_tags, prob=0.9):
    """Logits whose argmax gives word_tags at each word's first subword."""
    import numpy as np

    logits = np.zeros((len(feat["input_ids"]), len(LABELS)))
    previous = None
    for pos, word in enumerate(feat["word_ids"]):
        if word is not None and word != previous:
            logits[pos, L2I[word_tags[word]]] = np.log(prob * (len(LABELS) - 1) / (1 - prob))
        previous = word
    return logits


def test_metrics_on_a_hand_computed_case(tokenizer):
    examples = [{"tokens": ["Ann", "Lee", "visited", "Rome"],
                 "tags": ["B-PER", "I-PER", "O", "B-LOC"]}]
    feats = ner.featurize(examples, tokenizer, 128, L2I)
    predicted = ["B-PER", "I-PER", "O", "B-PER"]  # one exact match, one wrong type
    scores = ner.metrics([one_hot(feats[0], predicted)], feats, examples, LABELS)
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.5, 0.5, 0.5)
    assert scores["token_accuracy"] == 0.75 and scores["n"] == 1
    assert scores["per_class"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": 0.6667,
                                          "support": 1}
    assert scores["per_class"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                          "support": 1}


def test_words_cut_by_truncation_count_as_predicted_o(tokenizer):
    examples = [{"tokens": ["Ann", "Lee", "visited", "Rome"],
                 "tags": ["B-PER", "I-PER", "O", "B-LOC"]}]
    feats = ner.featurize(examples, tokenizer, 5, L2I)  # [CLS] ann lee visited [SEP]
    scores = ner.metrics([one_hot(feats[0], examples[0]["tags"])], feats, examples, LABELS)
    assert scores["precision"] == 1.0 and scores["recall"] == 0.5
    assert scores["token_accuracy"] == 1.0  # over the words the model saw


def test_entity_metrics_agree_with_seqeval():
    from seqeval.metrics import f1_score, precision_score, recall_score

    rng = random.Random(3)
    tags = ["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-ORG"]
    gold = [[rng.choice(tags) for _ in range(rng.randint(1, 12))] for _ in range(300)]
    pred = [[t if rng.random() < 0.7 else rng.choice(tags) for t in s] for s in gold]
    ours = entity_metrics(gold, pred)
    assert ours["f1"] == round(f1_score(gold, pred), 4)
    assert ours["precision"] == round(precision_score(gold, pred), 4)
    assert ours["recall"] == round(recall_score(gold, pred), 4)
    assert entities(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]) == [
        ("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 6)]


def test_decode_builds_entities_with_character_offsets(tokenizer):
    text = "Yesterday  Angela Merkel's car reached New York."
    examples = [{"text": text}]
    feats = ner.featurize(examples, tokenizer, 128, {})
    words = ner.words_of(examples[0])[0]
    assert words == ["Yesterday", "Angela", "Merkel", "'s", "car", "reached", "New", "York", "."]
    tags = ["O", "B-PER", "I-PER", "O", "O", "O", "I-LOC", "I-LOC", "O"]
    out = ner.decode([one_hot(feats[0], tags, 0.8)], feats, examples, LABELS)[0]
    assert out["tags"] == ["O", "B-PER", "I-PER", "O", "O", "O", "I-LOC", "I-LOC", "O"]
    first, second = out["entities"]
    assert (first["type"], first["text"], first["words"]) == ("PER", "Angela Merkel", [1, 3])
    assert text[first["start"]:first["end"]] == "Angela Merkel" and first["start"] == 11
    assert (second["type"], second["text"], second["words"]) == ("LOC", "New York", [6, 8])
    assert abs(second["score"] - 0.8) < 1e-3
    tokens = ner.decode([one_hot(feats[0], tags)], feats,
                        [{"tokens": words}], LABELS)[0]["entities"][0]
    assert (tokens["start"], tokens["end"], tokens["text"]) == (10, 23, "Angela Merkel")


def test_prediction_rows_and_file_columns(tokenizer):
    import pandas as pd

    examples = [{"tokens": ["Ann", "Lee", "in", "Rome"], "tags": ["B-PER", "I-PER", "O", "B-LOC"]},
                {"tokens": ["Bo", "left"], "tags": ["B-PER", "O"]}]
    feats = ner.featurize(examples, tokenizer, 128, L2I)
    outputs = [one_hot(feats[0], examples[0]["tags"]), one_hot(feats[1], ["B-LOC", "O"], 0.6)]
    rows = ner.prediction_rows(outputs, feats, examples, LABELS)
    assert rows[0] == {"text": "Bo left", "true": "PER: Bo", "predicted": "LOC: Bo",
                       "confidence": 0.6, "correct": False}
    assert rows[1]["true"] == rows[1]["predicted"] == "PER: Ann Lee; LOC: Rome"
    pred = ner.decode(outputs[:1], feats[:1], examples[:1], LABELS)[0]
    assert ner.output_columns(pred, LABELS) == {"predicted_entities": "PER: Ann Lee; LOC: Rome",
                                                "predicted_tags": "B-PER I-PER O B-LOC"}
    frame = pd.DataFrame({"id": [1], "sentence": ["Ann met Bo."]})
    assert ner.examples_from_frame(frame, {"tokens": "column 1"}) == [{"text": "Ann met Bo."}]
    frame = pd.DataFrame({"tokens": ["Ann met Bo ."]})
    assert ner.examples_from_frame(frame, {}) == [{"tokens": ["Ann", "met", "Bo", "."]}]
    assert "aggregation_strategy=\"simple\"" in ner.usage_snippet({}, "out/model")


# ---------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_model):
    from finetuner.runs import create_run
    from finetuner.server.jobs import JobManager

    tmp = tmp_path_factory.mktemp("ner-run")
    config = RunConfig.from_dict({
        "task": "ner",
        "data": {"train_file": str(EXAMPLES / "ner.conll")},
        "model": {"name_or_path": str(tiny_model)},
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3},
    })
    run = create_run(tmp / "runs", config)
    manager = JobManager(warm=True)
    manager.start(run)
    return run, manager.wait(run, timeout=240)


def test_worker_run_results_and_events(finished):
    from finetuner.runs import read_events

    run, results = finished
    assert results["status"] == "completed", results
    assert results["task"] == "ner" and results["metric"] == "f1"
    assert_record_scores_the_validation(run, results)
    assert results["labels"][0] == "O" and "B-PER" in results["labels"]
    test = results["test"]
    assert {"f1", "precision", "recall", "token_accuracy", "per_class", "n"} <= set(test)
    assert test["n"] == 20 and set(test["per_class"]) <= {"PER", "ORG", "LOC", "MISC"}
    assert results["diagnosis"]["verdict"]
    events, _ = read_events(run.events)
    evals = [e for e in events if e["type"] == "eval"]
    assert evals and {"f1", "precision", "recall", "loss"} <= set(evals[0]["validation"])
    assert "per_class" not in evals[0]["validation"]
    report = json.loads(run.data_report.read_text())
    assert report["task"] == "ner" and report["label_counts"]["train"]["PER"] > 10
    rows = [json.loads(line) for line in run.predictions.read_text().splitlines()]
    assert len(rows) == 20 and {"text", "true", "predicted", "confidence", "correct"} <= set(
        rows[0])
    assert [r["correct"] for r in rows] == sorted(r["correct"] for r in rows)


def test_exported_model_works_in_a_plain_pipeline_and_the_predictor(finished, tmp_path):
    import csv

    from transformers import AutoConfig, pipeline

    from finetuner.serving.inference import Predictor

    run, results = finished
    config = AutoConfig.from_pretrained(run.model)
    assert [config.id2label[i] for i in range(len(config.id2label))] == results["labels"]
    tagger = pipeline("token-classification", model=str(run.model),
                      aggregation_strategy="simple")
    found = tagger("Angela Merkel visited Paris")
    assert isinstance(found, list)
    assert all(e["entity_group"] in ("PER", "ORG", "LOC", "MISC") for e in found)
    assert "token-classification" in (run.model / "README.md").read_text()
    predictor = Predictor.load(run.root)
    one = predictor.predict("Angela Merkel visited Paris")
    assert set(one) >= {"entities", "tags"} and len(one["tags"]) == 4
    for entity in one["entities"]:
        assert "Angela Merkel visited Paris"[entity["start"]:entity["end"]] == entity["text"]
    assert len(predictor.predict(["Ann went home.", ""])) == 2
    src = write_csv(tmp_path / "new.csv", [{"id": 1, "text": "Maria Lindqvist left Oslo."}])
    out = predictor.predict_file(src, tmp_path / "pred.csv")
    row = next(csv.DictReader(open(out)))
    assert row["id"] == "1" and len(row["predicted_tags"].split()) == 5
    assert "predicted_entities" in row


@pytest.mark.slow
def test_cli_train_and_predict_with_the_default_model(tmp_path):
    out = tmp_path / "run"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "finetuner", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    proc = cli("train", "--task", "ner", "--data", EXAMPLES / "ner.conll", "--max-steps", "10",
               "--batch-size", "16", "--evals-per-epoch", "1", "--output", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Rows: train 160, validation 20, test 20" in proc.stdout
    assert "Labels (train): LOC:" in proc.stdout and "Test: f1" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    assert results["status"] == "completed" and results["test"]["token_accuracy"] > 0.5
    proc = cli("predict", "--run", out, "--text", "Angela Merkel visited Paris", "--json")
    assert proc.returncode == 0, proc.stderr
    pred = json.loads(proc.stdout.splitlines()[0])
    assert pred["text"] == "Angela Merkel visited Paris" and "entities" in pred
    assert pred["tags"][0] in ("B-PER", "O", "B-ORG", "B-LOC", "B-MISC")
    proc = cli("predict", "--run", out, "--text", "Maria Lindqvist flew to Oslo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("\tMaria Lindqvist flew to Oslo")


CONLL2003 = SHARED_DATA / "conll2003" / "train.txt"


@pytest.mark.skipif(not CONLL2003.exists(), reason="../shared/data/conll2003 is absent")
def test_conll2003_train_parses_into_14041_sentences():
    source = ner.read_sentences(CONLL2003, cfg(CONLL2003).data)
    assert len(source.sentences) == 14041
    assert source.columns["tags"] == "column 4" and source.scheme == "BIO"
    assert sum(ner.entity_types(source.sentences).values()) == 23499
