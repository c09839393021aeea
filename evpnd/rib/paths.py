"""Where a route came from and what it carries."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from evpnd.bgp.attributes import PathAttributes
from evpnd.evpn.routes import EvpnRoute


@dataclass(frozen=True, slots=True)
class Source:
    """A peer (or this speaker, for local routes). Shared by every path it sent."""

    name: str  # the peer's address, or "local"
    router_id: str
    asn: int
    ibgp: bool
    route_reflector_client: bool = False

    @property
    def is_local(self) -> bool:
        return self.name == LOCAL

    @property
    def router_id_int(self) -> int:
        return int(ipaddress.IPv4Address(self.router_id))


LOCAL = "local"


class Path:
    """One source's version of a route. Slots, no dataclass: a million of these must be cheap."""

    __slots__ = ("attributes", "received", "route", "source", "stale")

    def __init__(
        self,
        route: EvpnRoute,
        attributes: PathAttributes,
        source: Source,
        stale: bool = False,
        received: float = 0.0,
    ) -> None:
        self.route = route
        self.attributes = attributes
        self.source = source
        self.stale = stale
        #: wall time of the UPDATE (or local change) that brought it (`show routes --detail`);
        #: one float shared by all the routes of that UPDATE
        self.received = received

    def __repr__(self) -> str:
        return f"Path({self.route.text} rd {self.route.rd} from {self.source.name})"
