"""doctor's rules as pure functions over the state they are given (daemon/doctor.py), without a
daemon: a remote VTEP whose routes for one of our VNIs carry route targets we do not import is
named on every side, and a local link that carries nothing is named once, as the cause, with
the VTEPs behind it."""

from __future__ import annotations

import ipaddress

from evpnd.bgp.attributes import PathAttributes, PmsiTunnel
from evpnd.daemon.doctor import alone_in_fabric, foreign_route_targets, unreachable_vteps
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
from evpnd.evpn.identifiers import RouteDistinguisher
from evpnd.evpn.routes import InclusiveMulticastRoute
from evpnd.kernel.underlay import Way, links_behind
from evpnd.local.origination import Vni
from evpnd.rib.paths import Path, Source


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def rt(text: str) -> RouteTarget:
    return RouteTarget.from_text(text)


def vni(number: int = 100, imports: tuple[str, ...] = ()) -> Vni:
    return Vni(
        number,
        RouteDistinguisher.from_text("10.0.0.1:1"),
        (rt(f"65000:{number}"),),
        tuple(rt(t) for t in imports),
        "10.0.0.1",
    )


def type3(vtep: str, label: int, *rts: str) -> Path:
    """A remote VTEP's Type 3 route for VNI `label`, as FRR sends it, with these RTs."""
    route = InclusiveMulticastRoute(RouteDistinguisher.from_text(f"{vtep}:2"), 0, ip(vtep))
    attributes = PathAttributes(
        origin=0,
        local_pref=100,
        ext_communities=(*(rt(t) for t in rts), Encapsulation(8)),
        pmsi_tunnel=PmsiTunnel(0, 6, label, ip(vtep)),
        nexthop=ip(vtep),
    )
    return Path(route, attributes, Source(vtep, vtep, 65000, ibgp=True))


def test_a_vtep_whose_rts_we_do_not_import_is_named_though_others_are_imported() -> None:
    """The fabric of issue 22: 10.0.0.3 moved VNI 100 to 65000:999; 10.0.0.2 still exports
    65000:100. This VTEP imports 10.0.0.2's routes, and must still name 10.0.0.3."""
    flood = [type3("10.0.0.2", 100, "65000:100"), type3("10.0.0.3", 100, "65000:999")]
    (found,) = foreign_route_targets(vni(), flood)
    assert found["check"] == "vni"
    assert found["what"] == (
        "VNI 100: VTEP 10.0.0.3 announces it with route targets 65000:999; this VTEP imports "
        "auto (*:100) for it"
    )
    assert found["evidence"] == {
        "vtep": "10.0.0.3",
        "vni": 100,
        "theirs": ["65000:999"],
        "ours": ["auto (*:100)"],
    }
    assert "import_rts: [65000:999]" in found["fix"]
    assert "have 10.0.0.3 export an RT ending :100 for VNI 100" in found["fix"]


def test_configured_imports_are_what_the_finding_shows() -> None:
    flood = [type3("10.0.0.2", 100, "65000:100"), type3("10.0.0.3", 100, "65001:100")]
    found = foreign_route_targets(vni(imports=("65000:100",)), flood)
    assert [f["evidence"]["vtep"] for f in found] == ["10.0.0.3"]
    assert found[0]["evidence"]["ours"] == ["65000:100"]
    assert "have 10.0.0.3 export 65000:100 for VNI 100" in found[0]["fix"]
    # auto import ignores the AS: 65001:100 is imported by auto, 65000:999 not
    assert foreign_route_targets(vni(), flood) == []


def test_every_mismatched_vtep_is_named_once_and_a_healthy_fabric_says_nothing() -> None:
    flood = [
        type3("10.0.0.10", 100, "65000:999"),
        type3("10.0.0.9", 100, "65000:999", "65000:998"),
        type3("10.0.0.9", 100, "65000:999"),  # a second route (another RD): still one finding
    ]
    found = foreign_route_targets(vni(), flood)
    assert [f["evidence"]["vtep"] for f in found] == ["10.0.0.9", "10.0.0.10"]  # by address
    assert found[0]["evidence"]["theirs"] == ["65000:998", "65000:999"]
    bare = foreign_route_targets(vni(), [type3("10.0.0.4", 100)])
    assert "with no route target" in bare[0]["what"]
    assert foreign_route_targets(vni(), [type3("10.0.0.2", 100, "65000:100")]) == []
    assert foreign_route_targets(vni(), []) == []


UP = Way(True, "eth1", 1500)


def test_a_link_down_is_named_once_with_the_vteps_behind_it() -> None:
    """eth1 was set down: the routes through it went, and with them the way to three VTEPs;
    a fourth, behind eth2, is unreachable for a reason of its own."""
    lost = [ip("10.255.0.2"), ip("10.255.0.3"), ip("10.255.0.4")]
    other = ip("10.255.9.9")
    ways = {v: Way(False, reason="no route") for v in [*lost, other]}
    ways[ip("10.255.0.5")] = Way(True, "eth2", 1500)
    last = {v: "eth1" for v in lost} | {other: "eth2"}
    findings = unreachable_vteps(
        {*lost, other}, ways, last, {"eth1": "down"}, {v: 3 for v in [*lost, other]}
    )
    link, alone = findings
    assert link["what"] == "link eth1 is down, the way to VTEPs 10.255.0.2, 10.255.0.3, 10.255.0.4"
    assert link["evidence"]["unreachable"] == ["10.255.0.2", "10.255.0.3", "10.255.0.4"]
    assert link["fix"] == "ip link set eth1 up"
    assert alone["what"] == "VTEP 10.255.9.9 is unreachable: routes towards it are not used"
    assert alone["evidence"] == {"reason": "no route", "paths": 3}


def test_a_link_without_carrier_keeps_its_routes_and_is_still_named() -> None:
    """The other end went away: the kernel keeps the routes (linkdown), the VTEPs look
    reachable, and the link is the finding."""
    vteps = [ip("10.255.0.2"), ip("10.255.0.3")]
    ways = {v: UP for v in vteps}
    (link,) = unreachable_vteps(set(), ways, {}, {"eth1": "no carrier"}, {})
    assert link["evidence"]["vteps"] == ["10.255.0.2", "10.255.0.3"]
    assert link["evidence"]["unreachable"] == []
    assert link["fix"].startswith("ip -d link show eth1")
    assert unreachable_vteps(set(), ways, {}, {}, {}) == []  # all up: nothing


def test_links_behind_groups_by_the_last_device() -> None:
    a, b, c = ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.4")
    ways = {a: Way(False, reason="no route"), b: Way(False, reason="no route"), c: UP}
    behind, alone = links_behind({a, b}, ways, {a: "eth1", c: "eth1"}, {"eth1": "down"})
    assert behind == {"eth1": [c, a]} and alone == [b]


def test_a_vni_alone_is_a_finding_unless_routed_or_behind_an_unreachable_vtep() -> None:
    """An L2VNI on this VTEP alone has nothing to bridge with; one routed through an L3VNI is
    symmetric IRB's subnet-per-VTEP (the IRB demo), and one whose VTEPs are unreachable is the
    underlay's finding."""
    (alone,) = alone_in_fabric(101, announced=False, behind_unreachable=False, routed=False)
    assert alone["what"] == "VNI 101: no other VTEP announces it (no Type 3 route)"
    assert alone_in_fabric(101, announced=False, behind_unreachable=False, routed=True) == []
    assert alone_in_fabric(101, announced=False, behind_unreachable=True, routed=False) == []
    assert alone_in_fabric(101, announced=True, behind_unreachable=False, routed=False) == []


def test_a_link_that_is_gone_says_so() -> None:
    vtep = ip("10.255.1.1")
    ways = {vtep: Way(False, reason="no route")}
    (link,) = unreachable_vteps({vtep}, ways, {vtep: "wg0"}, {"wg0": "gone"}, {vtep: 2})
    assert link["what"] == "link wg0 is gone, the way to VTEP 10.255.1.1"
    assert link["fix"].startswith("wg0 no longer exists")
