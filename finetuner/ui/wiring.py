"""How the page's events reach the handlers: components by name, every event bound through
`Wiring.bind` (errors become a sentence in the tab's message box, server paths are scrubbed
from text, a hub token is never shown back), and the input and output lists that several tabs
share. Each tab module has a `wire(w)` function that binds its own events."""

from __future__ import annotations

import inspect
import logging
import re
import site
import sys
import tempfile
import time
import traceback

import gradio as gr

from finetuner.errors import FinetunerError
from finetuner.ui import render
from finetuner.ui.auth import username
from finetuner.ui.forms import FORM_FIELDS, on_page

log = logging.getLogger("finetuner.ui")
# a handler that answers in one go and takes longer than this is logged (a page waits on it;
# a streaming handler's time is the job it follows)
SLOW_SECONDS = 3.0

# outputs that are text for people (messages, the log, progress), scrubbed of server paths;
# file outputs carry paths on purpose and are never rewritten
TEXT_OUTPUTS = {"data_msg", "model_msg", "train_msg", "results_msg", "hub_msg", "try_msg",
                "runs_msg", "admin_msg", "group_msg", "cmp_msg", "group_status", "group_summary",
                "log", "progress", "method_info", "advice", "cli"}
FORM = list(FORM_FIELDS)
# handlers that redraw their outputs from the whole form on every change: all their events
# share one first-in first-out lane, so the answer to an earlier change (a slow server) never
# lands after the answer to a later one and leaves the preview or the plan stale
ORDERED = ("preview_config", "costs")
COST_IN = [*FORM, "data_state", "model_state"]
COST_OUT = ["method_info", "advice", "advice_state", "train_plan"]
RUNS_OUT = ["runs_table", "run_pick", "result_run", "try_run", "runs_select"]
TRY_VIEW = ["try_text", "try_pair", "try_out", "try_spans", "try_details"]
GROUP_OUT = ["group_pick", "group_seen", "group_status", "group_summary", "group_table",
             "group_plot", "group_stop", "group_continue", "group_more"]
# new outputs go last: API clients unpack results_view by position
RESULTS_OUT = ["verdict", "metrics", "per_class", "confusion", "errors", "snippet", "download",
               "label_issues", "label_issues_file", "onnx_btn", "results_timer"]


class Wiring:
    def __init__(self, handlers, auth_mode: str = "none") -> None:
        self.handlers = handlers
        self.auth_mode = auth_mode
        self.C: dict[str, gr.components.Component] = {}

    @property
    def labels(self) -> dict[str, str]:
        """Each component's label on the page, by name (for sentences that name a setting)."""
        return getattr(self.handlers, "labels", {})

    def add(self, name: str, component):
        self.C[name] = component
        if isinstance(getattr(component, "label", None), str):
            self.labels[name] = component.label
        return component

    def scrub(self, words: str) -> str:
        """No server path in a message: the studio's home, the upload cache and the Python
        installation are cut out of any text that reaches a user (a last line of defence;
        the messages themselves name files by their own names)."""

        roots = {str(self.handlers.studio.home), str(self.handlers.studio.home.resolve()),
                 tempfile.gettempdir(), sys.prefix, *site.getsitepackages()}
        for root in sorted((r for r in roots if r and len(r) > 1), key=len, reverse=True):
            words = re.sub(re.escape(root) + r"[^\s'\"<>]*", "…", words)
        return words

    def bind(self, event, handler: str, inputs: list[str], outputs: list[str], message: str,
             **kwargs):
        """Wire `event` to Handlers.<handler>; errors go to the `message` component."""
        fn = getattr(self.handlers, handler)
        outputs = list(dict.fromkeys([*outputs, message]))
        C = self.C

        def updates(*args, **kw):
            """The handler's result dicts, mapped to components: one for a plain handler, one
            per yield for a generator (a long job's progress); errors become a message."""
            form = dict(zip(inputs, args))
            request = args[len(inputs)] if len(args) > len(inputs) else kw.get("request")
            token = str(form.get("hub_token") or "")

            def hide(words: str) -> str:  # a hub token is never shown back, nor logged
                words = words.replace(token, "***") if len(token) >= 4 else words
                return self.scrub(words)

            def mapped(result: dict):
                if "hub_token" in outputs:  # cleared on every path, errors included
                    result = {**result, "hub_token": ""}
                update = {C[k]: hide(v) if isinstance(v, str) and k in TEXT_OUTPUTS else v
                          for k, v in result.items() if k in outputs}
                return update or tuple(gr.skip() for _ in outputs)

            out = None
            began = time.monotonic()
            try:
                out = fn(username(request, self.auth_mode), form)
                for result in (out if inspect.isgenerator(out) else (out,)):
                    yield mapped(result)
            except FinetunerError as exc:
                yield mapped({message: render.message(hide(on_page(exc, self.labels)), "error")})
            except Exception as exc:  # noqa: BLE001 - the page must never show a traceback
                log.error("handler %s failed:\n%s", handler, hide(traceback.format_exc()))
                yield mapped({message: render.message(hide(
                    f"Something went wrong ({type(exc).__name__}: {exc}). The server is fine; "
                    "try again, and report this if it repeats."), "error")})
            finally:
                if inspect.isgenerator(out):
                    out.close()  # the page went away: the handler's cleanup runs now
                took = time.monotonic() - began
                if took > SLOW_SECONDS and not inspect.isgenerator(out):
                    log.warning("handler %s took %.1f s", handler, took)

        if inspect.isgeneratorfunction(fn):
            def run(*args, **kw):
                yield from updates(*args, **kw)
        else:
            def run(*args, **kw):
                return list(updates(*args, **kw))[-1]

        params = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in inputs]
        # no default: gradio injects gr.Request only into parameters without one
        params.append(inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        annotation=gr.Request))
        run.__signature__ = inspect.Signature(params)
        run.__annotations__ = {"request": gr.Request}  # gradio reads type hints from here
        run.__name__ = handler
        if handler in ORDERED:
            kwargs.setdefault("concurrency_id", handler)
            kwargs.setdefault("concurrency_limit", 1)
            # Gradio drops an .input event sent while the same listener's last one is still
            # pending (its default trigger mode, "once"): deleting "4" and typing "1" on a
            # busy server sent "" and dropped "1", and the preview kept the default. The
            # last value is sent once the pending answer is in.
            kwargs.setdefault("trigger_mode", "always_last")
        return event(run, inputs=[C[n] for n in inputs], outputs=[C[n] for n in outputs],
                     api_name=kwargs.pop("api_name", handler), **kwargs)
