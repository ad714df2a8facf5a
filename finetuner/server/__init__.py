"""The shared server: per-user workspaces (`studio`), the job queue and its worker processes
(`jobs`, `jobstore`, `warmstart`, `raybackend`), comparisons, searches and learning curves
(`groups`, `compare`, `search`, `learning_curve`, `follow`), file predictions and later ONNX
exports as jobs (`batch`, `export_job`), caps (`limits`), uploads and shared files (`files`,
`sharing`).

May import: everything below it (root modules, data, tasks, metrics, models, evaluation,
serving, training). Never the command line or the page.
"""
