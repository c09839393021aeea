"""The FRR 8.4 captures in tests/data, message by message.

Expected values were written out by hand from `tshark -V` of the same files; every message must
also re-encode to exactly the bytes FRR sent.
"""

from __future__ import annotations

import pytest

from evpnd.bgp.capabilities import (
    AddPath,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAs,
    Fqdn,
    GracefulRestart,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
)
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Keepalive, Message, Notification, Open, decode_message
from evpnd.bgp.update import Update
from evpnd.evpn.extcommunities import Encapsulation, RouterMac, RouteTarget
from evpnd.evpn.routes import InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpnd.wire.constants import CeaseSubcode, ErrorCode
from evpnd.wire.errors import DecodeError
from tests.capture import REFERENCE, read_streams


def _messages(pcap: str) -> dict[tuple[str, int, str, int], list[tuple[bytes, Message]]]:
    out = {}
    for stream in read_streams(REFERENCE / pcap):
        reader = MessageReader()
        reader.feed(bytes(stream.data))
        pairs = []
        for raw in reader.messages():
            assert isinstance(raw, bytes), raw
            message = decode_message(raw)
            assert not isinstance(message, DecodeError), message
            pairs.append((raw, message))
        assert reader.buffered == 0
        out[(stream.src, stream.sport, stream.dst, stream.dport)] = pairs
    return out


@pytest.fixture(scope="module")
def session() -> dict[tuple[str, int, str, int], list[tuple[bytes, Message]]]:
    return _messages("frr-8.4-evpn-session.pcap")


@pytest.fixture(scope="module")
def irb() -> dict[tuple[str, int, str, int], list[tuple[bytes, Message]]]:
    return _messages("frr-8.4-evpn-irb-session.pcap")


def _frr_capabilities(hostname: str) -> tuple[object, ...]:
    return (
        Multiprotocol(25, 70),
        RouteRefresh(cisco=True),
        RouteRefresh(),
        EnhancedRouteRefresh(),
        FourOctetAs(65000),
        ExtendedMessage(),
        AddPath(((25, 70, 1),)),
        Fqdn(hostname, ""),
        GracefulRestart(restart_time=120, restarting=True, notification=True),
        UnknownCapability(71, bytes.fromhex("00194680000000")),  # LLGR, kept raw
    )


def test_every_message_reencodes_to_the_captured_bytes(session, irb) -> None:
    count = 0
    for capture in (session, irb):
        for pairs in capture.values():
            for raw, message in pairs:
                assert message.encode() == raw
                count += 1
    assert count == 38


def test_session_capture_message_sequence(session) -> None:
    kinds = {key: [type(m).__name__ for _, m in pairs] for key, pairs in session.items()}
    assert kinds == {
        ("192.168.100.1", 35214, "192.168.100.2", 179): ["Notification"],
        ("192.168.100.2", 45970, "192.168.100.1", 179): [
            "Open",
            "Keepalive",
            "Update",
            "Update",
            "Update",
        ],
        ("192.168.100.1", 179, "192.168.100.2", 45970): [
            "Open",
            "Keepalive",
            "Update",
            "Update",
            "Update",
        ],
        ("192.168.100.1", 60154, "192.168.100.2", 179): ["Open", "Notification", "Notification"],
        ("192.168.100.2", 179, "192.168.100.1", 60154): ["Open", "Notification", "Notification"],
    }


def test_open_from_frr(session) -> None:
    raw, message = session[("192.168.100.2", 45970, "192.168.100.1", 179)][0]
    assert len(raw) == 94
    assert isinstance(message, Open)
    assert message.version == 4
    assert message.asn == 65000
    assert message.my_as_field == 65000
    assert message.hold_time == 180
    assert message.router_id == "192.168.100.2"
    assert message.capabilities == _frr_capabilities("v2")
    assert not message.extended_parameters
    _, other = session[("192.168.100.1", 179, "192.168.100.2", 45970)][0]
    assert isinstance(other, Open) and other.router_id == "192.168.100.1"
    assert other.capabilities == _frr_capabilities("v1")


def test_notifications(session) -> None:
    _, hard_reset = session[("192.168.100.1", 35214, "192.168.100.2", 179)][0]
    assert hard_reset == Notification(ErrorCode.CEASE, CeaseSubcode.HARD_RESET, b"\x06\x04")
    assert hard_reset.name == "cease / hard reset"
    _, collision = session[("192.168.100.1", 60154, "192.168.100.2", 179)][1]
    assert collision == Notification(6, 7)
    assert collision.name == "cease / connection collision resolution"
    _, keepalive = session[("192.168.100.2", 45970, "192.168.100.1", 179)][1]
    assert keepalive == Keepalive()


def test_type2_and_type3_updates(session) -> None:
    pairs = session[("192.168.100.1", 179, "192.168.100.2", 45970)]
    raw, macs = pairs[2]
    assert len(raw) == 144
    assert isinstance(macs, Update)
    rd = "192.168.100.1:2"
    assert [(str(r.rd), r.text, r.label1, r.label2) for r in macs.announced] == [
        (rd, "[2]:[0]:[48]:[02:00:00:00:00:01]", 100, None),
        (rd, "[2]:[0]:[48]:[02:00:00:00:00:01]:[32]:[10.0.100.11]", 100, None),
    ]
    first = macs.announced[0]
    assert isinstance(first, MacIpRoute)
    assert first.mac == bytes.fromhex("020000000001") and first.ip == b""
    assert first.ethernet_tag == 0 and first.esi == bytes(10)
    attrs = macs.attributes
    assert attrs.origin == 0
    assert attrs.as_path is not None and attrs.as_path.segments == ()
    assert attrs.local_pref == 100
    assert attrs.med is None
    assert attrs.nexthop_text == "192.168.100.1"
    assert attrs.ext_communities == (Encapsulation(8), RouteTarget(0, 65000, 100))
    assert [rt.text for rt in attrs.route_targets] == ["RT:65000:100"]
    assert macs.errors == () and macs.end_of_rib is None

    raw, imet = pairs[3]
    assert len(raw) == 101
    assert isinstance(imet, Update)
    (route,) = imet.announced
    assert isinstance(route, InclusiveMulticastRoute)
    assert route.text == "[3]:[0]:[32]:[192.168.100.1]"
    pmsi = imet.attributes.pmsi_tunnel
    assert pmsi is not None
    assert (pmsi.flags, pmsi.tunnel_type, pmsi.label, pmsi.endpoint) == (0, 6, 100, "192.168.100.1")

    raw, eor = pairs[4]
    assert len(raw) == 29
    assert isinstance(eor, Update) and eor.end_of_rib == (25, 70)


def test_irb_type5_and_two_label_type2(irb) -> None:
    pairs = irb[("192.168.100.2", 33274, "192.168.100.1", 179)]
    _, prefix = pairs[2]
    assert isinstance(prefix, Update)
    (route,) = prefix.announced
    assert isinstance(route, IpPrefixRoute)
    assert str(route.rd) == "192.168.100.2:1"
    assert route.text == "[5]:[0]:[24]:[10.2.2.0]"
    assert str(route.network) == "10.2.2.0/24"
    assert route.gateway == bytes(4) and route.label == 4001
    attrs = prefix.attributes
    assert attrs.origin == 2 and attrs.med == 0 and attrs.local_pref == 100
    assert attrs.ext_communities == (
        Encapsulation(8),
        RouteTarget(0, 65000, 4001),
        RouterMac(bytes.fromhex("7ec15b5c2515")),
    )
    _, host = pairs[5]
    assert isinstance(host, Update)
    (route,) = host.announced
    assert isinstance(route, MacIpRoute)
    assert route.text == "[2]:[0]:[48]:[02:00:00:00:01:02]:[32]:[10.2.2.10]"
    assert (route.label1, route.label2) == (220, 4001)
    assert [rt.value for rt in host.attributes.route_targets] == ["65000:220", "65000:4001"]
    assert host.attributes.router_mac == bytes.fromhex("7ec15b5c2515")


def test_identical_attributes_are_shared_across_updates(session) -> None:
    cache: dict[bytes, object] = {}
    raws = [
        raw
        for raw, m in session[("192.168.100.1", 179, "192.168.100.2", 45970)]
        if isinstance(m, Update)
    ]
    first = decode_message(raws[0], attribute_cache=cache)
    again = decode_message(raws[0], attribute_cache=cache)
    assert isinstance(first, Update) and isinstance(again, Update)
    assert first.attributes is again.attributes
    assert first.announced[0].rd is again.announced[0].rd  # interned RD
