"""Hyperparameter search on the validation split, with Optuna.

A search samples settings with TPE (seeded), trains each trial as an ordinary run (a job in
the queue: it shares the server, survives a restart, can be stopped), feeds the pruner the
trial's validation score at each evaluation (a median pruner, or successive halving) and stops
a trial the pruner gives up on. Trials never score the test split (`score_test` off) and keep
no model (`save_model` off): the sampler, the pruner and the choice see validation only. When
the budget (trials, minutes) is spent, the best trial's settings are trained once more as a
normal run, and that run's test score is the search's one test score.

Everything lives in the search folder: `study.journal` (Optuna's journal storage: reopening
it resumes or extends the study), `search.json` (the base config, the space, the budget, which
run is which trial, the chosen run) and `trials/trial-N/` run directories (the CLI; on the
server trials are the user's own runs). The evaluation index k (1, 2, ...) is the pruner's
step: with a fixed number of evaluations per epoch it measures the same share of training in
every trial, whatever its batch size.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from finetuner.config import RunConfig
from finetuner.english import plural
from finetuner.errors import FinetunerError
from finetuner.results import read_results
from finetuner.runs import RunPaths, write_json
from finetuner.server.exits import mark_interrupted
from finetuner.server.follow import Launcher, follow
from finetuner.server.searchspace import configure, defaults, space, suggest

PRUNERS = ("median", "halving", "none", "below:X")


@dataclass(frozen=True)
class Budget:
    trials: int = 10
    minutes: float | None = None  # no new trial starts after this many minutes


class Search:
    """One study in one folder; `run` spends (more of) a budget on it."""

    def __init__(self, folder: str | Path, base: RunConfig | None = None, seed: int = 0,
                 pruner: str = "median", metric: str | None = None,
                 higher_is_better: bool | None = None, readonly: bool = False) -> None:
        """`readonly`: open an existing search only to read it (a view while another thread
        runs it): nothing is written."""
        self.folder = Path(folder)
        self.state_path = self.folder / "search.json"
        if self.state_path.exists():
            try:
                self.state = json.loads(self.state_path.read_text())
                base = RunConfig.from_dict(self.state["base"])
            except (ValueError, KeyError, TypeError):
                raise FinetunerError(
                    f"'{self.state_path}' is damaged: it cannot be read as a search.",
                    "Choose another --output for a new search (the trials already run stay "
                    "in its trials folder).", code="bad_search") from None
        elif base is None:
            raise FinetunerError(f"'{self.folder}' holds no search.", code="no_search")
        else:
            _pruner(pruner)  # an unknown name fails before anything is stored
            if higher_is_better is None:  # the task's own direction for the metric
                from finetuner.tasks import get_task

                spec = get_task(base.task)
                higher_is_better = spec.higher_is_better.get(metric or spec.primary_metric,
                                                             True)
            self.state = {"base": base.to_dict(), "space": space(base), "seed": seed,
                          "pruner": pruner, "metric": metric,
                          "direction": "maximize" if higher_is_better else "minimize",
                          "trials": {}, "final_run": None, "final": None, "minutes": 0.0}
        self.base = base
        if readonly:
            self.study = self._study()
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.study = self._study()
        self._save()

    # -- the study
    def _study(self):
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = JournalStorage(JournalFileBackend(str(self.folder / "study.journal")))
        pruner = _pruner(self.state["pruner"], warmup_evaluations(self.base))
        # the seed plus the trials already stored: a reopened search does not draw the same
        # random points again
        done = len(optuna.load_study(study_name="search", storage=storage).trials) if \
            "search" in [s.study_name for s in storage.get_all_studies()] else 0
        return optuna.create_study(
            study_name="search", storage=storage, load_if_exists=True,
            direction=self.state["direction"], pruner=pruner,
            # numpy takes seeds below 2**32 only: a seed near the top wraps around
            sampler=optuna.samplers.TPESampler(seed=(self.state["seed"] + done) % 2 ** 32,
                                               n_startup_trials=4))

    @property
    def metric(self) -> str:
        from finetuner.tasks import get_task

        return self.state["metric"] or get_task(self.base.task).primary_metric

    def finished_trials(self) -> list:
        import optuna

        done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                optuna.trial.TrialState.FAIL)
        never = set(self.state.get("never_ran", []))
        return [t for t in self.study.get_trials(deepcopy=False)
                if t.state in done and t.number not in never]

    # -- spending the budget
    def run(self, launcher: Launcher, budget: Budget, log=print,
            cancel=None) -> dict:
        """Finish trials left running by an earlier process, run new ones until `budget.trials`
        trials are finished or `budget.minutes` (counted over every process that worked on
        this search) have passed, then train the chosen configuration as a normal run.
        `cancel()` true (the user stopped the search): the trial it stopped is not counted,
        no new trial starts and nothing is trained at the end; running the search again
        carries on. A launcher whose `closing()` is true (the server is shutting down) ends
        the loop too; the trial its shutdown stopped is trained again on the next start.
        Returns the summary (see `summary`)."""
        self._cancel = cancel or (lambda: False)
        closing = getattr(launcher, "closing", None) or (lambda: False)
        self._clock = (time.monotonic(), self.state["minutes"])
        self.state["stopped"] = False
        if not self.study.get_trials(deepcopy=False):
            # the first trial is the defaults: the search can only end at or above them
            self.study.enqueue_trial(defaults(self.base, self.state["space"]))
        self._reattach(launcher, log)
        while len(self.finished_trials()) < budget.trials:
            if self._cancel() or closing():
                break
            if budget.minutes is not None and self._minutes() >= budget.minutes:
                log(f"Time budget of {budget.minutes:g} min spent after "
                    f"{plural(len(self.finished_trials()), 'trial')}.")
                break
            trial = self.study.ask()
            config = suggest(trial, self.base, self.state["space"])
            run = launcher.submit(config, f"trial-{trial.number}")
            self.state["trials"][str(trial.number)] = {"run": str(run.root), "state": "running"}
            self._save()
            log(f"trial {trial.number}: {_params_text(trial.params)}")
            self._watch(trial, run, launcher, log)
        if self._cancel():
            self.state["stopped"] = True
            self._save()
            log("Search stopped: no further trial, nothing trained at the end.")
        elif not closing():
            self._final(launcher, log)
        return self.summary()

    def _minutes(self) -> float:
        start, before = getattr(self, "_clock", (time.monotonic(), self.state["minutes"]))
        return before + (time.monotonic() - start) / 60

    def _save(self) -> None:
        if hasattr(self, "_clock"):  # the time spent so far survives a killed process
            self.state["minutes"] = round(self._minutes(), 4)
        write_json(self.state_path, self.state)

    def _watch(self, trial, run: RunPaths, launcher: Launcher, log) -> str:
        """Report each evaluation to the pruner (at its share of training: evaluations per
        epoch x epoch, the same in every trial); stop the run when the pruner says so; tell
        the study. Returns the trial's state."""
        import optuna

        metric, entry = self.metric, self.state["trials"][str(trial.number)]
        per_epoch = RunConfig.load(run.config).training.evals_per_epoch
        frozen = next(t for t in self.study.get_trials(deepcopy=False)
                      if t.number == trial.number)
        reported = set(frozen.intermediate_values)  # a re-attached trial's earlier reports

        def on_eval(event: dict, k: int) -> bool:
            value = (event.get("validation") or {}).get(metric)
            # the step-0 score of the probe is the same in every trial: not a trial's report
            if value is None or entry["state"] == "pruning" or not event.get("step"):
                return False
            step = max(1, round((event.get("epoch") or 0) * per_epoch))
            if step not in reported:  # a resumed run repeats a few evaluations
                reported.add(step)
                trial.report(float(value), step)
            if trial.should_prune():
                entry["state"] = "pruning"  # remembered: a restart does not call it complete
                self._save()
                return True
            return False

        try:
            seen = follow(run, on_eval, launcher.stop)
        except KeyboardInterrupt:
            launcher.stop(run)
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            entry["state"] = "cancelled"
            self._save()
            raise
        if launcher.wait is not None:
            launcher.wait(run)  # the process is gone before the next trial starts
        value = _best_value(seen.results, seen.evals, metric,
                            self.state["direction"] == "maximize")
        status = seen.results.get("status")
        if status == "stopped" and entry["state"] != "pruning" and stopped_by_server(run):
            mark_interrupted(run)  # trained again (from its checkpoint, if any) on restart
            status = "interrupted"
        if entry["state"] == "pruning":
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            entry["state"] = "pruned"
        elif status == "stopped" and getattr(self, "_cancel", lambda: False)():
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            entry["state"] = "cancelled"  # cut short by the user's stop: not a score
        elif status == "interrupted":
            entry["state"] = "interrupted"  # resumed from its checkpoint (see _reattach)
            self._save()
            return "interrupted"
        elif value is not None and status in ("completed", "stopped"):
            self.study.tell(trial, value)
            entry["state"] = "complete"
        else:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            entry["state"] = "failed"
        entry.update(value=value, evaluations=len({e.get("step") for e in seen.evals}),
                     seconds=(seen.results.get("timing") or {}).get("train_seconds"))
        self._save()
        log(f"trial {trial.number}: {entry['state']}, best validation {metric} "
            f"{'n/a' if value is None else f'{value:.4f}'} after "
            f"{plural(entry['evaluations'], 'evaluation')}")
        return entry["state"]

    def _reattach(self, launcher: Launcher, log) -> None:
        """Trials a stopped or restarted process left running: follow them again; one whose
        worker died (interrupted) resumes from its checkpoint, once."""
        import optuna

        # live Trial objects (report / should_prune) for the frozen records of the journal
        running = {t.number: optuna.trial.Trial(self.study, t._trial_id)
                   for t in self.study.get_trials(deepcopy=False)
                   if t.state == optuna.trial.TrialState.RUNNING}
        for number, trial in running.items():
            entry = self.state["trials"].get(str(number))
            found = launcher.find(f"trial-{number}") if entry is None and getattr(
                launcher, "find", None) else None
            if entry is None and found is not None:
                # submitted, but the process died before it recorded the run: follow it
                entry = self.state["trials"][str(number)] = {"run": str(found.root),
                                                             "state": "running"}
                self._save()
            if entry is None:  # asked but never submitted: nothing trained, so it is not
                # one of the trials the user asked for (nor a row of the table); its settings
                # (the first trial's are the user's own) are the next trial's
                frozen = self.study.get_trials(deepcopy=False)[number]
                settings = {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                if settings:
                    self.study.enqueue_trial(settings)
                self.state.setdefault("never_ran", []).append(number)
                self._save()
                continue
            run = RunPaths(Path(entry["run"]))
            if (read_results(run.results) or {}).get("status") == "stopped" and \
                    entry["state"] != "pruning" and stopped_by_server(run):
                mark_interrupted(run)  # the server's shutdown stopped it: train it again
            for _ in range(2):
                if (read_results(run.results) or {}).get("status") == "interrupted":
                    if entry["state"] == "pruning":
                        break  # it was being pruned: no need to train it further
                    log(f"trial {number}: resuming after a restart")
                    launcher.resume(run)
                if self._watch(trial, run, launcher, log) != "interrupted":
                    break
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                entry["state"] = "failed"
                self._save()

    def _final(self, launcher: Launcher, log) -> None:
        """The best trial's settings as a normal run, the only one that scores the test split.
        It is trained again only when the best trial changed or its last attempt did not
        complete; a final run a killed process left behind is followed, not restarted."""
        try:
            best = self.study.best_trial
        except ValueError:
            log("No trial finished: nothing to choose.")
            return
        final = self.state.get("final") or {}
        if final.get("trial") == best.number and final.get("status") == "completed":
            return
        name = f"best-trial-{best.number}"
        previous = Path(self.state["final_run"]) if self.state.get("final_run") else None
        results = read_results(previous / "results.json") if previous else None
        if previous is not None and previous.name == name and results is None:
            run = RunPaths(previous)  # still training, started by an earlier process
        elif previous is not None and previous.name == name and (
                results or {}).get("status") == "interrupted":
            run = RunPaths(previous)
            launcher.resume(run)
        else:
            config = configure(self.base, best.params, trial=False)
            run = launcher.submit(config, name)
            self.state["final_run"] = str(run.root)
            self._save()
            log(f"training the chosen configuration (trial {best.number}) once more as a "
                "normal run: trials keep no model and never score the test split")
        seen = follow(run)
        self.state["final"] = {"trial": best.number, "run": str(run.root),
                               "status": seen.results.get("status"),
                               "validation": _best_value(
                                   seen.results, seen.evals, self.metric,
                                   self.state["direction"] == "maximize"),
                               "test": (seen.results.get("test") or {}).get(self.metric)}
        self._save()

    # -- reading
    def summary(self) -> dict:
        """Trials with their settings, state and validation value, the best so far after each,
        the importance of each setting (Optuna's, once two trials completed) and the chosen
        run with its single test score."""
        import optuna

        rows, best = [], None
        sign = 1 if self.state["direction"] == "maximize" else -1
        never = set(self.state.get("never_ran", []))
        for t in sorted(self.study.get_trials(deepcopy=False), key=lambda t: t.number):
            if t.number in never:
                continue
            value = t.value if t.state == optuna.trial.TrialState.COMPLETE else None
            if value is not None and (best is None or sign * value > sign * best):
                best = value
            entry = self.state["trials"].get(str(t.number), {})
            rows.append({"trial": t.number, "state": t.state.name.lower(), "value": value,
                         "last_reported": max(t.intermediate_values.items())[1]
                         if t.intermediate_values else None,
                         "best_so_far": best, "params": t.params,
                         "run": entry.get("run"), "seconds": entry.get("seconds")})
        complete = [t for t in self.study.get_trials(deepcopy=False)
                    if t.state == optuna.trial.TrialState.COMPLETE]
        importance = {}
        # too few completed trials, or all on the same score, and the importances say
        # nothing: left out (the view says why)
        if len(complete) >= MIN_IMPORTANCE_TRIALS and len({t.value for t in complete}) >= 2:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    importance = {k: round(float(v), 4) for k, v in
                                  optuna.importance.get_param_importances(self.study).items()}
            except (ValueError, RuntimeError):
                importance = {}
        return {"metric": self.metric, "direction": self.state["direction"], "trials": rows,
                "importance": importance, "completed": len(complete),
                "importance_needs": MIN_IMPORTANCE_TRIALS, "final": self.state.get("final"),
                "final_run": self.state.get("final_run"),
                "stopped": bool(self.state.get("stopped")),
                "minutes": round(self.state["minutes"], 2)}


def stopped_by_server(run: RunPaths) -> bool:
    """True when the run was stopped by its server shutting down (JobManager.shutdown marks
    the runs it stops), not by a person or a pruner."""
    return (run.root / "SHUTDOWN").exists()


MIN_IMPORTANCE_TRIALS = 5  # completed trials before "how much each setting mattered"


def warmup_evaluations(base: RunConfig | None) -> int:
    """Evaluations a trial gets before any pruner may stop it: a third of its planned
    evaluations (its fair share of training), at least 2."""
    if base is None:
        return 2
    t = base.training
    planned = int((t.evals_per_epoch or 4) * (t.epochs or 3))
    return max(2, -(-planned // 3))


def _pruner(name: str, warmup: int = 2):
    """median: stop a trial whose score is below the median of earlier trials at the same
    point of training (after two trials, and only after `warmup` evaluations: a third of its
    training); halving: successive halving; below:X: stop a trial still under X from then on;
    none."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    if name.startswith("below:"):
        try:
            return optuna.pruners.ThresholdPruner(lower=float(name[6:]),
                                                  n_warmup_steps=warmup)
        except ValueError:
            pass
    raise FinetunerError(f"Unknown pruner '{name}'.", "Choose median, halving, none or "
                         "below:X (stop trials still under X from half an epoch of training on).",
                         code="bad_setting")


def _best_value(results: dict, evals: list[dict], metric: str,
                higher: bool = True) -> float | None:
    """The trial's objective: validation `metric` at its kept checkpoint (else the best
    evaluation's)."""
    value = (results.get("validation") or {}).get(metric)
    if value is None:
        scored = [(e.get("validation") or {}).get(metric) for e in evals]
        scored = [v for v in scored if v is not None]
        value = (max(scored) if higher else min(scored)) if scored else None
    return None if value is None else float(value)


def _params_text(params: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in params.items())
