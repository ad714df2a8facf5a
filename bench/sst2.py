"""SST-2 benchmark: the studio's engine (full, LoRA, head-only) against a plain Trainer script.

    python bench/sst2.py                        # one epoch each, plain script over 150 steps
    python bench/sst2.py --methods full --plain-steps 0   # plain script for a whole epoch too
    python bench/sst2.py --subset 4000 --plain-steps 30   # a quick look
    python bench/sst2.py --methods full --plain-steps -1 --studio-args "--model all-mpnet-base-v2"
                                                # the base-size model, no plain script

Both sides run in this one process tree, one after the other, on the same machine and data:
the studio trains through its real CLI and worker process (validation: 1.5% of train.tsv,
test: dev.tsv, never used for any choice); the plain script pads every batch to 128 tokens
(the run_glue.py default). Prints a Markdown table and writes bench/out/sst2.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import run_studio  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sst2"


def run_engine(method: str, train: Path, dev: Path, out: Path, epochs: float,
               extra: tuple[str, ...] = (), tag: str = "") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / f"sst2-{method}{tag}"
    cmd = [sys.executable, "-m", "finetuner", "train", "--data", str(train), "--test", str(dev),
           "--validation-split", "0.015", "--test-split", "0", "--method", method,
           "--epochs", str(epochs), "--output", str(run_dir), "--overwrite", "--quiet", *extra]
    results, wall = run_studio(cmd, run_dir, method)
    timing = results["timing"]
    return {"name": f"studio {method}", "dev_accuracy": results["test"]["accuracy"],
            "train_samples_per_second": timing["train_samples_per_second"],
            "train_seconds": timing["train_seconds"], "eval_seconds": timing["eval_seconds"],
            "wall_seconds": round(wall, 1), "steps": timing["steps"],
            "trainable": results["params"]["trainable"], "precision": results["precision"],
            "peak_memory_mb": results.get("peak_memory_mb"), "device": timing.get("device"),
            "batch_size": timing.get("batch_size")}


def run_plain(train: Path, dev: Path, steps: int, subset: int) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "plain_trainer.py"), "--train", str(train),
           "--dev", str(dev), "--max-steps", str(steps if steps > 0 else -1)]
    if subset:
        cmd += ["--subset", str(subset)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"plain script failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="full,lora,head")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--plain-steps", type=int, default=150,
                    help="steps of the plain script (0 = a whole epoch, about 90 min on CPU; "
                         "-1 = not run)")
    ap.add_argument("--studio-args", default="", help="more flags for the studio's train command")
    ap.add_argument("--subset", type=int, default=0, help="train on this many rows only")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    data = Path(args.data)
    if not (data / "train.tsv").exists():
        raise SystemExit(f"SST-2 not found in {data} (needs train.tsv and dev.tsv).")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    train = data / "train.tsv"
    if args.subset:
        import pandas as pd

        train = out / f"sst2-train-{args.subset}.tsv"
        pd.read_csv(data / "train.tsv", sep="\t").sample(n=args.subset, random_state=0).to_csv(
            train, sep="\t", index=False)
    rows = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        rows.append(run_engine(method, train, data / "dev.tsv", out, args.epochs,
                               tuple(shlex.split(args.studio_args))))
        print(json.dumps(rows[-1]), flush=True)
    if args.plain_steps >= 0:
        rows.append(run_plain(data / "train.tsv", data / "dev.tsv", args.plain_steps,
                              args.subset))
        print(json.dumps(rows[-1]), flush=True)
    plain = rows[-1]["train_samples_per_second"]
    print(f"\nSST-2, {args.epochs:g} epoch(s), {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print(f"studio flags: {args.studio_args or '(defaults)'}; the last row is the reference of "
          "x plain\n")
    print("| run | dev accuracy | train samples/s | x plain | train s | wall s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["train_samples_per_second"] / plain
        acc = r.get("dev_accuracy")
        print(f"| {r['name']} | {acc if acc is not None else 'n/a'} | "
              f"{r['train_samples_per_second']} | {ratio:.1f}x | {r['train_seconds']} | "
              f"{r['wall_seconds']} |")
    (out / "sst2.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
