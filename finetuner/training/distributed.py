"""One job on several processes: torchrun (PyTorch's launcher) with the Trainer's DDP.

A run whose `training.processes` is above 1 (or that holds several GPUs from the server's
slots) starts as `python -m torch.distributed.run --standalone --nproc_per_node N -m
finetuner.training.worker RUN_DIR`: one process per GPU (NCCL), or N gloo processes on a CPU.
The run directory stays the API: only rank 0 writes events, the log lines, checkpoints, results
and the model; the others train their share of each global batch and leave. Every rank evaluates the
whole validation split itself (same weights, same data: the same numbers), so early stopping,
the kept checkpoint and every other decision agree on all ranks without messages; the few
decisions that read a clock or a file (a stop request, the time limit, the checkpoint timer)
are agreed on with one all-reduce per step. A rank that fails writes `rank-R-error.json`, so
the run's failure names it (server.exits.finalize).
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def rank() -> int:
    return int(os.environ.get("RANK", "0") or 0)


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0") or 0)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def is_main() -> bool:
    return rank() == 0


def distributed() -> bool:
    return world_size() > 1


def device():
    """This rank's device: cuda:LOCAL_RANK on a GPU machine, else the CPU."""
    import torch

    if torch.cuda.is_available():
        index = local_rank() if distributed() else 0
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return torch.device("cpu")


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (one all-reduce; the flag itself when the job
    runs in one process or the process group is not up yet)."""
    if not distributed():
        return bool(flag)
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return bool(flag)
    on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=on)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def launch_command(python: str, module: str, run_dir: str, processes: int) -> list[str]:
    """The worker's command line: plain for one process, torchrun's for several."""
    if processes <= 1:
        return [python, "-m", module, run_dir]
    return [python, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
            "--nproc_per_node", str(processes), "--max_restarts", "0", "-m", module, run_dir]


def processes_for(config: dict, devices: tuple[str, ...] | None) -> int:
    """How many processes a job gets: one per GPU of its slot, else training.processes."""
    asked = int(((config or {}).get("training") or {}).get("processes") or 1)
    return max(asked, len(devices)) if devices and len(devices) > 1 else asked


def write_rank_error(run_dir: Path, results: dict) -> None:
    """A rank other than 0 that failed leaves its reason for the run's results."""
    error = dict(results.get("error") or {})
    error["rank"] = rank()
    (Path(run_dir) / f"rank-{rank()}-error.json").write_text(json.dumps(error))


def rank_errors(run_dir: Path) -> list[dict]:
    out = []
    for path in sorted(Path(run_dir).glob("rank-*-error.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out
