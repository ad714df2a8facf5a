"""How users and uploaded files are named on disk: a user's folder key (a readable prefix and
a hash, never a path) and a file name stripped to safe characters. Imports nothing of ours:
the workspace, the file registry and the groups all name things this way.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

LOCAL_USER = "local"
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def user_key(user: str) -> str:
    """A folder name for a user: readable prefix plus a hash, never a path."""
    slug = SAFE_NAME.sub("-", user or LOCAL_USER).strip("-.")[:24] or "user"
    return f"{slug}-{hashlib.sha256((user or LOCAL_USER).encode()).hexdigest()[:12]}"


def safe_filename(name: str, default: str = "data.csv") -> str:
    base = SAFE_NAME.sub("_", Path(name or default).name).strip("._") or default
    return base[-100:]
