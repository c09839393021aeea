"""What symmetric IRB wants in the kernel, computed from RIB changes (no I/O): routes via the
remote VTEP on the L3VNI bridge, and the remote Router's MAC entries they share."""

from __future__ import annotations

import ipaddress

from evpnd.bgp.attributes import AsPath, PathAttributes
from evpnd.evpn.extcommunities import Encapsulation, RouterMac, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import IpPrefixRoute, MacIpRoute
from evpnd.kernel.desired import V4_MAPPED, DesiredState, L3Ports
from evpnd.kernel.iproutes import Nexthop, RouteKey
from evpnd.rib.locrib import Rib
from evpnd.rib.paths import Path, Source
from tests.ribs import FollowedRib

V2, V3 = bytes((192, 0, 2, 2)), bytes((192, 0, 2, 3))
B = Source("192.0.2.2", "192.0.2.2", 65000, ibgp=True)
C = Source("192.0.2.3", "192.0.2.3", 65000, ibgp=True)
RMAC2, RMAC3 = bytes.fromhex("7ec15b5c2515"), bytes.fromhex("7ec15b5c2516")
RD2, RD3 = RouteDistinguisher.from_text("192.0.2.2:3"), RouteDistinguisher.from_text("192.0.2.3:3")
L3 = L3Ports(4001, vxlan_ifindex=20, bridge_ifindex=21, table=254)


def attrs(vtep: bytes, rmac: bytes, *rts: RouteTarget) -> PathAttributes:
    return PathAttributes(
        origin=0,
        as_path=AsPath(),
        nexthop=vtep,
        ext_communities=(Encapsulation(8), *rts, RouterMac(rmac)),
    )


RT_L3 = RouteTarget(0, 65000, 4001)


def prefix(rd: RouteDistinguisher, text: str) -> IpPrefixRoute:
    network = ipaddress.ip_network(text)
    packed = network.network_address.packed
    return IpPrefixRoute(rd, 0, network.prefixlen, packed, ZERO_ESI, bytes(len(packed)), 4001)


def state(ports: L3Ports = L3) -> tuple[Rib, DesiredState]:
    rib = FollowedRib()

    def importing_l3(path: Path) -> list[int]:
        rts = path.attributes.route_targets
        return [ports.vni] if any(rt.assigned == ports.vni for rt in rts) else []

    desired = DesiredState(rib, {}, lambda path: [], {ports.vni: ports}, importing_l3)
    rib.follow(desired.on_changes)
    return rib, desired


def key(text: str, table: int = 254) -> RouteKey:
    network = ipaddress.ip_network(text)
    return RouteKey(table, network.network_address.packed, network.prefixlen)


def test_type5_and_host_route_share_the_router_mac_entries() -> None:
    rib, desired = state()
    subnet = prefix(RD2, "10.2.2.0/24")
    host = MacIpRoute(
        RD2, 0, bytes.fromhex("020000000222"), bytes((10, 2, 2, 10)), ZERO_ESI, 220, 4001
    )
    rib.update(B, [subnet], attrs(V2, RMAC2, RT_L3), [])
    rib.update(B, [host], attrs(V2, RMAC2, RouteTarget(0, 65000, 220), RT_L3), [])
    changes = desired.take()
    assert changes.route_set == {
        key("10.2.2.0/24"): (Nexthop(V2, 21),),
        key("10.2.2.10/32"): (Nexthop(V2, 21),),
    }
    assert changes.fdb_set == {(20, RMAC2): V2}
    assert changes.neigh_set == {(21, V2): RMAC2}
    # the prefix goes: its route only; the host route still needs the Router's MAC
    rib.update(B, [], attrs(V2, RMAC2), [subnet])
    changes = desired.take()
    assert set(changes.route_del) == {key("10.2.2.0/24")}
    assert not changes.fdb_del and not changes.neigh_del
    rib.update(B, [], attrs(V2, RMAC2), [host])
    changes = desired.take()
    assert set(changes.route_del) == {key("10.2.2.10/32")}
    assert set(changes.fdb_del) == {(20, RMAC2)} and set(changes.neigh_del) == {(21, V2)}
    assert desired.desired.routes == {} and desired.desired.fdb == {}


def test_host_route_and_covering_prefix_from_different_vteps() -> None:
    rib, desired = state()
    rib.update(B, [prefix(RD2, "10.2.0.0/16")], attrs(V2, RMAC2, RT_L3), [])
    host = MacIpRoute(
        RD3, 0, bytes.fromhex("020000000333"), bytes((10, 2, 3, 10)), ZERO_ESI, 330, 4001
    )
    rib.update(C, [host], attrs(V3, RMAC3, RT_L3), [])
    assert desired.desired.routes == {
        key("10.2.0.0/16"): (Nexthop(V2, 21),),
        key("10.2.3.10/32"): (Nexthop(V3, 21),),  # longest match: the kernel's job from here
    }
    assert desired.desired.fdb == {(20, RMAC2): V2, (20, RMAC3): V3}
    assert desired.desired.neigh == {(21, V2): RMAC2, (21, V3): RMAC3}


def test_one_prefix_from_two_vteps_is_one_ecmp_route() -> None:
    rib, desired = state()
    rib.update(C, [prefix(RD3, "10.8.0.0/16")], attrs(V3, RMAC3, RT_L3), [])
    rib.update(B, [prefix(RD2, "10.8.0.0/16")], attrs(V2, RMAC2, RT_L3), [])
    both = (Nexthop(V2, 21), Nexthop(V3, 21))
    assert desired.desired.routes == {key("10.8.0.0/16"): both}
    assert desired.desired.neigh == {(21, V2): RMAC2, (21, V3): RMAC3}
    desired.take()
    rib.update(B, [], attrs(V2, RMAC2), [prefix(RD2, "10.8.0.0/16")])
    changes = desired.take()
    assert changes.route_set == {key("10.8.0.0/16"): (Nexthop(V3, 21),)}  # replaced in place
    assert not changes.route_del
    assert set(changes.neigh_del) == {(21, V2)} and set(changes.fdb_del) == {(20, RMAC2)}


def test_ipv6_via_an_ipv4_vtep_uses_the_mapped_address() -> None:
    rib, desired = state()
    rib.update(B, [prefix(RD2, "2001:db8:220::/64")], attrs(V2, RMAC2, RT_L3), [])
    mapped = V4_MAPPED + V2
    assert desired.desired.routes == {key("2001:db8:220::/64"): (Nexthop(mapped, 21),)}
    assert desired.desired.neigh == {(21, mapped): RMAC2}


def test_what_is_not_routed() -> None:
    rib, desired = state()
    l2_only = MacIpRoute(
        RD2, 0, bytes.fromhex("020000000222"), bytes((10, 2, 2, 10)), ZERO_ESI, 220
    )
    rib.update(B, [l2_only], attrs(V2, RMAC2, RT_L3), [])  # one label: an L2 binding
    other = RouteTarget(0, 65000, 5001)
    rib.update(B, [prefix(RD2, "10.5.0.0/16")], attrs(V2, RMAC2, other), [])  # not imported
    no_rmac = PathAttributes(origin=0, as_path=AsPath(), nexthop=V2, ext_communities=(RT_L3,))
    rib.update(B, [prefix(RD2, "10.6.0.0/16")], no_rmac, [])  # nothing to route with
    assert not desired.take() and desired.desired.routes == {}


def test_a_vrf_table() -> None:
    rib, desired = state(L3Ports(5001, vxlan_ifindex=30, bridge_ifindex=31, table=1001))
    rib.update(B, [prefix(RD2, "10.2.2.0/24")], attrs(V2, RMAC2, RouteTarget(0, 65000, 5001)), [])
    assert desired.desired.routes == {key("10.2.2.0/24", 1001): (Nexthop(V2, 31),)}


def test_rebuild_finds_the_same() -> None:
    rib, desired = state()
    rib.update(B, [prefix(RD2, "10.2.2.0/24")], attrs(V2, RMAC2, RT_L3), [])
    before = (dict(desired.desired.routes), dict(desired.desired.fdb), dict(desired.desired.neigh))
    desired.take()
    desired.rebuild()
    assert not desired.take()
    assert (desired.desired.routes, desired.desired.fdb, desired.desired.neigh) == before
