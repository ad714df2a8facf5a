"""Warm starts: one waiting process that has already imported torch, transformers and the
training code forks each new training worker, so a training starts in a fraction of a second
instead of after 5-7 s of imports (most of a short run on a CPU).

`python -m finetuner.server.warmstart` is that process (the "zygote"). It reads one JSON request a
line on stdin ({"run_dir", "env", "log"}), forks, and answers {"pid"} (or {"error"}) on
stdout; it reaps its children and reports each exit as {"exit": pid, "code": code}. A child
is exactly what `finetuner.server.jobs` would have started with Popen: its own session (process
group), stdin from /dev/null, stdout and stderr to the run's worker.log, the run folder as its
working directory, the scrubbed environment of that job and nothing else, then
`finetuner.training.worker.main`. It ends when its stdin closes (the server is gone); running
workers go on and the next server adopts them, as it does for workers it started itself.

`WarmStarter` is the server's side: `spawn()` returns a process handle with Popen's `pid`,
`wait(timeout)` and `poll()`, or None when the warm process cannot start this one (still
importing, gone, or it has touched CUDA, which a forked child could not use), and the caller
starts the worker the usual way. Only single-process local workers start warm.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback

from finetuner.procs import alive as _alive

# imported before the first fork, in this order (everything a worker imports that costs time)
PRELOAD = ("torch", "transformers", "transformers.models.bert.modeling_bert",
           "transformers.models.mpnet.modeling_mpnet", "peft", "sklearn.linear_model",
           "finetuner.training.worker", "finetuner.training.loop", "finetuner.training.finishing")
REPLY_SECONDS = 10.0
# how long a training waits for a warm process that is still importing (about as long as it
# would take to start cold) before it starts cold
READY_SECONDS = 20.0


class WarmProcess:
    """A worker forked by the warm process, with the part of Popen's interface the job
    manager uses. Its exit code comes from the warm process (its parent); if that is gone
    too, the code is unknown (None) once the worker has ended."""

    def __init__(self, pid: int, starter: WarmStarter) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._starter = starter

    def poll(self) -> int | None:
        if self.returncode is None and self.pid in self._starter.exits:
            self.returncode = self._starter.exits.pop(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        deadline = None if timeout is None else time.time() + timeout
        while self.poll() is None:
            if not self._starter.alive() and not _alive(self.pid):
                return None  # its parent died before it: how it ended is not known
            left = None if deadline is None else deadline - time.time()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            self._starter.exited.wait(0.5 if left is None else min(0.5, left))
        return self.returncode


class WarmStarter:
    """The server's handle on its warm process (started on construction; it is ready a few
    seconds later, once it has imported the libraries)."""

    def __init__(self, python: str = sys.executable, env: dict | None = None,
                 log: str | None = None) -> None:
        self.exits: dict[int, int] = {}
        self.exited = threading.Event()  # set (and cleared) on every reported exit
        self._replies: list[dict] = []
        self._reply = threading.Condition()
        self._lock = threading.Lock()
        self._gone = False  # its output ended: no reply will come
        self.import_env = import_time_env(dict(os.environ if env is None else env))
        self.ready = False
        self.broken: str | None = None  # why it could not get ready (it then ends)
        self._settled = threading.Event()  # ready, broken or gone
        err = open(log, "ab") if log else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [python, "-m", "finetuner.server.warmstart"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=err, env=env, start_new_session=True)
        finally:
            if log:
                err.close()
        threading.Thread(target=self._read, daemon=True, name="warmstart-reader").start()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "exit" in msg:
                self.exits[int(msg["exit"])] = int(msg["code"])
                self.exited.set()
                self.exited.clear()
            elif "ready" in msg:
                self.ready = bool(msg["ready"])
                self.broken = msg.get("error")
                self._settled.set()
            else:
                with self._reply:
                    self._replies.append(msg)
                    self._reply.notify_all()
        self.ready = False
        self._settled.set()
        self.exited.set()  # wake every waiter: nothing more will be reported
        with self._reply:
            self._gone = True
            self._reply.notify_all()

    def wait_ready(self, timeout: float) -> bool:
        """True once it has imported everything and can fork (False: gone, broken, or still
        importing after timeout)."""
        self._settled.wait(timeout)
        return self.ready and self.alive()

    def spawn(self, run_dir: str, env: dict, log: str) -> WarmProcess | None:
        """A worker for run_dir, forked warm; None: start it the usual way."""
        if not self.ready or not self.alive() or import_time_env(env) != self.import_env:
            return None
        request = json.dumps({"run_dir": run_dir, "env": env, "log": log}) + "\n"
        with self._lock:
            try:
                self.proc.stdin.write(request.encode())
                self.proc.stdin.flush()
            except (OSError, ValueError):
                self.ready = False
                return None
            with self._reply:
                if not self._reply.wait_for(lambda: self._replies or self._gone,
                                            REPLY_SECONDS) or not self._replies:
                    self.ready = False  # a warm process that does not answer is not used
                    return None
                reply = self._replies.pop(0)
        if not reply.get("pid"):
            if reply.get("refuse"):
                self.ready = False
            return None
        return WarmProcess(int(reply["pid"]), self)

    def close(self) -> None:
        """End the warm process (the workers it started go on)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.ready = False


# environment variables the libraries read once, when imported: a job whose values differ
# from the warm process's would not get them, so it starts cold
IMPORT_TIME_PREFIXES = ("HF_", "HUGGINGFACE_", "TRANSFORMERS_", "TORCH", "PYTORCH_", "OMP_",
                        "MKL_", "KMP_", "TOKENIZERS_", "PYTHON", "LD_", "SAFETENSORS_")


def usable() -> bool:
    """Warm starts are for CPU machines: where an NVIDIA driver is present, a library may
    touch CUDA while importing, and a child forked after that cannot use the GPU (and a GPU
    training's few seconds of imports matter little)."""
    return not os.path.exists("/dev/nvidiactl")


_SHARED: dict[tuple, WarmStarter] = {}
_SHARED_LOCK = threading.Lock()


def import_time_env(env: dict) -> frozenset:
    return frozenset((k, v) for k, v in env.items() if k.startswith(IMPORT_TIME_PREFIXES))


def shared(python: str, env: dict) -> WarmStarter:
    """One warm process per interpreter and import-time environment for this whole process
    (every job manager of a server, or of a test session, forks from the same one); it ends
    with this process."""
    key = (python, import_time_env(env))
    with _SHARED_LOCK:
        starter = _SHARED.get(key)
        if starter is None or (not starter.alive() and starter.broken is None):
            if not _SHARED:
                atexit.register(close_all)
            starter = _SHARED[key] = WarmStarter(python, env=env)
        return starter


def close_all() -> None:
    with _SHARED_LOCK:
        starters = list(_SHARED.values())
        _SHARED.clear()
    for starter in starters:
        starter.close()


# -- the warm process itself


def _write(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def _child(request: dict) -> None:
    """In the forked child: become the worker of request["run_dir"]; never returns."""

    code = 1
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        fd = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.close(null)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.chdir(request["run_dir"])
        os.environ.clear()
        os.environ.update(request["env"])
        from finetuner.training import worker

        worker.quiet_environment()
        sys.argv = [worker.__file__, request["run_dir"]]
        code = worker.main([request["run_dir"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the child must never return into the loop
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _write({"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _cuda_touched() -> bool:
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def serve() -> int:
    from finetuner.training import worker

    worker.quiet_environment()
    try:
        for name in PRELOAD:
            importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - no warm starts, never a broken server
        _write({"ready": False, "error": f"{type(exc).__name__}: {exc}"})
        return 1
    if threading.active_count() > 1 or _cuda_touched():
        # forking a process with threads (or a live CUDA context) is not safe
        _write({"ready": False, "error": "threads or CUDA started while importing"})
        return 1
    _write({"ready": True})
    stdin = sys.stdin.buffer
    pending = b""
    while True:
        readable, _, _ = select.select([stdin], [], [], 0.2)
        _reap()
        if not readable:
            continue
        chunk = os.read(stdin.fileno(), 65536)
        if not chunk:
            return 0  # the server is gone
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError:
                _write({"error": "not a request"})
                continue
            if _cuda_touched():
                _write({"error": "CUDA in use", "refuse": True})
                continue
            pid = os.fork()
            if pid == 0:
                _child(request)
            _write({"pid": pid})


if __name__ == "__main__":
    sys.exit(serve())
