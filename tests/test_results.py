"""results.json as a typed, versioned record (finetuner.results)."""

from __future__ import annotations

import json

from finetuner.results import VERSION, Results, read_results, write_results


def test_round_trip_and_the_dict_view(tmp_path):
    record = Results(status="completed", task="regression", metric="pearson",
                     test={"pearson": 0.8, "n": 10}, thresholds=None)
    path = tmp_path / "results.json"
    write_results(path, record)
    raw = json.loads(path.read_text())
    assert raw["version"] == VERSION and raw["status"] == "completed"
    back = read_results(path)
    assert back == record and back.test == {"pearson": 0.8, "n": 10}
    assert back.get("metric") == "pearson" and back["test"]["n"] == 10
    assert "thresholds" not in back and "test" in back  # None reads as absent
    back["model_dir"] = "/x"  # a field
    back["custom"] = 1  # not a field: kept aside, written back
    back.setdefault("stop_seconds", 0.5)
    assert back.model_dir == "/x" and back.extra == {"custom": 1} and back.stop_seconds == 0.5
    assert {**back}["custom"] == 1


def test_files_written_before_the_version_still_load(tmp_path):
    old = {"status": "failed", "task": "classification", "error": {"code": "oom",
           "message": "The training ran out of memory.", "remedy": "Lower the batch size."},
           "test_headline": {"accuracy": 0.5}, "finished": "2026-11-30 10:00:00"}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(old))
    record = read_results(path)
    assert record.status == "failed" and record.error["code"] == "oom"
    assert record.extra == {"test_headline": {"accuracy": 0.5}}
    write_results(path, record)
    again = json.loads(path.read_text())
    assert {k: again[k] for k in old} == old and again["version"] == VERSION
    assert read_results(tmp_path / "none.json") is None
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert read_results(tmp_path / "bad.json") is None


def test_task_options_are_one_typed_record_that_old_exports_still_load():
    from finetuner.tasks.options import TaskOptions

    # a finetuner.json written before the record existed, with a key this version dropped
    old = {"doc_stride": 64, "max_answer_length": 12, "allow_no_answer": True,
           "some_old_key": 1}
    opts = TaskOptions.from_dict(old)
    assert (opts.doc_stride, opts.max_answer_length, opts.allow_no_answer) == (64, 12, True)
    assert not opts.windows and opts.pooling == "mean" and opts.thresholds is None
    saved = opts.to_dict()
    assert "some_old_key" not in saved and "thresholds" not in saved  # unset: left out
    assert TaskOptions.from_dict(saved) == opts
    # thresholds learned after training update the same record the evaluator holds
    same = opts.update({"thresholds": {"a": 0.3}, "thresholds_tuned": True, "unknown": 2})
    assert same is opts and opts.thresholds == {"a": 0.3} and opts.thresholds_tuned
    assert "unknown" not in opts.hooks()
    # a regression target's scale: absent keys stay absent for the hooks that test for them
    assert "target_min" not in TaskOptions().hooks()
    assert TaskOptions.from_dict({"target_min": 0.0}).hooks()["target_min"] == 0.0
