"""The HTTP guard of a shared server: a pure ASGI middleware in front of gradio's own routes.

Installed with `demo.launch(app_kwargs={"middleware": [Middleware(Guard, files=..., mode=...,
limiter=...)]})`. Gradio adds its session (OAuth), CORS and compression middleware outside
this one, so the guard sees the session and uncompressed answers. It resolves the caller as
the handlers do (`auth.scope_user`) and:

- registers the paths POST .../gradio_api/upload returns to the uploader (the handlers accept a
  file input only when it is the caller's own, see `FileRegistry.allowed`);
- files every route of gradio's table (FILE_ROUTES, CLOSED_ROUTES, OPEN_ROUTES below): routes the
  studio does not use answer 404, and so does a route nobody filed yet (a gradio upgrade);
- answers GET/HEAD .../gradio_api/file=<path> (and the older .../file/<path>, the same handler
  in gradio) for a path inside gradio's cache folder only when
  that file was uploaded by, or is a live download copy made for, the caller; otherwise 404,
  the same answer as for a file that does not exist. Other paths (gradio's own assets, which
  live outside the cache) go to gradio unchanged. So every file a handler hands to the browser
  must go through `Handlers._share` (a plain path outside the cache would be copied by gradio
  into a folder nobody owns, and its link would answer 404);
- rate-limits failed password sign-ins (POST .../login) per user name and per client address,
  answering 429 without calling the password check;
- in OAuth mode, answers 401 to uploads, files and event calls without a signed-in user, and
  403 to an account that FINETUNER_ALLOWED_USERS / FINETUNER_ALLOWED_ORGS leave out.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections import deque

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from finetuner.errors import FinetunerError
from finetuner.server.files import FileRegistry
from finetuner.ui.auth import oauth_user, scope_user

API = "/gradio_api/"
EVENT_ROUTES = ("queue/join", "queue/data", "call/", "run/", "api/")
MAX_LOGIN_BODY = 64 * 1024

# Every route gradio serves under /gradio_api/, by what the guard does with it (matched by
# prefix on the part after /gradio_api/). A route in none of these answers 404: a route a future
# gradio adds stays closed until someone reads it and files it here (tests/test_guard.py walks
# the app's route table and fails on a route that is not filed).
FILE_ROUTES = ("file=", "file/")  # serve bytes from disk: only the caller's own files
CLOSED_ROUTES = (  # the studio uses none of these; each can serve bytes or act for nobody's
    "stream/",          # media streams: a combined file by session hash, no owner check
    "run-history/",     # stored run records and their assets
    "proxy=",           # fetches another Space's URL from the server
    "deep_link",        # writes a component snapshot into the upload cache
    "component_server",  # server functions of FileExplorer / ImageEditor / Dialogue (unused)
    "process_recording", "vibe-", "undo-vibe-edit", "dev/reload", "runs",
    "monitoring", "profiling/",
)
OPEN_ROUTES = (  # the page, its events and uploads (uploads are registered to the uploader)
    "info", "config", "openapi.json", "theme.css", "heartbeat/", "startup-events",
    "upload_progress", "upload", "queue/", "call/", "run/", "api/", "cancel", "reset",
    "user", "login_check", "token", "app_id", "custom_component/",
)
# Routes outside /gradio_api/: gradio's own assets and page (files from its package folder,
# joined safely by gradio), the sign-in form; and closed ones.
ROOT_CLOSED = ("monitoring",)
ROOT_OPEN = ("", "config", "static/", "assets/", "svelte/", "favicon.ico", "theme.css",
             "robots.txt", "pwa_icon", "manifest.json", "login", "logout", "openapi.json")


def route_kind(route: str) -> str:
    """'file', 'closed' or 'open' for a path after /gradio_api/; unknown routes are closed."""
    head = route.lstrip("/")
    if head.startswith(FILE_ROUTES):
        return "file"
    if _matches(head, CLOSED_ROUTES):
        return "closed"
    return "open" if _matches(head, OPEN_ROUTES) else "closed"


def root_kind(path: str) -> str:
    """'closed' or 'open' for a path outside /gradio_api/ (relative to the app's root)."""
    head = path.lstrip("/")
    if _matches(head, ROOT_CLOSED):
        return "closed"
    return "open" if _matches(head, ROOT_OPEN) else "unknown"


def _matches(head: str, prefixes: tuple[str, ...]) -> bool:
    for prefix in prefixes:
        if prefix.endswith(("/", "=", "-")):
            if head.startswith(prefix):
                return True
        elif head == prefix or head.rstrip("/") == prefix or head.startswith(prefix + "/"):
            return True
    return False


def _env_number(name: str, default: float, cast=int):
    raw = os.environ.get(name, "").strip()
    try:
        value = cast(raw) if raw else default
    except ValueError:
        value = 0
    if not value > 0:
        raise FinetunerError(f"{name}={raw!r} is not a positive number.", code="bad_env")
    return value


class LoginLimiter:
    """At most `attempts` failed sign-ins per user name and per address in `window` seconds."""

    def __init__(self, attempts: int = 5, window: float = 300.0, clock=time.monotonic) -> None:
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[tuple[str, str], deque] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> LoginLimiter:
        return cls(_env_number("FINETUNER_LOGIN_ATTEMPTS", 5),
                   _env_number("FINETUNER_LOGIN_WINDOW_S", 300.0, float))

    def _recent(self, key: tuple[str, str], now: float) -> deque:
        times = self._failures.get(key) or deque()
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def attempt(self, name: str, address: str) -> tuple[float | None, float | None]:
        """Check and count in one step (a burst of concurrent sign-ins cannot all pass the
        check before any failure is recorded): (seconds to wait, None) when locked, else
        (None, the attempt's stamp) with the attempt counted as a failure until `settle`."""
        now = self.clock()
        with self._lock:
            wait = 0.0
            for key in (("name", name), ("addr", address)):
                times = self._recent(key, now)
                if len(times) >= self.attempts:
                    wait = max(wait, self.window - (now - times[-self.attempts]))
            if wait:
                return wait, None
            if len(self._failures) > 10_000:  # a spray of names: forget the stale ones
                for key in [k for k in self._failures if not self._recent(k, now)]:
                    del self._failures[key]
            for key in (("name", name), ("addr", address)):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
            return None, now

    def settle(self, name: str, address: str, stamp: float, status: int) -> None:
        """The answer came: a refused password (400, 401, 403) stays counted; anything else
        is taken back, and a success (200) clears the name's count."""
        if status in (400, 401, 403):
            return
        with self._lock:
            for key in (("name", name), ("addr", address)):
                times = self._failures.get(key)
                if times is not None:
                    try:
                        times.remove(stamp)
                    except ValueError:
                        pass
        if status == 200:
            self.succeeded(name)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(("name", name), None)

    def sentence(self, wait: float) -> str:
        window = (f"{self.window / 60:g} minutes" if self.window >= 120
                  else f"{self.window:g} seconds")
        return (f"Too many failed sign-ins: this server allows {self.attempts} failed sign-ins "
                f"per user name and per address within {window} (FINETUNER_LOGIN_ATTEMPTS, "
                f"FINETUNER_LOGIN_WINDOW_S). Try again in {math.ceil(wait)} seconds.")


NOT_FOUND = {"detail": "Not Found"}
MAX_EVENT_BODY = 32 << 20
# a file input (gradio FileData) whose "path" is an address: JSON structure, not text (inside a
# text value the quotes would be escaped)
REMOTE_FILE = re.compile(rb'"path"\s*:\s*"\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//|\\\\)')


async def _read_body(scope, receive, send, limit: int, too_large: str) -> bytes | None:
    """The whole request body, at most `limit` bytes; None when the client went away or the
    body was too large (then answered with 413 and `too_large`)."""
    body, more = b"", True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            await JSONResponse({"detail": too_large}, status_code=413)(scope, receive, send)
            return None
    return body


def _replay(body: bytes, receive):
    """A receive() that hands the buffered body once, then the connection's own messages."""
    sent = False

    async def again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


class Guard:
    def __init__(self, app, files: FileRegistry, mode: str = "none",
                 limiter: LoginLimiter | None = None, quota=None) -> None:
        self.app = app
        self.files = files
        self.mode = mode
        self.limiter = limiter or LoginLimiter()
        # quota(user, incoming_bytes) raises FinetunerError when an upload would take the user
        # over their disk quota (FINETUNER_MAX_DISK_GB_PER_USER); None: no quota
        self.quota = quota
        self._inflight: dict[str, int] = {}  # bytes of uploads under way, per user
        self._inflight_lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, method = scope.get("path", ""), scope.get("method", "GET")
        at = path.find(API)
        route = path[at + len(API):] if at >= 0 else None
        if route is None:
            if method == "POST" and self.mode == "password" and \
                    path.rstrip("/").endswith("/login"):
                return await self._login(scope, receive, send)
            root = (scope.get("root_path") or "").rstrip("/")
            if root_kind(path[len(root):] if root and path.startswith(root) else path) \
                    != "open":  # closed, or a root route nobody filed yet
                return await JSONResponse(NOT_FOUND, status_code=404)(scope, receive, send)
            return await self.app(scope, receive, send)

        kind = route_kind(route)
        if kind == "closed":
            return await JSONResponse(NOT_FOUND, status_code=404)(scope, receive, send)
        is_file = kind == "file"
        is_upload = route.rstrip("/") == "upload" and method == "POST"
        user = scope_user(scope, self.mode)
        if self.mode == "oauth" and user is None and (
                is_file or is_upload or route.startswith(EVENT_ROUTES)):
            refused = oauth_user(scope.get("session"))[1]
            answer = (JSONResponse({"detail": f"The Hugging Face account '{refused}' may not use "
                                    "this studio (FINETUNER_ALLOWED_USERS, "
                                    "FINETUNER_ALLOWED_ORGS)."}, status_code=403) if refused
                      else JSONResponse({"detail": "Sign in with Hugging Face to use the "
                                         "studio."}, status_code=401))
            return await answer(scope, receive, send)
        if is_file:
            if method not in ("GET", "HEAD"):
                return await JSONResponse(NOT_FOUND, status_code=404)(scope, receive, send)
            target = route[len("file="):]  # "file=" and "file/" are both five characters
            # the studio never has gradio fetch a URL for it: no server-side request forgery
            if "://" in target or target.lower().startswith(("http:", "https:", "//")):
                return await JSONResponse(NOT_FOUND, status_code=404)(scope, receive, send)
            if self.files.inside(target) and (user is None or
                                              not self.files.allowed(user, target)):
                return await JSONResponse(NOT_FOUND, status_code=404)(scope, receive, send)
        if is_upload and user is not None:
            return await self._upload(scope, receive, send, user)
        if method == "POST" and route.startswith(EVENT_ROUTES):
            return await self._event(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _event(self, scope, receive, send) -> None:
        """An event call: refused when a file input names a URL instead of an upload (gradio
        would download it into its cache, for nobody, before any handler could refuse it)."""
        body = await _read_body(scope, receive, send, MAX_EVENT_BODY, "Request too large.")
        if body is None:
            return
        if REMOTE_FILE.search(body):
            return await JSONResponse(
                {"detail": "This studio reads only files uploaded to it, not addresses: "
                           "upload the file instead."}, status_code=400)(scope, receive, send)
        return await self.app(scope, _replay(body, receive), send)

    async def _upload(self, scope, receive, send, user: str) -> None:
        """Pass the upload to gradio; register the paths it answers with to the uploader
        before the answer's last byte leaves, so the next request can use them."""
        incoming = 0
        if self.quota is not None:
            headers = dict(scope.get("headers") or [])
            try:
                incoming = int(headers.get(b"content-length", b"") or -1)
            except ValueError:
                incoming = -1
            if incoming < 0:  # chunked: its size is unknown until written, so not accepted
                return await JSONResponse(
                    {"detail": "Uploads need a Content-Length on this server (it counts "
                               "them in your disk quota)."}, status_code=411)(
                    scope, receive, send)
            with self._inflight_lock:  # uploads under way count too: no race past the check
                pending = self._inflight.get(user, 0)
                self._inflight[user] = pending + incoming
            try:  # walks the user's folder: off the event loop
                await anyio.to_thread.run_sync(self.quota, user, pending + incoming)
            except FinetunerError as exc:  # refused before gradio writes a byte
                self._release(user, incoming)
                return await JSONResponse({"detail": exc.text}, status_code=413)(
                    scope, receive, send)
        try:
            await self._pass_upload(scope, receive, send, user)
        finally:
            self._release(user, incoming)

    def _release(self, user: str, incoming: int) -> None:
        if not incoming:
            return
        with self._inflight_lock:
            left = self._inflight.get(user, 0) - incoming
            if left > 0:
                self._inflight[user] = left
            else:
                self._inflight.pop(user, None)

    async def _pass_upload(self, scope, receive, send, user: str) -> None:
        status, chunks = 0, []

        async def capture(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    try:
                        paths = json.loads(b"".join(chunks))
                    except ValueError:
                        paths = []
                    if isinstance(paths, list):
                        self.files.add_uploads(user, [p for p in paths if isinstance(p, str)])
            await send(message)

        await self.app(scope, receive, capture)

    async def _login(self, scope, receive, send) -> None:
        body = await _read_body(scope, receive, send, MAX_LOGIN_BODY,
                                "Sign-in request too large.")
        if body is None:
            return

        def replay():
            return _replay(body, receive)

        try:
            form = await Request(scope, replay()).form()
            name = str(form.get("username") or "").strip()
        except Exception:  # noqa: BLE001 - let gradio answer a malformed form
            name = ""
        address = (scope.get("client") or ("unknown",))[0]
        wait, stamp = self.limiter.attempt(name, address)
        if wait:
            return await JSONResponse({"detail": self.limiter.sentence(wait)}, status_code=429,
                                      headers={"Retry-After": str(math.ceil(wait))}
                                      )(scope, receive, send)
        status = 0

        async def watch(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, replay(), watch)
        finally:
            self.limiter.settle(name, address, stamp, status)
