"""RFC 4271 §8.1.1's IdleHoldTimer with DampPeerOscillations, sans I/O: a peer whose sessions
keep failing soon after they start waits longer and longer before it may connect again.

A failure is the end of the last connection with a peer (a collision's loser is none; nor is
a connection the peer closed before sending a byte: its refusal, as in its own idle hold) when
no session was Established on it or the session lasted less than `stable` seconds; a session that
stayed up that long first forgets earlier failures. The first `free` failures in a row cost
nothing beyond the connect-retry back-off (a peer restarting, a collision settling); after
them each failure holds the peer idle for `first` seconds, doubling, at most `cap`:

    failures   1  2  3  4  5  6   7   8   9   10 …
    hold (s)   0  0  1  2  4  8  16  32  64  120 …

While the hold lasts, no connection is attempted and an accepted connection from the peer's
address is closed before a byte is read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Damping:
    first: float = 1.0
    cap: float = 120.0
    free: int = 2
    stable: float = 60.0
    #: failures in a row (a stable session resets it)
    failures: int = 0
    #: the present hold, and when it ends (loop time)
    hold: float = 0.0
    until: float | None = None

    def ended(self, now: float, up_since: float | None) -> float:
        """The peer's last connection ended; `up_since`: when its session became
        Established (None: it never did). Returns the hold that starts now (0: none)."""
        if up_since is not None and now - up_since >= self.stable:
            self.failures = 0
        self.failures += 1
        if self.failures <= self.free:
            self.hold, self.until = 0.0, None
            return 0.0
        self.hold = min(self.first * 2 ** (self.failures - self.free - 1), self.cap)
        self.until = now + self.hold
        return self.hold

    def holding(self, now: float) -> bool:
        return self.until is not None and now < self.until

    def remaining(self, now: float) -> float:
        return max(self.until - now, 0.0) if self.until is not None else 0.0
