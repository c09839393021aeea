"""Duplicate address detection (RFC 7432 §15.1): a MAC that moves `moves` times within
`window` seconds is frozen — this VTEP stops re-announcing it, which ends the sequence-number
war two VTEPs with the same MAC would otherwise fight forever. FRR's defaults: 5 in 180 s."""

from __future__ import annotations

from collections import deque


class DuplicateDetector:
    def __init__(self, moves: int = 5, window: float = 180.0) -> None:
        self.moves = moves
        self.window = window
        self._history: dict[tuple[int, bytes], deque[float]] = {}
        self.frozen: dict[tuple[int, bytes], float] = {}  # -> when

    def moved(self, vni: int, mac: bytes, now: float) -> bool:
        """Record a move; True exactly once, when this move freezes the MAC."""
        key = (vni, mac)
        if key in self.frozen:
            return False
        history = self._history.setdefault(key, deque())
        history.append(now)
        while history and now - history[0] > self.window:
            history.popleft()
        if len(history) >= self.moves:
            self.frozen[key] = now
            del self._history[key]
            return True
        return False

    def moves_seen(self, vni: int, mac: bytes) -> int:
        """Moves within the window so far (FRR's detection count); a frozen MAC's were
        `moves`."""
        if (vni, mac) in self.frozen:
            return self.moves
        return len(self._history.get((vni, mac), ()))

    def is_frozen(self, vni: int, mac: bytes) -> bool:
        return (vni, mac) in self.frozen

    def clear(self, vni: int, mac: bytes) -> None:
        self.frozen.pop((vni, mac), None)
        self._history.pop((vni, mac), None)
