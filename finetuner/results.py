"""RUN_DIR/results.json as one typed record: `Results`, with a versioned JSON round trip.

`read_results(path)` and `write_results(path, results)` are the only reader and writer of
results.json in the studio (the worker, the job manager, the workspace, the UI). A record is
a dataclass with a field for everything a run reports, and also reads like the plain dict it
is stored as (`results.get("test")`, `results["status"] = ...`), so the pages and the CLI
render it without conversions. Files written before the record had a version (version 1)
load unchanged: unknown keys are kept in `extra` and written back as they were.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VERSION = 2


@dataclass(eq=False)
class Results(MutableMapping):
    """What a run reports. Only `status` is always set: a run that failed early has little
    else; `error` is {code, message, remedy} then."""

    status: str = "created"
    task: str | None = None
    method: str | None = None
    model: str | None = None
    base_model: str | None = None
    labels: list | None = None
    metric: str | None = None  # the primary metric that picked the kept checkpoint
    test: dict | None = None  # the held-out split, scored once
    validation: dict | None = None  # the kept checkpoint's validation scores
    diagnosis: dict | None = None
    params: dict | None = None
    timing: dict | None = None
    best_step: int | None = None
    early_stopped: bool | None = None
    precision: str | None = None
    data: dict | None = None  # rows per split
    baselines: dict | None = None
    calibration: dict | None = None
    temperature: float | None = None
    label_issues: dict | None = None
    thresholds: dict | None = None  # multi-label: tuned on validation
    # multi-label: the rule that set them and each rule's micro-F1 on halves of validation
    # ({"rule": ..., "check": {rule: micro-F1}}; metrics.multilabel.choose_thresholds)
    threshold_rule: dict | None = None
    note: str | None = None
    error: dict | None = None
    model_dir: str | None = None
    model_zip: str | None = None
    finished: str | None = None
    peak_memory_mb: float | None = None
    stop_seconds: float | None = None
    limit: str | None = None
    resumable: bool | None = None
    # where each experiment tracker wrote (finetuner.training.trackers)
    trackers: dict | None = None
    # the head fitted on frozen features before fine-tuning (heads.fit_head): its L2
    # strength, validation score, pooling; None where the task has no sentence-level head
    head_start: dict | None = None
    extra: dict = field(default_factory=dict)  # keys this version does not know
    version: int = VERSION

    # -- the dict view
    def _names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if f.name != "extra"]

    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self._names():
            setattr(self, key, value)
        else:
            self.extra[key] = value

    def __delitem__(self, key: str) -> None:
        if key in self.extra:
            del self.extra[key]
        elif key in self._names():
            setattr(self, key, None)
        else:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        yield from self._names()
        yield from self.extra

    def __len__(self) -> int:
        return len(self._names()) + len(self.extra)

    def setdefault(self, key: str, default: Any = None) -> Any:
        """As for a dict: a field that is None counts as not set."""
        if key not in self:
            self[key] = default
        return self[key]

    def __contains__(self, key: object) -> bool:
        return key in self.extra or (key in self._names() and getattr(self, key) is not None)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MutableMapping):
            return self.to_dict() == (other.to_dict() if isinstance(other, Results)
                                      else dict(other))
        return NotImplemented

    # -- JSON
    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in self._names()}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, raw: dict | Results | None) -> Results:
        if isinstance(raw, Results):
            return raw
        raw = dict(raw or {})
        raw.pop("version", None)  # version 1 had none; every version so far reads the same
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in raw.items() if k in names}
        extra = {k: v for k, v in raw.items() if k not in names}
        return cls(**known, extra=extra)


def read_results(path: str | Path) -> Results | None:
    """The run's results, or None when it has none (yet) or the file is unreadable."""
    from finetuner.runs import read_json

    raw = read_json(path)
    return Results.from_dict(raw) if isinstance(raw, dict) else None


def write_results(path: str | Path, results: Results | dict) -> Results:
    """Write atomically (see runs.write_json); returns the typed record."""
    from finetuner.runs import write_json

    record = Results.from_dict(results)
    write_json(path, record.to_dict())
    return record
