"""finetuner: fine-tune BERT-like encoders for classification, headless or in the browser.

Public API (heavy modules load on first use):

    from finetuner import RunConfig, JobManager, Predictor, prepare_data, diagnose
"""

from __future__ import annotations

from finetuner.config import DataConfig, MethodConfig, ModelConfig, RunConfig, TrainingConfig
from finetuner.errors import DataError, FinetunerError, ModelError

__version__ = "0.1.0"
__all__ = ["DataConfig", "DataError", "FinetunerError", "JobManager", "MethodConfig",
           "ModelConfig", "ModelError", "Predictor", "RunConfig", "TrainingConfig", "diagnose",
           "prepare_data"]


def __getattr__(name: str):
    if name == "Predictor":
        from finetuner.serving.inference import Predictor

        return Predictor
    if name == "JobManager":
        from finetuner.server.jobs import JobManager

        return JobManager
    if name == "diagnose":
        from finetuner.evaluation.diagnostics import diagnose

        return diagnose
    if name == "prepare_data":
        from finetuner.training.checks import prepare_data

        return prepare_data
    raise AttributeError(name)
