"""What the local-routes core hands back: RIB updates to apply in order, and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from evpnd.bgp.attributes import PathAttributes
from evpnd.events import Event
from evpnd.evpn.routes import EvpnRoute

NO_ATTRIBUTES = PathAttributes()


class RibUpdate(NamedTuple):
    """One `Rib.update` for the local source."""

    announced: list[EvpnRoute]
    attributes: PathAttributes
    withdrawn: list[EvpnRoute]


@dataclass
class Step:
    """What one input led to: RIB updates to apply in order, events to report."""

    updates: list[RibUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
