"""Live events for `evpnctl watch`: route and MAC changes, session changes, kernel repairs.

Publishing costs nothing while nobody watches, and the same small amount however many watch:
events go once into one bounded log, and each watcher reads it from its own place. A watcher
that reads too slowly holds up nobody: the log keeps the latest `limit` events, and what it
missed is reported to it as a count of lost events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from evpnd.events import Event, RouteChanged
from evpnd.evpn.identifiers import ip_to_text, mac_to_text
from evpnd.evpn.routes import MacIpRoute
from evpnd.rib.bestpath import mobility
from evpnd.rib.locrib import RouteChange

Item = dict[str, Any]


class EventStream:
    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        #: a ring: event number n is at n % limit while it is among the latest `limit`
        self._ring: list[Item | None] = [None] * limit
        #: the number of the next event published
        self._next = 0
        self._watchers = 0
        #: watchers waiting for the next event
        self._waiting: list[asyncio.Future[None]] = []

    def publish(self, event: Event) -> None:
        if not self._watchers:
            return
        item = {"time": round(time.time(), 3), "event": event.kind, **event.fields()}
        self._ring[self._next % self.limit] = item
        self._next += 1
        waiting, self._waiting = self._waiting, []
        for future in waiting:
            if not future.done():
                future.set_result(None)

    def follow(self) -> AsyncIterator[Item]:
        """The events from now on. The watcher is registered before this returns (not at the
        first iteration), so an event published after the call is never missed."""
        self._watchers += 1
        return self._read(self._next)

    async def _read(self, position: int) -> AsyncIterator[Item]:
        try:
            while True:
                oldest = max(self._next - self.limit, 0)
                if position < oldest:
                    lost, position = oldest - position, oldest
                    yield {"time": round(time.time(), 3), "event": "lost", "count": lost}
                elif position < self._next:
                    item = self._ring[position % self.limit]
                    assert item is not None
                    position += 1
                    yield item
                else:
                    future = asyncio.get_running_loop().create_future()
                    self._waiting.append(future)
                    await future
        finally:
            self._watchers -= 1

    def route_changes(self, changes: list[RouteChange]) -> None:
        """Best-path changes as events (see route_events)."""
        if not self._watchers:
            return
        for event in route_events(changes):
            self.publish(event)


def route_events(changes: list[RouteChange]) -> Iterator[RouteChanged]:
    """Best-path changes as events: added, changed, moved (another next hop, or between local
    and remote), withdrawn."""
    for _, old, new in changes:
        path = new if new is not None else old
        assert path is not None
        route = path.route
        if new is None:
            action = "withdrawn"
        elif old is None:
            action = "added"
        elif old.attributes.nexthop != new.attributes.nexthop or (
            old.source.is_local != new.source.is_local
        ):
            action = "moved"
        else:
            action = "changed"
        vni = mac = ip = seq = None
        if isinstance(route, MacIpRoute):
            vni, mac, seq = route.label1, mac_to_text(route.mac), mobility(path.attributes)[1]
            ip = ip_to_text(route.ip) if route.ip else None
        yield RouteChanged(
            action,
            route.route_type,
            str(route.rd),
            route.text,
            path.source.name,
            path.attributes.nexthop_text,
            vni=vni,
            mac=mac,
            ip=ip,
            seq=seq,
            from_=old.attributes.nexthop_text if action == "moved" and old else None,
        )
