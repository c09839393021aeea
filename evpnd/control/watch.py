"""Live events for `evpnctl watch`: route and MAC changes, session changes, kernel repairs.

Publishing costs nothing while nobody watches. A watcher that reads too slowly does not hold up
the daemon: its queue is bounded, and what did not fit is reported as a count of lost events
instead of being buffered without limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from evpnd.events import Event, RouteChanged
from evpnd.evpn.identifiers import ip_to_text, mac_to_text
from evpnd.evpn.routes import MacIpRoute
from evpnd.rib.bestpath import mobility
from evpnd.rib.locrib import RouteChange

Item = dict[str, Any]


class _Watcher:
    def __init__(self, limit: int) -> None:
        self.queue: asyncio.Queue[Item] = asyncio.Queue(limit)
        self.lost = 0


class EventStream:
    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._watchers: set[_Watcher] = set()

    def publish(self, event: Event) -> None:
        if not self._watchers:
            return
        item = {"time": round(time.time(), 3), "event": event.kind, **event.fields()}
        for watcher in self._watchers:
            try:
                watcher.queue.put_nowait(item)
            except asyncio.QueueFull:
                watcher.lost += 1

    def follow(self) -> AsyncIterator[Item]:
        """The events from now on. The watcher is registered before this returns (not at the
        first iteration), so an event published after the call is never missed."""
        watcher = _Watcher(self.limit)
        self._watchers.add(watcher)
        return self._drain(watcher)

    async def _drain(self, watcher: _Watcher) -> AsyncIterator[Item]:
        try:
            while True:
                if watcher.lost and not watcher.queue.full():
                    lost, watcher.lost = watcher.lost, 0
                    yield {"time": round(time.time(), 3), "event": "lost", "count": lost}
                yield await watcher.queue.get()
        finally:
            self._watchers.discard(watcher)

    def route_changes(self, changes: list[RouteChange]) -> None:
        """Best-path changes as events: added, changed, moved (another next hop, or between
        local and remote), withdrawn."""
        if not self._watchers:
            return
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
            self.publish(
                RouteChanged(
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
            )
