"""Auto RD/RT as FRR derives them, RD indexes that survive restarts, RT import rules."""

from __future__ import annotations

from evpnd.config import parse
from evpnd.daemon.origination import RdIndexStore, auto_route_target, build_vnis, local_routes
from evpnd.evpn.extcommunities import MacMobility, RouteTarget
from evpnd.evpn.routes import InclusiveMulticastRoute, MacIpRoute


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
