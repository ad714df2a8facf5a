"""GPU benchmark: the studio's training on one CUDA GPU, in one command.

    python bench/gpu.py --sst2 DIR_WITH_train.tsv_AND_dev.tsv [--model MODEL_DIR] [--out DIR]
    python bench/gpu.py --dry-run            # the same code paths, tiny sizes, on a CPU

1. SST-2, one epoch, default model, through the studio's real CLI and worker with its GPU
   defaults (batch size chosen from memory, bf16, length-grouped batches padded to multiples
   of 64, fused AdamW, data-loader workers), then again with batch 128: training seconds,
   samples/s, dev accuracy.
2. BERT-base size (a random `BertConfig()`), 128 tokens, bf16 autocast, fused AdamW, the
   training step the studio runs, eager and under `torch.compile`: tokens/s and the share of
   the GPU's dense bf16 peak, counted as 6 x non-embedding parameters x tokens per second.
3. Peak GPU memory of full fine-tuning and LoRA (r=8 on query/value) for BERT-base at batch
   32 and 128 tokens.

Writes one JSON file per part into --out and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L4": 121e12}


def log(*args) -> None:
    print(*args, flush=True)


def fp32_model(src: str, dest: Path) -> str:
    """The model as fp32 (a half-precision copy may have been carried to save space)."""
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    for f in Path(src).iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copy(f, dest / f.name)
    weights = load_file(str(Path(src) / "model.safetensors"))
    save_file({k: v.to(torch.float32).contiguous() for k, v in weights.items()},
              str(dest / "model.safetensors"))
    return str(dest)


def sst2(model: str, data: Path, out: Path, batch: int | None, subset: int) -> dict:
    train, dev = data / "train.tsv", data / "dev.tsv"
    if subset:
        lines = train.read_text().splitlines()
        train = out / "train-subset.tsv"
        train.write_text("\n".join(lines[: subset + 1]) + "\n")
    run = out / f"sst2-batch-{batch or 'auto'}"
    cmd = [sys.executable, "-m", "finetuner", "train", "--data", str(train), "--test", str(dev),
           "--validation-split", "0.015", "--test-split", "0", "--epochs", "1", "--model", model,
           "--output", str(run), "--overwrite", "--quiet"]
    if batch:
        cmd += ["--batch-size", str(batch)]
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t
    results = json.loads((run / "results.json").read_text()) if (run / "results.json").exists() \
        else {}
    if results.get("status") != "completed":
        return {"error": (proc.stdout + proc.stderr)[-3000:], "log": _tail(run / "worker.log")}
    timing = results["timing"]
    return {"dev_accuracy": results["test"]["accuracy"], "wall_seconds": round(wall, 1),
            **{k: timing[k] for k in ("train_seconds", "eval_seconds",
                                      "train_samples_per_second", "steps", "batch_size",
                                      "learning_rate", "device")}}


def _tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text().splitlines()[-n:]) if path.exists() else ""


def bert_base(dry: bool):
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig() if not dry else BertConfig(hidden_size=64, num_hidden_layers=2,
                                                     num_attention_heads=2,
                                                     intermediate_size=128)
    config.num_labels = 2
    return BertForSequenceClassification(config), config


def throughput(compile_: bool, batch: int, steps: int, dry: bool) -> dict:
    """Tokens/s of the studio's training step (bf16 autocast, fused AdamW) at 128 tokens."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    model, config = bert_base(dry)
    model.to(device).train()
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    step_model = torch.compile(model) if compile_ else model
    ids = torch.randint(1000, config.vocab_size, (batch, 128), device=device)
    labels = torch.randint(0, 2, (batch,), device=device)
    mask = torch.ones_like(ids)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16):
            loss = step_model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    t = time.perf_counter()
    for _ in range(3):
        step()
    _sync(device)
    warm = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - t
    tokens = batch * 128 * steps / seconds
    flops = 6 * non_embedding * tokens
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
    return {"compile": compile_, "batch": batch, "tokens_per_second": round(tokens),
            "samples_per_second": round(tokens / 128, 1), "tflops": round(flops / 1e12, 1),
            "share_of_peak": round(flops / peak, 3) if peak else None,
            "warmup_seconds": round(warm, 1), "non_embedding_params": non_embedding,
            "device": name}


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_memory(method: str, dry: bool) -> dict:
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type != "cuda":
        return {"method": method, "peak_gb": None, "note": "no GPU"}
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model, config = bert_base(dry)
    if method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=8,
                                                 lora_alpha=16, target_modules=["query",
                                                                                "value"]))
    model.to(device).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                            fused=True)
    ids = torch.randint(1000, config.vocab_size, (32, 128), device=device)
    labels = torch.randint(0, 2, (32,), device=device)
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 1e9
    del model, opt
    torch.cuda.empty_cache()
    return {"method": method, "peak_gb": round(peak, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sst2", default=str(ROOT.parent / "shared" / "data" / "sst2"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--out", default=str(ROOT / "bench" / "out" / "gpu"))
    ap.add_argument("--parts", default="sst2,memory,mfu,sst2_128")
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes, any device")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = args.model
    if model != "default" and Path(model).exists():
        model = fp32_model(model, Path("/tmp/finetuner-model-fp32"))
    summary = {}

    def save(key: str) -> None:
        log(key, json.dumps(summary.get(key)))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))

    for part in args.parts.split(","):  # in the order given, saved after each, so a
        if part in ("sst2", "sst2_128"):  # run cut short still reports what it finished
            batch = 128 if part == "sst2_128" else None
            key = f"sst2_batch_{batch or 'auto'}"
            summary[key] = sst2(model, Path(args.sst2), out, batch, 3000 if args.dry_run else 0)
            save(key)
        elif part == "mfu":
            steps = 2 if args.dry_run else 20
            batch = 8 if args.dry_run else 256
            for compile_, b in ((False, batch), (True, batch), (True, 2 * batch)):
                key = f"bert_base_{'compiled' if compile_ else 'eager'}_batch_{b}"
                try:
                    summary[key] = throughput(compile_, b, steps, args.dry_run)
                except Exception as exc:  # noqa: BLE001 - report and go on to the next part
                    summary[key] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
                save(key)
        elif part == "memory":
            for method in ("full", "lora"):
                summary[f"memory_{method}"] = peak_memory(method, args.dry_run)
                save(f"memory_{method}")
            full, lora = summary["memory_full"]["peak_gb"], summary["memory_lora"]["peak_gb"]
            if full and lora:
                summary["memory_lora_over_full"] = round(lora / full, 3)
                save("memory_lora_over_full")
        else:
            ap.error(f"unknown part {part!r}: use sst2, sst2_128, mfu, memory")
    log(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
