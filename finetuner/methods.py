"""The three training methods' vocabulary: their names, the one table of their words (a title
for the page, a name inside a sentence, what each does) and their learning rates by model size.
Imports nothing."""

from __future__ import annotations

METHODS = ("full", "lora", "head")
DEFAULT_METHOD = "full"
CPU_BATCH_SIZE = 32  # batch size 0 ("auto") on a CPU; a GPU measures its own
# the one table of each method's words: its title (the page's choices, plans and tables), its
# name inside a sentence, and what it does
METHOD_TITLES = {"full": "Full fine-tuning", "lora": "LoRA (adapters)",
                 "head": "Head only (frozen encoder)"}
METHOD_NAMES = {"head": "head-only", "lora": "LoRA", "full": "full fine-tuning"}  # in a sentence
METHOD_HELP = {
    "full": "Full fine-tuning: every weight of the encoder and the new head is trained. "
    "Best accuracy, slowest, largest model file.",
    "lora": "LoRA: small low-rank adapters are trained next to frozen weights. "
    "Close to full accuracy with about 1% of the weights trainable.",
    "head": "Head only: the encoder is frozen and only the new head is fitted, on the "
    "encoder's features (for sentence-transformers models to convergence, in one pass). "
    "The cheapest; fine for easy tasks, weaker on hard ones.",
}
# Learning rates that work for small BERT-like encoders with each method (checked on SST-2).
DEFAULT_LEARNING_RATE = {"full": 1e-4, "lora": 2e-3, "head": 2e-2}


def default_learning_rate(method: str, n_params: int | None = None,
                          full_factor: float = 1.0) -> float:
    """Learning rate by method and model size. Small encoders (under 50M parameters, such as
    the embedded 22.7M all-MiniLM-L6-v2) take the rates measured on SST-2 with it
    (DEFAULT_LEARNING_RATE); base-size models (to 200M) and large ones take the usual
    published rates for full fine-tuning (BERT: 2e-5 to 5e-5), with LoRA a decade higher and
    head-only unchanged (a frozen encoder is not disturbed by a large step). `full_factor`
    scales full fine-tuning's rate for a task that needs more (TaskSpec.full_lr_factor)."""
    base = DEFAULT_LEARNING_RATE[method]
    if n_params and n_params >= 50_000_000 and method != "head":
        base = {"full": 5e-5, "lora": 1e-3}[method] if n_params < 200_000_000 else \
            {"full": 2e-5, "lora": 5e-4}[method]
    return base * full_factor if method == "full" else base
