"""What each button and upload does. Handlers take (user, form) and return {name: value}.

`form` maps component names to their current values; the returned dict maps component names
to new values or `gr.update(...)`. The app (`finetuner.ui.app`) wires names to components and
turns any exception into an inline message, so a handler may simply raise FinetunerError.
The server never trains: `start` hands a run directory to the job manager's worker process.
Each tab's handlers (and its wiring) live in its own module, tab_<tab>.py; forms.py holds
the form's fields and choices.
"""

from __future__ import annotations

import os
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.models.modeling import ModelSource, model_config, resolve_model
from finetuner.server.studio import Studio
from finetuner.tasks import DEFAULT_TASK
from finetuner.ui.forms import (
    COLUMN_FIELDS,
    NOT_YOURS,
    _col,
    _path,
    method_of,
    settings_from_form,
)
from finetuner.ui.tab_admin import AdminTab
from finetuner.ui.tab_data import DataTab
from finetuner.ui.tab_groups import GroupsTab
from finetuner.ui.tab_model import ModelTab
from finetuner.ui.tab_results import ResultsTab
from finetuner.ui.tab_runs import RunsTab
from finetuner.ui.tab_train import TrainTab
from finetuner.ui.tab_try import TryTab


class Handlers(DataTab, ModelTab, TrainTab, ResultsTab, TryTab, RunsTab, GroupsTab, AdminTab):
    """Every handler of the page, one mixin per tab; what they share (the caller's files,
    the model source, the form as a RunConfig) is here."""

    def __init__(self, studio: Studio, auth_mode: str = "none") -> None:
        self.studio = studio
        # one local user owns every file; on a shared server a file input must be the caller's
        self.check_files = auth_mode != "none"
        self.labels: dict[str, str] = {}  # form field -> its label on the page (Wiring.add)

    # ------------------------------------------------------------------ files
    def _file(self, user: str, form: dict, key: str) -> str | None:
        """The path of a file input, only when it is the caller's own upload (or a file
        `_share` handed to them): gradio names upload folders by content, so anyone who knows
        a file's content could name its path in a crafted request."""
        path = _path(form.get(key))
        files = self.studio.files
        if path and self.check_files and not files.allowed(user, path):
            raise FinetunerError(NOT_YOURS.format(kept=files.kept_for()), code="not_your_file")
        if path and files.inside(path) and not os.path.exists(path):  # an upload that expired
            raise FinetunerError(NOT_YOURS.format(kept=files.kept_for()), code="upload_gone")
        return path

    def _share(self, user: str, path: str | Path, run_id: str | None = None,
               name: str | None = None) -> str:
        """A private, short-lived copy of a server file for this user to download, inside
        gradio's cache (served as it is, and only to them; deleting the run removes it)."""
        return self.studio.files.share(user, path, run_id, name)

    # ------------------------------------------------------------------ config
    def model_source(self, user: str, form: dict) -> ModelSource:
        """The model the form names, checked; on a shared server a typed folder must lie
        inside FINETUNER_MODEL_DIRS, and a user's own models are picked from their list."""
        choice = form.get("model_choice") or "default"
        if choice in ("default", "mpnet"):  # the packaged models
            return resolve_model("all-mpnet-base-v2" if choice == "mpnet" else "default")
        ws = self.studio.workspace(user)
        if choice == "zip":
            archive = self._file(user, form, "model_zip")
            if not archive:
                raise FinetunerError("No model zip uploaded yet.",
                                     "Upload a .zip of a saved model folder.", code="no_model")
            return ws.upload_model(archive)
        if choice == "mine":
            return ws.own_model(form.get("model_own"))
        name = (form.get("model_path") or "").strip()
        if not name:
            what = "folder path" if choice == "folder" else "hub id"
            raise FinetunerError(f"No model {what} given.", f"Type the {what}.",
                                 code="no_model")
        return resolve_model(name, policy=self.studio.model_policy)

    def config(self, user: str, form: dict, model: ModelSource | None = None) -> RunConfig:
        train = self._file(user, form, "train_file")
        if not train:
            raise FinetunerError("No training file yet.",
                                 "Upload a CSV, TSV, JSON, JSONL or Parquet file on the Data "
                                 "tab, or load an example.", code="no_data")
        settings = settings_from_form(form)
        return RunConfig.from_dict({
            "task": form.get("task") or DEFAULT_TASK,
            "data": {
                "train_file": train,
                "validation_file": self._file(user, form, "val_file"),
                "test_file": self._file(user, form, "test_file"),
                **{field: _col(form.get(field)) for field in COLUMN_FIELDS},
                **settings["data"],
            },
            "model": model_config(model or self.model_source(user, form)),
            "method": {"method": method_of(form),
                       "export_adapter_only": bool(form.get("adapter_only")),
                       **settings["method"]},
            "training": settings["training"],
        })
