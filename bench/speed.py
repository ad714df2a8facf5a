"""Speed: the studio's engine against a plain transformers script, training and inference.

    python bench/speed.py                     # SST-2: one epoch each, memory, inference
    python bench/speed.py --subset 8000       # the same on 8,000 training sentences (quick)
    python bench/speed.py --parts inference,memory,ablation --run bench/out/sst2-full

In one run on the same machine, data, model, epochs and seed:
1. training: (a) a plain `transformers.Trainer` script with run_glue.py defaults (every batch
   padded to 128 tokens, batch 32, fp32; measured over --plain-steps steps, 0 = whole epoch)
   and (b) the studio's engine with its defaults (full fine-tuning): wall time, training
   samples/s, dev accuracy and the ratio b/a;
2. peak memory (resident set on CPU, GPU memory on a GPU) of full, LoRA and head-only training
   (on --memory-subset sentences);
3. inference with the trained model on each runtime (PyTorch, ONNX Runtime fp32 and int8,
   exported first where the run has no export): single-text latency p50/p95 through
   `Predictor` (the try-it box), batch throughput and accuracy on the dev set, and a plain
   `transformers.pipeline("text-classification")` with default settings for reference;
4. the fast paths one at a time off (bf16 autocast, length-grouped batches) on
   --ablation-subset sentences, to show what each buys.
Prints Markdown tables and writes bench/out/speed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from sst2 import DATA, run_engine, run_plain  # noqa: E402


def subset_file(data: Path, n: int, out: Path) -> Path:
    if not n:
        return data / "train.tsv"
    path = out / f"sst2-train-{n}.tsv"
    pd.read_csv(data / "train.tsv", sep="\t").sample(n=n, random_state=0).to_csv(
        path, sep="\t", index=False)
    return path


RUNTIMES = ("torch", "onnx", "onnx-int8")


def inference(run_dir: Path, dev: Path) -> dict:
    """Per runtime (PyTorch, ONNX Runtime fp32, int8), in one process: single-text latency
    through `Predictor` (the try-it box), batch throughput on the dev set and dev accuracy;
    and a plain transformers pipeline for reference. Exports ONNX first where the run has
    none (finetuner.serving.onnxexport, the export the studio makes)."""
    import torch
    from transformers import pipeline

    from finetuner.serving.export import read_meta
    from finetuner.serving.inference import Predictor
    from finetuner.serving.onnxexport import export_run
    from finetuner.serving.onnxreport import summary_lines

    frame = pd.read_csv(dev, sep="\t")
    sentences = frame["sentence"].astype(str).tolist()
    gold = frame["label"].astype(str).tolist()
    out: dict = {"threads": torch.get_num_threads(), "runtimes": {}}
    if not (read_meta(run_dir / "model").get("onnx")):
        t = time.perf_counter()
        summary = export_run(run_dir)
        out["export_seconds"] = round(time.perf_counter() - t, 1)
        print("\n".join(summary_lines(summary)), flush=True)
    info = read_meta(run_dir / "model")["onnx"]
    out["preferred"] = info["preferred"]
    for runtime in RUNTIMES:
        if runtime != "torch" and runtime not in info["files"]:
            # not kept by the studio (it lost too much on validation): measured all the same
            predictor = _unkept_int8(run_dir) if runtime == "onnx-int8" else None
            if predictor is None:
                continue
            out["runtimes"][runtime] = {"kept": False}
        else:
            predictor = Predictor.load(run_dir, runtime=runtime)
            out["runtimes"][runtime] = {"kept": True}
        for text in sentences[:10]:
            predictor.predict(text)
        latencies = []
        for text in sentences[:300]:
            t = time.perf_counter()
            predictor.predict(text)
            latencies.append(time.perf_counter() - t)
        latencies.sort()
        t = time.perf_counter()
        preds = predictor.predict(sentences)
        batch = len(sentences) / (time.perf_counter() - t)
        accuracy = sum(p["label"] == g for p, g in zip(preds, gold)) / len(gold)
        out["runtimes"][runtime] |= {
            "single_p50_ms": round(1000 * statistics.median(latencies), 2),
            "single_p95_ms": round(1000 * latencies[int(0.95 * len(latencies)) - 1], 2),
            "batch_sentences_per_second": round(batch, 1), "dev_accuracy": round(accuracy, 4)}
        print(runtime, json.dumps(out["runtimes"][runtime]), flush=True)
    clf = pipeline("text-classification", model=str(run_dir / "model"),
                   device=0 if torch.cuda.is_available() else -1)
    clf(sentences[:5])
    t = time.perf_counter()
    clf(sentences)
    out["pipeline_sentences_per_second"] = round(len(sentences) / (time.perf_counter() - t), 1)
    return out


def _unkept_int8(run_dir: Path):
    """A Predictor on the int8 model the export made and dropped, quantised again."""
    import tempfile

    from finetuner.serving.export import read_meta
    from finetuner.serving.inference import Predictor
    from finetuner.serving.onnxexport import OnnxModel, _quantize

    meta = read_meta(run_dir / "model")
    tmp = Path(tempfile.mkdtemp()) / "model_int8.onnx"
    _quantize(run_dir / "model" / "onnx" / "model.onnx", tmp)
    torch_predictor = Predictor.load(run_dir, runtime="torch")
    return Predictor(OnnxModel(tmp), torch_predictor.tokenizer, meta, runtime="onnx-int8")


ABLATIONS = (  # (name, config overrides): each turns one fast path off
    ("defaults", {}),
    ("fp32 instead of bf16 autocast", {"training": {"precision": "fp32"}}),
    ("random batches instead of length-grouped", {"training": {"group_by_length": False}}),
)


def ablation(data: Path, train: Path, out: Path) -> list[dict]:
    """The studio's full fine-tuning with one fast path off at a time, same data and seed."""
    rows = []
    for i, (name, overrides) in enumerate(ABLATIONS):
        extra: tuple[str, ...] = ()
        if overrides:
            cfg = out / f"ablation-{i}.json"
            cfg.write_text(json.dumps(overrides))
            extra = ("--config", str(cfg))
        row = run_engine("full", train, data / "dev.tsv", out / "ablation", 1.0, extra,
                         tag=f"-{i}")
        row["variant"] = name
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--parts", default="train,inference,memory,ablation",
                    help="any of train, inference, memory, ablation, comma-separated")
    ap.add_argument("--run", help="a finished SST-2 run to measure inference with "
                    "(default: the one the train part makes)")
    ap.add_argument("--subset", type=int, default=0, help="training sentences (0 = all)")
    ap.add_argument("--plain-steps", type=int, default=150)
    ap.add_argument("--memory-subset", type=int, default=4000)
    ap.add_argument("--ablation-subset", type=int, default=8000,
                    help="sentences for the fast-path ablation")
    args = ap.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    unknown = parts - {"train", "inference", "memory", "ablation"}
    if unknown:
        ap.error(f"unknown part(s) {', '.join(sorted(unknown))}: use train, inference, "
                 "memory, ablation")
    data = Path(args.data)
    if not (data / "train.tsv").exists():
        raise SystemExit(f"SST-2 not found in {data}.")
    out = ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report: dict = {"machine": platform.processor() or platform.machine(),
                    "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                    "args": vars(args)}

    def save() -> None:
        (out / "speed.json").write_text(json.dumps(report, indent=2))

    if "train" in parts:
        train = subset_file(data, args.subset, out)
        studio = run_engine("full", train, data / "dev.tsv", out, 1.0)
        plain = run_plain(data / "train.tsv", data / "dev.tsv", args.plain_steps, args.subset)
        studio["ratio"] = round(studio["train_samples_per_second"] /
                                plain["train_samples_per_second"], 2)
        report.update(studio=studio, plain=plain)
        print(json.dumps({"studio": studio, "plain": plain}), flush=True)
        save()
    if "inference" in parts:
        report["inference"] = inference(Path(args.run) if args.run else out / "sst2-full",
                                        data / "dev.tsv")
        print(json.dumps(report["inference"]), flush=True)
        save()
    if "memory" in parts:
        memory_train = subset_file(data, args.memory_subset, out)
        report["memory"] = {}
        for method in ("full", "lora", "head"):
            row = run_engine(method, memory_train, data / "dev.tsv", out / "memory", 1.0)
            report["memory"][method] = row.get("peak_memory_mb")
        print(json.dumps(report["memory"]), flush=True)
        save()
    if "ablation" in parts:
        report["ablation"] = ablation(data, subset_file(data, args.ablation_subset, out), out)
        save()
    print_report(report, args)


def print_report(report: dict, args) -> None:
    print(f"\nSST-2, {report['machine']}, {report['cores']} cores, {report['date']}\n")
    if "studio" in report:
        studio, plain = report["studio"], report["plain"]
        print("| | wall s | train samples/s | dev accuracy |")
        print("|---|---|---|---|")
        print(f"| plain Trainer ({plain['steps']} steps) | {plain['wall_seconds']} | "
              f"{plain['train_samples_per_second']} | {plain.get('dev_accuracy', 'n/a')} |")
        print(f"| studio (full) | {studio['wall_seconds']} | "
              f"{studio['train_samples_per_second']} ({studio['ratio']}x) | "
              f"{studio['dev_accuracy']} |")
    if "inference" in report:
        inf = report["inference"]
        print(f"\nInference, {inf['threads']} threads (plain pipeline: "
              f"{inf['pipeline_sentences_per_second']} sentences/s; Predictor's auto "
              f"runtime: {inf['preferred']}):\n")
        print("| runtime | one text p50 ms | p95 ms | dev batch sentences/s | dev accuracy |")
        print("|---|---|---|---|---|")
        for name, row in inf["runtimes"].items():
            label = name if row.get("kept") else f"{name} (not kept by the export check)"
            print(f"| {label} | {row['single_p50_ms']} | {row['single_p95_ms']} | "
                  f"{row['batch_sentences_per_second']} | {row['dev_accuracy']} |")
    if "memory" in report:
        print("Peak memory MiB: " + ", ".join(f"{m} {v}" for m, v in report["memory"].items()))
    if report.get("ablation"):
        print(f"\nFast paths, one at a time off ({args.ablation_subset} sentences, 1 epoch):\n")
        print("| studio full | train samples/s | vs default | dev accuracy |")
        print("|---|---|---|---|")
        base = report["ablation"][0]["train_samples_per_second"]
        for row in report["ablation"]:
            print(f"| {row['variant']} | {row['train_samples_per_second']} | "
                  f"{row['train_samples_per_second'] / base:.2f}x | {row['dev_accuracy']} |")

if __name__ == "__main__":
    main()
