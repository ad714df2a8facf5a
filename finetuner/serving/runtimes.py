"""Which runtime answers for a finished model, and ONNX Runtime sessions: light enough for the
page and the predictor to import without the exporter (torch is imported only where a session
or a GPU check needs it). The export itself and its check are `onnxexport`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from finetuner.errors import FinetunerError

RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
# words for the page (no command lines there: those are in the README's command-line part)
STOPPED = ("The run was stopped, so no ONNX export was made. The PyTorch model works as it "
           "is; export it when you like with Export to ONNX on the Results tab.")
PENDING = ("The model is being exported to ONNX and checked against PyTorch; this updates when "
           "it is done. If it never does, the export was cut short (a stop or a server "
           "restart): the PyTorch model works as it is, and Export to ONNX starts it again.")
FILES = {"onnx": "model.onnx", "onnx-int8": "model_int8.onnx"}
TITLES = {"torch": "PyTorch", "onnx": "ONNX Runtime fp32", "onnx-int8": "ONNX Runtime int8"}


class OnnxModel:
    """An ONNX Runtime session that answers like a transformers model for
    batching.run_model: called with torch tensors, returns .logits (or .start_logits and
    .end_logits) as torch tensors. CPU only; no torch weights are loaded."""

    training = False

    @property
    def device(self):
        import torch

        return torch.device("cpu")

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        import torch

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.outputs = [o.name for o in self.session.get_outputs()]

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def __call__(self, **batch):
        ids = batch["input_ids"]
        feeds = {}
        for name in self.inputs:
            value = batch.get(name)
            feeds[name] = (value.numpy() if value is not None
                           else np.zeros(tuple(ids.shape), dtype=np.int64))
        values = dict(zip(self.outputs, self.session.run(None, feeds)))
        import torch

        return SimpleNamespace(loss=None, **{name: torch.from_numpy(value)
                                             for name, value in values.items()})


def points(value) -> str:
    return "-" if value is None else f"{value:+.2f}"


def requested(runtime: str | None) -> str:
    """The runtime asked for: the argument, else $FINETUNER_RUNTIME, else auto."""

    return (runtime or os.environ.get("FINETUNER_RUNTIME") or "auto").strip().lower()


def pick(model_dir: Path, meta: dict, runtime: str | None, batch: bool = False) -> str:
    """The runtime a Predictor uses: auto takes the export's fastest kept runtime on a CPU
    machine, for one text at a time (the try-it box) or for files (`batch`), and PyTorch on a
    GPU; an explicit choice must exist."""
    runtime = requested(runtime)
    if runtime not in RUNTIMES:
        raise FinetunerError(f"Unknown runtime '{runtime}'.",
                             "Choose auto, torch, onnx or onnx-int8.", code="bad_runtime")
    info = meta.get("onnx") or {}
    files = info.get("files") or {}
    if runtime == "auto":
        preferred = info.get("preferred_batch" if batch else "preferred", "torch")
        if preferred == "torch" or preferred not in files or _cuda() or \
                not _inside(model_dir, files[preferred]) or not _has_ort():
            return "torch"
        return preferred
    if runtime == "torch":
        return runtime
    if not info:
        raise FinetunerError(
            "This model has no ONNX export.",
            "Tick 'Also export ONNX' in Advanced settings before training, or export it: "
            "python -m finetuner export --run RUN_DIR --onnx.", code="no_onnx")
    if runtime not in files or not _inside(model_dir, files[runtime]):
        why = (info.get("kept") or {}).get(runtime, {}).get("why", "missing")
        other = "onnx or torch" if runtime == "onnx-int8" and "onnx" in files else "torch"
        raise FinetunerError(
            f"The {TITLES[runtime]} export of this model was not kept ({why}).",
            f"Use runtime {other}.", code="no_onnx")
    if not _has_ort():
        raise FinetunerError("onnxruntime is not installed.",
                             "pip install -r requirements.txt", code="no_onnxruntime")
    return runtime


def _inside(model_dir: Path, name) -> bool:
    """A file named by finetuner.json that exists inside the model's onnx/ folder."""
    path = Path(str(name))
    if path.is_absolute() or ".." in path.parts or path.parts[:1] != ("onnx",):
        return False
    return (model_dir / path).is_file()


def _has_ort() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
