"""CoNLL-2003 benchmark: the studio's NER engine (full, LoRA) against a plain Trainer script.

    python bench/ner.py                                  # full + LoRA and plain, 1 and 3 epochs
    python bench/ner.py --epochs 1 --plain-epochs 1      # one epoch each
    python bench/ner.py --plain-steps 150                # plain script capped at 150 steps
    python bench/ner.py --subset 300 --max-steps 10 --plain-steps 10   # smoke test (minutes)

Both sides run one after the other on the same machine and data (../shared/data/conll2003):
train.txt to train, valid.txt for validation (the studio picks its best checkpoint on it; the
plain script ignores it), test.txt scored once at the end. The studio trains through its real
CLI and worker process with its defaults (dynamic padding, length-grouped batches, learning
rate per method, early stopping); the plain script (run_ner.py style: dynamic padding, fp32)
uses batch 32 and lr 5e-5
(bench/plain_ner.py). With --subset the first N training sentences (and N/3 of validation and
test) are copied to a temporary folder outside the repository. Prints a Markdown table and
writes bench/out/ner.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import run_script, run_studio  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "conll2003"


def subset_files(data: Path, n: int, folder: Path) -> dict[str, Path]:
    """The first n training sentences and n/3 validation and test sentences, as CoNLL files."""
    out = {}
    for name, size in (("train", n), ("valid", max(30, n // 3)), ("test", max(30, n // 3))):
        blocks = open(data / f"{name}.txt", encoding="utf-8").read().split("\n\n")
        blocks = [b for b in blocks if b.strip() and not b.startswith("-DOCSTART-")][:size]
        out[name] = folder / f"{name}.txt"
        out[name].write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return out


def run_engine(method: str, epochs: float, files: dict, out: Path, max_steps: int,
               model: str = "default") -> dict:
    tag = "" if model == "default" else f"-{model}"
    run_dir = out / f"ner-{method}-{epochs:g}ep{tag}"
    cmd = [sys.executable, "-m", "finetuner", "train", "--task", "ner", "--model", model,
           "--data", str(files["train"]), "--validation", str(files["valid"]),
           "--test", str(files["test"]), "--method", method, "--epochs", str(epochs),
           "--output", str(run_dir), "--overwrite", "--quiet"]
    if max_steps:
        cmd += ["--max-steps", str(max_steps)]
    results, wall = run_studio(cmd, run_dir, f"studio {method}{tag}")
    timing = results["timing"]
    return {"name": f"studio {method}{tag}", "epochs": epochs, "test_f1": results["test"]["f1"],
            "train_samples_per_second": timing["train_samples_per_second"],
            "train_seconds": timing["train_seconds"], "eval_seconds": timing["eval_seconds"],
            "wall_seconds": round(wall, 1), "steps": timing["steps"],
            "early_stopped": results.get("early_stopped"), "precision": results["precision"],
            "trainable": results["params"]["trainable"]}


def run_plain(files: dict, epochs: float, steps: int) -> dict:
    cmd = [sys.executable, str(ROOT / "bench" / "plain_ner.py"), "--train", str(files["train"]),
           "--test", str(files["test"]), "--epochs", str(epochs),
           "--max-steps", str(steps if steps > 0 else -1)]
    return run_script(cmd)


def table(rows: list[dict]) -> list[str]:
    plain = {r["epochs"]: r for r in rows if r["name"].startswith("plain")}
    first = next(iter(plain.values()), None)
    lines = ["| run | epochs | steps | test entity F1 | F1 vs plain | train samples/s | "
             "x plain | train s | eval s | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = plain.get(r["epochs"], first)
        speed = f"{r['train_samples_per_second'] / base['train_samples_per_second']:.2f}x" \
            if base else "n/a"
        delta = f"{r['test_f1'] - base['test_f1']:+.4f}" if base else "n/a"
        lines.append(f"| {r['name']} | {r['epochs']:g} | {r['steps']} | {r['test_f1']:.4f} | "
                     f"{delta} | {r['train_samples_per_second']} | {speed} | "
                     f"{r['train_seconds']} | {r['eval_seconds']} | {r['wall_seconds']} |")
    return lines


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default="full,lora")
    ap.add_argument("--epochs", default="1,3", help="studio epochs, comma-separated")
    ap.add_argument("--plain-epochs", default="1,3", help="plain script epochs ('' = none)")
    ap.add_argument("--plain-steps", type=int, default=0, help="cap on plain steps (0 = none)")
    ap.add_argument("--max-steps", type=int, default=0, help="cap on studio steps (0 = none)")
    ap.add_argument("--subset", type=int, default=0, help="first N training sentences only")
    ap.add_argument("--model", default="default",
                    help="the studio's model (e.g. all-mpnet-base-v2; default the embedded one)")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(ROOT / "bench" / "out"))
    args = ap.parse_args()
    data = Path(args.data)
    if not (data / "train.txt").exists():
        raise SystemExit(f"CoNLL-2003 not found in {data} (needs train/valid/test.txt).")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {name: data / f"{name}.txt" for name in ("train", "valid", "test")}
    scratch = tempfile.TemporaryDirectory(prefix="ner-bench-")  # subsets stay outside the repo
    if args.subset:
        files = subset_files(data, args.subset, Path(scratch.name))
    rows = []
    for epochs in floats(args.epochs):
        for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
            rows.append(run_engine(method, epochs, files, out, args.max_steps, args.model))
            print(json.dumps(rows[-1]), flush=True)
    for epochs in floats(args.plain_epochs):
        rows.append(run_plain(files, epochs, args.plain_steps))
        print(json.dumps(rows[-1]), flush=True)
    scratch.cleanup()
    print(f"\nCoNLL-2003{f' (first {args.subset} sentences)' if args.subset else ''}, "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}\n")
    print("\n".join(table(rows)))
    (out / "ner.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
