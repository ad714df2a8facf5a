"""Experiment tracking (finetuner.training.trackers): one real worker run on the tiny random BERT
that reports to TensorBoard, MLflow and trackio, read back with each tracker's own reader
(EventAccumulator, MlflowClient on the file store, trackio's SQLiteStorage), with every
network call of the worker refused and recorded; nothing is reported by default; a missing
library is one sentence before anything runs."""

from __future__ import annotations

import os

import pytest
from conftest import run_worker_here, write_csv

from finetuner.config import RunConfig, TrainingConfig
from finetuner.errors import ConfigError, FinetunerError
from finetuner.runs import create_run, read_events
from finetuner.server.jobs import JobManager
from finetuner.training import trackers, tracking

ALL = ["tensorboard", "mlflow", "trackio"]
needs_all = pytest.mark.skipif(bool(tracking.missing(ALL)),
                               reason="pip install -r requirements-trackers.txt")

# Loaded by the worker at start-up (Python imports `sitecustomize` from its path): every
# connection or name lookup beyond this machine is refused and written down.
NETWORK_GUARD = '''
import os
import socket

_LOG = os.environ.get("FINETUNER_TEST_NET_LOG")


def _local(host):
    host = str(host)
    return host in ("", "localhost", "::1", "0.0.0.0") or host.startswith("127.")


def _refuse(what):
    with open(_LOG, "a") as fh:
        fh.write(what + "\\n")
    raise OSError("network blocked by tests/test_trackers.py: " + what)


if _LOG:
    _connect, _connect_ex, _getaddrinfo = (socket.socket.connect, socket.socket.connect_ex,
                                           socket.getaddrinfo)

    def connect(self, address):
        if self.family != getattr(socket, "AF_UNIX", None) and not _local(address[0]):
            _refuse(f"connect {address}")
        return _connect(self, address)

    def connect_ex(self, address):
        if self.family != getattr(socket, "AF_UNIX", None) and not _local(address[0]):
            _refuse(f"connect_ex {address}")
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kw):
        if host is not None and not _local(host):
            _refuse(f"getaddrinfo {host}")
        return _getaddrinfo(host, *args, **kw)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    socket.getaddrinfo = getaddrinfo
'''


def easy_rows(n=96):
    return [{"text": ("good great fine " if i % 2 else "bad awful poor ") + f"item {i}",
             "label": "pos" if i % 2 else "neg"} for i in range(n)]


def config(tmp_path, tiny_model, **training) -> RunConfig:
    data = write_csv(tmp_path / "train.csv", easy_rows())
    return RunConfig.from_dict({
        "data": {"train_file": str(data)},
        "model": {"name_or_path": str(tiny_model)},
        "training": {"epochs": 2, "batch_size": 16, "learning_rate": 3e-3,
                     "evals_per_epoch": 2, "train_eval_samples": 32, "checkpoints": False,
                     **training},
    })


@pytest.fixture(scope="module")
def reported(tmp_path_factory, tiny_model):
    """One run reporting to all three trackers, in a worker that may not use the network;
    a saved hub token tempts trackio to ask the hub who the user is."""
    if tracking.missing(ALL):
        pytest.skip("pip install -r requirements-trackers.txt")
    tmp = tmp_path_factory.mktemp("trackers")
    guard = tmp / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NETWORK_GUARD)
    hf_home = tmp / "hf"
    hf_home.mkdir()
    (hf_home / "token").write_text("hf_" + "x" * 34)
    net_log = tmp / "network.log"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "TRACKIO_", "HF_HUB_OFFLINE"))}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(guard), env.get("PYTHONPATH")])),
               HF_HOME=str(hf_home), FINETUNER_TEST_NET_LOG=str(net_log))
    run = create_run(tmp / "runs", config(tmp, tiny_model, report_to="tensorboard,mlflow,trackio"))
    manager = JobManager(env=env, warm=True)
    manager.start(run)
    results = manager.wait(run, timeout=240)
    return run, results, net_log


@needs_all
def test_the_run_completes_offline_and_says_where_it_reported(reported):
    run, results, net_log = reported
    assert results["status"] == "completed", (results, run.log.read_text()[-3000:])
    assert not net_log.exists(), net_log.read_text()  # not one connection, not one lookup
    events, _ = read_events(run.events)
    assert not [e for e in events if e["type"] == "warning"], run.log.read_text()[-3000:]
    where = results["trackers"]
    root = run.root / "trackers"
    assert where["tensorboard"]["logdir"] == str(root / "tensorboard")
    assert where["mlflow"]["tracking_uri"] == (root / "mlruns").resolve().as_uri()
    assert where["trackio"]["dir"] == str(root / "trackio")
    assert (run.model / "config.json").exists()


@needs_all
def test_tensorboard_event_files_hold_the_loss_the_validation_curve_and_the_verdict(reported):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    run, results, _ = reported
    acc = EventAccumulator(str(run.root / "trackers" / "tensorboard"),
                           size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert [s.value for s in acc.Scalars("train/loss")]  # transformers' own callback
    evals = [e for e in read_events(run.events)[0] if e["type"] == "eval"]
    curve = [(s.step, round(s.value, 5)) for s in acc.Scalars("validation/macro_f1")]
    assert curve == [(e["step"], round(e["validation"]["macro_f1"], 5)) for e in evals]
    assert len(curve) >= 2
    test = acc.Scalars("test/accuracy")
    assert [round(s.value, 5) for s in test] == [round(results["test"]["accuracy"], 5)]
    verdict = make_ndarray(acc.Tensors("verdict_text/text_summary")[0].tensor_proto)
    assert results["diagnosis"]["title"] in verdict.item().decode()
    assert "finetuner/config/text_summary" in tags["tensors"]
    assert "args/text_summary" in tags["tensors"]  # the Trainer's arguments, from transformers


@needs_all
def test_mlflow_file_store_holds_params_curves_test_metrics_and_the_verdict(reported,
                                                                           monkeypatch):
    from mlflow.tracking import MlflowClient

    run, results, _ = reported
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3.7+ asks readers, too
    where = results["trackers"]["mlflow"]
    client = MlflowClient(tracking_uri=where["tracking_uri"])
    record = client.get_run(where["run_id"])
    assert record.info.status == "FINISHED" and record.info.run_name == run.id
    params = record.data.params
    assert float(params["learning_rate"]) == 3e-3  # TrainingArguments, from transformers
    assert float(params["training.learning_rate"]) == 3e-3  # finetuner's own config
    assert params["training.report_to"] == "tensorboard,mlflow,trackio"
    assert params["data.train_file"] == "train.csv"  # a file by its name, never a path
    assert int(params["run.batch_size"]) == 16
    evals = [e for e in read_events(run.events)[0] if e["type"] == "eval"]
    history = client.get_metric_history(where["run_id"], "validation/macro_f1")
    assert sorted((m.step, round(m.value, 5)) for m in history) == [
        (e["step"], round(e["validation"]["macro_f1"], 5)) for e in evals]
    assert client.get_metric_history(where["run_id"], "loss")  # the Trainer's curve
    assert record.data.metrics["test/accuracy"] == pytest.approx(results["test"]["accuracy"])
    assert record.data.tags["verdict"] == results["diagnosis"]["verdict"]
    assert record.data.tags["verdict_title"] == results["diagnosis"]["title"]
    text = client.download_artifacts(where["run_id"], "verdict_text.md")
    assert results["diagnosis"]["title"] in open(text).read()


@needs_all
def test_trackio_local_store_holds_config_curves_test_metrics_and_the_verdict(reported,
                                                                               monkeypatch):
    run, results, _ = reported
    import trackio.sqlite_storage as storage

    # trackio reads its folder once, when imported; point this process's reader at the run's
    monkeypatch.setattr(storage, "TRACKIO_DIR", run.root / "trackers" / "trackio")
    store = storage.SQLiteStorage
    assert store.get_runs(tracking.PROJECT) == [run.id]
    logs = store.get_logs(tracking.PROJECT, run.id)
    assert [row["train/loss"] for row in logs if "train/loss" in row]  # the Trainer's
    evals = [e for e in read_events(run.events)[0] if e["type"] == "eval"]
    curve = [(row["train/global_step"], round(row["validation/macro_f1"], 5))
             for row in logs if "validation/macro_f1" in row]
    assert curve == [(e["step"], round(e["validation"]["macro_f1"], 5)) for e in evals]
    final = [row for row in logs if "test/accuracy" in row]
    assert final and final[-1]["test/accuracy"] == pytest.approx(results["test"]["accuracy"])
    assert final[-1]["verdict"] == results["diagnosis"]["verdict"]
    assert results["diagnosis"]["title"] in final[-1]["verdict_text"]["_value"]
    cfg = store.get_run_config(tracking.PROJECT, run.id)
    assert cfg["finetuner/training.learning_rate"] == 3e-3 and cfg["learning_rate"] == 3e-3
    assert cfg["_Username"] is None  # never asked the hub


def test_report_to_is_a_checked_list_and_empty_by_default():
    assert TrainingConfig().report_to == []
    assert TrainingConfig(report_to=" TensorBoard,mlflow,,mlflow").report_to == [
        "tensorboard", "mlflow"]
    assert TrainingConfig(report_to="none").report_to == []
    cfg = RunConfig.from_dict({"training": {"report_to": "trackio"}})
    assert RunConfig.from_dict(cfg.to_dict()) == cfg and cfg.training.report_to == ["trackio"]
    with pytest.raises(ConfigError, match="Unknown tracker 'wandb'.*tensorboard, mlflow or "
                                          "trackio"):
        TrainingConfig(report_to=["wandb"])


def test_the_default_config_reports_nowhere(tmp_path, tiny_model):
    from finetuner.runs import EventWriter
    from finetuner.training import loop as training

    run = create_run(tmp_path / "runs", config(tmp_path, tiny_model))
    ctx = training.Context(run=run, config=run.load_config(), events=EventWriter(run.events),
                           should_stop=lambda: False)
    assert trackers.Reporter.open(ctx) is None
    args = training.training_args(ctx, total_steps=4, amp=None, bs=16, lr=1e-3)
    assert args.report_to == [] or args.report_to == ["none"]
    assert not (run.root / "trackers").exists()


def test_a_missing_library_is_one_sentence_before_anything_runs(tmp_path, tiny_model,
                                                                monkeypatch, capsys):
    from finetuner.__main__ import main

    monkeypatch.setattr(tracking, "installed", lambda module: module != "mlflow")
    sentence = "--report-to mlflow needs the mlflow package: pip install -r " \
               "requirements-trackers.txt."
    with pytest.raises(FinetunerError) as caught:
        tracking.check(["tensorboard", "mlflow"])
    assert caught.value.message == sentence and caught.value.code == "tracker_missing"
    # the command line refuses before it starts a worker
    data = write_csv(tmp_path / "train.csv", easy_rows())
    out = tmp_path / "cli-run"
    assert main(["train", "--data", str(data), "--model", str(tiny_model), "--report-to",
                 "tensorboard,mlflow", "--output", str(out), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("Error: " + sentence)
    assert not out.exists()
    # a worker (the web app's runs, comparisons and search trials) fails first of all
    run = create_run(tmp_path / "runs", config(tmp_path, tiny_model, report_to="mlflow"))
    results = run_worker_here(run.root)
    assert results["status"] == "failed" and results["error"]["code"] == "tracker_missing"
    assert results["error"]["message"] == sentence
    states = [e.get("state") for e in read_events(run.events)[0] if e["type"] == "status"]
    assert "preparing" not in states and not (run.root / "trackers").exists()


def test_a_failing_tracker_is_a_warning_and_the_training_goes_on(tmp_path):
    from finetuner.runs import EventWriter, RunPaths

    run = RunPaths(tmp_path)
    events = EventWriter(run.events)
    reporter = trackers.Reporter(run, ["mlflow"], events)

    def broken(*_args):
        raise RuntimeError("tracking server unreachable")

    reporter._log_mlflow = broken
    reporter.on_event({"type": "eval", "step": 4, "validation": {"macro_f1": 0.5},
                       "train": {}})
    assert reporter.active == []
    warning = [e for e in read_events(run.events)[0] if e["type"] == "warning"]
    assert len(warning) == 1 and warning[0]["tracker"] == "mlflow"
    assert "tracking server unreachable" in warning[0]["message"]
    results = {"status": "completed", "test": {"accuracy": 1.0}}
    reporter.report(results)  # nothing raises, nothing is reported
    assert results["trackers"] == {} and reporter.closed


def test_an_error_in_a_trackers_trainer_callback_switches_that_tracker_off(tmp_path):
    from transformers import TrainerCallback, TrainerControl, TrainerState

    from finetuner.runs import EventWriter, RunPaths

    class Broken(TrainerCallback):
        def on_log(self, args, state, control, **kw):
            raise OSError("No space left on device")

    run = RunPaths(tmp_path)
    reporter = trackers.Reporter(run, ["tensorboard", "trackio"], EventWriter(run.events))
    callback = trackers.guarded(Broken(), "tensorboard", reporter)
    assert callback.on_log(None, TrainerState(), TrainerControl(), logs={"loss": 1.0}) is None
    assert callback.on_log(None, TrainerState(), TrainerControl(), logs={}) is None  # off now
    assert reporter.active == ["trackio"]
    warning = [e for e in read_events(run.events)[0] if e["type"] == "warning"]
    assert [w["tracker"] for w in warning] == ["tensorboard"]
    assert "No space left on device" in warning[0]["message"]
