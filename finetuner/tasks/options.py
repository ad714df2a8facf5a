"""What a task's hooks need beyond the model and max length, as one typed record.

Some of it is set by the user (QA's doc_stride and max_answer_length, the long-document
window settings), some learned from the data at preparation (QA's allow_no_answer, whether
texts are read in windows, a regression target's scale) and some on the validation split
after training (multi-label thresholds). `TaskOptions` is built once per run
(`from_run`), updated by `tune`, written into the export's finetuner.json (`to_dict`) and read
back by `Predictor` (`from_dict`: old files load; keys it does not know are ignored). The
hooks receive its fields as keywords (`hooks()`), so each hook names the few it reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class TaskOptions:
    # extractive QA
    doc_stride: int = 128  # tokens of overlap between a long context's windows
    max_answer_length: int = 30  # tokens
    allow_no_answer: bool = False  # the training data held unanswerable questions
    # long documents (classification, multi-label, regression)
    windows: bool = False
    window_overlap: int = 0  # tokens
    max_windows: int = 16
    pooling: str = "mean"  # how window scores become one per document: mean or max
    # multi-label
    label_format: str | None = None  # "separator" (one joined column) or "columns" (0/1)
    thresholds: dict[str, float] | None = None  # per label, tuned on validation
    thresholds_tuned: bool = False
    # how they were set (metrics.multilabel.THRESHOLD_RULES) and each rule's micro-F1 on
    # held-out halves of the validation split
    threshold_rule: str | None = None
    threshold_check: dict[str, float] | None = None
    # regression: the standardised target's scale (folded into the head at export)
    target_mean: float | None = None
    target_std: float | None = None
    target_min: float | None = None
    target_max: float | None = None
    trained_target_mean: float | None = None
    trained_target_std: float | None = None

    @classmethod
    def from_dict(cls, raw: dict | None) -> TaskOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (raw or {}).items() if k in names})

    @classmethod
    def from_run(cls, config, report=None) -> TaskOptions:
        """The user's settings, then what preparation learned (`report.extra["options"]`)."""
        learned = (report.extra.get("options") or {}) if report is not None else {}
        return cls.from_dict({"doc_stride": config.data.doc_stride,
                              "max_answer_length": config.data.max_answer_length, **learned})

    def update(self, changes: dict) -> TaskOptions:
        """Apply what was learned later (multi-label thresholds), in place."""
        known = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key in known:
                setattr(self, key, value)
        return self

    def to_dict(self) -> dict:
        """The fields that are set (None left out), as finetuner.json stores them."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def hooks(self) -> dict:
        """Keyword arguments for the task hooks."""
        return self.to_dict()
