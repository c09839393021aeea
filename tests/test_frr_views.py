"""The FRR commands' output without a daemon: FRR's JSON shapes (control/frr.py) and FRR's
layouts (control/tables.py) from evpnd's views, and `show running-config` as a file evpnd
reads back. The keys themselves are checked against FRR's own answers in test_frr_json.py."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import yaml

from evpnd.config import parse
from evpnd.control import frr, tables
from evpnd.daemon.views import MASKED, running_config_view

PEER = "192.0.2.2"
CTX = frr.Context(
    "192.0.2.1", 65000, "vtep1", {PEER: {"remote_as": 65000, "router_id": PEER, "hostname": "v2"}}
)


def route(
    kind: int = 2, mac: str | None = "02:00:00:00:00:0b", ip: str | None = None, **more: Any
) -> dict[str, Any]:
    text = {
        2: f"[2]:[0]:[48]:[{mac}]" + (f":[32]:[{ip}]" if ip else ""),
        3: f"[3]:[0]:[32]:[{ip}]",
    }[kind]
    view = {
        "type": kind, "rd": f"{PEER}:1", "vni": 100, "mac": mac if kind == 2 else None,
        "ip": ip, "prefix": None, "nexthop": PEER, "rts": ["65000:100"], "seq": 3,
        "sticky": False, "source": PEER, "best": True, "stale": False, "as_path": "",
        "local_pref": 100, "router_mac": None, "encapsulation": 8, "labels": [100],
        "originator_id": None, "imported_by": [100], "text": text,
    }  # fmt: skip
    return view | more


def mac(vni: int, address: str, kind: str = "remote", **more: Any) -> dict[str, Any]:
    view = {
        "vni": vni, "mac": address, "type": kind, "vtep": PEER if kind == "remote" else None,
        "seq": 1, "sticky": False, "source": PEER, "uptime_s": 5.0, "frozen": False,
        "moves": 0, "port": "eth1" if kind == "local" else None, "ifindex": 4,
    }  # fmt: skip
    return view | more


def test_the_evpn_table_groups_paths_by_rd_and_prefix() -> None:
    routes = [route(), route(ip="10.0.0.2"), route(3, ip=PEER, vni=100)]
    table = frr.evpn_table(routes, CTX, total=7)
    block = table[f"{PEER}:1"]
    assert block["rd"] == f"{PEER}:1" and len(block) == 4
    path = block["[2]:[0]:[48]:[02:00:00:00:00:0b]"]["paths"][0]
    assert path["pathFrom"] == "internal" and path["peerId"] == PEER and path["bestpath"] is True
    assert path["extendedCommunity"] == {"string": "RT:65000:100 ET:8 MM:3"}
    assert path["nexthops"][0] == {"ip": PEER, "hostname": "v2", "afi": "ipv4", "used": True}
    assert (table["numPrefix"], table["totalPrefix"]) == (3, 7)


def test_route_forms_take_frrs_shapes() -> None:
    routes = [route(), route(ip="10.0.0.2")]
    plain = frr.evpn_route(routes, CTX, {})
    assert plain[f"{PEER}:1"]["[2]:[0]:[48]:[02:00:00:00:00:0b]"]["paths"][0][0]["valid"]
    in_vni = frr.evpn_route(routes, CTX, {"vni": 100})
    assert set(in_vni) == {r["text"] for r in routes} | {"numPrefix", "numPaths"}
    by_rd = frr.evpn_route(routes, CTX, {"rd": f"{PEER}:1"})
    entry = by_rd[f"{PEER}:1"]["[2]:[0]:[48]:[02:00:00:00:00:0b]"]
    assert "prefix" not in entry and entry["routeType"] == 2
    assert entry["paths"][0][0]["peer"]["type"] == "internal"
    one = frr.evpn_route(routes, CTX, {"rd": f"{PEER}:1", "mac": "02:00:00:00:00:0b"})
    assert one["numPaths"] == 1 and isinstance(one["[2]:[0]:[48]:[02:00:00:00:00:0b]"], list)
    in_vni_one = frr.evpn_route(routes, CTX, {"vni": 100, "mac": "02:00:00:00:00:0b"})
    assert in_vni_one["rd"] == "" and in_vni_one["paths"][0][0]["vni"] == "100"


def test_local_paths_are_frrs_local_paths() -> None:
    ours = route(source="local", local_pref=None, nexthop="192.0.2.1", rd="192.0.2.1:1")
    brief = frr.path_brief(ours, CTX)
    assert brief["peerId"] == "(unspec)" and brief["weight"] == 32768 and "locPrf" not in brief
    detail = frr.path_detail(ours | {"received_ago_s": 1.0}, CTX)
    assert detail["sourced"] and detail["local"] and detail["peer"]["peerId"] == "0.0.0.0"
    assert detail["lastUpdate"]["string"].endswith("\n")


def test_mac_forms_take_frrs_shapes() -> None:
    macs = [mac(100, "02:00:00:00:00:01", "local"), mac(200, "02:00:00:00:00:02")]
    every = frr.evpn_macs(macs, {"vni": None})
    assert set(every) == {"100", "200"} and every["100"]["numMacs"] == 1
    assert every["100"]["macs"]["02:00:00:00:00:01"]["intf"] == "eth1"
    assert every["200"]["macs"]["02:00:00:00:00:02"]["remoteVtep"] == PEER
    # `vni all vtep V`: FRR's blocks carry no count
    assert "numMacs" not in frr.evpn_macs(macs[1:], {"vni": None, "vtep": PEER})["200"]
    one = frr.evpn_macs([macs[1] | {"ips": ["10.0.0.2"]}], {"vni": 200, "mac": macs[1]["mac"]})
    assert one["02:00:00:00:00:02"]["neighbors"] == {"active": ["10.0.0.2"], "inactive": []}
    arps = frr.evpn_arps([macs[1] | {"ip": "10.0.0.2"}], {"vni": 200})
    assert arps["numArpNd"] == 1 and arps["10.0.0.2"]["state"] == "active"
    assert (
        frr.evpn_arps([macs[1] | {"ip": "10.0.0.2"}], {"vni": 200, "ip": "10.0.0.2"})["uptime"]
        == "00:00:05"
    )


def test_vni_all_views_head_each_block_with_its_vni() -> None:
    macs = [mac(100, "02:00:00:00:00:01", "local"), mac(200, "02:00:00:00:00:02")]
    text = tables.frr_evpn_mac(macs, {"vni": None})
    assert "VNI 100 #MACs (local and remote) 1" in text
    assert "VNI 200 #MACs (local and remote) 1" in text
    detail = tables.frr_evpn_mac([macs[1] | {"ips": ["10.0.0.2"]}], {"vni": None, "detail": True})
    assert f"MAC: 02:00:00:00:00:02\n Remote VTEP: {PEER}" in detail and "10.0.0.2 Active" in detail
    arps = tables.frr_evpn_arp([macs[1] | {"ip": "10.0.0.2"}], {"vni": None})
    assert arps.startswith("VNI 200 #ARP (IPv4 and IPv6, local and remote) 1")


def test_show_evpn_vni_counts_macs_and_arps() -> None:
    vni = {
        "vni": 100, "vxlan": "vxlan100", "bridge": "br100", "vtep": "192.0.2.1",
        "rd": "192.0.2.1:1", "export_rts": ["65000:100"], "import_rts": ["auto"],
        "remote_vteps": [PEER], "local_macs": 1, "macs": 3, "arps": 2, "problems": [],
    }  # fmt: skip
    listing = tables.frr_evpn_vni([vni], [], None).splitlines()
    assert listing[0].split() == [
        "VNI", "Type", "VxLAN", "IF", "#", "MACs", "#", "ARPs", "#", "Remote", "VTEPs", "Tenant",
        "VRF",
    ]  # fmt: skip
    assert listing[1].split() == ["100", "L2", "vxlan100", "3", "2", "1", "default"]
    as_json = frr.evpn_vnis([vni], [], None)["100"]
    assert (as_json["numMacs"], as_json["numArpNd"], as_json["numRemoteVteps"]) == (3, 2, 1)
    running = {"asn": 65000, "router_id": "192.0.2.1", "evpn": {"advertise_all_vni": True}}
    bgp = frr.bgp_vnis([vni], [], running, None)
    assert bgp["100"]["importRTs"] == ["65000:100"] and bgp["numL2Vnis"] == 1
    assert frr.bgp_vnis([vni], [], running, 100)["exportRts"] == ["65000:100"]
    assert "Import Route Target:" in tables.frr_bgp_vni([vni], [], 100)


def test_a_neighbours_routes_both_ways() -> None:
    received = {"direction": "received", "routes": [route()], "total": 5, "peer": PEER}
    summary = {"router_id": "192.0.2.1", "asn": 65000}
    assert "Displayed 1 out of 5 total prefixes" in tables.frr_peer_routes(received, summary)
    sent = received | {"direction": "advertised", "routes": [route(source="local")]}
    text = tables.frr_peer_routes(sent, summary)
    assert "Total number of prefixes 1" in text and "Default local pref 100" in text
    as_json = frr.advertised_routes(sent["routes"], CTX)
    entry = as_json["advertisedRoutes"][f"{PEER}:1"]["[2]:[0]:[48]:[02:00:00:00:00:0b]"]
    assert entry["appliedStatusSymbols"] == {"*": True, ">": True}
    assert entry["weight"] == 32768 and as_json["totalPrefixCounter"] == 1


def test_nothing_printed_is_a_python_repr() -> None:
    routes = [route(), route(ip="10.0.0.2"), route(3, ip=PEER)]
    summary = {"router_id": "192.0.2.1", "asn": 65000, "routes": 3}
    texts = [
        tables.frr_evpn_table(routes, summary),
        tables.frr_evpn_table(routes, summary, by_rd=False),
        tables.frr_evpn_detail([r | {"best_reason": "only path"} for r in routes]),
        tables.frr_evpn_mac([mac(100, "02:00:00:00:00:02")], {"vni": 100}),
        json.dumps(frr.evpn_route(routes, CTX, {"detail": True})),
    ]
    for text in texts:
        assert "b'" not in text and "\\x" not in text and "PathAttributes(" not in text


CONFIG = """asn: 65000
router_id: 192.0.2.1
hostname: vtep1
listen: {address: 192.0.2.1, port: 1179}
metrics: {address: 127.0.0.1, port: 9179}
neighbors:
  - {address: 192.0.2.2, remote_as: 65001, password: "s3cret", multihop: 3, description: spine}
listen_ranges:
  - {prefix: 192.0.2.64/26, remote_as: 65000, password: "other", route_reflector_client: true}
evpn:
  vtep_ip: 192.0.2.1
  vnis:
    - {vni: 100, rd: "192.0.2.1:100", import_rts: ["65000:100"], export_rts: ["65000:100"],
       macs: [{mac: "02:00:00:00:00:01", ip: 10.0.100.1}]}
    - {vni: 200}
  l3vni: {vni: 4001, advertise: {connected: false, prefixes: [10.9.0.0/16]}}
  vrfs:
    red: {l3vni: 4002, export_rts: ["65000:4002"]}
"""


def test_the_running_configuration_masks_passwords_and_reads_back() -> None:
    config = parse(CONFIG)
    view = running_config_view(config)
    text = tables.running_config(view)
    assert "s3cret" not in text and "other" not in text and text.count(MASKED) == 2
    assert text.startswith("# ") and "YAML" in text.splitlines()[0]
    again = parse(yaml.safe_dump(view))
    # the same configuration, but for the masked passwords (and where it was read from)
    assert [n.password for n in again.neighbors] == [MASKED]
    unmasked = dataclasses.replace(
        again,
        neighbors=config.neighbors,
        listen_ranges=config.listen_ranges,
        source=config.source,
        notes=config.notes,
    )
    assert unmasked == config
    assert yaml.safe_load(text) == view


def test_as_paths_with_sets_and_confederations_in_frr_segments() -> None:
    """An AS_SET (from aggregation) or a confederation segment in a path (`{…}`, `(…)`, `[…]`
    in our text form) must not break `--json` of the detail views."""
    from evpnd.control.frr import _segments

    assert _segments("65001 65002 {65003 65004} (65010) [65011 65012] 65005") == [
        {"type": "as-sequence", "list": [65001, 65002]},
        {"type": "as-set", "list": [65003, 65004]},
        {"type": "as-confed-sequence", "list": [65010]},
        {"type": "as-confed-set", "list": [65011, 65012]},
        {"type": "as-sequence", "list": [65005]},
    ]
    assert _segments("") == []
