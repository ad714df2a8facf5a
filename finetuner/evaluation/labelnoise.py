"""Suspected label errors: training rows whose given label is most likely wrong.

After a classification run the fine-tuned encoder embeds the training rows (mean of the last
hidden layer over real tokens), a k-fold logistic regression on those frozen features gives
every row out-of-fold probabilities (each row is scored by a model that never saw it), and
cleanlab's confident learning flags the rows whose given label those probabilities contradict,
ranked by how little they believe it. Nothing here reads the validation or the test split.

The result goes to results.json (counts and the top rows), `label_issues.csv` in the run folder
(every flagged row) and the diagnosis (diagnostics.label_noise_note: a note when many rows
are flagged).
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np

from finetuner.csvsafe import SafeWriter

FOLDS = 5
SHOWN = 50
# the check's own held-out agreement with the given labels below which it flags nothing: a
# check that is wrong on a fifth of the rows "finds" correct labels (seen on 240 SST-2 rows at
# 70%: plainly negative reviews flagged as mislabelled negatives)
MIN_AGREEMENT = 0.85


def max_rows() -> int:
    """Training rows checked at most (FINETUNER_LABEL_CHECK_ROWS, default 10,000): a random
    sample of them when there are more, said in the results."""
    try:
        return max(0, int(os.environ.get("FINETUNER_LABEL_CHECK_ROWS", "10000")))
    except ValueError:
        return 10000


def embed(model, features: list[dict], collate, batch_size: int, amp, interrupt=None):
    """Mean-pooled last hidden states, float32 numpy (n, width)."""
    import torch

    from finetuner.models.batching import MODEL_KEYS, StopRequested, autocast

    device = next(model.parameters()).device
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    out = [None] * len(features)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), autocast(amp, device):
            for start in range(0, len(order), batch_size):
                if interrupt is not None and interrupt():
                    raise StopRequested
                idx = order[start:start + batch_size]
                batch = collate([features[i] for i in idx])
                batch = {k: v.to(device) for k, v in batch.items() if k in MODEL_KEYS}
                hidden = model(**batch, output_hidden_states=True).hidden_states[-1].float()
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
                for row, i in enumerate(idx):
                    out[i] = pooled[row].cpu().numpy()
    finally:
        model.train(was_training)
    return np.stack(out)


def out_of_fold(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """k-fold logistic-regression probabilities: each row predicted by a model that did not
    train on it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    folds = int(min(FOLDS, np.bincount(y, minlength=n_classes)[np.unique(y)].min()))
    probs = np.zeros((len(y), n_classes))
    for fit, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        scaler = StandardScaler().fit(x[fit])
        clf = LogisticRegression(C=0.1, max_iter=1000)
        clf.fit(scaler.transform(x[fit]), y[fit])
        probs[np.ix_(held, clf.classes_)] = clf.predict_proba(scaler.transform(x[held]))
    return probs


def find(probs: np.ndarray, y: np.ndarray) -> list[int]:
    """Indices of suspected label errors, most suspicious first (cleanlab, confident
    learning: prune by noise rate, ranked by self-confidence)."""
    from cleanlab.filter import find_label_issues

    present = np.unique(y)
    if len(present) < 2:
        return []
    # cleanlab wants every class it is told about to occur; re-index to the present ones
    remap = {c: i for i, c in enumerate(present)}
    sub = probs[:, present]
    sub = sub / np.clip(sub.sum(1, keepdims=True), 1e-12, None)
    labels = np.array([remap[c] for c in y])
    # n_jobs=1: cleanlab's default forks a pool, which deadlocks in a process that already
    # runs torch threads (the worker)
    return [int(i) for i in find_label_issues(labels, sub, n_jobs=1,
                                              return_indices_ranked_by="self_confidence")]


def check(model, train: list[dict], feats: list[dict], labels: list[str], collate,
          batch_size: int, amp, folder: Path, seed: int = 0, interrupt=None) -> dict | None:
    """Flag suspected label errors among the training rows; None when there is nothing to
    check (fewer than 2 rows of two labels). Writes folder/label_issues.csv."""
    t0 = time.perf_counter()
    index = {name: i for i, name in enumerate(labels)}
    rows = list(range(len(train)))
    cap = max_rows()
    if len(rows) > cap:
        rows = sorted(random.Random(seed).sample(rows, cap))
    y = np.array([index[train[i]["label"]] for i in rows])
    if len(rows) < 2 * FOLDS or np.sort(np.bincount(y))[-2:].min() < 2:
        return None
    keep = np.isin(y, np.where(np.bincount(y) >= 2)[0])
    rows = [r for r, k in zip(rows, keep) if k]
    y = y[keep]
    x = embed(model, [feats[i] for i in rows], collate, batch_size, amp, interrupt)
    probs = out_of_fold(x, y, len(labels), seed)
    predicted = np.argmax(probs, axis=1)
    agreement = float(np.mean(predicted == y))
    if agreement < MIN_AGREEMENT:  # too weak to accuse any row: say so, flag nothing
        (Path(folder) / "label_issues.csv").unlink(missing_ok=True)
        return {"checked": len(rows), "n_train": len(train), "flagged": 0,
                "agreement": round(agreement, 4), "share": 0.0, "rows": [],
                "unreliable": True, "min_agreement": MIN_AGREEMENT,
                "seconds": round(time.perf_counter() - t0, 2)}
    flagged = find(probs, y)
    # how often the check is right when it names a label (out of fold, on every checked row):
    # a flag that names a label the check often gets wrong is a weak one
    precision = {c: float(np.mean(y[predicted == c] == c)) if np.any(predicted == c) else 0.0
                 for c in range(len(labels))}
    found = []
    for j in flagged:
        row = train[rows[j]]
        suggested = int(predicted[j])
        found.append({"row": row.get("row", rows[j] + 1), "text": row["text"],
                      "pair": row.get("pair"),
                      "given": labels[y[j]], "suggested": labels[suggested],
                      "given_probability": round(float(probs[j, y[j]]), 4),
                      "suggested_probability": round(float(probs[j, suggested]), 4),
                      "check_precision": round(precision[suggested], 4)})
    # strongest first: the given label unlikely *and* the check reliable on what it suggests
    found.sort(key=lambda f: -(1 - f["given_probability"]) * f["check_precision"])
    path = Path(folder) / "label_issues.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = SafeWriter(fh)
        pairs = any(f["pair"] for f in found)
        writer.writerow(["file_row", "text", *(["text_pair"] if pairs else []),
                         "given_label", "suggested_label", "probability_of_given",
                         "probability_of_suggested", "check_right_when_it_suggests_this"])
        for f in found:
            writer.writerow([f["row"], f["text"], *([f["pair"] or ""] if pairs else []),
                             f["given"], f["suggested"], f["given_probability"],
                             f["suggested_probability"], f["check_precision"]])
    shown = [{**f, "text": _trim(f["text"]), "pair": _trim(f["pair"]) if f["pair"] else None}
             for f in found[:SHOWN]]
    return {"checked": len(rows), "n_train": len(train), "flagged": len(found),
            "agreement": round(agreement, 4),
            "share": round(len(found) / max(1, len(rows)), 4), "rows": shown,
            "method": "out-of-fold logistic regression on the fine-tuned encoder's features, "
                      f"{min(FOLDS, len(rows))} folds; cleanlab confident learning",
            "seconds": round(time.perf_counter() - t0, 2)}


def _trim(text: str, n: int = 300) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"
