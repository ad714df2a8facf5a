"""Command line: train, predict, export, check, compare, search, learning-curve.

    python -m finetuner train --data examples/sentiment.csv --method lora --epochs 3 --output runs/s
    python -m finetuner predict --run runs/s --text "What a film!"
    python -m finetuner train --task qa --data examples/qa.jsonl --max-length 384 --output runs/qa
    python -m finetuner predict --run runs/qa --question "Who?" --context "..."
    python -m finetuner export --run runs/s --zip sentiment-model.zip
    python -m finetuner check --data examples/sentiment.csv
    python -m finetuner compare --data examples/sentiment.csv --output runs/cmp
    python -m finetuner search --data examples/sentiment.csv --trials 10 --output runs/search
    python -m finetuner learning-curve --data examples/sentiment.csv --output runs/curve

Every setting of the config has a flag; `--config FILE.yaml` loads a whole config (flags given
on the command line override it). Errors print one sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from finetuner.cli.doctor import cmd_doctor
from finetuner.cli.groups import add_group_args, cmd_compare, cmd_learning_curve, cmd_search

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from finetuner.cli.flags import FLAGS, config_from_args  # noqa: E402, F401 - the flags, in one place
from finetuner.english import plural  # noqa: E402
from finetuner.errors import FinetunerError  # noqa: E402
from finetuner.methods import METHOD_NAMES  # noqa: E402
from finetuner.runs import format_event  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m finetuner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    helps = {"train": "train a model", "check": "check data only",
             "compare": "train head-only, LoRA and full (or one setting's values) side by side",
             "search": "search hyperparameters on the validation split (Optuna)",
             "learning-curve": "train on 25/50/100%% of the data: what would more data buy?"}
    for name in ("train", "check", "compare", "search", "learning-curve"):
        p = sub.add_parser(name, help=helps[name])
        p.add_argument("--config", help="YAML or JSON config file")
        for flag, (_, _, typ, text) in FLAGS.items():
            p.add_argument(flag, type=typ, help=text, default=None)
        if name in ("compare", "search", "learning-curve"):
            add_group_args(p, name)
        if name == "train":
            p.add_argument("--output", required=True, help="run directory to create")
            p.add_argument("--overwrite", action="store_true", help="reuse an existing run dir")
            p.add_argument("--adapter-only", action="store_true",
                           help="LoRA: export the adapter instead of a merged model")
            p.add_argument("--quiet", action="store_true", help="print only the final result")
            p.add_argument("--onnx", action="store_true",
                           help="also export ONNX (fp32 and int8), checked against PyTorch")
            p.add_argument("--no-pair-loss", action="store_true",
                           help="small-data classification: cross-entropy alone, without "
                                "SetFit's pair objective")
    p = sub.add_parser("predict", help="predict with a finished run")
    p.add_argument("--run", required=True, help="run directory (or model folder)")
    p.add_argument("--text", action="append", help="text to classify (repeatable)")
    p.add_argument("--pair", action="append", help="second text, for pair tasks")
    p.add_argument("--question", action="append", help="QA: question to answer (repeatable)")
    p.add_argument("--context", action="append",
                   help="QA: passage that holds the answer (one for all, or one per question)")
    p.add_argument("--file", help="data file to predict row by row")
    p.add_argument("--out", help="CSV to write file predictions to")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--runtime", choices=("auto", "torch", "onnx", "onnx-int8"),
                   help="who computes: auto (default; $FINETUNER_RUNTIME) takes the ONNX "
                        "export where it is faster on this CPU")
    p = sub.add_parser("push", help="publish the model of a finished run to the hub")
    p.add_argument("--run", required=True)
    p.add_argument("--repo", required=True, help="your-name/model-name")
    p.add_argument("--token", help="hub write token (default: $HF_TOKEN); never stored")
    p.add_argument("--public", action="store_true", help="create a public repository")
    p = sub.add_parser("export", help="zip the model of a finished run, or export it to ONNX")
    p.add_argument("--run", required=True)
    p.add_argument("--zip", help="zip file to write (it carries the ONNX files, if any)")
    p.add_argument("--onnx", action="store_true",
                   help="export ONNX fp32 and int8 into RUN_DIR/model/onnx, checked against "
                        "PyTorch on the run's validation and test splits")
    p = sub.add_parser("doctor", help="print what the studio sees: devices, GPU slots, "
                                      "backend, storage, versions")
    p.add_argument("--home", help="the studio's home (default: $FINETUNER_HOME)")
    return parser


def cmd_check(args) -> int:
    from finetuner.training.checks import prepare_data

    config = config_from_args(args)
    prepared = prepare_data(config)
    print("\n".join(prepared.report.summary_lines()))
    return 0


def cmd_train(args) -> int:
    from finetuner.runs import RunPaths, create_run
    from finetuner.server.jobs import JobManager
    from finetuner.training.checks import check_model, prepare_data
    from finetuner.training.tracking import check as check_trackers

    config = config_from_args(args)
    check_trackers(config.training.report_to)  # a missing library: one sentence, no worker
    out = Path(args.output)
    if (out / "config.json").exists() and not args.overwrite:
        raise FinetunerError(f"'{out}' already holds a run.",
                             "Choose another --output or add --overwrite.", code="run_exists")
    source = check_model(config)
    prepared = prepare_data(config, source)
    if not args.quiet:
        print("\n".join(prepared.report.summary_lines()), flush=True)
        plan = plan_text(config, source, prepared)
        if plan:
            print(plan, flush=True)
    run = create_run(out, config, run_id="")
    manager = JobManager(stop_with_me=True)
    manager.start(run)
    try:
        follow(run, manager, quiet=args.quiet)
    except KeyboardInterrupt:
        print("\n" + manager.stop(run), flush=True)
    results = manager.wait(run) or {}
    print_results(RunPaths(run.root), results)
    return {"completed": 0, "stopped": 130}.get(results.get("status"), 1)


def plan_text(config, source, prepared) -> str | None:
    """What the run will train and about how long it takes on this CPU (the Train tab's
    estimate); None on a GPU, which the estimate does not model."""
    import torch

    from finetuner.models.estimate import human_seconds, run_plan
    from finetuner.tasks import get_task

    if torch.cuda.is_available():
        return None
    tokens = prepared.report.token_lengths or {}
    plan = run_plan(config, get_task(config.task), source.path,
                    round(len(prepared.train) * tokens.get("windows_mean", 1.0)),
                    len(prepared.validation), tokens.get("mean", 32.0),
                    len(prepared.labels or []) or 2)
    if plan is None:
        return None
    steps, seconds, floored = plan
    t = config.training
    what = (f"{METHOD_NAMES[config.method.method]}, "
            + ("one pass to fit the head" if steps is None else
               f"{t.max_steps} steps" if t.max_steps else f"{plural(t.epochs, 'epoch')}, {steps:,} "
               "steps" + (f" (at least {t.min_steps} on small data)" if floored else "")))
    return (f"Plan: {what}; about {human_seconds(seconds)} on this machine's CPU"
            + ("" if steps is None else ", less if early stopping ends it sooner") + ".")


def follow(run, manager, quiet: bool = False) -> None:
    from finetuner.runs import read_events

    offset = 0
    while True:
        events, offset = read_events(run.events, offset)
        for event in events:
            if not quiet:
                line = format_event(event)
                if line:
                    print(line, flush=True)
        if not manager.is_running(run):
            events, offset = read_events(run.events, offset)
            for event in events:
                line = format_event(event)
                if line and not quiet:
                    print(line, flush=True)
            return
        time.sleep(0.5)


def print_results(run, results: dict) -> None:
    status = results.get("status", "unknown")
    print(f"\nRun {status}: {run.root}")
    if results.get("error"):
        err = results["error"]
        print(f"Error: {err['message']} {err.get('remedy', '')}".strip())
        return
    test = results.get("test") or {}
    if test:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in test.items()
                          if isinstance(v, float) and k != "loss")
        print(f"Test: {shown}")
    if results.get("note"):
        print(results["note"])
    diag = results.get("diagnosis") or {}
    if diag:
        print(f"Verdict: {diag['title']}")
        for line in diag.get("evidence", []):
            print(f"  - {line}")
        for line in diag.get("remedies", []):
            print(f"  > {line}")
    timing = results.get("timing") or {}
    if timing:
        print(f"Time: {timing['train_seconds']} s training, "
              f"{timing['train_samples_per_second']} samples/s on {timing.get('device', '?')} "
              f"(batch {timing.get('batch_size')}, lr {timing.get('learning_rate', 0):g})")
    if results.get("model_dir"):
        print(f"Model: {results['model_dir']}")
    if results.get("onnx"):
        from finetuner.serving.onnxreport import summary_lines

        print("ONNX:")
        for line in summary_lines(results["onnx"]):
            print(f"  {line}")
        if results["onnx"].get("error") and results.get("model_dir"):
            run_dir = Path(results["model_dir"]).parent
            print(f"  From the command line: python -m finetuner export --run {run_dir} --onnx")
    if results.get("trackers"):
        from finetuner.training.tracking import summary_lines

        print("Trackers:")
        for line in summary_lines(results["trackers"]):
            print(f"  {line}")


def cmd_predict(args) -> int:
    from finetuner.serving.inference import Predictor

    predictor = Predictor.load(args.run, runtime=args.runtime, batch=bool(args.file))
    asks = predictor.spec.context_windows  # a question about a passage
    if args.question or args.context or (asks and not args.file):
        return _predict_qa(predictor, args)
    if args.file:
        out = args.out or str(Path(args.file).with_suffix("")) + ".predictions.csv"
        predictor.predict_file(args.file, out)
        print(f"Wrote {out}")
        return 0
    if not args.text or not any(t.strip() for t in args.text):
        raise FinetunerError("Nothing to predict.", "Pass --text \"...\" or --file FILE.",
                             code="no_input")
    preds = predictor.predict(args.text, args.pair)
    for text, pred in zip(args.text, preds):
        if args.json:
            print(json.dumps({"text": text, **pred}, ensure_ascii=False))
        else:
            print(f"{predictor.impl.summary(pred)}\t{text}")
    return 0


def _predict_qa(predictor, args) -> int:
    if not predictor.spec.context_windows:
        raise FinetunerError("--question and --context are for question-answering models.",
                             'This model takes --text "...".', code="wrong_task")
    questions = [q for q in args.question or [] if q.strip()]
    contexts = args.context or []
    if not questions or not contexts:
        raise FinetunerError("This model answers questions about a passage.",
                             'Pass --question "..." and --context "...".', code="no_input")
    if len(contexts) == 1:
        contexts = contexts * len(questions)
    if len(contexts) != len(questions):
        raise FinetunerError(f"Got {len(questions)} questions but {len(contexts)} contexts.",
                             "Give one --context for all questions, or one per --question.",
                             code="bad_pairs")
    preds = predictor.predict_examples([{"question": q, "context": c}
                                        for q, c in zip(questions, contexts)])
    for question, pred in zip(questions, preds):
        if args.json:
            print(json.dumps({"question": question, **pred}, ensure_ascii=False))
        else:
            print(f"{predictor.impl.summary(pred)}\t{question}")
    return 0


def cmd_export(args) -> int:
    from finetuner.runs import RunPaths
    from finetuner.serving.export import make_zip

    if not args.zip and not args.onnx:
        raise FinetunerError("Nothing to export.", "Pass --zip FILE, --onnx, or both.",
                             code="no_input")
    run = RunPaths(Path(args.run))
    if args.onnx:
        from finetuner.serving.onnxexport import export_run
        from finetuner.serving.onnxreport import summary_lines

        summary = export_run(run.root)
        print(f"ONNX export in {run.model / 'onnx'} ({summary['export_seconds']} s export, "
              f"{summary['check_seconds']} s check)")
        print("\n".join(summary_lines(summary)))  # the run's own zip carries it already
    if args.zip:
        path = make_zip(run, args.zip)
        print(f"Wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def cmd_push(args) -> int:
    from finetuner.runs import RunPaths
    from finetuner.serving.export import push_to_hub

    token = args.token or os.environ.get("HF_TOKEN", "")
    url = push_to_hub(RunPaths(Path(args.run)), args.repo, token, private=not args.public)
    print(f"Published {url}")
    return 0


def _stop_on_signals() -> None:
    """SIGTERM (timeout, a CI job's limit, kill) and SIGHUP (a closed terminal) end the
    command as Ctrl-C does: the running worker is told to stop, keeps its best checkpoint and
    is waited for. (A worker whose command dies anyway stops by itself: FINETUNER_STOP_WITH_PID.)"""

    def interrupt(signum, _frame):
        signal.signal(signum, signal.SIG_IGN)  # once: the stop and the wait must finish
        raise KeyboardInterrupt

    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _stop_on_signals()

    commands = {"train": cmd_train, "check": cmd_check, "predict": cmd_predict,
                "export": cmd_export, "push": cmd_push, "compare": cmd_compare,
                "search": cmd_search, "learning-curve": cmd_learning_curve,
                "doctor": cmd_doctor}
    try:
        return commands[args.command](args)
    except FinetunerError as exc:
        print(f"Error: {exc.text}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
