"""The time estimate shown before training against the measured time.

    python bench/estimate_check.py            # the examples and a 1,200-row SST-2 subset
    python bench/estimate_check.py --no-train # estimate again for the runs already there
    python bench/estimate_check.py --model all-mpnet-base-v2   # the base-size model

For each case the CLI trains with the default model, then the estimate the page would have
shown beside Start is computed from the same numbers the page has before training (training
and validation rows, mean tokens from the data check: the run's data_report.json) with the
same functions (estimate.method_costs, estimate.planned_seconds). Measured: training plus the
head's fit on frozen features (results.json timing). The estimate plans the whole schedule;
early stopping may end a run sooner, so the ratio per planned step is given too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EX = ROOT / "examples"
SST = ROOT.parent / "shared" / "data" / "sst2" / "train.tsv"


def cases(out: Path) -> list[tuple[str, list[str]]]:
    found = [
        ("sentiment full", ["--data", str(EX / "sentiment.csv")]),
        ("sentiment lora", ["--data", str(EX / "sentiment.csv"), "--method", "lora"]),
        ("sentiment head", ["--data", str(EX / "sentiment.csv"), "--method", "head"]),
        ("clauses multi-label", ["--task", "multi-label", "--data", str(EX / "clauses.csv")]),
        ("ratings regression", ["--task", "regression", "--data", str(EX / "ratings.csv")]),
    ]
    if SST.exists():
        lines = SST.read_text(encoding="utf-8").splitlines()[1:1201]
        data = out / "sst2-1200.tsv"
        data.write_text("sentence\tlabel\n" + "\n".join(lines) + "\n", encoding="utf-8")
        found.append(("SST-2 1,200 rows full", ["--data", str(data)]))
    return found


def estimate(run: Path) -> dict:
    from finetuner.config import RunConfig
    from finetuner.models.estimate import method_costs, planned_seconds
    from finetuner.models.modeling import resolve_model
    from finetuner.tasks import get_task

    config = RunConfig.load(run / "config.json")
    report = json.loads((run / "data_report.json").read_text())
    results = json.loads((run / "results.json").read_text())
    spec = get_task(config.task)
    rows = report["rows"]
    labels = len(results.get("labels") or []) or 2
    path = resolve_model(config.model.name_or_path).path
    cost = next(c for c in method_costs(path, spec, labels, rows["train"],
                                        report["token_lengths"]["mean"], rows["validation"])
                if c.method == config.method.method)
    t = config.training
    seconds = planned_seconds(cost, rows["train"], t.epochs, t.batch_size or 32, t.max_steps,
                              t.min_steps, t.evals_per_epoch)
    timing = results["timing"]
    measured = timing["train_seconds"] + (timing.get("probe_seconds") or 0)
    planned, steps = timing.get("total_steps") or 0, timing.get("steps") or 0
    per_step = (measured / (seconds * steps / planned)) if planned and steps else None
    return {"estimate_s": round(seconds, 1), "measured_s": round(measured, 1),
            "ratio": round(measured / seconds, 2), "steps": steps, "planned_steps": planned,
            "ratio_per_planned_step": round(per_step, 2) if per_step else None}


def main() -> None:
    model = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else None
    tag = f"-{model}" if model else ""
    out = ROOT / "bench" / "out" / f"estimate{tag}"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    from finetuner.models.estimate import settle_probe

    settle_probe(waits=(0.5, 0.5, 0.5))  # the fastest of a few probes, as a server keeps
    again = "--no-train" in sys.argv  # estimate again from the runs already there
    for name, args in cases(out):
        if model and "full" not in name:
            continue  # the default method's cases only: a base-size model trains for minutes
        run = out / name.replace(" ", "-").replace(",", "")
        if model:
            args = [*args, "--model", model]
        if not again:
            subprocess.run([sys.executable, "-m", "finetuner", "train", *args, "--output",
                            str(run), "--overwrite", "--quiet"], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
        row = {"case": name, **estimate(run)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("\n| case | estimate | measured | measured / estimate | steps run / planned | "
          "per planned step |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['estimate_s']} s | {r['measured_s']} s | {r['ratio']} | "
              f"{r['steps']} / {r['planned_steps']} | {r['ratio_per_planned_step']} |")
    dest = ROOT / "bench" / "results" / f"estimate{tag}-cpu-{time.strftime('%Y%m%d')}.json"
    dest.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
