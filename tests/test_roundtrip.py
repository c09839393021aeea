"""Every value the codec knows survives encode → decode unchanged (hypothesis)."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from evpnd.bgp.attributes import PathAttributes
from evpnd.bgp.capabilities import decode_capability, encode_capability
from evpnd.bgp.context import CodecContext
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Keepalive, Open, decode_message
from evpnd.bgp.update import (
    EVPN,
    Update,
    decode_update,
    end_of_rib,
    pack_announcements,
    pack_withdrawals,
)
from evpnd.evpn.extcommunities import decode_ext_community
from evpnd.evpn.identifiers import RouteDistinguisher
from evpnd.evpn.routes import (
    EvpnRoute,
    MacIpRoute,
    MacIpWithdrawal,
    decode_evpn_nlri,
    route_from_text,
)
from evpnd.wire.constants import Afi, Safi
from tests import strategies as s

BIG = CodecContext(max_message_len=65535)


@given(s.evpn_routes)
def test_evpn_route(route) -> None:
    wire = route.encode()
    assert wire[1] == len(wire) - 2
    routes, ids, errors = decode_evpn_nlri(wire, 0, len(wire))
    assert routes == [route] and ids is None and errors == []
    assert type(routes[0]) is type(route)


@given(st.lists(s.evpn_routes, max_size=20), st.lists(st.integers(0, 2**32 - 1), min_size=20))
def test_evpn_nlri_with_add_path(routes, ids) -> None:
    ids = ids[: len(routes)]
    wire = b"".join(i.to_bytes(4, "big") + r.encode() for i, r in zip(ids, routes, strict=True))
    decoded, decoded_ids, errors = decode_evpn_nlri(wire, 0, len(wire), add_path=True)
    assert decoded == routes and decoded_ids == ids and errors == []


@given(s.evpn_routes)
def test_route_text_form(route) -> None:
    kwargs: dict[str, object] = {}
    if route.route_type == 2:
        kwargs = {"label": route.label1, "label2": route.label2, "esi": route.esi}
    elif route.route_type == 5:
        kwargs = {
            "label": route.label,
            "esi": route.esi,
            "gateway": str(ipaddress.ip_address(route.gateway)),
        }
    elif route.route_type == 1:
        kwargs = {"label": route.label}
    assert route_from_text(route.text, route.rd, **kwargs) == route  # type: ignore[arg-type]


@given(s.rds)
def test_rd_text_form(rd) -> None:
    parsed = RouteDistinguisher.from_text(str(rd))
    # A type 2 RD whose AS fits 2 bytes reads back as type 0 with the same text.
    assert str(parsed) == str(rd)
    if rd.rd_type != 2 or int(str(rd).split(":")[0]) > 0xFFFF:
        assert parsed == rd


@given(s.ext_communities)
def test_extended_community(community) -> None:
    wire = community.encode()
    assert len(wire) == 8
    assert decode_ext_community(wire) == community


@given(s.capabilities)
def test_capability(cap) -> None:
    wire = encode_capability(cap)
    assert wire[0] == cap.code and wire[1] == len(wire) - 2
    assert decode_capability(wire[0], wire[2:]) == cap


@given(s.opens())
def test_open(message: Open) -> None:
    wire = message.encode()
    decoded = decode_message(wire)
    assert isinstance(decoded, Open)
    if message.extended_parameters:
        assert decoded.extended_parameters
    assert decoded == replace(message, extended_parameters=decoded.extended_parameters)
    assert decoded.encode() == wire


@given(s.notifications)
def test_notification(message) -> None:
    assert decode_message(message.encode()) == message


@given(s.route_refreshes)
def test_route_refresh(message) -> None:
    assert decode_message(message.encode()) == message


def test_keepalive() -> None:
    assert decode_message(Keepalive().encode()) == Keepalive()


@given(
    s.path_attributes(),
    st.lists(s.evpn_routes, min_size=1, max_size=30),
    st.lists(s.evpn_routes, max_size=10),
)
def test_update_announce_and_withdraw(attrs: PathAttributes, announced, withdrawn) -> None:
    update = Update(
        attributes=attrs,
        announced=announced,
        withdrawn=withdrawn,
        reach_family=EVPN,
        unreach_family=EVPN if withdrawn else None,
    )
    wire = update.encode(BIG)
    received = replace(update, withdrawn=as_withdrawn(withdrawn))
    assert decode_update(wire, BIG) == received
    assert decode_update(wire, BIG, {}) == received


@given(s.path_attributes(announcing=False), st.lists(s.evpn_routes, min_size=1, max_size=30))
def test_update_withdraw_only(attrs: PathAttributes, withdrawn) -> None:
    update = Update(attributes=attrs, withdrawn=withdrawn, unreach_family=EVPN)
    decoded = decode_update(update.encode(BIG), BIG)
    assert decoded == replace(update, withdrawn=as_withdrawn(withdrawn))
    # what the RIB looks up, whatever the form: every route's key
    assert [r.key for r in decoded.withdrawn] == [r.key for r in withdrawn]


def as_withdrawn(routes: list[EvpnRoute]) -> list[EvpnRoute]:
    """Routes as a withdrawal brings them back: Type 2 by its key fields alone (labels and
    ESI are not decoded there, evpn/routes.py `MacIpWithdrawal`), the others whole."""
    return [MacIpWithdrawal(*r.key) if isinstance(r, MacIpRoute) else r for r in routes]  # type: ignore[arg-type]


@given(
    s.path_attributes(as_path=s.old_speaker_paths),
    st.lists(s.mac_ip_routes, min_size=1, max_size=5),
)
def test_update_to_a_two_octet_as_speaker(attrs: PathAttributes, routes) -> None:
    """RFC 6793: 4-byte ASNs travel as AS_TRANS plus AS4_PATH and come back merged."""
    old = CodecContext(four_octet_as=False, max_message_len=65535)
    update = Update(attributes=attrs, announced=routes, reach_family=EVPN)
    decoded = decode_update(update.encode(old), old)
    assert decoded == update


@given(
    st.lists(
        st.integers(0, 32).flatmap(
            lambda n: st.builds(lambda b, n=n: ipaddress.IPv4Network((b, n), strict=False), s.ipv4)
        ),
        max_size=20,
    ),
    st.lists(
        st.integers(0, 32).flatmap(
            lambda n: st.builds(lambda b, n=n: ipaddress.IPv4Network((b, n), strict=False), s.ipv4)
        ),
        max_size=20,
    ),
)
def test_update_ipv4_unicast(announced, withdrawn) -> None:
    attrs = PathAttributes(origin=0, as_path=s.AsPath(), next_hop=b"\x0a\x00\x00\x01")
    update = Update(
        attributes=attrs if announced else PathAttributes(),
        ipv4_announced=tuple(announced),
        ipv4_withdrawn=tuple(withdrawn),
    )
    assert decode_update(update.encode(BIG), BIG) == update


@given(
    s.path_attributes(),
    st.lists(s.evpn_routes, min_size=1, max_size=400),
    st.sampled_from([4096, 65535]),
    st.booleans(),
)
def test_packing(attrs: PathAttributes, routes, size, add_path) -> None:
    ctx = CodecContext(
        max_message_len=size,
        add_path_send=frozenset({EVPN}) if add_path else frozenset(),
        add_path_receive=frozenset({EVPN}) if add_path else frozenset(),
    )
    path_ids = list(range(len(routes))) if add_path else None
    for pack, field in ((pack_announcements, "announced"), (pack_withdrawals, "withdrawn")):
        args = (routes, attrs, ctx) if field == "announced" else (routes, ctx)
        messages = pack(*args, path_ids=path_ids)  # type: ignore[operator]
        got = []
        got_ids = []
        for wire in messages:
            assert len(wire) <= size
            decoded = decode_update(wire, ctx)
            assert isinstance(decoded, Update) and decoded.errors == ()
            got += getattr(decoded, field)
            got_ids += getattr(decoded, f"{field}_path_ids") or []
            if field == "announced":
                assert decoded.attributes == attrs
        assert got == (routes if field == "announced" else as_withdrawn(routes))
        if add_path:
            assert got_ids == path_ids
        # Packed full: every message but the last would overflow with one more route.
        assert len(messages) <= 1 + sum(len(r.encode()) for r in routes) // (size // 2)


def test_end_of_rib() -> None:
    for family in ((Afi.L2VPN, Safi.EVPN), (Afi.IPV4, Safi.UNICAST)):
        decoded = decode_update(end_of_rib(*family))
        assert isinstance(decoded, Update) and decoded.end_of_rib == family


@given(
    st.lists(s.notifications | s.route_refreshes, min_size=1, max_size=10),
    st.lists(st.integers(1, 50), min_size=1),
)
def test_stream_in_pieces(messages, cuts) -> None:
    stream = b"".join(m.encode() for m in messages)
    reader = MessageReader()
    got = []
    pos = 0
    for cut in cuts * (len(stream) // len(cuts) + 1):
        if pos >= len(stream):
            break
        reader.feed(stream[pos : pos + cut])
        pos += cut
        got += reader.messages()
    assert [decode_message(m) for m in got] == messages  # type: ignore[arg-type]
    assert reader.buffered == 0
