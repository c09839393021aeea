"""Saying a repeated thing once in a while: the first occurrence of each kind at once, then at
most one line per `interval` seconds carrying how many were held back. No clock of its own:
the caller passes `now`."""

from __future__ import annotations

from collections.abc import Hashable


class Throttle:
    def __init__(self, interval: float = 60.0, limit: int = 10_000) -> None:
        self.interval = interval
        #: kinds remembered at most (the oldest are forgotten first): bounded memory
        self.limit = limit
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}

    def allow(self, kind: Hashable, now: float) -> int | None:
        """None: hold this one back. Otherwise say it, with how many of the kind were held back
        since the last time it was said."""
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        if last is None and len(self._last) >= self.limit:
            oldest = next(iter(self._last))
            del self._last[oldest]
            self._held.pop(oldest, None)
        self._last.pop(kind, None)
        self._last[kind] = now
        return self._held.pop(kind, 0)
