"""Two sans-I/O peers wired together in memory (after h11's ConnectionPair): no sockets, and
time only moves when a test moves it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from evpnd.bgp.events import (
    CloseConnection,
    ConnectRequested,
    PeerAction,
    SendData,
    State,
)
from evpnd.bgp.negotiation import LocalSettings
from evpnd.bgp.peer import Peer, PeerSettings


@dataclass
class Side:
    peer: Peer
    actions: list[PeerAction] = field(default_factory=list)
    #: local connection id -> the other side's connection id
    links: dict[int, tuple[int, bool]] = field(default_factory=dict)
    sent: list[bytes] = field(default_factory=list)


class PeerPair:
    def __init__(
        self,
        a: LocalSettings | None = None,
        b: LocalSettings | None = None,
        *,
        a_settings: PeerSettings | None = None,
        b_settings: PeerSettings | None = None,
        seed: int = 1,
    ) -> None:
        a = a or LocalSettings(asn=65000, router_id="192.0.2.1", hostname="a")
        b = b or LocalSettings(asn=65000, router_id="192.0.2.2", hostname="b")
        a_settings = a_settings or PeerSettings("192.0.2.2", b.asn)
        b_settings = b_settings or PeerSettings("192.0.2.1", a.asn, passive=True)
        self.now = 1000.0
        self.a = Side(Peer(a_settings, a, random.Random(seed)))
        self.b = Side(Peer(b_settings, b, random.Random(seed + 1)))
        #: whether the network between them delivers connections (False: nobody listens)
        self.reachable = True

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a

    def start(self) -> None:
        self.a.peer.start(self.now)
        self.b.peer.start(self.now)
        self.pump()
        self.advance(0)

    def advance(self, seconds: float) -> None:
        """Move time forward, firing every timer due on the way, in order."""
        end = self.now + seconds
        while True:
            due = [t for s in (self.a, self.b) if (t := s.peer.timer()) is not None and t <= end]
            if not due:
                break
            self.now = max(self.now, min(due))
            for side in (self.a, self.b):
                timer = side.peer.timer()
                if timer is not None and timer <= self.now:
                    side.peer.handle_timer(self.now)
            self.pump()
        self.now = end

    def pump(self) -> None:
        """Deliver every pending action until both sides are quiet."""
        busy = True
        while busy:
            busy = False
            for side in (self.a, self.b):
                while (action := side.peer.next_action()) is not None:
                    busy = True
                    side.actions.append(action)
                    self._perform(side, action)

    def _perform(self, side: Side, action: PeerAction) -> None:
        other = self.other(side)
        if isinstance(action, ConnectRequested):
            if not self.reachable:
                side.peer.connection_failed(self.now, "connection refused")
                return
            theirs = other.peer.connection_made(self.now, outbound=False)
            if theirs is None:
                side.peer.connection_failed(self.now, "connection refused")
                return
            ours = side.peer.connection_made(self.now, outbound=True)
            assert ours is not None
            side.links[ours] = (theirs, True)
            other.links[theirs] = (ours, True)
        elif isinstance(action, SendData):
            side.sent.append(action.data)
            link = side.links.get(action.connection)
            if link is not None and link[1]:
                other.peer.data_received(link[0], action.data, self.now)
        elif isinstance(action, CloseConnection):
            link = side.links.pop(action.connection, None)
            if link is not None:
                theirs, _ = link
                if theirs in other.links:
                    other.links[theirs] = (action.connection, False)
                    other.peer.connection_lost(theirs, self.now)

    def cut(self) -> None:
        """The TCP connections die silently on both ends (a crash, a cable)."""
        for side in (self.a, self.b):
            for conn_id in list(side.links):
                side.links.pop(conn_id)
                side.peer.connection_lost(conn_id, self.now)
        self.pump()

    def of_type(self, side: Side, kind: type) -> list[PeerAction]:
        return [a for a in side.actions if isinstance(a, kind)]

    def established(self) -> bool:
        return self.a.peer.state is State.ESTABLISHED and self.b.peer.state is State.ESTABLISHED
