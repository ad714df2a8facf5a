"""A hostile second user of a shared server, through the public HTTP API only: other users'
models as a base, a path oracle, a queue held for ever, zip bombs, pickles behind an index,
secrets in a worker's environment; plus the administrator's view and the wall-clock cap.

One real server (`python app.py`) with three password users; alice trains, bob attacks, carol
administers. Each test asserts the refusal and that nothing of alice's came back.
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
from conftest import start_app, stop_app, wait_for, write_csv
from gradio_client import handle_file
from test_api import form
from test_server import FINAL, client, run_dir, runs, start_run, text, wait_status, worker_pid

USERS = "alice:wonderland,bob:builder,carol:admin-pass"
SECRET = "hf_server_secret_never_in_a_worker"
REFUSAL = "That model folder is not available on this server."


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("attacks") / "home"
    env = {"FINETUNER_AUTH": USERS, "FINETUNER_ADMINS": "carol",
           "FINETUNER_MODEL_DIRS": str(tiny_model), "FINETUNER_MAX_MODEL_MB": "64",
           "FINETUNER_MAX_JOB_HOURS": "0.01", "FINETUNER_MAX_JOBS": "1", "HF_TOKEN": SECRET,
           "FINETUNER_CHECKPOINT_SECONDS": "0"}
    proc, url = start_app(home, env=env)
    alice = client(url, "alice", "wonderland")
    start_run(alice, tiny_model, "alice-model", max_steps=3)
    done = wait_status(alice, "alice-model", FINAL)
    assert done["status"] == "completed"
    yield {"url": url, "home": home, "proc": proc, "alice_run": done["id"]}
    stop_app(proc)


def model_message(c, **values) -> str:
    out = c.predict(**form(**values), api_name="/model_model_choice")
    return text(out[-1])


def test_no_model_folder_outside_the_allowed_list_and_one_answer_for_all(server, tiny_model):
    bob = client(server["url"], "bob", "builder")
    other = run_dir(server["home"], server["alice_run"]) / "model"
    assert (other / "model.safetensors").exists()  # the target is real
    answers = {path: model_message(bob, model_choice="folder", model_path=path)
               for path in (str(other), "/etc", "/nope", "/etc/passwd", "~", "../..",
                            str(tiny_model.parent))}
    for path, answer in answers.items():
        assert REFUSAL in answer, (path, answer)
    assert len(set(answers.values())) == 1, answers  # no oracle: every refusal reads the same
    # training on it is refused too, and nothing was created for bob
    message = bob.predict(**form(train_file=handle_file(str(Path(__file__).parent.parent /
                                                            "examples" / "sentiment.csv")),
                                 model_choice="folder", model_path=str(other)),
                          run_name="stolen", api_name="/start")
    assert REFUSAL in text(message) and "stolen" not in runs(bob)
    # the administrator's own folder list works
    assert "Model:" in model_message(bob, model_choice="folder", model_path=str(tiny_model))


def test_own_models_are_picked_from_ones_own_list(server):
    alice = client(server["url"], "alice", "wonderland")
    bob = client(server["url"], "bob", "builder")
    out = alice.predict(**form(model_choice="mine"), api_name="/model_model_choice")
    choices = [value for _, value in out[2]["choices"]]
    assert f"run:{server['alice_run']}" in choices
    out = bob.predict(**form(model_choice="mine"), api_name="/model_model_choice")
    assert out[2]["choices"] == []
    with pytest.raises(Exception, match="not in the list of choices"):
        bob.predict(**form(model_choice="mine", model_own=f"run:{server['alice_run']}"),
                    api_name="/model_model_own")


def _zip(path: Path, files: dict) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_zip_bombs_pickles_and_paths_in_messages(server, tiny_model, tmp_path):
    bob = client(server["url"], "bob", "builder")
    home = server["home"]

    def upload(archive: Path) -> str:
        return model_message(bob, model_choice="zip", model_zip=handle_file(str(archive)))

    config = (tiny_model / "config.json").read_text()
    answer = upload(_zip(tmp_path / "noweights.zip", {"m/config.json": config,
                                                      "m/vocab.txt": "a"}))
    assert "no safetensors weights" in answer and str(home) not in answer
    assert "/" not in answer.split("'")[1]  # the zip by its own name, no server folder

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m/config.json", config)
        zf.writestr("m/model.safetensors", bytes(300 << 20))  # 300 MB of zeros, ~0.3 MB zipped
    assert bomb.stat().st_size < 2 << 20
    before = _rss_mb(server["proc"].pid)
    answer = upload(bomb)
    assert "zip bomb" in answer or "FINETUNER_MAX_MODEL_MB" in answer, answer
    assert _rss_mb(server["proc"].pid) - before < 150  # never read whole into memory
    unpacked = sum(f.stat().st_size for f in home.glob("users/*/models/**/*") if f.is_file())
    assert unpacked < 1 << 20  # a refused zip leaves nothing behind

    index = json.dumps({"weight_map": {"bert.embeddings.word_embeddings.weight":
                                       "pytorch_model-00001.bin"}})
    answer = upload(_zip(tmp_path / "index.zip", {"m/config.json": config, "m/vocab.txt": "a",
                                                  "m/model.safetensors.index.json": index}))
    assert "not .safetensors" in answer, answer
    answer = upload(_zip(tmp_path / "upper.zip", {"m/config.json": config,
                                                  "m/PYTORCH_MODEL.BIN": b"\x80\x04"}))
    assert "pickle" in answer, answer
    crafted = json.loads(config) | {"num_hidden_layers": 1_000_000}
    answer = upload(_zip(tmp_path / "huge.zip", {"m/config.json": json.dumps(crafted)}))
    assert "num_hidden_layers" in answer, answer

    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        for f in tiny_model.iterdir():
            zf.write(f, f"tiny/{f.name}")
    assert "Model: good.zip" in upload(good)
    first = {p: p.stat().st_mtime_ns for p in home.glob("users/*/models/*/tiny/*")}
    assert "Model: good.zip" in upload(good)  # the same content: not unpacked again
    assert first and {p: p.stat().st_mtime_ns for p in home.glob(
        "users/*/models/*/tiny/*")} == first


def test_a_billion_steps_is_refused(server, tiny_model, tmp_path):
    bob = client(server["url"], "bob", "builder")
    small = write_csv(tmp_path / "small.csv", [{"text": f"nice {i}" if i % 2 else
                                                f"bad {i}", "label": i % 2} for i in range(60)])
    message = bob.predict(**form(train_file=handle_file(str(small)), model_choice="folder",
                                 model_path=str(tiny_model), epochs=1, max_steps=10**9,
                                 patience=0), run_name="forever", api_name="/start")
    assert "cap of 100,000 (FINETUNER_MAX_STEPS)" in text(message)
    assert "forever" not in runs(bob)


def test_time_cap_scrubbed_worker_fair_queue_and_admin(server, tiny_model):
    url, home = server["url"], server["home"]
    alice = client(url, "alice", "wonderland")
    bob = client(url, "bob", "builder")
    carol = client(url, "carol", "admin-pass")
    start_run(alice, tiny_model, "long", max_steps=50_000, patience=0, lr=0.001,
              warmup_ratio=0)
    row = wait_status(alice, "long", "running")
    folder = run_dir(home, row["id"])
    wait_for((folder / "events.jsonl").exists, 60, 0.3, "the worker's first event")
    environ = Path(f"/proc/{worker_pid(folder)}/environ").read_bytes()
    assert b"FINETUNER_AUTH" not in environ and SECRET.encode() not in environ
    assert b"wonderland" not in environ

    start_run(alice, tiny_model, "alice-second", max_steps=2, lr=0.002)
    assert "position 1" in start_run(bob, tiny_model, "bob-waits", max_steps=2, lr=0.003)
    # bob's first job goes before alice's second: round-robin between users
    assert runs(alice)["alice-second"]["status"] == "queued"

    table, _, message = bob.predict(api_name="/admin_view")
    assert "for the server's administrators" in text(message)
    assert not (table or {}).get("data") or "alice" not in json.dumps(table)
    *_, message = bob.predict(admin_pick=None, api_name="/admin_cancel")
    assert "for the server's administrators" in text(message)
    table, *_ = carol.predict(api_name="/admin_view")
    jobs = [dict(zip(table["headers"], r)) for r in table["data"]]
    owners = {j["run"]: (j["owner"], j["status"], j["queue position"]) for j in jobs}
    assert owners["long"][:2] == ("alice", "running")
    assert owners["bob-waits"] == ("bob", "queued", 1)
    assert owners["alice-second"] == ("alice", "queued", 2)
    assert not any("great" in json.dumps(j) for j in jobs)  # names and progress, no data
    alice_second = next(j["id"] for j in jobs if j["run"] == "alice-second")
    *_, message = carol.predict(admin_pick=alice_second, api_name="/admin_cancel")
    assert "Removed from the queue" in text(message)
    assert wait_status(alice, "alice-second", FINAL)["status"] == "stopped"

    # the wall-clock cap (0.01 h here) ends the long run, which keeps its best checkpoint
    ended = wait_status(alice, "long", FINAL, timeout=120)
    results = json.loads((folder / "results.json").read_text())
    assert ended["status"] == "stopped", results
    assert "FINETUNER_MAX_JOB_HOURS" in results["note"]
    assert (folder / "model" / "model.safetensors").exists()
    assert wait_status(bob, "bob-waits", FINAL)["status"] == "completed"


def test_exports_hold_no_server_paths(server, tiny_model):
    model = run_dir(server["home"], server["alice_run"]) / "model"
    import site

    forbidden = [str(server["home"]), str(tiny_model), *site.getsitepackages()]
    for path in model.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".md", ".txt"):
            body = path.read_text("utf-8", errors="replace")
            assert not [f for f in forbidden if f in body], path
    meta = json.loads((model / "finetuner.json").read_text())
    assert meta["base_model"] == tiny_model.name
    assert meta["run_id"] == server["alice_run"]


def test_stopping_the_server_stops_its_trainings(tmp_path, tiny_model):
    home = tmp_path / "home"
    proc, url = start_app(home, env={"FINETUNER_MODEL_DIRS": str(tiny_model)})
    try:
        c = client(url)
        start_run(c, tiny_model, "left-behind?", max_steps=50_000, patience=0)
        folder = run_dir(home, wait_status(c, "left-behind?", "running")["id"])
        wait_for((folder / "events.jsonl").exists, 60, 0.3, "the worker's first event")
        pid = worker_pid(folder)
    finally:
        proc.terminate()  # SIGTERM, as docker stop and systemd send
        proc.wait(30)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(
    ).split()[2:3]
    assert json.loads((folder / "results.json").read_text())["status"] in ("stopped",
                                                                          "interrupted")


def test_data_file_bombs_get_a_sentence_fast_and_small(server, tmp_path):
    """A 30 KB Parquet file of 5 million rows, 100,000 columns of CSV, JSON nested 100,000
    deep: each answered with a sentence about the file, in seconds, without the web process
    growing by more than a few tens of megabytes."""
    from test_data import deep_json, parquet_bomb, wide_csv

    bob = client(server["url"], "bob", "builder")
    pid = server["proc"].pid
    cases = [(parquet_bomb(tmp_path / "bomb.parquet"),
              "5,000,000 rows; this server reads at most 2,000,000 rows per file"),
             (wide_csv(tmp_path / "wide.csv"),
              "100,000 columns; this server reads at most 1,000 (FINETUNER_MAX_COLUMNS)"),
             (deep_json(tmp_path / "deep.json"), "nested too deeply")]
    for path, expected in cases:
        before = _rss_mb(pid)
        started = time.monotonic()
        out = bob.predict(**form(train_file=handle_file(str(path))), api_name="/data_changed")
        took = time.monotonic() - started
        answer = text(out[-1])
        assert expected in answer, (path.name, answer[:400])
        assert "Something went wrong" not in answer and "Traceback" not in answer
        assert took < 10, (path.name, took)
        assert _rss_mb(pid) - before < 100, (path.name, _rss_mb(pid) - before)


def test_caps_hold_on_every_path_that_makes_work(server, tiny_model, tmp_path):
    """The epochs cap, refused on /start, is refused on a comparison that varies epochs too;
    a search's trial cap is checked on the total. Nothing is created by a refusal."""
    bob = client(server["url"], "bob", "builder")
    small = write_csv(tmp_path / "small.csv", [{"text": f"nice {i}" if i % 2 else
                                                f"bad {i}", "label": i % 2} for i in range(60)])
    values = form(train_file=handle_file(str(small)), model_choice="folder",
                  model_path=str(tiny_model), epochs=1, max_steps=3)
    out = bob.predict(**values, run_name="ninety", cmp_methods=["full"], cmp_vary="epochs",
                      cmp_values="1, 90", cmp_minutes=0, cmp_memory=0, api_name="/compare")
    answer = " ".join(text(v) for v in out if isinstance(v, str))
    assert "90 epochs is above this server's cap of 50 (FINETUNER_MAX_EPOCHS)" in answer, answer
    out = bob.predict(**values, run_name="endless", tune_trials=10**9, tune_minutes=0,
                      tune_pruner="none", api_name="/tune")
    answer = " ".join(text(v) for v in out if isinstance(v, str))
    assert "(FINETUNER_MAX_TRIALS)" in answer, answer
    assert not list(server["home"].glob("users/bob-*/groups/*/group.json"))
    assert "ninety" not in runs(bob) and "endless" not in runs(bob)
