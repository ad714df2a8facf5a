"""Does the learning curve's "doubling the data would gain X" come true? On SST-2.

    python bench/learning_curve.py                    # N = 200 and 800, seeds 0 and 1
    python bench/learning_curve.py --sizes 400 --seeds 0 --studio-args "--model all-mpnet-base-v2"

For each size N and seed s: 2N training sentences drawn from ../shared/data/sst2/train.tsv
(seed s; the first N are the curve's data, all 2N the doubled data), 500 *other* training
sentences as the validation split, the official dev.tsv (872) as the test split (never read
here: the curve is about validation). The studio's `learning-curve` CLI trains its defaults
on 25 / 50 / 100% of the N sentences and predicts the validation score at 2N; then the studio
trains the same defaults on all 2N sentences, and the measured validation score is set
against the prediction. Results go to bench/results/learning-curve-cpu-<date>.json and a
Markdown table is printed.
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import write_csv  # noqa: E402
from fewshot import read_tsv  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sst2"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,800")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--studio-args", default="")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "learning-curve"))
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    train = read_tsv(Path(args.data) / "train.tsv")
    out = Path(args.out)
    extra = shlex.split(args.studio_args)
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for seed in [int(x) for x in args.seeds.split(",")]:
            idx = random.Random(7000 + 100 * seed + n).sample(range(len(train)), 2 * n + 500)
            pool, val = [train[i] for i in idx[:2 * n]], [train[i] for i in idx[2 * n:]]
            tag = f"n{n}-s{seed}"
            files = {k: write_csv(v, out / tag / f"{k}.csv", ["text", "label"]) for k, v in
                     (("half", pool[:n]), ("double", pool), ("val", val))}
            test = Path(args.data) / "dev.tsv"
            test_csv = write_csv(read_tsv(test), out / tag / "test.csv", ["text", "label"])
            common = ["--validation", str(files["val"]), "--test", str(test_csv),
                      "--seed", str(seed), *extra]
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "finetuner", "learning-curve", "--data",
                 str(files["half"]), *common, "--output", str(out / tag / "curve")],
                cwd=ROOT, capture_output=True, text=True)
            curve_s = time.perf_counter() - t0
            path = out / tag / "curve" / "learning_curve.json"
            if not path.exists():
                raise SystemExit(f"curve failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
            curve = json.loads(path.read_text())
            t0 = time.perf_counter()
            run = out / tag / "double"
            proc = subprocess.run(
                [sys.executable, "-m", "finetuner", "train", "--data", str(files["double"]),
                 *common, "--output", str(run), "--overwrite", "--quiet"],
                cwd=ROOT, capture_output=True, text=True)
            results = json.loads((run / "results.json").read_text())
            metric = results["metric"]
            measured = results["validation"][metric]
            last = curve["points"][-1]
            pred = curve["predicted"] or {}
            rows.append({"n": n, "seed": seed, "points": [(p["n"], round(p["score"], 4))
                                                          for p in curve["points"]],
                         "score_n": round(last["score"], 4),
                         "predicted_2n": round(pred.get("score", float("nan")), 4),
                         "predicted_gain": round(pred.get("gain", float("nan")), 4),
                         "measured_2n": round(measured, 4),
                         "measured_gain": round(measured - last["score"], 4),
                         "band": round(last["band"], 4), "flat": curve["flat"],
                         "sentence": curve["sentence"], "curve_seconds": round(curve_s, 1),
                         "double_seconds": round(time.perf_counter() - t0, 1),
                         "studio_args": args.studio_args})
            print(json.dumps(rows[-1]), flush=True)
    lines = ["| N | seed | validation at N/4, N/2, N | predicted gain at 2N | measured gain "
             "at 2N | noise (±, one score) |", "|---|---|---|---|---|---|"]
    for r in rows:
        pts = ", ".join(f"{s:.3f}" for _, s in r["points"])
        lines.append(f"| {r['n']} | {r['seed']} | {pts} | {r['predicted_gain'] * 100:+.1f} | "
                     f"{r['measured_gain'] * 100:+.1f} | {r['band'] * 100:.1f} |")
    print("\n".join(lines))
    target = ROOT / "bench" / "results" / f"learning-curve-cpu-{time.strftime('%Y%m%d')}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(rows, indent=2))
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
