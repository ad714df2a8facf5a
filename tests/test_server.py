"""A shared server as users meet it: real server processes on 127.0.0.1, sign-in, isolation,
the queue, restarts (SIGKILL), a killed worker, concurrent predictions, limits, unsafe uploads.
"""

from __future__ import annotations

import html
import json
import os
import re
import signal
import statistics
import threading
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from conftest import EXAMPLES, start_app, stop_app, wait_for, write_csv
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from test_api import form

USERS = "alice:wonderland,bob:builder"
FINAL = ("completed", "failed", "stopped", "interrupted")


def text(markup) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", str(markup or "")))


def client(url, user=None, password=None) -> Client:
    return Client(url, auth=(user, password) if user else None, verbose=False)


def start_run(c: Client, tiny_model, name: str, data=EXAMPLES / "sentiment.csv",
              **settings) -> str:
    values = form(train_file=handle_file(str(data)),
                  model_choice="folder", model_path=str(tiny_model), **settings)
    message = c.predict(**values, run_name=name, api_name="/start")
    assert "Started run" in text(message) or "waiting in the queue" in text(message), message
    return text(message)


def runs(c: Client) -> dict[str, dict]:
    table = c.predict(api_name="/runs_view")[0]
    rows = [dict(zip(table["headers"], row)) for row in table["data"]]
    return {row["name"]: row for row in rows}


def wait_status(c: Client, name: str, wanted, timeout=180) -> dict:
    wanted = (wanted,) if isinstance(wanted, str) else wanted

    def reached():
        row = runs(c).get(name)
        return row if row and row["status"] in wanted else None
    return wait_for(reached, timeout, 0.5, f"run {name} to reach {wanted}")


def run_dir(home: Path, run_id: str) -> Path:
    return next(home.glob(f"users/*/runs/{run_id}"))


def worker_pid(folder: Path) -> int:
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    return [e["pid"] for e in events if e.get("state") == "starting"][-1]


def raw_call(url: str, api_name: str, data: list, cookies=None) -> tuple[str, str]:
    """Call an endpoint with hand-made JSON (what a crafted request can send)."""
    with httpx.Client(base_url=url, cookies=cookies, timeout=30) as http:
        posted = http.post(f"gradio_api/call/{api_name}", json={"data": data})
        if posted.status_code != 200:
            return "http", f"{posted.status_code} {posted.text}"
        event_id = posted.json()["event_id"]
        stream = http.get(f"gradio_api/call/{api_name}/{event_id}").text
    kind = re.findall(r"event: (\w+)", stream)[-1]
    return kind, stream


def login(url: str, user: str, password: str) -> httpx.Cookies:
    with httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post("login", data={"username": user, "password": password})
        assert answer.status_code == 200, answer.text
        return answer.cookies


# ---------------------------------------------------------------------------------- isolation


@pytest.fixture(scope="module")
def shared(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("shared") / "home"
    proc, url = start_app(home, env={"FINETUNER_AUTH": USERS,
                                     "FINETUNER_MODEL_DIRS": str(tiny_model)})
    yield url, home
    stop_app(proc)


def test_sign_in_is_required(shared):
    url, _ = shared
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do
        client(url).predict(api_name="/runs_view")
    with pytest.raises(Exception):  # noqa: B017
        client(url, "alice", "wrong").predict(api_name="/runs_view")
    with httpx.Client(base_url=url) as http:
        assert http.post("login", data={"username": "alice", "password": "nope"}
                         ).status_code == 400


def test_users_cannot_reach_each_others_runs(shared, tiny_model):
    url, home = shared
    alice, bob = client(url, "alice", "wonderland"), client(url, "bob", "builder")
    start_run(alice, tiny_model, "alice-secret", max_steps=3)
    row = wait_status(alice, "alice-secret", FINAL)
    assert row["status"] == "completed"
    run_id = row["id"]
    assert runs(bob) == {}
    for api_name, kwargs in (("/results_view", {"result_run": run_id}),
                             ("/predict", {"try_run": run_id, "try_text": "hi",
                                           "try_pair": ""}),
                             ("/open_run", {"run_pick": run_id}),
                             ("/delete_run", {"run_pick": run_id, "confirm_delete": True}),
                             ("/resume_pick", {"run_pick": run_id})):
        with pytest.raises(AppError, match="not in the list of choices"):
            bob.predict(**kwargs, api_name=api_name)
    # crafted requests: a run id forged into the dropdown, a server path as an "upload"
    cookies = login(url, "bob", "builder")
    kind, answer = raw_call(url, "results_view", [run_id], cookies)
    assert kind == "error" and "not in the list of choices" in answer
    alice_data = next(run_dir(home, run_id).glob("data/train-*"))
    fake = {"path": str(alice_data), "meta": {"_type": "gradio.FileData"}}
    values = form(train_file=fake)
    kind, answer = raw_call(url, "data_changed", list(values.values()), cookies)
    assert kind == "error" and "alice" not in answer.lower().replace("alice-secret", "")
    assert "great" not in answer  # none of alice's rows came back
    with httpx.Client(base_url=url, cookies=cookies) as http:
        model_zip = run_dir(home, run_id) / "model.zip"
        assert http.get(f"gradio_api/file={model_zip}").status_code in (403, 404)
        assert http.get(f"gradio_api/file=../{model_zip}").status_code in (403, 404)
    # alice still has everything
    label, *_ = alice.predict(try_run=run_id, try_text="lovely", try_pair="",
                             api_name="/predict")
    assert label["label"] in ("negative", "positive")
    assert (run_dir(home, run_id) / "model" / "model.safetensors").exists()
    users = sorted(p.name for p in (home / "users").iterdir())
    assert len(users) == 2 and all(not p.startswith("..") for p in users)


def test_comparisons_are_private_over_http(shared, tiny_model):
    url, home = shared
    alice = client(url, "alice", "wonderland")
    values = form(train_file=handle_file(str(EXAMPLES / "sentiment.csv")),
                  model_choice="folder", model_path=str(tiny_model), max_steps=3)
    alice.predict(**values, run_name="private-cmp", cmp_methods=["head", "full"], cmp_vary="",
                  cmp_values="", cmp_minutes=0, cmp_memory=0, api_name="/compare")
    folder = wait_for(lambda: next(home.glob("users/alice-*/groups/*/group.json"), None), 30,
                      what="the comparison's folder")
    group_id = folder.parent.name
    cookies = login(url, "bob", "builder")
    for api_name, data in (("group_view", [group_id]), ("group_stop", [group_id]),
                           ("group_delete", [group_id])):
        kind, answer = raw_call(url, api_name, data, cookies)
        assert kind == "error" or "No such comparison" in answer, answer
        assert "private-cmp" not in answer and "head-only" not in answer
    assert json.loads(next(home.glob("users/alice-*/groups/*/group.json")).read_text())[
        "status"] in ("running", "finished")  # bob stopped nothing
    # alice sees hers finish with a winner; bob's list stays empty
    wait_for(lambda: json.loads(next(home.glob(
        "users/alice-*/groups/*/group.json")).read_text())["status"] == "finished", 180,
             what="the comparison to finish")
    view = alice.predict(group_pick=group_id, api_name="/group_view")
    assert any(re.search("Winner by validation score|Best validation score, tied", text(v))
               for v in view if isinstance(v, str))
    assert not list(home.glob("users/bob-*/groups/*"))


# ---------------------------------------------------------------------------------- restarts


def test_restart_queue_killed_worker_interrupt_and_resume(tmp_path, tiny_model):
    home = tmp_path / "home"
    env = {"FINETUNER_AUTH": USERS, "FINETUNER_MAX_JOBS": "1",
           "FINETUNER_CHECKPOINT_SECONDS": "0", "FINETUNER_MODEL_DIRS": str(tiny_model)}
    proc, url = start_app(home, env=env)
    alice = client(url, "alice", "wonderland")
    start_run(alice, tiny_model, "done-before", max_steps=3)
    done = wait_status(alice, "done-before", FINAL)
    start_run(alice, tiny_model, "long", max_steps=3000, patience=0, lr=0.001)
    wait_status(alice, "long", "running")
    assert "waiting in the queue (position 1)" in start_run(alice, tiny_model, "queued",
                                                            max_steps=3, lr=0.002)
    long_dir = run_dir(home, runs(alice)["long"]["id"])
    wait_for(lambda: (long_dir / "events.jsonl").exists() and "progress" in (
        long_dir / "events.jsonl").read_text(), 60, what="the long run's first step")

    proc.send_signal(signal.SIGKILL)  # the server dies; the worker lives on
    proc.wait()
    proc, url = start_app(home, env=env)
    try:
        alice = client(url, "alice", "wonderland")
        state = runs(alice)
        assert state["done-before"]["status"] == "completed"
        assert state["long"]["status"] == "running"  # adopted, still training
        assert state["queued"]["status"] == "queued"  # still waiting its turn
        label, *_ = alice.predict(try_run=done["id"], try_text="great", try_pair="",
                                 api_name="/predict")
        assert label["label"] in ("negative", "positive")

        os.killpg(worker_pid(long_dir), signal.SIGKILL)  # the worker dies mid-run
        failed = wait_status(alice, "long", FINAL, 30)
        assert failed["status"] == "failed"
        results = json.loads((long_dir / "results.json").read_text())
        assert "killed" in results["error"]["message"]
        assert wait_status(alice, "queued", FINAL)["status"] == "completed"  # queue moved on

        start_run(alice, tiny_model, "interrupted", max_steps=3000, patience=0, lr=0.003)
        row = wait_status(alice, "interrupted", "running")
        folder = run_dir(home, row["id"])
        wait_for(lambda: any((c / "trainer_state.json").exists()
                             for c in folder.glob("checkpoints/checkpoint-*")), 90,
                 what="the first checkpoint")
        pid = worker_pid(folder)
        proc.send_signal(signal.SIGKILL)  # the machine goes down: server and worker
        os.killpg(pid, signal.SIGKILL)
        proc.wait()
        proc, url = start_app(home, env=env)
        alice = client(url, "alice", "wonderland")
        row = runs(alice)["interrupted"]
        assert row["status"] == "interrupted"
        results = json.loads((folder / "results.json").read_text())
        assert "The server stopped while this run was training" in results["error"]["message"]
        assert results["resumable"] is True
        runs(alice)  # fills this session's run list, as the Runs tab does
        message = alice.predict(run_pick=row["id"], api_name="/resume_pick")
        assert "continues from its last checkpoint" in text(message)
        wait_status(alice, "interrupted", "running")
        wait_for(lambda: re.search(r"Resuming from step \d+",
                                   (folder / "worker.log").read_text()), 60,
                 what="the resumed worker's log line")
    finally:
        stop_app(proc)


# ---------------------------------------------------------------------------------- queue, load


def test_three_trainings_queue_in_order_and_predictions_flow(tmp_path, tiny_model):
    home = tmp_path / "home"
    # 20 sessions of the one local user predict at once: allow them all (the default is 2)
    proc, url = start_app(home, env={"FINETUNER_MAX_JOBS": "1",
                                     "FINETUNER_MAX_PREDICTIONS_PER_USER": "20"})
    try:
        c = client(url)
        start_run(c, tiny_model, "warm-up", max_steps=2)
        ready = wait_status(c, "warm-up", FINAL)
        names = ["first", "second", "third"]
        for i, name in enumerate(names):
            start_run(c, tiny_model, name, max_steps=12, lr=0.001 * (i + 1))
        assert runs(c)["third"]["status"] == "queued"

        c.predict(try_run=ready["id"], try_text="warm", try_pair="", api_name="/predict")
        latencies, errors = _concurrent_predictions(url, ready["id"], 20)
        assert not errors, errors[:3]
        p50 = statistics.median(latencies)
        p95 = sorted(latencies)[int(0.95 * len(latencies)) - 1]
        print(f"\n20 concurrent predictions while training: p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms")

        for name in names:
            assert wait_status(c, name, FINAL)["status"] == "completed"
        finished = {}
        for name in names:
            folder = run_dir(home, runs(c)[name]["id"])
            events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
            finished[name] = (events[0]["time"], events[-1]["time"])
        assert finished["first"][1] <= finished["second"][0] + 0.5
        assert finished["second"][1] <= finished["third"][0] + 0.5
    finally:
        stop_app(proc)


def _concurrent_predictions(url: str, run_id: str, n: int) -> tuple[list[float], list]:
    clients = [client(url) for _ in range(n)]
    for c in clients:
        runs(c)  # each session lists its runs first, as the page does
    latencies, errors = [], []
    barrier = threading.Barrier(n)

    def one(c: Client) -> None:
        barrier.wait()
        t = time.perf_counter()
        try:
            label, *_ = c.predict(try_run=run_id, try_text="a lovely film", try_pair="",
                                 api_name="/predict")
            assert label["label"] in ("negative", "positive")
            latencies.append(time.perf_counter() - t)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return latencies, errors


# ---------------------------------------------------------------------------------- limits


def test_limits_and_unsafe_uploads_are_refused(tmp_path, tiny_model):
    home = tmp_path / "home"
    env = {"FINETUNER_MAX_UPLOAD_MB": "1", "FINETUNER_MAX_ROWS": "300",
           "FINETUNER_MAX_LENGTH": "256", "FINETUNER_MAX_EPOCHS": "5",
           "HF_ENDPOINT": "http://127.0.0.1:9"}
    proc, url = start_app(home, env=env)
    try:
        c = client(url)
        big = write_csv(tmp_path / "big.csv", [{"text": "x" * 1000 + str(i), "label": i % 2}
                                               for i in range(1500)])
        with pytest.raises(Exception, match="(?i)size|large|1 ?mb"):
            c.predict(**form(train_file=handle_file(str(big))), api_name="/data_changed")
        out = c.predict(**form(train_file=handle_file(str(EXAMPLES / "sentiment.csv"))),
                        api_name="/data_changed")
        assert "at most 300 rows per file (FINETUNER_MAX_ROWS)" in text(out[-1])
        small = write_csv(tmp_path / "small.csv", [{"text": f"nice {i}" if i % 2 else
                                                    f"bad {i}", "label": i % 2}
                                                   for i in range(60)])
        base = dict(train_file=handle_file(str(small)), model_choice="folder",
                    model_path=str(tiny_model))
        message = c.predict(**form(**base, max_length=1024), run_name="", api_name="/start")
        assert "cap of 256 tokens (FINETUNER_MAX_LENGTH)" in text(message)
        message = c.predict(**form(**base, epochs=10), run_name="", api_name="/start")
        assert "cap of 5 (FINETUNER_MAX_EPOCHS)" in text(message)

        pickled = tmp_path / "pickled.zip"
        with zipfile.ZipFile(pickled, "w") as zf:
            zf.writestr("m/config.json", "{}")
            zf.writestr("m/pytorch_model.bin", b"\x80\x04evil")
        out = c.predict(**form(model_choice="zip", model_zip=handle_file(str(pickled))),
                        api_name="/model_model_zip")
        assert "pickle weights" in text(out[-1])
        slip = tmp_path / "slip.zip"
        with zipfile.ZipFile(slip, "w") as zf:
            zf.writestr("../../outside.txt", "x")
        out = c.predict(**form(model_choice="zip", model_zip=handle_file(str(slip))),
                        api_name="/model_model_zip")
        assert "unsafe path" in text(out[-1])
        assert not list(home.rglob("outside.txt")) and not (home.parent / "outside.txt").exists()

        start_run(c, tiny_model, "to-publish", data=small, max_steps=2)
        row = wait_status(c, "to-publish", FINAL)
        c.predict(result_run=row["id"], api_name="/results_view")
        t = time.time()
        token = "hf_do_not_store_this_token_123"
        _, message = c.predict(result_run=row["id"], hub_repo="alice/model", hub_token=token,
                               hub_private=True, api_name="/publish")
        assert "not reachable" in text(message) and time.time() - t < 10
        for path in home.rglob("*"):
            if path.is_file():
                assert token.encode() not in path.read_bytes(), path
        assert token not in (home.parent / f"app-{url.rsplit(':', 1)[1].strip('/')}.log"
                             ).read_text()
    finally:
        stop_app(proc)
