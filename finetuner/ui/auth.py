"""Who is using the studio: nobody in particular on a laptop, a password user on a team server,
or a Hugging Face account inside a Space.

FINETUNER_AUTH holds `user:password` pairs separated by commas, or the path of a file with one
pair per line. Passwords are compared in constant time and never logged. Inside a Space with
`hf_oauth: true`, the "Sign in with Hugging Face" button identifies users instead, and
FINETUNER_ALLOWED_USERS / FINETUNER_ALLOWED_ORGS (comma lists of Hugging Face names) restrict
who may enter. The same functions answer for the handlers (`username`) and for the HTTP guard
(`scope_user`), so both always agree on who is asking.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path

from finetuner.errors import FinetunerError

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
        name, refused = oauth_user(_session(request))
        if refused:
            raise FinetunerError(
                f"The Hugging Face account '{refused}' may not use this studio.",
                "Sign in with an account on FINETUNER_ALLOWED_USERS or in one of "
                "FINETUNER_ALLOWED_ORGS, or ask the administrator to add yours.",
                code="not_allowed")
    if not name:
        raise FinetunerError("You are not signed in.",
                             "Sign in (button at the top of the page) to use the studio.",
                             code="not_signed_in")
    return name


def _session(request):
    try:
        return request.session
    except Exception:  # noqa: BLE001 - no SessionMiddleware: nobody signed in with OAuth
        return None


def _names(variable: str) -> set[str]:
    return {n.strip().lower() for n in os.environ.get(variable, "").split(",") if n.strip()}


def oauth_allowed(userinfo: dict) -> bool:
    """FINETUNER_ALLOWED_USERS / FINETUNER_ALLOWED_ORGS: unset lets every account in; else the
    account's name must be listed, or one of its organisations (the `orgs` of the userinfo,
    matched by handle or by name)."""
    users, orgs = _names("FINETUNER_ALLOWED_USERS"), _names("FINETUNER_ALLOWED_ORGS")
    if not users and not orgs:
        return True
    if str(userinfo.get("preferred_username") or "").lower() in users:
        return True
    for org in userinfo.get("orgs") or []:
        handles = ({org.get("preferred_username"), org.get("name")} if isinstance(org, dict)
                   else {org})
        if {str(h).lower() for h in handles if h} & orgs:
            return True
    return False


def oauth_user(session) -> tuple[str | None, str | None]:
    """(user, refused) from a session holding gradio's `oauth_info`: ("hf:<name>", None) for
    an allowed account, (None, "<name>") for a signed-in account that is not allowed, and
    (None, None) when nobody is signed in (or the sign-in expired)."""
    if session is None:
        return None, None
    try:
        from gradio.oauth import _get_valid_oauth_info_from_session

        info = _get_valid_oauth_info_from_session(session)
    except Exception:  # noqa: BLE001 - no session, no sign-in
        return None, None
    user = (info or {}).get("userinfo") or {}
    name = user.get("preferred_username")
    if not name:
        return None, None
    return (f"hf:{name}", None) if oauth_allowed(user) else (None, str(name))


def scope_user(scope, mode: str) -> str | None:
    """The signed-in user of a raw ASGI request (for the HTTP guard), resolved as gradio and
    `username` do: gradio's sign-in cookie in password mode, the session in OAuth mode."""
    if mode == "none":
        return LOCAL
    if mode == "oauth":
        return oauth_user(scope.get("session"))[0]
    app = scope.get("app")
    tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
    if not tokens or not cookie_id:
        return None
    from starlette.requests import HTTPConnection

    cookies = HTTPConnection(scope).cookies
    token = (cookies.get(f"access-token-{cookie_id}")
             or cookies.get(f"access-token-unsecure-{cookie_id}"))
    return tokens.get(token) if token else None
