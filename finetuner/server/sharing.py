"""One web process shared fairly by its users: loaded models and running predictions.

`PredictorCache` keeps at most `size` loaded predictors and at most `per_user` of them for
one user. A user's new model first pushes out that user's own least recently used one; when
the cache is full, the user holding the most entries gives one up (their least recently used),
so someone trying model after model evicts their own models, never everyone else's.

`PredictionSlots` lets one user run at most `per_user` predictions at once; the next is
refused at once with a sentence, never queued behind a flood.

No torch here: the loader is injected (Studio passes `Predictor.load`; tests pass fakes).
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from finetuner.errors import FinetunerError


class PredictorCache:
    def __init__(self, loader: Callable[[str], object], size: int = 4,
                 per_user: int = 2) -> None:
        self.loader = loader
        self.size = max(1, size)
        self.per_user = max(1, min(per_user, self.size))
        self._entries: OrderedDict[str, tuple[str, object]] = OrderedDict()  # oldest first
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, owner: str, key: str):
        """The loaded value for key (loading it once, even when many ask at the same time)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key][1]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key][1]
            try:
                value = self.loader(key)
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:
                self._make_room(owner)
                self._entries[key] = (owner, value)
                self._loading.pop(key, None)
        return value

    def _make_room(self, owner: str) -> None:
        mine = [k for k, (o, _) in self._entries.items() if o == owner]
        for key in mine[: max(0, len(mine) - self.per_user + 1)]:
            del self._entries[key]
        while len(self._entries) >= self.size:
            counts = Counter(o for o, _ in self._entries.values())
            top = max(counts.values())
            # the biggest holder's least recently used entry; among equal holders, the one
            # whose entry has waited longest
            victim = next(k for k, (o, _) in self._entries.items() if counts[o] == top)
            del self._entries[victim]

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def pop(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def holdings(self) -> dict[str, list[str]]:
        """owner -> keys, least recently used first."""
        with self._lock:
            out: dict[str, list[str]] = {}
            for key, (owner, _) in self._entries.items():
                out.setdefault(owner, []).append(key)
            return out


class PredictionSlots:
    def __init__(self, per_user: int = 2) -> None:
        self.per_user = max(1, per_user)
        self._running: Counter = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def take(self, user: str) -> Iterator[None]:
        with self._lock:
            if self._running[user] >= self.per_user:
                raise FinetunerError(
                    f"You already have {self._running[user]} predictions running, this "
                    f"server's limit per user (FINETUNER_MAX_PREDICTIONS_PER_USER).",
                    "Wait for them to finish, then try again.", code="busy_predictions")
            self._running[user] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[user] -= 1
                if self._running[user] <= 0:
                    del self._running[user]

    def running(self, user: str) -> int:
        with self._lock:
            return self._running[user]
