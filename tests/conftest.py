"""Shared fixtures: a tiny random BERT (about 1M parameters) and small data files."""

from __future__ import annotations

import atexit
import csv
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# With pytest-xdist, each worker (and the servers and training processes it starts, which
# inherit these) gets its share of the cores: two workers each training with as many threads
# as there are cores oversubscribe the CPU, and OpenMP's spinning threads then waste most of
# it. An explicit OMP_NUM_THREADS wins.
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
if _XDIST_WORKERS > 1:
    _share = str(max(1, (os.cpu_count() or 2) // _XDIST_WORKERS))
    os.environ.setdefault("OMP_NUM_THREADS", _share)
    os.environ.setdefault("MKL_NUM_THREADS", _share)

# The suite's servers and clients keep their uploads and downloads in a cache of their own,
# removed at the end (gradio reads GRADIO_TEMP_DIR when it is imported, so it is set here).
if not os.environ.get("GRADIO_TEMP_DIR"):
    os.environ["GRADIO_TEMP_DIR"] = tempfile.mkdtemp(prefix="finetuner-tests-gradio-")
    atexit.register(shutil.rmtree, os.environ["GRADIO_TEMP_DIR"], True)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT with the embedded model's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from finetuner.models.modeling import embedded_model_path

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=512)
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(embedded_model_path()).save_pretrained(folder)
    return folder


def write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def sentiment_rows(n: int = 120, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    good = ["great", "lovely", "superb", "wonderful", "excellent", "delightful"]
    bad = ["awful", "boring", "terrible", "dreadful", "poor", "clumsy"]
    things = ["film", "phone", "hotel", "book", "meal", "show", "game", "song"]
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        word = rng.choice(good if label == "pos" else bad)
        rows.append({"text": f"the {rng.choice(things)} number {i} was {word}", "label": label})
    return rows


@pytest.fixture
def sentiment_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "reviews.csv", sentiment_rows())


def wait_for(predicate, timeout: float = 120.0, interval: float = 0.2, what: str = ""):
    """The one waiting helper of the suite: calls `predicate` until it returns something true
    and returns that; past `timeout` seconds the test fails, naming what it waited for."""
    import time

    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for "
                                 f"{what or getattr(predicate, '__name__', 'a condition')}")
        time.sleep(interval)


def run_worker_here(run_root) -> dict:
    """The training worker's `run` in this process (its results), with the SIGTERM handler it
    installs put back afterwards."""
    import signal

    from finetuner.training import worker

    before = signal.getsignal(signal.SIGTERM)
    try:
        return worker.run(run_root)
    finally:
        signal.signal(signal.SIGTERM, before)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: Path, env: dict | None = None, timeout: float = 90.0):
    """Start `python app.py` as a real server process; returns (process, url)."""
    import subprocess
    import sys
    import time
    import urllib.request

    port = free_port()
    log = open(home.parent / f"app-{port}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--home", str(home)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})})
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited: {(home.parent / f'app-{port}.log').read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("app did not start")


def stop_app(proc) -> None:
    import signal

    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except Exception:  # noqa: BLE001
        proc.kill()


def _processes_under(base: str) -> list[tuple[int, str]]:
    """Servers, training workers and batch jobs that this test session started (their
    command lines name a folder under the session's temporary base)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().split()[2]
        except OSError:
            continue
        line = " ".join(a.decode(errors="replace") for a in args if a)
        if state != "Z" and base in line and ("finetuner" in line or "app.py" in line):
            found.append((int(proc.name), line[:200]))
    return found


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running(tmp_path_factory):
    """The suite ends with no process of its own left: a worker that outlives its server (the
    resumed 3,000-step run once trained on for minutes) skews every measurement after it."""
    import signal
    import time

    base = str(tmp_path_factory.getbasetemp())
    yield
    deadline = time.time() + 20
    left = _processes_under(base)
    while left and time.time() < deadline:
        time.sleep(0.5)
        left = _processes_under(base)
    for pid, _ in left:  # ours: started by this session's tests
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert not left, f"processes left running after the tests: {left}"


def card_recipe(model_dir: Path) -> dict:
    """Run the Usage snippet of an exported model's card (README.md), as written, on that
    folder in plain transformers; returns its namespace (model, tokenizer and, for a
    mean-pooled export, its `text_logits`)."""
    card = (Path(model_dir) / "README.md").read_text("utf-8")
    code = card.split("## Usage", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(code.replace("path/to/model", str(model_dir)), namespace)  # noqa: S102 - the card's
    return namespace


def card_logits(recipe: dict, enc) -> object:
    """A text's logits the way the card reads them (`text_logits` where the export is
    mean-pooled, else the sequence head's logits)."""
    import torch

    model = recipe["model"].eval()
    if "text_logits" in recipe:
        return recipe["text_logits"](model, enc)
    with torch.no_grad():
        return model(**enc).logits


def assert_record_scores_the_validation(run, results: dict) -> dict:
    """The run's validation record (finetuner.evaluation.paired, what a comparison's paired
    test reads)     reproduces the validation score of the kept checkpoint."""
    import numpy as np

    from finetuner.evaluation import paired

    record = paired.read(run.root)
    assert record is not None, "no validation_record.json"
    n = paired._rows(record)
    assert n > 0
    whole = float(paired.scores(record, np.ones((1, n)))[0])
    expected = results["validation"][results["metric"]]
    assert abs(whole - expected) < 2e-3, (whole, expected)
    return record
