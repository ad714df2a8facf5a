"""A Ray cluster as the place trainings run (`FINETUNER_BACKEND=ray`, `RAY_ADDRESS`).

Each job is submitted through the Ray Jobs API (`JobSubmissionClient`) with the run id as its
submission id, the same worker command as a local job (or its torchrun form) as entrypoint, and
`entrypoint_num_cpus` / `entrypoint_num_gpus` from the job's request. The run directory is the
API here too: the studio and the cluster share `FINETUNER_HOME` (a shared volume), the worker
writes its events, results and model there, and appends its output to RUN_DIR/worker.log.
Status and restart recovery come from Ray: a restarted studio asks the cluster for each
running job by its id and follows it again. A stop writes the run's STOP file (the worker
ends cleanly, keeping its best checkpoint); Ray's own stop ends the job once the grace period
is over. The queue, the caps, sign-in and isolation are the studio's, the same on both
backends.
"""

from __future__ import annotations

import os
import shlex

from finetuner.errors import FinetunerError

TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
# what the workers get from the studio's environment (the rest of worker_env is the cluster's)
PASS_ENV = ("FINETUNER_WORKER_MAX_SECONDS", "FINETUNER_CHECKPOINT_SECONDS", "HF_HUB_OFFLINE",
            "TRANSFORMERS_OFFLINE", "HF_HOME", "PYTHONPATH", "GRADIO_ANALYTICS_ENABLED")


class RayBackend:
    """Submit, follow and stop workers on a Ray cluster."""

    def __init__(self, address: str | None = None, client=None) -> None:
        self.address = address or os.environ.get("RAY_ADDRESS", "")
        if client is not None:
            self.client = client
            return
        if not self.address:
            raise FinetunerError("FINETUNER_BACKEND=ray needs RAY_ADDRESS, the address of the "
                                 "cluster's dashboard (for example http://127.0.0.1:8265).",
                                 code="bad_env")
        try:
            from ray.job_submission import JobSubmissionClient
        except ImportError:
            raise FinetunerError("FINETUNER_BACKEND=ray needs Ray's job client.",
                                 "pip install -r requirements-cluster.txt",
                                 code="bad_env") from None
        try:
            self.client = JobSubmissionClient(self.address)
        except Exception as exc:  # noqa: BLE001 - unreachable, refused, wrong address
            raise FinetunerError(f"The Ray cluster at {self.address} cannot be reached "
                                 f"({type(exc).__name__}: {str(exc)[:200]}).",
                                 "Check RAY_ADDRESS and that the cluster's dashboard is up "
                                 "(python -m finetuner doctor).", code="bad_env") from None

    def describe(self) -> str:
        return f"Ray cluster at {self.address}"

    def submit(self, run_id: str, command: list[str], run_dir: str, env: dict,
               num_cpus: float = 1, num_gpus: float = 0) -> None:
        """The worker as a Ray job whose submission id is the run id; its output is appended
        to RUN_DIR/worker.log, as a local worker's is."""
        log = shlex.quote(os.path.join(run_dir, "worker.log"))
        entrypoint = f"cd {shlex.quote(run_dir)} && exec {shlex.join(command)} >> {log} 2>&1"
        env_vars = {k: v for k, v in env.items() if k in PASS_ENV or k.startswith(
            "FINETUNER_WORKER_")}
        kwargs = {"entrypoint_num_cpus": num_cpus}
        if num_gpus:
            kwargs["entrypoint_num_gpus"] = num_gpus
        # the request, readable in Ray's dashboard and `ray job list` next to the run id
        metadata = {"app": "finetuner", "run": run_id, "num_cpus": f"{num_cpus:g}",
                    "num_gpus": f"{num_gpus:g}"}
        self.client.submit_job(entrypoint=entrypoint, submission_id=run_id,
                               runtime_env={"env_vars": env_vars}, metadata=metadata,
                               **kwargs)

    def status(self, run_id: str) -> str | None:
        """PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED; None when Ray does not know it."""
        try:
            return str(self.client.get_job_status(run_id).value)
        except Exception:  # noqa: BLE001 - unknown id, cluster briefly unreachable
            return None

    def stop(self, run_id: str) -> None:
        try:
            self.client.stop_job(run_id)
        except Exception:  # noqa: BLE001 - already over
            pass

    def reachable(self) -> tuple[bool, str]:
        try:
            jobs = self.client.list_jobs()
            return True, f"reachable, {len(jobs)} job(s) known"
        except Exception as exc:  # noqa: BLE001
            return False, f"not reachable ({type(exc).__name__})"


def backend_from_env(environ=None):
    """None for the local backend (the default), a RayBackend for FINETUNER_BACKEND=ray."""
    env = os.environ if environ is None else environ
    name = (env.get("FINETUNER_BACKEND") or "local").strip().lower()
    if name == "local":
        return None
    if name == "ray":
        return RayBackend(env.get("RAY_ADDRESS"))
    raise FinetunerError(f"FINETUNER_BACKEND={name!r} is not known.",
                         "Use local (the default) or ray.", code="bad_env")
