"""A configured neighbour as the RFC 4271 §8 state machine, sans I/O.

The peer decides when to connect (connect-retry with capped, jittered exponential back-off),
resolves connection collisions (§6.8), holds a peer whose sessions keep failing idle for
longer and longer (§8.1.1 IdleHoldTimer, `damping.py`), coalesces its ROUTE-REFRESH requests
and drops it when more bytes wait for it than the bound (`backlog.py`), and turns the end of
an Established session into a graceful-restart hold of the peer's routes where RFC 4724 /
RFC 8538 allow it. It owns up to two `Connection`s; the shell owns the sockets and calls in
with bytes and the time.
"""

from __future__ import annotations

import ipaddress
import random
from collections import deque
from dataclasses import dataclass

from evpnd.bgp.backlog import DEFAULT_LIMIT, Answer, Backlog
from evpnd.bgp.capabilities import GracefulRestart
from evpnd.bgp.connection import CEASE_COLLISION, Connection
from evpnd.bgp.damping import Damping
from evpnd.bgp.events import (
    CloseConnection,
    ConnectionClosed,
    ConnectRequested,
    OpenReceived,
    PeerAction,
    PeerDamped,
    PeerDown,
    PeerRouteRefresh,
    PeerUp,
    PeerUpdate,
    PeerUpdateErrors,
    RouteRefreshReceived,
    SendData,
    SessionEstablished,
    StaleRoutesExpired,
    State,
    StateChanged,
    UpdateErrors,
    UpdateReceived,
)
from evpnd.bgp.messages import Notification
from evpnd.bgp.negotiation import EVPN_FAMILY, LocalSettings, Negotiated
from evpnd.wire.constants import CeaseSubcode, ErrorCode

_ORDER = {State.OPEN_SENT: 1, State.OPEN_CONFIRM: 2, State.ESTABLISHED: 3}
#: connections with one peer at once: an Established one and a colliding one (RFC 4271 §6.8)
MAX_CONNECTIONS = 2


@dataclass(frozen=True, slots=True)
class PeerSettings:
    address: str
    #: None: any AS (a listen-range peer without remote_as).
    peer_as: int | None
    passive: bool = False
    #: The longest wait between connection attempts; back-off starts at one second.
    connect_retry: float = 30.0
    #: RFC 4724 "selection deferral"/stale-path time after a restarted peer comes back.
    stale_path_time: float = 360.0


class Peer:
    def __init__(
        self,
        settings: PeerSettings,
        local: LocalSettings,
        rng: random.Random | None = None,
        *,
        damping: Damping | None = None,
        output_limit: int = DEFAULT_LIMIT,
    ) -> None:
        self.settings = settings
        self.local = local
        self._rng = rng or random.Random()
        self._base = State.IDLE
        self._connections: dict[int, Connection] = {}
        self._outbound: set[int] = set()
        self._next_id = 1
        self._actions: deque[PeerAction] = deque()
        self._retry_deadline: float | None = None
        self._stale_deadline: float | None = None
        self._backoff = 0.0
        self._connecting = False
        self._shown = State.IDLE
        self.established: Connection | None = None
        self.established_at: float | None = None
        self.last_error: str = ""
        #: the failure behind the next state change (StateChanged.reason)
        self._cause = ""
        self.admin_up = False
        #: inbound connections refused because MAX_CONNECTIONS were open already
        self.connections_refused = 0
        #: inbound connections refused during an idle hold (damping)
        self.connections_damped = 0
        #: why `connection_made` last refused a connection: "too many" or "damped"
        self.refused_because = ""
        #: the idle hold; a dynamic peer's is handed in by the shell, to outlive the peer
        self.damping = damping if damping is not None else Damping()
        #: the session being ended was ended on purpose (`reset(failure=False)`)
        self._not_a_failure = False
        #: ROUTE-REFRESH answers pending, and the bytes waiting for the peer
        self.backlog = Backlog(output_limit)

    # --- what the shell asks ---------------------------------------------------------------

    @property
    def state(self) -> State:
        best = None
        for conn in self._connections.values():
            if conn.state in _ORDER and (best is None or _ORDER[conn.state] > _ORDER[best]):
                best = conn.state
        if best is not None:
            return best
        if self._connecting:
            return State.CONNECT
        return self._base

    @property
    def external(self) -> bool:
        return self.settings.peer_as is not None and self.settings.peer_as != self.local.asn

    def next_action(self) -> PeerAction | None:
        return self._actions.popleft() if self._actions else None

    def timer(self) -> float | None:
        deadlines = [d for d in (self._retry_deadline, self._stale_deadline) if d is not None]
        deadlines += [t for c in self._connections.values() if (t := c.timer()) is not None]
        return min(deadlines) if deadlines else None

    # --- administrative events ---------------------------------------------------------------

    def start(self, now: float) -> None:
        """ManualStart (or automatic start with a passive peer)."""
        if self.admin_up:
            return
        self.admin_up = True
        self._backoff = 0.0
        self._base = State.ACTIVE
        if not self.settings.passive:
            self._retry_deadline = now
        self._note_state()

    def stop(
        self,
        now: float,
        message: str = "",
        subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
        graceful: bool = False,
    ) -> None:
        """ManualStop: a Cease to every connection (RFC 8203 message), then Idle.

        `graceful` is for this speaker's own restart, so that the peer keeps our routes, in the
        way its graceful restart understands: with the N bit negotiated (RFC 8538) the Cease
        is sent plainly; a peer whose graceful restart is RFC 4724's alone must end the
        session on any NOTIFICATION (RFC 8538 §2), so it gets none — the connection just
        closes, as it would if we had crashed. Not graceful, with the N bit, the Cease goes
        inside a Hard Reset and the peer drops our routes at once."""
        self.admin_up = False
        self._retry_deadline = None
        for conn_id, conn in list(self._connections.items()):
            notification: Notification | None
            if not graceful:
                notification = self._cease(conn, subcode, message)
            elif _restarts_without_notification(conn, self.local):
                notification = None
            else:
                notification = Notification.cease(subcode, message)
            conn.close(notification, message or "administrative stop")
            self._drain(conn_id, conn, now)
        self._base = State.IDLE
        self._connecting = False
        self._note_state()

    # --- connection events -------------------------------------------------------------------

    def connection_made(self, now: float, outbound: bool) -> int | None:
        """A TCP connection to or from the peer is up. Returns its id, or None when the peer
        will not have it (administratively down): the shell then closes the socket."""
        if outbound:
            self._connecting = False
        if not self.admin_up:
            return None
        if not outbound and self.damping.holding(now):
            # RFC 4271 §8.1.1: during the IdleHoldTimer the peer stays Idle; a connection
            # from it is refused as any connection in Idle is
            self.connections_damped += 1
            self.refused_because = "damped"
            return None
        if not outbound and len(self._connections) >= MAX_CONNECTIONS:
            # RFC 4271 §6.8 needs two at once (a collision), never more: a peer address that
            # opens idle connections by the thousand must not take every descriptor
            self.connections_refused += 1
            self.refused_because = "too many"
            return None
        conn_id = self._next_id
        self._next_id += 1
        conn = Connection(
            self.local.open_message(), self.settings.peer_as, now, external=self.external
        )
        self._connections[conn_id] = conn
        if outbound:
            self._outbound.add(conn_id)
        self._retry_deadline = None
        self._drain(conn_id, conn, now)
        self._note_state()
        return conn_id

    def connection_failed(self, now: float, reason: str) -> None:
        """An outbound attempt did not connect."""
        self._connecting = False
        self.last_error = self._cause = reason
        self._schedule_retry(now)
        self._note_state()

    def connection_lost(self, conn_id: int, now: float) -> None:
        conn = self._connections.get(conn_id)
        if conn is not None:
            conn.connection_lost()
            self._drain(conn_id, conn, now)
            self._note_state()

    def data_received(self, conn_id: int, data: bytes, now: float) -> None:
        conn = self._connections.get(conn_id)
        if conn is not None:
            conn.receive_data(data, now)
            self._drain(conn_id, conn, now)
            self._note_state()

    def reset(
        self, now: float, notification: Notification, reason: str, failure: bool = True
    ) -> None:
        """End the Established session with `notification`; the peer reconnects later.
        `failure`: whether it counts towards damping (an operator's `clear peer` does not)."""
        self._not_a_failure = not failure
        for conn_id, conn in list(self._connections.items()):
            if conn is self.established:
                conn.close(notification, reason)
                self._drain(conn_id, conn, now)
        self._note_state()

    def send(self, messages: list[bytes], now: float) -> None:
        conn = self.established
        if conn is None:
            return
        conn.send(messages, now)
        for conn_id, c in self._connections.items():
            if c is conn:
                self._drain(conn_id, conn, now)

    def output_measured(self, queued: int, now: float) -> bool:
        """The shell counted the bytes waiting for the Established session's socket (its
        buffer and the chunks queued for it). Past the bound the session ends with Cease / Out
        of Resources (RFC 4486 §4): a peer that does not read must not cost memory without
        limit. True: it was dropped."""
        if self.established is None or not self.backlog.measured(queued):
            return False
        notification = Notification(ErrorCode.CEASE, CeaseSubcode.OUT_OF_RESOURCES)
        self.reset(
            now, notification, f"{queued} bytes waiting for the peer, over {self.backlog.limit}"
        )
        return True

    def sent_elsewhere(self, updates: int) -> None:
        """UPDATEs the shell wrote itself (an update group's shared bytes): counted as sent.
        The keepalive timer is not restarted: they may wait behind others in a buffer, and
        KEEPALIVEs must keep flowing meanwhile."""
        conn = self.established
        if conn is not None:
            conn.messages_out += updates
            conn.updates_out += updates

    @property
    def established_id(self) -> int | None:
        for conn_id, conn in self._connections.items():
            if conn is self.established:
                return conn_id
        return None

    def handle_timer(self, now: float) -> None:
        if self._stale_deadline is not None and now >= self._stale_deadline:
            self._stale_deadline = None
            self._actions.append(StaleRoutesExpired())
        for conn_id, conn in list(self._connections.items()):
            conn.handle_timer(now)
            self._drain(conn_id, conn, now)
        if self._retry_deadline is not None and now >= self._retry_deadline:
            self._retry_deadline = None
            if self.admin_up and not self._connections and not self.settings.passive:
                self._connecting = True
                self._actions.append(ConnectRequested())
        self._note_state()

    # --- internals ---------------------------------------------------------------------------

    def _drain(self, conn_id: int, conn: Connection, now: float) -> None:
        data = conn.data_to_send()
        if data:
            self._actions.append(SendData(conn_id, data))
        while (event := conn.next_event()) is not None:
            if isinstance(event, UpdateReceived):
                if event.update.end_of_rib == EVPN_FAMILY:
                    self._stale_deadline = None
                self._actions.append(PeerUpdate(event.update, event.size))
            elif isinstance(event, UpdateErrors):
                self._actions.append(PeerUpdateErrors(event.errors))
            elif isinstance(event, RouteRefreshReceived):
                request = event.request
                # BoRR/EoRR (subtypes 1, 2) only bracket the peer's own routes: passed on
                family = (request.afi, request.safi)
                if request.subtype != 0 or self.backlog.requested(family) is Answer.START:
                    self._actions.append(PeerRouteRefresh(request))
            elif isinstance(event, OpenReceived):
                self._resolve_collision(conn_id, conn, now)
                conn.accept_open(now)  # (a no-op for the connection that lost)
                data = conn.data_to_send()
                if data:
                    self._actions.append(SendData(conn_id, data))
            elif isinstance(event, SessionEstablished):
                # An OPEN and KEEPALIVE in one segment reach Established in the connection
                # before the collision it lost was resolved: closed since, it never counts.
                if conn.state is State.ESTABLISHED:
                    self._on_established(conn_id, conn, event.negotiated, now)
            elif isinstance(event, ConnectionClosed):
                self._on_closed(conn_id, conn, event, now)
                # flush what close() queued (the NOTIFICATION) before the socket goes
                data = conn.data_to_send()
                if data:
                    self._actions.append(SendData(conn_id, data))
                self._actions.append(CloseConnection(conn_id))

    def _resolve_collision(self, conn_id: int, conn: Connection, now: float) -> None:
        assert conn.remote_open is not None
        for other_id, other in list(self._connections.items()):
            if other_id == conn_id or other.state is State.IDLE:
                continue
            if other.state is State.ESTABLISHED:
                gr = other.negotiated.peer_graceful_restart if other.negotiated else None
                fresh = conn.remote_open.capability(GracefulRestart)
                restarted = isinstance(fresh, GracefulRestart) and fresh.restarting
                if gr is not None and gr.restart_time and restarted:
                    # RFC 4724 §4: a new OPEN from an Established, restart-capable peer that
                    # says it is restarting (the R bit): the old session is over, its routes
                    # kept as stale. Without the R bit it is both sides connecting at once
                    # (the other's connection reached us after ours came up): RFC 4271 §6.8
                    # closes the new one, and the session does not flap.
                    other.close(None, "peer reconnected (graceful restart)")
                    self._drain(other_id, other, now)
                    continue
                conn.close(CEASE_COLLISION, "collision with the Established session")
                return
            if other.state is not State.OPEN_CONFIRM:
                continue
            # RFC 4271 §6.8: the connection opened by the speaker with the higher BGP
            # identifier survives.
            local_id = int(ipaddress.IPv4Address(self.local.router_id))
            remote_id = int(ipaddress.IPv4Address(conn.remote_open.router_id))
            keep_ours = local_id > remote_id
            loser_id = conn_id
            if (conn_id in self._outbound) == keep_ours:
                loser_id = other_id
            loser = self._connections[loser_id]
            loser.close(CEASE_COLLISION, "connection collision resolved against it")
            self._drain(loser_id, loser, now)
            if loser_id == conn_id:
                return

    def _on_established(
        self, conn_id: int, conn: Connection, negotiated: Negotiated, now: float
    ) -> None:
        for other_id, other in list(self._connections.items()):
            if other_id != conn_id and other.state is not State.IDLE:
                other.close(CEASE_COLLISION, "another connection reached Established")
                self._drain(other_id, other, now)
        self.established = conn
        self.established_at = now
        self.backlog.reset()
        self._backoff = 0.0
        self.last_error = ""
        if self._stale_deadline is not None:
            gr = negotiated.peer_graceful_restart
            kept = gr is not None and any(
                (f.afi, f.safi) == EVPN_FAMILY and f.forwarding_preserved for f in gr.families
            )
            # RFC 4724 §4.2: without the F bit the peer lost its forwarding state: drop now.
            if kept:
                self._stale_deadline = now + self.settings.stale_path_time
            else:
                self._stale_deadline = None
                self._actions.append(StaleRoutesExpired())
        self._actions.append(PeerUp(negotiated))

    def _on_closed(
        self, conn_id: int, conn: Connection, event: ConnectionClosed, now: float
    ) -> None:
        del self._connections[conn_id]
        self._outbound.discard(conn_id)
        up_since = self.established_at if conn is self.established else None
        if conn is self.established:
            self.established = None
            self.established_at = None
            self.last_error = self._cause = event.reason
            hold = self._graceful_hold(conn, event)
            if hold:
                self._stale_deadline = now + hold
            self._actions.append(PeerDown(event.reason, hold, event.sent, event.received))
        elif not self.established and event.reason:
            self.last_error = self._cause = event.reason
        if self.admin_up and not self._connections:
            self._base = State.ACTIVE
            # A connection the peer closed before sending a byte is its refusal (its own
            # idle hold, say), no failure of ours: counted, two damping speakers held each
            # other off in turn, each refusal doubling the other's hold.
            silent = up_since is None and conn.bytes_in == 0
            if not self._not_a_failure and not silent:
                idle_hold = self.damping.ended(now, up_since)
                if idle_hold:
                    self._actions.append(PeerDamped(idle_hold, self.damping.failures))
            self._not_a_failure = False
            self._schedule_retry(now)

    def _graceful_hold(self, conn: Connection, event: ConnectionClosed) -> int | None:
        negotiated = conn.negotiated
        if negotiated is None or not self.admin_up:
            return None
        gr = negotiated.peer_graceful_restart
        if (
            gr is None
            or not gr.restart_time
            or not any((f.afi, f.safi) == EVPN_FAMILY for f in gr.families)
        ):
            return None  # the peer cannot restart gracefully (FRR's helper-only mode)
        notification = event.sent or event.received
        if notification is not None:
            # RFC 8538 §3: with the N bit, any NOTIFICATION but Hard Reset is graceful.
            hard = notification.code == ErrorCode.CEASE and notification.subcode == (
                CeaseSubcode.HARD_RESET
            )
            if hard or not negotiated.graceful_notification:
                return None
        return gr.restart_time

    def _schedule_retry(self, now: float) -> None:
        if not self.admin_up or self.settings.passive:
            return
        # RFC 4271 §10: jitter the timer by 0.75-1.0 so that peers do not synchronise.
        self._backoff = min(max(self._backoff * 2, 1.0), self.settings.connect_retry)
        deadline = now + self._backoff * self._rng.uniform(0.75, 1.0)
        if self.damping.until is not None:
            deadline = max(deadline, self.damping.until)  # the IdleHoldTimer first
        self._retry_deadline = deadline

    def _cease(self, conn: Connection, subcode: int, message: str) -> Notification:
        negotiated = conn.negotiated
        if negotiated is not None and negotiated.graceful_notification:
            # RFC 8538 §3.1: to end a session for good (routes not kept) when the N bit was
            # negotiated, send Hard Reset carrying the real reason.
            inner = Notification.cease(subcode, message)
            return Notification(
                ErrorCode.CEASE,
                CeaseSubcode.HARD_RESET,
                bytes((inner.code, inner.subcode)) + inner.data,
            )
        return Notification.cease(subcode, message)

    def _note_state(self) -> None:
        state = self.state
        if state is not self._shown:
            self._actions.append(StateChanged(self._shown, state, self._cause))
            self._shown = state
        self._cause = ""


def _restarts_without_notification(conn: Connection, local: LocalSettings) -> bool:
    """An Established session whose peer helps us restart (we offered graceful restart for
    EVPN) but did not negotiate the N bit: only a silent close keeps our routes there."""
    negotiated = conn.negotiated
    return (
        conn.state is State.ESTABLISHED
        and negotiated is not None
        and bool(local.graceful_restart_time)
        # a peer that offered no graceful restart keeps nothing: a silent close would only
        # leave it forwarding to us until its hold timer ran out, so it gets the Cease
        and negotiated.peer_graceful_restart is not None
        and not negotiated.graceful_notification
    )
