"""Comparisons and searches as server jobs (finetuner.server.groups), in-process with real
workers on a tiny random model: members and trials are the user's ordinary queued runs, nobody
else can see or stop them, a clean server shutdown in the middle of a search is picked up by
the next start (the cut-short trial trained again, not scored as it was), and a stopped
search carries on from its stored study."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import sentiment_rows, wait_for, write_csv

from finetuner.config import RunConfig
from finetuner.errors import FinetunerError
from finetuner.server.limits import Limits
from finetuner.server.studio import Studio


def base(data: Path, model: Path, **training) -> RunConfig:
    return RunConfig.from_dict({
        "task": "classification", "data": {"train_file": str(data), "max_length": 32},
        "model": {"name_or_path": str(model)},
        "training": {"epochs": 1, "max_steps": 4, "batch_size": 8, "evals_per_epoch": 2,
                     "train_eval_samples": 8, "checkpoints": False, "precision": "fp32",
                     **training}})


def test_compare_group_runs_in_the_users_queue_and_stays_theirs(tmp_path, tiny_model):
    data = write_csv(tmp_path / "s.csv", sentiment_rows(80))
    studio = Studio(tmp_path / "home", limits=Limits(max_jobs=1, max_queued_per_user=1,
                                                     max_groups_per_user=1))
    try:
        alice, bob = studio.workspace("alice"), studio.workspace("bob")
        group = studio.groups.start_compare(alice, base(data, tiny_model), ["head", "full"],
                                            max_minutes=30)
        with pytest.raises(FinetunerError, match="already have 1 comparisons or searches"):
            studio.groups.start_compare(alice, base(data, tiny_model), ["head", "full"])
        # bob can neither see, read, nor stop it, even knowing its id
        assert studio.groups.list(bob) == []
        for action in (studio.groups.view, studio.groups.stop, studio.groups.delete):
            with pytest.raises(FinetunerError, match="No such comparison"):
                action(bob, group)
        with pytest.raises(FinetunerError, match="No such comparison"):
            studio.groups.view(alice, "../" + group)
        # alice's cap is one queued training: the group waits its turn, member by member
        # (never two of its members waiting or training at once; head-only goes first)
        seen = []

        def one_at_a_time():
            runs = alice.list_runs()
            busy = [r for r in runs if r.status in ("queued", "running")]
            assert len(busy) <= 1, busy
            seen.extend(r.name for r in runs if r.name not in seen)
            return studio.groups.view(alice, group)["meta"]["status"] == "finished"
        wait_for(one_at_a_time, 300)
        assert len(seen) == 2 and "head" in seen[0] and "full" in seen[1]
        view = studio.groups.view(alice, group)
        assert view["meta"]["status"] == "finished"
        summary = view["summary"]
        rows = {r["name"]: r for r in summary["members"]}
        assert set(rows) == {"head", "full"} and summary["identical_splits"]
        assert all(r["status"] == "completed" for r in rows.values())
        assert summary["winner"] == max(rows.values(), key=lambda r: (
            r["validation"], -r["train_seconds"]))["name"]
        assert all("/" not in r["run"] for r in rows.values())  # ids, never server paths
        # the same runs, put side by side from Your runs
        ids = [s.id for s in alice.list_runs()]
        side = studio.groups.side_by_side(alice, ids)["summary"]
        picked = next(r for r in side["members"] if r["name"] == side["winner"])
        chosen = rows[summary["winner"]]
        # the same choice (on an exact tie of score and time either run is the same choice)
        assert (picked["validation"], picked["train_seconds"]) == (chosen["validation"],
                                                                   chosen["train_seconds"])
        with pytest.raises(FinetunerError, match="No such run"):
            studio.groups.side_by_side(bob, ids)
        # in the UI, the page's timer must not draw the last open group back over the runs
        # put side by side (a tick that still carries the group's id in its form)
        from finetuner.ui.handlers import Handlers
        ui = Handlers(studio)
        shown = ui.side_by_side("alice", {"runs_select": ids})
        assert re.search("Winner by validation score|Best validation score, tied",
                         shown["group_summary"])
        assert ui.group_tick("alice", {"group_pick": group,
                                       "group_seen": shown["group_seen"]}) == {}
        assert ui.group_tick("alice", {"group_pick": group, "group_seen": None})
        other = write_csv(tmp_path / "o.csv", sentiment_rows(60, seed=3))
        run, _ = alice.submit(base(other, tiny_model, max_steps=2))
        wait_for(lambda: alice.status(run) == "completed", 120)
        with pytest.raises(FinetunerError, match="not trained and checked on the same data"):
            studio.groups.side_by_side(alice, [ids[0], run.id])
        assert "Deleted" in studio.groups.delete(alice, group)
        assert len(alice.list_runs()) == 3  # the members stay in Your runs
    finally:
        studio.shutdown()


def test_search_survives_a_server_shutdown_and_carries_on_after_a_stop(tmp_path, tiny_model):
    data = write_csv(tmp_path / "s.csv", sentiment_rows(80))
    home = tmp_path / "home"
    studio = Studio(home)
    alice = studio.workspace("alice")
    # long enough for the shutdown to land mid-trial, short enough to train three times
    config = base(data, tiny_model, max_steps=120, early_stopping_patience=0,
                  evals_per_epoch=1)
    group = studio.groups.start_search(alice, config, trials=2, pruner="none")
    folder = studio.groups.folder(alice, group)

    def trial_run():
        state = json.loads((folder / "search.json").read_text())
        entry = state["trials"].get("0")
        if entry and Path(entry["run"], "events.jsonl").exists() and '"type": "eval"' in \
                Path(entry["run"], "events.jsonl").read_text():
            return Path(entry["run"])
    first = wait_for(trial_run, 120)
    studio.shutdown()  # a clean stop of the server, mid-trial: the trial is cut short
    studio.groups.wait(alice, group, timeout=30)
    # stopped by the shutdown; the search's own thread may already have marked it for
    # training again (a killed server leaves it "stopped": the next start does it)
    assert json.loads((first / "results.json").read_text())["status"] in ("stopped",
                                                                           "interrupted")
    assert (first / "SHUTDOWN").exists()

    studio = Studio(home)  # the next start
    try:
        studio.jobs.recover()
        assert studio.groups.recover() == 1
        alice = studio.workspace("alice")
        # the cut-short trial is trained again, not scored at the point the shutdown hit
        wait_for(lambda: not (first / "SHUTDOWN").exists(), 60)
        # a page loaded now opens on the running search, not on one trial's curves
        from finetuner.ui.handlers import Handlers

        assert Handlers(studio)._group_to_show(alice, alice.active_run()) == group
        # the user stops the search during its second trial: that trial is not counted
        second = wait_for(lambda: json.loads((folder / "search.json").read_text())[
            "trials"].get("1"), 300)
        wait_for(lambda: Path(second["run"], "events.jsonl").exists(), 120)
        assert "Stopping" in studio.groups.stop(alice, group)
        studio.groups.wait(alice, group, timeout=60)
        view = studio.groups.view(alice, group)
        assert view["meta"]["status"] == "stopped"
        states = {t["trial"]: t["state"] for t in view["summary"]["trials"]}
        assert states == {0: "complete", 1: "fail"}, view["summary"]["trials"]
        told = json.loads((folder / "search.json").read_text())["trials"]
        assert told["0"]["state"] == "complete" and told["1"]["state"] == "cancelled"
        # trial 0 ran to its end after the restart (120 steps), not the shutdown's cut
        r0 = json.loads((first / "results.json").read_text())
        assert r0["status"] == "completed" and r0["test"] is None
        assert view["summary"]["final"] is None and view["summary"]["stopped"]

        # continued from the stored study with one more trial; ends with the chosen run
        assert "up to 3 trials" in studio.groups.resume(alice, group, more_trials=1)
        studio.groups.wait(alice, group, timeout=400)
        view = studio.groups.view(alice, group)
        assert view["meta"]["status"] == "finished"
        assert [t["state"] for t in view["summary"]["trials"]] == ["complete", "fail",
                                                                   "complete"]
        final = view["summary"]["final"]
        assert final["status"] == "completed" and final["test"] is not None
        chosen = alice.run(final["run"])
        assert (chosen.model / "README.md").exists()
        for t in view["summary"]["trials"]:  # no trial ever scored the test split
            results = json.loads((alice.run(t["run"]).results).read_text())
            assert results["test"] is None
    finally:
        studio.shutdown()


def test_one_admission_check_for_every_path_that_makes_work(tmp_path, tiny_model):
    """Caps apply to each job's final settings whichever way it comes in: a comparison that
    varies epochs past the cap, a search asking for too many trials at start or on
    continuing, a queued job whose caps changed while it waited. A comparison member equal to
    a run already active trains as its own run instead of failing the comparison."""
    data = write_csv(tmp_path / "s.csv", sentiment_rows(80))
    studio = Studio(tmp_path / "home", limits=Limits(max_jobs=1, max_epochs=50, max_trials=5))
    try:
        alice = studio.workspace("alice")
        groups_dir = alice.root / "groups"
        with pytest.raises(FinetunerError, match=r"Member 'full-epochs-90': 90 epochs is above "
                                                 r"this server's cap of 50 "
                                                 r"\(FINETUNER_MAX_EPOCHS\)"):
            studio.groups.start_compare(alice, base(data, tiny_model), ["full"],
                                        vary=("epochs", [1, 90]))
        assert not groups_dir.exists() or not list(groups_dir.iterdir())
        with pytest.raises(FinetunerError, match=r"1,000,000,000 trials .* \(FINETUNER_MAX_"):
            studio.groups.start_search(alice, base(data, tiny_model), trials=10**9)

        # a search of 1 trial, stopped, then continued with a million more: refused, its
        # budget unchanged
        group = studio.groups.start_search(alice, base(data, tiny_model), trials=1,
                                           pruner="none")
        studio.groups.stop(alice, group)
        studio.groups.wait(alice, group, timeout=120)
        folder = studio.groups.folder(alice, group)
        status = json.loads((folder / "group.json").read_text())["status"]
        assert status in ("stopped", "finished"), status
        with pytest.raises(FinetunerError, match=r"1,000,001 trials in all .* 1 to 5 per "
                                                 r"search \(FINETUNER_MAX_TRIALS\)"):
            studio.groups.resume(alice, group, more_trials=1_000_000)
        meta = json.loads((folder / "group.json").read_text())
        assert meta["budget"]["trials"] == 1 and meta["status"] == status

        # a member equal to a run already active is its own run (a second click is not)
        blocker, _ = alice.submit(base(data, tiny_model, max_steps=60))
        with pytest.raises(FinetunerError, match="already"):
            alice.submit(base(data, tiny_model, max_steps=60))
        member, _ = alice.submit(base(data, tiny_model, max_steps=60), "cmp · full",
                                 duplicate_ok=True)
        assert member.id != blocker.id
        for run in (blocker, member):
            studio.jobs.stop(run)
            studio.jobs.wait(run, timeout=120)

        # a queued job meets the caps of the moment it starts
        first, _ = alice.submit(base(data, tiny_model, max_steps=60, epochs=3))
        wait_for(lambda: studio.jobs.state(first) == "running", 120)
        waiting, state = alice.submit(base(data, tiny_model, max_steps=None, epochs=3))
        assert state["state"] == "queued"
        studio.limits = Limits(max_jobs=1, max_epochs=2)  # the administrator lowered a cap
        results = wait_for(lambda: json.loads(waiting.results.read_text())
                           if waiting.results.exists() else None, 300)
        assert results["status"] == "failed"
        assert "3 epochs is above this server's cap of 2" in results["error"]["message"]
        assert studio.jobs.wait(first, timeout=300)["status"] == "completed"
    finally:
        studio.shutdown()
