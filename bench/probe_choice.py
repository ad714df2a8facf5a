"""Offline: how the fitted head's strength is chosen, on the frozen default model's features
of the few-shot SST-2 subsets (bench/fewshot.py's), per size and seed: the test accuracy of
the head each rule picks. Every rule picks on training and validation rows only; the test
accuracy of every strength is computed alongside (to report the picked one's), and no rule
reads it.

    python bench/probe_choice.py --seeds 3,4,5,6,7

Rules: `cur` = validation loss over the decade grid 0.001..100 (full fine-tuning's start);
`valfine` = validation loss over half decades 1e-4..100; `cv` = a 5-fold cross-check of the
training rows alone; `comb` = validation and cross-check pooled (head-only's rule, over the
whole grid: the studio ends its walk two strengths past the best, and seeds its cross-check
with the run's seed, not 0); `combgrid` = comb on the decade grid; `probe` = scikit-learn's
logistic regression on the raw features, C by validation macro-F1 (bench/fewshot.py's)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from fewshot import C_GRID, DATA, _embedder, read_tsv, subsets  # noqa: E402

from finetuner.models.heads import PROBE_C, CrossCheck, _loss, fit_linear  # noqa: E402
from finetuner.models.modeling import embedded_model_path  # noqa: E402

GRID = tuple(10 ** (k / 2) for k in range(-8, 5))
RULES = ("cur", "valfine", "cv", "comb", "combgrid", "probe")


def sklearn_probe(x_tr, y_tr, x_va, y_va, x_te, y_te) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=2000).fit(x_tr, y_tr)
        score = f1_score(y_va, model.predict(x_va), average="macro")
        if best is None or score > best[0]:
            best = (score, model)
    return float((best[1].predict(x_te) == y_te).mean())


def one(emb, train, n, seed, x_te, y_te) -> dict:
    tr, va = subsets(train, n, seed)
    x_tr = torch.from_numpy(emb([r["text"] for r in tr]))
    x_va = torch.from_numpy(emb([r["text"] for r in va]))
    y = torch.tensor([r["label"] == "positive" for r in tr]).long()
    y_va = torch.tensor([r["label"] == "positive" for r in va]).long()
    mu = x_tr.mean(0)
    sd = (x_tr - mu).pow(2).mean().sqrt()
    xs, xv, xt = (x_tr - mu) / sd, (x_va - mu) / sd, (x_te - mu) / sd
    check = CrossCheck(xs, y, "softmax", 2, seed=0)
    fits, start = [], None
    for c in GRID:
        cross = check.loss(c)
        w, b = fit_linear(xs, y, "softmax", c, 2, start)
        start = (w, b)
        val = float(_loss(xv @ w.T + b, y_va, "softmax"))
        acc = float(((xt @ w.T + b).argmax(1) == y_te).float().mean())
        pooled = (cross + val * len(y_va)) / (check.rows + len(y_va))
        fits.append({"c": c, "val": val, "cv": cross / check.rows, "comb": pooled, "acc": acc})
    coarse = [f for f in fits if any(abs(f["c"] - p) < 1e-12 for p in PROBE_C)]
    pick = {"cur": min(coarse, key=lambda f: f["val"]),
            "valfine": min(fits, key=lambda f: f["val"]),
            "cv": min(fits, key=lambda f: f["cv"]), "comb": min(fits, key=lambda f: f["comb"]),
            "combgrid": min(coarse, key=lambda f: f["comb"])}
    out = {rule: f["acc"] for rule, f in pick.items()}
    out["probe"] = sklearn_probe(x_tr.numpy(), y.numpy(), x_va.numpy(), y_va.numpy(),
                                 x_te.numpy(), y_te.numpy())
    print(n, seed, " | ".join(f"{r} C={pick[r]['c']:.3g} {out[r]:.3f}" for r in pick),
          f"| probe {out['probe']:.3f}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--sizes", default="64,256,1000")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    train, test = read_tsv(Path(args.data) / "train.tsv"), read_tsv(Path(args.data) / "dev.tsv")
    emb = _embedder(embedded_model_path())
    x_te = torch.from_numpy(emb([r["text"] for r in test]))
    y_te = torch.tensor([r["label"] == "positive" for r in test]).long()
    for n in (int(v) for v in args.sizes.split(",")):
        done = [one(emb, train, n, int(s), x_te, y_te) for s in args.seeds.split(",")]
        means = {r: round(float(np.mean([d[r] for d in done])), 4) for r in RULES}
        print(n, "means", means, flush=True)


if __name__ == "__main__":
    main()
