"""Learning-rate sweep behind the defaults (methods.DEFAULT_LEARNING_RATE), per method.

    python bench/lr.py                      # 4 full, 3 LoRA, 3 head-only rates (~20 min, 2 cores)
    python bench/lr.py --methods lora --rates 1e-3,2e-3

The embedded default model (22.7M parameters) on a fixed 4,000-sentence SST-2 sample (seed 7),
2 epochs, everything else at the studio's defaults, through the real CLI and worker. The rate
is judged by the best *validation* accuracy (10% of the sample; that is what a choice may
read); the dev-set score (the test split of these runs) is printed beside it and chooses
nothing. Base- and large-size encoders cannot be measured here (no weights offline): their
defaults follow the published recipes (see methods.default_learning_rate).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import run_studio  # noqa: E402

SST2 = ROOT.parent / "shared" / "data" / "sst2"
OUT = ROOT / "bench" / "out" / "lr"
RATES = {"full": "2e-5,5e-5,1e-4,3e-4", "lora": "1e-3,2e-3,5e-3", "head": "5e-3,2e-2,5e-2"}


def sample(n: int) -> Path:
    lines = (SST2 / "train.tsv").read_text(encoding="utf-8").splitlines()
    rows = lines[1:]
    random.Random(7).shuffle(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"sst2-{n}.tsv"
    path.write_text("\n".join([lines[0], *rows[:n]]) + "\n", encoding="utf-8")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="full,lora,head")
    ap.add_argument("--rates", default="", help="comma-separated; default: per method")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--epochs", default="2")
    args = ap.parse_args()
    data = sample(args.rows)
    rows = []
    for method in args.methods.split(","):
        for rate in (args.rates or RATES[method]).split(","):
            run_dir = OUT / f"{method}-{rate}"
            cmd = [sys.executable, "-m", "finetuner", "train", "--data", str(data), "--test",
                   str(SST2 / "dev.tsv"), "--test-split", "0", "--method", method, "--lr", rate,
                   "--epochs", args.epochs, "--output", str(run_dir), "--overwrite", "--quiet"]
            results, wall = run_studio(cmd, run_dir, f"{method} {rate}")
            row = {"method": method, "lr": float(rate),
                   "validation_accuracy": results["validation"]["accuracy"],
                   "dev_accuracy": results["test"]["accuracy"],
                   "best_step": results["best_step"], "steps": results["timing"]["steps"],
                   "verdict": results["diagnosis"]["verdict"], "wall_seconds": round(wall, 1)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| method | learning rate | best validation accuracy | dev accuracy (chooses nothing) "
          "| best step / steps | verdict | wall s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['lr']:g} | {r['validation_accuracy']:.4f} | "
              f"{r['dev_accuracy']:.4f} | {r['best_step']} / {r['steps']} | {r['verdict']} | "
              f"{r['wall_seconds']} |")
    (OUT / "lr.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
