"""Compare methods, and search hyperparameters, on 1,000 SST-2 sentences with the default model.

    python bench/compare.py                       # compare group + 10-trial search (~25 min CPU)
    python bench/compare.py --trials 3 --train-rows 300 --max-steps 20   # smoke (~6 min)

Data: a seeded random 1,000 of SST-2's training sentences to train on; the 872-sentence dev
set split in two by a seeded shuffle, half for validation (every choice: checkpoints, the
comparison's winner, the search) and half for test (scored once per tested run). Runs, one
after another through the studio's CLI: `compare` (head-only, LoRA, full, each at its
default settings: the full member *is* "the defaults alone"), then `search` (TPE, median
pruner, the chosen configuration trained again and tested once). Prints a Markdown table and
writes bench/results/compare-<cpu|gpu>-<date>.json. The derived CSVs go to --out
(git-ignored), never into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import results_path, sample, write_csv  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sst2"


def read_tsv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [{"text": r["sentence"], "label": "positive" if r["label"] == "1" else "negative"}
                for r in csv.DictReader(f, delimiter="\t")]


def cli(args: list, name: str) -> tuple[str, float]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "finetuner", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout, time.perf_counter() - t0


def accuracy(run: str | Path, split: str) -> float | None:
    r = json.loads((Path(run) / "results.json").read_text())
    return (r.get(split) or {}).get("accuracy")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-rows", type=int, default=1000)
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--max-steps", type=int, default=0, help="cap per run (0 = none)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "compare"))
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    if not (data / "train.tsv").exists():
        raise SystemExit(f"SST-2 not found in {data} (needs train.tsv and dev.tsv).")
    train = sample(read_tsv(data / "train.tsv"), args.train_rows)
    dev = read_tsv(data / "dev.tsv")
    order = list(range(len(dev)))
    random.Random(0).shuffle(order)
    half = len(dev) // 2
    files = {"train": write_csv(train, out / "data" / "train.csv", ["text", "label"]),
             "validation": write_csv([dev[i] for i in sorted(order[:half])],
                                     out / "data" / "validation.csv", ["text", "label"]),
             "test": write_csv([dev[i] for i in sorted(order[half:])], out / "data" / "test.csv",
                               ["text", "label"])}
    common = ["--data", files["train"], "--validation", files["validation"],
              "--test", files["test"], "--text-column", "text", "--label-column", "label"]
    if args.max_steps:
        common += ["--max-steps", args.max_steps]
    rows = []
    stdout, wall = cli(["compare", *common, "--output", out / "compare"], "compare")
    summary = json.loads((out / "compare" / "comparison.json").read_text())
    for m in summary["members"]:
        rows.append({"name": f"compare: {m['name']}" + (" (= the defaults alone)"
                                                        if m["name"] == "full" else ""),
                     "validation_macro_f1": m["validation"],
                     "validation_accuracy": accuracy(m["run"], "validation"),
                     "test_accuracy": accuracy(m["run"], "test"),
                     "train_seconds": m["train_seconds"], "winner": m["name"] == summary[
                         "winner"]})
    compare_wall = round(wall, 1)
    stdout, wall = cli(["search", *common, "--trials", args.trials, "--output",
                        out / "search"], "search")
    search = json.loads((out / "search" / "summary.json").read_text())
    final = search["final"] or {}
    rows.append({"name": f"search: chosen of {args.trials} trials (trained again)",
                 "validation_macro_f1": final.get("validation"),
                 "validation_accuracy": accuracy(final["run"], "validation") if final else None,
                 "test_accuracy": accuracy(final["run"], "test") if final else None,
                 "train_seconds": None, "winner": False})
    search_wall = round(wall, 1)
    states = [t["state"] for t in search["trials"]]
    print(f"\nSST-2: {len(train)} training sentences, dev split {half} validation / "
          f"{len(dev) - half} test, default model, "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n")
    print("| run | validation macro-F1 (the choice) | validation accuracy | test accuracy | "
          "train s |")
    print("|---|---|---|---|---|")
    for r in rows:
        def f(x):
            return "" if x is None else f"{x:.4f}"
        print(f"| {r['name']}{' (winner)' if r['winner'] else ''} | "
              f"{f(r['validation_macro_f1'])} | {f(r['validation_accuracy'])} | "
              f"{f(r['test_accuracy'])} | {r['train_seconds'] or ''} |")
    print(f"\ncompare wall {compare_wall} s; search wall {search_wall} s "
          f"({states.count('complete')} complete, {states.count('pruned')} pruned, "
          f"{states.count('failed')} failed). {summary['sentence']}")
    print("importance:", search["importance"])
    target = results_path(args, "compare")
    target.write_text(json.dumps({"args": vars(args), "rows": rows, "compare": summary,
                                  "search": search, "compare_wall_seconds": compare_wall,
                                  "search_wall_seconds": search_wall}, indent=2, default=str))
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
