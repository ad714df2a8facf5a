"""What a child process (a training worker, a file prediction, a later ONNX export) inherits
from the server: `worker_env` keeps the variables that locate programs, libraries, caches and
devices, and never a sign-in secret or token."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # the folder that holds finetuner/
# What a child process (training worker, batch prediction) inherits from the server: the
# variables that locate programs, libraries, caches and devices, never sign-in secrets or
# tokens (FINETUNER_AUTH, HF_TOKEN, OAuth secrets stay in the web process).
ENV_KEEP = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP",
            "TMP", "PYTHONPATH", "PYTHONHOME", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
            "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES",
            "CUDA_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT",
            "HF_HUB_DISABLE_TELEMETRY", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_CACHE",
            "TOKENIZERS_PARALLELISM", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "XDG_CACHE_HOME",
            "FINETUNER_MODEL_CACHE",
            "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "COVERAGE_PROCESS_START",
            # an administrator's shared MLflow server for runs that report to mlflow (else
            # each run keeps its own store in its folder; see finetuner.training.trackers)
            "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")
ENV_KEEP_PREFIXES = ("LC_", "FINETUNER_WORKER_", "FINETUNER_CHECKPOINT_", "FINETUNER_TEST_")
SECRET_MARKERS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "AUTH", "CREDENTIAL", "KEY")


def worker_env(base: dict | None = None, **extra: str) -> dict:
    """A scrubbed environment for a child process: only ENV_KEEP and its prefixes survive,
    and nothing whose name looks like a secret, whatever its prefix."""
    base = dict(os.environ if base is None else base)
    env = {k: v for k, v in base.items()
           if (k in ENV_KEEP or k.startswith(ENV_KEEP_PREFIXES))
           and not any(m in k.upper() for m in SECRET_MARKERS)}
    env["PYTHONPATH"] = PACKAGE_PARENT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update({k: str(v) for k, v in extra.items()})
    return env
