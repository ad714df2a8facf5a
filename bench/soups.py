"""Few-shot SST-2 (bench/fewshot.py's subsets): three fine-tunes of the defaults on the same
subset from the same fitted-head start, with training seeds SEED, SEED+1000 and SEED+2000
(another shuffle and dropout), and the average of their weights (a "soup" of all three and of
the first two), each scored on validation and test. One JSON line per subset.

    python bench/soups.py --size 1000 --seeds 0,1,2
    python bench/soups.py --size 256 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from fewshot import DATA, read_tsv, run_method, subsets, write_csv  # noqa: E402


def accuracy(model_dir: Path, rows_csv: Path) -> float:
    out = model_dir.parent / f"pred-{rows_csv.stem}.csv"
    subprocess.run([sys.executable, "-m", "finetuner", "predict", "--run", str(model_dir),
                    "--file", str(rows_csv), "--out", str(out), "--runtime", "torch"],
                   check=True, capture_output=True, cwd=ROOT)
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(rows_csv, newline="") as f:
        gold = [r["label"] for r in csv.DictReader(f)]
    key = next(k for k in rows[0] if "pred" in k.lower())
    return sum(r[key] == g for r, g in zip(rows, gold)) / len(gold)


def soup(members: list[Path], dst: Path) -> Path:
    import torch  # noqa: F401  (safetensors' torch backend)
    from safetensors.torch import load_file, save_file

    states = [load_file(str(m / "model" / "model.safetensors")) for m in members]
    mean = {k: (sum(s[k].float() for s in states) / len(states)).to(states[0][k].dtype)
            for k in states[0]}
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(members[0] / "model", dst / "model")
    save_file(mean, str(dst / "model" / "model.safetensors"), metadata={"format": "pt"})
    return dst / "model"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "soup"))
    args = ap.parse_args()
    train, test = read_tsv(DATA / "train.tsv"), read_tsv(DATA / "dev.tsv")
    for seed in (int(s) for s in args.seeds.split(",")):
        tr, va = subsets(train, args.size, seed)
        folder = Path(args.out) / f"n{args.size}-s{seed}"
        files = {k: write_csv(v, folder / f"{k}.csv", ["text", "label"])
                 for k, v in (("train", tr), ("validation", va), ("test", test))}
        members, line = [], {"n": args.size, "seed": seed, "runs": []}
        for k in range(3):
            run = folder / f"run-full-k{k}"
            if not (run / "results.json").exists():
                run_method("full", files, folder, ["--seed", str(seed + 1000 * k)], tag=f"-k{k}")
            results = json.loads((run / "results.json").read_text())
            line["runs"].append({"test": results["test"]["accuracy"],
                                 "steps": results["timing"]["steps"]})
            members.append(run)
        for name, idx in (("soup3", [0, 1, 2]), ("soup2", [0, 1])):
            model = soup([members[i] for i in idx], folder / name)
            line[name] = {"validation": accuracy(model, files["validation"]),
                          "test": accuracy(model, files["test"])}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
