"""What happened, as typed values: a session came up, a VNI appeared, a MAC moved, the kernel
was repaired. The cores return them; the daemon reports each one once — a log line and an
`evpnctl watch` event from the same object, so the two never drift apart.

Each event names its `evpnctl watch` kind (`peer`, `vni`, `mac`, ...) and the fixed fields that
say what happened (`action` or `state`); its own fields follow. The log line is `message`, at
`level`, with the same fields. An event with no `message` is not logged (route changes: there
can be a million of them)."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import Any, ClassVar


def readable(value: Any) -> Any:
    """A value as people read it: bytes become a MAC (six bytes), an address (four or
    sixteen) or hex — never `b'\\xc0\\xa8d\\x01'` — also inside a list or tuple. The one rule
    for what reaches a log line or `evpnctl watch` (events' fields, daemon/logs.py); the
    callers should have said it in words already, this is the net under them."""
    kind = type(value)
    if kind is bytes or kind is bytearray:
        if len(value) == 6:
            return bytes(value).hex(":")
        if len(value) in (4, 16):
            return str(ipaddress.ip_address(bytes(value)))
        return bytes(value).hex()
    if (kind is list or kind is tuple) and any(type(v) in (bytes, bytearray) for v in value):
        return [readable(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Event:
    kind: ClassVar[str]
    #: the fields every event of this class carries on the watch stream (action or state)
    fixed: ClassVar[dict[str, str]] = {}
    message: ClassVar[str] = ""
    level: ClassVar[str] = "info"

    def fields(self) -> dict[str, Any]:
        """The watch event's fields (and the log line's), in declaration order."""
        names = _NAMES.get(type(self))
        if names is None:  # once per class: dataclasses.fields() is slow for a hot path
            names = _NAMES[type(self)] = [
                (f.name, f.name.rstrip("_")) for f in dataclasses.fields(self)
            ]
        out: dict[str, Any] = dict(self.fixed)
        for name, key in names:
            out[key] = readable(getattr(self, name))
        return out


_NAMES: dict[type, list[tuple[str, str]]] = {}


# --- sessions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerEstablished(Event):
    kind = "peer"
    fixed = {"state": "Established"}
    message = "session established"

    peer: str
    remote_as: int
    router_id: str
    hostname: str | None
    hold_time: int


@dataclass(frozen=True, slots=True)
class PeerDown(Event):
    kind = "peer"
    fixed = {"state": "down"}
    message = "session down"

    peer: str
    reason: str
    sent: str | None
    received: str | None
    graceful_restart: float | None
    #: ended by us on purpose (a stop, a reload, `clear peer`): not a warning
    deliberate: bool = False

    @property
    def level(self) -> str:  # type: ignore[override]  # (a ClassVar elsewhere)
        return "info" if self.deliberate else "warning"


# --- VNIs found in the kernel --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VniFound(Event):
    kind = "vni"
    fixed = {"action": "found"}
    message = "vni found"

    vni: int
    vxlan: str
    bridge: str | None
    vtep: str | None
    problems: list[str]


@dataclass(frozen=True, slots=True)
class VniGone(Event):
    kind = "vni"
    fixed = {"action": "gone"}
    message = "vni gone"

    vni: int
    vxlan: str


@dataclass(frozen=True, slots=True)
class L3VniFound(Event):
    kind = "l3vni"
    fixed = {"action": "found"}
    message = "l3vni found"

    vni: int
    vxlan: str
    bridge: str | None
    router_mac: str | None
    vrf: str
    table: int | None


@dataclass(frozen=True, slots=True)
class L3VniGone(Event):
    kind = "l3vni"
    fixed = {"action": "gone"}
    message = "l3vni gone"

    vni: int
    vxlan: str


# --- the kernel ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KernelRepaired(Event):
    """Entries a full comparison with the kernel found wrong and rewrote (or removed): how
    many of each kind, and the first few of them in words — the operator's first question is
    which MAC."""

    kind = "kernel"
    fixed = {"action": "repaired"}
    message = "kernel repaired"

    entries: int
    fdb: int
    flood: int
    neigh: int
    routes: int
    removed: int
    #: `fdb vxlan100 02:00:00:00:00:01 -> 192.0.2.2, … and 7 more` (kernel/entry_text.py)
    repaired: str = ""


# --- the underlay ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VtepUnreachable(Event):
    """Next-hop tracking: routes towards this VTEP are no candidates until it is back."""

    kind = "vtep"
    fixed = {"state": "unreachable"}
    message = "vtep unreachable"
    level = "warning"

    vtep: str
    reason: str
    paths: int


@dataclass(frozen=True, slots=True)
class VtepReachable(Event):
    kind = "vtep"
    fixed = {"state": "reachable"}
    message = "vtep reachable"

    vtep: str
    device: str | None
    mtu: int | None


@dataclass(frozen=True, slots=True)
class MtuProblem(Event):
    """A VNI's devices take larger frames than the way to one of its VTEPs carries."""

    kind = "vni"
    fixed = {"action": "mtu problem"}
    message = "vni mtu problem"
    level = "warning"

    vni: int
    inner_mtu: int
    problem: str


# --- MAC mobility (RFC 7432 §15) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MacMovedHere(Event):
    kind = "mac"
    fixed = {"action": "moved here"}
    message = "mac moved here"

    vni: int
    mac: str
    seq: int


@dataclass(frozen=True, slots=True)
class MacMovedAway(Event):
    kind = "mac"
    fixed = {"action": "moved away"}
    message = "mac moved away"

    vni: int
    mac: str
    to: str | None
    seq: int


@dataclass(frozen=True, slots=True)
class MacFrozen(Event):
    kind = "mac"
    fixed = {"action": "frozen"}
    message = "duplicate address: mac frozen"
    level = "warning"

    vni: int
    mac: str
    moves: int
    window_s: float
    hint: str = "this VTEP stops announcing it; find the duplicate host"


@dataclass(frozen=True, slots=True)
class MacCleared(Event):
    kind = "mac"
    fixed = {"action": "cleared"}
    message = "duplicate address: mac cleared"

    vni: int
    mac: str


# --- routes (watch only) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouteChanged(Event):
    """A best-path change: added, changed, moved (another next hop, or between local and
    remote), withdrawn."""

    kind = "route"

    action: str
    type: int
    rd: str
    route: str
    source: str
    nexthop: str | None
    vni: int | None = None
    mac: str | None = None
    ip: str | None = None
    seq: int | None = None
    from_: str | None = None


# --- what this VTEP originates -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VniOriginated(Event):
    kind = "vni"
    fixed = {"action": "originated"}
    message = "vni"

    vni: int
    rd: str
    vtep: str
    export: list[str]
    imports: list[str] | str


@dataclass(frozen=True, slots=True)
class L3VniOriginated(Event):
    kind = "l3vni"
    fixed = {"action": "originated"}
    message = "l3vni"

    vni: int
    vrf: str
    rd: str
    router_mac: str
    l2vnis: list[int]
    prefixes: list[str]


@dataclass(frozen=True, slots=True)
class L3VniOutsideItsVrf(Event):
    kind = "l3vni"
    fixed = {"action": "not announced"}
    message = "l3vni: its bridge is not in the VRF"
    level = "warning"

    vni: int
    vrf: str | None
    found: str | None
