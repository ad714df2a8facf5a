"""Judging a run: the verdict and its evidence (`diagnostics`), the curves it reads (`curves`),
the paired test between two records (`paired`), calibration (`calibration`), the bag-of-words
and probe baselines (`baselines`) and the label-error check (`labelnoise`).

May import: the root modules, `finetuner.data`, `finetuner.tasks`, `finetuner.metrics`,
`finetuner.models`.
"""
