"""How well the suspected-label-errors list finds labels we flipped on purpose.

    python bench/label_errors.py                 # 3,000 SST-2 sentences, 10% flipped (~5 min)
    python bench/label_errors.py --rows 2000 --flip 0.05

A fixed SST-2 sample gets a known share of its labels flipped; the studio trains on it with its
defaults (through the real CLI and worker) and writes label_issues.csv. Precision: the share of
flagged rows that were flipped; recall: the share of flipped training rows that were flagged.
For comparison the same check (labelnoise.out_of_fold + find) runs on features of the untrained
embedded encoder, the alternative feature source.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import run_studio  # noqa: E402

SST2 = ROOT.parent / "shared" / "data" / "sst2"
OUT = ROOT / "bench" / "out" / "label_errors"


def noisy_sample(n: int, flip: float) -> tuple[Path, set[int]]:
    lines = (SST2 / "train.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line.rsplit("\t", 1) for line in lines[1:]]
    rng = random.Random(11)
    rng.shuffle(rows)
    rows = rows[:n]
    flipped = set(rng.sample(range(n), int(flip * n)))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "noisy.tsv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("sentence\tlabel\n")
        for i, (text, label) in enumerate(rows):
            fh.write(f"{text}\t{(1 - int(label)) if i in flipped else label}\n")
    return path, {i + 2 for i in flipped}  # file lines, as the studio reports them


def score(flagged: set[int], flipped: set[int]) -> dict:
    hits = len(flagged & flipped)
    return {"flagged": len(flagged), "hits": hits,
            "precision": round(hits / max(1, len(flagged)), 3),
            "recall": round(hits / max(1, len(flipped)), 3)}


def base_features_check(run_dir: Path, flipped_train: set[int]) -> dict:
    """The same out-of-fold check on the untrained default encoder's features."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    from finetuner.evaluation import labelnoise
    from finetuner.models.batching import collator
    from finetuner.models.modeling import embedded_model_path

    rows = [json.loads(line) for line in (run_dir / "train_rows.jsonl").read_text().splitlines()]
    path = embedded_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    feats = [dict(tok(r["text"], truncation=True, max_length=128)) for r in rows]
    with torch.inference_mode():
        x = labelnoise.embed(model, feats, collator(tok.pad_token_id), 64, None)
    labels = sorted({r["label"] for r in rows})
    y = np.array([labels.index(r["label"]) for r in rows])
    found = labelnoise.find(labelnoise.out_of_fold(x, y, len(labels)), y)
    return score({rows[i]["row"] for i in found}, flipped_train)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=3000)
    ap.add_argument("--flip", type=float, default=0.10)
    args = ap.parse_args()
    data, flipped = noisy_sample(args.rows, args.flip)
    run_dir = OUT / "run"
    cmd = [sys.executable, "-m", "finetuner", "train", "--data", str(data), "--test",
           str(SST2 / "dev.tsv"), "--test-split", "0", "--output", str(run_dir), "--overwrite",
           "--quiet"]
    results, wall = run_studio(cmd, run_dir, "noisy")
    info = results["label_issues"]
    with open(run_dir / "label_issues.csv", encoding="utf-8") as fh:
        flagged = {int(r["file_row"]) for r in csv.DictReader(fh)}
    # which flipped rows landed in the training split: the validation rows are not checked
    from finetuner.config import RunConfig
    from finetuner.tasks import get_task

    prepared = get_task("classification").impl().prepare(RunConfig.load(run_dir / "config.json"))
    train_rows = {e["row"] for e in prepared.train}
    (run_dir / "train_rows.jsonl").write_text("".join(
        json.dumps({"row": e["row"], "text": e["text"], "label": e["label"]}) + "\n"
        for e in prepared.train))
    flipped_train = flipped & train_rows
    trained = score(flagged, flipped_train)
    base = base_features_check(run_dir, flipped_train)
    out = {"rows": args.rows, "flip": args.flip, "flipped_in_train": len(flipped_train),
           "checked": info["checked"], "fine_tuned_features": trained,
           "untrained_encoder_features": base, "check_seconds": info["seconds"],
           "dev_accuracy": results["test"]["accuracy"], "verdict": results["diagnosis"]["verdict"],
           "notes": results["diagnosis"]["notes"], "wall_seconds": round(wall, 1)}
    print(json.dumps(out, indent=1))
    (OUT / "label_errors.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
