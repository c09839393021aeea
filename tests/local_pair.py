"""Two VTEPs' local-route cores wired together in memory, as `peer_pair.py` wires two BGP
speakers: each has a RIB and a `LocalRoutes`; what one announces or withdraws reaches the
other's RIB as a remote path when the test says so (`deliver`), and time moves only when the
test moves it. No kernel, no sockets, no sleeping."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from evpnd.bgp.attributes import PathAttributes
from evpnd.events import Event
from evpnd.evpn.extcommunities import RouteTarget
from evpnd.evpn.identifiers import RouteDistinguisher
from evpnd.evpn.routes import MacIpRoute
from evpnd.local.learning import LocalRoutes, Observation
from evpnd.local.origination import Vni
from evpnd.local.step import Step
from evpnd.rib.bestpath import mobility
from evpnd.rib.locrib import Rib, RouteChange
from evpnd.rib.paths import LOCAL, Source

VNI = 100


@dataclass
class Vtep:
    address: str
    other: str
    rib: Rib = field(default_factory=Rib)
    events: list[Event] = field(default_factory=list)
    #: what this VTEP sent and the other has not received yet, in order
    outbox: deque[RouteChange] = field(default_factory=deque)
    now: float = 0.0

    def __post_init__(self) -> None:
        self.core = LocalRoutes(self.rib)
        self.local_source = Source(LOCAL, self.address, 65000, ibgp=True)
        self.peer_source = Source(self.other, self.other, 65000, ibgp=True)
        self.vni = Vni(
            VNI,
            RouteDistinguisher.type1(self.address, 1),
            (RouteTarget(0, 65000, VNI),),
            (),
            self.address,
        )
        self.apply(self.core.configure([self.vni], {}, 0.0))

    def apply(self, step: Step) -> None:
        """As the daemon does: the step's RIB updates, then the core hears of the changes
        (which may make more), until nothing changes; what changed locally is sent."""
        self.events += step.events
        for update in step.updates:
            self.rib.update(self.local_source, *update)
        while changes := self.rib.take_changes():
            self.outbox.extend(c for c in changes if _ours(c))
            following = self.core.rib_changed(changes, self.now)
            self.events += following.events
            for update in following.updates:
                self.rib.update(self.local_source, *update)

    def observe(self, *seen: Observation) -> None:
        self.apply(self.core.observe(seen, self.now))

    def receive(self, change: RouteChange) -> None:
        """One of the other VTEP's best-path changes, as its UPDATE would bring it."""
        if change.new is not None and change.new.source.is_local:
            path = change.new
            self.rib.update(self.peer_source, [path.route], path.attributes, [])
        elif change.old is not None:
            self.rib.update(self.peer_source, [], PathAttributes(), [change.old.route])
        self.apply(Step())

    # --- what the tests look at ------------------------------------------------------------

    def local_routes(self, mac: bytes) -> list[tuple[bytes, int, bool]]:
        """(IP, sequence, sticky) of this VTEP's own routes for the MAC."""
        table = self.rib.adj_in.get(LOCAL, {})
        out = []
        for path in table.values():
            route = path.route
            if isinstance(route, MacIpRoute) and route.mac == mac:
                sticky, seq = mobility(path.attributes)
                out.append((route.ip, seq, bool(sticky)))
        return sorted(out)

    def winner(self, mac: bytes) -> str | None:
        """Where this VTEP thinks the MAC lives: "local" or the other's address."""
        paths = self.rib.mac_paths(VNI, mac)
        return paths[0].source.name if paths else None

    def event_kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def _ours(change: RouteChange) -> bool:
    return (change.new is not None and change.new.source.is_local) or (
        change.old is not None and change.old.source.is_local
    )


class LocalPair:
    def __init__(self) -> None:
        self.a = Vtep("192.0.2.1", "192.0.2.2")
        self.b = Vtep("192.0.2.2", "192.0.2.1")

    def advance(self, seconds: float) -> None:
        self.a.now += seconds
        self.b.now += seconds

    def deliver(self, only: Vtep | None = None, limit: int = 100) -> None:
        """Carry what was sent to the other side (from `only`, or both), until quiet."""
        for _ in range(limit):
            moved = False
            for sender, receiver in ((self.a, self.b), (self.b, self.a)):
                if only is not None and sender is not only:
                    continue
                while sender.outbox:
                    receiver.receive(sender.outbox.popleft())
                    moved = True
            if not moved:
                return
        raise AssertionError("the two VTEPs never went quiet (a sequence-number war?)")
