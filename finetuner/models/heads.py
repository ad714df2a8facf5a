"""A head that already works before any encoder weight moves.

Two things decide how well a new head on a pretrained encoder starts:

1. **Which vector it reads.** A sentence-transformers body (its `1_Pooling/config.json` says
   mean pooling) was trained so that the *mean of its token vectors* is the sentence; its first
   token and its `pooler` never were. Such bodies get `MeanPooled`: a token-level model
   (`AutoModelFor TokenClassification`: body + dropout + one linear layer per token) whose text
   logits are the mean of its tokens' logits over the attention mask, which is exactly a
   linear layer on the mean-pooled vector (the mean and the linear layer commute). The export is
   then a plain transformers token-classification checkpoint plus one line of pooling (the
   card shows it). Other bodies keep their own sequence-classification head (first token).
2. **Where its weights start.** `fit_head` fits the head's last linear layer on the frozen
   encoder's features to convergence (softmax regression for classes, one sigmoid per label
   for multi-label, ridge for regression), with its L2 strength chosen on held-out rows (a
   softmax or ridge head by its loss on the validation split and on a cross-check of the
   training rows, one sigmoid per label by its thresholded micro-F1 on the validation
   split), then writes the weights in: linear probing, then
   fine-tuning (Kumar et al., ICLR 2022). For a mean-pooled body the probe *is* head-only
   training: there is nothing left for gradient steps to do.

Only the validation split and the training rows choose anything here; the test split is
never read.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from finetuner.models import batching
from finetuner.models.pooling import FIRST, MEAN, body_pooling  # noqa: F401 - the names heads are read by

PROBE_MAX_TRAIN = 20_000  # training features a probe is fitted on at most (a seeded sample)
# inverse L2 strength, as scikit-learn's C, on features scaled to unit spread (raw
# sentence vectors spread about 0.25: 1e-3 here is scikit-learn's 0.016 on them)
PROBE_C = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
# a softmax or ridge head, chosen by a held-out loss, steps by half decades (1e-4 .. 100)
LOSS_C = tuple(10 ** (k / 2) for k in range(-8, 5))
CROSS_FOLDS = 5  # the training rows' cross-check (see `CrossCheck`)
CROSS_MAX_TRAIN = 2_000  # training rows it uses at most (a seeded sample)
FLAT = 0.05  # the least spread of the features a probe is fitted on (see fit_head)


class MeanPooled(torch.nn.Module):
    """Sequence logits as the masked mean of a token-level model's logits (see the module
    docstring); the loss follows `problem_type` as transformers' sequence heads do."""

    def __init__(self, inner, problem_type: str | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.problem_type = problem_type
        self.config = inner.config
        self._keys_to_ignore_on_save = None  # the Trainer reads it when loading a checkpoint

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None,
                output_hidden_states=None):
        from transformers.modeling_outputs import SequenceClassifierOutput

        kwargs = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask,
                         output_hidden_states=output_hidden_states, **kwargs)
        logits = pool_tokens(out.logits, attention_mask)
        loss = None if labels is None else sequence_loss(logits, labels, self.problem_type)
        return SequenceClassifierOutput(loss=loss, logits=logits,
                                        hidden_states=out.hidden_states)


def pool_tokens(values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the real tokens, in float32 (bf16 sums over a sequence lose digits)."""
    values = values.float()
    if attention_mask is None:
        return values.mean(1)
    mask = attention_mask.unsqueeze(-1).to(values.dtype)
    return (values * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def sequence_loss(logits, labels, problem_type: str | None, pos_weight=None):
    f = torch.nn.functional
    if problem_type == "regression":
        return f.mse_loss(logits.squeeze(-1), labels.float().view(-1))
    if problem_type == "multi_label_classification":
        return f.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=pos_weight)
    return f.cross_entropy(logits, labels.view(-1))


def pair_loss(hidden: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor):
    """SetFit's objective over every pair in the batch: the cosine similarity of two texts'
    vectors (what the head reads: mean-pooled token vectors, or a first-token head's input)
    pulled to 1 for the same label and to 0 for different ones."""
    vectors = pool_tokens(hidden, attention_mask) if hidden.dim() == 3 else hidden.float()
    e = torch.nn.functional.normalize(vectors, dim=-1)
    sim = e @ e.T
    same = (labels.view(-1, 1) == labels.view(1, -1)).float()
    off = ~torch.eye(len(e), dtype=torch.bool, device=e.device)
    return ((sim - same)[off] ** 2).mean() if off.any() else sim.sum() * 0


def unwrap(model):
    """The transformers (or peft) model inside a MeanPooled one; other models as they are."""
    return model.inner if isinstance(model, MeanPooled) else model


# -- the probe -----------------------------------------------------------------------------

def head_linear(model, n_out: int, head_names: tuple[str, ...]) -> torch.nn.Linear | None:
    """The head's last linear layer: the last `Linear` inside a head module with `n_out`
    outputs (BERT's classifier, RoBERTa's classifier.out_proj, ...)."""
    found = None
    for name, module in unwrap(model).named_modules():
        parts = name.split(".")
        if (isinstance(module, torch.nn.Linear) and module.out_features == n_out
                and any(h in parts for h in head_names)):
            found = module
    return found


def features(model, linear: torch.nn.Linear, feats: list[dict], collate, amp,
             batch_size: int = 128) -> np.ndarray:
    """What `linear` reads for each feature, in eval mode (no dropout), float32 (n, width):
    its input, mean-pooled over the real tokens where it reads every token."""
    captured: list[torch.Tensor] = []
    handle = linear.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]["input_ids"]))
    out: list = [None] * len(feats)
    device = batching.device_of(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), batching.autocast(amp, device):
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                batch = collate([feats[i] for i in idx])
                batch = {k: v.to(device) for k, v in batch.items() if k in batching.MODEL_KEYS}
                captured.clear()
                unwrap(model)(**batch)
                x = captured[-1]
                x = pool_tokens(x, batch["attention_mask"]) if x.dim() == 3 else x.float()
                for row, i in enumerate(idx):
                    out[i] = x[row].cpu().numpy()
    finally:
        handle.remove()
        model.train(was_training)
    return np.stack(out)


def _kind(problem_type: str | None) -> str:
    return {"regression": "ridge", "multi_label_classification": "sigmoid"}.get(
        problem_type or "", "softmax")


def _targets(feats: list[dict], kind: str) -> torch.Tensor:
    y = [f["labels"] for f in feats]
    if kind == "softmax":
        return torch.tensor(y, dtype=torch.long)
    t = torch.tensor(np.asarray(y, dtype=np.float32))
    return t.view(len(y), -1)


def _loss(logits: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    f = torch.nn.functional
    if kind == "softmax":
        return f.cross_entropy(logits, y)
    if kind == "sigmoid":
        return f.binary_cross_entropy_with_logits(logits, y)
    return f.mse_loss(logits, y)


def _start_bias(y: torch.Tensor, kind: str, n_out: int) -> torch.Tensor:
    """The bias of a model that knows only the label frequencies (log-priors, a label's
    log-odds, the mean target), where every fit starts."""
    if kind == "softmax":
        counts = torch.bincount(y, minlength=n_out).float() + 0.5
        return torch.log(counts / counts.sum())
    if kind == "sigmoid":
        p = (y.sum(0) + 0.5) / (len(y) + 1.0)
        return torch.log(p / (1 - p))
    return y.mean(0)


def fit_linear(x: torch.Tensor, y: torch.Tensor, kind: str, c: float, n_out: int,
               start: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Minimise mean loss + |W|^2 / (2 C n) to convergence (full-batch L-BFGS): the
    regularised logistic / ridge regression scikit-learn's C describes. Returns (W, b)."""
    n, d = x.shape
    w = torch.zeros(n_out, d) if start is None else start[0].clone()
    b = _start_bias(y, kind, n_out) if start is None else start[1].clone()
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=300, history_size=20,
                            tolerance_grad=1e-6, tolerance_change=1e-9,
                            line_search_fn="strong_wolfe")
    lam = 1.0 / (c * n)

    def closure():
        opt.zero_grad()
        loss = _loss(x @ w.T + b, y, kind) + 0.5 * lam * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


def _sample(feats: list[dict], cap: int, seed: int) -> list[dict]:
    if len(feats) <= cap:
        return feats
    rng = np.random.default_rng(seed)
    return [feats[i] for i in sorted(rng.choice(len(feats), cap, replace=False))]


class CrossCheck:
    """A K-fold cross-check of the training rows (at most CROSS_MAX_TRAIN of them, a seeded
    sample): `loss(c)` is the summed held-out loss of strength c over the folds, `rows` how
    many rows it scored (0: too few rows for K folds, and every loss is 0). Strengths are
    asked in rising order, each fold's fit starting from its fit at the previous one. Added
    to the validation split's loss, it gives the choice of strength every held-out row there
    is: which strength won on a 200-row validation split alone was partly luck
    (bench/RESULTS.md, "The fitted head's strength, cross-checked")."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, kind: str, n_out: int,
                 seed: int = 0) -> None:
        self.kind, self.n_out = kind, n_out
        self.rows = len(y) if len(y) >= 2 * CROSS_FOLDS else 0
        if not self.rows:
            return
        order = np.random.default_rng(seed).permutation(len(y))[:CROSS_MAX_TRAIN]
        if kind == "softmax":  # stratified: each class spread over the folds by turns
            order = order[np.argsort(y[order].numpy(), kind="stable")]
        self.x, self.y = x[order], y[order]
        self.rows = len(self.y)
        self.fold = torch.arange(self.rows) % CROSS_FOLDS
        self.starts: list = [None] * CROSS_FOLDS

    def loss(self, c: float) -> float:
        total = 0.0
        for k in range(CROSS_FOLDS if self.rows else 0):
            out, keep = self.fold == k, self.fold != k
            w, b = fit_linear(self.x[keep], self.y[keep], self.kind, c, self.n_out,
                              self.starts[k])
            finite = bool(torch.isfinite(w).all() and torch.isfinite(b).all())
            self.starts[k] = (w, b) if finite else None  # never a warm start from NaN
            with torch.no_grad():
                loss = float(_loss(self.x[out] @ w.T + b, self.y[out], self.kind))
            total += loss * int(out.sum()) if math.isfinite(loss) else math.inf
        return total


def choice_key(kind: str, score: float, val_loss: float) -> tuple[float, float]:
    """How fits of different strengths compare on validation (the larger key wins). A ridge
    head by its error: a correlation ignores scale, and a shrunk fit with the same
    correlation predicts a squeezed range. A softmax head by its loss too: on a few hundred
    validation rows the loss, a proper score of every probability, picks the strength more
    surely than accuracy or F1, which move in steps of one row (bench/RESULTS.md, "The
    fitted head's strength"). One sigmoid per label by the task's metric (micro-F1 after
    its thresholds), ties to the lower loss."""
    return (score, -val_loss) if kind == "sigmoid" else (-val_loss, score)


def fit_head(model, spec, impl, p_feats: dict, splits: dict, labels: list[str], options,
             collate, amp, seed: int = 0, cross_check: bool = False) -> dict | None:
    """Fit the head's last linear layer on frozen features (C chosen on held-out rows, see
    `choice_key` and `CrossCheck`) and write it into the model.
    Returns what was done, or None where the head has no such layer or there is no
    validation split to choose on."""
    kind = _kind(spec.problem_type)
    n_out = 1 if kind == "ridge" else len(labels)
    linear = head_linear(model, n_out, spec.head_modules)
    if linear is None or not p_feats.get("validation") or not p_feats.get("train"):
        return None
    t0 = time.perf_counter()
    train = _sample(p_feats["train"], PROBE_MAX_TRAIN, seed)
    x_train = torch.from_numpy(features(model, linear, train, collate, amp))
    x_val = torch.from_numpy(features(model, linear, p_feats["validation"], collate, amp))
    # centred and scaled by one number (not per feature): the L2 penalty stays the same for
    # every direction of the raw features, and a feature that barely varies is not blown up
    # into a huge weight
    # Features that barely vary between texts (an untrained pooler: 5e-4 on a tiny random
    # BERT) need huge weights to separate anything, and fine-tuning then blows them up (a
    # loss of 2,000 after five steps): no head start from them, the head starts as before
    mu = x_train.mean(0)
    sd = (x_train - mu).pow(2).mean().sqrt()
    if not sd >= FLAT:
        return None
    xs, xv = (x_train - mu) / sd, (x_val - mu) / sd
    y = _targets(train, kind)
    y_val = _targets(p_feats["validation"], kind)
    if kind == "softmax" and int(y.max()) >= n_out:
        return None
    # Where the probe is the model (head-only), a head chosen by its loss reads every
    # held-out row there is, the validation split's and a cross-check of the training
    # rows', over a finer grid (1-2 s more). A start for fine-tuning is chosen on the
    # validation split: the cross-checked start scored no better after full fine-tuning
    # (bench/RESULTS.md). A multi-label head keeps the validation split's thresholded
    # micro-F1 (its thresholds are chosen there).
    # The held-out loss falls, then rises as the strength weakens: two strengths in a row
    # worse than the best end that walk (the weakest take the most L-BFGS steps).
    cross = CrossCheck(xs, y, kind, n_out, seed) if cross_check and kind != "sigmoid" else None
    grid = PROBE_C if cross is None else LOSS_C
    cross_rows = cross.rows if cross is not None else 0
    best, start, worse = None, None, 0
    for c in grid:
        cross_sum = cross.loss(c) if cross is not None else 0.0
        w, b = fit_linear(xs, y, kind, c, n_out, start)
        finite = bool(torch.isfinite(w).all() and torch.isfinite(b).all())
        start = (w, b) if finite else None  # never a warm start from NaN
        with torch.no_grad():
            logits = xv @ w.T + b
            val_loss = float(_loss(logits, y_val, kind))
        held_out = (val_loss * len(y_val) + cross_sum) / (len(y_val) + cross_rows)
        outputs = list(logits.numpy())
        metrics = impl.metrics(outputs, p_feats["validation"], splits["validation"], labels,
                               **options.hooks())
        score = metrics.get(spec.primary_metric)
        score = -math.inf if score is None or score != score else float(score)
        key = choice_key(kind, score, held_out)
        if not finite or any(math.isnan(v) for v in key):
            continue  # features that overflowed: no head from this fit
        if best is None or key > best[0]:
            best, worse = (key, c, w, b, metrics, score, val_loss), 0
        elif cross is not None:
            worse += 1
            if worse == 2:
                break
    if best is None:
        return None
    key, c, w, b, metrics, score, val_loss = best
    with torch.no_grad():  # back to the raw features: W x' + b with x' = (x - mu) / sd
        raw_w = w / sd
        raw_b = b - (raw_w * mu).sum(1)
        linear.weight.copy_(raw_w.to(linear.weight.dtype))
        if linear.bias is not None:
            linear.bias.copy_(raw_b.to(linear.bias.dtype))
    return {"c": c, "validation": round(score, 4) if math.isfinite(score) else None,
            "validation_loss": round(val_loss, 5), "metric": spec.primary_metric,
            "train_rows": len(train), "cross_rows": cross_rows,
            "seconds": round(time.perf_counter() - t0, 2),
            "head_params": linear.weight.numel() + (linear.bias.numel()
                                                    if linear.bias is not None else 0)}
