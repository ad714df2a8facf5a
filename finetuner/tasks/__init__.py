"""The task registry: one small spec per task, the shared pipeline does the rest.

A task module provides, as plain functions (torch is only imported inside those that need it;
`**options` carries doc_stride and max_answer_length, which only QA uses):

- `prepare(config, count_tokens=None) -> PreparedData`: read, detect columns, validate, split,
  report. No torch, no transformers.
- `featurize(examples, tokenizer, max_length, label2id, **options) -> list[dict]`: model inputs
  (one or more features per example; extra keys such as word_ids or offsets are kept for
  decoding, only input_ids/attention_mask/token_type_ids and labels reach the model).
- `metrics(outputs, features, examples, labels, **options) -> dict`: scores, including the
  spec's primary metric, from per-feature outputs (`finetuner.batching.run_model`).
- `decode(outputs, features, examples, labels, **options) -> list[dict]`: one answer per example
  for the try-it box and file predictions.
- `prediction_rows(...)`: test rows with the model's answers, wrong ones first, for the results.
- `examples_from_frame(frame, columns) -> list[dict]` and `output_columns(prediction, labels)`:
  predicting a whole file into a CSV.
- `usage_snippet(meta, path) -> str`: loading the exported model with plain transformers.

`TaskSpec` names the rest: the `AutoModelFor...` class, the peft task type, the pipeline task
name, the metric that picks the best checkpoint.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from ..data import DataReport
from ..errors import ConfigError


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    module: str
    auto_model: str
    peft_task_type: str
    pipeline_task: str
    primary_metric: str
    metric_title: str
    head_modules: tuple[str, ...]
    # the task feeds words already split (is_split_into_words): see modeling.for_split_words
    split_words: bool = False

    def impl(self) -> ModuleType:
        return importlib.import_module(self.module)


@dataclass
class PreparedData:
    """Validated splits (lists of task-specific example dicts), label names and the report."""

    train: list[dict]
    validation: list[dict]
    test: list[dict]
    labels: list[str]
    report: DataReport
    extra: dict = field(default_factory=dict)


TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    TASKS[spec.name] = spec
    return spec


# head_modules: what head-only training trains and LoRA saves whole. BERT-style heads
# (classifier, pooler, DistilBERT's pre_classifier, qa_outputs), and ModernBERT's: a `head`
# (dense + norm) before its `classifier`, which is its span output for QA too.
register(
    TaskSpec(
        name="classification",
        title="Text classification",
        module="finetuner.tasks.classification",
        auto_model="AutoModelForSequenceClassification",
        peft_task_type="SEQ_CLS",
        pipeline_task="text-classification",
        primary_metric="macro_f1",
        metric_title="macro-F1",
        head_modules=("classifier", "score", "pre_classifier", "pooler", "head"),
    )
)


register(
    TaskSpec(
        name="ner",
        title="Named entity recognition",
        module="finetuner.tasks.ner",
        auto_model="AutoModelForTokenClassification",
        peft_task_type="TOKEN_CLS",
        pipeline_task="token-classification",
        primary_metric="f1",
        metric_title="entity F1",
        head_modules=("classifier", "head"),
        split_words=True,
    )
)
register(
    TaskSpec(
        name="qa",
        title="Extractive question answering",
        module="finetuner.tasks.qa",
        auto_model="AutoModelForQuestionAnswering",
        peft_task_type="QUESTION_ANS",
        pipeline_task="question-answering",
        primary_metric="f1",
        metric_title="F1",
        head_modules=("qa_outputs", "classifier", "head"),
    )
)


def get_task(name: str) -> TaskSpec:
    if name not in TASKS:
        raise ConfigError(
            f"Unknown task '{name}'.", f"Choose one of: {', '.join(TASKS)}.", "unknown_task"
        )
    return TASKS[name]
