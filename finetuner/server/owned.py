"""What one user owns beside their runs: models they uploaded or trained (picked from a list,
never typed as a path) and the disk their folder takes, against their quota. A mixin of
`studio.Workspace` (it reads the workspace's root, runs and studio)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from finetuner.errors import FinetunerError
from finetuner.models.modeling import ModelSource, local_source
from finetuner.models.modelzip import ZipLimits, sweep_unused, unpack_once
from finetuner.naming import safe_filename
from finetuner.runs import read_json


class OwnModels:
    # -- models of one's own: uploaded zips and trained runs, picked from a list, never typed
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    def upload_model(self, archive: str) -> ModelSource:
        """An uploaded model zip, unpacked once per distinct content into this user's area."""

        self.check_quota(_unpacked_size(archive))  # what it will take once unpacked
        display = safe_filename(Path(archive).name, "model.zip")
        limits = ZipLimits(max_bytes=self.studio.limits.max_model_mb << 20)
        folder = unpack_once(Path(archive), self.models_dir, display, limits)
        sweep_unused(self.models_dir, self._models_in_use(), keep=folder.parent)
        return local_source(folder, display)

    def own_models(self) -> list[tuple[str, str]]:
        """(label, value) for the model picker: finished runs with a full model, then
        earlier uploads. Values are opaque ids checked again by own_model()."""
        out = []
        for s in self.list_runs():
            meta = read_json(self.runs_dir / s.id / "model" / "finetuner.json")
            if meta and meta.get("format") != "peft-adapter":
                out.append((f"{s.name} · trained here {s.created}", f"run:{s.id}"))
        if self.models_dir.is_dir():
            for folder in sorted(self.models_dir.iterdir()):
                source = folder / "source.txt"
                if (folder / ".complete").is_file() and source.is_file():
                    out.append((f"{source.read_text('utf-8')} · uploaded", f"upload:{folder.name}"))
        return out

    def own_model(self, value: str | None) -> ModelSource:
        kind, _, key = str(value or "").partition(":")
        if key and f"{kind}:{key}" in {v for _, v in self.own_models()}:
            if kind == "run":
                run = self.run(key)
                return local_source(run.model, self.name_of(run),
                                    portable=safe_filename(self.name_of(run), "model"))
            folder = self.models_dir / key
            inner = (folder / ".complete").read_text("utf-8").strip()
            return local_source(folder / inner, (folder / "source.txt").read_text("utf-8"))
        raise FinetunerError("Pick one of your models from the list.",
                             "Train a model here first, or upload a model zip.",
                             code="no_model")

    def _models_in_use(self) -> set[Path]:
        used = set()
        for folder in self.runs_dir.iterdir():
            config = read_json(folder / "config.json") or {}
            name = (config.get("model") or {}).get("name_or_path")
            if name and str(self.models_dir) in name:
                used.add(Path(name))
        return used

    # -- disk
    def usage_bytes(self) -> int:
        """The user's folder (runs, models, groups, predictions, exports) and their uploads
        still in gradio's cache."""
        return folder_bytes(self.root) + self.studio.files.uploaded_bytes(self.user)

    def check_quota(self, incoming: int = 0) -> None:
        """Refuse an upload or a training that would take this user over their disk quota."""
        quota_gb = self.studio.limits.max_disk_gb_per_user
        if not quota_gb:
            return
        used = self.usage_bytes()
        if used + incoming > quota_gb * 1e9:
            raise FinetunerError(
                f"Your runs and uploads use {used / 1e9:.2f} GB of your {quota_gb:g} GB on this "
                "server (FINETUNER_MAX_DISK_GB_PER_USER).",
                "Delete runs you no longer need on the Your runs tab (each shows its size), "
                "or ask the administrator to raise the quota.", code="quota")


def _unpacked_size(archive: str) -> int:
    """A zip's total uncompressed size from its directory (a bomb is counted as what it
    would become); the file's own size for anything that is not a readable zip."""

    try:
        with zipfile.ZipFile(archive) as zf:
            return sum(max(0, info.file_size) for info in zf.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return os.path.getsize(archive)


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total
