"""The preparation every task shares, written once: read the training file and any given
validation and test files, hold out the missing parts of the training file (seeded, with
whole groups kept together and, where a task stratifies, each class cut in proportion), then
refuse data too small to hold out either part, and apply a server's row cap before anything
is tokenised. Each task's `prepare` supplies only how a file is read, its groups and strata,
and its own checks and report.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable, Sequence

from finetuner.config import DataConfig
from finetuner.data.splits import split_indices
from finetuner.errors import DataError

SPLITS = ("train", "validation", "test")


def read_splits(data: DataConfig, read: Callable[[str], list[dict]]) -> dict[str, list[dict]]:
    """{"train", "validation", "test"}: the examples of each given file (empty when none)."""
    splits = {"train": read(data.train_file), "validation": [], "test": []}
    for split in ("validation", "test"):
        path = getattr(data, f"{split}_file")
        if path:
            splits[split] = read(path)
    return splits


def missing_parts(splits: dict, data: DataConfig) -> tuple[float, float]:
    """The validation and test fractions still to cut from the training file (0 where a file
    was given)."""
    return tuple(0.0 if splits[s] else getattr(data, f"{s}_split")  # type: ignore[return-value]
                 for s in ("validation", "test"))


def hold_out(splits: dict, data: DataConfig, seed: int, strata: Sequence | None = None,
             groups: Sequence | None = None) -> bool:
    """Cut the missing validation / test parts from the training examples, in place; False
    when every part came from its own file."""
    need = missing_parts(splits, data)
    if not any(need):
        return False
    train = splits["train"]
    parts = split_indices(len(train), need, seed, strata=strata, groups=groups)
    for name, index in zip(SPLITS, parts):
        if name == "train" or not splits[name]:
            splits[name] = [train[i] for i in index]
    return True


def require_held_out(splits: dict, message: str, fix: str,
                     check_rows: Callable[[int], None] | None = None) -> None:
    """A validation and a test part are both needed (one picks the checkpoint, the other is
    scored once); then the server's row cap, before any tokenising."""
    if not splits["validation"] or not splits["test"]:
        raise DataError(message, fix, code="too_small")
    if check_rows is not None:
        check_rows(sum(len(v) for v in splits.values()))


def split_digest(prepared) -> str:
    """A short hash of which examples went to which split: two runs on identical splits (a
    comparison's members, a search's trials) have the same digest."""
    h = hashlib.sha256()
    for name in SPLITS:
        h.update(name.encode())
        for example in getattr(prepared, name):
            h.update(json.dumps(example, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def subsample(train: list[dict], fraction: float, seed: int) -> list[dict]:
    """The first `fraction` of each label's examples in a seeded order that does not depend on
    the fraction, so smaller subsets lie inside larger ones (a learning curve's points differ
    only by the data added). Labels that are strings are cut in proportion (at least one
    example each); other examples (entities, answers, numbers, label lists) as one group."""

    if fraction >= 1.0:
        return train
    groups: dict = {}
    for i, example in enumerate(train):
        label = example.get("label")
        groups.setdefault(label if isinstance(label, str) else None, []).append(i)
    keep: list[int] = []
    for members in groups.values():
        order = sorted(members, key=lambda i: random.Random(f"{seed}:{i}").random())
        keep += order[:max(1, math.ceil(fraction * len(order)))]
    return [train[i] for i in sorted(keep)]
