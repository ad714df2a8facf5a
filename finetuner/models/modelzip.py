"""Uploaded model zips and the checks every model folder passes before anything is built.

Owns: unpacking a zip once per distinct upload (by content hash), streamed entry by entry to
disk with caps on the unpacked size, the number of entries and the compression ratio, into a
temporary folder that only becomes the model once everything passed (a refused zip leaves
nothing behind); removing unpacked uploads that no run uses; and the model-folder checks:
safetensors weights only (an index file only when every shard it names is a .safetensors file
beside it), tokenizer files present, and a config.json whose sizes are sane, so that a crafted
config (a million layers) is refused before a skeleton of it is built anywhere. Names are
compared case-insensitively. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from finetuner.errors import ModelError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy",
                   ".npz", ".h5", ".msgpack")
TOKENIZER_FILES = {"tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model",
                   "sentencepiece.bpe.model", "vocab.json"}
# Far above every encoder this studio is for (ModernBERT-large: 28 layers, 1024 wide, 8192
# positions; XLM-R: 250k vocabulary), far below what would exhaust a server's memory.
CONFIG_LIMITS = {"num_hidden_layers": 64, "hidden_size": 4096, "intermediate_size": 16384,
                 "num_attention_heads": 128, "vocab_size": 512_000,
                 "max_position_embeddings": 65_536, "type_vocab_size": 1024,
                 "num_labels": 10_000}
MAX_PARAMS = 3_000_000_000
MAX_CONFIG_BYTES = 1 << 20
CHUNK = 1 << 20
COMPLETE = ".complete"
UNUSED_GRACE_SECONDS = 3600


@dataclass(frozen=True)
class ZipLimits:
    max_bytes: int = 2048 << 20  # FINETUNER_MAX_MODEL_MB
    max_entries: int = 2000
    max_ratio: float = 100.0  # weights hardly compress; a bomb of zeros compresses 1000x


def file_digest(path: str | Path) -> str:
    """sha256 of a file, read in chunks (an upload is never held in memory whole)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def unpack_once(archive: Path, models_dir: Path, display: str,
                limits: ZipLimits = ZipLimits()) -> Path:
    """The model folder of this upload, unpacked only the first time its content is seen."""
    digest = file_digest(archive)[:24]
    target = models_dir / digest
    marker = target / COMPLETE
    if marker.is_file():
        os.utime(marker)  # in use: keep it out of the unused sweep for a while
        return target / marker.read_text("utf-8").strip()
    models_dir.mkdir(parents=True, exist_ok=True)
    part = models_dir / f".{digest}.part-{os.getpid()}-{time.monotonic_ns()}"
    try:
        folder = unpack_model_zip(archive, part, display, limits)
        relative = folder.relative_to(part)
        (part / COMPLETE).write_text(str(relative), "utf-8")
        (part / "source.txt").write_text(display[:200], "utf-8")
        if target.exists():  # a half-written leftover from a crash
            shutil.rmtree(target, ignore_errors=True)
        os.replace(part, target)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return target / relative


def unpack_model_zip(archive: Path, target: Path, display: str,
                     limits: ZipLimits = ZipLimits()) -> Path:
    """Unpack into `target` (which must not exist yet); returns the model folder inside."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError):
        raise ModelError(f"'{display}' is not a valid zip file.", code="bad_zip") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        _check_entries(infos, display, limits)
        target.mkdir(parents=True)
        root = target.resolve()
        written = 0
        for info in infos:
            dest = (root / info.filename).resolve()
            dest.parent.mkdir(parents=True, exist_ok=True)
            written += _copy_entry(zf, info, dest, display, limits, limits.max_bytes - written)
    configs = sorted(root.rglob("config.json"), key=lambda p: len(p.parts))
    if not configs:
        raise ModelError(f"'{display}' holds no config.json.", "Zip a saved model folder.",
                         code="not_a_model")
    folder = configs[0].parent
    check_model_folder(folder, display)
    return folder


def _check_entries(infos: list[zipfile.ZipInfo], display: str, limits: ZipLimits) -> None:
    """Everything that can be refused from the zip's directory alone, before a byte is
    written."""
    mb = limits.max_bytes >> 20
    if len(infos) > limits.max_entries:
        raise ModelError(f"'{display}' holds {len(infos):,} files; a model zip may hold at most "
                         f"{limits.max_entries:,}.", "Zip only the saved model folder.",
                         code="zip_too_many")
    if sum(i.file_size for i in infos) > limits.max_bytes:
        raise ModelError(f"'{display}' unpacks to more than {mb:,} MB, this server's cap "
                         "(FINETUNER_MAX_MODEL_MB).", "Upload a smaller model, or ask the "
                         "administrator to raise the cap.", code="zip_too_big")
    for info in infos:
        name = info.filename
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise ModelError(f"'{display}' contains an unsafe path '{name[:80]}'.",
                             code="zip_slip")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ModelError(f"'{display}' contains a link ('{name[:80]}').",
                             "Zip the files themselves.", code="zip_slip")
        if info.flag_bits & 0x1:
            raise ModelError(f"'{display}' is encrypted.", "Zip it without a password.",
                             code="bad_zip")
        if name.lower().endswith(PICKLE_SUFFIXES):
            raise ModelError(
                f"'{display}' holds pickle weights ('{Path(name).name[:60]}'), which can run "
                "code when loaded.", "Save the model with safetensors (save_pretrained does "
                "by default) and zip it again.", code="unsafe_weights")
        if info.file_size > CHUNK and info.file_size > limits.max_ratio * max(
                1, info.compress_size):
            raise _ratio_error(display, limits)


def _ratio_error(display: str, limits: ZipLimits) -> ModelError:
    return ModelError(f"'{display}' compresses more than {limits.max_ratio:g} to 1, which no "
                      "model does (it looks like a zip bomb).",
                      "Zip the saved model folder itself.", code="zip_bomb")


def _copy_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, display: str,
                limits: ZipLimits, budget: int) -> int:
    """Stream one entry to disk, counting the bytes really produced (the sizes in a zip's
    directory can lie)."""
    done = 0
    with zf.open(info) as src, open(dest, "wb") as out:
        while block := src.read(CHUNK):
            done += len(block)
            if done > budget:
                raise ModelError(f"'{display}' unpacks to more than {limits.max_bytes >> 20:,} "
                                 "MB, this server's cap (FINETUNER_MAX_MODEL_MB).",
                                 code="zip_too_big")
            if done > CHUNK and done > limits.max_ratio * max(1, info.compress_size):
                raise _ratio_error(display, limits)
            out.write(block)
    return done


def sweep_unused(models_dir: Path, in_use: set[Path], keep: Path | None = None) -> int:
    """Remove unpacked uploads that no run uses (and that were not used in the last hour)."""
    if not models_dir.is_dir():
        return 0
    removed = 0
    used = {p.resolve() for p in in_use}
    now = time.time()
    for folder in models_dir.iterdir():
        marker = folder / COMPLETE
        if keep is not None and folder.resolve() == keep.resolve():
            continue
        stale_part = folder.name.startswith(".") and now - folder.stat().st_mtime > 3600
        if not marker.is_file() and not stale_part:
            continue
        if any(u == folder.resolve() or folder.resolve() in u.parents for u in used):
            continue
        if marker.is_file() and now - marker.stat().st_mtime < UNUSED_GRACE_SECONDS:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    return removed


def check_model_folder(path: Path, display: str | None = None) -> None:
    """A folder that save_pretrained wrote: config, safetensors weights, tokenizer."""
    shown = display or str(path)
    if not path.is_dir():
        raise ModelError(f"'{shown}' is a file, not a model folder.", "Give the folder.",
                         code="not_a_model")
    names = {p.name.lower(): p for p in path.iterdir()}
    if "config.json" not in names:
        raise ModelError(
            f"'{shown}' is not a model folder: it has no config.json.",
            "Point to the folder that holds config.json, the weights and the tokenizer "
            "(what save_pretrained writes).", code="not_a_model")
    check_model_config(_read_config(names["config.json"], shown), shown)
    if "model.safetensors.index.json" in names:
        _check_index(names["model.safetensors.index.json"], path, shown)
    elif "model.safetensors" not in names:
        pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
        raise ModelError(
            f"'{shown}' has no safetensors weights (model.safetensors)"
            + (f"; pickle weights ({pickles[0]}) are not loaded here, since they can run code."
               if pickles else "."),
            "Save the model with safetensors (model.save_pretrained does by default).",
            code="unsafe_weights" if pickles else "not_a_model")
    if not set(names) & TOKENIZER_FILES:
        raise ModelError(f"'{shown}' has no tokenizer files.",
                         "Save the tokenizer next to the model (tokenizer.save_pretrained).",
                         code="not_a_model")


def _read_config(path: Path, shown: str) -> dict:
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ModelError(f"The config.json of '{shown}' is over 1 MB, which no model's is.",
                         code="bad_config")
    try:
        raw = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"The config.json of '{shown}' is not valid JSON.",
                         code="bad_config") from None
    if not isinstance(raw, dict):
        raise ModelError(f"The config.json of '{shown}' is not a JSON object.",
                         code="bad_config")
    return raw


def _check_index(index: Path, folder: Path, shown: str) -> None:
    """A sharded checkpoint: every shard a .safetensors file in this same folder."""
    try:
        weight_map = json.loads(index.read_text("utf-8")).get("weight_map") or {}
        shards = {str(v) for v in weight_map.values()}
    except (ValueError, AttributeError, UnicodeDecodeError):
        raise ModelError(f"The weight index of '{shown}' is not valid JSON.",
                         code="bad_config") from None
    present = {p.name for p in folder.iterdir()}
    bad = [s for s in shards if not s.lower().endswith(".safetensors") or "/" in s
           or "\\" in s or s.startswith(".") or s not in present]
    if not shards or bad:
        raise ModelError(
            f"The weight index of '{shown}' names shards that are not .safetensors files in "
            f"the same folder ({(bad or ['none'])[0][:60]}).",
            "Save the model with safetensors (save_pretrained does by default).",
            code="unsafe_weights")


def check_model_config(raw: dict, shown: str) -> None:
    """Sizes a real encoder has; refused before any skeleton of the model is built."""
    def number(key):
        value = raw.get(key)
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    for key, cap in CONFIG_LIMITS.items():
        value = raw.get(key)
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                  or value < 0 or value > cap):
            raise ModelError(f"The config.json of '{shown}' sets {key} = {str(value)[:40]}, "
                             f"beyond the {cap:,} this studio accepts.",
                             "Use a standard encoder configuration.", code="bad_config")
    hidden, layers = number("hidden_size"), number("num_hidden_layers")
    inner = number("intermediate_size") or 4 * hidden
    params = number("vocab_size") * hidden + layers * (4 * hidden * hidden + 2 * hidden * inner)
    if params > MAX_PARAMS:
        raise ModelError(f"The config.json of '{shown}' describes about {params / 1e9:.0f} "
                         "billion parameters, beyond the 3 billion this studio accepts.",
                         "Use an encoder of a usual size.", code="bad_config")
