"""How an ONNX export is described: the usage snippets (onnxruntime, optimum), the model card's
ONNX section and the few lines the CLI and the results page show. Text only: no torch."""

from __future__ import annotations

from pathlib import Path

from finetuner.serving.runtimes import FILES, PENDING, TITLES, points
from finetuner.tasks import DEFAULT_TASK, get_task

ORT_USAGE = '''import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{path}/onnx")
session = ort.InferenceSession("{path}/{file}", providers=["CPUExecutionProvider"])
enc = tokenizer({args}, return_tensors="np")
feeds = {{i.name: enc[i.name].astype(np.int64) for i in session.get_inputs()}}
{outputs} = session.run(None, feeds)'''

OPTIMUM_USAGE = '''from optimum.onnxruntime import {cls}
from transformers import AutoTokenizer

model = {cls}.from_pretrained("{path}/onnx", file_name="{name}")
tokenizer = AutoTokenizer.from_pretrained("{path}/onnx")'''


def usage(meta: dict, path: str = "path/to/model", runtime: str | None = None) -> str:
    spec = get_task(meta.get("task") or DEFAULT_TASK)
    runtime = runtime or (meta.get("onnx") or {}).get("preferred")
    files = (meta.get("onnx") or {}).get("files") or {}
    if runtime not in files:
        runtime = "onnx-int8" if "onnx-int8" in files else "onnx"
    file = files.get(runtime, f"onnx/{FILES['onnx']}")
    outputs = ", ".join(spec.outputs) if len(spec.outputs) > 1 else f"({spec.outputs[0]},)"
    return ORT_USAGE.format(path=path, file=file, args=spec.onnx_example, outputs=outputs)


def optimum_usage(meta: dict, path: str = "path/to/model") -> str:
    spec = get_task(meta.get("task") or DEFAULT_TASK)
    cls = "ORT" + spec.auto_model.removeprefix("Auto")
    files = (meta.get("onnx") or {}).get("files") or {}
    name = Path(files.get("onnx-int8") or files.get("onnx") or FILES["onnx"]).name
    return OPTIMUM_USAGE.format(cls=cls, path=path, name=name)


def card_section(summary: dict, meta: dict) -> list[str]:
    lines = ["", "## ONNX", "",
             f"Exported with {summary['exporter']} (torch {summary['torch']}) and checked "
             f"against the PyTorch model (fp32) with onnxruntime {summary['onnxruntime']}:", "",
             f"| runtime | file | validation {summary['metric']} | agreement | "
             f"test {summary['metric']} | agreement | one text (ms) | texts/s in batches |",
             "|---|---|---|---|---|---|---|---|"]
    for name in ("torch", "onnx", "onnx-int8"):
        kept = name == "torch" or summary["kept"][name]["kept"]
        cells = [TITLES[name] + ("" if kept else " (not kept)"),
                 summary["files"].get(name, "-" if name != "torch" else "model.safetensors")]
        for split in ("validation", "test"):
            row = (summary["splits"].get(split) or {}).get(name) or {}
            cells += [_fmt(row.get("score")), _pct(row.get("agreement"), name)]
        cells += [_fmt(summary["latency_ms"].get(name)),
                  _fmt(summary["rows_per_second"].get(name))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"int8 is kept only when its validation score stays within "
              f"{summary['max_drop_points']} points of PyTorch's and it gives PyTorch's answer "
              f"on at least {summary.get('min_agreement', 0.9):.0%} of validation; the test "
              "split is reported, "
              f"never used to choose. finetuner's Predictor uses "
              f"{TITLES[summary['preferred']]} for one text and "
              f"{TITLES[summary.get('preferred_batch', 'torch')]} for files (the fastest kept "
              "runtimes on the exporting machine).", "",
              "With onnxruntime alone (the outputs are the logits; the task's post-processing "
              "is as in Usage above):", "", "```python",
              usage(meta), "```", "", "With optimum:", "", "```python", optimum_usage(meta),
              "```"]
    return lines


def _fmt(value) -> str:
    return "-" if value is None else f"{value:g}"


def _pct(value, name: str) -> str:
    if name == "torch":
        return "(reference)"
    return "-" if value is None else f"{value:.1%}"


def summary_lines(summary: dict) -> list[str]:
    """The check in a few lines, for the CLI and the results page."""
    if summary.get("error"):
        return [summary["error"]]
    if summary.get("pending"):
        return [PENDING]
    out = []
    for name in ("onnx", "onnx-int8"):
        val = (summary["splits"].get("validation") or {}).get(name) or {}
        test = (summary["splits"].get("test") or {}).get(name) or {}
        state = "kept" if summary["kept"][name]["kept"] else \
            f"not kept ({summary['kept'][name]['why']}, more than {summary['max_drop_points']})"
        out.append(
            f"{TITLES[name]}: {state}; agreement with PyTorch {_pct(val.get('agreement'), name)} "
            f"validation, {_pct(test.get('agreement'), name)} test; "
            f"{summary['metric']} {points(val.get('difference_points'))} / "
            f"{points(test.get('difference_points'))} points; "
            f"{summary['latency_ms'].get(name)} ms per text")
    rates = ", ".join(f"{TITLES[n]} {summary['rows_per_second'].get(n)}"
                      for n in ("torch", "onnx", "onnx-int8") if n in summary["rows_per_second"])
    out.append(f"PyTorch: {summary['latency_ms'].get('torch')} ms per text. Texts per second in "
               f"batches: {rates}. Predictor uses {TITLES[summary['preferred']]} for one text, "
               f"{TITLES[summary.get('preferred_batch', 'torch')]} for files.")
    return out
