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
    import transformers  # noqa: F401 - import once here, not lazily in handler threads

    from finetuner.studio import Studio
    from finetuner.ui.app import CSS, build_app

    studio = Studio(args.home)
    demo = build_app(studio)
    demo.queue(default_concurrency_limit=4)
    try:
        demo.launch(server_name=args.host, server_port=args.port, root_path=args.root_path,
                    show_error=False, css=CSS, theme="soft", footer_links=[])
    finally:
        studio.jobs.shutdown()


if __name__ == "__main__":
    main()
