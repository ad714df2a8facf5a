"""A stand-in worker for the GPU-slot tests: records the devices it was given, then waits for
its run's GO file (so a test decides when each job ends) and writes results.json."""

import json
import os
import sys
import time
from pathlib import Path

run = Path(sys.argv[1])
(run / "seen_gpus.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"))
deadline = time.time() + 60
while not (run / "GO").exists() and time.time() < deadline:
    time.sleep(0.05)
(run / "results.json").write_text(json.dumps({"status": "completed"}))
