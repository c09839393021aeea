"""The kernel's desired state follows the RIB, change by change."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from evpnd.bgp.attributes import AsPath, PathAttributes, PmsiTunnel
from evpnd.evpn.extcommunities import Encapsulation, MacMobility, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import InclusiveMulticastRoute, MacIpRoute
from evpnd.kernel.desired import DesiredState, VniPorts
from evpnd.rib.locrib import Rib
from evpnd.rib.paths import Path, Source
from tests.ribs import FollowedRib

V1, V2 = bytes((192, 0, 2, 1)), bytes((192, 0, 2, 2))
A = Source("192.0.2.1", "192.0.2.1", 65000, ibgp=True)
B = Source("192.0.2.2", "192.0.2.2", 65000, ibgp=True)
LOCAL = Source("local", "192.0.2.9", 65000, ibgp=True)
MAC = bytes.fromhex("020000000001")
PORTS = {100: VniPorts(100, vxlan_ifindex=10, bridge_ifindex=11, local_ip=bytes(4))}


def attrs(vtep: bytes, *extra: object) -> PathAttributes:
    return PathAttributes(
        origin=0,
        as_path=AsPath(),
        nexthop=vtep,
        ext_communities=(Encapsulation(8), RouteTarget(0, 65000, 100), *extra),
    )  # type: ignore[arg-type]


def state() -> tuple[Rib, DesiredState]:
    rib = FollowedRib()

    def importing(path: Path) -> list[int]:
        return (
            []
            if path.source.is_local
            else [rt.assigned for rt in path.attributes.route_targets if rt.assigned in PORTS]
        )

    desired = DesiredState(rib, dict(PORTS), importing)
    rib.follow(desired.on_changes)
    return rib, desired


def test_remote_mac_ip_and_vtep() -> None:
    rib, desired = state()
    rd = RouteDistinguisher.from_text("192.0.2.1:1")
    mac_only = MacIpRoute(rd, 0, MAC, b"", ZERO_ESI, 100)
    with_ip = MacIpRoute(rd, 0, MAC, bytes((10, 0, 0, 1)), ZERO_ESI, 100)
    imet = InclusiveMulticastRoute(rd, 0, V1)
    rib.update(A, [mac_only, with_ip], attrs(V1), [])
    rib.update(A, [imet], replace(attrs(V1), pmsi_tunnel=PmsiTunnel(0, 6, 100, V1)), [])
    changes = desired.take()
    assert changes.fdb_set == {(10, MAC): V1}
    assert changes.neigh_set == {(11, bytes((10, 0, 0, 1))): MAC}
    assert changes.flood_add == {(10, V1)}
    rib.update(A, [], attrs(V1), [with_ip, imet])
    changes = desired.take()
    assert set(changes.neigh_del) == {(11, bytes((10, 0, 0, 1)))}
    assert changes.flood_del == {(10, V1)}
    assert not changes.fdb_del  # the MAC-only route still wants the FDB entry


def test_mac_moves_to_the_higher_sequence() -> None:
    rib, desired = state()
    old = MacIpRoute(RouteDistinguisher.from_text("192.0.2.1:1"), 0, MAC, b"", ZERO_ESI, 100)
    new = MacIpRoute(RouteDistinguisher.from_text("192.0.2.2:1"), 0, MAC, b"", ZERO_ESI, 100)
    rib.update(A, [old], attrs(V1), [])
    desired.take()
    rib.update(B, [new], attrs(V2, MacMobility(1)), [])
    assert desired.take().fdb_set == {(10, MAC): V2}  # replaced in place
    rib.update(B, [], attrs(V2), [new])
    assert desired.take().fdb_set == {(10, MAC): V1}


def test_a_local_mac_wins_and_keeps_the_kernel_entry_alone() -> None:
    rib, desired = state()
    remote = MacIpRoute(RouteDistinguisher.from_text("192.0.2.1:1"), 0, MAC, b"", ZERO_ESI, 100)
    local = MacIpRoute(RouteDistinguisher.from_text("192.0.2.9:1"), 0, MAC, b"", ZERO_ESI, 100)
    rib.update(A, [remote], attrs(V1), [])
    desired.take()
    rib.update(LOCAL, [local], attrs(bytes(4), MacMobility(1)), [])
    assert set(desired.take().fdb_del) == {(10, MAC)}


def test_routes_of_vnis_not_imported_are_not_programmed() -> None:
    rib, desired = state()
    other = PathAttributes(
        origin=0, as_path=AsPath(), nexthop=V1, ext_communities=(RouteTarget(0, 65000, 999),)
    )
    rib.update(
        A,
        [MacIpRoute(RouteDistinguisher.from_text("192.0.2.1:9"), 0, MAC, b"", ZERO_ESI, 999)],
        other,
        [],
    )
    assert not desired.take()
    assert len(rib) == 1  # kept in the RIB all the same


def test_rebuild_queues_the_difference() -> None:
    rib, desired = state()
    rib.update(
        A,
        [InclusiveMulticastRoute(RouteDistinguisher.from_text("192.0.2.1:1"), 0, V1)],
        attrs(V1),
        [],
    )
    desired.take()
    desired.ports.clear()
    desired.rebuild()
    assert desired.take().flood_del == {(10, V1)}


def test_a_route_whose_label_and_vtep_change_leaves_nothing_behind() -> None:
    """The same RD/MAC re-announced with another label (VNI) and next hop, then withdrawn:
    the RIB's (VNI, MAC) index follows the label, the entry follows the next hop, and the
    withdrawal removes it (it used to stay for good)."""
    rib, desired = state()
    rd = RouteDistinguisher.from_text("192.0.2.1:1")
    first = MacIpRoute(rd, 0, MAC, b"", ZERO_ESI, 100)
    again = MacIpRoute(rd, 0, MAC, b"", ZERO_ESI, 101)
    rib.update(A, [first], attrs(V1), [])
    assert desired.desired.fdb == {(10, MAC): V1}
    rib.update(A, [again], attrs(V2), [])  # same key: labels are not part of it
    assert desired.desired.fdb == {(10, MAC): V2}
    assert rib.mac_paths(100, MAC) == [] and [p.route for p in rib.mac_paths(101, MAC)] == [again]
    rib.update(A, [], attrs(V2), [again])
    assert desired.desired.fdb == {} and rib.mac_paths(101, MAC) == []
    changes = desired.take()
    assert (10, MAC) in changes.fdb_del and not changes.fdb_set


def test_a_vtep_of_the_other_family_is_not_programmed() -> None:
    """An IPv6 next hop for a VNI whose vxlan device is IPv4: not reachable through it."""
    rib = FollowedRib()
    ports = {100: VniPorts(100, vxlan_ifindex=10, bridge_ifindex=11, local_ip=bytes(4))}
    desired = DesiredState(rib, ports, lambda path: [100])
    rib.follow(desired.on_changes)
    rd = RouteDistinguisher.from_text("192.0.2.1:1")
    v6 = bytes.fromhex("20010db8000000000000000000000002")
    rib.update(A, [MacIpRoute(rd, 0, MAC, b"", ZERO_ESI, 100)], attrs(v6), [])
    assert desired.desired.fdb == {} and not desired.take()
    rib.update(A, [MacIpRoute(rd, 0, MAC, b"", ZERO_ESI, 100)], attrs(V1), [])
    assert desired.desired.fdb == {(10, MAC): V1}


def test_the_bridge_half_of_an_entry_is_compared_too() -> None:
    from evpnd.kernel.desired import Entries, diff

    other = bytes.fromhex("020000000002")
    wanted = Entries(fdb={(10, MAC): V1})
    found = Entries(fdb={(10, MAC): V1}, bridge=set())  # the vxlan half alone
    assert diff(found, wanted).fdb_set == {(10, MAC): V1}  # one message mends both
    found.bridge = {(10, MAC), (10, other)}  # and a bridge half nothing wants
    changes = diff(found, wanted)
    assert not changes.fdb_set and set(changes.fdb_del) == {(10, other)}


RD1 = RouteDistinguisher.from_text("192.0.2.1:1")
RD2 = RouteDistinguisher.from_text("192.0.2.2:1")


def in_either_order(older: MacIpRoute, newer: MacIpRoute) -> Iterator[tuple[Rib, DesiredState]]:
    """`older` from A (VTEP 1, sequence 1) and `newer` from B (VTEP 2, sequence 2, the MAC
    mobility winner), announced in one order, then from scratch in the other."""
    announcements = ((A, older, V1, 1), (B, newer, V2, 2))
    for order in (announcements, announcements[::-1]):
        rib, desired = state()
        for source, route, vtep, sequence in order:
            rib.update(source, [route], attrs(vtep, MacMobility(sequence)), [])
        yield rib, desired


def test_routes_of_two_labels_imported_into_one_vni_share_its_entry_in_either_order() -> None:
    """Two VTEPs announce one MAC under different labels, and both are imported into VNI 100
    (by its RT): the FDB entry goes to the MAC mobility winner, the higher sequence number,
    whichever route came first (a table arriving takes a shorter path for a MAC's first
    route; it must still see the other label's claim)."""
    older = MacIpRoute(RD1, 0, MAC, b"", ZERO_ESI, 100)
    newer = MacIpRoute(RD2, 0, MAC, b"", ZERO_ESI, 200)
    for rib, desired in in_either_order(older, newer):
        assert desired.desired.fdb == {(10, MAC): V2}
        rib.update(B, [], attrs(V2), [newer])  # the winner goes: the other label's route stays
        assert desired.desired.fdb == {(10, MAC): V1}
        rib.update(A, [], attrs(V1), [older])
        assert desired.desired.fdb == {}


def test_two_macs_claiming_one_ip_keep_its_entry_in_either_order() -> None:
    """Two VTEPs bind the same IP to different MACs (a host moved, or a duplicate address):
    the ARP suppression entry follows the ranking (the higher sequence number), whichever
    route came first, and falls back to the other MAC when the winner is withdrawn — and goes
    only with the last of them (a table arriving or going takes a shorter path per route)."""
    ip = bytes((10, 0, 0, 7))
    other = bytes.fromhex("020000000002")
    older = MacIpRoute(RD1, 0, MAC, ip, ZERO_ESI, 100)
    newer = MacIpRoute(RD2, 0, other, ip, ZERO_ESI, 100)
    for rib, desired in in_either_order(older, newer):
        assert desired.desired.neigh == {(11, ip): other}
        rib.update(B, [], attrs(V2), [newer])
        assert desired.desired.neigh == {(11, ip): MAC}
        rib.update(B, [newer], attrs(V2, MacMobility(2)), [])
        rib.update(A, [], attrs(V1), [older])  # the loser goes first this time
        assert desired.desired.neigh == {(11, ip): other}
        rib.update(B, [], attrs(V2), [newer])
        assert desired.desired.neigh == {}
