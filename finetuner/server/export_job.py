"""Export a finished run to ONNX later, from the page:
`python -m finetuner.server.export_job RUN_DIR`.

The Results tab's *Export to ONNX* button starts this in its own process (the web process
never imports torch for it): results.json says the export is pending, the process exports
and checks the model against PyTorch on the run's own splits (finetuner.serving.onnxexport), and
results.json then carries the check, or the reason it failed. One export per run at a time
(RUN_DIR/export.pid); a server restart mid-export leaves a pending mark with no process, which
`state` reads as "can be started again".
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from finetuner.errors import FinetunerError
from finetuner.procs import alive as _alive
from finetuner.results import read_results, write_results
from finetuner.runs import RunPaths
from finetuner.server.environment import worker_env

PID = "export.pid"
LOG = "export.log"


def state(run: RunPaths) -> str:
    """'none' (no export yet, or a failed or cut-short one), 'running' or 'done'."""
    info = (read_results(run.results) or {}).get("onnx") or {}
    if info.get("pending"):
        return "running" if _running(run) else "none"
    return "done" if info.get("files") or info.get("splits") else "none"


def _running(run: RunPaths) -> bool:
    try:
        pid = int((run.root / PID).read_text().strip())
    except (OSError, ValueError):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False  # gone, or a pid this machine reused for something else
    return _alive(pid) and str(run.root.resolve()).encode() in cmdline


def start(run: RunPaths, python: str = sys.executable) -> None:
    """Start the export of a finished run's saved model; a FinetunerError says why not."""
    results = read_results(run.results) or {}
    if not (run.model / "finetuner.json").exists():
        raise FinetunerError("This run has no saved model to export.",
                             "Pick a run that finished with a model.", code="no_model")
    now = state(run)
    if now == "running":
        raise FinetunerError("The ONNX export of this run is already running.",
                             "Its check appears here when it is done.", code="busy")
    if now == "done":
        raise FinetunerError("This run is exported to ONNX already.",
                             "Its check is in the results below.", code="done")
    results["onnx"] = {"pending": True}
    write_results(run.results, results)
    with open(run.root / LOG, "ab") as log:
        proc = subprocess.Popen(
            [python, "-m", "finetuner.server.export_job", str(run.root.resolve())],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=worker_env(), cwd=str(run.root.resolve()))
    (run.root / PID).write_text(str(proc.pid))
    threading.Thread(target=proc.wait, daemon=True, name=f"export-{run.id}").start()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m finetuner.server.export_job RUN_DIR", file=sys.stderr)
        return 2
    run = RunPaths(Path(argv[0]))
    try:
        from finetuner.serving.onnxexport import export_run

        export_run(run.root)  # writes the check into results.json when it is done
        return 0
    except Exception as exc:  # noqa: BLE001 - the page shows the reason, the model stays
        text = exc.text if isinstance(exc, FinetunerError) else f"{type(exc).__name__}: {exc}"
        results = read_results(run.results) or {}
        results["onnx"] = {"error": f"ONNX export failed ({text[:300]}); the PyTorch model is "
                                    "saved and works as usual."}
        write_results(run.results, results)
        print(json.dumps(results["onnx"]), file=sys.stderr)
        return 1
    finally:
        (run.root / PID).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
