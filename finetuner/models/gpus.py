"""GPU slots of one server: which job holds which GPUs.

`FINETUNER_GPUS` lists the devices jobs may use (`0,1,2,3`, or `all` for every GPU the server
sees; a device may be named twice, `0,0`, for two jobs sharing one GPU) and
`FINETUNER_GPUS_PER_JOB` (default 1) how many each job gets. The list is cut into sets of
that size; a job starts only when a set is free and its worker sees only its own set through
`CUDA_VISIBLE_DEVICES`. Without FINETUNER_GPUS there are no slots and nothing changes. No torch
here: the count for `all` is handed in by whoever imported torch (the server).
"""

from __future__ import annotations

import os
import threading

from finetuner.errors import FinetunerError


def parse_devices(value: str | None, visible: int = 0) -> list[str]:
    """'0,1,3' -> ['0', '1', '3']; 'all' -> every visible device; '' -> []."""
    text = (value or "").strip()
    if not text:
        return []
    if text.lower() == "all":
        if visible <= 0:
            raise FinetunerError("FINETUNER_GPUS=all, but this server sees no GPU.",
                                 "Unset FINETUNER_GPUS, or check the GPU driver "
                                 "(python -m finetuner doctor).", code="bad_env")
        return [str(i) for i in range(visible)]
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise FinetunerError(f"FINETUNER_GPUS={value!r}: '{part}' is not a GPU number.",
                                 "Write device numbers separated by commas (0,1,2,3) or all.",
                                 code="bad_env")
        if visible and int(part) >= visible:
            raise FinetunerError(f"FINETUNER_GPUS names GPU {part}, but this server sees "
                                 f"{visible} GPU(s) (0-{visible - 1}).",
                                 "Name only devices that exist.", code="bad_env")
        out.append(part)
    return out


class GpuSlots:
    """Sets of devices, each held by at most one job at a time."""

    def __init__(self, devices: list[str], per_job: int = 1) -> None:
        if per_job < 1:
            raise FinetunerError("FINETUNER_GPUS_PER_JOB must be 1 or more.", code="bad_env")
        if devices and per_job > len(devices):
            raise FinetunerError(
                f"FINETUNER_GPUS_PER_JOB={per_job}, but FINETUNER_GPUS lists only "
                f"{len(devices)} device(s).", "Give each job at most the devices listed.",
                code="bad_env")
        whole = len(devices) // per_job * per_job  # a remainder too small for a job is unused
        self.sets = [tuple(devices[i:i + per_job]) for i in range(0, whole, per_job)]
        self.per_job = per_job
        self._held: dict[str, int] = {}  # run id -> index of its set
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.sets)

    @property
    def free(self) -> int:
        with self._lock:
            return len(self.sets) - len(self._held)

    def acquire(self, run_id: str) -> tuple[str, ...] | None:
        """A free set for the run (its own again if it already holds one), or None."""
        with self._lock:
            if run_id in self._held:
                return self.sets[self._held[run_id]]
            taken = set(self._held.values())
            for i in range(len(self.sets)):
                if i not in taken:
                    self._held[run_id] = i
                    return self.sets[i]
            return None

    def adopt(self, run_id: str, devices: tuple[str, ...]) -> bool:
        """After a restart: a worker still running keeps the set it was started with."""
        with self._lock:
            for i, s in enumerate(self.sets):
                if s == tuple(devices) and i not in self._held.values():
                    self._held[run_id] = i
                    return True
            return False

    def release(self, run_id: str) -> None:
        with self._lock:
            self._held.pop(run_id, None)

    def held(self) -> dict[str, tuple[str, ...]]:
        with self._lock:
            return {run: self.sets[i] for run, i in self._held.items()}

    def describe(self) -> str:
        if not self.sets:
            return "no GPU slots (FINETUNER_GPUS unset): workers use what torch picks"
        return (f"{len(self.sets)} slot(s) of {self.per_job} GPU(s): "
                + "; ".join(",".join(s) for s in self.sets))


def visible_gpu_count() -> int:
    """What torch sees (0 without CUDA); imported only here and only when asked."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # noqa: BLE001 - no torch, a broken driver: no GPUs
        return 0


def slots_from_env(environ=None, visible: int | None = None) -> GpuSlots:
    """FINETUNER_GPUS and FINETUNER_GPUS_PER_JOB as slots (empty without FINETUNER_GPUS)."""

    env = os.environ if environ is None else environ
    value = env.get("FINETUNER_GPUS", "")
    if visible is None:
        visible = visible_gpu_count() if value.strip() else 0
    if value.strip() and visible <= 0:
        raise FinetunerError(f"FINETUNER_GPUS={value!r}, but this server sees no GPU.",
                             "Unset FINETUNER_GPUS, or check the GPU driver "
                             "(python -m finetuner doctor).", code="bad_env")
    per_job = env.get("FINETUNER_GPUS_PER_JOB", "1").strip() or "1"
    if not per_job.isdigit():
        raise FinetunerError(f"FINETUNER_GPUS_PER_JOB={per_job!r} is not a whole number.",
                             code="bad_env")
    return GpuSlots(parse_devices(value, visible), int(per_job))
