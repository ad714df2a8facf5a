"""A worker that takes longer than the stop's grace period to save what it kept (a busy
machine writing its model): it says so in its events, and must not be killed for it."""

import json
import signal
import sys
import time
from pathlib import Path

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the STOP file is what it reads
run = Path(sys.argv[1])
with open(run / "events.jsonl", "a") as fh:
    fh.write(json.dumps({"type": "status", "state": "training", "message": "Training"}) + "\n")
while not (run / "STOP").exists():
    time.sleep(0.1)
with open(run / "events.jsonl", "a") as fh:
    for state in ("stopping", "saving"):
        fh.write(json.dumps({"type": "status", "state": state, "message": state}) + "\n")
time.sleep(5.5)  # past the 3.5 s grace period
(run / "results.json").write_text(json.dumps({"status": "stopped", "model_dir": "model"}))
