"""Start the fine-tuning studio in the browser.

    python app.py                       # http://127.0.0.1:7860, runs kept in ~/.finetuner
    python app.py --host 0.0.0.0 --port 8080 --home /data/finetuner

Host and port also follow Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; FINETUNER_HOME sets
where uploads, runs and models live. Analytics are off and nothing is fetched at start.

On an address others can reach (anything but 127.0.0.0/8, ::1 or localhost) the studio needs a
sign-in: FINETUNER_AUTH=user:password,... (or Hugging Face OAuth in a Space). To share one
workspace with everyone who reaches the server instead, pass --allow-anonymous (or set
FINETUNER_ALLOW_ANONYMOUS=1); the page then says so in a banner.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    ap.add_argument("--home", default=os.environ.get("FINETUNER_HOME", "~/.finetuner"),
                    help="folder for uploads, runs and models")
    ap.add_argument("--root-path", default=os.environ.get("GRADIO_ROOT_PATH", ""),
                    help="URL prefix when served behind a reverse proxy")
    ap.add_argument("--allow-anonymous", action="store_true",
                    default=os.environ.get("FINETUNER_ALLOW_ANONYMOUS", "").strip() == "1",
                    help="serve a non-loopback address without sign-in: everyone who reaches "
                         "the server shares one workspace (FINETUNER_ALLOW_ANONYMOUS=1)")
    return ap.parse_args(argv)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def trusted_proxies(raw: str | None) -> str:
    """FINETUNER_TRUSTED_PROXIES: the addresses (or networks) of reverse proxies whose
    X-Forwarded-For names the client; empty (the default) trusts nobody's header, so every
    limit counts the real peer. Handed to uvicorn as its FORWARDED_ALLOW_IPS (whose own default
    would trust 127.0.0.1: any local process, or a proxy that appends the client's own header)."""
    import ipaddress

    from finetuner.errors import FinetunerError

    entries = []
    for entry in (e.strip() for e in (raw or "").split(",") if e.strip()):
        try:  # normalised (10.0.0.1/24 -> 10.0.0.0/24): uvicorn reads networks strictly
            entries.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise FinetunerError(
                f"FINETUNER_TRUSTED_PROXIES: {entry!r} is not an IP address or network.",
                "List your reverse proxies' addresses, e.g. 127.0.0.1 or 10.0.0.0/24.",
                code="bad_env") from None
    return ",".join(entries)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from finetuner.errors import FinetunerError
    from finetuner.ui import auth

    try:
        os.environ["FORWARDED_ALLOW_IPS"] = trusted_proxies(
            os.environ.get("FINETUNER_TRUSTED_PROXIES"))
    except FinetunerError as exc:
        raise SystemExit(f"Error: {exc.text}") from None

    try:  # before loading torch: a refusal to start comes at once
        users = auth.load_users(os.environ.get("FINETUNER_AUTH"))
    except FinetunerError as exc:
        raise SystemExit(f"Error: {exc.text}") from None
    anonymous_public = not users and not auth.oauth_enabled() and not is_loopback(args.host)
    if anonymous_public and not args.allow_anonymous:
        raise SystemExit(
            f"Error: {args.host} can be reached from other machines but nobody would have to "
            "sign in; set FINETUNER_AUTH=user:password,user2:password2 (or the path of a file "
            "with one user:password per line) to give each person a sign-in, or start with "
            "--allow-anonymous (FINETUNER_ALLOW_ANONYMOUS=1) to let everyone who reaches it "
            "share one workspace.")
    import torch
    import transformers  # noqa: F401 - import once here, not lazily in handler threads

    # Predictions run in several handler threads at once; one torch thread each keeps them
    # from fighting over the cores (training happens in worker processes, with all cores).
    torch.set_num_threads(int(os.environ.get("FINETUNER_SERVER_THREADS", "1")))

    from starlette.middleware import Middleware

    from finetuner.server.files import FileRegistry
    from finetuner.server.limits import Limits, _env_int
    from finetuner.server.studio import Studio
    from finetuner.ui.app import CSS, build_app
    from finetuner.ui.guard import Guard, LoginLimiter

    try:
        limits = Limits.from_env()
        files = FileRegistry.from_env()
        limiter = LoginLimiter.from_env()
        max_queue = max(1, _env_int("FINETUNER_MAX_QUEUE", 64))
    except FinetunerError as exc:
        raise SystemExit(f"Error: {exc.text}") from None
    mode = "password" if users else "oauth" if auth.oauth_enabled() else "none"
    from finetuner.models.modeling import ModelPolicy

    # model folders typed by a user: any folder for one local user; on a shared server (sign-in,
    # or anyone on the network) only folders inside FINETUNER_MODEL_DIRS
    shared_server = mode != "none" or not is_loopback(args.host)
    admins = {a.strip() for a in os.environ.get("FINETUNER_ADMINS", "").split(",") if a.strip()}
    from finetuner.models.gpus import slots_from_env
    from finetuner.server.raybackend import backend_from_env


    try:
        gpu_slots = slots_from_env()  # FINETUNER_GPUS / FINETUNER_GPUS_PER_JOB
        backend = backend_from_env()  # FINETUNER_BACKEND=ray with RAY_ADDRESS, else local
    except FinetunerError as exc:
        raise SystemExit(f"Error: {exc.text}") from None
    studio = Studio(args.home, limits=limits, model_policy=ModelPolicy.from_env(shared_server),
                    files=files, admins=admins, gpu_slots=gpu_slots, backend=backend)
    recovered = studio.jobs.recover()
    recovered["groups"] = studio.groups.recover()  # comparisons and searches carry on
    from finetuner.models.estimate import probe_flops, settle_probe

    def boot() -> None:
        probe_flops()  # the machine's speed, before the first page asks for a time estimate
        studio.jobs.warm_up()  # then the process that starts trainings warm
        settle_probe()  # and again once the start-up's own load has passed

    threading.Thread(target=boot, name="finetuner-boot", daemon=True).start()
    logging.info("studio home %s, sign-in: %s, %s, %s, jobs after restart: %s", studio.home,
                 mode, limits, gpu_slots.describe(), recovered)
    if anonymous_public:
        logging.warning("listening on %s without sign-in (--allow-anonymous): everyone who "
                        "reaches this server shares one workspace", args.host)
    demo = build_app(studio, auth_mode=mode, shared_anonymous=anonymous_public)
    # Handlers run in threads; a few at once keeps try-it answers flowing while others wait;
    # beyond FINETUNER_MAX_QUEUE waiting events a new one is refused at once.
    demo.queue(default_concurrency_limit=8, max_size=max_queue)
    files.start_sweeper()
    quota = (None if not limits.max_disk_gb_per_user else
             lambda user, incoming: studio.workspace(user).check_quota(incoming))
    guard = Middleware(Guard, files=files, mode=mode, limiter=limiter, quota=quota)

    def on_signal(signum, _frame):
        # stop the trainings first (each keeps its best checkpoint), then let gradio close;
        # SIGTERM (docker stop, systemd) is handled like Ctrl-C
        logging.info("signal %s: stopping trainings, then the server", signum)
        studio.shutdown()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        demo.launch(server_name=args.host, server_port=args.port, root_path=args.root_path,
                    show_error=False, css=CSS, theme="soft", footer_links=[],
                    auth=auth.password_checker(users) if users else None,
                    auth_message="Sign in to the fine-tuning studio.",
                    max_file_size=f"{limits.max_upload_mb}mb",
                    app_kwargs={"middleware": [guard]}, run_history=False, ssr_mode=False)
    finally:
        files.close()  # this process's download copies (its links die with it)
        # stop trainings cleanly (each keeps its best checkpoint); a SIGKILL leaves them
        # running, and the next start adopts them
        studio.shutdown()


if __name__ == "__main__":
    main()
