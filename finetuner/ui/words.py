"""Plain words for the page: every metric and term the studio shows, with a one-line
explanation for its hover text. One table, used by every card, table, chart and verdict, so a
score is called the same thing everywhere (the code names stay in files and the CLI)."""

from __future__ import annotations

import re

METRICS = {  # key: (title, what it means, in a line)
    "accuracy": ("Accuracy", "Share of examples given the right label."),
    "macro_f1": ("Macro-F1", "F1 averaged over the labels with equal weight: a rare label "
                 "counts as much as a common one (0 to 1, higher is better)."),
    "micro_f1": ("Micro-F1", "F1 over every label decision pooled together: common labels "
                 "weigh more (0 to 1, higher is better)."),
    "weighted_f1": ("Weighted-F1", "F1 per label, averaged by how often each label occurs."),
    "subset_accuracy": ("All labels right", "Share of examples whose whole set of labels is "
                        "exactly right."),
    "f1": ("F1", "Balance of precision and recall (0 to 1, higher is better)."),
    "precision": ("Precision", "Of what the model said, the share that was right."),
    "recall": ("Recall", "Of what it should have found, the share it found."),
    "exact_match": ("Exact match", "Share of answers exactly the same as the reference."),
    "token_accuracy": ("Token accuracy", "Share of words given the right tag."),
    "pearson": ("Pearson correlation", "How closely predicted numbers follow the true ones "
                "in a straight line (1 is perfect, 0 is no relation)."),
    "spearman": ("Spearman correlation", "How well the predicted numbers put the examples "
                 "in the right order (1 is perfect)."),
    "r2": ("R²", "Share of the variation in the true numbers the model explains (1 is "
           "perfect, 0 is no better than always guessing the average)."),
    "mae": ("Mean abs. error", "Average distance between predicted and true number, in the "
            "target's own units (lower is better)."),
    "rmse": ("RMSE", "Root mean squared error: like the mean error, but big misses count "
             "more (target's units, lower is better)."),
}

TERMS = {
    "gap": ("Train-validation gap", "Training score minus validation score: a large "
            "positive gap means the model memorised its training rows."),
    "samples_per_second": ("Examples per second", "Training speed: examples the model "
                           "learned from each second."),
    "trainable": ("Trainable parameters", "Weights the method changes; the rest stay as "
                  "the pretrained model had them."),
    "peak_memory": ("Peak memory", "The most memory the training used at any moment."),
}


def metric_title(key: str | None) -> str:
    return METRICS.get(key or "", (key or "score", ""))[0]


def metric_help(key: str | None) -> str:
    return METRICS.get(key or "", ("", ""))[1]


def term(key: str) -> str:
    return TERMS[key][0]


def term_help(key: str) -> str:
    return TERMS[key][1]


# the run log's code names (the worker and the CLI write them) in the page's words
_LOG_WORDS = {**{key: title for key, (title, _) in METRICS.items()},
              "none_predicted_share": "share with no label", "samples/s": "examples/s",
              "*best*": "(best so far)", "lr": "learning rate"}
_MEASURED = re.compile(r"^(\S+ )?(eval step \d+:|step \d+/\d+ )")
_LOG_PATTERN = re.compile("|".join(
    rf"(?<![\w/*]){re.escape(k)}(?![\w/*])" for k in sorted(_LOG_WORDS, key=len, reverse=True)))


def plain_log(text: str) -> str:
    """A run log as the page shows it: 'validation macro_f1 0.83 ... 25 samples/s' reads
    'validation Macro-F1 0.83 ... 25 examples/s'. Only the step and evaluation lines the
    studio writes are reworded (a status line can quote a file or label name)."""
    return "\n".join(_LOG_PATTERN.sub(lambda m: _LOG_WORDS[m.group(0)], line)
                     if _MEASURED.match(line) else line for line in (text or "").split("\n"))
