"""Warm against cold worker starts on a server (finetuner.server.warmstart): the same trainings in a
Studio with warm starts on and off, wall time from submission to results, and the losses of
both (they must be equal).

    python bench/warmstart.py            # 4 tiny-model runs and 2 default-model runs each way

A tiny random BERT (2 layers, 1M parameters) shows the start-up cost alone; the default model
(all-MiniLM-L6-v2, 20 steps of 300 rows) a short real training.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def tiny_model(folder: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from finetuner.models.modeling import embedded_model_path

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=64,
                         max_position_embeddings=512)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(embedded_model_path()).save_pretrained(folder)
    return folder


def runs(warm: bool, model: str, data: Path, n: int, steps: int) -> list[dict]:
    from finetuner.config import RunConfig
    from finetuner.server.studio import Studio

    studio = Studio(Path(tempfile.mkdtemp()), warm=warm)
    out = []
    try:
        user = studio.workspace("bench")
        for _ in range(n):
            config = RunConfig.from_dict({
                "task": "classification",
                "data": {"train_file": str(data), "max_length": 64},
                "model": {"name_or_path": model},
                "training": {"epochs": 1, "max_steps": steps, "checkpoints": False}})
            start = time.time()
            run, _ = user.submit(config)
            results = studio.jobs.wait(run, 600)
            events = [json.loads(x) for x in run.events.read_text().splitlines()]
            out.append({"seconds": round(time.time() - start, 2), "status": results["status"],
                        "losses": [round(e["loss"], 6) for e in events
                                   if e.get("type") == "progress"]})
    finally:
        studio.shutdown()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny-runs", type=int, default=4)
    ap.add_argument("--default-runs", type=int, default=2)
    args = ap.parse_args()
    from conftest import sentiment_rows, write_csv

    tmp = Path(tempfile.mkdtemp())
    data = write_csv(tmp / "s.csv", sentiment_rows(300))
    tiny = str(tiny_model(tmp / "tiny"))
    report = {}
    for name, model, n, steps in (("tiny", tiny, args.tiny_runs, 4),
                                  ("default", "default", args.default_runs, 20)):
        for warm in (False, True):
            report[f"{name}-{'warm' if warm else 'cold'}"] = runs(warm, model, data, n, steps)
    for key, rows in report.items():
        print(f"{key}: seconds {[r['seconds'] for r in rows]} "
              f"status {sorted({r['status'] for r in rows})}")
    for name in ("tiny", "default"):
        same = report[f"{name}-cold"][0]["losses"] == report[f"{name}-warm"][-1]["losses"]
        print(f"{name}: warm losses equal cold losses: {same}")
    dest = ROOT / "bench" / "results" / f"warmstart-cpu-{time.strftime('%Y%m%d')}.json"
    dest.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written {dest}")


if __name__ == "__main__":
    main()
