"""What two OPENs agree on (RFC 4271 §4.2, RFC 5492 and the capability RFCs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from evpnd.bgp.capabilities import (
    ADD_PATH_RECEIVE,
    ADD_PATH_SEND,
    AddPath,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAs,
    Fqdn,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
)
from evpnd.bgp.context import CodecContext
from evpnd.bgp.messages import Open
from evpnd.wire.constants import MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Afi, Safi

EVPN_FAMILY = (int(Afi.L2VPN), int(Safi.EVPN))


@dataclass(frozen=True, slots=True)
class LocalSettings:
    """What this speaker offers a peer in its OPEN."""

    asn: int
    router_id: str
    hold_time: int = 90
    hostname: str = ""
    #: RFC 4724: advertise graceful restart with this restart time (0: do not advertise).
    graceful_restart_time: int = 120
    #: Set while this speaker itself restarts, so peers keep our routes (the R bit).
    restarting: bool = False
    #: Whether our forwarding state (the kernel entries) survived the restart.
    forwarding_preserved: bool = True
    #: RFC 8538's N bit: a NOTIFICATION (other than Hard Reset) keeps the routes too. Off, the
    #: capability is RFC 4724's alone (as BIRD 2.x sends it).
    graceful_notification: bool = True
    extended_message: bool = True
    #: Address families offered; only L2VPN EVPN is carried, others exist for tests.
    families: tuple[tuple[int, int], ...] = (EVPN_FAMILY,)

    def capabilities(self) -> tuple[Capability, ...]:
        caps: list[Capability] = [Multiprotocol(*family) for family in self.families]
        caps += [
            RouteRefresh(),
            RouteRefresh(cisco=True),
            EnhancedRouteRefresh(),
            FourOctetAs(self.asn),
        ]
        if self.extended_message:
            caps.append(ExtendedMessage())
        if self.graceful_restart_time:
            caps.append(
                GracefulRestart(
                    self.graceful_restart_time,
                    restarting=self.restarting,
                    notification=self.graceful_notification,
                    families=(GracefulRestartFamily(*EVPN_FAMILY, self.forwarding_preserved),),
                )
            )
        if self.hostname:
            caps.append(Fqdn(self.hostname[:64]))
        return tuple(caps)

    def open_message(self) -> Open:
        return Open(self.asn, self.hold_time, self.router_id, self.capabilities())


@dataclass(frozen=True, slots=True)
class Negotiated:
    local: Open
    remote: Open
    hold_time: int
    keepalive: int
    families: frozenset[tuple[int, int]]
    four_octet_as: bool
    route_refresh: bool
    enhanced_route_refresh: bool
    extended_message: bool
    #: The peer's graceful restart capability, if it sent one.
    peer_graceful_restart: GracefulRestart | None
    #: RFC 8538 N bit on both sides: a NOTIFICATION other than Hard Reset keeps routes too.
    graceful_notification: bool
    add_path_receive: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    add_path_send: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    external: bool = False

    @property
    def context(self) -> CodecContext:
        return CodecContext(
            four_octet_as=self.four_octet_as,
            external=self.external,
            add_path_receive=self.add_path_receive,
            add_path_send=self.add_path_send,
            max_message_len=MAX_EXTENDED_MESSAGE_LEN if self.extended_message else MAX_MESSAGE_LEN,
        )

    @property
    def peer_hostname(self) -> str | None:
        fqdn = self.remote.capability(Fqdn)
        return fqdn.hostname if isinstance(fqdn, Fqdn) else None


def _families(message: Open) -> set[tuple[int, int]]:
    return {(c.afi, c.safi) for c in message.capabilities if isinstance(c, Multiprotocol)}


def _add_path(message: Open) -> dict[tuple[int, int], int]:
    modes: dict[tuple[int, int], int] = {}
    for cap in message.capabilities:
        if isinstance(cap, AddPath):
            for afi, safi, mode in cap.families:
                modes[(afi, safi)] = mode
    return modes


def _both(local: Open, remote: Open, kind: type) -> bool:
    # `is not None`: capabilities without a value are empty tuples, which are false.
    return local.capability(kind) is not None and remote.capability(kind) is not None


def negotiate(local: Open, remote: Open, external: bool) -> Negotiated:
    hold = min(local.hold_time, remote.hold_time)
    ours = _add_path(local)
    theirs = _add_path(remote)
    receive = {
        f for f, m in ours.items() if m & ADD_PATH_RECEIVE and theirs.get(f, 0) & ADD_PATH_SEND
    }
    send = {f for f, m in ours.items() if m & ADD_PATH_SEND and theirs.get(f, 0) & ADD_PATH_RECEIVE}
    peer_gr = remote.capability(GracefulRestart)
    local_gr = local.capability(GracefulRestart)
    return Negotiated(
        local=local,
        remote=remote,
        hold_time=hold,
        keepalive=hold // 3,
        families=frozenset(_families(local) & _families(remote)),
        four_octet_as=_both(local, remote, FourOctetAs),
        route_refresh=remote.capability(RouteRefresh) is not None,
        enhanced_route_refresh=_both(local, remote, EnhancedRouteRefresh),
        extended_message=_both(local, remote, ExtendedMessage),
        peer_graceful_restart=peer_gr if isinstance(peer_gr, GracefulRestart) else None,
        graceful_notification=bool(
            isinstance(peer_gr, GracefulRestart)
            and isinstance(local_gr, GracefulRestart)
            and peer_gr.notification
            and local_gr.notification
        ),
        add_path_receive=frozenset(receive),
        add_path_send=frozenset(send),
        external=external,
    )
