"""Using a finished model: the exported folder and its card (`export`), predictions in PyTorch or
ONNX Runtime (`inference`, `runtimes`), the ONNX export and its agreement check (`onnxexport`)
and the try-it box's words (`tryit`).

May import: everything below it (root modules, data, tasks, metrics, models, evaluation).
Never the training run, the server or the page.
"""
