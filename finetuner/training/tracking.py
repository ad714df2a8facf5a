"""What is known about the experiment trackers without starting one: whether each library is
installed (and the sentence when it is not, before a run starts), a run's config as flat
settings, the verdict as Markdown and how to look at a finished run's record. The reporting
itself is `trackers.Reporter`. Imports no tracker library."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError

PROJECT = "finetuner"  # trackio's project and MLflow's experiment (unless set by the admin)
MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio"}
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "trackio": "trackio"}
INSTALL = "pip install -r requirements-trackers.txt"


def installed(module: str) -> bool:
    """Whether a tracker's library can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing(names: list[str]) -> list[str]:
    return [name for name in names if not installed(MODULES[name])]


def check(names: list[str]) -> None:
    """One sentence when a tracker asked for is not installed, before anything else runs."""
    absent = missing(names)
    if not absent:
        return
    packages = " and ".join(PACKAGES[name] for name in absent)
    raise FinetunerError(
        f"--report-to {','.join(absent)} needs the {packages} "
        f"package{'s' if len(absent) > 1 else ''}: {INSTALL}.",
        f"Or leave {' and '.join(absent)} out of the trackers to report to.",
        code="tracker_missing")


def _portable(value: str | None) -> str | None:
    """A file or folder by its own name, never its path on the server."""
    if not value:
        return value
    return Path(value).name if os.path.isabs(value) or os.path.exists(value) else value


def flat_config(config: RunConfig) -> dict:
    """The run's config as flat `section.name` settings (lists comma-joined); data files and
    a local model folder by their own names."""
    raw = config.to_dict()
    for key in ("train_file", "validation_file", "test_file"):
        raw["data"][key] = _portable(raw["data"].get(key))
    raw["model"]["name_or_path"] = raw["model"].get("label") or _portable(
        raw["model"]["name_or_path"])
    out = {}
    for section, value in raw.items():
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for name, item in items:
            key = section if name is None else f"{section}.{name}"
            out[key] = ",".join(map(str, item)) if isinstance(item, list) else item
    return out


def verdict_text(diagnosis: dict | None) -> str:
    """The verdict as Markdown: title, evidence, remedies."""
    d = diagnosis or {}
    if not d:
        return ""
    lines = [f"**{d.get('title') or d.get('verdict')}** ({d.get('verdict')})", ""]
    lines += [f"- {line}" for line in d.get("evidence") or []]
    if d.get("remedies"):
        lines += ["", "What to try:"] + [f"- {line}" for line in d["remedies"]]
    return "\n".join(lines)


def summary_lines(trackers: dict | None) -> list[str]:
    """How to look at each tracker's record of a finished run (for the CLI)."""
    return [f"{name}: {info['view']}" for name, info in (trackers or {}).items()
            if isinstance(info, dict) and info.get("view")]
