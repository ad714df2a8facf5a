"""One training run, in its own process: the data check it begins with (`checks`), the loop
(`loop`), its callbacks (evaluation, early stopping, checkpoints, progress events), the state a
resume reads (`runstate`), finishing (score the test split once, judge, save, export:
`finishing`), experiment trackers (`trackers`), several processes (`distributed`) and the
process's entry point (`worker`: `python -m finetuner.training.worker RUN_DIR`).

May import: everything below it (root modules, data, tasks, metrics, models, evaluation,
serving). Never the server, the command line or the page.
"""
