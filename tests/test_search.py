"""Compare groups and hyperparameter search, end to end with real worker processes on a tiny
random model: identical splits, the winner by validation within a budget, pruned trials,
a resumed and extended study, a search process killed mid-trial and restarted, and proof that
no test score ever reaches the sampler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, sentiment_rows, wait_for, write_csv

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.runs import RunPaths
from finetuner.server.compare import members, parse_vary, summarize, trade_off


def base_config(data: Path, model: Path, **training) -> RunConfig:
    return RunConfig.from_dict({
        "task": "classification", "data": {"train_file": str(data), "max_length": 32},
        "model": {"name_or_path": str(model)},
        "training": {"epochs": 1, "max_steps": 4, "batch_size": 8, "evals_per_epoch": 2,
                     "train_eval_samples": 8, "checkpoints": False, "precision": "fp32",
                     **training}})


def row(name, validation, test, seconds, memory=500.0, n_val=20_000, status="completed"):
    return {"name": name, "run": name, "status": status, "method": name,
            "metric": "accuracy", "validation": validation, "test": test,
            "train_seconds": seconds, "samples_per_second": 10.0, "peak_memory_mb": memory,
            "trainable": 1, "total": 2, "gap": 0.0, "verdict": "healthy", "curve": [],
            "splits": {"validation": n_val}, "fingerprint": "same"}


def test_the_winner_is_chosen_by_validation_within_the_budget_never_by_test():
    rows = [row("head", 0.80, 0.95, 10), row("lora", 0.85, 0.70, 30),
            row("full", 0.87, 0.60, 100, memory=2000)]
    out = summarize(rows)
    assert out["winner"] == "full" and out["identical_splits"]  # best validation, worst test
    assert "full fine-tuning has the best validation accuracy (0.870)" in out["sentence"]
    assert ("LoRA is 2.0 points behind (beyond the noise of the validation size) at 0.30x "
            "its training time.") in out["sentence"]
    assert summarize(rows, max_minutes=1)["winner"] == "lora"  # full took 100 s
    capped = summarize(rows, max_memory_mb=1000)
    assert capped["winner"] == "lora" and "was left out: over the budget" in capped["sentence"]
    assert summarize(rows, max_minutes=0.01)["winner"] is None
    rows[0]["fingerprint"] = "other"
    assert not summarize(rows)["identical_splits"]
    assert "runner-up, full fine-tuning, is 5.0 points behind" in trade_off(
        row("lora", 0.85, None, 30), [row("full", 0.80, None, 100)], [])
    assert "No other member" in trade_off(rows[0], [], [])


def test_no_winner_before_every_member_ends_and_noise_is_named():
    """One of three members finished: no winner yet. On 100 validation rows a one-point lead
    is one row: the members are tied within the noise, and the cheaper one is named."""
    rows = [row("head", 0.80, None, 10), row("lora", 0.86, None, 30, status="running")]
    early = summarize(rows, expected=3)
    assert early["winner"] is None
    assert early["sentence"] == ("The winner is named when every member has ended (1 of 3 so "
                                 "far).")
    assert summarize(rows[:1], expected=3)["winner"] is None
    rows = [row("lora", 0.86, None, 30, n_val=100), row("full", 0.87, None, 100, n_val=100)]
    out = summarize(rows, expected=2)
    assert out["winner"] == "full"
    assert out["sentence"].startswith("full fine-tuning and LoRA are tied within the noise of "
                                      "100 validation rows (a lead under 9.7 points can be "
                                      "chance)"), out["sentence"]
    assert "LoRA trains in 0.30x the time: as good for less." in out["sentence"]


def test_members_cross_methods_with_one_setting(tmp_path):
    base = RunConfig.from_dict({"data": {"train_file": "x.csv"},
                                "training": {"learning_rate": 1e-3}})
    names = [n for n, _ in members(base)]
    assert names == ["head", "lora", "full"]
    # several methods: each at its own default learning rate, not the base's
    assert all(c.training.learning_rate is None for _, c in members(base))
    varied = members(base, ["lora"], parse_vary("lr=1e-4,3e-4"))
    assert [(n, c.training.learning_rate) for n, c in varied] == [
        ("lora-learning_rate-0.0001", 1e-4), ("lora-learning_rate-0.0003", 3e-4)]
    assert [c.method.lora_r for _, c in members(base, ["lora"], parse_vary("lora_r=4,16"))] == \
        [4, 16]
    with pytest.raises(FinetunerError, match="Cannot vary"):
        parse_vary("colour=red")
    with pytest.raises(FinetunerError, match="at least two"):
        members(base, ["full"])


def cli(*args, timeout=600):
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.run([sys.executable, "-m", "finetuner", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_compare_group_runs_every_member_on_identical_splits(tmp_path, tiny_model):
    data = write_csv(tmp_path / "s.csv", sentiment_rows(80))
    out = tmp_path / "cmp"
    proc = cli("compare", "--data", data, "--model", tiny_model, "--max-steps", 4,
               "--batch-size", 8, "--max-length", 32, "--precision", "fp32",
               "--evals-per-epoch", 2, "--methods", "head,full", "--output", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((out / "comparison.json").read_text())
    rows = {r["name"]: r for r in summary["members"]}
    assert set(rows) == {"head", "full"} and summary["identical_splits"]
    assert len({r["fingerprint"] for r in rows.values()}) == 1 and rows["head"]["fingerprint"]
    assert rows["head"]["trainable"] < rows["full"]["trainable"]
    assert all(r["status"] == "completed" and r["validation"] is not None for r in rows.values())
    best = max(rows.values(), key=lambda r: (r["validation"], -r["train_seconds"]))
    assert summary["winner"] == best["name"]
    assert "test (not used for the choice)" in proc.stdout and "(winner)" in proc.stdout
    for r in rows.values():  # each member is a normal run: its model and card
        assert (Path(r["run"]) / "model" / "README.md").exists()


def trial_results(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "trials").glob(
        "trial-*/results.json"))]


def test_search_prunes_resumes_extends_and_never_shows_the_sampler_a_test_score(
        tmp_path, tiny_model):
    import optuna

    from finetuner.server.follow import local_launcher
    from finetuner.server.search import Budget, Search

    data = write_csv(tmp_path / "s.csv", sentiment_rows(80))
    out = tmp_path / "search"
    base = base_config(data, tiny_model, max_steps=6, evals_per_epoch=3)
    # below:2.0 prunes every trial after its second evaluation: a real stop of a real worker
    search = Search(out, base, seed=0, pruner="below:2.0")
    assert search.state["direction"] == "maximize"  # macro-F1: higher is better
    summary = search.run(local_launcher(out / "trials"), Budget(trials=2), log=lambda m: None)
    states = [t["state"] for t in summary["trials"]]
    assert states == ["pruned", "pruned"], summary
    # the first trial is the defaults (the search cannot end below them), then TPE's own
    first = summary["trials"][0]["params"]
    assert first["learning_rate"] == 1e-4 and first["epochs"] == 1 and "batch_size" in first
    assert summary["trials"][1]["params"] != first
    for r in trial_results(out):
        # stopped by the pruner (a tiny run may reach its last step before the stop lands)
        assert r["status"] in ("stopped", "completed") and r["test"] is None
        assert not r.get("model_dir")
    assert not list((out / "trials").glob("trial-*/predictions.jsonl"))
    assert summary["final"] is None  # nothing completed: nothing chosen, nothing tested

    # reopened from its folder with another pruner setting ignored: the stored study goes on
    search = Search(out)
    search.state["pruner"] = "none"
    search.study = search._study()
    summary = search.run(local_launcher(out / "trials"), Budget(trials=4), log=lambda m: None)
    assert [t["state"] for t in summary["trials"]] == ["pruned", "pruned", "complete",
                                                       "complete"]
    # the reopened sampler does not draw the first process's random points again
    drawn = [tuple(sorted(t["params"].items())) for t in summary["trials"]]
    assert len(set(drawn)) == 4, drawn
    # what the sampler was told is exactly each trial's validation score at its kept step
    study = optuna.load_study(study_name="search", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))))
    metric = summary["metric"]
    assert metric == "macro_f1"  # the task's primary metric, as the checkpoint choice uses
    told = {t.number: t.value for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE}
    for trial in study.trials:
        folder = out / "trials" / f"trial-{trial.number}"
        r = json.loads((folder / "results.json").read_text())
        assert r["test"] is None
        assert json.loads((folder / "config.json").read_text())["training"]["score_test"] is False
        reported = [(e.get("validation") or {}).get(metric) for e in map(
            json.loads, (folder / "events.jsonl").read_text().splitlines())
            if e.get("type") == "eval"]
        # every number the pruner saw is one of the trial's own validation scores
        assert set(trial.intermediate_values.values()) <= set(reported)
        if trial.number in told:  # a completed trial: its validation score at the kept step
            assert told[trial.number] == pytest.approx(r["validation"][metric])
    # the chosen configuration is a normal run: the search's one test score, its model
    final = summary["final"]
    best = max(told, key=told.get)
    assert final["trial"] == best and final["test"] is not None
    final_run = Path(final["run"])
    assert (final_run / "model" / "README.md").exists()
    chosen = json.loads((final_run / "config.json").read_text())["training"]
    assert chosen["learning_rate"] == pytest.approx(study.trials[best].params["learning_rate"])
    assert chosen["score_test"] is True
    # two completed trials say nothing reliable about which setting mattered: none shown,
    # and the view says how many it needs
    assert summary["completed"] == 2 and summary["importance"] == {}
    from finetuner.ui.render_groups import search_html

    shown = search_html({"summary": summary})
    assert "shown from 5 completed trials on (2 so far)" in shown
    assert "trials keep no model and never look at the test split" in shown
    assert [t["best_so_far"] for t in summary["trials"]][-1] == pytest.approx(max(
        told.values()))


@pytest.mark.parametrize("worker_dies_too,unrecorded", [(False, False), (True, False),
                                                       (False, True)],
                         ids=["worker-lives", "worker-dies", "killed-before-recording"])
def test_a_search_killed_mid_trial_picks_its_trial_up_again(tmp_path, tiny_model,
                                                            worker_dies_too, unrecorded):
    data = write_csv(tmp_path / "s.csv", sentiment_rows(80))
    out = tmp_path / "search"
    args = ["search", "--data", data, "--model", tiny_model, "--max-steps", 40,
            "--batch-size", 8, "--max-length", 32, "--precision", "fp32",
            "--evals-per-epoch", 2, "--pruner", "none", "--trials", 1, "--output", out]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    proc = subprocess.Popen([sys.executable, "-m", "finetuner", *map(str, args)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    events = out / "trials" / "trial-0" / "events.jsonl"
    def first_step():
        assert proc.poll() is None, proc.communicate()[0]  # the search died before training
        return events.exists() and '"type": "progress"' in events.read_text()

    wait_for(first_step, 120, 0.5, "the trial's first step")
    os.killpg(proc.pid, signal.SIGKILL)  # the search process dies; its trial's worker is
    proc.wait()  # in its own session, unless the machine went down too
    trial = RunPaths(out / "trials" / "trial-0")
    if worker_dies_too:
        pid = next(json.loads(line)["pid"] for line in events.read_text().splitlines()
                   if '"pid"' in line)
        os.killpg(pid, signal.SIGKILL)
        ended = None
    else:  # the worker notices its command is gone and stops cleanly (unless it finished
        # first), marked for the next start to resume it
        wait_for(trial.results.exists, 60, what="the trial's worker to end by itself")
        ended = json.loads(trial.results.read_text())
        assert ended["status"] in ("stopped", "completed"), ended
        if ended["status"] == "stopped":
            assert (trial.root / "SHUTDOWN").exists()
            assert ended["note"].startswith("Stopped because the command that started it ended")
    state = json.loads((out / "search.json").read_text())
    assert state["trials"]["0"]["state"] == "running" and state["direction"] == "maximize"
    if unrecorded:  # killed after submitting the trial, before writing it down
        del state["trials"]["0"]
        (out / "search.json").write_text(json.dumps(state))
    done = cli(*args)  # the same command again: re-attaches, finishes, chooses, tests
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Resuming the search" in done.stdout
    # a dead worker is noticed (no results, no process), marked interrupted and resumed; so
    # is one that stopped because its command died; one that finished first is only read
    resumed = worker_dies_too or ended["status"] == "stopped"
    assert ("resuming after a restart" in done.stdout) == resumed, done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["complete"]
    assert summary["final"]["trial"] == 0 and summary["final"]["test"] is not None
    assert len(list((out / "trials").glob("trial-*"))) == 1  # no trial was run twice


def test_a_damaged_search_folder_and_bad_settings_get_one_sentence(tmp_path):
    from finetuner.server.search import Search

    (tmp_path / "search.json").write_text("{bad")
    with pytest.raises(FinetunerError, match="is damaged"):
        Search(tmp_path)
    base = RunConfig.from_dict({"data": {"train_file": "x.csv"}})
    with pytest.raises(FinetunerError, match="Unknown pruner"):
        Search(tmp_path / "new", base, pruner="bogus")
    assert not (tmp_path / "new" / "search.json").exists()  # nothing stored for a bad setting


def test_a_search_with_the_highest_seed_opens_again_after_a_trial(tmp_path):
    """The sampler's seed is the run's seed plus the trials already stored; numpy takes seeds
    below 2**32 only, so a search seeded 4294967295 (the highest seed the config accepts)
    failed to open again once it had a trial."""
    from finetuner.server.search import Search

    base = RunConfig.from_dict({"data": {"train_file": "x.csv"},
                                "training": {"seed": 2 ** 32 - 1}})
    search = Search(tmp_path, base, seed=base.training.seed)
    search.study.ask()  # one trial stored
    again = Search(tmp_path)
    assert len(again.study.get_trials(deepcopy=False)) == 1
    again.study.ask()  # and it samples


def test_pruning_waits_for_a_fair_share_of_training():
    from finetuner.server.search import warmup_evaluations

    base = RunConfig.from_dict({"data": {"train_file": "x.csv"},
                                "training": {"epochs": 3, "evals_per_epoch": 4}})
    assert warmup_evaluations(base) == 4  # a third of 12 evaluations
    short = RunConfig.from_dict({"data": {"train_file": "x.csv"},
                                 "training": {"epochs": 1, "evals_per_epoch": 2}})
    assert warmup_evaluations(short) == 2  # never fewer than two


def test_a_trial_asked_for_but_never_started_does_not_use_up_the_budget(tmp_path, tiny_model):
    """The process died after the sampler gave out a trial and before its run was submitted
    (the browser walk's server kill landed there once: the search then ended with two of its
    three trials, the third shown as 'failed or stopped' though nothing had run). Reopened, it
    runs that trial's settings (the first trial's are the user's own) and counts only what
    ran."""
    from finetuner.server.follow import local_launcher
    from finetuner.server.search import Budget, Search, defaults

    data = write_csv(tmp_path / "s.csv", sentiment_rows(80))
    out = tmp_path / "search"
    base = base_config(data, tiny_model, max_steps=4)
    search = Search(out, base, seed=0, pruner="none")
    own = defaults(search.base, search.state["space"])
    search.study.enqueue_trial(own)
    search.study.ask()  # ...and the process dies here
    search = Search(out)
    summary = search.run(local_launcher(out / "trials"), Budget(trials=1), log=lambda m: None)
    assert [t["state"] for t in summary["trials"]] == ["complete"], summary["trials"]
    assert summary["trials"][0]["trial"] == 1 and summary["completed"] == 1
    ran = summary["trials"][0]["params"]  # the user's own settings, not a random draw
    assert "learning_rate" in own and all(ran[k] == pytest.approx(own[k]) for k in own), ran
    assert summary["final"]["trial"] == 1 and summary["final"]["test"] is not None
