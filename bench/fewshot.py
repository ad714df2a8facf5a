"""Few-shot SST-2: the studio's defaults and each method against SetFit, a linear probe and
TF-IDF, on the same seeded subsets.

    python bench/fewshot.py                          # 64, 256, 1,000 sentences x 3 seeds
    python bench/fewshot.py --sizes 256 --seeds 0 --systems full,probe,tfidf   # a quick look

For each size n and seed s: n training sentences drawn from ../shared/data/sst2/train.tsv
(seed s), 200 *other* training sentences as the validation split (every choice: the studio's
checkpoint and probe strength, the probe's and TF-IDF's C), and the official dev.tsv (872) as
the test split, scored once per system. Systems:

- `full`, `lora`, `head`: the studio's CLI with its defaults and that method (`full` is the
  default); the embedded all-MiniLM-L6-v2;
- `setfit`: SetFit (its own defaults, 5 iterations of pair sampling as in the issue, logistic
  regression head) on the same body, run with `--setfit-python` (a separate environment:
  `pip install -r bench/requirements-setfit.txt`, never in the app's requirements);
- `before`: the defaults of another checkout (`--before-root`, e.g. a worktree of the
  commit before a change), for a before/after on the same subsets;
- `probe`: logistic regression on the frozen body's mean-pooled embeddings, C from
  {0.01..100} chosen on validation;
- `tfidf`: TF-IDF (1-2 grams) + logistic regression, C chosen on validation.

Results are appended to --out/results.jsonl as they come (a rerun skips what is there), and a
Markdown table of the means over seeds (test accuracy, training seconds) is printed and
written to bench/results/fewshot-cpu-<date>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from common import run_studio, write_csv  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "sst2"
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def read_tsv(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        next(f)
        for line in f:
            text, _, label = line.rstrip("\n").rpartition("\t")
            rows.append({"text": text, "label": "positive" if label == "1" else "negative"})
    return rows


def subsets(train: list[dict], n: int, seed: int) -> tuple[list[dict], list[dict]]:
    import random

    idx = random.Random(1000 * seed + n).sample(range(len(train)), n + 200)
    return [train[i] for i in idx[:n]], [train[i] for i in idx[n:]]


def run_method(method: str, files: dict, out: Path, extra: list[str],
               root: Path | None = None, tag: str = "") -> dict:
    run_dir = (out / f"run-{method}{tag}").resolve()
    files = {k: Path(v).resolve() for k, v in files.items()}
    cmd = [sys.executable, "-m", "finetuner", "train", "--data", str(files["train"]),
           "--validation", str(files["validation"]), "--test", str(files["test"]),
           "--text-column", "text", "--label-column", "label", "--method", method,
           "--output", str(run_dir), "--overwrite", "--quiet", *extra]
    results, wall = run_studio(cmd, run_dir, method, cwd=root)
    return {"accuracy": results["test"]["accuracy"], "macro_f1": results["test"]["macro_f1"],
            "train_seconds": results["timing"]["train_seconds"], "wall_seconds": round(wall, 1),
            "steps": results["timing"]["steps"],
            "verdict": (results.get("diagnosis") or {}).get("verdict")}


def _choose_c(fit, x_tr, y_tr, x_va, y_va):
    from sklearn.metrics import f1_score

    best = None
    for c in C_GRID:
        model = fit(c).fit(x_tr, y_tr)
        score = f1_score(y_va, model.predict(x_va), average="macro")
        if best is None or score > best[0]:
            best = (score, model)
    return best[1]


def run_probe(train, validation, test) -> dict:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    from finetuner.models.modeling import embedded_model_path

    t0 = time.perf_counter()
    emb = _embedder(embedded_model_path())
    x = {k: emb([r["text"] for r in rows]) for k, rows in
         (("train", train), ("validation", validation), ("test", test))}
    y = {k: np.array([r["label"] for r in rows]) for k, rows in
         (("train", train), ("validation", validation), ("test", test))}
    model = _choose_c(lambda c: LogisticRegression(C=c, max_iter=2000), x["train"], y["train"],
                      x["validation"], y["validation"])
    seconds = time.perf_counter() - t0
    pred = model.predict(x["test"])
    return {"accuracy": accuracy_score(y["test"], pred),
            "macro_f1": f1_score(y["test"], pred, average="macro"),
            "train_seconds": round(seconds, 2)}


def _embedder(path: str):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()

    def embed(texts: list[str]):
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 64):
                enc = tok(texts[i:i + 64], padding=True, truncation=True, max_length=128,
                          return_tensors="pt")
                hidden = model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).float()
                out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
        import numpy as np

        return np.concatenate(out)

    return embed


def run_tfidf(train, validation, test) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    t0 = time.perf_counter()
    vec = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)
    x_tr = vec.fit_transform([r["text"] for r in train])
    x_va = vec.transform([r["text"] for r in validation])
    x_te = vec.transform([r["text"] for r in test])
    y = {k: [r["label"] for r in rows] for k, rows in
         (("train", train), ("validation", validation), ("test", test))}
    model = _choose_c(lambda c: LogisticRegression(C=c, max_iter=2000), x_tr, y["train"], x_va,
                      y["validation"])
    pred = model.predict(x_te)
    return {"accuracy": accuracy_score(y["test"], pred),
            "macro_f1": f1_score(y["test"], pred, average="macro"),
            "train_seconds": round(time.perf_counter() - t0, 2)}


def run_setfit(python: str, files: dict) -> dict:
    proc = subprocess.run([python, str(ROOT / "bench" / "setfit_run.py"), str(files["train"]),
                           str(files["test"])], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"setfit failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def one(system: str, n: int, seed: int, rows: dict, out: Path, args) -> dict:
    folder = out / f"n{n}-s{seed}"
    files = {k: write_csv(v, folder / f"{k}.csv", ["text", "label"]) for k, v in rows.items()}
    if system in ("full", "lora", "head"):
        extra = (["--seed", str(seed + args.train_seed_offset)]
                 + (args.studio_args.split() if args.studio_args else []))
        return run_method(system, files, folder, extra)
    if system == "before":  # the default (full) of another checkout: --before-root
        if args.train_seed_offset:
            raise SystemExit("--train-seed-offset applies to full, lora and head only.")
        return run_method("full", files, folder, ["--seed", str(seed)],
                          root=Path(args.before_root), tag="-before")
    if system == "probe":
        return run_probe(rows["train"], rows["validation"], rows["test"])
    if system == "tfidf":
        return run_tfidf(rows["train"], rows["validation"], rows["test"])
    if system == "setfit":
        return run_setfit(args.setfit_python, files)
    raise SystemExit(f"unknown system {system}")


def table(done: list[dict], sizes, systems) -> list[str]:
    lines = ["| system | " + " | ".join(f"n={n} acc (s)" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    for system in systems:
        cells = []
        for n in sizes:
            rows = [r for r in done if r["system"] == system and r["n"] == n]
            if not rows:
                cells.append("")
                continue
            acc = statistics.mean(r["accuracy"] for r in rows)
            sd = statistics.pstdev(r["accuracy"] for r in rows)
            sec = statistics.mean(r["train_seconds"] for r in rows)
            cells.append(f"{acc:.3f} ±{sd:.3f} ({sec:.0f} s, {len(rows)} seeds)")
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,256,1000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--systems", default="full,lora,head,probe,tfidf,setfit")
    ap.add_argument("--setfit-python", default="python",
                    help="a Python with setfit installed (bench/requirements-setfit.txt)")
    ap.add_argument("--studio-args", default="", help="extra CLI flags for the studio runs")
    ap.add_argument("--before-root", default="",
                    help="system 'before': another checkout of the studio (e.g. a git "
                         "worktree of the commit before a change), run with its defaults")
    ap.add_argument("--tag", default="", help="a name for this variant in results.jsonl")
    ap.add_argument("--train-seed-offset", type=int, default=0,
                    help="studio runs train with --seed SEED+OFFSET on the same subsets "
                         "(another shuffle and dropout: the spread of training alone)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "fewshot"))
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    if not (data / "train.tsv").exists():
        raise SystemExit(f"SST-2 not found in {data}.")
    train, test = read_tsv(data / "train.tsv"), read_tsv(data / "dev.tsv")
    sizes = [int(x) for x in args.sizes.split(",")]
    seeds = [int(x) for x in args.seeds.split(",")]
    systems = args.systems.split(",")
    log = out / "results.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    done = [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []
    for n in sizes:
        for seed in seeds:
            tr, va = subsets(train, n, seed)
            rows = {"train": tr, "validation": va, "test": test}
            for system in systems:
                name = system + args.tag
                offset = args.train_seed_offset
                if any(r["system"] == name and r["n"] == n and r["seed"] == seed
                       and r.get("train_seed_offset", 0) == offset for r in done):
                    continue
                row = {"system": name, "n": n, "seed": seed, **one(system, n, seed, rows, out,
                                                                    args)}
                if offset:
                    row["train_seed_offset"] = offset
                print(json.dumps(row), flush=True)
                done.append(row)
                with open(log, "a") as f:
                    f.write(json.dumps(row) + "\n")
    names = sorted({r["system"] for r in done}, key=lambda s: (s not in systems, s))
    lines = table(done, sizes, names)
    print("\n".join(lines))
    stamp = time.strftime("%Y-%m-%d")
    dest = ROOT / "bench" / "results" / f"fewshot-cpu-{stamp}.json"
    dest.write_text(json.dumps({"rows": done, "table": lines}, indent=1) + "\n")


if __name__ == "__main__":
    main()
