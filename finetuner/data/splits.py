"""Splitting examples and the shared parts of the data report.

Owns: cell values as text and labels, seeded stratified or grouped splits, duplicate and
leakage counts, token-length statistics (on a seeded sample of large data), the `Finding` and
`DataReport` records, and finding columns by name. Reading files is `finetuner.data.tables`. Task
modules (`finetuner.tasks`) build on these. Imports neither torch nor transformers.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import pandas as pd

from finetuner.english import plural
from finetuner.errors import DataError

TOKEN_SAMPLE_ROWS = 20_000  # the data check counts tokens on at most this many examples


@dataclass
class Finding:
    """One line of the data report: level is 'warning' or 'info'."""

    level: str
    code: str
    message: str


# ---------------------------------------------------------------------------- values


def clean_text(value: object) -> str:
    """A cell as text; missing values become ''."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value).strip()


def clean_label(value: object) -> str:
    """A label as its name: 1, 1.0 and '1' all become '1'; missing becomes ''."""
    if value is None or isinstance(value, (list, dict)):
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def sort_labels(labels: Sequence[str]) -> list[str]:
    """Numbers in numeric order, otherwise alphabetical."""
    unique = sorted(set(labels))
    try:
        return sorted(unique, key=float)
    except ValueError:
        return unique


def require_columns(frame: pd.DataFrame, names: Sequence[str | None], file_name: str) -> None:
    missing = [n for n in names if n and n not in frame.columns]
    if missing:
        raise DataError(
            f"Column '{missing[0]}' is not in '{file_name}'.",
            f"The columns are: {', '.join(map(str, frame.columns))}.",
            code="missing_column",
        )


# ---------------------------------------------------------------------------- splitting


def split_indices(
    n: int,
    fractions: tuple[float, float],
    seed: int,
    strata: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
) -> tuple[list[int], list[int], list[int]]:
    """Seeded train / validation / test indices.

    With `groups`, whole groups move together, so that no group (identical texts, a paragraph,
    a document) sits in two parts. With `strata`, each class (the stratum of a group's first
    member) is cut in the same proportions; every class with at least 3 groups lands in all
    three parts. A zero fraction gives an empty part.
    """
    val_frac, test_frac = fractions
    keys = list(groups) if groups is not None else list(range(n))
    members: dict = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    buckets: dict[str, list] = {}
    for key, idx in members.items():
        buckets.setdefault(strata[idx[0]] if strata is not None else "", []).append(key)
    rng = random.Random(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for stratum in sorted(buckets):
        units = sorted(buckets[stratum], key=str)
        rng.shuffle(units)
        for part, chosen in zip(parts, _cut(units, val_frac, test_frac)):
            part.extend(i for unit in chosen for i in members[unit])
    return sorted(parts[0]), sorted(parts[1]), sorted(parts[2])


def _cut(items: list, val_frac: float, test_frac: float) -> tuple[list, list, list]:
    n = len(items)
    n_test = round(n * test_frac)
    n_val = round(n * val_frac)
    if n >= 3:  # keep every class in every part when it can be done
        n_test = max(n_test, 1) if test_frac > 0 else 0
        n_val = max(n_val, 1) if val_frac > 0 else 0
    while n - n_test - n_val < 1 and (n_test or n_val):
        if n_test >= n_val and n_test:
            n_test -= 1
        else:
            n_val -= 1
    test = items[:n_test]
    val = items[n_test : n_test + n_val]
    return items[n_test + n_val :], val, test


# ---------------------------------------------------------------------------- report parts


def duplicate_count(keys: Sequence[str]) -> int:
    counts = Counter(keys)
    return sum(c - 1 for c in counts.values() if c > 1)


def shared_count(train_keys: Sequence[str], other_keys: Sequence[str]) -> int:
    seen = set(train_keys)
    return sum(1 for k in other_keys if k in seen)


def leakage_findings(train_keys: Sequence[str], splits: dict, key, rows: str,
                     appear: str = "in the training data") -> tuple[dict, list]:
    """Counts per held-out split of examples (by `key`) that are also training examples, and
    a warning for each split that has any.

    `rows` names one example ("row", "sentence"); `appear` says where they repeat."""
    counts, findings = {}, []
    for split in ("validation", "test"):
        n = counts[split] = shared_count(train_keys, [key(e) for e in splits[split]])
        if n:
            findings.append(Finding(
                "warning", "leakage",
                f"{plural(n, f'{split} {rows}')} also {'appears' if n == 1 else 'appear'} "
                f"{appear}, so {split} scores will be too optimistic. "
                f"Remove them from the {split} file."))
    return counts, findings


def sample_indices(n: int, limit: int = TOKEN_SAMPLE_ROWS, seed: int = 0) -> list[int]:
    """All of range(n), or a seeded random `limit` of them in order: the data check tokenises
    a bounded amount however large the file is."""
    if n <= limit:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), limit))


def token_sample(items: Sequence, limit: int = TOKEN_SAMPLE_ROWS, seed: int = 0) -> list:
    return [items[i] for i in sample_indices(len(items), limit, seed)]


def length_stats(lengths: Sequence[int], max_length: int, of: int | None = None) -> dict:
    """Token-length percentiles and the share of examples cut at max_length; `of`: how many
    examples there are when `lengths` is a sample of them (the counts are then estimates)."""
    if not lengths:
        return {}
    ordered = sorted(lengths)

    def pct(p: float) -> int:
        return int(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))])

    truncated = sum(1 for x in lengths if x > max_length)
    return {
        "p50": pct(50),
        "p90": pct(90),
        "p95": pct(95),
        "p99": pct(99),
        "max": int(ordered[-1]),
        "mean": round(sum(ordered) / len(ordered), 1),
        "max_length": max_length,
        "truncated": truncated,
        "truncated_share": round(truncated / len(lengths), 4),
        **({"sample": len(lengths), "of": of,
            "truncated": round(truncated / len(lengths) * of)}
           if of and of > len(lengths) else {}),
    }


def sample_note(stats: dict) -> str:
    """' (from a random sample of 20,000 of 1,200,000 examples)' when the statistics are."""
    if not stats or not stats.get("sample"):
        return ""
    return f" (from a random sample of {stats['sample']:,} of {stats['of']:,} examples)"


def truncation_finding(stats: dict) -> Finding | None:
    if not stats or stats["truncated"] == 0:
        return None
    share = stats["truncated_share"]
    level = "warning" if share >= 0.05 else "info"
    about = "About " if stats.get("sample") else ""
    return Finding(
        level,
        "truncation",
        f"{about}{plural(stats['truncated'], 'example')} ({share:.1%}) are longer than "
        "max_length "
        f"{stats['max_length']} tokens and will be cut (the longest has {stats['max']})"
        f"{sample_note(stats)}. "
        + ("Raise max_length (costs time) if the end of long texts matters."
           if level == "warning" else "That few is harmless."),
    )


@dataclass
class DataReport:
    """What the data checks found; JSON-serialisable, rendered by the CLI and the app."""

    task: str
    columns: dict
    rows: dict
    dropped: dict = field(default_factory=dict)
    labels: list = field(default_factory=list)
    label_counts: dict = field(default_factory=dict)
    token_lengths: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def warnings(self) -> list[str]:
        return [f.message for f in self.findings if f.level == "warning"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> DataReport:
        raw = dict(raw)
        raw["findings"] = [Finding(**f) for f in raw.get("findings", [])]
        return cls(**raw)

    def summary_lines(self) -> list[str]:
        rows = ", ".join(f"{k} {v:,}" for k, v in self.rows.items())
        lines = [f"Rows: {rows}"]
        cols = ", ".join(f"{role}='{col}'" for role, col in self.columns.items() if col)
        lines.append(f"Columns: {cols}")
        if self.dropped:
            lines.append("Dropped: " + ", ".join(f"{n} {why}" for why, n in self.dropped.items()))
        if self.label_counts.get("train"):
            counts = ", ".join(f"{k}: {v}" for k, v in self.label_counts["train"].items())
            lines.append(f"Labels (train): {counts}")
        if self.token_lengths:
            t = self.token_lengths
            # tasks that read long inputs in overlapping windows (QA) cut nothing
            fate = "read in windows" if "windows_mean" in t else "cut"
            lines.append(
                f"Tokens: median {t['p50']}, p95 {t['p95']}, max {t['max']}; "
                f"{t['truncated_share']:.1%} {fate} at {t['max_length']}{sample_note(t)}"
            )
        for finding in self.findings:
            lines.append(f"{finding.level.upper()}: {finding.message}")
        return lines


TokenCounter = Callable[[list[str], list[str] | None], list[int]]


def column_by_name(columns: Sequence[str], names: Sequence[str], taken: Sequence[str] = ()
                   ) -> str | None:
    """The first column whose lower-cased name is one of `names` (in their order), skipping
    columns already `taken`; None when none matches."""
    lower = {str(c).lower(): c for c in columns if c not in taken}
    return next((lower[n] for n in names if n in lower), None)
