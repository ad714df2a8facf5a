"""The one typed configuration of a run.

`RunConfig` (data, model, method, training) travels as JSON between the web app, the CLI and
the worker: `RunConfig.from_dict(cfg.to_dict()) == cfg`. Each field carries help text (shown by
the CLI and the app) and is validated in `__post_init__`, so a bad value fails before a worker
starts. This module imports neither torch nor transformers.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetuner.errors import ConfigError
from finetuner.methods import DEFAULT_METHOD, METHODS, default_learning_rate
from finetuner.tasks import DEFAULT_TASK, get_task

DEFAULT_MODEL = "default"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_DOC_STRIDE = 128
LONG_DOCUMENTS = ("auto", "windows", "truncate")
POOLINGS = ("mean", "max")
# experiment trackers a run can report to (finetuner.training.trackers); none unless the user asks
TRACKERS = ("tensorboard", "mlflow", "trackio")


def _help(text: str, **kw: Any) -> Any:
    return field(metadata={"help": text}, **kw)


def _check(ok: bool, message: str, remedy: str = "") -> None:
    if not ok:
        raise ConfigError(message, remedy, code="bad_setting")


@dataclass
class DataConfig:
    train_file: str = _help("Training data: CSV, TSV, JSON, JSONL or Parquet.", default="")
    validation_file: str | None = _help(
        "Optional validation file. Without it, a stratified share of the training file is used.",
        default=None,
    )
    test_file: str | None = _help(
        "Optional test file. Without it, a stratified share of the training file is held out.",
        default=None,
    )
    text_column: str | None = _help("Column with the text (detected when empty).", default=None)
    text_pair_column: str | None = _help(
        "Second text column for sentence-pair tasks (premise/hypothesis, question/answer).",
        default=None,
    )
    label_column: str | None = _help("Column with the label (detected when empty).", default=None)
    validation_split: float = _help(
        "Share of the training file held out for validation when no validation file is given.",
        default=0.1,
    )
    test_split: float = _help(
        "Share of the training file held out for the final test when no test file is given.",
        default=0.1,
    )
    max_length: int | None = _help(
        "Longest input in tokens; longer texts are cut (QA reads long contexts in windows). "
        "Empty picks the task's default: 128, or 384 for question answering.",
        default=None,
    )
    doc_stride: int = _help(
        "Question answering: overlap in tokens between windows of a long context (the default "
        "128 shrinks to a quarter of a short max length).",
        default=DEFAULT_DOC_STRIDE,
    )
    max_answer_length: int = _help(
        "Question answering: longest answer span, in tokens, that decoding considers.",
        default=30,
    )
    long_documents: str = _help(
        "Texts longer than max_length (classification, multi-label, regression): 'windows' "
        "reads each in overlapping windows and pools their scores into one answer, "
        "'truncate' cuts them, 'auto' reads windows when 5% or more of the texts are longer.",
        default="auto",
    )
    window_pooling: str = _help(
        "How the windows of a long text make one answer: 'mean' of their scores (logits) or "
        "'max' (a label is as likely as its strongest window).", default="mean",
    )
    max_windows: int = _help("Most windows read per text (the rest of a longer text is cut).",
                             default=16)
    label_separator: str | None = _help(
        "Multi-label: the character between labels in one cell (';', '|' or ','); detected "
        "when empty.", default=None,
    )
    train_fraction: float = _help(
        "Train on this share of the training split (after validation and test are held out), "
        "a seeded subset that grows nested (the 25% rows are inside the 50%), each label cut "
        "in proportion; what a learning curve varies. 1 trains on all of it.", default=1.0,
    )

    def __post_init__(self) -> None:
        _check(0.0 < self.train_fraction <= 1.0, f"train_fraction is {self.train_fraction:g}.",
               "Use a share above 0 and at most 1.")
        for name in ("validation_split", "test_split"):
            value = getattr(self, name)
            _check(0.0 <= value < 0.5, f"{name} is {value}.", "Use a share between 0 and 0.5.")
        _check(
            self.validation_split + self.test_split < 0.8,
            "Validation and test shares together leave too little for training.",
            "Keep their sum below 0.8.",
        )
        _check(
            self.max_length is None or 8 <= self.max_length <= 8192,
            f"max_length is {self.max_length}.",
            "Use a value between 8 and 8192 tokens (128 suits most sentences).",
        )
        _check(1 <= self.doc_stride <= 4096, f"doc_stride is {self.doc_stride}.")
        _check(1 <= self.max_answer_length <= 512, f"max_answer_length is "
               f"{self.max_answer_length}.", "Use 1-512 tokens (30 suits most answers).")
        _check(self.long_documents in LONG_DOCUMENTS, f"long_documents is "
               f"'{self.long_documents}'.", "Choose auto, windows or truncate.")
        _check(self.window_pooling in POOLINGS, f"window_pooling is '{self.window_pooling}'.",
               "Choose mean or max.")
        _check(1 <= self.max_windows <= 256, f"max_windows is {self.max_windows}.",
               "Use 1-256 windows.")
        if self.label_separator is not None:
            self.label_separator = str(self.label_separator) or None
            _check(self.label_separator is None or len(self.label_separator.strip()) == 1,
                   f"label_separator is '{self.label_separator}'.",
                   "Use one character such as ; or | (or leave it empty to detect it).")
            if self.label_separator:
                self.label_separator = self.label_separator.strip()
        if self.text_pair_column and self.text_pair_column == self.text_column:
            raise ConfigError(
                f"The text column and the pair column are both '{self.text_column}'.",
                "Pick two different columns, or leave the pair column empty.",
            )


@dataclass
class ModelConfig:
    name_or_path: str = _help(
        "'default' for the embedded all-MiniLM-L6-v2, a local model folder, or a hub id.",
        default=DEFAULT_MODEL,
    )
    label: str | None = _help(
        "How results, logs and exports name the model (a server folder's own name, never its "
        "path); empty uses name_or_path.", default=None,
    )

    def __post_init__(self) -> None:
        self.name_or_path = (self.name_or_path or DEFAULT_MODEL).strip()
        if self.label is not None:
            self.label = str(self.label).strip()[:200] or None


@dataclass
class MethodConfig:
    method: str = _help("full | lora | head", default=DEFAULT_METHOD)
    lora_r: int = _help("LoRA rank: size of the adapters (4-64).", default=8)
    lora_alpha: int = _help("LoRA scaling; twice the rank is a good default.", default=16)
    lora_dropout: float = _help("Dropout inside the LoRA adapters.", default=0.1)
    lora_target_modules: list[str] | None = _help(
        "Modules that get adapters; empty lets peft choose for the architecture.", default=None
    )
    export_adapter_only: bool = _help(
        "For LoRA: export only the adapter instead of a merged model.", default=False
    )

    def __post_init__(self) -> None:
        self.method = (self.method or DEFAULT_METHOD).strip().lower()
        _check(
            self.method in METHODS,
            f"Unknown method '{self.method}'.",
            "Choose one of: full, lora, head.",
        )
        _check(1 <= self.lora_r <= 512, f"lora_r is {self.lora_r}.", "Use a rank from 1 to 512.")
        _check(self.lora_alpha > 0, f"lora_alpha is {self.lora_alpha}.", "Use a positive number.")
        _check(
            0 <= self.lora_dropout < 1,
            f"lora_dropout is {self.lora_dropout:g}.",
            "Use a value in [0, 1).",
        )
        if isinstance(self.lora_target_modules, str):
            parts = [p.strip() for p in self.lora_target_modules.split(",")]
            self.lora_target_modules = [p for p in parts if p] or None


@dataclass
class TrainingConfig:
    epochs: float = _help("Passes over the training data.", default=3.0)
    learning_rate: float | None = _help(
        "Step size; empty picks a good default for the method (full 1e-4, LoRA 2e-3, head 2e-2; "
        "full 2e-4 for multi-label).",
        default=None,
    )
    batch_size: int | None = _help(
        "Examples per training step. Empty: 32 on a CPU; on a GPU the largest of 256, 128, "
        "64, 32 that fits in memory (and leaves at least 20 steps per epoch).",
        default=None,
    )
    eval_batch_size: int = _help("Examples per evaluation step.", default=128)
    weight_decay: float = _help("L2-style regularisation of the weights.", default=0.01)
    warmup_ratio: float = _help("Share of steps spent ramping the learning rate up.", default=0.06)
    evals_per_epoch: int = _help("How often to measure validation metrics per epoch.", default=4)
    early_stopping_patience: int = _help(
        "Stop after this many evaluations without improvement (0 turns it off).", default=3
    )
    max_steps: int | None = _help("Stop after this many steps (for quick trials).", default=None)
    pair_loss: bool = _help(
        "Classification on up to 5,000 rows, one process: also learn SetFit's objective on "
        "every pair of each batch (the cosine similarity of two texts' vectors pulled to 1 "
        "for the same label, to 0 otherwise), in the same forward pass.", default=True,
    )
    min_steps: int = _help(
        "Small data: train for at least this many steps even when the epochs would give "
        "fewer (a few hundred examples at 3 epochs is only about 25 steps). Early stopping "
        "waits for the floor or the epochs asked for, whichever ends first. 0 turns the "
        "floor off.",
        default=100,
    )
    seed: int = _help("Random seed: the same seed gives the same run.", default=42)
    precision: str = _help(
        "auto: bf16 autocast where the hardware has native bf16 (GPUs of compute capability "
        "8.0+, CPUs with AVX512-BF16/AMX), fp16 with a gradient scaler on older GPUs, else "
        "fp32.", default="auto"
    )
    group_by_length: bool = _help(
        "Batch texts of similar length together (much less padding, same accuracy).", default=True
    )
    train_eval_samples: int = _help(
        "At most this many training examples re-scored at each evaluation to compare train "
        "and validation curves (as many as the validation split has, at least 128).",
        default=512,
    )
    checkpoints: bool = _help(
        "Save a checkpoint at each evaluation, so a run interrupted by a restart can resume.",
        default=True,
    )
    max_memory_mb: int | None = _help(
        "Cap on the worker's extra memory in MiB; beyond it the run fails cleanly.", default=None
    )
    dropout: float | None = _help(
        "Dropout of the encoder's hidden layers, attention and head; empty keeps the model's "
        "own (0.1 for BERT-like models).", default=None,
    )
    score_test: bool = _help(
        "Score the test split once at the end. Search trials turn this off: the test split "
        "chooses nothing, so a trial never sees it.", default=True,
    )
    save_model: bool = _help(
        "Export the trained model. Search trials turn this off (the chosen configuration is "
        "trained again as a normal run, with its model).", default=True,
    )
    onnx: bool = _help(
        "Also export the model to ONNX (fp32, and int8 when its validation score stays within "
        "0.5 points), checked against PyTorch on the validation and test splits; the "
        "try-it box and batch prediction then use ONNX Runtime where it is faster.",
        default=False,
    )
    processes: int = _help(
        "Training processes for this one run (DDP through torchrun): one per GPU on a GPU "
        "machine (a server's GPU slots of several GPUs set it), else gloo processes on the "
        "CPU. batch_size stays the global batch (each process takes batch_size / processes) "
        "and the learning rate is the one for that global batch.", default=1,
    )
    report_to: list[str] = _help(
        "Experiment trackers that also receive the run: its config, curves, final metrics "
        "and verdict. Any of tensorboard, mlflow, trackio (comma-separated); each writes "
        "inside the run folder. Empty (the default) reports nowhere.",
        default_factory=list,
    )

    def __post_init__(self) -> None:
        self.report_to = _trackers(self.report_to)
        _check(1 <= self.processes <= 64, f"processes is {self.processes}.",
               "Use 1 (one process) up to the number of GPUs.")
        if self.batch_size is not None and self.processes > 1:
            _check(self.batch_size % self.processes == 0,
                   f"batch_size {self.batch_size} does not split over {self.processes} "
                   "processes.", "Use a batch size that is a multiple of the processes.")
        _check(0 < self.epochs <= 100, f"epochs is {self.epochs:g}.", "Use between 0.1 and 100.")
        if self.learning_rate is not None:
            _check(
                0 < self.learning_rate < 1,
                f"learning_rate is {self.learning_rate:g}.",
                "Use a small positive value such as 5e-5 (full) or 1e-3 (LoRA).",
            )
        _check(self.batch_size is None or 1 <= self.batch_size <= 4096,
               f"batch_size is {self.batch_size}.", "Use 8-256.")
        _check(1 <= self.eval_batch_size <= 8192, f"eval_batch_size is {self.eval_batch_size}.")
        _check(0 <= self.weight_decay < 1, f"weight_decay is {self.weight_decay:g}.", "Use 0-0.1.")
        _check(0 <= self.warmup_ratio < 1, f"warmup_ratio is {self.warmup_ratio:g}.", "Use 0-0.2.")
        _check(1 <= self.evals_per_epoch <= 100, f"evals_per_epoch is {self.evals_per_epoch}.",
               "Use 1 to 100 (4 suits most runs).")
        _check(self.early_stopping_patience >= 0, "early_stopping_patience must be 0 or more.")
        if self.max_steps is not None:
            _check(self.max_steps >= 1, f"max_steps is {self.max_steps}.",
                   "Use 1 or more, or no limit (leave it out; 0 on the page).")
        _check(isinstance(self.min_steps, int) and self.min_steps >= 0,
               f"min_steps is {self.min_steps}.", "Use 0 (no floor) or more.")
        _check(
            self.precision in PRECISIONS,
            f"Unknown precision '{self.precision}'.",
            "Choose auto, fp32, bf16 or fp16.",
        )
        _check(self.train_eval_samples >= 0, "train_eval_samples must be 0 or more.")
        _check(isinstance(self.seed, int) and 0 <= self.seed < 2 ** 32,
               f"seed is {self.seed}.", "Use a whole number from 0 to 4294967295.")
        if self.dropout is not None:
            _check(0 <= self.dropout < 1, f"dropout is {self.dropout:g}.", "Use 0-0.5.")


def _trackers(value: Any) -> list[str]:
    """report_to as a list of known tracker names, from a list or a comma-separated string
    ('none' and empty mean none); unknown names are refused with the choices."""
    if value is None:
        return []
    parts = value.split(",") if isinstance(value, str) else list(value)
    names: list[str] = []
    for part in parts:
        name = str(part).strip().lower()
        if not name or name == "none" or name in names:
            continue
        _check(name in TRACKERS, f"Unknown tracker '{name}' in report_to.",
               "Choose tensorboard, mlflow or trackio (comma-separated), or leave it empty "
               "to report nowhere.")
        names.append(name)
    return names


@dataclass
class RunConfig:
    task: str = _help("The kind of task, one of the registry's (finetuner.tasks.TASKS).",
                      default=DEFAULT_TASK)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        if self.data.max_length is None:
            self.data.max_length = get_task(self.task).default_max_length
        if get_task(self.task).context_windows:
            if self.data.doc_stride == DEFAULT_DOC_STRIDE and \
                    self.data.doc_stride >= self.data.max_length // 2:
                # the default overlap follows a short max length instead of refusing it
                self.data.doc_stride = max(1, self.data.max_length // 4)
            _check(
                self.data.doc_stride < self.data.max_length,
                f"doc_stride is {self.data.doc_stride} with max_length {self.data.max_length}.",
                "Use a stride smaller than max_length (384 and 128 are good defaults).",
            )

    def learning_rate(self, batch_size: int = 32, n_params: int | None = None) -> float:
        """The chosen rate, or the method's default for the model's size (see
        default_learning_rate) scaled for batches above 32 (square-root rule, at most
        doubled)."""
        lr = self.training.learning_rate
        if lr is not None:
            return lr
        scale = min(2.0, max(1.0, (batch_size / 32) ** 0.5))
        return default_learning_rate(self.method.method, n_params,
                                     get_task(self.task).full_lr_factor) * scale

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, raw: dict) -> RunConfig:
        raw = dict(raw or {})
        sections = {"data": DataConfig, "model": ModelConfig, "method": MethodConfig,
                    "training": TrainingConfig}
        unknown = set(raw) - set(sections) - {"task"}
        if unknown:
            raise ConfigError(
                f"Unknown setting(s) {sorted(unknown)} in the configuration.",
                f"Top-level keys are: task, {', '.join(sections)}.",
            )
        kwargs: dict[str, Any] = {"task": raw.get("task", DEFAULT_TASK)}
        for name, klass in sections.items():
            kwargs[name] = _section(klass, raw.get(name) or {}, name)
        return cls(**kwargs)

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """Read a config from JSON or YAML."""
        text = Path(path).read_text(encoding="utf-8")
        if str(path).endswith((".yaml", ".yml")):
            import yaml

            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ConfigError(f"The YAML file {path} is not valid: {exc}") from None
        else:
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"The config file {path} is not valid JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"The config file {path} must hold a mapping of settings.")
        return cls.from_dict(raw)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


def _section(klass: type, raw: dict, name: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"The '{name}' section of the configuration must be a mapping.")
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = set(raw) - names
    if unknown:
        raise ConfigError(
            f"Unknown setting(s) {sorted(unknown)} in '{name}'.",
            f"Known settings: {', '.join(sorted(names))}.",
        )
    try:
        return klass(**raw)
    except TypeError as exc:
        raise ConfigError(f"Bad value in '{name}': {exc}") from None


def field_help(klass: type) -> dict[str, str]:
    """Help text of each field, for the CLI and the web app."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(klass)}
