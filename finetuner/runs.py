"""The run directory: the one on-disk protocol between the app, the CLI and the worker.

    RUN_DIR/config.json        the RunConfig that reproduces the run
    RUN_DIR/events.jsonl       one JSON event per line, appended by the worker
    RUN_DIR/worker.log         the worker's stdout and stderr
    RUN_DIR/data_report.json   what the data checks found
    RUN_DIR/results.json       status, metrics, diagnosis, params, timing (written last)
    RUN_DIR/predictions.jsonl  test rows with the model's answers
    RUN_DIR/model/             the exported model (loads with plain transformers)
    RUN_DIR/STOP               present once a stop was requested

Everything a user sees can be rebuilt from these files. No torch here.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.naming import safe_filename

FINAL_STATUSES = ("completed", "stopped", "failed", "interrupted")


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def id(self) -> str:
        return self.root.name

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def log(self) -> Path:
        return self.root / "worker.log"

    @property
    def data_report(self) -> Path:
        return self.root / "data_report.json"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.jsonl"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def stop_flag(self) -> Path:
        return self.root / "STOP"

    def load_config(self) -> RunConfig:
        return RunConfig.load(self.config)


RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{16}$")  # what new_run_id makes


def new_run_id() -> str:
    """Sortable by time, unguessable by anyone else (64 random bits)."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(8)


def create_run(root: str | Path, config: RunConfig, run_id: str | None = None) -> RunPaths:
    """Make RUN_DIR under `root` (or at `root` itself when run_id is '') and write config."""
    base = Path(root)
    run = RunPaths(base if run_id == "" else base / (run_id or new_run_id()))
    run.root.mkdir(parents=True, exist_ok=True)
    for stale in (run.results, run.events, run.stop_flag, run.predictions, run.data_report):
        if stale.exists():
            stale.unlink()
    config.save(run.config)
    return run


def copy_data(config: RunConfig, dest: Path) -> RunConfig:
    """The config with its data files copied into `dest` (train-, validation-, test- plus the
    file's own safe name), so the run or group keeps its data whatever happens to the upload."""
    raw = config.to_dict()
    dest.mkdir(parents=True, exist_ok=True)
    for key in ("train_file", "validation_file", "test_file"):
        src = raw["data"].get(key)
        if src:
            target = dest / f"{key.split('_')[0]}-{safe_filename(src)}"
            shutil.copyfile(src, target)
            raw["data"][key] = str(target)
    return RunConfig.from_dict(raw)


def write_json(path: Path, value: dict) -> None:
    """Write atomically, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class EventWriter:
    """Appends events; each line is flushed so that readers follow along.

    `echo` receives every event too (the worker prints a readable line to its log), and so
    does each function in `listeners` (the experiment trackers follow the evaluations)."""

    def __init__(self, path: Path, echo=None) -> None:
        self.path = path
        self.echo = echo
        self.listeners: list = []

    def emit(self, type_: str, **fields) -> dict:
        event = {"type": type_, "time": round(time.time(), 3), **fields}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, default=str) + "\n")
        if self.echo is not None:
            self.echo(event)
        for listener in list(self.listeners):
            listener(event)
        return event


def read_events(path: Path, offset: int = 0) -> tuple[list[dict], int]:
    """Events from byte `offset` on, and the offset to continue from (skips a partial line)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except OSError:
        return [], offset
    events = []
    end = chunk.rfind(b"\n") + 1
    for line in chunk[:end].splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, offset + end


def tail(path: Path, lines: int = 40, max_bytes: int = 64_000) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


def format_event(e: dict) -> str | None:
    """One line of a run's log for an event (the CLI and the worker's log print it)."""
    kind = e.get("type")
    if kind == "status" and e.get("message"):
        return f"[{e['state']}] {e['message']}"
    if kind == "model":
        p = e["params"]
        return (f"[model] {e['source']}, method {e['method']}: {p['trainable']:,} of "
                f"{p['total']:,} parameters trainable ({p['trainable_share']:.2%})")
    if kind == "progress":
        return (f"step {e['step']}/{e['total_steps']} epoch {e['epoch']:.2f} loss "
                f"{e['loss']:.4f} lr {e.get('learning_rate') or 0:.2e} "
                f"{e['samples_per_second']:.0f} samples/s ETA {_eta(e['eta_seconds'])}")
    if kind == "eval":
        val = " ".join(f"{k} {v:.4f}" for k, v in e["validation"].items() if v is not None)
        train = e["train"].get(e["metric"])
        star = " *best*" if e.get("best") else ""
        extra = f" | train {e['metric']} {train:.4f}" if train is not None else ""
        return f"eval step {e['step']}: validation {val}{extra}{star}"
    if kind == "warning":
        return f"[warning] {e.get('message', '')}"
    if kind == "early_stop":
        return f"[early stop] no improvement for {e['patience']} evaluations; best step " \
               f"{e['best_step']}"
    return None


def latest_checkpoint(run: RunPaths) -> Path | None:
    """The newest complete checkpoint (the Trainer writes trainer_state.json last, so a
    folder without it was cut off mid-save)."""
    folder = run.root / "checkpoints"
    found = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").exists()] \
        if folder.exists() else []
    return max(found, key=lambda p: int(p.name.split("-")[-1])) if found else None
