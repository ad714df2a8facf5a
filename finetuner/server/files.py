"""Who may use which file in Gradio's upload cache.

Gradio keeps every upload in one cache folder shared by all users, in a sub-folder named by a
hash of the content, and serves any file in that folder to anyone who names it. So a path is
no proof of anything: `FileRegistry` remembers who uploaded each file, and hands downloads out
as per-user, short-lived copies inside the cache (`<cache>/finetuner-dl/<user>/<run>-<random>/`)
that the web app's guard serves only to their owner, until they expire or their run is deleted.

One registry per server process, created by the app and owned by the `Studio`; nothing here is
kept on disk, so after a restart users upload again and get fresh download links. Nothing in
the cache is kept for ever: uploads go after FINETUNER_UPLOAD_TTL_S (gradio's `delete_cache`,
which also clears them at shutdown; a run keeps its own copy of its data), download copies
after FINETUNER_DOWNLOAD_TTL_S, and `close` removes this process's copies at shutdown.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from finetuner.english import plural
from finetuner.errors import FinetunerError
from finetuner.naming import user_key

DEFAULT_TTL_S = 3600.0
DEFAULT_UPLOAD_TTL_S = 86400.0  # uploads (gradio deletes them, see `cache_policy`)
ORPHAN_AGE_S = 86400.0  # download folders nobody in this process knows about (an old run)


def gradio_cache_dir() -> Path:
    """The folder Gradio keeps uploads in and serves files from (gradio.utils.get_upload_folder)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def _real(path: str | os.PathLike) -> str:
    return os.path.realpath(os.path.abspath(os.fspath(path)))


@dataclass
class _Share:
    user: str
    run_id: str | None
    folder: str
    created: float
    source: str
    stamp: tuple[int, int]


class FileRegistry:
    """Uploads belong to their uploader; download copies to the user they were made for."""

    def __init__(self, cache_dir: str | Path | None = None, ttl: float = DEFAULT_TTL_S,
                 clock=time.time, upload_ttl: float = DEFAULT_UPLOAD_TTL_S) -> None:
        self.cache_dir = Path(_real(cache_dir or gradio_cache_dir()))
        self.root = self.cache_dir / "finetuner-dl"
        self.ttl = float(ttl)
        self.upload_ttl = float(upload_ttl)
        self.clock = clock
        self._uploads: dict[str, set[str]] = {}
        self._shares: dict[str, _Share] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_env(cls, cache_dir: str | Path | None = None) -> FileRegistry:
        return cls(cache_dir, _seconds("FINETUNER_DOWNLOAD_TTL_S", DEFAULT_TTL_S),
                   upload_ttl=_seconds("FINETUNER_UPLOAD_TTL_S", DEFAULT_UPLOAD_TTL_S))

    def cache_policy(self) -> tuple[int, int]:
        """gradio's `delete_cache` (every how many seconds, files older than how many): uploads
        older than the upload TTL go, checked every hour at most."""
        age = max(1, int(self.upload_ttl))
        return max(1, min(3600, age // 4)), age

    def kept_for(self) -> str:
        """How long uploads and download copies (a loaded example is one) are kept, in words."""
        return (f"uploads are kept for {_duration(self.upload_ttl)}, a loaded example for "
                f"{_duration(self.ttl)}")

    # -- what the guard and the handlers ask
    def inside(self, path: str | os.PathLike) -> bool:
        """Whether the path lies in Gradio's cache folder (where the rules below apply)."""
        real = _real(path)
        return real == str(self.cache_dir) or real.startswith(str(self.cache_dir) + os.sep)

    def add_uploads(self, user: str, paths) -> None:
        with self._lock:
            for path in paths:
                self._uploads.setdefault(_real(path), set()).add(user)

    def uploaded_bytes(self, user: str) -> int:
        """What `user`'s uploads take in gradio's cache (counted in their disk quota from the
        moment they arrive; a file several users uploaded counts for each)."""
        with self._lock:
            paths = [p for p, owners in self._uploads.items() if user in owners]
        total = 0
        for path in paths:
            try:
                total += os.path.getsize(path)
            except OSError:
                pass
        return total

    def allowed(self, user: str, path: str | os.PathLike) -> bool:
        """Uploaded by `user`, or a live download copy made for `user`."""
        real = _real(path)
        with self._lock:
            if user in self._uploads.get(real, ()):
                return True
            share = self._shares.get(real)
            return bool(share and share.user == user
                        and self.clock() - share.created < self.ttl and os.path.exists(real))

    # -- downloads
    def share(self, user: str, source: str | os.PathLike, run_id: str | None = None,
              name: str | None = None) -> str:
        """A private copy of a server file for `user`, inside Gradio's cache (which Gradio
        serves as it is, without copying it again), that expires after the TTL; `name` is
        the file name the browser saves it under (default: the source's)."""

        source = os.fspath(source)
        st = os.stat(source)
        stamp = (st.st_size, st.st_mtime_ns)
        now = self.clock()
        self.sweep()
        with self._lock:
            for path, share in self._shares.items():  # the same file again: the same link
                if (share.user == user and share.run_id == run_id and share.source == source
                        and share.stamp == stamp and now - share.created < self.ttl / 2
                        and os.path.exists(path)
                        and Path(path).name == Path(name or source).name):
                    return path
        folder = self.root / user_key(user) / f"{run_id or 'file'}-{secrets.token_hex(12)}"
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / Path(name or Path(source).name).name
        try:
            os.link(source, dest)
        except OSError:
            shutil.copyfile(source, dest)
        with self._lock:
            self._shares[_real(dest)] = _Share(user, run_id, str(folder), now, source, stamp)
        return str(dest)

    def forget_run(self, user: str, run_id: str) -> None:
        """A deleted run's download links stop working at once."""

        with self._lock:
            gone = [p for p, s in self._shares.items() if s.user == user and s.run_id == run_id]
            folders = {self._shares.pop(p).folder for p in gone}
        base = self.root / user_key(user)
        if base.is_dir():
            folders.update(str(f) for f in base.glob(f"{run_id}-*"))
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)

    def sweep(self) -> None:
        """Delete expired download copies, and forget uploads that no longer exist."""
        now = self.clock()
        with self._lock:
            expired = [p for p, s in self._shares.items() if now - s.created >= self.ttl]
            folders = {self._shares.pop(p).folder for p in expired}
            live = {s.folder for s in self._shares.values()}
            for path in [p for p in self._uploads if not os.path.exists(p)]:
                del self._uploads[path]
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
        if not self.root.is_dir():
            return
        for user_dir in self.root.iterdir():
            for folder in user_dir.iterdir() if user_dir.is_dir() else ():
                try:
                    old = time.time() - folder.stat().st_mtime > max(self.ttl, ORPHAN_AGE_S)
                except OSError:
                    continue
                if old and str(folder) not in live:
                    shutil.rmtree(folder, ignore_errors=True)

    def start_sweeper(self, interval: float = 60.0) -> None:
        """Sweep in the background every `interval` seconds (at most every TTL)."""
        if self._thread:
            return
        every = max(0.5, min(interval, self.ttl))

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.sweep()
                except Exception:  # noqa: BLE001 - try again next time
                    pass

        self._thread = threading.Thread(target=loop, name="download-sweeper", daemon=True)
        self._thread.start()

    def stop_sweeper(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """At shutdown: stop sweeping and remove every download copy this process made (no
        link outlives the process that made it, so none would be served again)."""
        self.stop_sweeper()
        with self._lock:
            folders = {s.folder for s in self._shares.values()}
            self._shares.clear()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _duration(seconds: float) -> str:
    """'24 hours', '1 hour', '90 minutes', '3 seconds': the largest unit that says it whole
    (or rounded, beyond ten of them)."""
    for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        whole = seconds >= size and (seconds % size == 0 or seconds >= 10 * size)
        if whole or unit == "second":
            return plural(max(1, round(seconds / size)), unit)
    return ""


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not 0 < value < 1e9:  # nan, inf and a thousand years are refused too
        raise FinetunerError(f"{name}={raw!r} is not a positive number of seconds.",
                             code="bad_env")
    return value
