"""Auto RD/RT as FRR derives them, RD indexes that survive restarts, RT import rules."""

from __future__ import annotations

from evpnd.config import parse
from evpnd.daemon.rd_index import RdIndexStore
from evpnd.evpn.extcommunities import MacMobility, RouteTarget
from evpnd.evpn.routes import InclusiveMulticastRoute, MacIpRoute
from evpnd.local.origination import auto_route_target, build_vnis, local_routes


def test_auto_rt_uses_the_low_16_bits_of_a_4_byte_as() -> None:
    assert auto_route_target(65000, 100) == RouteTarget(0, 65000, 100)
    assert auto_route_target(4200000001, 100).value == f"{4200000001 & 0xFFFF}:100"
    assert auto_route_target(65000, 0xFFFFFF).assigned == 0xFFFFFF  # the VNI keeps 24 bits


def test_rd_indexes_survive_a_restart(tmp_path) -> None:
    first = RdIndexStore(str(tmp_path))
    assert [first.index_for(v) for v in (100, 200, 100)] == [1, 2, 1]
    again = RdIndexStore(str(tmp_path))
    assert again.index_for(200) == 2 and again.index_for(300) == 3
    (tmp_path / "rd-index.json").write_text("{broken")
    broken = RdIndexStore(str(tmp_path))
    assert broken.error is not None and broken.index_for(100) == 1


def test_vnis_and_their_routes(tmp_path) -> None:
    config = parse(f"""asn: 65000
router_id: 192.0.2.1
state_dir: {tmp_path}
evpn:
  vtep_ip: 198.51.100.1
  vnis:
    - {{vni: 100, macs: [{{mac: "02:00:00:00:00:01"}}]}}
    - {{vni: 200, rd: "65000:9", import_rts: ["65000:7"], export_rts: ["65000:8"]}}
""")
    auto, manual = build_vnis(config, RdIndexStore(str(tmp_path)))
    assert str(auto.rd) == "192.0.2.1:1" and auto.vtep_ip == "198.51.100.1"
    assert [rt.value for rt in auto.export_rts] == ["65000:100"]
    assert auto.imports((RouteTarget(0, 65001, 100),))  # any AS: *:100
    assert not auto.imports((RouteTarget(0, 65000, 101),))
    assert str(manual.rd) == "65000:9"
    assert manual.imports((RouteTarget(0, 65000, 7),))
    assert not manual.imports((RouteTarget(0, 65001, 7),))  # configured RTs match exactly
    (imet_attrs, (imet,)), (mac_attrs, (mac,)) = local_routes(auto, ((bytes(range(6)), b""),))
    assert isinstance(imet, InclusiveMulticastRoute) and imet.originator == bytes((198, 51, 100, 1))
    assert imet_attrs.pmsi_tunnel is not None and imet_attrs.pmsi_tunnel.label == 100
    assert imet_attrs.pmsi_tunnel.endpoint == "198.51.100.1"
    assert isinstance(mac, MacIpRoute) and mac.label1 == 100
    assert MacMobility(0, sticky=True) in mac_attrs.ext_communities


def test_l3vni_routes_carry_what_frr_sends(tmp_path) -> None:
    """Type 5 and two-label Type 2 as in tests/data/frr-8.4-evpn-irb-session.pcap: the
    L3VNI as label, RT AS:L3VNI, ET:8, the Router's MAC (tests/test_capture_vectors.py)."""
    import ipaddress

    from evpnd.evpn.extcommunities import Encapsulation, RouterMac
    from evpnd.evpn.routes import IpPrefixRoute
    from evpnd.local.origination import build_l3vni, prefix_routes

    config = parse(f"""asn: 65000
router_id: 192.168.100.2
state_dir: {tmp_path}
evpn:
  vnis: [{{vni: 220, macs: [{{mac: "02:00:00:00:01:02", ip: 10.2.2.10}}]}}]
  l3vni: {{vni: 4001, advertise: {{prefixes: ["2001:db8:9::/48"]}}}}
""")
    store = RdIndexStore(str(tmp_path))
    (l2,) = build_vnis(config, store)
    rmac = bytes.fromhex("7ec15b5c2515")
    l3 = build_l3vni(
        config,
        config.evpn.l3vnis[0],
        store,
        vtep_ip="192.168.100.2",
        router_mac=rmac,
        table=254,
        l2vnis=(220,),
        connected=(ipaddress.ip_network("10.2.2.0/24"),),
    )
    assert str(l3.rd) == "192.168.100.2:2" and l3.vrf is None
    ((attrs, routes),) = prefix_routes(l3)
    assert [r.text for r in routes] == ["[5]:[0]:[24]:[10.2.2.0]", "[5]:[0]:[48]:[2001:db8:9::]"]
    v4 = routes[0]
    assert isinstance(v4, IpPrefixRoute)
    assert (v4.label, v4.gateway, v4.rd) == (4001, bytes(4), l3.rd)
    assert attrs.ext_communities == (
        Encapsulation(8),
        RouteTarget(0, 65000, 4001),
        RouterMac(rmac),
    )
    assert attrs.nexthop == bytes((192, 168, 100, 2))
    # a static MAC with an IP in an L2VNI of this VRF: both labels, both RTs, the Rmac
    (_, (_, (host,))) = local_routes(
        l2, ((bytes.fromhex("020000000102"), bytes((10, 2, 2, 10))),), l3
    )
    assert isinstance(host, MacIpRoute) and (host.label1, host.label2) == (220, 4001)
    (_, (host_attrs, _)) = local_routes(
        l2, ((bytes.fromhex("020000000102"), bytes((10, 2, 2, 10))),), l3
    )
    assert [rt.value for rt in host_attrs.route_targets] == ["65000:220", "65000:4001"]
    assert host_attrs.router_mac == rmac
    # without connected subnets: only the configured prefix
    quiet = build_l3vni(
        config,
        parse(f"""asn: 65000
router_id: 192.168.100.2
state_dir: {tmp_path}
evpn: {{l3vni: {{vni: 4001, advertise: {{connected: false}}}}}}
""").evpn.l3vnis[0],
        store,
        vtep_ip=None,
        router_mac=rmac,
        table=254,
        l2vnis=(),
        connected=(ipaddress.ip_network("10.2.2.0/24"),),
    )
    assert quiet.prefixes == () and prefix_routes(quiet) == []
