"""What each method costs before anything trains: trainable parameters, time per epoch, advice.

Parameters are counted from the checkpoint's safetensors header and config.json for the
common encoder families (no torch, no model classes imported: the first view of the table is
instant), else on a weightless copy of the model (torch's meta device). Time per epoch is
estimated from the tokens in the user's data and the FLOPs per token of each method (about 6x
the encoder's weights for full fine-tuning, 4x for LoRA, which skips weight gradients, and 2x
for head-only, which skips the backward pass through the encoder), at the speed this machine
reached on our SST-2 benchmark, scaled by a short matrix-multiply probe of the machine the
server runs on (measured in the background at server start).
"""

from __future__ import annotations

import functools
import json
import math
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from finetuner.config import MethodConfig
from finetuner.methods import CPU_BATCH_SIZE, METHOD_HELP, default_learning_rate
from finetuner.models import modeling
from finetuner.models.modelzip import check_model_config
from finetuner.models.pooling import MEAN, body_pooling

FLOPS_PER_PARAM_TOKEN = {"full": 6.0, "lora": 4.0, "head": 2.0}
# Effective training FLOP/s per unit of probe FLOP/s, measured with bench/sst2.py on the
# 2-core development CPU (all-MiniLM-L6-v2, bf16, SST-2, one epoch: full 194, LoRA 265 and
# head-only 477 samples/s at 13.3 tokens per example; probe 713 GFLOP/s).
EFFICIENCY = {"full": 0.26, "lora": 0.235, "head": 0.21}
PADDING_OVERHEAD = 1.1  # length-grouped batches still pad a little
# Wider models multiply larger matrices and run closer to the probe's rate: the efficiencies
# above hold at MiniLM's width (384) and scale with the square root of the hidden size
# (measured on the same CPU with bench/estimate_check.py: all-mpnet-base-v2, width 768, took
# 0.53-0.68 of the unscaled estimate per planned step, where MiniLM took 0.70-0.94).
REFERENCE_WIDTH = 384
# Where the CPU has no fast bf16 (no AVX512-BF16 or AMX: most laptops), training runs in fp32
# and the probe's multiply is several times slower, but the rest of a step (attention's
# softmax, layer norms, the optimizer) slows much less: a step takes a larger share of the
# probe's rate. Measured with bench/estimate_check.py on a 2-core AMD EPYC with AVX2 only:
# measured / estimate per planned step 0.30-0.65 (the probe itself varies by a quarter from one
# process to the next there) with the bf16 efficiencies, against 0.70-0.94 on the bf16
# machine; 1.5 gave 0.46-0.85; the probe counts this much more in fp32:
FP32_STEP_SHARE = 2.0


@dataclass
class MethodCost:
    method: str
    trainable: int
    total: int
    seconds_per_epoch: float | None
    help: str
    one_pass: bool = False  # head-only on a mean-pooled body: one pass, whatever the epochs
    seconds_per_eval: float = 0.0  # one evaluation (4 of them are in seconds_per_epoch)

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0


@functools.lru_cache(maxsize=8)
def method_params(model_path: str, task_auto: str, peft_task: str, heads: tuple[str, ...],
                  num_labels: int, lora_r: int = 8) -> dict[str, tuple[int, int, int]]:
    """(trainable, total, non-embedding) parameters per method, on the meta device."""
    import torch
    import transformers


    config = transformers.AutoConfig.from_pretrained(model_path, num_labels=max(num_labels, 1))

    # sizes checked before a skeleton is built: a crafted config must not fill the web process
    check_model_config(config.to_dict(), Path(model_path).name)
    auto = getattr(transformers, task_auto)
    out = {}

    class Spec:  # the few fields apply_method reads
        head_modules = heads
        peft_task_type = peft_task

    for method in ("full", "lora", "head"):
        with torch.device("meta"):
            model = auto.from_config(config)
        non_embedding = sum(p.numel() for n, p in model.named_parameters()
                            if "embeddings" not in n)
        model = modeling.apply_method(model, Spec, MethodConfig(method=method, lora_r=lora_r))
        counts = modeling.count_params(model)
        out[method] = (counts["trainable"], counts["total"], non_embedding)
    return out


# model_type -> the checkpoint's prefix. Their sequence-classification heads all hold a
# hidden-size dense layer (BERT's and DeBERTa's pooler, RoBERTa's head) and the output
# layer. Others (DistilBERT, ELECTRA, ModernBERT, ...) are counted on meta-device skeletons.
FAMILIES = {"bert": "bert", "roberta": "roberta", "xlm-roberta": "roberta",
            "deberta-v2": "deberta", "mpnet": "mpnet"}
LORA_TARGETS = {"deberta-v2": 2}  # query and value projections per layer (peft's default)
PRETRAINING_HEADS = ("cls.", "lm_head.", "generator", "discriminator_predictions",
                     "mask_predictions", "lm_predictions", "pooler.")


MAX_HEADER_BYTES = 8 << 20  # BERT-large's header is about 50 KB


def _weight_files(folder: Path) -> list[Path]:
    """model.safetensors, or the shards its index names (never stray files beside them)."""

    single = folder / "model.safetensors"
    if single.is_file():
        return [single]
    index = json.loads((folder / "model.safetensors.index.json").read_text("utf-8"))
    names = sorted(set((index.get("weight_map") or {}).values()))
    if not names or any(Path(n).name != n or not n.endswith(".safetensors") for n in names):
        raise ValueError("unexpected index")
    return [folder / n for n in names]


def _header_counts(folder: Path) -> dict[str, int]:
    """{tensor name: element count} from the safetensors header(s): 8 bytes and a JSON."""

    out: dict[str, int] = {}
    for file in _weight_files(folder):
        with open(file, "rb") as fh:
            size = struct.unpack("<Q", fh.read(8))[0]
            if size > MAX_HEADER_BYTES:
                raise ValueError("safetensors header too large")
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name != "__metadata__" and str(info.get("dtype", "")).startswith(("F", "BF")):
                out[name] = math.prod(int(d) for d in info["shape"])
    return out


def quick_params(model_path: str, task_auto: str, num_labels: int, lora_r: int = 8
                 ) -> dict[str, tuple[int, int, int]] | None:
    """method_params from the header and config.json alone, for the families in FAMILIES
    (exactly what peft and transformers build; tests compare both); None for others, and
    for any file that does not read as expected (the skeletons then count)."""
    folder = Path(model_path)
    try:
        stamp = max(f.stat().st_mtime_ns for f in folder.iterdir()
                    if f.suffix in (".json", ".safetensors"))
        return _quick_params(str(folder), stamp, task_auto, num_labels, lora_r)
    except Exception:  # noqa: BLE001 - an odd upload: fall back to the skeletons
        return None


@functools.lru_cache(maxsize=32)
def _quick_params(model_path: str, stamp: int, task_auto: str, num_labels: int, lora_r: int
                  ) -> dict[str, tuple[int, int, int]] | None:

    folder = Path(model_path)
    config = json.loads((folder / "config.json").read_text("utf-8"))
    prefix = FAMILIES.get(config.get("model_type"))
    if prefix is None:
        return None
    counts = _header_counts(folder)
    backbone = embeddings = 0
    for name, n in counts.items():
        name = name.removeprefix(prefix + ".")
        if name.startswith(PRETRAINING_HEADS) or not name.startswith(("embeddings.",
                                                                       "encoder.")):
            continue
        backbone += n
        embeddings += n if "embeddings" in name else 0  # as method_params counts them
    if not backbone:
        return None
    h, labels = int(config["hidden_size"]), max(num_labels, 1)  # regression: one output
    if task_auto == "AutoModelForSequenceClassification":
        # DeBERTa's pooler maps pooler_hidden_size to itself (it must equal hidden_size)
        inner = int(config.get("pooler_hidden_size") or h)
        head = (inner * inner + inner) + (inner * labels + labels)
    elif task_auto in ("AutoModelForTokenClassification", "AutoModelForQuestionAnswering"):
        head = h * labels + labels  # QA: two labels, the start and the end
    else:
        return None
    total = backbone + head
    lora = int(config["num_hidden_layers"]) * LORA_TARGETS.get(config["model_type"], 2) * \
        lora_r * (h + h)
    return {"full": (total, total, total - embeddings),
            "lora": (lora + head, total + lora + head, total - embeddings),
            "head": (head, total, total - embeddings)}


def counts(model_path: str, spec, num_labels: int, lora_r: int = 8
           ) -> dict[str, tuple[int, int, int]]:
    """(trainable, total, non-embedding) per method: from the header where the family is
    known, else from meta-device skeletons."""

    auto, peft_task = spec.auto_model, spec.peft_task_type
    if spec.sentence_level and body_pooling(model_path) == MEAN:  # heads.MeanPooled: a
        auto, peft_task = "AutoModelForTokenClassification", "TOKEN_CLS"  # linear head only
    quick = quick_params(model_path, auto, num_labels, lora_r)
    if quick is not None:
        return quick
    return method_params(model_path, auto, peft_task, spec.head_modules, num_labels, lora_r)


def warm_up() -> None:
    """Measure the machine once in the background at server start, so that no request waits
    for the probe."""
    threading.Thread(target=probe_flops, name="finetuner-probe", daemon=True).start()


_PROBE_LOCK = threading.Lock()
REPROBE_SECONDS = 60.0  # a probe older than this is taken again (it costs tens of ms)
SETTLE_SECONDS = (5.0, 15.0, 40.0)  # after start-up, probes again (a start is a busy moment)
_PROBED = {"flops": 0.0, "at": -math.inf}


def settle_probe(waits=SETTLE_SECONDS, sleep=time.sleep) -> float:
    """Probe again a few times in the first minute after start-up, keeping the fastest: a
    server starts while other things start too (a browser, a resumed training), and a first
    probe taken then read 7x slow, so every estimate on the page was 7x too long."""
    for wait in waits:
        sleep(wait)
        with _PROBE_LOCK:
            _PROBED["flops"] = max(_PROBED["flops"], _probe())
            _PROBED["at"] = time.monotonic()
    return _PROBED["flops"]


def probe_flops() -> float:
    """FLOP/s of a transformer-sized matrix multiply on this machine (bf16 where fast; in
    fp32 counted FP32_STEP_SHARE times, for the training rate it stands for): the
    fastest of the probes so far, taken at start-up and again when the last is older than
    REPROBE_SECONDS. Load only ever slows a probe, so a server that started while the machine
    was busy (a training resumed after a restart) does not keep its inflated estimates. A
    request during a probe waits for it."""
    with _PROBE_LOCK:
        now = time.monotonic()
        if not _PROBED["flops"] or now - _PROBED["at"] >= REPROBE_SECONDS:
            _PROBED["flops"] = max(_PROBED["flops"], _probe())
            _PROBED["at"] = now
        return _PROBED["flops"]


def _probe() -> float:
    import torch

    from finetuner.models.batching import pick_precision

    dtype = pick_precision("auto", torch.device("cpu")) or torch.float32
    a = torch.randn(512, 384, dtype=dtype)
    b = torch.randn(384, 1536, dtype=dtype)
    for _ in range(3):
        a @ b
    reps = 20
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    seconds = max(1e-9, time.perf_counter() - t)
    scale = FP32_STEP_SHARE if dtype == torch.float32 else 1.0
    return scale * 2 * 512 * 384 * 1536 * reps / seconds


def seconds_per_eval(non_embedding: int, n_train: int, mean_tokens: float, n_eval: int,
                     flops: float | None = None, train_eval: int | None = None) -> float:
    """One evaluation: the validation split, and up to train_eval training rows re-scored
    (TrainingConfig.train_eval_samples) for the train-vs-validation curves."""
    if not n_eval:
        return 0.0
    if train_eval is None:
        from finetuner.config import TrainingConfig

        train_eval = TrainingConfig().train_eval_samples
    scored = n_eval + train_sample_size(n_train, n_eval, train_eval)
    return 2 * non_embedding * scored * max(mean_tokens, 4) / (
        (flops or probe_flops()) * EFFICIENCY["head"])


def seconds_per_epoch(method: str, non_embedding: int, n_train: int, mean_tokens: float,
                      n_eval: int = 0, evals: int = 4, flops: float | None = None,
                      train_eval: int | None = None) -> float:
    """One epoch's training plus its evaluations."""
    rate = (flops or probe_flops()) * EFFICIENCY[method]
    tokens = n_train * max(mean_tokens, 4) * PADDING_OVERHEAD
    train = FLOPS_PER_PARAM_TOKEN[method] * non_embedding * tokens / rate
    return train + evals * seconds_per_eval(non_embedding, n_train, mean_tokens, n_eval, flops,
                                            train_eval)


TRAIN_SAMPLE_FLOOR = 128


def train_sample_size(n_train: int, n_validation: int, cap: int) -> int:
    """Training rows re-scored at each evaluation for the train-vs-validation curves: as many
    as the validation split has (their gap is no surer than its noisier side), at least 128,
    at most `cap` (TrainingConfig.train_eval_samples) and the training rows there are."""
    return min(n_train, cap, max(n_validation, TRAIN_SAMPLE_FLOOR))


def schedule_steps(steps_per_epoch: int, epochs: float, max_steps: int | None,
                   min_steps: int) -> int:
    """Optimizer steps of a run: max_steps when set, else the epochs' worth with a floor
    for small data (early stopping may end it once the floor or the epochs asked for are
    done)."""
    if max_steps:
        return max_steps
    return max(1, math.ceil(steps_per_epoch * epochs), min_steps)


def evaluation_interval(steps_per_epoch: int, total_steps: int, per_epoch: int) -> int:
    """Steps between evaluations: `per_epoch` times an epoch, but not more often than every
    5 steps unless the whole run is shorter than 20 (tiny data would evaluate every step)."""
    every = max(1, steps_per_epoch // max(1, per_epoch))
    return min(total_steps, max(every, min(5, max(1, total_steps // 4))))


def planned_seconds(cost: MethodCost, n_train: int, epochs: float, batch_size: int,
                    max_steps: int | None, min_steps: int, evals_per_epoch: int = 4) -> float:
    """The time a run is planned to take (before early stopping ends it sooner): the steps
    training.plan_run takes (its epochs, Max steps, or the floor of steps for small data) and
    the evaluations callbacks.evaluation_interval spaces over them, plus the one at step 0."""
    train = cost.seconds_per_epoch - 4 * cost.seconds_per_eval
    if cost.one_pass:  # features of every split once, then the fit
        return train + cost.seconds_per_eval
    per_epoch = max(1, math.ceil(n_train / max(1, batch_size)))
    total = schedule_steps(per_epoch, epochs, max_steps, min_steps)
    evals = 1 + total // evaluation_interval(per_epoch, total, evals_per_epoch)
    return train * total / per_epoch + evals * cost.seconds_per_eval


def width_factor(model_path: str) -> float:
    """How much faster than MiniLM's width a model turns FLOPs into training (see
    REFERENCE_WIDTH): sqrt(hidden size / 384), within 0.5-2; 1 when the config is unreadable."""
    try:  # an uploaded model's config is anyone's file: anything odd reads as the reference
        config = json.loads((Path(model_path) / "config.json").read_text())
        width = int(config.get("hidden_size") or config.get("dim") or REFERENCE_WIDTH)
    except (OSError, ValueError, TypeError, AttributeError, OverflowError):
        return 1.0
    if width <= 0:
        return 1.0
    return min(2.0, max(0.5, math.sqrt(width / REFERENCE_WIDTH)))


def method_costs(model_path: str, spec, num_labels: int, n_train: int, mean_tokens: float,
                 n_eval: int, lora_r: int = 8) -> list[MethodCost]:

    params = counts(model_path, spec, num_labels, lora_r)
    probe_only = spec.sentence_level and body_pooling(model_path) == MEAN
    flops = probe_flops() * width_factor(model_path)
    costs = []
    for method, (trainable, total, non_embedding) in params.items():
        secs = seconds_per_epoch(method, non_embedding, n_train, mean_tokens, n_eval,
                                 flops=flops) if n_train else None
        costs.append(MethodCost(method, trainable, total, secs, METHOD_HELP[method],
                                seconds_per_eval=seconds_per_eval(non_embedding, n_train,
                                                                  mean_tokens, n_eval, flops),
                                one_pass=probe_only and method == "head"))
    return costs


def run_plan(config, spec, model_path: str, n_train: int, n_eval: int, mean_tokens: float,
             num_labels: int) -> tuple[int | None, float, bool] | None:
    """What a run of `config` is planned to take on this machine's CPU, before early stopping
    ends it sooner: (optimizer steps, None for a one-pass head fit; seconds; whether the floor
    of steps for small data decides rather than the epochs). `n_train` counts what training
    reads (windows of long texts). None without training rows. The Train tab's plan and the
    CLI's both come from here."""
    t = config.training
    costs = method_costs(model_path, spec, num_labels, n_train, mean_tokens, n_eval,
                         config.method.lora_r)
    chosen = next((c for c in costs if c.method == config.method.method), None)
    if chosen is None or not chosen.seconds_per_epoch:
        return None
    batch = t.batch_size or CPU_BATCH_SIZE
    seconds = planned_seconds(chosen, n_train, t.epochs, batch, t.max_steps, t.min_steps,
                              t.evals_per_epoch)
    if chosen.one_pass:
        return None, seconds, False
    per_epoch = max(1, math.ceil(n_train / batch))
    steps = schedule_steps(per_epoch, t.epochs, t.max_steps, t.min_steps)
    return steps, seconds, not t.max_steps and math.ceil(per_epoch * t.epochs) < t.min_steps


@dataclass
class Advice:
    method: str
    epochs: int
    learning_rate: float
    reason: str


def recommend(n_train: int, n_labels: int, seconds_full_epoch: float | None,
              on_gpu: bool = False, full_factor: float = 1.0,
              n_params: int | None = None) -> Advice:
    """Sensible settings for the data size and the hardware, at the method's default rate
    for this model's size (`n_params`; None: the small-model rates) and task
    (`full_factor`: TaskSpec.full_lr_factor)."""
    def rate(method: str) -> float:
        return default_learning_rate(method, n_params, full_factor)

    if n_train < 300:
        # measured on few-shot SST-2 (bench/RESULTS.md, "The small-data advice against the
        # defaults"): LoRA for 8 epochs at 0.002, the earlier advice here, was level with
        # full fine-tuning at 64 sentences and 0.6 points under it at 256
        return Advice("full", 3, rate("full"),
                      f"{n_train} training examples is small: the defaults, full fine-tuning "
                      "with the floor of steps for small data (early stopping keeps the best "
                      "checkpoint). On 64 and 256 sentences of a sentiment benchmark they "
                      "matched or beat LoRA for 8 epochs and head-only training; Compare "
                      "methods measures them on your own data.")
    if n_train < 5000:
        return Advice("full", 4, rate("full"),
                      f"{n_train:,} examples: full fine-tuning for a few epochs is affordable "
                      "here and usually the most accurate.")
    slow = seconds_full_epoch is not None and seconds_full_epoch > 900 and not on_gpu
    if slow:
        minutes = seconds_full_epoch / 60
        return Advice("lora", 1, rate("lora"),
                      f"{n_train:,} examples: one epoch of full fine-tuning takes about "
                      f"{minutes:.0f} min on this machine. LoRA for one epoch gets close in "
                      "less time; with this much data one epoch is usually enough.")
    return Advice("full", 2, rate("full"),
                  f"{n_train:,} examples: with this much data, two epochs of full "
                  "fine-tuning are usually enough.")


def human_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
