"""Who is using the studio: nobody in particular on a laptop, a password user on a team server,
or a Hugging Face account inside a Space.

FINETUNER_AUTH holds `user:password` pairs separated by commas, or the path of a file with one
pair per line. Passwords are compared in constant time and never logged. Inside a Space with
`hf_oauth: true`, the "Sign in with Hugging Face" button identifies users instead.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from ..errors import FinetunerError

LOCAL = "local"


def load_users(spec: str | None) -> dict[str, str]:
    """Parse FINETUNER_AUTH (pairs or a file of pairs) into {user: password}."""
    spec = (spec or "").strip()
    if not spec:
        return {}
    path = Path(spec).expanduser()
    if path.is_file():
        entries = [line.strip() for line in path.read_text("utf-8").splitlines()]
    elif ":" in spec:
        entries = [part.strip() for part in spec.split(",")]
    else:
        raise FinetunerError(f"FINETUNER_AUTH names the file '{spec}', which does not exist.",
                             "Give user:password pairs or an existing file.", code="auth")
    users = {}
    for entry in entries:
        if not entry or entry.startswith("#"):
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user.strip() or not password:
            raise FinetunerError("FINETUNER_AUTH has an entry without 'user:password'.",
                                 "Write each entry as user:password.", code="auth")
        users[user.strip()] = password
    return users


def password_checker(users: dict[str, str]):
    def check(username: str, password: str) -> bool:
        expected = users.get(username)
        # compare even for unknown users, so timing does not reveal who exists
        return hmac.compare_digest((expected or "\0").encode(), (password or "").encode()) \
            and expected is not None

    return check


def oauth_enabled() -> bool:
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID")
                and not os.environ.get("FINETUNER_AUTH"))


def username(request, mode: str) -> str:
    """The signed-in user for this request; raises when sign-in is required but missing."""
    if mode == "none":
        return LOCAL
    name = getattr(request, "username", None) if request is not None else None
    if not name and mode == "oauth":
        name = _oauth_name(request)
    if not name:
        raise FinetunerError("You are not signed in.",
                             "Sign in (button at the top of the page) to use the studio.",
                             code="not_signed_in")
    return name


def _oauth_name(request) -> str | None:
    try:
        from gradio.oauth import _get_valid_oauth_info_from_session

        info = _get_valid_oauth_info_from_session(request.session)
    except Exception:  # noqa: BLE001 - no session, no sign-in
        return None
    user = (info or {}).get("userinfo") or {}
    name = user.get("preferred_username")
    return f"hf:{name}" if name else None
