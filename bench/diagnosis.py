"""Real runs with a known truth, and the verdict the studio gives each (issue 10).

    python bench/diagnosis.py                   # every scenario (about 15 min on 2 CPU cores)
    python bench/diagnosis.py --only shuffled,tiny
    python bench/diagnosis.py --record          # also write tests/fixtures/diagnosis/*.json

Each scenario trains the embedded default model through the real CLI and worker on data cut
from ../shared/data (SST-2, CoNLL-2003, SQuAD dev split by article), then prints the verdict
beside the truth the scenario was built to have and the simple baselines. With --record the
run's diagnosis_input.json (its evaluation events, the kept checkpoint's validation detail and
the data facts: numbers and label names, no rows of the data) becomes a fixture that
tests/test_diagnosis_fixtures.py replays, so a change to a rule that breaks a real verdict
fails a test.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))
from common import run_studio  # noqa: E402

from finetuner.evaluation import diagnostics  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out" / "diagnosis"
FIXTURES = ROOT / "tests" / "fixtures" / "diagnosis"


def sst2_rows(n: int, seed: int, skip: int = 0) -> list[tuple[str, str]]:
    lines = (SHARED / "sst2" / "train.tsv").read_text(encoding="utf-8").splitlines()[1:]
    rows = [tuple(line.rsplit("\t", 1)) for line in lines]
    random.Random(seed).shuffle(rows)
    return rows[skip:skip + n]


def write_tsv(path: Path, rows) -> Path:
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows),
                    encoding="utf-8")
    return path


def sst2_dev() -> Path:
    return SHARED / "sst2" / "dev.tsv"


def conll_subset(n: int, folder: Path) -> list[str]:
    args = []
    for name, size, flag in (("train", n, "--data"), ("valid", n // 3, "--validation"),
                             ("test", n // 3, "--test")):
        blocks = (SHARED / "conll2003" / f"{name}.txt").read_text(encoding="utf-8").split("\n\n")
        blocks = [b for b in blocks if b.strip() and not b.startswith("-DOCSTART-")][:size]
        path = folder / f"conll-{name}.txt"
        path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
        args += [flag, str(path)]
    return args


def squad_subset(n_train: int, n_eval: int, folder: Path) -> list[str]:
    raw = json.loads((SHARED / "squad_v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))
    parts = raw["data"][:n_train], raw["data"][-n_eval:]
    paths = folder / "squad-train.json", folder / "squad-eval.json"
    for path, part in zip(paths, parts):
        path.write_text(json.dumps({"version": raw.get("version"), "data": part}))
    return ["--task", "qa", "--data", str(paths[0]), "--test", str(paths[1]),
            "--validation-split", "0.1", "--test-split", "0"]


def scenarios(folder: Path) -> dict:
    """name -> (truth, why, CLI arguments after `train`)."""
    def sst2(name, rows, *extra):
        return ["--data", str(write_tsv(folder / f"{name}.tsv", rows)), "--test",
                str(sst2_dev()), "--test-split", "0", *extra]

    shuffled = sst2_rows(1500, 1)
    labels = [y for _, y in shuffled]
    random.Random(2).shuffle(labels)
    return {
        "healthy": ("healthy", "3,000 SST-2 sentences, 3 epochs, early stopping on",
                    lambda: sst2("healthy", sst2_rows(3000, 0), "--epochs", "3")),
        "tiny": ("too_little_data", "60 SST-2 sentences",
                 lambda: sst2("tiny", sst2_rows(60, 3), "--epochs", "5")),
        "shuffled": ("no_signal", "1,500 SST-2 sentences with their labels shuffled",
                     lambda: sst2("shuffled", [(t, y) for (t, _), y in zip(shuffled, labels)],
                                  "--epochs", "3")),
        "overfit": ("overfitting", "300 SST-2 sentences, 40 epochs, early stopping off "
                    "(the issue's memorising run)",
                    lambda: sst2("overfit", sst2_rows(300, 4), "--epochs", "40",
                                 "--patience", "0", "--evals-per-epoch", "1")),
        "plateau": ("healthy", "2,000 SST-2 sentences, one epoch at the default rate, 6 "
                    "evaluations: the score levels off mid-epoch",
                    lambda: sst2("plateau", sst2_rows(2000, 5), "--epochs", "1",
                                 "--evals-per-epoch", "6")),
        "slowlr": ("no_signal", "2,000 SST-2 sentences, one epoch at 3e-5 (a third of the "
                   "default): still answering the majority label when the epoch ends",
                   lambda: sst2("slowlr", sst2_rows(2000, 5), "--epochs", "1",
                                "--lr", "3e-5", "--evals-per-epoch", "6")),
        "improving": ("still_improving", "2,000 SST-2 sentences, head-only training (frozen "
                      "encoder), 2 epochs, 4 evaluations each",
                      lambda: sst2("improving", sst2_rows(2000, 5), "--method", "head",
                                   "--epochs", "2")),
        "lowlr": ("no_signal", "2,000 SST-2 sentences, one epoch at a learning rate ten times "
                  "too low (1e-5): the loss barely moves",
                  lambda: sst2("lowlr", sst2_rows(2000, 5), "--epochs", "1",
                               "--lr", "1e-5", "--evals-per-epoch", "6")),
        "ner": ("still_improving", "1,500 CoNLL-2003 sentences, one epoch: entity F1 still "
                "climbing",
                lambda: ["--task", "ner", *conll_subset(1500, folder), "--epochs", "1",
                         "--evals-per-epoch", "4"]),
        "qa": ("still_improving", "SQuAD dev, first 5 articles to train, last 2 to test, one "
               "epoch: far from converged",
               lambda: [*squad_subset(5, 2, folder), "--epochs", "1", "--evals-per-epoch",
                        "4"]),
    }


def run(name: str, args: list[str]) -> tuple[dict, dict, float]:
    run_dir = OUT / f"run-{name}"
    cmd = [sys.executable, "-m", "finetuner", "train", *args, "--output", str(run_dir),
           "--overwrite", "--quiet"]
    results, wall = run_studio(cmd, run_dir, name)
    inputs = json.loads((run_dir / "diagnosis_input.json").read_text())
    return results, inputs, wall


def baseline_text(results: dict) -> str:
    metric = results["metric"]
    parts = []
    for b in (results.get("baselines") or {}).values():
        v = (b.get("validation") or {}).get(metric)
        if v is not None:
            parts.append(f"{b['title']}: {v:.3f}")
    return "; ".join(parts) or "n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--record", action="store_true", help="write the test fixtures")
    ap.add_argument("--table", action="store_true",
                    help="print the table of the recorded fixtures (their verdict replayed "
                         "with today's rules) and run nothing")
    args = ap.parse_args()
    if args.table:
        rows = []
        for path in sorted(FIXTURES.glob("*.json")):
            fixture = json.loads(path.read_text())
            row = dict(fixture["row"])
            d = diagnostics.from_inputs(fixture["inputs"])
            # a run a simple baseline beat leads with that; its truth is the second finding
            row["verdict"] = d.verdict + (f" (then {d.finding})" if d.finding else "")
            row["ok"] = fixture["truth"] in (d.verdict, d.finding)
            rows.append(row)
        print_table(rows)
        return
    if not SHARED.exists():
        raise SystemExit(f"{SHARED} is missing: the scenarios cut real data from it.")
    OUT.mkdir(parents=True, exist_ok=True)
    table = scenarios(OUT)
    names = [n for n in args.only.split(",") if n] or list(table)
    rows = []
    for name in names:
        truth, why, build = table[name]
        t0 = time.perf_counter()
        results, inputs, wall = run(name, build())
        verdict = results["diagnosis"]["verdict"]
        replay = diagnostics.from_inputs(inputs).verdict
        assert replay == verdict, (name, replay, verdict)
        metric = results["metric"]
        events = inputs["events"]
        best = next((e for e in events if e["step"] == inputs["best_step"]), events[-1])
        row = {"scenario": name, "truth": truth, "verdict": verdict, "ok": verdict == truth,
               "why": why, "best_step": inputs["best_step"], "evaluations": len(events),
               "val": (best.get("validation") or {}).get(metric),
               "train": (best.get("train") or {}).get(metric),
               "test": (results.get("test") or {}).get(metric), "metric": metric,
               "baselines": baseline_text(results), "wall_seconds": round(wall, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.record:
            FIXTURES.mkdir(parents=True, exist_ok=True)
            fixture = {"scenario": name, "truth": truth, "why": why,
                       "command": "python bench/diagnosis.py --record --only " + name,
                       "recorded": time.strftime("%Y-%m-%d"), "verdict": verdict,
                       "title": results["diagnosis"]["title"], "row": row, "inputs": inputs}
            (FIXTURES / f"{name}.json").write_text(json.dumps(fixture, indent=1) + "\n")
        print(f"  {name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    print_table(rows)
    (OUT / "diagnosis.json").write_text(json.dumps(rows, indent=1))


def print_table(rows: list[dict]) -> None:
    print("\n| scenario | built as | truth | verdict | right? | best val | train at best "
          "| test | baselines (validation) | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        def f(x):
            return "n/a" if x is None else f"{x:.3f}"
        print(f"| {r['scenario']} | {r['why']} | {r['truth']} | {r['verdict']} | "
              f"{'yes' if r['ok'] else 'NO'} | {f(r['val'])} | {f(r['train'])} | "
              f"{f(r['test'])} | {r['baselines']} | {r['wall_seconds']} |")


if __name__ == "__main__":
    main()
