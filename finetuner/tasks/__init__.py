"""The task registry: one small spec per task, the shared pipeline does the rest.

A task module provides, as plain functions (torch is only imported inside those that need it;
`**options` carries doc_stride and max_answer_length, which only QA uses):

- `prepare(config, count_tokens=None) -> PreparedData`: read, detect columns, validate, split,
  report. No torch, no transformers.
- `featurize(examples, tokenizer, max_length, label2id, **options) -> list[dict]`: model inputs
  (one or more features per example; extra keys such as word_ids or offsets are kept for
  decoding, only input_ids/attention_mask/token_type_ids and labels reach the model).
- `metrics(outputs, features, examples, labels, **options) -> dict`: scores, including the
  spec's primary metric, from per-feature outputs (`finetuner.models.batching.run_model`).
- `decode(outputs, features, examples, labels, **options) -> list[dict]`: one answer per example
  for the try-it box and file predictions.
- `prediction_rows(...)`: test rows with the model's answers, wrong ones first, for the results.
- `examples_from_frame(frame, columns) -> list[dict]` and `output_columns(prediction, labels)`:
  predicting a whole file into a CSV.
- `usage_snippet(meta, path) -> str`: loading the exported model with plain transformers.
- `decision(prediction)`: what one decoded answer decides, without its scores (a label, a set
  of labels, a number, entity spans, an answer span): two runtimes agree when these are equal
  (numbers: within a tolerance).
- `summary(prediction) -> str`: one decoded answer as the CLI prints it (tab-separated, the
  input follows it on the line).
- `example_from_input(text, pair) -> dict` and `preview_rows(examples) -> (rows, columns)`:
  the try-it boxes as an example, and the data preview of formats that are not tables.

`TaskSpec` holds the rest as data: the `AutoModelFor...` class, the peft task type, the pipeline
task name, the metric that picks the best checkpoint, the default max length, the page's column
pickers and try-it boxes (`TaskUI`), the diagnosis' units and advice, whether a label can be
guessed, what calibration counts. This registry is the only task-keyed table:
every other module asks `get_task(name)`.

May import: the root modules (errors, config, runs, results), `finetuner.data` and
`finetuner.metrics`; never `finetuner.models` or above, and torch only inside the functions
that need it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Protocol, runtime_checkable

from finetuner.data.splits import DataReport
from finetuner.errors import ConfigError


@runtime_checkable
class TaskModule(Protocol):
    """The hooks every task module provides (see the module docstring). Optional hooks, found
    by name when present: `tune`, `before_save`, `paired_record`, `probabilities`,
    `baselines(train, validation, test, labels)` (cheap baselines scored beside the model) and
    `calibration_pairs(outputs, features)` ((logits, gold) for temperature scaling)."""

    def prepare(self, config, count_tokens=None, check_rows=None) -> PreparedData: ...

    def featurize(self, examples, tokenizer, max_length, label2id, **options) -> list: ...

    def metrics(self, outputs, features, examples, labels, **options) -> dict: ...

    def decode(self, outputs, features, examples, labels, **options) -> list: ...

    def prediction_rows(self, outputs, features, examples, labels, **options) -> list: ...

    def examples_from_frame(self, frame, columns) -> list: ...

    def output_columns(self, prediction, labels) -> dict: ...

    def usage_snippet(self, meta, path) -> str: ...

    def example_from_input(self, text, pair) -> dict: ...

    def preview_rows(self, examples) -> tuple: ...

    def decision(self, prediction) -> object: ...

    def summary(self, prediction) -> str: ...


HOOKS = tuple(name for name in TaskModule.__dict__ if not name.startswith("_"))
_CHECKED: set[str] = set()


@dataclass(frozen=True)
class Column:
    """One column a task reads from a table: the data report's role for it (what
    `prepare` detected), the `RunConfig.data` field that names it, and its picker's words."""

    role: str
    field: str  # text_column, text_pair_column or label_column
    label: str
    info: str
    optional: bool = False  # the picker offers "(none)"


@dataclass(frozen=True)
class TaskUI:
    """How the task looks on the page: its column pickers (any number, one per config field
    it reads; the page shows one picker per field any task reads) and the try-it boxes."""

    choice: str  # its name in the task picker
    columns: tuple[Column, ...]
    text_label: str
    pair_label: str | None
    pair_always: bool
    chart_title: str  # the data report's bar chart
    # try-it shows a "label" with probabilities, "labels" (each with its threshold), a
    # "number", or highlighted spans: "entities" in a sentence or the "answer" in a passage
    answer: str = "entities"
    chart_of_rows: bool = False  # the chart counts rows per split, not labels
    # the page's example files of this kind: (title in the picker, file in examples/)
    examples: tuple[tuple[str, str], ...] = ()

    @property
    def highlights(self) -> bool:
        """Try-it marks spans in the text (entities, or the answer in its passage)."""
        return self.answer in ("entities", "answer")


@dataclass(frozen=True)
class TaskSpec:
    """Everything task-specific that is data, not code; the code is in `module`."""

    name: str
    title: str
    module: str
    auto_model: str
    peft_task_type: str
    pipeline_task: str
    primary_metric: str
    metric_title: str
    head_modules: tuple[str, ...]
    ui: TaskUI
    default_max_length: int = 128
    # full fine-tuning's default learning rate times this: a sigmoid per label learns many
    # rare labels at once from small gradients, and multi-label gains from twice the rate
    # (bench/RESULTS.md, "Multi-label: the learning rate")
    full_lr_factor: float = 1.0
    units: str = "training examples"  # what the diagnosis counts
    more_data: str = "Add labelled examples: a few hundred per label is a good start."
    guessable: bool = False  # a label can be guessed (chance scores are defined)
    tables_only: bool = False  # reads CSV/TSV/JSON/Parquet tables only (no CoNLL, SQuAD)
    label_errors: bool = False  # suspected label errors are looked for (labelnoise)
    # what one (logits, gold) pair of the module's `calibration_pairs` hook counts; None: no
    # temperature (sigmoid and numeric outputs)
    calibration_units: str | None = "examples"
    # the task feeds words already split (is_split_into_words): see modeling.for_split_words
    split_words: bool = False
    problem_type: str | None = None  # transformers' config.problem_type (loss of the head)
    higher_is_better: dict = field(default_factory=dict)  # metrics where lower is better: False
    # one answer per text from a sentence vector: a mean-pooling body (sentence-transformers)
    # is read through heads.MeanPooled, and the head starts from a probe (heads.fit_head)
    sentence_level: bool = False
    # QA: a long context is read in overlapping windows (doc_stride), and the try-it box caps
    # how many; the model answers with start and end logits
    context_windows: bool = False
    outputs: tuple[str, ...] = ("logits",)
    token_outputs: bool = False  # the outputs have a position axis (one value per token)
    # what "the same answer" of two runtimes means ({tolerance}: how close two numbers agree)
    same_answer: str = "the same label"
    # the tokenizer's arguments for one input, in the usage snippet of the exported ONNX file
    onnx_example: str = '["A text to label."]'
    # small-data classification also learns SetFit's pair objective (training.pair_loss)
    pair_loss: bool = False

    def impl(self) -> ModuleType:
        module = importlib.import_module(self.module)
        if self.module not in _CHECKED:  # once: a module missing a hook says which
            missing = [name for name in HOOKS if not callable(getattr(module, name, None))]
            if missing:
                raise TypeError(f"Task '{self.name}': {self.module} lacks the hooks "
                                f"{', '.join(sorted(missing))} (tasks.TaskModule).")
            _CHECKED.add(self.module)
        return module


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
PAIR_COLUMN = Column("text_pair", "text_pair_column", "Second text column (optional)",
                     "Only for tasks about a pair of texts.", optional=True)
DEFAULT_TASK = "classification"  # the one default: a config, a form or an old run without one
NO_LABEL = "(none)"  # multi-label: the rows that carry no label, counted beside the labels


def module_names(module: str) -> set[str] | None:
    """The names a module binds at its top (functions, imports, assignments), read from its
    source without importing it; None when it has no source file to read."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a module made in memory (tests) has no spec
        return None
    if found is None or not found.origin or not found.origin.endswith(".py"):
        return None
    names: set[str] = set()
    for node in ast.parse(Path(found.origin).read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def register(spec: TaskSpec) -> TaskSpec:
    """Add a task. Its module is checked against `TaskModule` here, from its source (importing
    it would load numpy or pandas into every light import of the registry): a missing hook
    fails at registration with its name. `TaskSpec.impl` checks the imported module again."""
    names = module_names(spec.module)
    if names is not None:
        missing = [name for name in HOOKS if name not in names]
        if missing:
            raise TypeError(f"Task '{spec.name}': {spec.module} lacks the hooks "
                            f"{', '.join(sorted(missing))} (tasks.TaskModule).")
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
        ui=TaskUI("Text classification",
                  (Column("text", "text_column", "Text column", "The text to classify."),
                   PAIR_COLUMN,
                   Column("label", "label_column", "Label column", "The answer to learn.")),
                  "Text to classify", "Second text", pair_always=False,
                  chart_title="Training examples per label", answer="label",
                  examples=(("Film and product reviews (sentiment)", "sentiment.csv"),
                            ("Text messages (spam, imbalanced)", "spam.jsonl"),
                            ("News headlines (4 topics)", "topics.tsv"),
                            ("Sentence pairs (entailment)", "pairs.csv"))),
        guessable=True,
        tables_only=True,
        label_errors=True,
        sentence_level=True,
        pair_loss=True,
    )
)
register(
    TaskSpec(
        name="multi-label",
        title="Multi-label text classification",
        module="finetuner.tasks.multilabel",
        auto_model="AutoModelForSequenceClassification",
        peft_task_type="SEQ_CLS",
        pipeline_task="text-classification",
        primary_metric="micro_f1",
        metric_title="micro-F1",
        head_modules=("classifier", "score", "pre_classifier", "pooler", "head"),
        ui=TaskUI("Multi-label classification",
                  (Column("text", "text_column", "Text column", "The text to label."),
                   PAIR_COLUMN,
                   Column("label", "label_column", "Label column(s)",
                          "Labels joined by ; or |, or several 0/1 columns. An empty cell "
                          "means none of the labels.")),
                  "Text to label", "Second text", pair_always=False,
                  chart_title="Training examples per label (a text can have several)",
                  answer="labels",
                  examples=(("Contract clauses, any number of categories (multi-label)",
                             "clauses.csv"),)),
        more_data="Add labelled examples: a few dozen texts for every label is a good start.",
        full_lr_factor=2.0,
        tables_only=True,
        calibration_units=None,
        problem_type="multi_label_classification",
        sentence_level=True,
        same_answer="the same set of labels",
    )
)
register(
    TaskSpec(
        name="regression",
        title="Text regression",
        module="finetuner.tasks.regression",
        auto_model="AutoModelForSequenceClassification",
        peft_task_type="SEQ_CLS",
        pipeline_task="text-classification",
        primary_metric="pearson",
        metric_title="Pearson correlation",
        head_modules=("classifier", "score", "pre_classifier", "pooler", "head"),
        ui=TaskUI("Regression (a number)",
                  (Column("text", "text_column", "Text column", "The text to score."),
                   Column("text_pair", "text_pair_column", "Second text column (optional)",
                          "For scores of a pair of texts (similarity).", optional=True),
                   Column("label", "label_column", "Target column",
                          "The number to predict (a rating, a score).")),
                  "Text to score", "Second text", pair_always=False,
                  chart_title="Training targets per range", answer="number",
                  examples=(("Product reviews with a 0-10 score (regression)", "ratings.csv"),)),
        more_data="Add scored examples: a few hundred over the whole range is a good start.",
        tables_only=True,
        calibration_units=None,
        problem_type="regression",
        higher_is_better={"mae": False, "rmse": False},
        sentence_level=True,
        same_answer="a number within {tolerance} of the range of PyTorch's answers",
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
        ui=TaskUI("Named entity recognition",
                  (Column("tokens", "text_column", "Tokens column", "Words of each sentence."),
                   Column("tags", "label_column", "Tags column",
                          "One BIO tag per word (B-PER, I-PER, O, ...).")),
                  "Sentence", None, pair_always=False,
                  chart_title="Entities per type in the training data", answer="entities",
                  examples=(("News sentences with names (entities, CoNLL)", "ner.conll"),)),
        units="training sentences",
        more_data="Annotate more sentences: a few hundred per entity type is a good start.",
        calibration_units="tokens",
        split_words=True,
        token_outputs=True,
        same_answer="the same entities (type and span)",
        onnx_example='["Ada", "lives", "in", "Paris"], is_split_into_words=True',
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
        ui=TaskUI("Question answering",
                  (Column("question", "text_column", "Question column", "The question."),
                   Column("context", "text_pair_column", "Context column",
                          "The passage that holds the answer."),
                   Column("answer", "label_column", "Answer column",
                          "The answer text, copied from the passage.")),
                  "Question", "Passage (context)", pair_always=True,
                  chart_title="Questions per split", chart_of_rows=True, answer="answer",
                  examples=(("Questions about short passages (QA)", "qa.jsonl"),)),
        default_max_length=384,
        units="training questions",
        more_data="Add more questions with answers: a few hundred, over many passages, is a "
                  "good start.",
        calibration_units="answer starts and ends",
        context_windows=True,
        outputs=("start_logits", "end_logits"),
        token_outputs=True,
        same_answer="the same answer span",
        onnx_example='"Who wrote it?", "It was written by Ada."',
    )
)


def get_task(name: str) -> TaskSpec:
    """The registered task of that name, or a ConfigError naming the choices."""
    if name not in TASKS:
        raise ConfigError(
            f"Unknown task '{name}'.", f"Choose one of: {', '.join(TASKS)}.", "unknown_task"
        )
    return TASKS[name]
