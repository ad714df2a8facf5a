"""SQuAD v1.1 QA benchmark: the studio's engine (full, LoRA) against a plain Trainer script.

    python bench/qa.py                         # 36 articles train, 12 evaluate, 1 epoch each
    python bench/qa.py --methods lora --plain-steps 100
    python bench/qa.py --train-articles 3 --eval-articles 1 --max-steps 3 --plain-steps 3  # smoke

Only the SQuAD dev file is available, so it is split by article: the first 36 articles train
(the studio holds 5% of those articles out for validation), the last 12 evaluate (the studio's
test split; never used for any choice). These scores are NOT comparable to published SQuAD dev
numbers. Both sides use max length 384 and stride 128 and are scored with the same n-best
decoding and SQuAD EM/F1; samples are features (windows). The studio trains through its real
CLI and worker with its defaults (dynamic padding, length-grouped batches, bf16 where the
hardware is fast at it, learning rate per method: full 1e-4, LoRA 2e-3); the plain script pads
every feature to 384 in fp32 with lr 3e-5 (bench/plain_qa.py). Prints a Markdown table and
writes bench/out/qa.json.
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
from common import run_script, run_studio  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "squad_v1.1" / "dev-v1.1.json"
OUT = ROOT / "bench" / "out"


def split_articles(source: Path, n_train: int, n_eval: int) -> tuple[Path, Path]:
    """First n_train articles to train, the last n_eval to evaluate (SQuAD JSON each)."""
    raw = json.loads(source.read_text())
    articles = raw["data"]
    if n_train + n_eval > len(articles):
        raise SystemExit(f"{source.name} has only {len(articles)} articles.")
    train, evaluate = articles[:n_train], articles[len(articles) - n_eval:]
    print(f"train articles ({n_train}): {', '.join(a['title'] for a in train)}")
    print(f"evaluation articles ({n_eval}): {', '.join(a['title'] for a in evaluate)}",
          flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    paths = OUT / "qa-train.json", OUT / "qa-eval.json"
    for path, part in zip(paths, (train, evaluate)):
        path.write_text(json.dumps({"version": raw.get("version"), "data": part}))
    return paths


def run_engine(method: str, train: Path, evaluate: Path, args) -> dict:
    run_dir = OUT / f"qa-{method}"
    cmd = [sys.executable, "-m", "finetuner", "train", "--task", "qa", "--data", str(train),
           "--test", str(evaluate), "--validation-split", "0.05", "--test-split", "0",
           "--max-length", "384", "--doc-stride", "128", "--method", method,
           "--batch-size", str(args.batch_size), "--epochs", str(args.epochs),
           "--output", str(run_dir), "--overwrite", "--quiet"]
    if args.max_steps:
        cmd += ["--max-steps", str(args.max_steps)]
    results, wall = run_studio(cmd, run_dir, method)
    timing, test = results["timing"], results["test"]
    return {"name": f"studio {method}", "exact_match": test["exact_match"], "f1": test["f1"],
            "n": test["n"], "train_samples_per_second": timing["train_samples_per_second"],
            "train_seconds": timing["train_seconds"], "eval_seconds": timing["eval_seconds"],
            "wall_seconds": round(wall, 1), "steps": timing["steps"],
            "trainable": results["params"]["trainable"], "precision": results["precision"]}


def run_plain(train: Path, evaluate: Path, args) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "plain_qa.py"), "--train", str(train),
           "--eval", str(evaluate), "--batch-size", str(args.batch_size),
           "--epochs", str(args.epochs),
           "--max-steps", str(args.plain_steps if args.plain_steps > 0 else -1)]
    return run_script(cmd)


def print_table(rows: list[dict], args) -> None:
    plain = rows[-1]["train_samples_per_second"]
    print(f"\nSQuAD v1.1 dev split by article ({args.train_articles} train / "
          f"{args.eval_articles} evaluate; not comparable to published dev scores), "
          f"{args.epochs:g} epoch(s), batch {args.batch_size}, "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n")
    print("| run | EM | F1 | train samples/s | x plain | train s | wall s | steps | precision "
          "| trainable |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = r["train_samples_per_second"] / plain if plain else float("nan")
        print(f"| {r['name']} | {r['exact_match']:.4f} | {r['f1']:.4f} | "
              f"{r['train_samples_per_second']} | {ratio:.2f}x | {r['train_seconds']} | "
              f"{r['wall_seconds']} | {r['steps']} | {r['precision']} | {r['trainable']:,} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="full,lora")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-steps", type=int, default=0, help="cap the studio runs (0 = none)")
    ap.add_argument("--plain-steps", type=int, default=0,
                    help="steps of the plain script (0 = the same epochs as the studio)")
    ap.add_argument("--train-articles", type=int, default=36)
    ap.add_argument("--eval-articles", type=int, default=12)
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    source = Path(args.data)
    if not source.exists():
        raise SystemExit(f"SQuAD v1.1 dev not found at {source}.")
    train, evaluate = split_articles(source, args.train_articles, args.eval_articles)
    rows = []
    for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
        rows.append(run_engine(method, train, evaluate, args))
        print(json.dumps(rows[-1]), flush=True)
    rows.append(run_plain(train, evaluate, args))
    print(json.dumps(rows[-1]), flush=True)
    print_table(rows, args)
    (OUT / "qa.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
