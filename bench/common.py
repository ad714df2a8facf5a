"""What the benchmarks share: run the studio's CLI or a plain script and read what it made."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_studio(cmd: list[str], run_dir: Path, name: str, cwd: Path | None = None
               ) -> tuple[dict, float]:
    """Run `python -m finetuner train ...` (in `cwd`, another checkout, when given); its
    results.json and the wall seconds.

    Exits with the CLI's output when the run did not complete."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd or ROOT, capture_output=True, text=True)
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


def device_tag() -> str:
    """'gpu' or 'cpu', for the name of a results file."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def sample(rows: list[dict], n: int, seed: int = 0) -> list[dict]:
    """A seeded random n of the rows, in their order (all of them when n is 0 or too big)."""
    import random

    if not n or n >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in keep]


def write_csv(rows: list[dict], path: Path, fields: list[str]) -> Path:
    """A derived data file for a run (under bench/out, git-ignored; never in the repo)."""
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


def add_run_args(ap, name: str, epochs: float = 2.0, batch_size: int = 32) -> None:
    """The options every studio-vs-plain benchmark takes, with the same meaning."""
    ap.add_argument("--epochs", type=float, default=epochs)
    ap.add_argument("--lr", type=float, default=None, help="default: the studio's default")
    ap.add_argument("--batch-size", type=int, default=batch_size)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-steps", type=int, default=0,
                    help="cap on steps, every run (0 = none)")
    ap.add_argument("--method", default="full")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain script")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / name))
    ap.add_argument("--json", default="", help="where the numbers go (default bench/results/)")


def results_path(args, name: str) -> Path:
    """--json, else bench/results/<name>-<cpu|gpu>-<date>.json."""
    target = Path(args.json) if args.json else (
        ROOT / "bench" / "results" / f"{name}-{device_tag()}-{time.strftime('%Y-%m-%d')}.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def timing_row(results: dict, wall: float, lr: float | None) -> dict:
    """The speed and schedule columns of a studio run's row."""
    timing = results["timing"]
    return {"steps": timing["steps"], "best_step": results.get("best_step"),
            "early_stopped": results.get("early_stopped"),
            "train_samples_per_second": timing["train_samples_per_second"],
            "train_seconds": timing["train_seconds"], "eval_seconds": timing["eval_seconds"],
            "wall_seconds": round(wall, 1), "precision": results["precision"],
            "learning_rate": timing.get("learning_rate") or lr,
            "batch_size": timing.get("batch_size")}


def run_plain(script: str, files: dict, args, lr: float) -> dict:
    """The plain transformers.Trainer script beside the studio: same files, epochs, learning
    rate, batch size, max length and step cap."""
    import sys

    return run_script([sys.executable, str(ROOT / "bench" / script),
                       "--train", str(files["train"]), "--test", str(files["test"]),
                       "--epochs", str(args.epochs), "--lr", str(lr),
                       "--batch-size", str(args.batch_size), "--max-length",
                       str(args.max_length), "--max-steps", str(args.max_steps or -1)])
