"""The asyncio side of one neighbour: its sockets and timers, and what its events do to the RIB."""

from __future__ import annotations

import asyncio
import collections
import errno
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import structlog

from evpnd import events
from evpnd.bgp.attributes import PathAttributes
from evpnd.bgp.backlog import DEFAULT_LIMIT
from evpnd.bgp.connection import Connection
from evpnd.bgp.damping import Damping
from evpnd.bgp.events import (
    CloseConnection,
    ConnectRequested,
    PeerAction,
    PeerDamped,
    PeerDown,
    PeerRouteRefresh,
    PeerUp,
    PeerUpdate,
    PeerUpdateErrors,
    SendData,
    StaleRoutesExpired,
    State,
    StateChanged,
)
from evpnd.bgp.messages import (
    ROUTE_REFRESH_BEGIN,
    ROUTE_REFRESH_END,
    Notification,
    RouteRefresh,
)
from evpnd.bgp.negotiation import EVPN_FAMILY, LocalSettings, Negotiated
from evpnd.bgp.peer import Peer, PeerSettings
from evpnd.bgp.update import Update
from evpnd.daemon import sockets
from evpnd.evpn.identifiers import is_address
from evpnd.evpn.routes import EvpnRoute
from evpnd.ratelimit import Throttle
from evpnd.rib import validation
from evpnd.rib.adjout import AdjRibOut, Chunks, Policy
from evpnd.rib.paths import Source
from evpnd.wire.constants import Afi, CeaseSubcode, ErrorCode, Safi

if TYPE_CHECKING:
    from evpnd.daemon.daemon import Daemon

log = structlog.get_logger("evpnd.peer")

#: routes of an UPDATE named in a debug line (the count says how many there were)
DEBUG_ROUTES = 20
#: seconds a closed connection may keep unsent bytes (a NOTIFICATION behind UPDATEs) before
#: it is aborted: a peer that does not read must not hold its socket for ever
CLOSE_GRACE = 10.0


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How an Established session ended (wall time, the reason, the NOTIFICATIONs)."""

    at: float
    reason: str
    sent: str
    received: str
    uptime_s: float


def connect_failure(exc: BaseException) -> str:
    """A failed connection attempt as an operator needs it: refused (nobody listens), no
    route, timed out — the errno's name with its text, not asyncio's "Connect call failed"."""
    if isinstance(exc, TimeoutError):
        return "ETIMEDOUT: no answer within 10 s (a filter, or the peer is down)"
    if isinstance(exc, OSError) and exc.errno:
        name = errno.errorcode.get(exc.errno, str(exc.errno))
        return f"{name}: {os.strerror(exc.errno)}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class BgpProtocol(asyncio.Protocol):
    #: bytes in the transport's buffer above which we stop handing it UPDATEs: a peer that
    #: reads slowly holds no more than this (and its queue of shared chunks) in memory here,
    #: and a KEEPALIVE waits behind no more than this
    HIGH_WATER = 256 * 1024

    def __init__(self, driver: PeerDriver, outbound: bool) -> None:
        self.driver = driver
        self.outbound = outbound
        self.conn_id: int | None = None
        self.transport: asyncio.Transport | None = None
        self._init_output()

    def _init_output(self) -> None:
        #: UPDATE chunks waiting for room in the transport (shared with the group's others)
        self._queue: collections.deque[bytes] = collections.deque()
        self._paused = False
        #: bytes in `_queue`; bytes ever queued, and ever handed to the transport from it
        self._queued_bytes = 0
        self.enqueued = 0
        self.handed = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        transport.set_write_buffer_limits(high=self.HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            min_ttl = self.driver.min_ttl
            if not self.outbound and min_ttl is not None:
                # RFC 5082: the SYN tells how far away the peer is, before we read a byte or
                # answer with an OPEN; from now on the kernel drops anything from further
                arrived = sockets.syn_ttl(sock)
                if arrived is None or arrived < min_ttl:
                    transport.abort()
                    self.driver.refuse("gtsm", f"SYN arrived with TTL {arrived}, below {min_ttl}")
                    return
                sockets.set_ttl(sock, 255, min_ttl)
        self.conn_id = self.driver.attach(self)

    #: bytes handed to the session per turn of the loop: a 256 KB read is 7,000 routes, and
    #: the loop must get round to everyone else's keepalives between slices (about 5 ms each)
    SLICE = 16 * 1024
    _backlog: bytearray | None = None
    _lost = False

    def data_received(self, data: bytes) -> None:
        if self.conn_id is None:
            return
        if self._backlog is None and len(data) <= self.SLICE:
            self._feed(data)
            return
        if self._backlog is None:
            self._backlog = bytearray()
            assert self.transport is not None
            self.transport.pause_reading()  # in order: nothing new until this is fed
            asyncio.get_running_loop().call_soon(self._feed_slice)
        self._backlog += data

    def _feed(self, data: bytes) -> None:
        if self.conn_id is not None:
            self.driver.peer.data_received(self.conn_id, data, self.driver.now())
            self.driver.process()

    def _feed_slice(self) -> None:
        backlog = self._backlog
        assert backlog is not None
        piece = bytes(backlog[: self.SLICE])
        del backlog[: self.SLICE]
        self._feed(piece)
        if backlog and self.conn_id is not None:
            asyncio.get_running_loop().call_soon(self._feed_slice)
            return
        self._backlog = None
        if self._lost:
            self._detach()
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def send_chunks(self, chunks: list[bytes]) -> None:
        """UPDATEs, in order, as the socket takes them."""
        size = sum(map(len, chunks))
        self._queue.extend(chunks)
        self._queued_bytes += size
        self.enqueued += size
        self._pump()

    def _pump(self) -> None:
        queue, transport = self._queue, self.transport
        moved = False
        while queue and not self._paused and transport is not None:
            if transport.is_closing():
                self.drop_queue()
                return
            chunk = queue.popleft()
            self._queued_bytes -= len(chunk)
            self.handed += len(chunk)
            moved = True
            transport.write(chunk)  # may call pause_writing
        if moved and self.conn_id is not None:
            self.driver.output_moved(self)

    def drop_queue(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting for the peer here: the transport's buffer and the chunks queued."""
        buffered = self.transport.get_write_buffer_size() if self.transport is not None else 0
        return buffered + self._queued_bytes

    @property
    def queued(self) -> int:
        """UPDATE chunks not yet handed to the transport."""
        return len(self._queue)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()

    def connection_lost(self, exc: Exception | None) -> None:
        self.drop_queue()
        if self._backlog is not None:
            self._lost = True  # what arrived before the end is taken in first
            return
        self._detach()

    def _detach(self) -> None:
        if self.conn_id is not None:
            self.driver.detach(self.conn_id)


class PeerDriver:
    def __init__(
        self,
        daemon: Daemon,
        settings: PeerSettings,
        local: LocalSettings,
        *,
        password: str | None = None,
        port: int = 179,
        update_source: str | None = None,
        ttl: int | None = None,
        min_ttl: int | None = None,
        route_reflector_client: bool = False,
        max_routes: int | None = None,
        dynamic: bool = False,
        description: str = "",
        damping: Damping | None = None,
        output_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.daemon = daemon
        self.loop = daemon.loop
        self.peer = Peer(settings, local, damping=damping, output_limit=output_limit)
        self.address = settings.address
        self.password = password
        self.port = port
        self.update_source = update_source
        self.ttl = ttl
        self.min_ttl = min_ttl
        self.route_reflector_client = route_reflector_client
        self.max_routes = max_routes
        self.dynamic = dynamic
        self.description = description
        self.protocols: dict[int, BgpProtocol] = {}
        self.adj_out: AdjRibOut | None = None
        self.source: Source | None = None
        self.negotiated: Negotiated | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self.up_since_wall: float | None = None
        self.routes_received = 0
        self.end_of_rib_received = False
        self.updates_received = 0
        #: routes not imported (rib/validation.py), per reason
        self.routes_refused: dict[str, int] = {}
        self._refusal_log = Throttle(60.0)
        #: inbound connections whose SYN came from too far away (GTSM)
        self.gtsm_refused = 0
        #: RFC 7606 errors in UPDATEs that kept the session
        self.update_errors = 0
        self._error_log = Throttle(60.0)
        #: sessions that reached Established, like FRR's connectionsEstablished
        self.sessions_established = 0
        #: the last Established session's end, kept until the next one ends: the first
        #: reason, not the connection attempts' failures that follow (`last_error`)
        self.last_down: SessionEnd | None = None
        #: Established sessions that ended (FRR's "dropped")
        self.flaps = 0
        #: wall time of the last change between up and down (FRR's Up/Down column)
        self.changed_wall = time.time()
        #: the last NOTIFICATIONs of a session that ended: (wall time, text)
        self.notification_sent: tuple[float, str] | None = None
        self.notification_received: tuple[float, str] | None = None
        #: the peer's name from its last session (the FQDN capability), kept while it is down
        self.hostname: str | None = None
        #: routes marked stale when a session ended gracefully, until End-of-RIB or the
        #: restart time (then `stale_routes()` counts those not announced again)
        self.stale_marked = 0
        #: the session is being reset by `clear peer` (its end is no warning)
        self._cleared = False
        #: wall time of the last UPDATE received (metrics: a peer that went quiet)
        self.last_update_wall: float | None = None
        self.bytes_received = 0
        self.routes_announced = 0
        self.routes_withdrawn = 0
        #: messages in/out, updates out of sessions that ended (the live one is added on read)
        self._ended = [0, 0, 0]
        self._session: Connection | None = None
        #: lines said once a minute per kind of line (this peer's own): state changes, route
        #: refreshes, drops — a peer that churns must not fill the journal
        self._line_log = Throttle(60.0)
        #: a ROUTE-REFRESH answer of the session: built in steps (`_answer_parts`), then
        #: queued between `_answer_marks` (the protocol's byte counts); group UPDATEs that come
        #: while it is built wait in `_deferred`, behind it
        self._answer_parts: Iterator[Chunks] | None = None
        self._answer_built: list[bytes] = []
        self._answer_messages = 0
        self._answer_conn: int | None = None
        self._answer_marks: tuple[int, int] | None = None
        self._deferred: list[Chunks] = []
        self.log = log.bind(peer=self.address)

    def now(self) -> float:
        return self.loop.time()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.peer.start(self.now())
        self.process()

    def stop(
        self,
        message: str = "",
        subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
        graceful: bool = False,
    ) -> None:
        self.peer.stop(self.now(), message, subcode, graceful)
        self.process()
        if self._connect_task is not None:
            self._connect_task.cancel()
        if self._timer is not None:
            self._timer.cancel()

    def clear(self, soft: bool) -> dict[str, object]:
        """`evpnctl clear peer`: hard ends the session with Cease / Administrative Reset (it
        comes back by itself); soft asks the peer for its routes again (ROUTE-REFRESH) and sends
        it ours again, without touching the session."""
        if self.state is not State.ESTABLISHED or self.adj_out is None:
            if soft:
                raise ValueError(f"{self.address} is {self.state.value}, not Established")
            return {"peer": self.address, "action": "none", "state": self.state.value}
        if not soft:
            notification = Notification(ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_RESET)
            self._cleared = True
            self.peer.reset(self.now(), notification, "cleared by the operator", failure=False)
            self.process()
            return {"peer": self.address, "action": "reset"}
        refresh = self.negotiated is not None and self.negotiated.route_refresh
        if refresh:
            self.peer.send([RouteRefresh(*EVPN_FAMILY, 0).encode()], self.now())
            self.process()
        self.send_updates(self.adj_out.table())
        return {
            "peer": self.address,
            "action": "soft",
            "routes_sent": len(self.adj_out),
            "refresh_requested": refresh,
        }

    def endpoints(self) -> dict[str, str] | None:
        """The Established session's local and remote address and port."""
        conn_id = self.peer.established_id
        protocol = self.protocols.get(conn_id) if conn_id is not None else None
        if protocol is None or protocol.transport is None:
            return None
        local = protocol.transport.get_extra_info("sockname")
        remote = protocol.transport.get_extra_info("peername")
        if not local or not remote:
            return None
        return {"local": f"{local[0]} port {local[1]}", "remote": f"{remote[0]} port {remote[1]}"}

    def stale_routes(self) -> int:
        if not self.stale_marked:
            return 0
        return sum(1 for p in self.daemon.rib.adj_in.get(self.address, {}).values() if p.stale)

    def message_counts(self) -> list[int]:
        """Messages received, messages sent, UPDATEs sent, over all sessions."""
        counts = list(self._ended)
        if self._session is not None:
            counts[0] += self._session.messages_in
            counts[1] += self._session.messages_out
            counts[2] += self._session.updates_out
        return counts

    @property
    def state(self) -> State:
        return self.peer.state

    def protections_view(self) -> dict[str, object]:
        """`show peers` / `show bgp neighbors X`: the idle hold (RFC 4271 §8.1.1 damping) and
        the bytes waiting for the peer against its bound (bgp/backlog.py)."""
        damping, backlog = self.peer.damping, self.peer.backlog
        protocol = self._established_protocol()
        if protocol is not None:
            backlog.queued = protocol.queued_bytes
        return {
            "damping": {
                "failures": damping.failures,
                "idle_hold_s": damping.hold or None,
                "idle_hold_left_s": round(damping.remaining(self.now()), 1) or None,
            },
            "output": {
                "queued_bytes": backlog.queued if protocol is not None else 0,
                "queued_worst_bytes": backlog.worst,
                "limit_bytes": backlog.limit,
                "refreshes_coalesced": backlog.coalesced,
            },
        }

    # --- connections -------------------------------------------------------------------------

    def attach(self, protocol: BgpProtocol) -> int | None:
        conn_id = self.peer.connection_made(self.now(), protocol.outbound)
        if conn_id is None:
            assert protocol.transport is not None
            protocol.transport.abort()
            if self.peer.admin_up and self.peer.refused_because == "damped":
                hold = self.peer.damping.remaining(self.now())
                self.refuse("damped", f"damped: its sessions keep failing ({hold:.0f} s left)")
            elif self.peer.admin_up:
                self.refuse("too many", "two connections with this peer are open already")
            return None
        self.protocols[conn_id] = protocol
        self.process()
        return conn_id

    def refuse(self, kind: str, reason: str) -> None:
        """A connection closed before its first byte was read: said once a minute per kind
        with how many were held back (GTSM refusals are counted here; a third connection is
        counted by the peer core, which refused it)."""
        if kind == "gtsm":
            self.gtsm_refused += 1
        held = self._refusal_log.allow(("connection", kind), self.now())
        if held is not None:
            self.log.warning("connection refused", reason=reason, since_last=held or None)

    def detach(self, conn_id: int) -> None:
        if self.protocols.pop(conn_id, None) is not None:
            self.peer.connection_lost(conn_id, self.now())
            self.process()

    async def _source_address(self, family: int) -> str:
        """`update_source`: an address, or an interface whose address is looked up at every
        try (a loopback VTEP address may come later than evpnd)."""
        source = self.update_source
        assert source is not None
        if is_address(source):
            return source
        address = await self.loop.run_in_executor(None, sockets.interface_address, source, family)
        if address is None:
            kind = "IPv6" if family == socket.AF_INET6 else "IPv4"
            raise OSError(0, f"update_source {source} has no {kind} address (or is no interface)")
        return address

    async def _connect(self) -> None:
        family = sockets.family_of(self.address)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            if self.password:
                sockets.set_md5(sock, self.address, self.password)
            if self.ttl is not None:
                sockets.set_ttl(sock, self.ttl, self.min_ttl)
            if self.update_source:
                sock.bind((await self._source_address(family), 0))
            await asyncio.wait_for(self.loop.sock_connect(sock, (self.address, self.port)), 10)
            await self.loop.create_connection(lambda: BgpProtocol(self, True), sock=sock)
        except asyncio.CancelledError:
            sock.close()
            raise
        except (OSError, TimeoutError) as exc:
            sock.close()
            self.peer.connection_failed(self.now(), connect_failure(exc))
            self.process()
        finally:
            self._connect_task = None

    # --- the core's actions ------------------------------------------------------------------

    def process(self) -> None:
        while (action := self.peer.next_action()) is not None:
            self._perform(action)
        self._arm_timer()

    def _perform(self, action: PeerAction) -> None:
        if isinstance(action, SendData):
            protocol = self.protocols.get(action.connection)
            if protocol is not None and protocol.transport is not None:
                protocol.transport.write(action.data)
        elif isinstance(action, PeerUpdate):
            self._on_update(action.update, action.size)
        elif isinstance(action, CloseConnection):
            protocol = self.protocols.pop(action.connection, None)
            if action.connection == self._answer_conn:
                self._end_answer()
            if protocol is not None and protocol.transport is not None:
                protocol.conn_id = None
                protocol.drop_queue()
                transport = protocol.transport
                transport.close()
                if transport.get_write_buffer_size():
                    # close() waits for the buffer to drain: a peer that does not read must
                    # not hold the socket for ever (it had CLOSE_GRACE to read the NOTIFICATION)
                    self.loop.call_later(CLOSE_GRACE, transport.abort)
        elif isinstance(action, ConnectRequested):
            if self._connect_task is None:
                self._connect_task = self.loop.create_task(self._connect())
        elif isinstance(action, StateChanged):
            # once a minute per change (old, new), with how many were held back
            held = self._line_log.allow(("state", action.old, action.new), self.now())
            if held is not None:
                self.log.info(
                    "peer state",
                    old=action.old.value,
                    new=action.new.value,
                    reason=action.reason or None,
                    since_last=held or None,
                )
        elif isinstance(action, PeerDamped):
            # once per hold: the hold itself spaces these lines out
            self.log.warning(
                "damping peer",
                peer_address=self.address,
                hold_s=action.hold,
                failures=action.failures,
                message=f"damping peer {self.address} for {action.hold:.0f} s after "
                f"{action.failures} failures",
            )
        elif isinstance(action, PeerUp):
            self._on_up(action.negotiated)
        elif isinstance(action, PeerDown):
            self._on_down(action)
        elif isinstance(action, PeerRouteRefresh):
            self._on_route_refresh(action.request)
        elif isinstance(action, PeerUpdateErrors):
            now = self.now()
            for error in action.errors:
                # once a minute per kind of error, with the count: a fuzzing peer must not
                # write hundreds of megabytes of log
                self.update_errors += 1
                held = self._error_log.allow((error.action, error.attribute), now)
                if held is None:
                    continue
                self.log.warning(
                    "update error",
                    action=error.action.name.lower(),
                    reason=error.reason,
                    offset=error.offset,
                    attribute=error.attribute,
                    withdrawn=[r.text for r in error.withdrawn][:10] or None,
                    since_last=held or None,
                )
        elif isinstance(action, StaleRoutesExpired):
            removed = self.daemon.rib.sweep_stale(self.address)
            self.stale_marked = 0
            self.daemon.settle()
            self.log.info("stale routes removed", count=len(removed))

    def _arm_timer(self) -> None:
        deadline = self.peer.timer()
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = deadline
        if deadline is not None:
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.peer.handle_timer(self.now())
        self.process()

    # --- what events mean for the routes -----------------------------------------------------

    def _on_up(self, negotiated: Negotiated) -> None:
        self.negotiated = negotiated
        remote = negotiated.remote
        self.source = Source(
            self.address,
            remote.router_id,
            remote.asn,
            ibgp=remote.asn == self.daemon.config.asn,
            route_reflector_client=self.route_reflector_client,
        )
        self.up_since_wall = self.changed_wall = time.time()
        self.hostname = negotiated.peer_hostname
        self.sessions_established += 1
        self._session = self.peer.established
        self.routes_received = 0
        self.end_of_rib_received = False
        self.daemon.report(
            events.PeerEstablished(
                self.address,
                remote.asn,
                remote.router_id,
                negotiated.peer_hostname,
                negotiated.hold_time,
            )
        )
        # the first table counts as a ROUTE-REFRESH answer: a request while it waits changes
        # nothing (backlog.py)
        self.peer.backlog.requested(EVPN_FAMILY)
        protocol = self._established_protocol()
        before = protocol.enqueued if protocol is not None else 0
        self.adj_out = self.daemon.join_group(self, Policy.of(self.source, negotiated.context))
        if protocol is not None:
            self._answer_conn = self.peer.established_id
            self._answer_marks = (before, protocol.enqueued)
            self.output_moved(protocol)

    def _established_protocol(self) -> BgpProtocol | None:
        conn_id = self.peer.established_id
        return self.protocols.get(conn_id) if conn_id is not None else None

    def send_updates(self, updates: Chunks) -> None:
        """UPDATEs built for the group (or for this peer), written on the established
        connection as its socket takes them (behind a ROUTE-REFRESH answer being built)."""
        protocol = self._established_protocol()
        if protocol is None:
            return
        if self._answer_parts is not None:
            self._deferred.append(updates)
        else:
            protocol.send_chunks(updates.chunks)
            self.peer.sent_elsewhere(updates.messages)
        self._measure(protocol)

    def _measure(self, protocol: BgpProtocol) -> None:
        """The bytes waiting for the peer, to the core: past the bound it drops the peer."""
        waiting = protocol.queued_bytes + sum(map(len, self._answer_built))
        waiting += sum(len(c) for updates in self._deferred for c in updates.chunks)
        if self.peer.output_measured(waiting, self.now()):
            self.log.warning(
                "peer dropped: not reading",
                queued_bytes=waiting,
                limit=self.peer.backlog.limit,
                notification="Cease / Out of Resources",
            )
            self.process()

    def output_moved(self, protocol: BgpProtocol) -> None:
        """The protocol handed queued bytes to its transport: has the answer left?"""
        marks = self._answer_marks
        if marks is None or self.protocols.get(self._answer_conn or 0) is not protocol:
            return
        start, end = marks
        if protocol.handed > start:
            self.peer.backlog.answer_started(EVPN_FAMILY)
        if protocol.handed >= end:
            self._answer_marks = None
            if self.peer.backlog.answer_written(EVPN_FAMILY):
                self._start_answer()  # asked for again while it was leaving

    def _on_down(self, event: PeerDown) -> None:
        self.daemon.report(
            events.PeerDown(
                self.address,
                event.reason,
                str(event.sent) if event.sent else None,
                str(event.received) if event.received else None,
                event.graceful_restart,
                deliberate=not self.peer.admin_up or self._cleared,
            )
        )
        self._cleared = False
        self._ended = self.message_counts()
        self._session = None
        # what ended it, for `show bgp neighbors` and `evpnctl doctor`
        now = time.time()
        uptime = now - self.up_since_wall if self.up_since_wall is not None else 0.0
        self.last_down = SessionEnd(
            now, event.reason, str(event.sent or ""), str(event.received or ""), uptime
        )
        if event.sent is not None:
            self.notification_sent = (now, str(event.sent))
        if event.received is not None:
            self.notification_received = (now, str(event.received))
        self.flaps += 1
        self.changed_wall = now
        self._end_answer()
        self.daemon.leave_group(self)
        self.adj_out = None
        self.up_since_wall = None
        if event.graceful_restart:
            count = self.stale_marked = self.daemon.rib.mark_stale(self.address)
            self.daemon.settle()
            self.log.info(
                "keeping routes as stale", count=count, restart_time=event.graceful_restart
            )
        else:
            self.daemon.rib.remove_source(self.address)
            self.daemon.settle()
        if self.dynamic and not event.graceful_restart:
            self.daemon.forget_dynamic(self)

    def _on_update(self, update: Update, size: int) -> None:
        source = self.source
        if source is None:
            return
        self.updates_received += 1
        self.last_update_wall = time.time()
        self.bytes_received += size
        announced = update.announced
        withdrawn = update.withdrawn
        debugging = self.daemon.debugging
        if debugging.active and debugging.peer(self.address):
            debugging.emit(
                "peer",
                self.address,
                self.now(),
                "update received",
                bytes=size,
                announced=[r.text for r in announced[:DEBUG_ROUTES]],
                withdrawn=[r.text for r in withdrawn[:DEBUG_ROUTES]],
                routes=len(announced) + len(withdrawn),
                attributes=update.attributes.text,
                end_of_rib=update.end_of_rib is not None or None,
            )
        if announced and not self.daemon.speaker.accepts(update.attributes, source.ibgp):
            withdrawn = withdrawn + announced
            announced = []
        if announced:
            announced, refused = validation.split(announced, update.attributes)
            if refused:
                # not imported, and gone if an earlier version was (treat-as-withdraw)
                withdrawn = withdrawn + [route for route, _ in refused]
                self._refused(refused, update.attributes)
        if announced or withdrawn:
            self.routes_announced += len(announced)
            self.routes_withdrawn += len(withdrawn)
            received = self.last_update_wall or 0.0
            self.daemon.rib.update(source, announced, update.attributes, withdrawn, received)
            self.daemon.settle(received_at=self.loop.time())
            self.routes_received = self.daemon.rib.received_from(self.address)
        if update.end_of_rib == EVPN_FAMILY:
            self.end_of_rib_received = True
            swept = self.daemon.rib.sweep_stale(self.address)
            self.stale_marked = 0
            self.daemon.settle()
            self.log.info(
                "end-of-rib", routes=self.routes_received, stale_removed=len(swept) or None
            )
        if self.max_routes is not None and self.routes_received > self.max_routes:
            self._over_limit()

    def _refused(self, refused: list[tuple[EvpnRoute, str]], attrs: PathAttributes) -> None:
        """Counted per reason; said once per reason, then at most once a minute with the
        number held back (a hostile peer must not fill the journal). The reasons are a fixed
        set (rib/validation.py): what varies (the PMSI tunnel type) is in the line, not the
        key, so varying it says nothing more."""
        now = self.now()
        for route, reason in refused:
            self.routes_refused[reason] = self.routes_refused.get(reason, 0) + 1
            held = self._refusal_log.allow(("route", reason), now)
            if held is not None:
                pmsi = attrs.pmsi_tunnel
                self.log.warning(
                    "route refused",
                    reason=reason,
                    route=route.text,
                    pmsi_tunnel_type=pmsi.tunnel_type if pmsi is not None else None,
                    since_last=held or None,
                )

    def _over_limit(self) -> None:
        assert self.max_routes is not None
        self.log.warning(
            "maximum routes exceeded", limit=self.max_routes, received=self.routes_received
        )
        # RFC 4486 §4: AFI, SAFI and the limit.
        data = bytes((0, Afi.L2VPN, Safi.EVPN)) + self.max_routes.to_bytes(4, "big")
        notification = Notification(ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, data)
        self.peer.reset(self.now(), notification, "maximum routes exceeded")
        self.process()

    def _on_route_refresh(self, request: RouteRefresh) -> None:
        """A ROUTE-REFRESH the core did not coalesce (bgp/backlog.py): the table again."""
        if (request.afi, request.safi) != EVPN_FAMILY or request.subtype != 0:
            return  # BoRR/EoRR from the peer only bracket its own re-advertisement
        if self.adj_out is None:
            self.peer.backlog.answer_written(EVPN_FAMILY)
            return
        held = self._line_log.allow("route refresh", self.now())
        if held is not None:
            self.log.info(
                "route refresh",
                routes=len(self.adj_out),
                since_last=held or None,
                coalesced=self.peer.backlog.coalesced or None,
            )
        self._start_answer()

    def _start_answer(self) -> None:
        """The table in steps, one per turn of the loop (a million routes must not hold it);
        the first step now, so that UPDATEs flushed from here on wait behind the answer."""
        if self.adj_out is None or self.peer.established_id is None:
            self.peer.backlog.answer_written(EVPN_FAMILY)
            return
        self._answer_conn = self.peer.established_id
        self._answer_parts = self.adj_out.table_parts()
        self._answer_built = []
        self._answer_messages = 0
        self._build_answer()

    def _build_answer(self) -> None:
        parts = self._answer_parts
        if parts is None:
            return
        if self.peer.established_id != self._answer_conn:
            self._end_answer()  # the session ended meanwhile
            return
        piece = next(parts, None)
        if piece is not None:
            self._answer_built += piece.chunks
            self._answer_messages += piece.messages
            self.loop.call_soon(self._build_answer)
            return
        self._answer_parts = None
        chunks, messages = self._answer_built, self._answer_messages
        self._answer_built = []
        if self.negotiated is not None and self.negotiated.enhanced_route_refresh:
            # RFC 7313 §4: bracket the full table so the peer can drop what we no longer have.
            begin = RouteRefresh(*EVPN_FAMILY, ROUTE_REFRESH_BEGIN).encode()
            end = RouteRefresh(*EVPN_FAMILY, ROUTE_REFRESH_END).encode()
            chunks, messages = [begin, *chunks, end], messages + 2
        protocol = self._established_protocol()
        if protocol is None:
            self._end_answer()
            return
        start = protocol.enqueued
        self.send_updates(Chunks(chunks, messages))
        self._answer_marks = (start, protocol.enqueued)
        deferred, self._deferred = self._deferred, []
        for updates in deferred:
            self.send_updates(updates)
        self.output_moved(protocol)

    def _end_answer(self) -> None:
        self._answer_parts = None
        self._answer_built = []
        self._answer_marks = None
        self._answer_conn = None
        self._deferred = []
