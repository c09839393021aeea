"""One TCP connection's BGP conversation, from the OPEN to its end (RFC 4271 §8), sans I/O.

Bytes and the time go in; events and bytes to send come out. A `Peer` owns one or two of these
(two only while a connection collision is being resolved, §6.8) and adds the states before a
connection exists (Idle, Connect, Active).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from evpnd.bgp.capabilities import Multiprotocol
from evpnd.bgp.context import DEFAULT_CONTEXT, CodecContext
from evpnd.bgp.events import (
    ConnectionClosed,
    ConnectionEvent,
    OpenReceived,
    RouteRefreshReceived,
    SessionEstablished,
    State,
    UpdateErrors,
    UpdateReceived,
)
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import (
    KEEPALIVE_BYTES,
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    decode_message,
)
from evpnd.bgp.negotiation import EVPN_FAMILY, Negotiated, negotiate
from evpnd.bgp.update import Update
from evpnd.wire.constants import (
    CeaseSubcode,
    ErrorCode,
    FsmSubcode,
    MessageType,
    OpenSubcode,
)
from evpnd.wire.errors import DecodeError, ErrorAction

#: RFC 4271 §8.2.2: the hold timer while waiting for the peer's OPEN ("a large value").
OPEN_HOLD_TIME = 240.0

_Handler = Callable[["Connection", Message, float], None]


class Connection:
    """States here are OpenSent → OpenConfirm → Established, then closed.

    `peer_as` None accepts any AS (a listen range without remote_as)."""

    def __init__(
        self,
        local: Open,
        peer_as: int | None,
        now: float,
        *,
        external: bool,
    ) -> None:
        self.local_open = local
        self.peer_as = peer_as
        self.external = external
        self.state = State.OPEN_SENT
        self.negotiated: Negotiated | None = None
        self.remote_open: Open | None = None
        self.ctx: CodecContext = DEFAULT_CONTEXT
        self._reader = MessageReader()
        self._outbox: list[bytes] = [local.encode()]
        self._events: deque[ConnectionEvent] = deque()
        self._hold_deadline: float | None = now + OPEN_HOLD_TIME
        self._keepalive_deadline: float | None = None
        #: an OPEN received and not yet confirmed with our KEEPALIVE (`accept_open`)
        self._open_unconfirmed = False
        self._attribute_cache: dict[bytes, object] = {}
        self._size = 0
        self.messages_in = 0
        #: bytes read from the peer: none at all means it closed without a word (damping.py)
        self.bytes_in = 0
        self.messages_out = 1
        self.updates_in = 0
        self.updates_out = 0

    @property
    def alive(self) -> bool:
        return self.state is not State.IDLE

    # --- inputs ------------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        if self.state is State.IDLE:
            return
        self.bytes_in += len(data)
        self._reader.feed(data)
        while self.alive:
            raw = self._reader.next_message()
            if raw is None:
                return
            if isinstance(raw, DecodeError):
                self._fail(raw, now)
                return
            message = decode_message(raw, self.ctx, self._attribute_cache)
            if isinstance(message, DecodeError):
                self._fail(message, now)
                return
            self.messages_in += 1
            self._size = len(raw)
            handler = _TRANSITIONS[self.state].get(type(message), Connection._unexpected)
            handler(self, message, now)

    def handle_timer(self, now: float) -> None:
        if self.state is State.IDLE:
            return
        if self._hold_deadline is not None and now >= self._hold_deadline:
            self.close(Notification(ErrorCode.HOLD_TIMER_EXPIRED), "hold timer expired")
            return
        if self._keepalive_deadline is not None and now >= self._keepalive_deadline:
            self._send_keepalive(now)

    def connection_lost(self) -> None:
        """The TCP connection went away under us (reset, EOF)."""
        if self.state is not State.IDLE:
            self._finish(
                ConnectionClosed(
                    "connection closed by peer", was_established=self.state is State.ESTABLISHED
                )
            )

    def accept_open(self, now: float) -> None:
        """The peer's OPEN survived the collision check: confirm it with a KEEPALIVE (RFC 4271
        §8.2.2). (An OPEN and KEEPALIVE in one segment may have made the session Established
        already; the KEEPALIVE still goes first, before any UPDATE.)"""
        if self._open_unconfirmed and self.state in (State.OPEN_CONFIRM, State.ESTABLISHED):
            self._open_unconfirmed = False
            self._send_keepalive(now)

    def close(self, notification: Notification | None, reason: str) -> None:
        if self.state is State.IDLE:
            return
        if notification is not None:
            self._outbox.append(notification.encode())
            self.messages_out += 1
        self._finish(
            ConnectionClosed(
                reason, sent=notification, was_established=self.state is State.ESTABLISHED
            )
        )

    def send(self, messages: list[bytes], now: float) -> None:
        """Queue UPDATEs (or ROUTE-REFRESH) for an Established session."""
        if self.state is not State.ESTABLISHED or not messages:
            return
        self._outbox.extend(messages)
        self.messages_out += len(messages)
        self.updates_out += len(messages)
        # RFC 4271 §8.2.2: sending an UPDATE restarts the keepalive timer.
        if self.negotiated is not None and self.negotiated.keepalive:
            self._keepalive_deadline = now + self.negotiated.keepalive

    # --- outputs -----------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = b"".join(self._outbox)
        self._outbox.clear()
        return out

    def next_event(self) -> ConnectionEvent | None:
        return self._events.popleft() if self._events else None

    def timer(self) -> float | None:
        deadlines = [d for d in (self._hold_deadline, self._keepalive_deadline) if d is not None]
        return min(deadlines) if deadlines else None

    # --- transitions -------------------------------------------------------------------------

    def _on_open(self, message: Message, now: float) -> None:
        assert isinstance(message, Open)
        refusal = self._check_open(message)
        if refusal is not None:
            notification, reason = refusal
            self.close(notification, reason)
            return
        self.remote_open = message
        self.negotiated = negotiate(self.local_open, message, self.external)
        self.ctx = self.negotiated.context
        self._reader.max_message_len = self.ctx.max_message_len
        self.state = State.OPEN_CONFIRM
        # The KEEPALIVE that confirms the OPEN waits for `accept_open`: the peer resolves a
        # collision first (RFC 4271 §6.8), and the connection that loses it gets our Cease
        # alone, never a KEEPALIVE saying it was accepted.
        self._open_unconfirmed = True
        self._restart_hold(now)
        self._events.append(OpenReceived(message))

    def _check_open(self, message: Open) -> tuple[Notification, str] | None:
        if message.other_parameters:
            # RFC 4271 §6.2: capabilities (type 2) are the only optional parameter defined
            # (type 1, authentication, was deprecated by RFC 5492)
            kind = message.other_parameters[0][0]
            return (
                Notification(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER),
                f"peer sent optional parameter type {kind}, which we do not know",
            )
        if message.asn == 0 or message.my_as_field == 0:
            # RFC 7607 §2: AS 0 is nobody's AS, wherever any AS is welcome
            return (
                Notification(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS, bytes(2)),
                "peer says AS 0 (RFC 7607)",
            )
        if self.peer_as is not None and message.asn != self.peer_as:
            data = message.my_as_field.to_bytes(2, "big") if message.my_as_field else b""
            return (
                Notification(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS, data),
                f"peer says AS {message.asn}, configured {self.peer_as}",
            )
        if message.router_id == self.local_open.router_id and not self.external:
            # RFC 6286 §2.2: within an AS the identifiers must differ.
            return (
                Notification(ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_BGP_IDENTIFIER),
                f"peer uses our own router id {message.router_id}",
            )
        families = {(c.afi, c.safi) for c in message.capabilities if isinstance(c, Multiprotocol)}
        if EVPN_FAMILY not in families:
            # RFC 5492 §3: the data lists the capability the peer failed to offer.
            wanted = Multiprotocol(*EVPN_FAMILY)
            data = bytes((wanted.code, 4)) + wanted.encode_value()
            return (
                Notification(ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSUPPORTED_CAPABILITY, data),
                "peer does not offer L2VPN EVPN (AFI 25 / SAFI 70)",
            )
        return None

    def _on_keepalive_confirm(self, message: Message, now: float) -> None:
        assert self.negotiated is not None
        self.state = State.ESTABLISHED
        self._restart_hold(now)
        self._events.append(SessionEstablished(self.negotiated))

    def _on_keepalive(self, message: Message, now: float) -> None:
        self._restart_hold(now)

    def _on_update(self, message: Message, now: float) -> None:
        assert isinstance(message, Update)
        self.updates_in += 1
        self._restart_hold(now)
        self._events.append(UpdateReceived(message, self._size))
        if message.errors:
            self._events.append(UpdateErrors(message.errors))

    def _on_route_refresh(self, message: Message, now: float) -> None:
        assert isinstance(message, RouteRefresh)
        self._restart_hold(now)
        self._events.append(RouteRefreshReceived(message))

    def _on_notification(self, message: Message, now: float) -> None:
        assert isinstance(message, Notification)
        self._finish(
            ConnectionClosed(
                f"peer sent NOTIFICATION {message}",
                received=message,
                was_established=self.state is State.ESTABLISHED,
            )
        )

    def _unexpected(self, message: Message, now: float) -> None:
        # RFC 6608: say in which state the unexpected message came.
        subcode = {
            State.OPEN_SENT: FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENSENT,
            State.OPEN_CONFIRM: FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENCONFIRM,
            State.ESTABLISHED: FsmSubcode.UNEXPECTED_MESSAGE_IN_ESTABLISHED,
        }.get(self.state, FsmSubcode.UNSPECIFIED)
        kind = type(message).__name__.upper()
        data = bytes((_MESSAGE_TYPES.get(type(message), 0),))
        self.close(
            Notification(ErrorCode.FSM, subcode, data),
            f"{kind} is not expected in {self.state.value}",
        )

    # --- helpers -----------------------------------------------------------------------------

    def _fail(self, error: DecodeError, now: float) -> None:
        assert error.action is ErrorAction.SESSION_RESET
        self.close(Notification.from_error(error), f"bad message from peer: {error}")

    def _send_keepalive(self, now: float) -> None:
        self._outbox.append(KEEPALIVE_BYTES)
        self.messages_out += 1
        keepalive = self.negotiated.keepalive if self.negotiated else 0
        self._keepalive_deadline = now + keepalive if keepalive else None

    def _restart_hold(self, now: float) -> None:
        hold = self.negotiated.hold_time if self.negotiated else OPEN_HOLD_TIME
        self._hold_deadline = now + hold if hold else None

    def _finish(self, event: ConnectionClosed) -> None:
        self.state = State.IDLE
        self._hold_deadline = None
        self._keepalive_deadline = None
        self._events.append(event)


_MESSAGE_TYPES: dict[type, int] = {
    Open: MessageType.OPEN,
    Update: MessageType.UPDATE,
    Notification: MessageType.NOTIFICATION,
    Keepalive: MessageType.KEEPALIVE,
    RouteRefresh: MessageType.ROUTE_REFRESH,
}

#: RFC 4271 §8.2.2 as a table: in each state, which message goes to which handler. A message
#: not listed is an FSM error. (Idle, Connect and Active have no connection: see `Peer`.)
_TRANSITIONS: dict[State, dict[type, _Handler]] = {
    State.OPEN_SENT: {
        Open: Connection._on_open,
        Notification: Connection._on_notification,
    },
    State.OPEN_CONFIRM: {
        Keepalive: Connection._on_keepalive_confirm,
        Notification: Connection._on_notification,
    },
    State.ESTABLISHED: {
        Update: Connection._on_update,
        Keepalive: Connection._on_keepalive,
        RouteRefresh: Connection._on_route_refresh,
        Notification: Connection._on_notification,
    },
}

CEASE_COLLISION = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
