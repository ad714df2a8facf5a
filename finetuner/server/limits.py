"""A shared server's caps: what one upload, run, prediction or user may take.

Owns `Limits`, read from FINETUNER_* environment variables (`Limits.from_env`), and the checks
that refuse a file, a try-it text or a run's settings with a sentence naming the cap, its
variable and the fix. The defaults suit a laptop; an administrator lowers them for a team.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    try:
        return int(value) if value else default
    except ValueError:
        raise FinetunerError(f"{name}={value!r} is not a whole number.", code="bad_env") from None


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        number = float(value) if value else default
    except ValueError:
        raise FinetunerError(f"{name}={value!r} is not a number.", code="bad_env") from None
    if number < 0:
        raise FinetunerError(f"{name}={value!r} is negative.", code="bad_env")
    return number


@dataclass(frozen=True)
class Limits:
    """Caps for a shared server, each refused with a sentence that names it."""

    max_upload_mb: int = 200
    max_rows: int = 2_000_000
    max_length: int = 512
    max_epochs: int = 50
    max_jobs: int = 1
    max_jobs_given: bool = False  # FINETUNER_MAX_JOBS was set (with GPU slots: caps them)
    max_queued_per_user: int = 3
    max_groups_per_user: int = 2  # comparisons and searches running at once
    max_trials: int = 200  # trials of one search, counting every continuation
    max_steps: int = 100_000
    max_job_hours: float = 24.0
    max_model_mb: int = 2048
    max_disk_gb_per_user: float = 0.0  # 0: no quota
    # the web process stays responsive for everyone (try it, file predictions, loaded models)
    max_try_chars: int = 20_000
    max_qa_windows: int = 16
    max_predictions_per_user: int = 2
    max_batch_jobs: int = 1
    max_predict_rows: int = 100_000
    batch_timeout_seconds: int = 3600
    max_models_per_user: int = 2
    predictor_cache: int = 4

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            max_upload_mb=_env_int("FINETUNER_MAX_UPLOAD_MB", cls.max_upload_mb),
            max_rows=_env_int("FINETUNER_MAX_ROWS", cls.max_rows),
            max_length=_env_int("FINETUNER_MAX_LENGTH", cls.max_length),
            max_epochs=_env_int("FINETUNER_MAX_EPOCHS", cls.max_epochs),
            max_jobs=max(1, _env_int("FINETUNER_MAX_JOBS", cls.max_jobs)),
            max_jobs_given=bool(os.environ.get("FINETUNER_MAX_JOBS", "").strip()),
            max_queued_per_user=max(1, _env_int("FINETUNER_MAX_QUEUED_PER_USER",
                                                cls.max_queued_per_user)),
            max_groups_per_user=max(1, _env_int("FINETUNER_MAX_GROUPS_PER_USER",
                                                cls.max_groups_per_user)),
            max_trials=max(1, _env_int("FINETUNER_MAX_TRIALS", cls.max_trials)),
            max_steps=max(1, _env_int("FINETUNER_MAX_STEPS", cls.max_steps)),
            max_job_hours=_env_float("FINETUNER_MAX_JOB_HOURS", cls.max_job_hours),
            max_model_mb=max(1, _env_int("FINETUNER_MAX_MODEL_MB", cls.max_model_mb)),
            max_disk_gb_per_user=_env_float("FINETUNER_MAX_DISK_GB_PER_USER",
                                            cls.max_disk_gb_per_user),
            max_try_chars=max(1, _env_int("FINETUNER_MAX_TRY_CHARS", cls.max_try_chars)),
            max_qa_windows=max(1, _env_int("FINETUNER_MAX_QA_WINDOWS", cls.max_qa_windows)),
            max_predictions_per_user=max(1, _env_int("FINETUNER_MAX_PREDICTIONS_PER_USER",
                                                     cls.max_predictions_per_user)),
            max_batch_jobs=max(1, _env_int("FINETUNER_MAX_BATCH_JOBS", cls.max_batch_jobs)),
            max_predict_rows=max(1, _env_int("FINETUNER_MAX_PREDICT_ROWS",
                                             cls.max_predict_rows)),
            batch_timeout_seconds=max(1, _env_int("FINETUNER_BATCH_TIMEOUT_SECONDS",
                                                  cls.batch_timeout_seconds)),
            max_models_per_user=max(1, _env_int("FINETUNER_MAX_MODELS_PER_USER",
                                                cls.max_models_per_user)),
            predictor_cache=max(1, _env_int("FINETUNER_PREDICTOR_CACHE", cls.predictor_cache)),
        )

    def check_file(self, path: str | None, what: str = "The file") -> None:
        if path and os.path.getsize(path) > self.max_upload_mb * 1024 * 1024:
            size = os.path.getsize(path) / 1024 / 1024
            raise FinetunerError(
                f"{what} is {size:.0f} MB; this server accepts at most {self.max_upload_mb} MB "
                "per upload (FINETUNER_MAX_UPLOAD_MB).",
                "Upload a smaller sample, or ask the administrator to raise the cap.",
                code="too_big")

    def check_try_text(self, value: str | None, what: str = "The text") -> None:
        """A try-it box is for a passage, not a book: refused before anything tokenises it."""
        if value and len(value) > self.max_try_chars:
            raise FinetunerError(
                f"{what} has {len(value):,} characters; the try-it box reads at most "
                f"{self.max_try_chars:,} (FINETUNER_MAX_TRY_CHARS).",
                "Paste a shorter passage, predict long documents as a file, or ask the "
                "administrator to raise the cap.", code="cap_try_chars")

    def check_trials(self, total: int) -> None:
        """The trials of one search in all (a continuation adds to the count)."""
        if not 1 <= total <= self.max_trials:
            raise FinetunerError(
                f"{total:,} trials in all is outside this server's range of 1 to "
                f"{self.max_trials:,} per search (FINETUNER_MAX_TRIALS).",
                f"Ask for at most {self.max_trials:,} trials in all, counting those already "
                "run.", code="cap_trials")

    def check_config(self, config: RunConfig, rows: int | None = None) -> None:
        if config.data.max_length > self.max_length:
            raise FinetunerError(
                f"Max length {config.data.max_length} is above this server's cap of "
                f"{self.max_length} tokens (FINETUNER_MAX_LENGTH).",
                f"Use {self.max_length} or less.", code="cap_max_length")
        if config.training.epochs > self.max_epochs:
            raise FinetunerError(
                f"{config.training.epochs:g} epochs is above this server's cap of "
                f"{self.max_epochs} (FINETUNER_MAX_EPOCHS).",
                f"Use {self.max_epochs} or fewer.", code="cap_epochs")
        steps = config.training.max_steps
        if not steps and config.training.min_steps > self.max_steps:
            steps = config.training.min_steps  # the floor of steps is capped the same way
        if steps is not None and steps > self.max_steps:
            raise FinetunerError(
                f"{steps:,} steps is above this server's cap of {self.max_steps:,} "
                "(FINETUNER_MAX_STEPS).", f"Use {self.max_steps:,} or fewer, or leave max "
                "steps at 0 to train for the chosen epochs.", code="cap_steps")
        if rows is not None and rows > self.max_rows:
            raise FinetunerError(
                f"The data has {rows:,} rows; this server trains on at most {self.max_rows:,} "
                "(FINETUNER_MAX_ROWS).",
                "Upload a sample of your data, or ask the administrator to raise the cap.",
                code="cap_rows")
