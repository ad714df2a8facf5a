"""Checks that run before a worker starts: the model can be found, the data can be used.

Used by the CLI and the web app so that a bad file or a wrong model path is explained at once,
not after a worker has started. Loads only a tokenizer (to count tokens), never a model.
"""

from __future__ import annotations

from pathlib import Path

from finetuner.config import RunConfig
from finetuner.models.modeling import ModelSource, resolve_model, token_counter
from finetuner.tasks import PreparedData, get_task


def check_model(config: RunConfig, unpack_dir: str | Path | None = None) -> ModelSource:
    return resolve_model(config.model.name_or_path, unpack_dir=unpack_dir)


def prepare_data(config: RunConfig, source: ModelSource | None = None,
                 count_tokens: bool = True, check_rows=None) -> PreparedData:
    """Read, detect, validate and split the data; token statistics use the model's tokenizer
    (on a sample of at most finetuner.data.splits.TOKEN_SAMPLE_ROWS examples). `check_rows(n)`
    may refuse the data by its number of examples, before anything is tokenised."""
    impl = get_task(config.task).impl()
    counter = None
    if count_tokens:
        counter = token_counter(source or check_model(config))
    if check_rows is None:
        return impl.prepare(config, count_tokens=counter)
    return impl.prepare(config, count_tokens=counter, check_rows=check_rows)
