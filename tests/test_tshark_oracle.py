"""An independent oracle: messages evpnd encodes are decoded by Wireshark's BGP dissector
(`tshark`, from Debian), and the two must agree field by field.

Many messages go into one pcap (text2pcap wraps each in TCP to port 179), so tshark runs once per
batch rather than once per message.
"""

from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from evpnd.bgp.attributes import AS_SEQUENCE, AS_SET, AsPath, PathAttributes, PmsiTunnel
from evpnd.bgp.capabilities import FourOctetAs, GracefulRestart, Multiprotocol
from evpnd.bgp.messages import Notification, Open
from evpnd.bgp.update import pack_announcements
from evpnd.evpn.extcommunities import Encapsulation, MacMobility, RouterMac, RouteTarget
from evpnd.evpn.routes import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
)
from tests import strategies as s

pytestmark = pytest.mark.skipif(
    shutil.which("tshark") is None or shutil.which("text2pcap") is None,
    reason="tshark is not installed (scripts/test installs Debian's tshark)",
)

Fields = list[tuple[str, str]]


def dissect(messages: list[bytes], tmp: Path) -> list[Fields]:
    """Each message's bgp.* fields, in tshark's order, one list per message."""
    hexdump = tmp / "messages.txt"
    with hexdump.open("w") as out:
        for message in messages:
            for i in range(0, len(message), 16):
                out.write(f"{i:06x} " + " ".join(f"{b:02x}" for b in message[i : i + 16]) + "\n")
            out.write("\n")
    pcap = tmp / "messages.pcap"
    subprocess.run(
        ["text2pcap", "-q", "-T", "40179,179", str(hexdump), str(pcap)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [
            "tshark",
            "-n",
            "-o",
            "bgp.asn_len:4",
            "-r",
            str(pcap),
            "-T",
            "json",
            "-d",
            "tcp.port==179,bgp",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    packets = json.loads(result.stdout, object_pairs_hook=lambda pairs: ("obj", pairs))
    out_fields: list[Fields] = []
    for packet in packets:
        fields: Fields = []
        _walk(packet, fields)
        out_fields.append(fields)
    assert len(out_fields) == len(messages)
    return out_fields


def _walk(node: Any, acc: Fields) -> None:
    if isinstance(node, tuple) and node[0] == "obj":
        for key, value in node[1]:
            if isinstance(value, str):
                if key.startswith("bgp."):
                    acc.append((key, value))
            else:
                _walk(value, acc)
    elif isinstance(node, list):
        for item in node:
            _walk(item, acc)


def values(fields: Fields, name: str) -> list[str]:
    return [v for k, v in fields if k == name]


def route_groups(fields: Fields) -> list[Fields]:
    groups: list[Fields] = []
    for key, value in fields:
        if key == "bgp.evpn.nlri.rt":
            groups.append([])
        elif key.startswith("bgp.update.path_attribute.flags") or key.endswith(".type_code"):
            if groups and groups[-1] and groups[-1][-1][0] == "end":
                continue
            if groups:
                groups[-1].append(("end", ""))
            continue
        if groups and not (groups[-1] and groups[-1][-1][0] == "end"):
            groups[-1].append((key, value))
    return [[f for f in g if f[0] != "end"] for g in groups]


def colon_hex(raw: bytes) -> str:
    return raw.hex(":")


def one(fields: Fields, name: str) -> str:
    got = values(fields, name)
    assert len(got) == 1, (name, got)
    return got[0]


def check_label(group: Fields, label: int, ls: str) -> None:
    # tshark shows the label as a VNI or, without an encapsulation seen yet, as an MPLS label
    # (the value shifted right by 4): either way it is the same 24 bits.
    vni = values(group, "bgp.evpn.nlri.vni")
    mpls = values(group, ls) + values(group, "bgp.update.path_attribute.mpls_label_value")
    assert str(label) in vni or str(label >> 4) in mpls or str(label) in mpls, (label, group)


def check_route(route: EvpnRoute, group: Fields) -> None:
    assert one(group, "bgp.evpn.nlri.rt") == str(route.route_type)
    assert one(group, "bgp.evpn.nlri.rd") == colon_hex(route.rd)
    if isinstance(route, MacIpRoute):
        assert one(group, "bgp.evpn.nlri.esi") == colon_hex(route.esi)
        assert one(group, "bgp.evpn.nlri.etag") == str(route.ethernet_tag)
        assert one(group, "bgp.evpn.nlri.mac_addr") == route.mac_text
        assert one(group, "bgp.evpn.nlri.iplen") == str(len(route.ip) * 8)
        if route.ip:
            family = "ipv4" if len(route.ip) == 4 else "ipv6"
            name = "bgp.evpn.nlri.ip.addr" if family == "ipv4" else "bgp.evpn.nlri.ipv6.addr"
            assert one(group, name) == route.ip_text
        check_label(group, route.label1, "bgp.evpn.nlri.mpls_ls1")
        if route.label2 is not None:
            assert values(group, "bgp.evpn.nlri.mpls_ls2") == [str(route.label2 >> 4)]
    elif isinstance(route, InclusiveMulticastRoute):
        assert one(group, "bgp.evpn.nlri.etag") == str(route.ethernet_tag)
        addr = values(group, "bgp.evpn.nlri.ip.addr") + values(group, "bgp.evpn.nlri.ipv6.addr")
        assert addr == [route.originator_text]
    elif isinstance(route, IpPrefixRoute):
        assert one(group, "bgp.evpn.nlri.esi") == colon_hex(route.esi)
        assert one(group, "bgp.evpn.nlri.etag") == str(route.ethernet_tag)
        assert one(group, "bgp.evpn.nlri.prefix_len") == str(route.prefix_len)
        v4 = len(route.prefix) == 4
        prefix = values(group, "bgp.evpn.nlri.ip.addr" if v4 else "bgp.evpn.nlri.ipv6.addr")
        assert prefix == [str(ipaddress.ip_address(route.prefix))]
        gateway = values(
            group, "bgp.evpn.nlri.ipv4.gtw_addr" if v4 else "bgp.evpn.nlri.ipv6.gtw_addr"
        )
        assert gateway == [str(ipaddress.ip_address(route.gateway))]
        check_label(group, route.label, "bgp.update.path_attribute.mpls_label_value")
    elif isinstance(route, EthernetAdRoute):
        assert one(group, "bgp.evpn.nlri.esi") == colon_hex(route.esi)
        assert one(group, "bgp.evpn.nlri.etag") == str(route.ethernet_tag)
        check_label(group, route.label, "bgp.evpn.nlri.mpls_ls1")
    elif isinstance(route, EthernetSegmentRoute):
        assert one(group, "bgp.evpn.nlri.esi") == colon_hex(route.esi)
        addr = values(group, "bgp.evpn.nlri.ip.addr") + values(group, "bgp.evpn.nlri.ipv6.addr")
        assert addr == [str(ipaddress.ip_address(route.originator))]


def check_attributes(attrs: PathAttributes, fields: Fields) -> None:
    assert values(fields, "bgp.update.path_attribute.origin") == [str(attrs.origin)]
    assert attrs.as_path is not None
    assert values(fields, "bgp.update.path_attribute.as_path_segment.type") == [
        str(kind) for kind, _ in attrs.as_path.segments
    ]
    assert values(fields, "bgp.update.path_attribute.as_path_segment.as4") == [
        str(a) for _, asns in attrs.as_path.segments for a in asns
    ]
    assert values(fields, "bgp.update.path_attribute.multi_exit_disc") == (
        [] if attrs.med is None else [str(attrs.med)]
    )
    assert values(fields, "bgp.update.path_attribute.local_pref") == (
        [] if attrs.local_pref is None else [str(attrs.local_pref)]
    )
    assert values(fields, "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4") == [
        attrs.nexthop_text
    ]
    assert values(fields, "bgp.update.path_attribute.mp_reach_nlri.afi") == ["25"]
    assert values(fields, "bgp.update.path_attribute.mp_reach_nlri.safi") == ["70"]
    communities = attrs.ext_communities
    assert len(values(fields, "bgp.ext_com.type")) == len(communities)
    rts = [c for c in communities if isinstance(c, RouteTarget)]
    assert values(fields, "bgp.ext_com.value_as2") == [str(c.admin) for c in rts if c.kind == 0]
    assert values(fields, "bgp.ext_com.value_as4") == [str(c.admin) for c in rts if c.kind == 2]
    assert values(fields, "bgp.ext_com.value_IP4") == [
        str(ipaddress.IPv4Address(c.admin)) for c in rts if c.kind == 1
    ]
    assert values(fields, "bgp.ext_com.value_an4") == [str(c.assigned) for c in rts if c.kind == 0]
    assert values(fields, "bgp.ext_com.tunnel_type") == [
        str(c.tunnel_type) for c in communities if isinstance(c, Encapsulation)
    ]
    mobility = [c for c in communities if isinstance(c, MacMobility)]
    assert values(fields, "bgp.ext_com_evpn.mmac.seq") == [str(c.sequence) for c in mobility]
    assert values(fields, "bgp.ext_com_evpn.mmac.flags.sticky") == [
        str(int(c.sticky)) for c in mobility
    ]
    assert values(fields, "bgp.ext_com_evpn.esi.router_mac") == [
        c.mac.hex(":") for c in communities if isinstance(c, RouterMac)
    ]
    pmsi = attrs.pmsi_tunnel
    if pmsi is not None:
        assert values(fields, "bgp.update.path_attribute.pmsi.tunnel.type") == [
            str(pmsi.tunnel_type)
        ]
        assert values(fields, "bgp.update.path_attribute.pmsi.ingress_rep_ip") == [pmsi.endpoint]


oracle_communities = st.one_of(
    st.builds(RouteTarget, st.just(0), s.u16, s.u32),
    st.builds(RouteTarget, st.just(1), s.u32, s.u16),
    st.builds(RouteTarget, st.just(2), s.u32, s.u16),
    st.just(Encapsulation(8)),
    st.builds(lambda seq, sticky: MacMobility(seq, sticky), s.u32, st.booleans()),
    s.mac.map(RouterMac),
)


@st.composite
def oracle_attributes(draw: st.DrawFn) -> PathAttributes:
    seq = st.lists(s.asns, min_size=1, max_size=6).map(tuple)
    path = draw(st.lists(st.tuples(st.sampled_from([AS_SEQUENCE, AS_SET]), seq), max_size=3))
    return PathAttributes(
        origin=draw(st.integers(0, 2)),
        as_path=AsPath(tuple(path)),
        med=draw(st.none() | s.u32),
        local_pref=draw(st.none() | s.u32),
        ext_communities=tuple(draw(st.lists(oracle_communities, max_size=5))),
        pmsi_tunnel=draw(st.none() | st.builds(PmsiTunnel, st.just(0), st.just(6), s.u24, s.ipv4)),
        nexthop=draw(s.ipv4),
    )


# No shrinking: each example runs tshark, and a failing batch is readable as it is.
@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    st.lists(
        st.tuples(oracle_attributes(), st.lists(s.evpn_routes, min_size=1, max_size=8)),
        min_size=5,
        max_size=15,
    )
)
def test_updates_agree_with_tshark(tmp_path_factory, batch) -> None:
    messages: list[bytes] = []
    expected: list[tuple[PathAttributes, list[EvpnRoute]]] = []
    for attrs, routes in batch:
        for wire in pack_announcements(routes, attrs):
            messages.append(wire)
        expected.append((attrs, routes))
    dissected = dissect(messages, tmp_path_factory.mktemp("oracle"))
    assert len(messages) == len(expected)  # eight routes always fit one message
    for fields, (attrs, routes), wire in zip(dissected, expected, messages, strict=True):
        assert values(fields, "bgp.type") == ["2"]
        assert values(fields, "bgp.length") == [str(len(wire))]
        check_attributes(attrs, fields)
        groups = route_groups(fields)
        assert len(groups) == len(routes)
        for route, group in zip(routes, groups, strict=True):
            check_route(route, group)


def test_open_and_notification_agree_with_tshark(tmp_path) -> None:
    opening = Open(
        asn=4200000001,
        hold_time=9,
        router_id="192.0.2.7",
        capabilities=(
            Multiprotocol(25, 70),
            FourOctetAs(4200000001),
            GracefulRestart(restart_time=300, restarting=True),
        ),
    )
    cease = Notification.cease(2, "maintenance window")
    fields_open, fields_cease = dissect([opening.encode(), cease.encode()], tmp_path)
    assert one(fields_open, "bgp.open.version") == "4"
    assert one(fields_open, "bgp.open.myas") == "23456"
    assert one(fields_open, "bgp.open.holdtime") == "9"
    assert one(fields_open, "bgp.open.identifier") == "192.0.2.7"
    assert values(fields_open, "bgp.cap.type") == ["1", "65", "64"]
    assert values(fields_open, "bgp.cap.mp.afi") == ["25"]
    assert values(fields_open, "bgp.cap.mp.safi") == ["70"]
    assert values(fields_open, "bgp.cap.4as") == ["4200000001"]
    assert values(fields_open, "bgp.cap.gr.timers.restart_time") == ["300"]
    assert values(fields_open, "bgp.cap.gr.timers.restart_flag") == ["1"]
    assert one(fields_cease, "bgp.notify.major_error") == "6"
    assert one(fields_cease, "bgp.notify.minor_error_cease") == "2"
    assert one(fields_cease, "bgp.notify.communication") == "maintenance window"
