"""Multi-label benchmark on CoNLL-2003 sentences: the studio's `--task multi-label` against a
plain Trainer script (BCE, threshold 0.5).

    python bench/multilabel.py              # 3,000 sentences, 2 epochs (about 9 min, 2 AVX2 cores)
    python bench/multilabel.py --train-rows 300 --validation-rows 100 --test-rows 100 \
        --max-steps 10 --json bench/out/multilabel-smoke.json   # smoke test (about 85 s)

The set (bench/conll_sets.py): each sentence of ../shared/data/conll2003 is one text (its
tokens joined by spaces); its labels are the entity types present in it (PER, ORG, LOC, MISC)
joined by ";", empty when it names none (about a fifth of the sentences). Train: a random
sample of --train-rows sentences of train.txt (seed 0; 0 = all 14,041); validation: a sample of
valid.txt (the studio picks its checkpoint and tunes one threshold per label on it; the plain
script ignores it); test: a sample of test.txt (0 = all 3,453), scored once. The derived CSVs go
to --out (git-ignored), never into the repository.

Both sides run one after the other on the same machine and data with the same epochs, batch
size, max length and learning rate (the studio's default for full fine-tuning unless --lr is
given). The studio runs through its real CLI and worker with its defaults otherwise; the plain
script (bench/plain_multilabel.py) is transformers.Trainer defaults with dynamic padding, fp32,
threshold 0.5 for every label. Prints a Markdown table and writes the numbers to --json
(default bench/results/multilabel-<cpu|gpu>-<date>.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import (  # noqa: E402
    add_run_args,
    results_path,
    run_plain,
    run_studio,
    sample,
    timing_row,
    write_csv,
)
from conll_sets import TYPES, sentence_rows  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "conll2003"


def label_shares(rows: list[dict]) -> dict:
    n = max(1, len(rows))
    out = {t: round(sum(t in r["labels"].split(";") for r in rows) / n, 3) for t in TYPES}
    out["(none)"] = round(sum(not r["labels"] for r in rows) / n, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-rows", type=int, default=3000, help="0 = all 14,041 sentences")
    ap.add_argument("--validation-rows", type=int, default=500, help="0 = all 3,250")
    ap.add_argument("--test-rows", type=int, default=0, help="0 = all 3,453")
    add_run_args(ap, "multilabel")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    if not (data / "train.txt").exists():
        raise SystemExit(f"CoNLL-2003 not found in {data} (needs train/valid/test.txt).")
    splits = {"train": sample(sentence_rows(data / "train.txt"), args.train_rows),
              "validation": sample(sentence_rows(data / "valid.txt"), args.validation_rows),
              "test": sample(sentence_rows(data / "test.txt"), args.test_rows)}
    files = {name: write_csv(rows, out / "data" / f"{name}.csv", ["text", "labels"])
             for name, rows in splits.items()}
    run_dir = out / f"studio-{args.method}"
    cmd = [sys.executable, "-m", "finetuner", "train", "--task", "multi-label",
           "--data", str(files["train"]), "--validation", str(files["validation"]),
           "--test", str(files["test"]), "--text-column", "text", "--label-column", "labels",
           "--method", args.method, "--epochs", str(args.epochs),
           "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
           "--output", str(run_dir), "--overwrite", "--quiet"]
    if args.lr is not None:
        cmd += ["--lr", str(args.lr)]
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    results, wall = run_studio(cmd, run_dir, f"studio {args.method}")
    timing, test = results["timing"], results["test"]
    lr = timing.get("learning_rate") or args.lr
    rows = [{"name": f"studio {args.method} (thresholds tuned on validation)",
             "epochs": args.epochs,
             "test": {"micro_f1": test["micro_f1"], "macro_f1": test["macro_f1"],
                      "subset_accuracy": test["subset_accuracy"],
                      "per_label_f1": {n: v["f1"] for n, v in test["per_label"].items()}},
             "thresholds": results.get("thresholds"),
             "validation_micro_f1": results["validation"].get("micro_f1"),
             **timing_row(results, wall, args.lr),}]
    print(json.dumps(rows[-1]), flush=True)
    if not args.no_plain:
        rows.append(run_plain("plain_multilabel.py", files, args, lr))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[-1] if len(rows) > 1 else None
    sizes = ", ".join(f"{k} {len(v):,}" for k, v in splits.items())
    print(f"\nCoNLL-2003 sentences -> entity types present (multi-label; {sizes} sentences), "
          f"{args.epochs:g} epoch(s), lr {lr}, batch {args.batch_size}, max length "
          f"{args.max_length}, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}\n")
    print("| run | test micro-F1 | test macro-F1 | subset accuracy | "
          + " | ".join(f"{t} F1" for t in TYPES)
          + " | thresholds | steps | train samples/s | x plain | train s | wall s | "
            "wall x plain |")
    print("|" + "---|" * (11 + len(TYPES)))
    for r in rows:
        t = r["test"]
        thr = ", ".join(f"{k} {v:g}" for k, v in (r.get("thresholds") or {}).items())
        speed = (f"{r['train_samples_per_second'] / base['train_samples_per_second']:.2f}x"
                 if base else "n/a")
        walls = f"{base['wall_seconds'] / r['wall_seconds']:.2f}x" if base else "n/a"
        per = " | ".join(f"{t['per_label_f1'].get(x, 0.0):.4f}" for x in TYPES)
        print(f"| {r['name']} | {t['micro_f1']:.4f} | {t['macro_f1']:.4f} | "
              f"{t['subset_accuracy']:.4f} | {per} | {thr} | {r['steps']} | "
              f"{r['train_samples_per_second']} | {speed} | {r['train_seconds']} | "
              f"{r['wall_seconds']} | {walls} |")
    print("\n(x plain: samples/s over the plain script's; wall x plain: the plain script's wall "
          "seconds over this run's, >1 = faster.)")
    target = results_path(args, "multilabel")
    target.write_text(json.dumps({"args": vars(args), "label_shares": {
        k: label_shares(v) for k, v in splits.items()}, "rows": rows}, indent=2))
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
