"""How a body is read, without torch: which pooling a model folder was trained with, and the
export's recipe for a mean-pooled head (heads.MeanPooled). Light enough for the web process
(the method table and the usage snippet read it)."""

from __future__ import annotations

import json
from pathlib import Path

MEAN = "mean"
FIRST = "first"


def body_pooling(path: str | Path) -> str:
    """'mean' for a body trained with mean pooling (a sentence-transformers folder, or a model
    this studio exported that way), else 'first' (the architecture's own head)."""
    path = Path(path)
    try:
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text("utf-8"))
        if pooling.get("pooling_mode_mean_tokens"):
            return MEAN
    except (OSError, ValueError):
        pass
    try:
        meta = json.loads((path / "finetuner.json").read_text("utf-8"))
        return MEAN if meta.get("body_pooling") == MEAN else FIRST
    except (OSError, ValueError):
        return FIRST


# -- the export's recipe ---------------------------------------------------------------------

POOLING_HELPER = '''import torch


def text_logits(model, inputs):
    """A text's logits: the mean of its tokens' logits over the attention mask (the model
    reads its body's mean-pooled vector, as the sentence-transformers body was trained)."""
    with torch.no_grad():
        logits = model(**inputs).logits
    mask = inputs["attention_mask"].unsqueeze(-1).to(logits.dtype)
    return (logits * mask).sum(1) / mask.sum(1)

'''

CLASSIFY_USAGE = '''from transformers import AutoModelForTokenClassification, AutoTokenizer

model = AutoModelForTokenClassification.from_pretrained("{path}").eval()
tokenizer = AutoTokenizer.from_pretrained("{path}")
inputs = tokenizer(["What a wonderful, clever film!"], padding=True, truncation=True,
                   return_tensors="pt")
probs = torch.softmax(text_logits(model, inputs), dim=-1)[0]
print({{model.config.id2label[i]: round(p, 4) for i, p in enumerate(probs.tolist())}})'''


def pooled_usage(snippet: str, task: str, path: str) -> str:
    """A task's usage snippet for a mean-pooled export: the token-level class and the one
    pooling line (`text_logits`) wherever the sequence head's logits were read."""
    if "pipeline(" in snippet:  # the one sentence-level snippet that uses a pipeline
        snippet = CLASSIFY_USAGE.format(path=path)
    snippet = snippet.replace("AutoModelForSequenceClassification",
                              "AutoModelForTokenClassification")
    for name in ("inputs", "enc"):
        snippet = snippet.replace(f"model(**{name}).logits", f"text_logits(model, {name})")
    lines = snippet.replace("import torch\n", "").lstrip("\n").splitlines()
    imports = [line for line in lines if line.startswith(("from ", "import "))]
    body = [line for line in lines if line not in imports]
    head, helper = POOLING_HELPER.split("\n\n\n", 1)
    return "\n".join([head, *imports, "", "", helper.rstrip("\n"), "", *body]).replace(
        "\n\n\n\n", "\n\n\n")
