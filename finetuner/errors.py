"""User-facing errors.

Every problem a user can fix is raised as `FinetunerError`: a sentence that says what was
found and where, plus a remedy that says what to change. The CLI, the worker and the web app
show `str(error)` and never a traceback.
"""

from __future__ import annotations


class FinetunerError(Exception):
    """A problem with the user's input or environment, explained in plain words."""

    def __init__(self, message: str, remedy: str = "", code: str = "error") -> None:
        self.message = message.strip()
        self.remedy = remedy.strip()
        self.code = code
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return f"{self.message} {self.remedy}".strip()

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "remedy": self.remedy}


class DataError(FinetunerError):
    """The uploaded data cannot be used as it is."""


class ModelError(FinetunerError):
    """The chosen model cannot be found or loaded."""


class ConfigError(FinetunerError):
    """A setting is out of range or inconsistent."""
