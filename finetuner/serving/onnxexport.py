"""ONNX export of a finished run, checked against PyTorch, and ONNX Runtime inference.

    RUN_DIR/model/onnx/model.onnx        fp32, exported by torch.onnx (dynamo exporter)
    RUN_DIR/model/onnx/model_int8.onnx   int8 dynamic quantisation (onnxruntime), only when
                                         its validation score stays within INT8_MAX_DROP
    RUN_DIR/model/onnx/onnx.json         the check: agreement with PyTorch and the score of
                                         each runtime on validation and test, latency, which
                                         runtime `Predictor` prefers
    RUN_DIR/model/onnx/config.json, tokenizer files: the folder loads on its own with
                                         onnxruntime, or with optimum's ORTModelFor... classes

The check scores the PyTorch model (fp32), the ONNX model and the int8 model on the run's own
validation and test splits. Which files are kept and which runtime is preferred is decided on
validation and on speed only; the test split's agreement and score difference are reported,
never used to choose (the test split chooses nothing).
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
import statistics
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from finetuner.errors import FinetunerError
from finetuner.models import batching
from finetuner.runs import RunPaths, write_json
from finetuner.serving.export import read_meta
from finetuner.serving.onnxreport import card_section
from finetuner.serving.runtimes import FILES, OnnxModel
from finetuner.tasks import DEFAULT_TASK, get_task
from finetuner.tasks.options import TaskOptions

INT8_MAX_DROP = 0.5  # points of the primary metric on validation an export may lose
MIN_AGREEMENT = 0.9  # and the share of validation answers it must give as PyTorch does
CHECK_ROWS = 2000  # examples per split the check reads (the first ones, in order)
RATE_FEATURES = 512  # features timed for the batch rate
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _Outputs(torch.nn.Module):
    """The model as a function of tensors returning a tuple (what the exporter traces)."""

    def __init__(self, model, inputs: list[str], outputs: list[str]) -> None:
        super().__init__()
        self.model, self.inputs, self.outputs = model, inputs, outputs

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        given = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": token_type_ids}
        out = self.model(**{k: given[k] for k in self.inputs})
        return tuple(getattr(out, name) for name in self.outputs)


def output_names(spec) -> list[str]:
    return list(spec.outputs)


def input_names(model, tokenizer) -> list[str]:
    """The inputs the tokenizer gives and the model takes, in INPUTS order."""

    from finetuner.models.heads import (
        unwrap,  # a mean-pooled head takes what its token-level model takes
    )

    takes = set(inspect.signature(unwrap(model).forward).parameters)
    given = set(getattr(tokenizer, "model_input_names", INPUTS))
    names = [n for n in INPUTS if n in takes and (n in given or n == "input_ids")]
    return names if "attention_mask" in names else names + ["attention_mask"]


def _export(model, tokenizer, spec, path: Path) -> str:
    """fp32 ONNX with dynamic batch and sequence axes; returns the exporter's name."""

    names, outs = input_names(model, tokenizer), output_names(spec)
    wrapped = _Outputs(model.float().eval().cpu(), names, outs)
    seq = 16
    vocab = int(getattr(model.config, "vocab_size", 1000))
    dummy = {"input_ids": torch.randint(5, min(vocab, 1000), (2, seq)),
             "attention_mask": torch.ones(2, seq, dtype=torch.long),
             "token_type_ids": torch.zeros(2, seq, dtype=torch.long)}
    args = tuple(dummy[n] for n in names)
    big = sum(p.numel() for p in model.parameters()) * 4 > 1.8e9  # protobuf's 2 GB limit
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed": not our ops
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from torch.export import Dim

            batch, length = Dim("batch", min=1, max=4096), Dim("sequence", min=1, max=8192)
            torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=outs,
                              dynamic_shapes=tuple({0: batch, 1: length} for _ in names),
                              dynamo=True, optimize=True, external_data=big, verbose=False)
            return "torch.onnx, dynamo exporter"
        except Exception as exc:  # noqa: BLE001 - an architecture the new exporter cannot take
            print(f"dynamo ONNX export failed ({type(exc).__name__}: {str(exc)[:200]}); "
                  "trying the TorchScript exporter", flush=True)
            for leftover in path.parent.glob(path.name + "*"):
                leftover.unlink()
            torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=outs,
                              dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
                              dynamo=False, opset_version=17)
            return "torch.onnx, TorchScript exporter"
        finally:
            quiet.setLevel(level)


def _quantize(src: Path, dest: Path) -> None:
    """int8 dynamic quantisation of the weights of MatMul/Gemm, one scale per output channel
    (activations are quantised on the fly). Per channel kept SST-2 dev accuracy at 0.8750
    against fp32's 0.8761 with the default model; one scale per tensor gave 0.8704."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing": advice for static quantisation
    try:
        quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def rebuild_splits(run: RunPaths) -> dict:
    """The run's validation and test examples, read again from its data with its config;
    refused when the data no longer splits into the same examples."""
    cfg = run.load_config()
    impl = get_task(cfg.task).impl()
    try:
        data = impl.prepare(cfg)
    except FinetunerError as exc:
        raise FinetunerError(f"The data of run {run.id} cannot be read again ({exc.message})",
                             "Export ONNX when training (the onnx setting) to check the export "
                             "on the run's own splits.", code="data_changed") from None
    from finetuner.tasks.pipeline import split_digest

    report = json.loads(run.data_report.read_text("utf-8")) if run.data_report.exists() else {}
    saved = (report.get("extra") or {}).get("split_digest")
    if saved and saved != split_digest(data):
        raise FinetunerError(
            f"The data of run {run.id} changed since it trained: its validation and test "
            "splits are no longer the ones it was scored on.",
            "Restore the original data file, or export ONNX when training (the onnx setting).",
            code="data_changed")
    return {"validation": data.validation, "test": data.test}


def _runtime_outputs(model, feats, collate, rows, spec, amp=None, timed=False, interrupt=None
                     ) -> tuple[list, float]:
    """fp32 outputs; with `timed`, examples per second of a second, warm pass at the
    precision Predictor runs it with (PyTorch: bf16 autocast for batches where the CPU runs
    it fast; ONNX: its file's), every runtime timed alike."""
    outputs, _ = batching.run_model(model, feats, collate, 64, interrupt=interrupt, spec=spec)
    if not timed:
        return outputs, 0.0
    sample = feats[:RATE_FEATURES]  # a bounded timing pass, whatever the split's size
    t0 = time.perf_counter()
    batching.run_model(model, sample, collate, 64, amp, interrupt=interrupt, spec=spec)
    per_feature = (time.perf_counter() - t0) / max(1, len(sample))
    return outputs, rows / max(1e-9, per_feature * len(feats))


VALUE_TOLERANCE = 0.01  # numbers agree within 1% of the span of PyTorch's answers


def same_means(spec) -> str:
    """What "the same answer" of two runtimes means for the task."""
    return spec.same_answer.format(tolerance=f"{VALUE_TOLERANCE:.0%}")


def _agree(decisions: list, reference: list) -> float:
    """Share of rows whose decision equals the reference's; numbers (regression) agree within
    VALUE_TOLERANCE of the span of the reference's numbers, in the target's own units."""
    if not decisions:
        return 0.0
    if all(isinstance(d, float) for d in reference):
        span = (max(reference) - min(reference)) if reference else 0.0
        tol = VALUE_TOLERANCE * span if span > 0 else 1e-6
        same = sum(abs(a - b) <= tol for a, b in zip(decisions, reference))
    else:
        same = sum(a == b for a, b in zip(decisions, reference))
    return same / len(decisions)


def _latency(model, feats, collate, spec, repeats: int = 30, interrupt=None) -> float:
    """Median milliseconds for one example (the try-it box) of median length."""
    if not feats:
        return 0.0
    one = [sorted(feats, key=lambda f: len(f["input_ids"]))[len(feats) // 2]]
    batching.run_model(model, one, collate, 1, interrupt=interrupt, spec=spec)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        batching.run_model(model, one, collate, 1, spec=spec)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 2)


def check(models: dict, tokenizer, meta: dict, splits: dict, interrupt=None) -> dict:
    """Each runtime's score on each split and its agreement with PyTorch fp32, scored with
    the settings the model serves with (multi-label: its saved thresholds, never thresholds
    tuned again on the split being scored)."""
    spec = get_task(meta.get("task") or DEFAULT_TASK)
    impl = spec.impl()
    labels = [str(x) for x in meta.get("labels") or []]
    options = TaskOptions.from_dict(meta.get("options"))
    hooks = {**options.hooks(), "thresholds_tuned": True}
    max_length = int(meta.get("max_length") or 128)
    label2id = {n: i for i, n in enumerate(labels)}
    collate = batching.collator(tokenizer.pad_token_id or 0, "cpu")
    metric = spec.primary_metric
    report: dict = {"metric": metric, "splits": {}, "latency_ms": {}, "rows_per_second": {}}
    for split, examples in splits.items():
        examples = list(examples)[:CHECK_ROWS]
        if not examples:
            continue
        feats = impl.featurize(examples, tokenizer, max_length, label2id, **hooks)
        entry: dict = {"n": len(examples)}
        reference = None
        for name, model in models.items():
            amp = batching.pick_precision("auto", torch.device("cpu")) if name == "torch" \
                else None
            outputs, rate = _runtime_outputs(model, feats, collate, len(examples), spec, amp,
                                             timed=split == "validation", interrupt=interrupt)
            score = impl.metrics(outputs, feats, examples, labels, **hooks).get(metric)
            decoded = impl.decode(outputs, feats, examples, labels, **hooks)
            decisions = [impl.decision(p) for p in decoded]
            if decoded and "same_means" not in report:
                report["same_means"] = same_means(spec)
            row = {"score": None if score is None else round(float(score), 4)}
            if reference is None:
                reference = (decisions, outputs, row["score"])
            else:
                row["agreement"] = round(_agree(decisions, reference[0]), 4)
                if decisions and all(isinstance(d, float) for d in reference[0]):
                    # numbers: the largest difference, in the target's own units
                    worst = max(abs(a - b) for a, b in zip(decisions, reference[0]))
                    row["max_answer_difference"] = float(f"{worst:.3g}")
                if row["score"] is not None and reference[2] is not None:
                    row["difference_points"] = round((row["score"] - reference[2]) * 100, 2)
                row["max_output_difference"] = float(f"{_max_diff(outputs, reference[1]):.3g}")
            entry[name] = row
            if split == "validation":
                report["rows_per_second"][name] = round(rate, 1)
        report["splits"][split] = entry
        if split == "validation":
            report["latency_ms"] = {name: _latency(m, feats, collate, spec, interrupt=interrupt)
                                    for name, m in models.items()}
    return report


def _max_diff(outputs, reference) -> float:
    worst = 0.0
    for a, b in zip(outputs, reference):
        pairs = zip(a, b) if isinstance(a, tuple) else [(a, b)]
        for x, y in pairs:
            worst = max(worst, float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
                        if np.size(x) else 0.0)
    return worst


def _kept(report: dict, runtime: str) -> tuple[bool, str]:
    """Whether a runtime's validation score stays within INT8_MAX_DROP of PyTorch's."""
    val = (report["splits"].get("validation") or {}).get(runtime)
    if val is None:
        return False, "no validation split to check it on"
    diff = val.get("difference_points")
    agree = val.get("agreement", 0)
    if diff is None:
        return agree >= 0.99, f"agreement {agree:.1%} on validation"
    if agree < MIN_AGREEMENT:
        # a weak model's score cannot drop far, yet its answers can change a lot: an export
        # that gives other answers than PyTorch is not handed to the try-it box
        return False, f"agrees with PyTorch on only {agree:.1%} of validation"
    return diff >= -INT8_MAX_DROP, f"{diff:+.2f} points on validation"


def export_run(run_dir: str | Path, splits: dict | None = None, events=None,
               interrupt=None) -> dict:
    """Export RUN_DIR/model to RUN_DIR/model/onnx, check it, record it; returns onnx.json.
    `interrupt()` is polled between the steps and the check's batches (StopRequested)."""
    from finetuner.serving.inference import Predictor

    run = RunPaths(Path(run_dir))
    meta = read_meta(run.model)
    if not meta:
        raise FinetunerError(f"Run {run.id} has no saved model to export.",
                             "Finish (or stop after the first evaluation) a training first.",
                             code="no_model")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise FinetunerError("ONNX export needs onnxruntime, which is not installed.",
                             "pip install -r requirements.txt (it pins onnxruntime, onnx and "
                             "onnxscript).", code="no_onnxruntime") from None
    t0 = time.perf_counter()
    if splits is None:
        splits = rebuild_splits(run)
    if events is not None:
        events.emit("status", state="onnx", message="Exporting to ONNX and checking the export")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar in the export's output
    # on the CPU: the export and ONNX Runtime's CPU sessions need no GPU memory
    predictor = Predictor.load(run.root, runtime="torch", device="cpu")
    model = predictor.model.float().eval()
    tmp = run.model / "onnx.part"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        summary = _export_checked(model, predictor, meta, splits, tmp, t0, interrupt)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a half-made export never ships in the zip
        raise
    final = run.model / "onnx"
    shutil.rmtree(final, ignore_errors=True)
    tmp.replace(final)
    _record(run, summary)
    return summary


def _export_checked(model, predictor, meta: dict, splits: dict, tmp: Path, t0: float,
                    interrupt) -> dict:
    def poll() -> None:
        if interrupt is not None and interrupt():
            raise batching.StopRequested

    poll()
    exporter = _export(model, predictor.tokenizer, predictor.spec, tmp / FILES["onnx"])
    poll()
    _quantize(tmp / FILES["onnx"], tmp / FILES["onnx-int8"])
    export_seconds = round(time.perf_counter() - t0, 1)
    poll()
    models = {"torch": model, "onnx": OnnxModel(tmp / FILES["onnx"]),
              "onnx-int8": OnnxModel(tmp / FILES["onnx-int8"])}
    report = check(models, predictor.tokenizer, meta, splits, interrupt)
    kept = {}
    for name in ("onnx", "onnx-int8"):
        ok, why = _kept(report, name)
        kept[name] = {"kept": ok, "why": why}
        if not ok:
            (tmp / FILES[name]).unlink()
    usable = ["torch"] + [n for n in ("onnx", "onnx-int8") if kept[n]["kept"]]
    preferred = min(usable, key=lambda n: report["latency_ms"].get(n, float("inf")))
    batch = max(usable, key=lambda n: report["rows_per_second"].get(n, 0.0))
    model.config.save_pretrained(tmp)  # config.json with the label map, for optimum
    predictor.tokenizer.save_pretrained(tmp)
    sizes = {n: round(sum(f.stat().st_size for f in tmp.glob(FILES[n] + "*")) / 1e6, 1)
             for n in ("onnx", "onnx-int8") if kept[n]["kept"]}
    summary = {"exporter": exporter, "torch": torch.__version__,
               "onnxruntime": _version("onnxruntime"),
               "files": {n: f"onnx/{FILES[n]}" for n in ("onnx", "onnx-int8")
                         if kept[n]["kept"]},
               "sizes_mb": sizes, "kept": kept, "max_drop_points": INT8_MAX_DROP,
               "min_agreement": MIN_AGREEMENT,
               "preferred": preferred, "preferred_batch": batch,
               "export_seconds": export_seconds,
               "check_seconds": round(time.perf_counter() - t0 - export_seconds, 1), **report}
    write_json(tmp / "onnx.json", summary)
    return summary


def _version(name: str) -> str:
    try:
        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


def _record(run: RunPaths, summary: dict) -> None:
    """finetuner.json names the export, the model card gains its section, the run's zip is
    made again with the files, and only then results.json says the export is there (the
    results page offers the zip it finds when it reads that)."""
    from finetuner.serving.export import make_zip

    meta = read_meta(run.model)
    meta["onnx"] = {k: summary[k] for k in ("files", "preferred", "preferred_batch", "kept",
                                            "exporter")}
    write_json(run.model / "finetuner.json", meta)
    card = run.model / "README.md"
    if card.exists():
        text = card.read_text("utf-8").split("\n## ONNX\n")[0].rstrip("\n")
        card.write_text(text + "\n" + "\n".join(card_section(summary, meta)) + "\n", "utf-8")
    if (run.root / "model.zip").exists():
        make_zip(run)
    if run.results.exists():
        results = json.loads(run.results.read_text("utf-8"))
        results["onnx"] = summary
        write_json(run.results, results)
