"""The command line's groups of runs: `compare` (members side by side on identical splits),
`search` (Optuna on the validation split; the same --output resumes or extends it) and
`learning-curve` (one configuration on nested shares of its training data)."""

from __future__ import annotations

import json
from pathlib import Path

from finetuner.errors import FinetunerError


def add_group_args(p, name: str) -> None:
    p.add_argument("--output", required=True, help="folder for the group's runs and summary")
    if name == "compare":
        p.add_argument("--methods", default="head,lora,full",
                       help="members, comma-separated (default head,lora,full)")
        p.add_argument("--vary", help="one setting's values, e.g. lr=5e-5,1e-4,3e-4 or "
                       "lora_r=4,8,16 (crossed with --methods)")
        p.add_argument("--budget-minutes", type=float, help="winner: at most this training time")
        p.add_argument("--budget-memory-mb", type=float, help="winner: at most this peak memory")
    elif name == "learning-curve":
        p.add_argument("--fractions", default="0.25,0.5,1",
                       help="shares of the training split, nested (default 0.25,0.5,1)")
    else:
        p.add_argument("--trials", type=int, default=10,
                       help="trials in all (a resumed search adds the missing ones)")
        p.add_argument("--minutes", type=float, help="no new trial after this many minutes")
        p.add_argument("--pruner", default="median", help="median | halving | none | below:X")
        p.add_argument("--search-seed", type=int, default=0, help="the sampler's seed")


def _base(args):
    from finetuner.cli.flags import config_from_args
    from finetuner.training.checks import check_model, prepare_data
    from finetuner.training.tracking import check as check_trackers

    config = config_from_args(args)
    check_trackers(config.training.report_to)  # before any member or trial starts
    source = check_model(config)
    prepared = prepare_data(config, source)  # bad data fails here, before any run starts
    print("\n".join(prepared.report.summary_lines()), flush=True)
    return config


def _interrupted(what: str) -> int:
    print(f"\nInterrupted: the {what}'s current trial was stopped. The same command goes on "
          "with the search."
          if what == "search" else "\nInterrupted: the current member was stopped.",
          flush=True)
    return 130


def cmd_compare(args) -> int:
    from finetuner.server.compare import parse_vary, run_group, table
    from finetuner.server.follow import local_launcher

    base = _base(args)
    out = Path(args.output)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        summary = run_group(out, base, local_launcher(out), methods, parse_vary(args.vary),
                            args.budget_minutes, args.budget_memory_mb)
    except KeyboardInterrupt:
        return _interrupted("comparison")
    print("\n" + table(summary), flush=True)
    print(f"\nWrote {out / 'comparison.json'}")
    return 0 if summary["winner"] else 1


def cmd_learning_curve(args) -> int:
    from finetuner.server import learning_curve
    from finetuner.server.compare import run_group
    from finetuner.server.follow import local_launcher
    from finetuner.tasks import get_task

    fractions = learning_curve.parse_fractions(args.fractions)
    base = _base(args)
    out = Path(args.output)
    try:
        summary = run_group(out, base, local_launcher(out), planned=learning_curve.members(
            base, fractions))
    except KeyboardInterrupt:
        return _interrupted("learning curve")
    curve = learning_curve.analyse(summary["members"], get_task(base.task).metric_title)
    lines = ["| training examples | validation score | noise (±) | member |", "|---|---|---|---|"]
    lines += [f"| {p['n']:,} | {p['score']:.4f} | {p['band']:.3f} | {p['name']} |"
              for p in curve["points"]]
    if curve["predicted"]:
        pred = curve["predicted"]
        lines.append(f"| {pred['n']:,} (predicted) | {pred['score']:.4f} | | fit |")
    print("\n" + "\n".join(lines) + "\n\n" + curve["sentence"], flush=True)
    (out / "learning_curve.json").write_text(json.dumps(curve, indent=2, default=str))
    print(f"\nWrote {out / 'learning_curve.json'}")
    return 0 if curve["fit"] else 1


def cmd_search(args) -> int:
    from finetuner.server.follow import local_launcher
    from finetuner.server.search import Budget, Search
    out = Path(args.output)
    if args.trials < 1:
        raise FinetunerError("--trials must be 1 or more.", code="bad_setting")
    if (out / "search.json").exists():
        search = Search(out)  # resume or extend: the stored base config and space
        print(f"Resuming the search in {out}: {len(search.finished_trials())} trial(s) "
              f"finished so far, {search.state['minutes']:.1f} min spent (--minutes counts "
              "them); its stored data, settings and pruner are used, not the ones given now.",
              flush=True)
    else:
        base = _base(args)
        search = Search(out, base, seed=args.search_seed, pruner=args.pruner)
    try:
        summary = search.run(local_launcher(out / "trials"), Budget(args.trials, args.minutes))
    except KeyboardInterrupt:
        return _interrupted("search")
    print("\n" + summary_table(summary), flush=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"\nWrote {out / 'summary.json'}")
    final = summary.get("final") or {}
    return 0 if final.get("status") == "completed" and final.get("test") is not None else 1


def summary_table(summary: dict) -> str:
    m = summary["metric"]
    lines = [f"| trial | state | validation {m} | best so far | settings |",
             "|---|---|---|---|---|"]
    for r in summary["trials"]:
        settings = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in r["params"].items())
        value = "" if r["value"] is None else f"{r['value']:.4f}"
        best = "" if r["best_so_far"] is None else f"{r['best_so_far']:.4f}"
        lines.append(f"| {r['trial']} | {r['state']} | {value} | {best} | {settings} |")
    if summary["importance"]:
        lines.append("\nHow much each setting mattered (Optuna): " + ", ".join(
            f"{k} {v:.2f}" for k, v in summary["importance"].items()))
    final = summary.get("final")
    if final:
        test = "n/a" if final.get("test") is None else f"{final['test']:.4f}"
        lines.append(f"\nChosen: trial {final['trial']}, trained again as a normal run "
                     f"({final['run']}): validation {m} {final.get('validation')}, test {m} "
                     f"{test} (the search's only test score).")
    return "\n".join(lines)
