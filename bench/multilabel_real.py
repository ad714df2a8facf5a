"""Multi-label on real data: the studio's defaults against TF-IDF + one logistic regression per
label, on GoEmotions (short texts, 28 labels) and Reuters-21578 (long news documents, 90
topics with a heavy tail).

    python bench/multilabel_real.py                     # both sets, seed 0
    python bench/multilabel_real.py --sets goemotions --seeds 0,1 --studio-args "--method lora"
    python bench/multilabel_real.py --sets goemotions --tag mpnet \
        --studio-args "--model all-mpnet-base-v2"           # the base-size model

../shared/data holds only each set's official test split, so each is split here, seeded:
60% train, 20% validation, 20% test (a random permutation of the records with the seed);
labels that no training row carries (Reuters' rarest topics) are taken off the validation and
test rows, which stay.
GoEmotions' `neutral` is read as "no emotion" (an empty label set), so the model answers
"none of the labels" for neutral comments instead of learning neutral as a 28th emotion; say
so next to its numbers. The studio runs through its CLI with its defaults (`--task
multi-label`); the baseline is the one the studio itself scores on the same splits (its
C chosen on validation, balanced class weights, threshold 0.5), read from the run's
results.json, so both sides see exactly the same rows. Derived CSVs go to --out (git-ignored).
Prints a Markdown table; writes bench/results/multilabel-real-cpu-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import run_studio, write_csv  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SETS = {"goemotions": "goemotions/goemotions_test.json",
        "reuters": "reuters21578/modapte_test.json"}


def records(name: str) -> list[dict]:
    rows = json.loads((DATA / SETS[name]).read_text("utf-8"))
    out = []
    for r in rows:
        labels = [x for x in r["labels"] if not (name == "goemotions" and x == "neutral")]
        out.append({"text": " ".join(str(r["text"]).split()), "labels": ";".join(labels)})
    return out


def split(rows: list[dict], seed: int) -> dict:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    a, b = int(0.6 * len(rows)), int(0.8 * len(rows))
    parts = {"train": [rows[i] for i in order[:a]], "validation": [rows[i] for i in order[a:b]],
             "test": [rows[i] for i in order[b:]]}
    # a topic with no training document cannot be learnt (the studio refuses such a
    # validation file): it is taken off the validation and test rows (the rows stay)
    known = {x for r in parts["train"] for x in r["labels"].split(";") if x}
    for name in ("validation", "test"):
        parts[name] = [{**r, "labels": ";".join(x for x in r["labels"].split(";")
                                                if x in known)} for r in parts[name]]
    return parts


def one(name: str, seed: int, out: Path, extra: list[str]) -> dict:
    parts = split(records(name), seed)
    folder = out / f"{name}-s{seed}"
    files = {k: write_csv(v, folder / f"{k}.csv", ["text", "labels"]) for k, v in parts.items()}
    run_dir = folder / "run"
    cmd = [sys.executable, "-m", "finetuner", "train", "--task", "multi-label",
           "--data", str(files["train"]), "--validation", str(files["validation"]),
           "--test", str(files["test"]), "--text-column", "text", "--label-column", "labels",
           "--label-separator", ";", "--seed", str(seed), "--output", str(run_dir),
           "--overwrite", "--quiet", *extra]
    results, wall = run_studio(cmd, run_dir, name)
    base = next(b for key, b in results["baselines"].items() if "tfidf" in key.lower()
                or "TF-IDF" in b.get("title", ""))
    test, btest = results["test"], base["test"]
    never = [n for n, r in test["per_label"].items() if r["support"] and not r["predicted"]]
    return {"set": name, "seed": seed, "rows": {k: len(v) for k, v in parts.items()},
            "studio_micro_f1": test["micro_f1"], "studio_macro_f1": test["macro_f1"],
            "tfidf_micro_f1": btest["micro_f1"], "tfidf_macro_f1": btest["macro_f1"],
            "probe_validation": (results.get("head_start") or {}).get("validation"),
            "never_predicted_on_test": len(never), "labels": len(test["per_label"]),
            "train_seconds": results["timing"]["train_seconds"], "wall_seconds": round(wall, 1),
            "steps": results["timing"]["steps"],
            "verdict": (results.get("diagnosis") or {}).get("verdict")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="goemotions,reuters")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--studio-args", default="")
    ap.add_argument("--tag", default="", help="names the result file and the run folders "
                    "(e.g. mpnet), so runs with other flags keep their own")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    tag = f"-{args.tag}" if args.tag else ""
    out = Path(args.out or ROOT / "bench" / "out" / f"multilabel-real{tag}")
    rows = []
    for name in args.sets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            row = {**one(name, seed, out, args.studio_args.split()),
                   "studio_args": args.studio_args}
            print(json.dumps(row), flush=True)
            rows.append(row)
    dest = ROOT / "bench" / "results" / f"multilabel-real{tag}-cpu-{time.strftime('%Y-%m-%d')}.json"
    # a second call with the same tag (another set or seed) adds its rows to the day's file
    # instead of replacing it; a row of the same set, seed and flags is replaced
    earlier = json.loads(dest.read_text()).get("rows", []) if dest.exists() else []
    key = lambda r: (r["set"], r["seed"], r.get("studio_args", ""))  # noqa: E731
    new = {key(r) for r in rows}
    rows = [r for r in earlier if key(r) not in new] + rows
    lines = ["| set | seed | studio micro-F1 | TF-IDF micro-F1 | studio macro-F1 | "
             "TF-IDF macro-F1 | never predicted (test) | training s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['set']} | {r['seed']} | {r['studio_micro_f1']:.3f} | "
              f"{r['tfidf_micro_f1']:.3f} | {r['studio_macro_f1']:.3f} | "
              f"{r['tfidf_macro_f1']:.3f} | {r['never_predicted_on_test']} of {r['labels']} | "
              f"{r['train_seconds']:.0f} |" for r in rows]
    print("\n".join(lines))
    dest.write_text(json.dumps({"args": vars(args), "rows": rows, "table": lines}, indent=1) + "\n")


if __name__ == "__main__":
    main()
