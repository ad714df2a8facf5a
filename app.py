"""Start the fine-tuning studio in the browser.

    python app.py                       # http://127.0.0.1:7860, runs kept in ~/.finetuner
    python app.py --host 0.0.0.0 --port 8080 --home /data/finetuner

Host and port also follow Gradio's GRADIO_SERVER_NAME / GRADIO_SERVER_PORT; FINETUNER_HOME sets
where uploads, runs and models live. Analytics are off and nothing is fetched at start.
"""

from __future__ import annotations

import argparse
import logging
import os

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
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import torch
    import transformers  # noqa: F401 - import once here, not lazily in handler threads

    # Predictions run in several handler threads at once; one torch thread each keeps them
    # from fighting over the cores (training happens in worker processes, with all cores).
    torch.set_num_threads(int(os.environ.get("FINETUNER_SERVER_THREADS", "1")))

    from finetuner.errors import FinetunerError
    from finetuner.studio import Limits, Studio
    from finetuner.ui import auth
    from finetuner.ui.app import CSS, build_app

    try:
        users = auth.load_users(os.environ.get("FINETUNER_AUTH"))
        limits = Limits.from_env()
    except FinetunerError as exc:
        raise SystemExit(f"Error: {exc.text}") from None
    mode = "password" if users else "oauth" if auth.oauth_enabled() else "none"
    studio = Studio(args.home, limits=limits)
    recovered = studio.jobs.recover()
    logging.info("studio home %s, sign-in: %s, %s, jobs after restart: %s", studio.home, mode,
                 limits, recovered)
    demo = build_app(studio, auth_mode=mode)
    # Handlers run in threads; a few at once keeps try-it answers flowing while others wait.
    demo.queue(default_concurrency_limit=8)
    try:
        demo.launch(server_name=args.host, server_port=args.port, root_path=args.root_path,
                    show_error=False, css=CSS, theme="soft", footer_links=[],
                    auth=auth.password_checker(users) if users else None,
                    auth_message="Sign in to the fine-tuning studio.",
                    max_file_size=f"{limits.max_upload_mb}mb")
    finally:
        # stop trainings cleanly (each keeps its best checkpoint); a SIGKILL leaves them
        # running, and the next start adopts them
        studio.jobs.shutdown()


if __name__ == "__main__":
    main()
