"""Debugging one peer or one VNI at run time (`evpnctl debug peer X on`, `debug:` in the
configuration, `--log-level debug` for everything): detailed log lines for that scope only,
at level debug, and never more than RATE lines a second per scope — a busy peer in debug must
not fill the disk or slow the loop. What was held back is counted on the next line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from evpnd.control.grammar import vni as parse_vni

log = structlog.get_logger("evpnd.debug")

#: lines per second per scope, and the burst a quiet scope may spend at once
RATE = 50.0
BURST = 200.0


@dataclass
class _Bucket:
    tokens: float = BURST
    at: float = 0.0
    held: int = 0


@dataclass
class Debugging:
    peers: set[str] = field(default_factory=set)
    vnis: set[int] = field(default_factory=set)
    #: everything (`--log-level debug`)
    everything: bool = False
    _buckets: dict[tuple[str, object], _Bucket] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Cheap enough for hot paths: most of the time nothing is debugged."""
        return self.everything or bool(self.peers) or bool(self.vnis)

    @property
    def any_vni(self) -> bool:
        """Some VNI is debugged: route changes are worth looking at one by one."""
        return self.everything or bool(self.vnis)

    def peer(self, address: str) -> bool:
        return self.everything or address in self.peers

    def vni(self, vni: int | None) -> bool:
        return self.everything or (vni is not None and vni in self.vnis)

    def set(self, scope: str, target: str, on: bool) -> dict[str, Any]:
        """Turn one scope on or off; returns what is debugged now."""
        which: object
        if scope == "peer":
            which = target
            (self.peers.add if on else self.peers.discard)(target)
        elif scope == "vni":
            which = parse_vni(target)
            (self.vnis.add if on else self.vnis.discard)(which)
        else:
            raise ValueError(f"debug {scope!r}: peer or vni")
        if not on:
            self._buckets.pop((scope, which), None)
        log.info("debugging", of=scope, target=target, on=on)
        return self.status()

    def status(self) -> dict[str, Any]:
        return {
            "peers": sorted(self.peers),
            "vnis": sorted(self.vnis),
            "everything": self.everything,
        }

    def emit(self, scope: str, target: object, now: float, message: str, **fields: Any) -> None:
        """One debug line for (scope, target), if its bucket allows."""
        bucket = self._buckets.get((scope, target))
        if bucket is None:
            bucket = self._buckets[(scope, target)] = _Bucket(at=now)
        bucket.tokens = min(BURST, bucket.tokens + (now - bucket.at) * RATE)
        bucket.at = now
        if bucket.tokens < 1.0:
            bucket.held += 1
            return
        bucket.tokens -= 1.0
        held, bucket.held = bucket.held, 0
        log.debug(message, scope=scope, target=target, held_back=held or None, **fields)
