"""The HTTP-level guard of a shared server, attacked through its public HTTP API only: real
server processes, gradio_client and hand-made httpx requests with a user's session cookie.

Uploads and download links belong to one user; failed sign-ins are rate-limited per name and
per address; a server on a public address without sign-in refuses to start; a hub token never
comes back. The OAuth rules (allowed users and organisations) are unit-tested with a fake
session, since OAuth cannot run offline.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from io import BytesIO

import httpx
import pytest
from conftest import EXAMPLES as EXAMPLES_DIR
from conftest import ROOT, free_port, start_app, stop_app, wait_for, write_csv
from gradio_client import Client
from test_api import form
from test_server import FINAL, login, raw_call, runs, start_run, text, wait_status

USERS = "alice:wonderland,bob:builder,carol:chess,dave:diving"
NOT_YOURS = "That file is not one of your uploads, or no longer on the server"
BANNER = "everyone who reaches this server shares one workspace"
SENTIMENT = "Film and product reviews (sentiment)"


def client(url, user=None, password=None) -> Client:
    """A client that keeps the server's file paths instead of downloading them."""
    return Client(url, auth=(user, password) if user else None, verbose=False,
                  download_files=False)


def file_path(value) -> str:
    value = value.get("value", value) if isinstance(value, dict) else value
    return value["path"] if isinstance(value, dict) else value.path

# a server that never trains in its test starts no warm training process (5-7 s of imports)
NO_TRAINING = {"FINETUNER_WARM_START": "0"}


def fetch(url: str, path: str, cookies=None, method: str = "GET",
          route: str = "file=") -> httpx.Response:
    with httpx.Client(base_url=url, cookies=cookies, timeout=30) as http:
        return http.request(method, f"gradio_api/{route}{path}")


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("guard") / "home"
    proc, url = start_app(home, env={"FINETUNER_AUTH": USERS,
                                     "FINETUNER_MODEL_DIRS": str(tiny_model)})
    yield url, home
    stop_app(proc)


# ---------------------------------------------------------------------------------- downloads


def test_download_link_belongs_to_its_owner_until_the_run_is_deleted(guarded, tiny_model):
    url, _ = guarded
    alice = client(url, "alice", "wonderland")
    start_run(alice, tiny_model, "alice-zip", max_steps=2)
    row = wait_status(alice, "alice-zip", FINAL)
    assert row["status"] == "completed", row
    out = alice.predict(result_run=row["id"], api_name="/results_view")
    link = file_path(out[6])
    assert link.endswith("model.zip") and row["id"] in link
    mine, bobs = login(url, "alice", "wonderland"), login(url, "bob", "builder")
    got = fetch(url, link, mine)
    assert got.status_code == 200
    assert "model/config.json" in zipfile.ZipFile(BytesIO(got.content)).namelist()
    assert fetch(url, link, mine, "HEAD").status_code == 200
    for method in ("GET", "HEAD"):
        refused = fetch(url, link, bobs, method)
        assert refused.status_code == 404 and b"alice" not in refused.content
    name = link.split("/")[-1]
    assert name == "alice-zip-model.zip"  # saved under the run's name
    assert fetch(url, link.replace("/" + name, "/../" + link.split("/")[-2] + "/" + name),
                 bobs).status_code == 404
    assert fetch(url, link).status_code in (401, 404)  # not signed in

    runs(alice)  # the Runs tab lists the run before it can be picked
    alice.predict(run_pick=row["id"], confirm_delete=True, api_name="/delete_run")
    assert row["id"] not in {r["id"] for r in runs(alice).values()}
    assert fetch(url, link, mine).status_code == 404  # a held link dies with its run
    assert not os.path.exists(link)


# ---------------------------------------------------------------------------------- uploads


def test_an_upload_belongs_to_its_uploader(guarded, tmp_path):
    url, _ = guarded
    secret = write_csv(tmp_path / "secret.csv", [
        {"text": f"zebra marmalade {i} " + ("lovely" if i % 2 else "awful"),
         "label": "pos" if i % 2 else "neg"} for i in range(60)])
    mine, bobs = login(url, "alice", "wonderland"), login(url, "bob", "builder")
    with httpx.Client(base_url=url, cookies=mine, timeout=30) as http:
        posted = http.post("gradio_api/upload",
                           files=[("files", ("secret.csv", secret.read_bytes(), "text/csv"))])
    assert posted.status_code == 200, posted.text
    [path] = posted.json()
    upload = {"path": path, "meta": {"_type": "gradio.FileData"}}

    kind, answer = raw_call(url, "data_changed", list(form(train_file=upload).values()), mine)
    assert kind == "complete" and "marmalade" in answer  # alice sees her own rows
    assert fetch(url, path, mine).status_code == 200  # and her own upload's preview link
    assert fetch(url, path, mine, route="file/").status_code == 200

    for api_name, key in (("data_changed", "train_file"), ("check_val_file", "val_file")):
        values = form(train_file=upload) if key == "train_file" else form(
            train_file=None, val_file=upload)
        kind, answer = raw_call(url, api_name, list(values.values()), bobs)
        assert NOT_YOURS in answer, answer[:500]
        assert "marmalade" not in answer and "zebra" not in answer
    # by either of gradio's file routes ("file=" and the older "file/"), GET or HEAD
    for route in ("file=", "file/"):
        for method in ("GET", "HEAD"):
            refused = fetch(url, path, bobs, method, route)
            assert refused.status_code == 404 and b"marmalade" not in refused.content
        assert fetch(url, path, None, "GET", route).status_code in (401, 404)
    # nor can anyone have the server fetch a URL for them (the studio never needs it)
    for target in ("http://127.0.0.1:9/x", "https://example.org/a.csv"):
        assert fetch(url, target, mine).status_code == 404
        assert fetch(url, target, mine, route="proxy=").status_code == 404
    # the routes the studio does not use are closed, for the owner too
    with httpx.Client(base_url=url, cookies=mine, timeout=30) as http:
        for route in ("stream/x/0/1/playlist-file", "run-history/records",
                      "run-history/records/e/r/assets/a", "deep_link?session_hash=x",
                      "monitoring", "vibe-code", "profiling/traces", "no-such-route/" + path):
            answer = http.get(f"gradio_api/{route}")
            assert answer.status_code == 404 and b"marmalade" not in answer.content, route
        answer = http.post("gradio_api/component_server", json={})
        assert answer.status_code == 404
        assert http.get("monitoring").status_code == 404
        assert http.get("some-future-root-route").status_code == 404
        assert http.get("config").status_code == 200  # the page itself still loads
    # a file input naming an address is refused before gradio would download it
    for remote in ("http://127.0.0.1:9/x.csv", "https://example.org/a.csv", "//host/a.csv",
                   "file:///etc/passwd"):
        kind, answer = raw_call(url, "data_changed", list(form(train_file={
            "path": remote, "meta": {"_type": "gradio.FileData"}}).values()), mine)
        assert kind == "http" and answer.startswith("400") and "upload the file" in answer, \
            (remote, kind, answer)


def test_a_loaded_example_is_shared_with_that_user_only(guarded):
    url, _ = guarded
    carol, bob = client(url, "carol", "chess"), client(url, "bob", "builder")
    out = carol.predict(**form(), example=SENTIMENT, api_name="/load_example")
    path = file_path(out[0])
    values = list(form(train_file={"path": path, "meta": {"_type": "gradio.FileData"}}).values())
    kind, answer = raw_call(url, "data_changed", values, login(url, "carol", "chess"))
    assert kind == "complete" and "ready to train" in answer
    kind, answer = raw_call(url, "data_changed", values, login(url, "bob", "builder"))
    assert NOT_YOURS in answer
    assert fetch(url, path, login(url, "bob", "builder")).status_code == 404
    assert bob  # bob's own client still works: nothing above locked him out
    assert bob.predict(api_name="/runs_view")


def _endpoints(routes):
    for route in routes:
        context = getattr(route, "include_context", None)
        if context is not None:  # fastapi's included router (gradio's /gradio_api routes)
            yield from _endpoints(context.included_router.routes)
        elif hasattr(route, "endpoint"):
            yield route.path, route.endpoint
        else:
            yield from _endpoints(getattr(route, "routes", []))


# what an endpoint that answers with bytes from disk calls (gradio 6)
FILE_SERVING = re.compile(r"FileResponse|file_response|file_fetch|get_asset_bytes|favicon\(|"
                          r"\bopen\(|read_bytes\(|await file\(")
# open routes that serve files from gradio's own package folder (its page and assets)
PACKAGE_FILES = ("/static/", "/assets/", "/svelte/", "/favicon.ico", "/pwa_icon",
                 "/gradio_api/custom_component/")


def test_every_route_is_filed_and_every_file_route_is_guarded(tmp_path):
    """Walks the route table of the studio's real app: a route a gradio upgrade adds fails
    here until it is filed in guard.py (where, until then, it answers 404)."""
    import inspect

    from gradio.routes import App

    from finetuner.server.studio import Studio
    from finetuner.ui import guard
    from finetuner.ui.app import build_app

    demo = build_app(Studio(tmp_path / "home"), auth_mode="password")
    app = App.create_app(demo)
    seen = []
    for path, endpoint in _endpoints(app.routes):
        seen.append(path)
        if path.startswith(guard.API):
            route = path[len(guard.API):]
            head = route.split("{")[0]
            filed = (head.startswith(guard.FILE_ROUTES)
                     or guard._matches(head, guard.CLOSED_ROUTES)
                     or guard._matches(head, guard.OPEN_ROUTES))
            assert filed, f"gradio route {path} is not filed in finetuner/ui/guard.py"
            kind = guard.route_kind(head)
        else:
            kind = guard.root_kind(path.split("{")[0])
            assert kind != "unknown", f"gradio route {path} is not filed in guard.py"
        try:
            source = inspect.getsource(endpoint)
        except (OSError, TypeError):
            source = ""
        if kind == "open" and FILE_SERVING.search(source):
            assert path.startswith(PACKAGE_FILES), (
                f"{path} can answer with file bytes but is open: guard it or close it")
    assert "/gradio_api/file={path_or_url:path}" in seen and "/gradio_api/file/{path:path}" in seen
    assert guard.route_kind("file/tmp/x") == guard.route_kind("file=/tmp/x") == "file"
    assert guard.route_kind("some-new-route") == "closed"


# ---------------------------------------------------------------------------------- sign-in


def _login_from(url: str, address: str, user: str, password: str,
                forwarded_for: str | None = None) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=address)
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with httpx.Client(base_url=url, transport=transport, timeout=30) as http:
        return http.post("login", data={"username": user, "password": password},
                         headers=headers)


def test_failed_sign_ins_are_rate_limited_per_name_and_per_address(guarded):
    url, _ = guarded
    # per name: failures from many addresses; a success in between resets the count
    addresses = iter(f"127.0.1.{i}" for i in range(1, 60))
    for _ in range(4):
        assert _login_from(url, next(addresses), "dave", "wrong").status_code == 400
    assert _login_from(url, next(addresses), "dave", "diving").status_code == 200
    for _ in range(5):
        assert _login_from(url, next(addresses), "dave", "wrong").status_code == 400
    locked = _login_from(url, next(addresses), "dave", "diving")  # right password, too late
    assert locked.status_code == 429
    detail = locked.json()["detail"]
    assert "5 failed sign-ins" in detail and "Try again in" in detail, detail
    assert "access-token" not in str(locked.headers)
    # per address: different names from one address
    for name in ("eve", "mallory", "trent", "peggy", "victor"):
        assert _login_from(url, "127.0.2.1", name, "guess").status_code == 400
    assert _login_from(url, "127.0.2.1", "alice", "wonderland").status_code == 429
    # others are not affected
    assert _login_from(url, "127.0.2.2", "alice", "wonderland").status_code == 200


def test_behind_a_trusted_proxy_each_real_client_counts_alone(tmp_path):
    """FINETUNER_TRUSTED_PROXIES names the proxy (here 127.0.0.9): its X-Forwarded-For is the
    client; an attacker behind it locks out only itself, and a header sent by anyone else
    is ignored."""
    home = tmp_path / "home"
    proc, url = start_app(home, env={"FINETUNER_AUTH": USERS, **NO_TRAINING,
                                     "FINETUNER_TRUSTED_PROXIES": "127.0.0.9/32"})
    try:
        proxy = "127.0.0.9"
        for name in ("eve", "mallory", "trent", "peggy", "victor"):
            assert _login_from(url, proxy, name, "guess",
                               forwarded_for="203.0.113.7").status_code == 400
        assert _login_from(url, proxy, "alice", "wonderland",
                           forwarded_for="203.0.113.7").status_code == 429
        # alice at her own address, through the same proxy: let in
        assert _login_from(url, proxy, "alice", "wonderland",
                           forwarded_for="198.51.100.2").status_code == 200
        # not the proxy: the header is ignored, the peer counts
        for i in range(5):
            assert _login_from(url, "127.0.0.10", f"x{i}", "guess",
                               forwarded_for=f"192.0.2.{i}").status_code == 400
        assert _login_from(url, "127.0.0.10", "bob", "builder",
                           forwarded_for="192.0.2.200").status_code == 429
        # nor from 127.0.0.1, whose header uvicorn would believe by default: rotating it
        # changes nothing (last: this locks 127.0.0.1 out of this server)
        for i in range(5):
            assert _login_from(url, "127.0.0.1", f"spray{i}", "guess",
                               forwarded_for=f"198.51.100.{i}").status_code == 400
        assert _login_from(url, "127.0.0.1", "spray9", "guess",
                           forwarded_for="198.51.100.99").status_code == 429
    finally:
        stop_app(proc)
    bad = subprocess.run([sys.executable, "app.py", "--home", str(tmp_path / "h2")],
                         cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "FINETUNER_TRUSTED_PROXIES": "*"})
    assert bad.returncode != 0 and "is not an IP address or network" in bad.stderr


# ---------------------------------------------------------------------------------- hub token


def test_publish_clears_the_token_even_when_the_run_is_bad(guarded):
    url, home = guarded
    alice = client(url, "alice", "wonderland")
    token = "hf_guard_secret_token_456"
    cleared, message = alice.predict(result_run=None, hub_repo="alice/model", hub_token=token,
                                     hub_private=True, api_name="/publish")
    assert cleared == "" and "No such run" in text(message)
    log = home.parent / f"app-{url.rsplit(':', 1)[1].strip('/')}.log"
    assert token not in log.read_text()


# ---------------------------------------------------------------------------------- public host


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FINETUNER_AUTH", "FINETUNER_ALLOW_ANONYMOUS", "SPACE_ID",
                        "OAUTH_CLIENT_ID", "GRADIO_SERVER_NAME")}
    return {**env, "GRADIO_ANALYTICS_ENABLED": "False", **extra}


def test_a_public_address_without_sign_in_refuses_to_start(tmp_path):
    t = time.time()
    done = subprocess.run([sys.executable, "app.py", "--host", "0.0.0.0", "--port",
                           str(free_port()), "--home", str(tmp_path / "home")], cwd=ROOT,
                          env=_clean_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "FINETUNER_AUTH" in done.stderr and "--allow-anonymous" in done.stderr, done.stderr
    assert len([line for line in done.stderr.splitlines() if line.strip()]) == 1, done.stderr
    assert time.time() - t < 30  # refused before loading torch or the models


def test_anonymous_public_server_shows_a_banner_and_download_links_expire(tmp_path):
    port = free_port()
    log = open(tmp_path / "anon.log", "wb")
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "0.0.0.0", "--port", str(port),
                             "--home", str(tmp_path / "home"), "--allow-anonymous"], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT,
                            env=_clean_env(FINETUNER_DOWNLOAD_TTL_S="3"))
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "anon.log").read_text()
            try:
                page = httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        assert BANNER in page.text or BANNER in httpx.get(url + "config").text
        assert "WARNING" in (tmp_path / "anon.log").read_text()

        c = client(url)
        path = file_path(c.predict(**form(), example=SENTIMENT, api_name="/load_example")[0])
        assert fetch(url, path).status_code == 200
        time.sleep(3.5)
        assert fetch(url, path).status_code == 404  # expired
        c.predict(**form(), example=SENTIMENT, api_name="/load_example")  # a share sweeps
        assert not os.path.exists(path)
    finally:
        stop_app(proc)


# ---------------------------------------------------------------------------------- OAuth


def _session(name: str | None, orgs=(), expires_in: float = 600) -> dict:
    if name is None:
        return {}
    return {"oauth_info": {"access_token": "x", "expires_at": time.time() + expires_in,
                           "userinfo": {"preferred_username": name, "name": name.title(),
                                        "orgs": list(orgs)}}}


def test_oauth_users_and_organisations_allowed_in(monkeypatch):
    from types import SimpleNamespace

    from finetuner.errors import FinetunerError
    from finetuner.ui import auth

    def request(session):
        return SimpleNamespace(username=None, session=session)

    monkeypatch.delenv("FINETUNER_ALLOWED_USERS", raising=False)
    monkeypatch.delenv("FINETUNER_ALLOWED_ORGS", raising=False)
    assert auth.username(request(_session("ann")), "oauth") == "hf:ann"  # no lists: anyone
    assert auth.scope_user({"session": _session("ann")}, "oauth") == "hf:ann"
    with pytest.raises(FinetunerError, match="not signed in"):
        auth.username(request(_session("ann", expires_in=-1)), "oauth")  # expired
    with pytest.raises(FinetunerError, match="not signed in"):
        auth.username(request({}), "oauth")
    assert auth.scope_user({}, "oauth") is None

    monkeypatch.setenv("FINETUNER_ALLOWED_USERS", "Ann, zed")
    monkeypatch.setenv("FINETUNER_ALLOWED_ORGS", "acme-labs")
    assert auth.username(request(_session("ann")), "oauth") == "hf:ann"
    member = _session("ben", orgs=[{"sub": "1", "preferred_username": "acme-labs",
                                    "name": "ACME Labs"}])
    assert auth.username(request(member), "oauth") == "hf:ben"
    by_name = _session("cat", orgs=[{"preferred_username": "x", "name": "Acme-Labs"}])
    assert auth.scope_user({"session": by_name}, "oauth") == "hf:cat"
    outsider = _session("dan", orgs=[{"preferred_username": "other", "name": "Other"}])
    with pytest.raises(FinetunerError, match="'dan' may not use this studio"):
        auth.username(request(outsider), "oauth")
    assert auth.oauth_user(outsider) == (None, "dan")
    assert auth.scope_user({"session": outsider}, "oauth") is None
    assert auth.scope_user({}, "none") == "local"


def _forged_cookie(session: dict, secret: str) -> dict:
    """The session cookie gradio's SessionMiddleware would set after a Hugging Face sign-in."""
    import base64
    import hashlib
    import json

    from itsdangerous import TimestampSigner

    signer = TimestampSigner(hashlib.sha256(f"{secret}-v4".encode()).hexdigest())
    value = signer.sign(base64.b64encode(json.dumps(session).encode())).decode()
    return {"session": value}


def test_oauth_server_needs_an_allowed_signed_in_user(tmp_path):
    """A Space with `hf_oauth: true`, simulated offline: the sign-in itself cannot run, so the
    test signs its own session cookies with the Space's OAuth secret, as gradio would."""
    pytest.importorskip("authlib")
    secret = "offline-test-secret"
    env = _clean_env(SYSTEM="spaces", SPACE_ID="team/studio", SPACE_HOST="team-studio.hf.space",
                     OAUTH_CLIENT_ID="client", OAUTH_CLIENT_SECRET=secret,
                     OAUTH_SCOPES="openid profile", OPENID_PROVIDER_URL="http://127.0.0.1:9",
                     FINETUNER_ALLOWED_USERS="ann", FINETUNER_ALLOWED_ORGS="acme")
    proc, url = start_app(tmp_path / "home", env={**env, **NO_TRAINING})
    try:
        ann = _forged_cookie(_session("ann"), secret)
        ben = _forged_cookie(_session("ben", orgs=[{"preferred_username": "acme"}]), secret)
        dan = _forged_cookie(_session("dan"), secret)
        def http(cookies=None) -> httpx.Client:
            return httpx.Client(base_url=url, cookies=cookies, timeout=30)

        assert http().get("/").status_code == 200  # the page (and its sign-in button) loads
        upload = [("files", ("own.csv", b"text,label\nzebra,1\nyak,0\n", "text/csv"))]
        for cookies, status in ((None, 401), (dan, 403)):
            assert http(cookies).post("gradio_api/upload", files=upload).status_code == status
            assert http(cookies).post("gradio_api/call/runs_view",
                                      json={"data": []}).status_code == status
        posted = http(ann).post("gradio_api/upload", files=upload)
        assert posted.status_code == 200
        [path] = posted.json()
        assert http(ann).get(f"gradio_api/file={path}").status_code == 200
        assert http(ben).get(f"gradio_api/file={path}").status_code == 404
        assert http().get(f"gradio_api/file={path}").status_code == 401
        kind, answer = raw_call(url, "runs_view", [], ann)
        assert kind == "complete", answer
    finally:
        stop_app(proc)


def test_nothing_stays_in_the_upload_cache(tmp_path):
    """Uploads leave gradio's cache after FINETUNER_UPLOAD_TTL_S (a user who comes back to an
    old page is told to upload again, not shown a server path) and at shutdown, with this
    server's download copies; another server's copies in the same cache are left alone.
    (The suite's own servers once left 43 GB of download copies behind in a week.)"""
    cache = tmp_path / "gradio-cache"
    other = cache / "finetuner-dl" / "someone-0000" / "run-abc"
    other.mkdir(parents=True)
    (other / "model.zip").write_bytes(b"another server's copy")
    proc, url = start_app(tmp_path / "home", env={"GRADIO_TEMP_DIR": str(cache), **NO_TRAINING,
                                                  "FINETUNER_UPLOAD_TTL_S": "3"})
    try:
        data = write_csv(tmp_path / "reviews.csv", [
            {"text": f"zebra marmalade {i} " + ("lovely" if i % 2 else "awful"),
             "label": "pos" if i % 2 else "neg"} for i in range(60)])
        with httpx.Client(base_url=url, timeout=30) as http:
            posted = http.post("gradio_api/upload",
                               files=[("files", ("reviews.csv", data.read_bytes(), "text/csv"))])
        [path] = posted.json()
        assert os.path.exists(path) and path.startswith(str(cache))
        upload = {"path": path, "meta": {"_type": "gradio.FileData"}}
        kind, answer = raw_call(url, "data_changed", list(form(train_file=upload).values()))
        assert kind == "complete" and "ready to train" in answer
        shared = file_path(client(url).predict(**form(), example=SENTIMENT,
                                               api_name="/load_example")[0])
        assert os.path.exists(shared) and "finetuner-dl" in shared
        wait_for(lambda: not os.path.exists(path), timeout=30, what="the upload to expire")
        kind, answer = raw_call(url, "data_changed", list(form(train_file=upload).values()))
        assert "no longer on the server (uploads are kept for 3 seconds, a loaded example " \
            "for 1 hour" in answer
        assert "upload it again" in answer and path not in answer and "Traceback" not in answer
    finally:
        stop_app(proc)
    assert proc.returncode is not None
    assert not os.path.exists(shared)  # this server's download copy went with it
    assert (other / "model.zip").exists()  # another server's did not
    left = [p for p in cache.rglob("*")  # (gradio leaves empty temporary files behind)
            if p.is_file() and p.stat().st_size and other not in p.parents]
    assert not left, left


# ---------------------------------------------------------------------------------- units


def test_file_inputs_must_be_the_callers_own(tmp_path):
    from finetuner.server.files import FileRegistry
    from finetuner.server.studio import Studio
    from finetuner.ui.handlers import Handlers

    cache = tmp_path / "cache"
    upload = cache / "0123abcd" / "reviews.csv"
    upload.parent.mkdir(parents=True)
    upload.write_bytes((EXAMPLES_DIR / "sentiment.csv").read_bytes())
    studio = Studio(tmp_path / "home", files=FileRegistry(cache))
    studio.files.add_uploads("alice", [str(upload)])
    h = Handlers(studio, auth_mode="password")
    try:
        mine = {"path": str(upload), "meta": {"_type": "gradio.FileData"}}
        assert "ready to train" in text(h.data_changed("alice", form(train_file=mine))["data_msg"])
        bobs = cache / "4567cdef" / "bob.csv"
        bobs.parent.mkdir()
        bobs.write_bytes(upload.read_bytes())
        studio.files.add_uploads("bob", [str(bobs)])
        assert "ready to train" in text(h.data_changed("bob", form(train_file=str(bobs)))[
            "data_msg"])
        with pytest.raises(Exception, match=NOT_YOURS):
            h.data_changed("bob", form(train_file=mine))
        for key in ("val_file", "test_file"):
            values = {**form(train_file=str(bobs)), key: mine}
            assert NOT_YOURS in text(h.check_data("bob", values)["data_msg"]), key
        assert NOT_YOURS in text(h.model_changed("bob", form(model_choice="zip",
                                                             model_zip=mine))["model_msg"])
        with pytest.raises(Exception, match=NOT_YOURS):
            next(iter(h.predict_file("bob", {"try_run": "20260101-000000-0123456789abcdef",
                                             "batch_file": mine})))
        with pytest.raises(Exception, match=NOT_YOURS):
            h.start("bob", form(train_file=mine))
        # a file handed to alice (a loaded example) is hers too, and only hers
        shared = h.load_example("alice", form(example=SENTIMENT))["train_file"]
        assert studio.files.inside(shared)
        assert "ready to train" in text(h.data_changed("alice", form(train_file=shared))[
            "data_msg"])
        with pytest.raises(Exception, match=NOT_YOURS):
            h.data_changed("bob", form(train_file=shared))
    finally:
        studio.jobs.shutdown()


def test_how_long_files_are_kept_is_said_in_words(tmp_path):
    from finetuner.errors import FinetunerError
    from finetuner.server.files import FileRegistry

    files = FileRegistry(tmp_path, ttl=3600, upload_ttl=86400)
    assert files.kept_for() == "uploads are kept for 24 hours, a loaded example for 1 hour"
    assert files.cache_policy() == (3600, 86400)  # gradio's delete_cache: (every, older than)
    files = FileRegistry(tmp_path, ttl=5400, upload_ttl=3)
    assert files.kept_for() == "uploads are kept for 3 seconds, a loaded example for 90 minutes"
    assert files.cache_policy() == (1, 3)
    for bad in ("abc", "-5", "0", "inf", "nan", "1e30"):  # refused at start, with a sentence
        for name in ("FINETUNER_UPLOAD_TTL_S", "FINETUNER_DOWNLOAD_TTL_S"):
            with pytest.MonkeyPatch.context() as env:
                env.setenv(name, bad)
                with pytest.raises(FinetunerError, match=f"{name}='{bad}' is not a positive"):
                    FileRegistry.from_env(tmp_path)


def test_download_copies_expire_and_die_with_their_run(tmp_path):
    from finetuner.server.files import FileRegistry

    now = [1000.0]
    files = FileRegistry(tmp_path / "cache", ttl=60, clock=lambda: now[0])
    source = tmp_path / "model.zip"
    source.write_bytes(b"zip")
    run = "20260101-000000-0123456789abcdef"
    link = files.share("alice", source, run)
    assert files.allowed("alice", link) and not files.allowed("bob", link)
    assert files.share("alice", source, run) == link  # the same file again: the same link
    assert files.share("bob", source, run) != link
    now[0] += 59
    assert files.allowed("alice", link)
    now[0] += 1
    assert not files.allowed("alice", link)  # expired
    files.sweep()
    assert not os.path.exists(link)
    other = files.share("alice", source, run)
    kept = files.share("alice", source, "20260101-000000-fedcba9876543210")
    files.forget_run("alice", run)
    assert not os.path.exists(other) and not files.allowed("alice", other)
    assert files.allowed("alice", kept)
    assert not files.inside(source) and files.inside(kept)


# ---------------------------------------------------------------------------------- quota


def test_the_quota_counts_uploads_and_unpacked_zips(tmp_path, tiny_model):
    """FINETUNER_MAX_DISK_GB_PER_USER=0.004 (4 MB): uploads count from the moment they arrive
    (the third 1.5 MB file is refused before gradio writes it), a model zip counts as what it
    unpacks to (a 60 MB model in a small zip is refused, nothing unpacked), and another user's
    quota is their own."""
    import random

    home = tmp_path / "home"
    proc, url = start_app(home, env={"FINETUNER_AUTH": USERS, **NO_TRAINING,
                                     "FINETUNER_MODEL_DIRS": str(tiny_model),
                                     "FINETUNER_MAX_DISK_GB_PER_USER": "0.004"})
    try:
        mine = login(url, "alice", "wonderland")
        rng = random.Random(0)

        def upload(cookies, name: str, size: int) -> httpx.Response:
            body = bytes(rng.getrandbits(8) for _ in range(size))  # distinct content each time
            with httpx.Client(base_url=url, cookies=cookies, timeout=60) as http:
                return http.post("gradio_api/upload",
                                 files=[("files", (name, body, "text/csv"))])

        assert upload(mine, "a.csv", 1_500_000).status_code == 200
        assert upload(mine, "b.csv", 1_500_000).status_code == 200
        refused = upload(mine, "c.csv", 1_500_000)
        assert refused.status_code == 413, refused.text
        assert "of your 0.004 GB on this server (FINETUNER_MAX_DISK_GB_PER_USER)" in \
            refused.json()["detail"]
        # a chunked upload (no Content-Length) cannot be counted before it is written
        daves = login(url, "dave", "diving")
        boundary = b"xyzzy"
        parts = [b"--xyzzy\r\nContent-Disposition: form-data; name=\"files\"; "
                 b"filename=\"d.csv\"\r\nContent-Type: text/csv\r\n\r\n", b"a,b\n1,2\n",
                 b"\r\n--xyzzy--\r\n"]
        with httpx.Client(base_url=url, cookies=daves, timeout=60) as http:
            chunked = http.post("gradio_api/upload", content=iter(parts), headers={
                "Content-Type": "multipart/form-data; boundary=" + boundary.decode()})
        assert chunked.status_code == 411 and "Content-Length" in chunked.json()["detail"]
        # uploads racing each other: the ones under way count, so at most two fit
        from concurrent.futures import ThreadPoolExecutor

        bodies = [bytes(rng.getrandbits(8) for _ in range(1_500_000)) for _ in range(5)]

        def send(i: int) -> int:
            with httpx.Client(base_url=url, cookies=daves, timeout=60) as http:
                return http.post("gradio_api/upload", files=[(
                    "files", (f"r{i}.csv", bodies[i], "text/csv"))]).status_code
        with ThreadPoolExecutor(5) as pool:
            codes = list(pool.map(send, range(5)))
        assert codes.count(200) <= 2 and codes.count(413) >= 3, codes
        # bob has his own quota
        assert upload(login(url, "bob", "builder"), "b.csv", 1_500_000).status_code == 200

        # carol: a model zip whose weights unpack to 60 MB
        carol = client(url, "carol", "chess")
        bomb = tmp_path / "model.zip"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in tiny_model.iterdir():
                if f.name != "model.safetensors":
                    zf.write(f, f"m/{f.name}")
            zf.writestr("m/model.safetensors", bytes(60 << 20))
        assert bomb.stat().st_size < 1 << 20
        from gradio_client import handle_file

        out = carol.predict(**form(model_choice="zip", model_zip=handle_file(str(bomb))),
                            api_name="/model_model_choice")
        answer = text(out[-1])
        assert "FINETUNER_MAX_DISK_GB_PER_USER" in answer, answer
        assert not [f for f in home.glob("users/carol-*/models/**/*") if f.is_file()]
    finally:
        stop_app(proc)


def test_concurrent_sign_ins_are_counted_before_they_are_answered():
    """A burst of sign-ins sent at once cannot all pass the check before the first failure
    is recorded: each attempt counts from the moment it is checked."""
    from finetuner.ui.guard import LoginLimiter

    now = [0.0]
    limiter = LoginLimiter(attempts=5, window=300, clock=lambda: now[0])
    stamps = []
    for _ in range(5):  # five in flight, none answered yet
        wait, stamp = limiter.attempt("alice", "203.0.113.9")
        assert wait is None
        stamps.append(stamp)
    wait, _ = limiter.attempt("alice", "203.0.113.9")
    assert wait and wait > 0  # the sixth waits
    for stamp in stamps:  # all five were wrong passwords
        limiter.settle("alice", "203.0.113.9", stamp, 400)
    assert limiter.attempt("alice", "198.51.100.1")[0]  # the name stays locked
    assert limiter.attempt("bob", "198.51.100.1")[0] is None  # nobody else is
    # an answer that is not about the password (a server error) is taken back
    now[0] = 1000.0
    wait, stamp = limiter.attempt("carol", "192.0.2.1")
    limiter.settle("carol", "192.0.2.1", stamp, 500)
    assert not limiter._recent(("name", "carol"), now[0])
