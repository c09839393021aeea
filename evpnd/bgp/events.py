"""What the session core tells the shell around it: small immutable events."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from evpnd.bgp.messages import Notification, Open, RouteRefresh
from evpnd.bgp.negotiation import Negotiated
from evpnd.bgp.update import Update
from evpnd.wire.errors import DecodeError


class State(Enum):
    """RFC 4271 §8.2.2 states; `.value` is the name operators know (FRR, `show peers`)."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


# --- from a connection -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenReceived:
    """The peer's OPEN was acceptable; the connection is now in OpenConfirm."""

    open: Open


@dataclass(frozen=True, slots=True)
class SessionEstablished:
    negotiated: Negotiated


@dataclass(frozen=True, slots=True)
class UpdateReceived:
    update: Update
    #: Bytes of the UPDATE, for metrics.
    size: int


@dataclass(frozen=True, slots=True)
class RouteRefreshReceived:
    request: RouteRefresh


@dataclass(frozen=True, slots=True)
class UpdateErrors:
    """RFC 7606 errors that did not end the session (treat-as-withdraw, attribute discard):
    they must be logged, and the routes were handled as the errors say."""

    errors: tuple[DecodeError, ...]


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is finished; the shell closes its socket."""

    reason: str
    sent: Notification | None = None
    received: Notification | None = None
    #: The session had been Established when it ended.
    was_established: bool = False


ConnectionEvent = (
    OpenReceived
    | SessionEstablished
    | UpdateReceived
    | RouteRefreshReceived
    | UpdateErrors
    | ConnectionClosed
)


# --- from a peer ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateChanged:
    old: State
    new: State
    #: what caused this change, when it was a failure at that moment (else empty: a reason
    #: from an earlier change must not ride along on this one)
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """Open a TCP connection to the peer; answer with connection_made or connection_failed."""


@dataclass(frozen=True, slots=True)
class SendData:
    connection: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseConnection:
    connection: int


@dataclass(frozen=True, slots=True)
class PeerUp:
    negotiated: Negotiated


@dataclass(frozen=True, slots=True)
class PeerDown:
    """The Established session ended. With `graceful_restart` (seconds), RFC 4724 says to keep
    the peer's routes, marked stale, until it comes back or that time has passed."""

    reason: str
    graceful_restart: int | None = None
    sent: Notification | None = None
    received: Notification | None = None


@dataclass(frozen=True, slots=True)
class PeerUpdate:
    update: Update
    size: int


@dataclass(frozen=True, slots=True)
class PeerRouteRefresh:
    request: RouteRefresh


@dataclass(frozen=True, slots=True)
class PeerUpdateErrors:
    errors: tuple[DecodeError, ...]


@dataclass(frozen=True, slots=True)
class StaleRoutesExpired:
    """The graceful-restart time ran out before the peer sent End-of-RIB: drop its stale
    routes."""


@dataclass(frozen=True, slots=True)
class PeerDamped:
    """RFC 4271 §8.1.1 DampPeerOscillations: the peer's sessions keep failing soon after they
    start; it is held idle for `hold` seconds (no connection tried, none accepted)."""

    hold: float
    failures: int


PeerAction = (
    StateChanged
    | ConnectRequested
    | SendData
    | CloseConnection
    | PeerUp
    | PeerDown
    | PeerUpdate
    | PeerRouteRefresh
    | PeerUpdateErrors
    | StaleRoutesExpired
    | PeerDamped
)
