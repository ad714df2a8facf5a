"""What the benchmarks share: run the studio's CLI or a plain script and read what it made."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_studio(cmd: list[str], run_dir: Path, name: str) -> tuple[dict, float]:
    """Run `python -m finetuner train ...`; its results.json and the wall seconds.

    Exits with the CLI's output when the run did not complete."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    path = Path(run_dir) / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if proc.returncode != 0 or results.get("status") != "completed":
        raise SystemExit(f"{name} failed:\n{proc.stdout}\n{proc.stderr}")
    return results, wall


def run_script(cmd: list[str]) -> dict:
    """Run a plain baseline script that prints one JSON line last; that row plus wall s."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"plain script failed:\n{proc.stderr[-3000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return row
