"""After training, in order: score, judge, save.

Score: the kept checkpoint on validation (detail for the verdict; multi-label thresholds tuned
there), the test split scored once, calibration from validation, the test predictions file.
Judge: the simple baselines, suspected label errors and the verdict, which reads validation
only. Save: the model with its card, and the zip. Report: the final metrics and the verdict to
the experiment trackers the config names (after the save: a tracker never costs the model).
A baseline or a check that fails never fails the run; after a stop only the passes that take
a second or two run.
"""

from __future__ import annotations

import json

from finetuner.evaluation import calibration, diagnostics, paired
from finetuner.models import batching
from finetuner.models.batching import StopRequested
from finetuner.results import Results
from finetuner.serving import export
from finetuner.training.callbacks import Evaluator, RunCallback
from finetuner.training.runstate import Context, Prepared


def _baselines(task: str, prepared, events) -> dict:
    """Majority / TF-IDF (classification) or memorised entities (NER) on the same splits; a
    baseline that fails never fails the run."""
    from finetuner.evaluation import baselines

    events.emit("status", state="baselines", message="Scoring simple baselines")
    try:
        return baselines.for_task(task, prepared)
    except Exception as exc:  # noqa: BLE001
        print(f"baselines skipped: {type(exc).__name__}: {exc}", flush=True)
        return {}


def _label_issues(ctx, model, prepared, feats, collate, evaluator, amp) -> dict | None:
    """Suspected label errors among the training rows; a check that fails never fails the
    run."""
    from finetuner.evaluation import labelnoise

    ctx.events.emit("status", state="label_check", message="Looking for suspected label errors")
    try:
        return labelnoise.check(model, prepared.train, feats["train"], prepared.labels, collate,
                                evaluator.batch_size, amp, ctx.run.root,
                                seed=ctx.config.training.seed, interrupt=ctx.should_stop)
    except StopRequested:
        return None
    except Exception as exc:  # noqa: BLE001
        print(f"label check skipped: {type(exc).__name__}: {exc}", flush=True)
        return None


def _validation_detail(evaluator, model) -> tuple[dict, list | None]:
    """Full validation metrics (per label, predicted shares) and outputs of the restored best
    weights."""
    if not evaluator.feats["validation"]:
        return {}, None
    try:
        return evaluator.score(model, "validation")
    except Exception:  # noqa: BLE001 - a stop during this pass: judge from the curves alone
        return {}, None


def finish(ctx: Context, p: Prepared, evaluator: Evaluator, callback: RunCallback,
           timing: dict, stopped: bool, amp) -> Results:
    """After training, in order: score (validation detail, the test split once, calibration,
    test predictions), judge (baselines, label errors, the verdict), save (model, zip)."""
    cfg = ctx.config
    if stopped:  # the job manager reads this: the worker is finishing, not stuck
        ctx.events.emit("status", state="stopping",
                        message="Stopped: keeping the best checkpoint so far")
    scored = _score(ctx, p, evaluator, callback, stopped)
    judged = _judge(ctx, p, evaluator, callback, stopped, amp, scored["val_detail"])
    best = [h for h in callback.history if h["step"] == callback.best_step]
    results = Results(
        status="stopped" if stopped else "completed", task=cfg.task,
        method=cfg.method.method, model=p.source.display, base_model=p.source.portable,
        labels=p.data.labels, metric=p.spec.primary_metric, test=scored["test"],
        validation=(best or callback.history or [{}])[-1].get("validation"),
        diagnosis=judged["diagnosis"], params=p.params, timing=timing,
        best_step=callback.best_step, early_stopped=callback.stopped_early,
        precision=batching.precision_name(amp), data=p.data.report.rows,
        baselines=judged["baselines"], calibration=scored["calibration"],
        temperature=scored["temperature"], label_issues=judged["label_issues"],
        thresholds=evaluator.options.thresholds,  # multi-label: tuned on validation
        threshold_rule=({"rule": evaluator.options.threshold_rule,
                         "check": evaluator.options.threshold_check}
                        if evaluator.options.threshold_rule else None),
        head_start=p.head_start or None)
    if not cfg.training.score_test:
        results["note"] = ("A search trial: the test split was not scored (it chooses nothing); "
                           "only the chosen configuration is tested.")
    elif scored["test"] is None:
        results["note"] = "Stopped before the end: test metrics were skipped to stop quickly."
    if not cfg.training.save_model:
        pass  # a trial: the chosen configuration is trained again, with its model
    elif callback.best_state is not None or not stopped:
        ctx.events.emit("status", state="saving", message="Saving the model")
        export.save_model(ctx.run, p.model, p.tokenizer, cfg, p.spec, results, p.data.report)
        results["model_dir"] = str(ctx.run.model)
        if cfg.training.onnx and not stopped:  # exported by the worker once results.json is
            ctx.onnx_splits = {"validation": p.data.validation, "test": p.data.test}
            results["onnx"] = {"pending": True}  # written (a stop then keeps the run)
        elif cfg.training.onnx:
            from finetuner.serving.runtimes import STOPPED

            results["onnx"] = {"error": STOPPED}
        results["model_zip"] = str(export.make_zip(ctx.run))
    else:
        results["note"] = "Stopped before the first evaluation: no model was saved."
    if ctx.reporter is not None:
        ctx.events.emit("status", state="reporting",
                        message="Reporting to " + ", ".join(cfg.training.report_to))
        ctx.reporter.report(results)  # never raises: a failing tracker is a warning event
    return results


def onnx_step(run, splits: dict, events, should_stop) -> dict:
    """ONNX export of the saved model, checked on the run's own splits. Runs after
    results.json is written; a stop skips it, and an export that fails never fails the run
    (the PyTorch model is saved already)."""
    from finetuner.serving import onnxexport

    try:
        return onnxexport.export_run(run.root, splits, events, interrupt=should_stop)
    except StopRequested:
        message = ("The ONNX export was cut short by a stop; the PyTorch model is saved and "
                   "works as usual. Export it again with Export to ONNX on the Results tab.")
    except Exception as exc:  # noqa: BLE001 - an architecture the exporters cannot take
        message = f"ONNX export failed ({type(exc).__name__}: {str(exc)[:300]}); the PyTorch " \
                  "model is saved and works as usual."
    events.emit("warning", message=message)
    return {"error": message}


def _score(ctx: Context, p: Prepared, evaluator: Evaluator, callback: RunCallback,
           stopped: bool) -> dict:
    """The kept checkpoint on validation (detail for the verdict, outputs for the
    temperature), the test split scored once, calibration, and the test predictions file."""
    feats = p.feats
    # a stop must end within seconds: the extra passes run only when they are quick
    quick = not stopped or _quick_enough(callback, len(feats["test"]), len(feats["validation"]))
    val_detail, val_outputs = _validation_detail(evaluator, p.model) if quick else ({}, None)
    test_metrics = test_outputs = calib = None
    temperature = 1.0
    if val_outputs is not None and hasattr(p.impl, "tune"):
        # settings learned on validation (multi-label thresholds) before the test is scored
        tuned = p.impl.tune(val_outputs, feats["validation"], p.data.validation, p.data.labels,
                            **evaluator.options.hooks())
        evaluator.options.update(tuned)
        p.data.report.extra.setdefault("options", {}).update(tuned)
    if val_outputs is not None and hasattr(p.impl, "paired_record"):
        # what the validation score is made of, row by row: a comparison tests two runs on it
        paired.write(ctx.run.root, p.impl.paired_record(
            val_outputs, feats["validation"], p.data.validation, p.data.labels,
            **evaluator.options.hooks()), p.data.report.extra.get("split_digest"))
    if quick and ctx.config.training.score_test:
        ctx.events.emit("status", state="testing", message="Scoring the held-out test split")
        test_metrics, test_outputs = _score_test(evaluator, p.model)
    pairs, units = calibration.pairs_for(p.spec)
    if val_outputs is not None and pairs is not None:
        calib = calibration.calibrate(
            pairs(val_outputs, feats["validation"]),
            pairs(test_outputs, feats["test"]) if test_outputs is not None else None, units)
        temperature = (calib or {}).get("temperature", 1.0)
    if test_outputs is not None:
        rows = p.impl.prediction_rows(calibration.scale_outputs(test_outputs, temperature),
                                      feats["test"], p.data.test, p.data.labels,
                                      **evaluator.options.hooks())
        _write_jsonl(ctx.run.predictions, rows)
    return {"val_detail": val_detail, "test": test_metrics, "calibration": calib,
            "temperature": temperature}


def _judge(ctx: Context, p: Prepared, evaluator: Evaluator, callback: RunCallback,
           stopped: bool, amp, val_detail: dict) -> dict:
    """Baselines, suspected label errors and the verdict. The verdict reads the validation
    split at the kept checkpoint, never the test split; its inputs are kept in
    diagnosis_input.json (recorded real runs become test fixtures)."""
    cfg, spec, prepared = ctx.config, p.spec, p.data
    counts = prepared.report.label_counts
    data_facts = {"n_train": len(prepared.train), "n_validation": len(prepared.validation),
                  "label_counts": counts.get("train") or {},
                  # chance is defined for labels to guess; entities and spans score ~0
                  "validation_counts": (counts.get("validation") or {})
                  if spec.guessable else {}}
    steps, epochs = cfg.training.max_steps, cfg.training.epochs
    last = callback.history[-1] if callback.history else {}
    if steps and last.get("step", 0) >= steps and (last.get("epoch") or 0) < 0.95 * epochs:
        data_facts["max_steps_cut"] = steps  # Max steps ended training before its epochs
    trial = not cfg.training.score_test  # a search trial: baselines score the test split
    base = _baselines(cfg.task, prepared, ctx.events) if not (stopped or trial) else {}
    data_facts["baselines"] = {b["title"]: (b.get("validation") or {}).get(spec.primary_metric)
                               for b in base.values()}
    label_issues = None
    # windows of long texts are not rows: the check reads one feature per training row
    if spec.label_errors and not (stopped or trial) and \
            len(p.feats["train"]) == len(prepared.train):
        label_issues = _label_issues(ctx, p.model, prepared, p.feats, p.collate, evaluator, amp)
        data_facts["label_issues"] = {k: label_issues[k] for k in ("checked", "flagged", "share")
                                      } if label_issues else None
    inputs = {"events": callback.history, "validation": val_detail, "data": data_facts,
              "metric_title": spec.metric_title, "method": cfg.method.method, "task": cfg.task,
              "best_step": callback.best_step, "metric": spec.primary_metric}
    diagnosis = diagnostics.from_inputs(inputs)
    (ctx.run.root / "diagnosis_input.json").write_text(json.dumps(inputs, default=float))
    return {"diagnosis": diagnosis.to_dict(), "baselines": base, "label_issues": label_issues}


def _quick_enough(callback: RunCallback, n_test: int, n_val: int) -> bool:
    """After a stop, score the test split only if it takes well under a second or two."""
    if not callback.evals or not n_val:
        return False
    per_row = callback.eval_seconds / callback.evals / max(1, n_val)
    return per_row * n_test < 1.5


def _score_test(evaluator: Evaluator, model) -> tuple[dict | None, list | None]:
    try:
        metrics, outputs = evaluator.score(model, "test")
    except StopRequested:
        return None, None
    return metrics, outputs


def _write_jsonl(path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
