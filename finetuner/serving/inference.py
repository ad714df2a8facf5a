"""Predictions from a finished run: `Predictor.load(RUN_DIR)`.

    from finetuner import Predictor
    p = Predictor.load("runs/sentiment")
    p.predict("A triumph.")        # {"label": "positive", "score": 0.97, "probabilities": {...}}
    p.predict_file("new.csv", "predictions.csv")

Inputs are batched by length with no gradient tracking. Works on merged models and on
adapter-only (peft) exports. Where the run has an ONNX export (finetuner.serving.onnxexport), the
runtime setting chooses who computes: `auto` (the default, or $FINETUNER_RUNTIME) takes the
export's fastest kept runtime on a CPU machine and PyTorch on a GPU; `torch`, `onnx` and
`onnx-int8` ask for one. An ONNX predictor loads no PyTorch weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from finetuner.csvsafe import SafeWriter
from finetuner.data.tables import read_table
from finetuner.errors import FinetunerError
from finetuner.evaluation.calibration import scale_outputs
from finetuner.models import batching
from finetuner.models.heads import MEAN, MeanPooled
from finetuner.models.modeling import for_split_words, resolve_model
from finetuner.serving.export import read_meta
from finetuner.tasks import DEFAULT_TASK, get_task
from finetuner.tasks.options import TaskOptions

BF16_MIN_BATCH = 16


class Predictor:
    def __init__(self, model, tokenizer, meta: dict, runtime: str = "torch") -> None:
        self.model = model.eval()
        self.runtime = runtime
        self.tokenizer = tokenizer
        self.meta = meta
        self.spec = get_task(meta.get("task", DEFAULT_TASK))
        self.impl = self.spec.impl()
        self.labels = [str(x) for x in meta.get("labels") or []]
        self.max_length = int(meta.get("max_length") or 256)
        self.pad_id = tokenizer.pad_token_id or 0
        self.options = TaskOptions.from_dict(meta.get("options"))
        self.temperature = float(meta.get("temperature") or 1.0)
        self.device = batching.device_of(model)
        # ONNX Runtime computes in the precision of its file
        self.amp = batching.pick_precision("auto", self.device) if runtime == "torch" else None

    @classmethod
    def load(cls, path: str | Path, runtime: str | None = None, batch: bool = False,
             device: str | None = None) -> Predictor:
        """Load from a run directory or straight from a model folder; `runtime`: auto (None:
        $FINETUNER_RUNTIME or auto), torch, onnx or onnx-int8. `batch`: for whole files (auto
        then takes the runtime fastest in batches, not for one text). `device` (PyTorch):
        default the GPU where there is one."""
        path = Path(path)
        model_dir = path / "model" if (path / "model").is_dir() else path
        meta = read_meta(model_dir)
        if not meta:
            raise FinetunerError(
                f"'{path}' holds no finished model (finetuner.json is missing).",
                "Pick a run that completed, or a folder exported by finetuner.",
                code="no_model",
            )
        from finetuner.serving import runtimes

        asked = runtimes.requested(runtime)
        chosen = runtimes.pick(model_dir, meta, asked, batch)
        import transformers

        spec = get_task(meta.get("task", DEFAULT_TASK))
        pooled = meta.get("body_pooling") == MEAN
        auto = getattr(transformers, "AutoModelForTokenClassification" if pooled
                       else spec.auto_model)
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
        if spec.split_words:  # exports made before add_prefix_space was saved with them

            tokenizer = for_split_words(tokenizer, model_dir)
        if chosen != "torch":
            try:
                model = runtimes.OnnxModel(model_dir / meta["onnx"]["files"][chosen])
                return cls(model, tokenizer, meta, runtime=chosen)
            except Exception as exc:  # noqa: BLE001 - a damaged file, an older onnxruntime
                if asked != "auto":
                    raise FinetunerError(
                        f"ONNX Runtime could not load this model's {chosen} file "
                        f"({type(exc).__name__}: {str(exc)[:200]}).",
                        "Use runtime torch, or export the model again.",
                        code="bad_onnx") from None
                print(f"ONNX file not loaded ({type(exc).__name__}); using PyTorch",
                      flush=True)
        if meta.get("format") == "peft-adapter":
            from peft import PeftModel

            labels = meta.get("labels") or []
            kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                      "label2id": {n: i for i, n in enumerate(labels)}} if labels else {}
            if spec.problem_type:
                kwargs["problem_type"] = spec.problem_type
            base = auto.from_pretrained(_base_model_path(path, meta), use_safetensors=True,
                                        **kwargs)
            model = PeftModel.from_pretrained(base, model_dir).merge_and_unload()
        else:
            model = auto.from_pretrained(model_dir, use_safetensors=True)
        if pooled:
            model = MeanPooled(model, spec.problem_type)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if device != "cpu":
            model = model.to(device)
        return cls(model, tokenizer, meta)

    # -- predicting
    def predict(self, texts: str | list[str], pairs: str | list[str] | None = None,
                batch_size: int = 64):
        """Label with probabilities for one text (a dict) or many (a list of dicts)."""
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if isinstance(pairs, str):
            pairs = [pairs]
        if pairs is not None and len(pairs) != len(texts):
            raise FinetunerError("Give one pair text per text.", code="bad_pairs")
        examples = [{"text": t or "", **({"pair": pairs[i] or ""} if pairs else {})}
                    for i, t in enumerate(texts)]
        out = self.predict_examples(examples, batch_size)
        return out[0] if single else out

    def answer(self, question: str, context: str) -> dict:
        """Question answering: the answer span in `context`, with start/end character offsets,
        probability and runners-up (see finetuner.tasks.qa.decode)."""
        return self.predict_examples([{"question": question or "", "context": context or ""}])[0]

    def predict_examples(self, examples: list[dict], batch_size: int = 64) -> list:
        if not examples:
            return []
        feats = self.impl.featurize(examples, self.tokenizer, self.max_length, {},
                                    **self.options.hooks())
        # many texts: bf16 where the hardware runs it fast (about 2x on such CPUs); one text
        # (the try-it box) stays in fp32, which is quick enough and exactly reproducible
        amp = self.amp if len(feats) >= BF16_MIN_BATCH else None
        outputs, _ = batching.run_model(self.model, feats, self._collate, batch_size, amp,
                                        spec=self.spec)
        # calibrated probabilities: logits / T fitted on the validation split (argmax unchanged)
        outputs = scale_outputs(outputs, self.temperature)
        return self.impl.decode(outputs, feats, examples, self.labels, **self.options.hooks())

    def _collate(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        return batching.pad_batch(batch, self.pad_id)

    # -- files
    def predict_file(self, path: str | Path, out: str | Path) -> Path:
        """Predict every row of a data file and write a CSV with the answers appended."""
        frame = read_table(path).frame
        examples = self.impl.examples_from_frame(frame, self.meta.get("columns") or {})
        return self.write_predictions(frame, examples, out)

    def write_predictions(self, frame, examples: list[dict], out: str | Path,
                          chunk_rows: int = 1000, progress=None) -> Path:
        """The rows of `frame` with the answers for `examples` (one per row) appended, as a
        CSV, predicted `chunk_rows` at a time; `progress(done)` after each chunk."""
        out = Path(out)
        with open(out, "w", newline="", encoding="utf-8") as fh:
            writer = None
            rows = frame.itertuples(index=False)
            for start in range(0, len(examples), chunk_rows):
                predictions = self.predict_examples(examples[start : start + chunk_rows])
                # predictions first: zip then stops without taking the next chunk's row
                for pred, values in zip(predictions, rows):
                    added = self.impl.output_columns(pred, self.labels)
                    if writer is None:
                        writer = SafeWriter(fh)
                        writer.writerow([*map(str, frame.columns), *added])
                    writer.writerow([*values, *added.values()])
                if progress is not None:
                    progress(min(len(examples), start + chunk_rows))
            if writer is None:
                SafeWriter(fh).writerow(list(map(str, frame.columns)))
        return out


def _base_model_path(path: Path, meta: dict) -> str:
    """Where an adapter-only export's base model is: the run's own record of what it trained
    on when loading a run directory, else the export's portable name (the embedded default,
    a hub id, or a folder given as `base_model`)."""

    run_config = path / "config.json"
    if (path / "model").is_dir() and run_config.is_file():
        name = (json.loads(run_config.read_text("utf-8")).get("model") or {}).get(
            "name_or_path")
        if name:
            return resolve_model(name).path
    return resolve_model(meta.get("base_model") or meta.get("base_model_path") or
                         "default").path
