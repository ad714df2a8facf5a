"""The state one training run carries between its steps: the run's context (folder, config,
events, stop check, trackers) and what preparing it built (data, model, features). Shared by
`training` (which builds them) and `finishing` (which reads them), below both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from finetuner.config import RunConfig
from finetuner.runs import EventWriter, RunPaths
from finetuner.tasks.options import TaskOptions


@dataclass
class Context:
    run: RunPaths
    config: RunConfig
    events: EventWriter
    should_stop: Callable[[], bool]
    reporter: object | None = None  # trackers.Reporter  # experiment trackers, when the config asks
    # the splits an ONNX export is checked on, set by finish() when the config asks for one;
    # the worker exports after results.json is written (a stop then never costs the run)
    onnx_splits: dict | None = None



@dataclass
class Prepared:
    """Everything the training loop needs, built once per run."""

    spec: object
    impl: object
    source: object
    tokenizer: object
    data: object
    model: object
    params: dict
    splits: dict
    feats: dict
    options: TaskOptions
    collate: Callable
    head_start: dict | None = None  # what heads.fit_head did (empty: no probe)
