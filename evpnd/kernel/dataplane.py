"""The data plane: keeps the kernel's FDB, flood and neighbour entries equal to what the RIB
says (a reconciler of desired against actual), and turns local MACs and MAC/IP bindings into
routes. Runs in the daemon's event loop; the netlink work is batched."""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import functools
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from evpnd.bgp.attributes import AsPath, PathAttributes
from evpnd.config import L3VniConfig
from evpnd.evpn.extcommunities import TUNNEL_VXLAN, Encapsulation, ExtCommunity, MacMobility
from evpnd.evpn.identifiers import ZERO_ESI, ip_to_text, mac_to_text
from evpnd.evpn.routes import EvpnRoute, MacIpRoute
from evpnd.kernel import iproutes as ipr
from evpnd.kernel import neighbours as nl
from evpnd.kernel.desired import Changes, Desired, DesiredState, L3Ports, VniPorts, diff
from evpnd.kernel.duplicates import DuplicateDetector
from evpnd.kernel.iproutes import RT_TABLE_MAIN
from evpnd.kernel.links import VxlanPort, discover
from evpnd.kernel.netlink import Events, Writer, dump, dump_routes
from evpnd.rib.bestpath import mobility
from evpnd.rib.locrib import RouteChange

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon

log = structlog.get_logger("evpnd.kernel")

# No NLM_F_ACK: the writer hears only of refusals (see netlink.Writer.send).
_SET = nl.NLM_F_REQUEST | nl.NLM_F_CREATE | nl.NLM_F_REPLACE
_APPEND = nl.NLM_F_REQUEST | nl.NLM_F_CREATE | nl.NLM_F_APPEND
_DEL = nl.NLM_F_REQUEST
_REMOTE_FLAGS = nl.NTF_MASTER | nl.NTF_SELF | nl.NTF_EXT_LEARNED
_LEARNED_STATES = nl.NUD_REACHABLE | nl.NUD_STALE | nl.NUD_DELAY | nl.NUD_PROBE

LocalKey = tuple[int, bytes, bytes]  # (VNI, MAC, IP or b"")
#: removals per write from which our own removals' notifications are filtered in the kernel
BULK_REMOVAL = 1000
#: pending FDB changes at which a write starts before the current burst of UPDATEs is done
#: (benchmarks/converge.py: 2,000 to 10,000 all pipeline well)
EAGER_WRITE = 5000


#: upper bounds (seconds) of the UPDATE-to-kernel histogram's buckets
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Counters:
    netlink_ops: int = 0
    netlink_errors: int = 0
    repairs: int = 0
    local_moves: int = 0
    #: per bucket of LATENCY_BUCKETS (and one for more), and the sum in seconds
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1


class DataPlane:
    def __init__(self, daemon: Daemon, reconcile_interval: float = 10.0) -> None:
        self.daemon = daemon
        self.loop = daemon.loop
        self.writer = Writer()
        #: The kernel's part of a write runs in this thread (sendmsg releases the GIL), so that
        #: decoding the next UPDATEs overlaps it. One worker: batches stay in order.
        self._pool: concurrent.futures.ThreadPoolExecutor | None = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netlink-writer")
        )
        self._inflight = 0
        self.events: Events | None = None
        self.ports: dict[int, VxlanPort] = {}
        self._by_vxlan: dict[int, VxlanPort] = {}
        self._by_bridge: dict[int, VxlanPort] = {}
        self.vni_ports: dict[int, VniPorts] = {}
        #: L3VNIs (symmetric IRB): their vxlan ports, and where their routes go
        self.l3_ports: dict[int, VxlanPort] = {}
        self.l3_vni_ports: dict[int, L3Ports] = {}
        self._discovered: tuple[dict[int, VxlanPort], tuple[L3VniConfig, ...]] | None = None
        self.state = DesiredState(
            daemon.rib,
            self.vni_ports,
            daemon.importing_vnis,
            self.l3_vni_ports,
            daemon.importing_l3vnis,
        )
        self.programmed = Desired()
        self.local: dict[LocalKey, bool] = {}  # -> sticky
        self._local_macs: dict[tuple[int, bytes], int] = {}  # (VNI, MAC) -> local routes
        self._local_seq: dict[tuple[int, bytes], int] = {}
        self.counters = Counters()
        self.duplicates = DuplicateDetector()
        self.reconcile_interval = reconcile_interval
        self.started = time.monotonic()
        self.settled = False
        self._apply_handle: asyncio.Handle | None = None
        self._rediscover_handle: asyncio.TimerHandle | None = None
        self._reconcile_handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        #: loop time of the oldest UPDATE whose changes are not written yet
        self.oldest_update: float | None = None

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.events = Events()
        await self._discover()
        self.programmed = self._actual()
        self.daemon.rib.subscribe(self.state.on_changes)
        self.daemon.rib.subscribe(self._on_rib)
        self._learn_all()
        self.loop.add_reader(self.events.fileno(), self._on_events)
        self._task = self.loop.create_task(self._periodic())
        self._schedule_apply()

    async def stop(self, flush: bool = False) -> None:
        """By default the kernel entries stay, so that a restart does not interrupt traffic."""
        if self._task is not None:
            self._task.cancel()
        if self.events is not None:
            self.loop.remove_reader(self.events.fileno())
            self.events.close()
            self.events = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if flush:
            self._write(diff(self.programmed, Desired()))
        self.writer.close()

    # --- discovery ---------------------------------------------------------------------------

    async def _discover(self) -> None:
        try:
            ports, notes = await self.loop.run_in_executor(None, discover)
        except OSError as exc:
            log.error("cannot read links", error=str(exc))
            return
        for note in notes:
            log.warning("vni", problem=note)
        l3_config = {l3.vni: l3 for l3 in self.daemon.config.evpn.l3vnis}
        # the kernel's ports and the L3VNI configuration together decide what is L2 and L3
        if (ports, self.daemon.config.evpn.l3vnis) == self._discovered:
            return
        self._discovered = (ports, self.daemon.config.evpn.l3vnis)
        l3_ports = {vni: p for vni, p in ports.items() if vni in l3_config}
        ports = {vni: p for vni, p in ports.items() if vni not in l3_config}
        for vni, port in l3_ports.items():
            if self.l3_ports.get(vni) != port:
                log.info(
                    "l3vni found",
                    vni=vni,
                    vxlan=port.name,
                    bridge=port.bridge_name,
                    router_mac=port.bridge_mac,
                    vrf=port.vrf or "default",
                    table=port.vrf_table,
                )
                self.daemon.events.publish("l3vni", action="found", vni=vni, vxlan=port.name)
        for vni, port in self.l3_ports.items():
            if vni not in l3_ports:
                log.info("l3vni gone", vni=vni, vxlan=port.name)
                self.daemon.events.publish("l3vni", action="gone", vni=vni, vxlan=port.name)
        self.l3_ports = l3_ports
        self.l3_vni_ports.clear()
        for vni, port in l3_ports.items():
            self.l3_vni_ports[vni] = L3Ports(
                vni, port.ifindex, port.bridge_ifindex, port.vrf_table or RT_TABLE_MAIN
            )
        for vni, port in ports.items():
            if self.ports.get(vni) != port:
                log.info(
                    "vni found",
                    vni=vni,
                    vxlan=port.name,
                    bridge=port.bridge_name,
                    vtep=port.local_ip,
                    problems=port.problems or None,
                )
                self.daemon.events.publish(
                    "vni", action="found", vni=vni, vxlan=port.name, problems=port.problems
                )
        for vni, port in self.ports.items():
            if vni not in ports:
                log.info("vni gone", vni=vni, vxlan=port.name)
                self.daemon.events.publish("vni", action="gone", vni=vni, vxlan=port.name)
        self.ports = ports
        # looked up once per netlink event: by vxlan port and by bridge (SVI)
        self._by_vxlan = {p.ifindex: p for p in ports.values()}
        self._by_bridge = {p.bridge_ifindex: p for p in ports.values()}
        self.vni_ports.clear()
        for vni, port in ports.items():
            local = (
                socket.inet_pton(
                    socket.AF_INET6 if ":" in (port.local_ip or "") else socket.AF_INET,
                    port.local_ip,
                )
                if port.local_ip
                else b""
            )
            self.vni_ports[vni] = VniPorts(vni, port.ifindex, port.bridge_ifindex, local)
        self._filter_events()
        self.daemon.kernel_changed(ports, l3_ports)
        self.state.rebuild()
        # Compare with what the kernel has, not with the old wish: changes queued before the
        # rebuild and not yet written must not be lost.
        self.state.take()
        self._schedule_reconcile(0)
        # VNIs that left take their local routes with them
        gone = [k for k in self.local if k[0] not in ports]
        if gone:
            self._withdraw_local(gone)

    def _managed(self) -> tuple[frozenset[int], frozenset[int]]:
        """The vxlan ports and the bridges (SVIs) of the L2 and L3 VNIs we program."""
        managed = [*self.ports.values(), *self.l3_ports.values()]
        return frozenset(p.ifindex for p in managed), frozenset(p.bridge_ifindex for p in managed)

    def _managed_ports(self) -> frozenset[int]:
        vxlans, bridges = self._managed()
        return vxlans | bridges

    def _filter_events(self) -> None:
        if self.events is None:
            return
        try:
            self.events.ignore_own(self._managed_ports(), self.writer.port_id)
        except OSError as exc:
            log.warning("cannot filter netlink events in the kernel", error=str(exc))

    # --- kernel state ------------------------------------------------------------------------

    def _actual(self) -> Desired:
        """The entries the kernel has that are ours: extern_learn FDB and neighbour entries
        and flood entries on the vxlan ports evpnd manages."""
        actual = Desired()
        vxlans, svis = self._managed()
        try:
            bridge = dump(nl.AF_BRIDGE)
            inet = dump(socket.AF_INET) + dump(socket.AF_INET6)
            # routes of our protocol number are ours, in whatever table
            actual.routes = dump_routes()
        except OSError as exc:
            log.error("cannot dump neighbours", error=str(exc))
            return self.programmed
        for n in bridge:
            if n.ifindex not in vxlans or n.mac is None or n.dst is None:
                continue
            if n.mac == nl.ZERO_MAC:
                actual.flood[(n.ifindex, n.dst)] = 1
            elif n.flags & nl.NTF_EXT_LEARNED:
                actual.fdb[(n.ifindex, n.mac)] = n.dst
        for n in inet:
            if n.ifindex in svis and n.flags & nl.NTF_EXT_LEARNED and n.dst and n.mac:
                actual.neigh[(n.ifindex, n.dst)] = n.mac
        return actual

    def reconcile(self) -> int:
        """Compare the kernel with the RIB and repair the difference. Before the peers have
        sent End-of-RIB (or the restart time has passed), nothing is removed: routes that
        still come back must not lose their entries in between."""
        if self._inflight:
            # batches still on their way would look like differences
            self._schedule_reconcile(0.2)
            return 0
        self.settled = self.settled or self._is_settled()
        actual = self._actual()
        changes = diff(actual, self.state.desired)
        if not self.settled:
            changes.fdb_del.clear()
            changes.flood_del.clear()
            changes.neigh_del.clear()
            changes.route_del.clear()
        self.programmed = actual
        if changes:
            counts = {
                "fdb": len(changes.fdb_set),
                "flood": len(changes.flood_add),
                "neigh": len(changes.neigh_set),
                "removed": len(changes.fdb_del) + len(changes.flood_del) + len(changes.neigh_del),
            }
            log.info(
                "reconcile", repairs=len(changes), routes=len(changes.route_set) or None, **counts
            )
            self.counters.repairs += len(changes)
            self.daemon.events.publish("kernel", action="repaired", entries=len(changes), **counts)
            self._write(changes)
        return len(changes)

    def compare(self) -> dict[str, object]:
        """The difference between what the RIB wants and what the kernel has, for people:
        `evpnctl show kernel`. Read-only: the next reconciliation does the repairs."""
        actual = self._actual()
        wanted = self.state.desired
        changes = diff(actual, wanted)

        rows: list[dict[str, object]] = []

        def row(kind: str, key: tuple[int, bytes], want: str | None, have: str | None) -> None:
            port = (self._by_bridge if kind == "neigh" else self._by_vxlan).get(key[0])
            rows.append(
                {
                    "kind": kind,
                    "vni": port.vni if port else None,
                    "device": (port.bridge_name if kind == "neigh" else port.name)
                    if port
                    else None,
                    "entry": mac_to_text(key[1]) if kind == "fdb" else ip_to_text(key[1]),
                    "wanted": want,
                    "kernel": have,
                }
            )

        for key, vtep in changes.fdb_set.items():
            have = actual.fdb.get(key)
            row("fdb", key, f"dst {ip_to_text(vtep)}", f"dst {ip_to_text(have)}" if have else None)
        for key in changes.fdb_del:
            row("fdb", key, None, f"dst {ip_to_text(actual.fdb[key])}")
        for key in changes.flood_add:
            row("flood", key, "00:00:00:00:00:00 dst", None)
        for key in changes.flood_del:
            row("flood", key, None, "00:00:00:00:00:00 dst")
        for key, mac in changes.neigh_set.items():
            had = actual.neigh.get(key)
            row(
                "neigh",
                key,
                f"lladdr {mac_to_text(mac)}",
                f"lladdr {mac_to_text(had)}" if had else None,
            )
        for key in changes.neigh_del:
            row("neigh", key, None, f"lladdr {mac_to_text(actual.neigh[key])}")

        def route_text(nexthops: ipr.Nexthops | None) -> str | None:
            if not nexthops:
                return None
            words = []
            for hop in nexthops:
                port = next(
                    (p for p in self.l3_ports.values() if p.bridge_ifindex == hop.oif), None
                )
                device = port.bridge_name if port else f"ifindex {hop.oif}"
                words.append(f"via {ip_to_text(hop.gateway)} dev {device} onlink")
            return "; ".join(words)

        for route_key in [*changes.route_set, *changes.route_del]:
            rows.append(
                {
                    "kind": "route",
                    "vni": None,
                    "device": f"table {route_key.table}",
                    "entry": f"{ip_to_text(route_key.dst)}/{route_key.dst_len}",
                    "wanted": route_text(changes.route_set.get(route_key)),
                    "kernel": route_text(actual.routes.get(route_key)),
                }
            )
        rows.sort(key=lambda r: (str(r["kind"]), r["vni"] or 0, str(r["entry"])))
        return {
            "programming": True,
            "in_sync": not rows,
            "settled": self.settled,
            "wanted": {
                "fdb": len(wanted.fdb),
                "flood": len(wanted.flood),
                "neigh": len(wanted.neigh),
                "routes": len(wanted.routes),
            },
            "kernel": {
                "fdb": len(actual.fdb),
                "flood": len(actual.flood),
                "neigh": len(actual.neigh),
                "routes": len(actual.routes),
            },
            "differences": rows,
        }

    def _is_settled(self) -> bool:
        if time.monotonic() - self.started > self.daemon.config.graceful_restart_time:
            return True
        drivers = list(self.daemon.drivers.values())
        return all(d.end_of_rib_received for d in drivers if not d.dynamic)

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(1 if not self.settled else self.reconcile_interval)
            if not self.settled:
                if self._is_settled():
                    self.reconcile()
                continue
            self.reconcile()

    # --- programming -------------------------------------------------------------------------

    def _on_rib(self, changes: list[RouteChange]) -> None:
        self._check_moves(changes)
        if self.state.pending_fdb >= EAGER_WRITE:
            # a table is arriving: hand this much to the writer thread now, rather than
            # after the whole burst is decoded
            self._apply()
            return
        self._schedule_apply()

    def _schedule_apply(self) -> None:
        if self._apply_handle is None:
            self._apply_handle = self.loop.call_soon(self._apply)

    def _apply(self) -> None:
        self._apply_handle = None
        changes = self.state.take()
        if changes:
            self._write(changes, since=self.oldest_update)
        self.oldest_update = None

    def _write(self, changes: Changes, since: float | None = None) -> None:
        writer = self.writer
        batch: list[tuple[bytes, object]] = []

        def fdb(
            kind: int,
            flags: int,
            ifindex: int,
            mac: bytes,
            vtep: bytes,
            state: int,
            ntf: int,
            tag: tuple[object, ...],
        ) -> None:
            message = nl.fdb_message(kind, flags, writer.next_seq(), ifindex, mac, vtep, state, ntf)
            batch.append((message, tag))

        def neigh(
            kind: int,
            flags: int,
            ifindex: int,
            ip: bytes,
            mac: bytes | None,
            state: int,
            ntf: int,
            tag: tuple[object, ...],
        ) -> None:
            message = nl.neigh_message(kind, flags, writer.next_seq(), ifindex, ip, mac, state, ntf)
            batch.append((message, tag))

        new, remove = nl.RTM_NEWNEIGH, nl.RTM_DELNEIGH
        for (ifindex, mac), vtep in changes.fdb_set.items():
            fdb(
                new,
                _SET,
                ifindex,
                mac,
                vtep,
                nl.NUD_REACHABLE,
                _REMOTE_FLAGS,
                ("fdb", ifindex, mac, vtep),
            )
        for ifindex, mac in changes.fdb_del:
            vtep = self.programmed.fdb.get((ifindex, mac), bytes(4))
            # Two messages: with both flags the kernel gives up at the bridge's ENOENT (the
            # MAC now lives on a local port, say a VM's new home) and leaves the vxlan entry.
            fdb(remove, _DEL, ifindex, mac, vtep, 0, nl.NTF_SELF, ("fdb-del", ifindex, mac, vtep))
            fdb(
                remove,
                _DEL,
                ifindex,
                mac,
                vtep,
                0,
                nl.NTF_MASTER,
                ("fdb-master-del", ifindex, mac, vtep),
            )
        for ifindex, vtep in changes.flood_add:
            fdb(
                new,
                _APPEND,
                ifindex,
                nl.ZERO_MAC,
                vtep,
                nl.NUD_PERMANENT,
                nl.NTF_SELF,
                ("flood", ifindex, vtep),
            )
        for ifindex, vtep in changes.flood_del:
            fdb(
                remove,
                _DEL,
                ifindex,
                nl.ZERO_MAC,
                vtep,
                0,
                nl.NTF_SELF,
                ("flood-del", ifindex, vtep),
            )
        for (ifindex, ip), mac in changes.neigh_set.items():
            neigh(
                new,
                _SET,
                ifindex,
                ip,
                mac,
                nl.NUD_NOARP,
                nl.NTF_EXT_LEARNED,
                ("neigh", ifindex, ip, mac),
            )
        # Only entries that are ours: one an operator or orchestrator replaced is theirs now
        # (FRR deletes those, FRRouting/frr#21472).
        programmed_neigh = self.programmed.neigh
        changes.neigh_del = {k for k in changes.neigh_del if k in programmed_neigh}
        for ifindex, ip in changes.neigh_del:
            neigh(remove, _DEL, ifindex, ip, None, 0, 0, ("neigh-del", ifindex, ip))
        for key, nexthop in changes.route_set.items():
            message = ipr.route_message(ipr.RTM_NEWROUTE, _SET, writer.next_seq(), key, nexthop)
            batch.append((message, ("route", *key, nexthop)))
        for key in changes.route_del:
            message = ipr.route_message(ipr.RTM_DELROUTE, _DEL, writer.next_seq(), key)
            batch.append((message, ("route-del", *key)))
        if not batch:
            return
        # Our own removals' notifications are dropped in the kernel while we make many of
        # them (the periodic reconciliation still finds anyone else's); new entries' always.
        bulk_removal = len(changes.fdb_del) + len(changes.neigh_del) >= BULK_REMOVAL
        # What we asked for counts as programmed at once, so that the next batch is built on
        # it; refusals are taken back when the kernel's answer comes.
        self._record(changes)
        self.counters.netlink_ops += len(batch)
        filters = None
        if bulk_removal and self.events is not None:
            ports = self._managed_ports()
            filters = (ports, self.writer.port_id)
        self._inflight += 1
        if self._pool is None:  # stopping: write here and now
            self._sent(self._send(batch, filters), since)
            return
        future = self._pool.submit(self._send, batch, filters)
        future.add_done_callback(functools.partial(self._sent_soon, since))

    def _send(
        self, batch: list[tuple[bytes, object]], filters: tuple[frozenset[int], int] | None
    ) -> list[tuple[object, int]] | None:
        """In the writer thread: the batch, and the removal filter around it."""
        events = self.events
        try:
            if filters is not None and events is not None:
                events.ignore_own(*filters, deletions=True)
            return self.writer.send(batch)
        except OSError as exc:
            log.error("netlink write failed", error=str(exc), entries=len(batch))
            return None
        finally:
            if filters is not None and events is not None:
                with contextlib.suppress(OSError):
                    events.ignore_own(*filters)

    def _sent_soon(
        self,
        since: float | None,
        future: concurrent.futures.Future[list[tuple[object, int]] | None],
    ) -> None:
        exc = future.exception()
        if exc is not None:  # (OSError is handled in _send: this is a bug, say so)
            log.error("netlink writer failed", error=repr(exc))
        failures = None if exc is not None else future.result()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nothing left to record
            self.loop.call_soon_threadsafe(self._sent, failures, since)

    def _sent(self, failures: list[tuple[object, int]] | None, since: float | None) -> None:
        self._inflight -= 1
        if failures is None:
            self._schedule_reconcile(1.0)  # find out what did get through
            return
        if since is not None:
            self.counters.observe(self.loop.time() - since)
        # ENOENT on a removal: already gone, which is what was wanted
        failed = [
            tag
            for tag, err in failures
            if not (err == 2 and isinstance(tag, tuple) and str(tag[0]).endswith("-del"))
        ]
        if not failed:
            return
        errors = dict(failures)
        programmed = self.programmed
        for tag in failed:
            self.counters.netlink_errors += 1
            log.warning("netlink refused", entry=_describe(tag), errno=errors.get(tag))
            assert isinstance(tag, tuple)
            kind, *fields = tag
            # not programmed after all: the next reconciliation tries again
            if kind == "fdb":
                programmed.fdb.pop((fields[0], fields[1]), None)
            elif kind == "flood":
                programmed.flood.pop((fields[0], fields[1]), None)
            elif kind == "neigh":
                programmed.neigh.pop((fields[0], fields[1]), None)
            elif kind == "route":
                programmed.routes.pop(ipr.RouteKey(*fields[:3]), None)

    def _record(self, changes: Changes) -> None:
        programmed = self.programmed
        programmed.fdb.update(changes.fdb_set)
        for key in changes.fdb_del:
            programmed.fdb.pop(key, None)
        programmed.flood.update(dict.fromkeys(changes.flood_add, 1))
        for key in changes.flood_del:
            programmed.flood.pop(key, None)
        programmed.neigh.update(changes.neigh_set)
        for key in changes.neigh_del:
            programmed.neigh.pop(key, None)
        programmed.routes.update(changes.route_set)
        for route_key in changes.route_del:
            programmed.routes.pop(route_key, None)

    # --- events ------------------------------------------------------------------------------

    def _on_events(self) -> None:
        assert self.events is not None
        try:
            # New entries on vxlan ports are ours (the kernel does not learn there with
            # learning off); only their removal by someone else matters.
            vxlans = frozenset(p.ifindex for p in self.ports.values())
            neighbours, links, lost, routes = self.events.read(
                self.writer.port_id, vxlans, ipr.RTPROT_EVPND
            )
        except OSError as exc:
            log.error("netlink events", error=str(exc))
            return
        if links:
            if self._rediscover_handle is None:
                self._rediscover_handle = self.loop.call_later(0.1, self._rediscover)
        repair = False
        for n in neighbours:
            repair |= self._on_neighbour(n)
        if routes and self.l3_ports:
            repair = True  # one of our routes was changed or removed by someone else
        if repair:
            self._schedule_reconcile(0.05)
        elif lost:
            # The event buffer overran (a bulk write makes 200,000 notifications): compare once
            # things are quiet, rather than dumping the whole table in the middle of it.
            self._schedule_reconcile(2.0)

    def _schedule_reconcile(self, delay: float) -> None:
        if self._reconcile_handle is None:
            self._reconcile_handle = self.loop.call_later(delay, self._scheduled_reconcile)

    def _scheduled_reconcile(self) -> None:
        self._reconcile_handle = None
        self.reconcile()

    def rediscover(self) -> None:
        """Look at the links again soon (the configuration of L3VNIs changed, say)."""
        if self._rediscover_handle is None:
            self._rediscover_handle = self.loop.call_later(0, self._rediscover)

    def _rediscover(self) -> None:
        self._rediscover_handle = None
        self.loop.create_task(self._rediscover_now())

    async def _rediscover_now(self) -> None:
        await self._discover()
        self._schedule_apply()

    def _on_neighbour(self, n: nl.Neighbour) -> bool:
        """Handle one event; True when an entry of ours was touched by someone else."""
        if n.family == nl.AF_BRIDGE:
            if n.ifindex in self._by_vxlan:
                if n.flags & nl.NTF_EXT_LEARNED or n.mac == nl.ZERO_MAC:
                    fdb_key = (n.ifindex, n.mac or b"")
                    deleted = n.kind == nl.RTM_DELNEIGH
                    ours = fdb_key in self.state.desired.fdb or (
                        n.mac == nl.ZERO_MAC
                        and (n.ifindex, n.dst or b"") in self.state.desired.flood
                    )
                    return deleted and ours
                return False
            port = self._by_bridge.get(n.master) if n.master is not None else None
            if port is None or n.mac is None or n.state & nl.NUD_PERMANENT:
                return False  # the bridge's and its ports' own addresses are never routes
            if n.mac[0] & 1:
                return False  # multicast (IPv6 ND's 33:33:…): the bridge's business, not BGP's
            # No extern_learn test here: we never program local ports, and an orchestrator's
            # `bridge fdb replace … master static` over one of our entries moves it to the
            # port keeping the flag — that entry is local (a VM's new home) all the same.
            mac_key = (port.vni, n.mac, b"")
            if n.kind == nl.RTM_DELNEIGH:
                if mac_key in self.local:
                    self._withdraw_local([mac_key])
            else:
                self._learn([(mac_key, bool(n.state & nl.NUD_NOARP))])
            return False
        port = self._by_bridge.get(n.ifindex)
        if port is None or n.dst is None:
            return False
        if n.flags & nl.NTF_EXT_LEARNED:
            return n.kind == nl.RTM_DELNEIGH and (n.ifindex, n.dst) in self.state.desired.neigh
        # someone else's entry where ours was: it is theirs now, never to be removed by us
        self.programmed.neigh.pop((n.ifindex, n.dst), None)
        if n.mac is not None and n.mac[0] & 1:
            return False  # multicast groups' NOARP entries (224.0.0.22 and the like)
        key = (port.vni, n.mac or b"", n.dst)
        # reachable, stale, delay, probe: learned; permanent: added by the operator
        alive = (
            n.kind == nl.RTM_NEWNEIGH and n.mac and n.state & (_LEARNED_STATES | nl.NUD_PERMANENT)
        )
        if alive:
            assert n.mac is not None
            if (port.vni, n.mac, b"") not in self.local and any(
                not p.source.is_local for p in self.daemon.rib.mac_paths(port.vni, n.mac)
            ):
                # An ARP entry for a host that lives behind another VTEP (it moved away, or
                # never was here): announcing it would start a sequence-number war.
                return False
            self._learn([(key, False)])
        else:
            gone = [k for k in self.local if k[0] == port.vni and k[2] == n.dst]
            if gone:
                self._withdraw_local(gone)
        return False

    # --- local learning ----------------------------------------------------------------------

    def _learn_all(self) -> None:
        try:
            bridge = dump(nl.AF_BRIDGE)
            inet = dump(socket.AF_INET) + dump(socket.AF_INET6)
        except OSError as exc:
            log.error("cannot dump neighbours", error=str(exc))
            return
        for n in bridge + inet:
            self._on_neighbour(n)

    def local_mac_counts(self) -> dict[int, int]:
        """Local MACs per VNI (for `show vni` and the metrics)."""
        counts: dict[int, int] = {}
        for vni, _ in self._local_macs:
            counts[vni] = counts.get(vni, 0) + 1
        return counts

    def _learn(self, items: list[tuple[LocalKey, bool]]) -> None:
        fresh = [
            (k, sticky)
            for k, sticky in items
            if self.local.get(k) != sticky and not self.duplicates.is_frozen(k[0], k[1])
        ]
        if not fresh:
            return
        for key, sticky in fresh:
            if key not in self.local:
                self._local_macs[key[:2]] = self._local_macs.get(key[:2], 0) + 1
            self.local[key] = sticky
        self._announce_local([k for k, _ in fresh])

    def _announce_local(self, keys: list[LocalKey]) -> None:
        vnis = {v.vni: v for v in self.daemon.vnis}
        groups: dict[PathAttributes, list[EvpnRoute]] = {}
        for vni_number, mac, ip in keys:
            vni = vnis.get(vni_number)
            if vni is None:
                continue
            sticky = self.local[(vni_number, mac, ip)]
            sequence = self._sequence(vni_number, mac)
            if self.duplicates.is_frozen(vni_number, mac):
                continue  # this very move froze it: it stays where the fabric has it
            communities: tuple[ExtCommunity, ...] = (Encapsulation(TUNNEL_VXLAN), *vni.export_rts)
            if sequence or sticky:
                communities += (MacMobility(sequence, sticky),)
            l3 = self.daemon.l3_of_l2.get(vni_number) if ip else None
            if l3 is not None:
                # RFC 9135 §5.1: a host's MAC/IP also carries the L3VNI, its RTs, and the
                # Router's MAC, so remote VTEPs can route to it
                communities += l3.l3_communities()
            attrs = PathAttributes(
                origin=0,
                as_path=AsPath(),
                ext_communities=communities,
                nexthop=socket.inet_pton(
                    socket.AF_INET6 if ":" in vni.vtep_ip else socket.AF_INET, vni.vtep_ip
                ),
            )
            groups.setdefault(attrs, []).append(
                MacIpRoute(vni.rd, 0, mac, ip, ZERO_ESI, vni_number, l3.vni if l3 else None)
            )
        for attrs, routes in groups.items():
            self.daemon.rib.update(self.daemon.local_source, routes, attrs, [])

    def unfreeze(self, vni: int, mac: bytes) -> bool:
        """`evpnctl clear mac`: forget a duplicate-address freeze; the MAC is announced again
        if it is here (read back from the kernel)."""
        if not self.duplicates.is_frozen(vni, mac):
            return False
        self.duplicates.clear(vni, mac)
        log.info("duplicate address: mac cleared", vni=vni, mac=mac_to_text(mac))
        self.daemon.events.publish("mac", action="cleared", vni=vni, mac=mac_to_text(mac))
        self._learn_all()
        here = [k for k in self.local if k[0] == vni and k[1] == mac]
        if here:
            self._announce_local(here)
        return True

    def reannounce_local(self) -> None:
        """Local routes again, with what changed in their attributes (an L3VNI came or went)."""
        if self.local:
            self._announce_local(list(self.local))

    def _sequence(self, vni: int, mac: bytes) -> int:
        """RFC 7432 §15: a MAC learned here that another VTEP advertises is announced with a
        sequence number above theirs."""
        remote = [
            mobility(p.attributes)[1]
            for p in self.daemon.rib.mac_paths(vni, mac)
            if not p.source.is_local
        ]
        current = self._local_seq.get((vni, mac))
        if remote:
            wanted = max(remote) + 1
            if current is None or current < wanted:
                self.counters.local_moves += 1
                log.info("mac moved here", vni=vni, mac=mac_to_text(mac), sequence=wanted)
                self.daemon.events.publish(
                    "mac", action="moved here", vni=vni, mac=mac_to_text(mac), seq=wanted
                )
                self._note_move(vni, mac)
                self._local_seq[(vni, mac)] = wanted
                return wanted
        return current or 0

    def _note_move(self, vni: int, mac: bytes) -> None:
        if self.duplicates.moved(vni, mac, time.monotonic()):
            log.warning(
                "duplicate address: mac frozen",
                vni=vni,
                mac=mac_to_text(mac),
                moves=self.duplicates.moves,
                window_s=self.duplicates.window,
                hint="this VTEP stops announcing it; find the duplicate host",
            )
            self.daemon.events.publish("mac", action="frozen", vni=vni, mac=mac_to_text(mac))

    def _withdraw_local(self, keys: list[LocalKey]) -> None:
        vnis = {v.vni: v for v in self.daemon.vnis}
        routes: list[EvpnRoute] = []
        for vni_number, mac, ip in keys:
            if self.local.pop((vni_number, mac, ip), None) is not None:
                left = self._local_macs.pop((vni_number, mac), 1) - 1
                if left:
                    self._local_macs[(vni_number, mac)] = left
            vni = vnis.get(vni_number)
            if vni is not None:
                routes.append(MacIpRoute(vni.rd, 0, mac, ip, ZERO_ESI, vni_number))
        if routes:
            self.daemon.rib.update(self.daemon.local_source, [], PathAttributes(), routes)

    def _check_moves(self, changes: list[RouteChange]) -> None:
        """A remote route with a higher sequence for a MAC learned here: it moved away, so the
        local route goes (the remote entry replaces the kernel's local one)."""
        for _, _, new in changes:
            if new is None or new.source.is_local or not isinstance(new.route, MacIpRoute):
                continue
            route = new.route
            vni, mac = route.label1, route.mac
            if (vni, mac) not in self._local_macs:
                continue
            sticky, sequence = mobility(new.attributes)
            ours = self._local_seq.get((vni, mac), 0)
            mine = [k for k in self.local if k[0] == vni and k[1] == mac]
            if mine and (sequence > ours or sticky) and not any(self.local[k] for k in mine):
                self.counters.local_moves += 1
                self._note_move(vni, mac)
                log.info(
                    "mac moved away",
                    vni=vni,
                    mac=mac_to_text(mac),
                    to=new.source.name,
                    sequence=sequence,
                )
                self.daemon.events.publish(
                    "mac",
                    action="moved away",
                    vni=vni,
                    mac=mac_to_text(mac),
                    to=new.attributes.nexthop_text,
                    seq=sequence,
                )
                self._local_seq[(vni, mac)] = sequence
                self._withdraw_local(mine)


def _describe(tag: object) -> str:
    if not isinstance(tag, tuple):
        return str(tag)
    kind, *rest = tag
    parts = [str(kind)]
    for item in rest:
        if isinstance(item, bytes):
            parts.append(mac_to_text(item) if len(item) == 6 else ip_to_text(item))
        elif isinstance(item, tuple) and all(isinstance(h, ipr.Nexthop) for h in item):
            parts.append(" ".join(f"via {ip_to_text(h.gateway)} oif {h.oif}" for h in item))
        else:
            parts.append(str(item))
    return " ".join(parts)
