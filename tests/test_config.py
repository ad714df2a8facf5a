"""The typed config: JSON round trip, YAML, validation with sentences."""

from __future__ import annotations

import pytest

from finetuner.config import RunConfig
from finetuner.errors import ConfigError
from finetuner.methods import DEFAULT_LEARNING_RATE


def test_round_trip_through_json(tmp_path):
    cfg = RunConfig.from_dict({
        "data": {"train_file": "a.csv", "text_pair_column": "h", "max_length": 64},
        "method": {"method": "lora", "lora_r": 4, "lora_target_modules": "query, value"},
        "training": {"epochs": 2, "learning_rate": 3e-4, "seed": 1},
    })
    assert cfg.method.lora_target_modules == ["query", "value"]
    cfg.save(tmp_path / "c.json")
    assert RunConfig.load(tmp_path / "c.json") == cfg
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_yaml_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  train_file: x.csv\nmethod:\n  method: head\ntraining:\n  epochs: 5\n")
    cfg = RunConfig.load(path)
    assert cfg.method.method == "head" and cfg.training.epochs == 5
    assert cfg.learning_rate() == 2e-2


@pytest.mark.parametrize("raw, words", [
    ({"method": {"method": "qlora"}}, "Unknown method 'qlora'"),
    ({"training": {"epochs": 0}}, "epochs is 0"),
    ({"training": {"learning_rate": 5}}, "learning_rate is 5"),
    ({"data": {"validation_split": 0.7}}, "validation_split is 0.7"),
    ({"data": {"max_length": 2}}, "max_length is 2"),
    # numpy refuses such a seed only inside the worker, after the run was accepted
    ({"training": {"seed": -5}}, "seed is -5. Use a whole number from 0 to 4294967295."),
    ({"training": {"seed": 2 ** 32}}, "seed is 4294967296"),
    ({"training": {"epoch": 3}}, "Unknown setting(s) ['epoch']"),
    ({"trainig": {}}, "Unknown setting(s) ['trainig']"),
    ({"data": {"text_column": "a", "text_pair_column": "a"}}, "both 'a'"),
])
def test_bad_settings_are_explained(raw, words):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict(raw)
    assert words in str(info.value)


def test_bad_yaml_is_explained(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid"):
        RunConfig.load(path)


def test_default_learning_rate_scales_with_the_batch():
    cfg = RunConfig.from_dict({"method": {"method": "full"}})
    assert cfg.learning_rate() == 1e-4
    assert cfg.learning_rate(128) == pytest.approx(2e-4)  # sqrt(128/32) = 2
    assert cfg.learning_rate(512) == pytest.approx(2e-4)  # at most doubled
    assert cfg.learning_rate(8) == 1e-4  # never lowered
    fixed = RunConfig.from_dict({"training": {"learning_rate": 3e-5}})
    assert fixed.learning_rate(256) == 3e-5


def test_max_length_default_depends_on_the_task():
    assert RunConfig.from_dict({}).data.max_length == 128
    assert RunConfig.from_dict({"task": "qa"}).data.max_length == 384
    assert RunConfig.from_dict({"task": "qa", "data": {"max_length": 256}}).data.max_length == 256
    # the default stride follows a short max length (a task switch racing an upload, or a
    # user's 128, is not an error); a stride the user set too long still is
    assert RunConfig.from_dict({"task": "qa", "data": {"max_length": 128}}).data.doc_stride == 32
    with pytest.raises(ConfigError, match="doc_stride is 200 with max_length 128"):
        RunConfig.from_dict({"task": "qa", "data": {"max_length": 128, "doc_stride": 200}})


def test_default_learning_rate_follows_model_size_and_method():
    from finetuner.methods import default_learning_rate

    assert default_learning_rate("full", 22_700_000) == 1e-4  # the embedded default
    assert default_learning_rate("full", 110_000_000) == 5e-5  # BERT-base
    assert default_learning_rate("full", 335_000_000) == 2e-5  # BERT-large
    assert default_learning_rate("lora", 110_000_000) == 1e-3
    assert default_learning_rate("head", 335_000_000) == DEFAULT_LEARNING_RATE["head"]
    cfg = RunConfig.from_dict({"method": {"method": "full"}})
    assert cfg.learning_rate(32, 110_000_000) == 5e-5
    assert cfg.learning_rate(128, 110_000_000) == 1e-4  # square-root rule, at most doubled
