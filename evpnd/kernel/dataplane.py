"""The kernel shell: netlink sockets, the writer thread, timers. The decisions are elsewhere —
what the RIB wants (`desired.py`), what to write and what to take back (`reconciler.py`,
`operations.py`), what a kernel event means (`observe.py`) — and what a local MAC does to the RIB
is the daemon's business (`evpnd.local`), told through `on_local`.

It gets the narrow things it needs from whoever builds it (the daemon): the RIB to read, which
VNIs import a path, whether the peers have settled, where to report events, and where VNIs found
in the kernel and local observations go."""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog

from evpnd.config import L3VniConfig
from evpnd.events import Event, KernelRepaired, L3VniFound, L3VniGone, VniFound, VniGone
from evpnd.kernel import entry_text, invariant
from evpnd.kernel import iproutes as ipr
from evpnd.kernel import neighbours as nl
from evpnd.kernel import operations as ops
from evpnd.kernel.audit import Audit, Probed, Questions
from evpnd.kernel.desired import Changes, DesiredState, Entries, L3Ports, NeighKey, VniPorts
from evpnd.kernel.iproutes import RT_TABLE_MAIN
from evpnd.kernel.links import VxlanPort, discover
from evpnd.kernel.netlink import Events, Prober, Writer, dump, dump_routes
from evpnd.kernel.observe import meaning
from evpnd.kernel.reconciler import Reconciler, differences
from evpnd.kernel.reimport import Reimport
from evpnd.local.learning import Observation
from evpnd.ratelimit import Throttle
from evpnd.rib.locrib import Rib, RouteChange
from evpnd.rib.paths import Path

log = structlog.get_logger("evpnd.kernel")

#: removals per write from which our own removals' notifications are filtered in the kernel
#: (received UPDATEs reach the session in 16 KB slices: a withdrawal of 100,000 is written
#: 450 at a time, and each of those writes must be filtered)
BULK_REMOVAL = 100
#: pending FDB changes at which a write starts before the current burst of UPDATEs is done
#: (benchmarks/converge.py: 2,000 to 10,000 all pipeline well)
EAGER_WRITE = 5000
#: delay (seconds) before asking about entries someone else's notifications named: a burst of
#: them (`bridge fdb flush`, say) is asked about in one go
CHECK_DELAY = 0.05
#: seconds without a write of ours before the periodic pass reads the next slice back: the
#: audit checks a quiet kernel (a slice in the middle of a 100,000-MAC burst made it 30 %
#: slower, and what it read there was half-written)
AUDIT_QUIET = 2.0
#: past this many wanted entries `show kernel` does not recompute the wish from scratch (it
#: takes about a second per 300,000 routes, on the event loop); the tests cover the bookkeeping
SCRATCH_CHECK_LIMIT = 50_000
#: best paths whose import is worked out again per turn of the loop when what the VNIs
#: import changes (about 45 ms on the 2-core machine)
REIMPORT_SLICE = 10_000
#: upper bounds (seconds) of the UPDATE-to-kernel histogram's buckets
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Importing = Callable[[Path], list[int]]
T = TypeVar("T")
#: netlink messages, and at the same places the operations they carry out
Batch = tuple[list[bytes], list[ops.Operation]]
Failures = list[tuple[ops.Operation, int]]


@dataclass
class Counters:
    netlink_ops: int = 0
    netlink_errors: int = 0
    repairs: int = 0
    #: per bucket of LATENCY_BUCKETS (and one for more), and the sum in seconds
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.latency_sum += seconds
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1


class DataPlane:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        rib: Rib,
        *,
        importing: Importing,
        importing_l3: Importing,
        l3vni_configs: Callable[[], tuple[L3VniConfig, ...]],
        settled: Callable[[], bool],
        report: Callable[[Event], None],
        on_ports: Callable[[dict[int, VxlanPort], dict[int, VxlanPort]], None],
        on_local: Callable[[list[Observation]], None],
        reconcile_interval: float = 10.0,
    ) -> None:
        self.loop = loop
        self.l3vni_configs = l3vni_configs
        self.peers_settled = settled
        self.report = report
        self.on_ports = on_ports
        self.on_local = on_local
        self.reconcile_interval = reconcile_interval
        self.writer = Writer()
        self.prober = Prober()
        #: The audit's slices are read in a thread of their own, with a socket of their own:
        #: the writer must never wait behind 40,000 questions. (Entries a notification named
        #: are asked about in the writer thread, after the writes queued before them.)
        self._audit_pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit")
        self._audit_prober = Prober()
        #: The kernel's part of a write runs in this thread (sendmsg releases the GIL), so that
        #: decoding the next UPDATEs overlaps it. One worker: batches stay in order.
        self._pool: concurrent.futures.ThreadPoolExecutor | None = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="netlink-writer")
        )
        self._inflight = 0
        #: changes arrived while a write was under way: applied when it is done
        self._apply_waiting = False
        #: IP neighbour entries our writes under way remove: their removals' notifications
        #: carry nothing that says they are ours (neighbours.walk), so they are known by key
        #: until the write is done and they have been read
        self._removing: dict[NeighKey, None] = {}
        self.events: Events | None = None
        self.ports: dict[int, VxlanPort] = {}
        self._by_vxlan: dict[int, VxlanPort] = {}
        self._by_bridge: dict[int, VxlanPort] = {}
        #: L3VNIs (symmetric IRB): their vxlan ports, and where their routes go
        self.l3_ports: dict[int, VxlanPort] = {}
        self._discovered: tuple[dict[int, VxlanPort], tuple[L3VniConfig, ...]] | None = None
        self.state = DesiredState(rib, {}, importing, {}, importing_l3)
        self.reconciler = Reconciler(self.state)
        self.counters = Counters()
        self.settled = False
        self._apply_handle: asyncio.Handle | None = None
        self._rediscover_handle: asyncio.TimerHandle | None = None
        self._reconcile_handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._frozen = False
        #: wall time of the last periodic pass (metrics: a reconciliation that stopped)
        self.last_pass_wall: float | None = None
        self._refusal_log = Throttle(60.0)
        self.audit = Audit()
        #: entries someone else's notifications named, to ask the kernel about
        self._check_fdb: set[tuple[int, bytes]] = set()
        self._check_neigh: set[tuple[int, bytes]] = set()
        self._check_handle: asyncio.TimerHandle | None = None
        self._resyncing = False
        self._resync_again = False
        #: False when there are too many ports for the kernel-side event filter
        self._filtered = True
        #: loop time of the oldest UPDATE whose changes are not written yet
        self._oldest_update: float | None = None
        #: loop time of our last write (the audit waits for quiet)
        self._last_write = 0.0

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self.events = Events()
        await self._discover()
        # What of the kernel's is ours, and what is local here: read before anything is
        # written (the discovery asked for this comparison; it is the one made here).
        if self._reconcile_handle is not None:
            self._reconcile_handle.cancel()
            self._reconcile_handle = None
        self._resyncing = True
        await self._resync()
        self.loop.add_reader(self.events.fileno(), self._on_events)
        self._task = self.loop.create_task(self._periodic())
        self._schedule_apply()

    @property
    def frozen(self) -> bool:
        return self._frozen

    def freeze(self) -> None:
        """From now on the kernel is left as it is: the daemon is stopping, and the sessions
        it ends must not take their routes' entries with them (a restart keeps forwarding)."""
        self._frozen = True
        handles = (
            self._apply_handle,
            self._reconcile_handle,
            self._rediscover_handle,
            self._check_handle,
        )
        for handle in handles:
            if handle is not None:
                handle.cancel()
        self._apply_handle = self._reconcile_handle = self._rediscover_handle = None
        self._check_handle = None
        if self._task is not None:
            self._task.cancel()

    async def stop(self, flush: bool = False) -> None:
        """By default the kernel entries stay, so that a restart does not interrupt traffic."""
        self.freeze()
        if self._pool is not None:
            # the writer thread finishes its batches first: they use the event socket's filter
            self._pool.shutdown(wait=True)
            self._pool = None
        if self.events is not None:
            self.loop.remove_reader(self.events.fileno())
            self.events.close()
            self.events = None
        if flush:
            self._write(self.reconciler.flush(), Changes(), flushing=True)
        self.writer.close()
        self._audit_pool.shutdown(wait=True, cancel_futures=True)
        self.prober.close()
        self._audit_prober.close()

    # --- the RIB's changes, from the daemon ----------------------------------------------------

    def on_changes(self, changes: list[RouteChange], received_at: float | None) -> None:
        """`received_at`: loop time of the UPDATE that caused them (for the latency metric)."""
        if self._frozen:
            return
        self.state.on_changes(changes)
        if received_at is not None and self._oldest_update is None:
            self._oldest_update = received_at
        if self.state.pending_fdb >= EAGER_WRITE:
            # a table is arriving: hand this much to the writer thread now, rather than after
            # the whole burst is decoded
            self._apply()
            return
        self._schedule_apply()

    async def imports_changed(self) -> dict[str, int] | None:
        """What the VNIs import changed (a reload): every best path's import is worked out
        again, in slices with the loop running between them (kernel/reimport.py), and what
        that changes is written as any route change is. Returns how many entries of each kind
        are written and removed; None when overtaken by the ports changing (a rebuild of its
        own) or by another reload."""
        if self._frozen:
            return None
        job = Reimport(self.state)
        while not job.step(REIMPORT_SLICE):
            if self.frozen:  # stopping: nothing more is written
                job.abandon()
                return None
            self._schedule_apply()
            await asyncio.sleep(0)
        self._schedule_apply()
        return job.result

    def _schedule_apply(self) -> None:
        if self._inflight:
            # The writer thread is still at the last batch: what changes meanwhile waits for
            # it (`_sent`) and goes as one batch. A burst of UPDATEs then makes a few large
            # writes instead of one per slice of input — each write costs the writer thread
            # a wait for the GIL, up to the switch interval, while the loop is busy decoding.
            self._apply_waiting = True
            return
        if self._apply_handle is None:
            self._apply_handle = self.loop.call_soon(self._apply)

    def _apply(self) -> None:
        if self._apply_handle is not None:
            self._apply_handle.cancel()
            self._apply_handle = None
        operations, changes = self.reconciler.take()
        if operations:
            self._write(operations, changes, since=self._oldest_update)
        self._oldest_update = None

    # --- discovery ---------------------------------------------------------------------------

    async def _discover(self) -> None:
        try:
            ports, notes = await self.loop.run_in_executor(None, discover)
        except OSError as exc:
            log.error("cannot read links", error=str(exc))
            return
        for note in notes:
            log.warning("vni", problem=note)
        l3_configs = self.l3vni_configs()
        # the kernel's ports and the L3VNI configuration together decide what is L2 and L3
        if (ports, l3_configs) == self._discovered:
            return
        self._discovered = (ports, l3_configs)
        l3_vnis = {l3.vni for l3 in l3_configs}
        l3_ports = {vni: p for vni, p in ports.items() if vni in l3_vnis}
        ports = {vni: p for vni, p in ports.items() if vni not in l3_vnis}
        for vni, port in l3_ports.items():
            if self.l3_ports.get(vni) != port:
                self.report(
                    L3VniFound(
                        vni,
                        port.name,
                        port.bridge_name,
                        port.bridge_mac,
                        port.vrf or "default",
                        port.vrf_table,
                    )
                )
        self._report_gone(self.l3_ports, l3_ports, L3VniGone)
        for vni, port in ports.items():
            if self.ports.get(vni) != port:
                self.report(
                    VniFound(vni, port.name, port.bridge_name, port.local_ip, port.problems)
                )
        self._report_gone(self.ports, ports, VniGone)
        self.ports, self.l3_ports = ports, l3_ports
        # looked up once per netlink event: by vxlan port and by bridge (SVI)
        self._by_vxlan = {p.ifindex: p for p in ports.values()}
        self._by_bridge = {p.bridge_ifindex: p for p in ports.values()}
        self._filter_events()
        # First the owner (it decides which VNIs exist and import what), then the wish
        self.on_ports(ports, l3_ports)
        self.state.set_ports(
            {vni: _vni_ports(port) for vni, port in ports.items()},
            {
                vni: L3Ports(vni, p.ifindex, p.bridge_ifindex, p.vrf_table or RT_TABLE_MAIN)
                for vni, p in l3_ports.items()
            },
        )
        # Compare with what the kernel has, not with the old wish: changes queued before the
        # new ports and not yet written must not be lost.
        self.state.take()
        self._schedule_reconcile(0)

    def _report_gone(
        self,
        before: dict[int, VxlanPort],
        after: dict[int, VxlanPort],
        gone: type[VniGone] | type[L3VniGone],
    ) -> None:
        for vni, port in before.items():
            if vni not in after:
                self.report(gone(vni, port.name))

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
            self._filtered = self.events.ignore_own(self._managed_ports(), self.writer.port_id)
        except OSError as exc:
            self._filtered = False
            log.warning("cannot filter netlink events in the kernel", error=str(exc))

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

    # --- what the kernel has -------------------------------------------------------------------

    async def _in_thread(self, work: Callable[[], T]) -> T | None:
        """`work` in the writer thread, after the writes queued before it; None when stopping."""
        if self._pool is None:
            return None
        return await asyncio.wrap_future(self._pool.submit(work))

    def _read_kernel(
        self,
    ) -> tuple[list[nl.Neighbour], list[nl.Neighbour], dict[ipr.RouteKey, ipr.Nexthops]] | None:
        """Every FDB entry, every IPv4 and IPv6 neighbour, and our routes (writer thread)."""
        try:
            bridge = dump(nl.AF_BRIDGE)
            inet = dump(socket.AF_INET) + dump(socket.AF_INET6)
            return bridge, inet, dump_routes()
        except OSError as exc:
            log.error("cannot read the kernel's tables", error=str(exc))
            return None

    def _actual(
        self,
        bridge: list[nl.Neighbour],
        inet: list[nl.Neighbour],
        routes: dict[ipr.RouteKey, ipr.Nexthops],
    ) -> Entries:
        """The entries the kernel has that are ours: extern_learn FDB and neighbour entries
        and flood entries on the vxlan ports evpnd manages, and routes of our protocol."""
        actual = Entries(routes=routes)
        vxlans, svis = self._managed()
        halves = actual.bridge = set()
        for n in bridge:
            if n.ifindex not in vxlans or n.mac is None:
                continue
            if n.dst is None:
                # the bridge's half of a remote MAC's entry (it points at the vxlan port)
                if n.flags & nl.NTF_EXT_LEARNED and n.mac != nl.ZERO_MAC:
                    halves.add((n.ifindex, n.mac))
            elif n.mac == nl.ZERO_MAC:
                actual.flood[(n.ifindex, n.dst)] = 1
            elif n.flags & nl.NTF_EXT_LEARNED:
                actual.fdb[(n.ifindex, n.mac)] = n.dst
        for n in inet:
            if n.ifindex in svis and n.flags & nl.NTF_EXT_LEARNED and n.dst and n.mac:
                actual.neigh[(n.ifindex, n.dst)] = n.mac
        return actual

    def relearn(self) -> None:
        """Read the kernel's local MACs and bindings again (after `clear mac`)."""
        self.loop.create_task(self._relearn())

    async def _relearn(self) -> None:
        found = await self._in_thread(self._read_kernel)
        if found is not None and not self._frozen:
            self._take_in(found[0] + found[1], checks=False)

    def reconcile(self) -> None:
        """A full comparison of the kernel with the RIB, from dumps: at start, when the ports
        change, and when notifications were lost (the event buffer overran) or a write failed
        as a whole. Never on a timer: see audit.py for what keeps the kernel right between.
        One at a time; one asked for meanwhile runs after it (its dump may be older)."""
        if self._frozen:
            return
        if self._resyncing:
            self._resync_again = True
            return
        self._resyncing = True
        self.loop.create_task(self._resync())

    async def _resync(self) -> None:
        """Every FDB entry and neighbour (in the writer thread: a dump of a large FDB costs
        seconds, and the event loop must answer meanwhile): what of it is ours, compared and
        repaired, and what it says of local hosts (notifications may have been lost)."""
        try:
            found = await self._in_thread(self._read_kernel)
        finally:
            self._resyncing = False
        if found is not None and not self._frozen:
            self._settle_when_ready()
            bridge, inet, routes = found
            operations, changes = self.reconciler.repair(
                self._actual(bridge, inet, routes), self.settled
            )
            self._repaired(operations, changes)
            self._take_in(bridge + inet, checks=False)
        if self._resync_again:
            self._resync_again = False
            self.reconcile()

    def _repaired(self, operations: list[ops.Operation], changes: Changes) -> None:
        if not changes:
            return
        removed = len(changes.fdb_del) + len(changes.flood_del) + len(changes.neigh_del)
        self.counters.repairs += len(changes)
        self.report(
            KernelRepaired(
                len(changes),
                len(changes.fdb_set),
                len(changes.flood_add),
                len(changes.neigh_set),
                len(changes.route_set),
                removed + len(changes.route_del),
                entry_text.named(changes, self.device_names()),
            )
        )
        self._write(operations, changes)

    # --- checking single entries ---------------------------------------------------------------

    def _schedule_check(self) -> None:
        if self._check_handle is None:
            self._check_handle = self.loop.call_later(CHECK_DELAY, self._checks_due)

    def _checks_due(self) -> None:
        self._check_handle = None
        questions = Questions(tuple(self._check_fdb), tuple(self._check_neigh))
        self._check_fdb, self._check_neigh = set(), set()
        self.loop.create_task(self._ask(questions, slice_=False))

    async def _ask(self, questions: Questions, slice_: bool = True) -> Probed | None:
        """Ask the kernel about these entries (in the writer thread, after the writes queued
        before), rewrite the wrong ones; the strays wait for the next pass."""
        if not questions.fdb and not questions.neigh:
            return None
        asked = self.loop.time()
        if slice_:
            probe = functools.partial(self._probe, questions, self._audit_prober)
            probed = await asyncio.wrap_future(self._audit_pool.submit(probe))
        else:
            probed = await self._in_thread(functools.partial(self._probe, questions, self.prober))
        if probed is None or self._frozen:
            return None
        operations, changes, wrong = self.reconciler.check(probed)
        now = self.loop.time()
        self.audit.answered(probed, wrong, now, now - asked, slice_)
        self._repaired(operations, changes)
        return probed

    def _probe(self, questions: Questions, prober: Prober) -> Probed | None:
        try:
            return questions.read(prober.ask(questions.requests()))
        except OSError as exc:
            log.error("cannot read kernel entries", error=str(exc), entries=len(questions.fdb))
            return None

    async def _pass(self) -> None:
        """The periodic pass: strays removed, the next slice of the table checked, our routes
        compared (a route dump: there are few)."""
        self._settle_when_ready()
        self.last_pass_wall = time.time()
        if self.state.reimporting is not None:
            # (entries not yet compared hold the old wish on purpose: not strays, not wrong)
            return
        self._write(*self.reconciler.take_retries())  # (their refusals were logged)
        if self.settled:
            self._repaired(*self.reconciler.take_strays())
        if self.loop.time() - self._last_write >= AUDIT_QUIET:
            await self._ask(self.audit.next(self.state.desired, self.reconciler.programmed))
        if self.l3_ports or self.reconciler.programmed.routes:
            await self._check_routes()

    def _settle_when_ready(self) -> None:
        """Once every peer has sent End-of-RIB (or the restart time passed), what is
        programmed and not wanted may go: a stray from then on (a resync removes it itself)."""
        if not self.settled and self.peers_settled():
            self.settled = True
            self.reconciler.settle()

    async def _check_routes(self) -> None:
        def read() -> dict[ipr.RouteKey, ipr.Nexthops] | None:
            try:
                return dump_routes()
            except OSError as exc:
                log.error("cannot dump routes", error=str(exc))
                return None

        routes = await self._in_thread(read)
        if routes is not None and not self._frozen:
            self._repaired(*self.reconciler.check_routes(routes))

    def known_differences(self) -> int:
        return self.reconciler.known_differences()

    def device_names(self) -> dict[int, str]:
        """The vxlan devices' and their bridges' names by interface index: what the kernel
        entries' keys are called in words (kernel/entry_text.py)."""
        names: dict[int, str] = {}
        for port in [*self.ports.values(), *self.l3_ports.values()]:
            names[port.ifindex] = port.name
            names[port.bridge_ifindex] = port.bridge_name
        return names

    def compare(self) -> dict[str, object]:
        """`evpnctl show kernel`: wanted against the kernel as evpnd knows it — its writes,
        the kernel's notifications and the entries it has asked about (audit.py). Read-only,
        and cheap at any size: no dump."""
        actual = self.reconciler.programmed
        wanted = self.state.desired
        bridges = {p.bridge_ifindex: p for p in [*self.ports.values(), *self.l3_ports.values()]}
        strays = self.reconciler.strays
        same = (
            not (strays.fdb or strays.flood)
            and actual.fdb == wanted.fdb
            and actual.flood.keys() == wanted.flood.keys()
            and actual.neigh == wanted.neigh
            and actual.routes == wanted.routes
        )
        rows = [] if same else differences(actual, wanted, self._by_vxlan, bridges, strays)
        # The wish itself, checked against one computed from scratch (kernel/invariant.py):
        # a mistake in the change-by-change bookkeeping shows here, not only in the kernel.
        state = self.state
        wish: list[str] | None = None
        if len(wanted.fdb) + len(wanted.neigh) <= SCRATCH_CHECK_LIMIT:
            scratch = invariant.expected(
                state.rib, state.ports, state.importing, state.l3ports, state.importing_l3
            )
            wish = invariant.differences(wanted, scratch, self.device_names())
        return {
            "programming": True,
            "in_sync": not rows and not wish,
            "settled": self.settled,
            "wanted": _counts(wanted),
            "kernel": _counts(actual),
            "differences": rows,
            "wish_differences": wish,
            "audit": self.audit.status(self.loop.time()),
        }

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(1 if not self.settled else self.reconcile_interval)
            if not self.settled and not self.peers_settled():
                continue
            await self._pass()

    def _schedule_reconcile(self, delay: float) -> None:
        if self._reconcile_handle is None:
            self._reconcile_handle = self.loop.call_later(delay, self._scheduled_reconcile)

    def _scheduled_reconcile(self) -> None:
        self._reconcile_handle = None
        self.reconcile()

    # --- writing -------------------------------------------------------------------------------

    def _write(
        self,
        operations: list[ops.Operation],
        changes: Changes,
        since: float | None = None,
        flushing: bool = False,
    ) -> None:
        if not operations or (self._frozen and not flushing):
            # frozen: stopping, and the kernel stays as it is (a pass or a check that was
            # under way finishes without writing; the socket may be closed already)
            return
        self._last_write = self.loop.time()
        batch = (ops.encode_all(operations, self.writer.reserve(len(operations))), operations)
        # Our own new entries' notifications are dropped in the kernel while we write, and
        # our removals' too when we make many of them (anyone else's in that moment go
        # unseen: the audit finds them).
        bulk_removal = len(changes.fdb_del) + len(changes.neigh_del) >= BULK_REMOVAL
        self.counters.netlink_ops += len(batch)
        filters = None
        if self.events is not None and self._filtered:
            filters = (self._managed_ports(), self.writer.port_id, bulk_removal)
        self._inflight += 1
        removing = changes.neigh_del
        self._removing.update(removing)
        if self._pool is None:  # stopping: write here and now
            self._sent(self._send(batch, filters), since, removing)
            return
        future = self._pool.submit(self._send, batch, filters)
        future.add_done_callback(functools.partial(self._sent_soon, since, removing))

    def _send(
        self, batch: Batch, filters: tuple[frozenset[int], int, bool] | None
    ) -> Failures | None:
        """In the writer thread: the batch, and the filter of its notifications around it."""
        events = self.events
        try:
            if filters is not None and events is not None:
                ports, pid, deletions = filters
                events.ignore_own(ports, pid, writing=True, deletions=deletions)
            failures = self.writer.send(*batch)
            # at once, before anything queued after this batch reads the kernel: the vxlan
            # halves of removals the bridge refused (operations.FdbDel)
            follow = [f for op, error in failures if (f := ops.followup(op, error)) is not None]
            if follow:  # (numbered on their own: only this send's refusals are matched)
                failures += self.writer.send(ops.encode_all(follow, 1), follow)
            return failures
        except OSError as exc:
            log.error("netlink write failed", error=str(exc), entries=len(batch[1]))
            return None
        finally:
            if filters is not None and events is not None:
                with contextlib.suppress(OSError):
                    events.ignore_own(filters[0], filters[1])

    def _sent_soon(
        self,
        since: float | None,
        removing: dict[NeighKey, None],
        future: concurrent.futures.Future[Failures | None],
    ) -> None:
        exc = future.exception()
        if exc is not None:  # (OSError is handled in _send: this is a bug, say so)
            log.error("netlink writer failed", error=repr(exc))
        failures = None if exc is not None else future.result()
        with contextlib.suppress(RuntimeError):  # the loop is gone: nothing left to record
            self.loop.call_soon_threadsafe(self._sent, failures, since, removing)

    def _sent(
        self,
        failures: Failures | None,
        since: float | None,
        removing: dict[NeighKey, None] | None = None,
    ) -> None:
        self._inflight -= 1
        if removing:
            # The kernel queued the notifications of this write before its sendmsg returned:
            # read them while their entries are still known as ours, then forget those.
            if self.events is not None and not self._frozen:
                self._on_events()
            for key in removing:
                self._removing.pop(key, None)
        if self._apply_waiting and not self._inflight:
            self._apply_waiting = False
            self._schedule_apply()
        if failures is None:
            self._schedule_reconcile(1.0)  # find out what did get through
            return
        if since is not None:
            self.counters.observe(self.loop.time() - since)
        now = self.loop.time()
        for op, error in failures:
            if ops.harmless(op, error):
                continue
            self.counters.netlink_errors += 1
            # each reconciliation tries again: say it once a minute per kind, with the count
            held = self._refusal_log.allow((type(op), error), now)
            if held is not None:
                log.warning(
                    "netlink refused",
                    entry=ops.describe(op),
                    errno=error,
                    error=os.strerror(error),
                    since_last=held or None,
                )
            self.reconciler.refused(op)

    # --- events --------------------------------------------------------------------------------

    def _on_events(self) -> None:
        assert self.events is not None
        if self._frozen:
            self.events.read()  # drained, not acted on: the daemon is stopping
            return
        try:
            # New entries on vxlan ports are ours (the kernel does not learn there with
            # learning off); only their removal by someone else matters.
            skip_new_on = frozenset() if self._filtered else frozenset(self._by_vxlan)
            neighbours, links, lost, routes = self.events.read(
                self.writer.port_id, skip_new_on, ipr.RTPROT_EVPND, self._removing
            )
        except OSError as exc:
            log.error("netlink events", error=str(exc))
            return
        if links and self._rediscover_handle is None:
            self._rediscover_handle = self.loop.call_later(0.1, self._rediscover)
        self._take_in(neighbours)
        if routes and self.l3_ports:
            # one of our routes was changed or removed by someone else
            self.loop.create_task(self._check_routes())
        if lost:
            # The event buffer overran: what it held is unknown. Compare once things are
            # quiet, rather than dumping the whole table in the middle of a burst.
            self._schedule_reconcile(2.0)

    def _take_in(self, neighbours: list[nl.Neighbour], checks: bool = True) -> None:
        """Hand what the messages say of local hosts on (in one batch); with `checks` (events,
        not a dump), what they say of our entries too."""
        observations: list[Observation] = []
        desired = self.state.desired
        for n in neighbours:
            seen = meaning(n, self._by_vxlan, self._by_bridge, desired)
            if seen.observation is not None:
                observations.append(seen.observation)
            if seen.disowned is not None:
                self.reconciler.disown(seen.disowned)
            if not checks:
                continue
            if seen.check_fdb is not None:
                self._check_fdb.add(seen.check_fdb)
            elif seen.check_neigh is not None:
                self._check_neigh.add(seen.check_neigh)
            elif seen.flood is not None:
                self._repaired(*self.reconciler.flood_seen(*seen.flood))
        if self._check_fdb or self._check_neigh:
            self._schedule_check()
        if observations:
            self.on_local(observations)


def _vni_ports(port: VxlanPort) -> VniPorts:
    local = b""
    if port.local_ip:
        family = socket.AF_INET6 if ":" in port.local_ip else socket.AF_INET
        local = socket.inet_pton(family, port.local_ip)
    return VniPorts(port.vni, port.ifindex, port.bridge_ifindex, local)


def _counts(entries: Entries) -> dict[str, int]:
    return {
        "fdb": len(entries.fdb),
        "flood": len(entries.flood),
        "neigh": len(entries.neigh),
        "routes": len(entries.routes),
    }
