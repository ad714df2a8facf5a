"""One run on 1 vs N processes (torchrun + DDP): training samples/s and the final numbers.

On this 2-core CPU two gloo processes share the same two cores, so no speed-up is expected;
the point is that the run is the same run (losses, kept checkpoint, test score). On a GPU
machine, N is the number of GPUs. Usage:

    python bench/ddp.py [--processes 2] [--train-rows 1000] [--max-steps 60]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, device_tag, run_studio  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", default=str(ROOT / "examples" / "sentiment.csv"))
    args = parser.parse_args()
    out = ROOT / "bench" / "out" / "ddp"
    rows = []
    for n in (1, args.processes):
        run_dir = out / f"p{n}"
        cmd = [sys.executable, "-m", "finetuner", "train", "--data", args.data,
               "--gpus", str(n), "--max-steps", str(args.max_steps), "--batch-size",
               str(args.batch_size), "--dropout", "0", "--evals-per-epoch", "4",
               "--output", str(run_dir), "--overwrite", "--quiet"]
        results, wall = run_studio(cmd, run_dir, f"{n} process(es)")
        evals = [e for e in map(json.loads, (run_dir / "events.jsonl").read_text()
                                .splitlines()) if e["type"] == "eval"]
        timing = results["timing"]
        rows.append({"processes": n, "samples_per_second": timing["train_samples_per_second"],
                     "train_seconds": timing["train_seconds"], "wall_seconds": round(wall, 1),
                     "test_accuracy": results["test"]["accuracy"],
                     "last_eval_loss": evals[-1]["eval_loss"], "best_step":
                     results.get("best_step"), "device": timing["device"]})
    base = rows[0]
    for r in rows:
        r["speed_ratio"] = round(r["samples_per_second"] / base["samples_per_second"], 2)
        r["eval_loss_diff"] = round(abs(r["last_eval_loss"] - base["last_eval_loss"]), 6)
    print("| processes | samples/s | ratio | train s | wall s | test accuracy | last eval loss |"
          " |diff| |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['samples_per_second']} | {r['speed_ratio']} | "
              f"{r['train_seconds']} | {r['wall_seconds']} | {r['test_accuracy']:.4f} | "
              f"{r['last_eval_loss']:.6f} | {r['eval_loss_diff']} |")
    results_dir = ROOT / "bench" / "results"
    results_dir.mkdir(exist_ok=True)
    (results_dir / f"ddp-{device_tag()}.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
