"""Bad input of every shape: each RFC 7606 case by name, header and OPEN errors, and fuzzing.

The codec must answer each with a DecodeError (or an Update carrying one) of the right action
and NOTIFICATION code/subcode — never an exception.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evpnd.bgp.attributes import AsPath, PathAttributes
from evpnd.bgp.context import CodecContext
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Notification, Open, RouteRefresh, decode_message, frame
from evpnd.bgp.update import Update, pack_announcements
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import InclusiveMulticastRoute, MacIpRoute
from evpnd.wire.constants import AttrType, ErrorCode, UpdateSubcode
from evpnd.wire.errors import DecodeError, ErrorAction
from tests import strategies as s
from tests.capture import REFERENCE, read_streams

RD = RouteDistinguisher.from_text("192.0.2.1:2")
ROUTE = MacIpRoute(RD, 0, bytes.fromhex("020000000001"), b"", ZERO_ESI, 100)
ROUTE2 = MacIpRoute(RD, 0, bytes.fromhex("020000000002"), b"\x0a\x00\x00\x02", ZERO_ESI, 100)

ORIGIN = bytes.fromhex("40010100")
AS_PATH = bytes.fromhex("400200")
LOCAL_PREF = bytes.fromhex("40050400000064")
EXT = b"\xc0\x10\x10" + Encapsulation(8).encode() + RouteTarget(0, 65000, 100).encode()


def attr(flags: int, code: int, value: bytes) -> bytes:
    if flags & 0x10:
        return struct.pack("!BBH", flags, code, len(value)) + value
    return struct.pack("!BBB", flags, code, len(value)) + value


def mp_reach(
    *routes: MacIpRoute | InclusiveMulticastRoute,
    nexthop: bytes = b"\xc0\x00\x02\x01",
    afi: int = 25,
    safi: int = 70,
) -> bytes:
    value = struct.pack("!HBB", afi, safi, len(nexthop)) + nexthop + b"\x00"
    return attr(0x90, 14, value + b"".join(r.encode() for r in routes))


def update(attrs: bytes, withdrawn: bytes = b"", nlri: bytes = b"") -> bytes:
    body = struct.pack("!H", len(withdrawn)) + withdrawn + struct.pack("!H", len(attrs)) + attrs
    return frame(2, body + nlri)


GOOD = mp_reach(ROUTE, ROUTE2) + ORIGIN + AS_PATH + LOCAL_PREF + EXT


def decode(message: bytes, ctx: CodecContext | None = None) -> Update | DecodeError:
    result = decode_message(message, ctx or CodecContext())
    assert isinstance(result, Update | DecodeError), result
    return result


def expect_withdraw(
    message: bytes, subcode: int, code_of_attr: int | None = None, ctx: CodecContext | None = None
) -> Update:
    result = decode(message, ctx)
    assert isinstance(result, Update), result
    assert result.announced == []
    assert result.withdrawn == [ROUTE, ROUTE2]
    worst = max(result.errors, key=lambda e: e.action)
    assert worst.action == ErrorAction.TREAT_AS_WITHDRAW
    assert worst.subcode == subcode
    assert worst.withdrawn == (ROUTE, ROUTE2)
    if code_of_attr is not None:
        assert worst.attribute == code_of_attr
    return result


def expect_discard(message: bytes, code_of_attr: int, ctx: CodecContext | None = None) -> Update:
    result = decode(message, ctx)
    assert isinstance(result, Update), result
    assert result.announced == [ROUTE, ROUTE2]
    assert [e.action for e in result.errors] == [ErrorAction.ATTRIBUTE_DISCARD]
    assert result.errors[0].attribute == code_of_attr
    return result


def expect_reset(
    message: bytes, code: int, subcode: int, ctx: CodecContext | None = None
) -> DecodeError:
    result = decode(message, ctx)
    assert isinstance(result, DecodeError), result
    assert result.action == ErrorAction.SESSION_RESET
    assert (result.code, result.subcode) == (code, subcode), str(result)
    assert Notification.from_error(result).encode()[18] == 3
    return result


def test_good_update_is_clean() -> None:
    result = decode(update(GOOD))
    assert isinstance(result, Update)
    assert result.announced == [ROUTE, ROUTE2] and result.errors == ()


# --- RFC 7606 §4: lengths of the whole message ------------------------------------------------


def test_withdrawn_routes_length_overrun_resets() -> None:
    message = bytearray(update(GOOD))
    message[19:21] = b"\x10\x00"
    error = expect_reset(
        bytes(message), ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST
    )
    assert error.offset == 19


def test_total_attribute_length_overrun_resets() -> None:
    message = bytearray(update(GOOD))
    message[21:23] = struct.pack("!H", len(GOOD) + 1)
    expect_reset(bytes(message), ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST)


def test_attribute_overrun_after_mp_reach_is_treat_as_withdraw() -> None:
    broken = mp_reach(ROUTE, ROUTE2) + ORIGIN + AS_PATH + bytes.fromhex("40050900000064")
    result = expect_withdraw(update(broken), UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)
    assert result.errors[-1].offset == 23 + len(mp_reach(ROUTE, ROUTE2) + ORIGIN + AS_PATH)


def test_attribute_overrun_before_mp_reach_resets() -> None:
    broken = ORIGIN + bytes.fromhex("4002ff") + mp_reach(ROUTE)
    expect_reset(update(broken), ErrorCode.UPDATE_MESSAGE, UpdateSubcode.MALFORMED_ATTRIBUTE_LIST)


def test_attribute_header_cut_short_is_treat_as_withdraw() -> None:
    expect_withdraw(update(GOOD + b"\x40\x01"), UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)
    expect_withdraw(update(GOOD + b"\x50\x01\x00"), UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)


# --- RFC 7606 §3: repeated, missing, flags ----------------------------------------------------


def test_mp_reach_twice_resets() -> None:
    expect_reset(
        update(GOOD + mp_reach(ROUTE)),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
    )


def test_other_attribute_twice_keeps_the_first() -> None:
    result = expect_discard(update(GOOD + bytes.fromhex("40010102")), AttrType.ORIGIN)
    assert result.attributes.origin == 0


def test_missing_origin_is_treat_as_withdraw() -> None:
    expect_withdraw(
        update(mp_reach(ROUTE, ROUTE2) + AS_PATH + EXT), UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE
    )


def test_missing_as_path_is_treat_as_withdraw() -> None:
    result = expect_withdraw(
        update(mp_reach(ROUTE, ROUTE2) + ORIGIN + EXT), UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE
    )
    assert "AS_PATH" in result.errors[0].reason


def test_missing_next_hop_for_ipv4_nlri_is_treat_as_withdraw() -> None:
    result = decode(update(ORIGIN + AS_PATH, nlri=b"\x18\x0a\x00\x01"))
    assert isinstance(result, Update)
    assert [str(n) for n in result.ipv4_withdrawn] == ["10.0.1.0/24"]
    assert result.ipv4_announced == ()


def test_well_known_attribute_marked_optional_is_treat_as_withdraw() -> None:
    expect_withdraw(
        update(GOOD.replace(ORIGIN, bytes.fromhex("c0010100"))),
        UpdateSubcode.ATTRIBUTE_FLAGS_ERROR,
        AttrType.ORIGIN,
    )


def test_aggregator_with_wrong_flags_is_discarded() -> None:
    expect_discard(update(GOOD + attr(0x40, 7, bytes(8))), AttrType.AGGREGATOR)


def test_mp_reach_with_wrong_flags_resets() -> None:
    bad = mp_reach(ROUTE)
    bad = bytes((0xD0,)) + bad[1:]
    expect_reset(
        update(bad + ORIGIN + AS_PATH),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    )


# --- RFC 7606 §7: attribute by attribute --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "replace", "subcode"),
    [
        ("ORIGIN value 3", ("40010100", "40010103"), UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE),
        ("ORIGIN of 2 bytes", ("40010100", "4001020000"), UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE),
        (
            "AS_PATH segment overrun",
            ("400200", "400206020500000001"),
            UpdateSubcode.MALFORMED_AS_PATH,
        ),
        ("AS_PATH zero-length segment", ("400200", "4002020200"), UpdateSubcode.MALFORMED_AS_PATH),
        (
            "AS_PATH unknown segment type",
            ("400200", "400206090100000001"),
            UpdateSubcode.MALFORMED_AS_PATH,
        ),
        # RFC 7607 §2: AS 0 in AS_PATH is a malformed AS_PATH (RFC 7606: treat-as-withdraw)
        (
            "AS_PATH with AS 0",
            ("400200", "40020a02020000fde800000000"),
            UpdateSubcode.MALFORMED_AS_PATH,
        ),
        (
            "LOCAL_PREF of 3 bytes",
            ("40050400000064", "400503000064"),
            UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        ),
    ],
)
def test_malformed_mandatory_attribute_is_treat_as_withdraw(name, replace, subcode) -> None:
    old, new = (bytes.fromhex(x) for x in replace)
    expect_withdraw(update(GOOD.replace(old, new)), subcode)


@pytest.mark.parametrize(
    ("name", "extra", "code"),
    [
        ("NEXT_HOP of 5 bytes", attr(0x40, 3, bytes(5)), AttrType.NEXT_HOP),
        ("MED of 2 bytes", attr(0x80, 4, bytes(2)), AttrType.MULTI_EXIT_DISC),
        ("COMMUNITIES of 6 bytes", attr(0xC0, 8, bytes(6)), AttrType.COMMUNITIES),
        ("COMMUNITIES empty", attr(0xC0, 8, b""), AttrType.COMMUNITIES),
        ("ORIGINATOR_ID of 5 bytes", attr(0x80, 9, bytes(5)), AttrType.ORIGINATOR_ID),
        ("CLUSTER_LIST of 6 bytes", attr(0x80, 10, bytes(6)), AttrType.CLUSTER_LIST),
        (
            "EXTENDED_COMMUNITIES of 12 bytes",
            attr(0xC0, 16, bytes(12)),
            AttrType.EXTENDED_COMMUNITIES,
        ),
        ("PMSI_TUNNEL of 4 bytes", attr(0xC0, 22, bytes(4)), AttrType.PMSI_TUNNEL),
        ("LARGE_COMMUNITIES of 13 bytes", attr(0xC0, 32, bytes(13)), AttrType.LARGE_COMMUNITIES),
    ],
)
def test_malformed_optional_attribute_is_treat_as_withdraw(name, extra, code) -> None:
    good = GOOD.replace(EXT, b"") if code == AttrType.EXTENDED_COMMUNITIES else GOOD
    expect_withdraw(update(good + extra), UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, code)


@pytest.mark.parametrize(
    ("name", "extra", "code", "ctx"),
    [
        ("ATOMIC_AGGREGATE with a value", attr(0x40, 6, b"\x01"), AttrType.ATOMIC_AGGREGATE, None),
        ("AGGREGATOR of 7 bytes", attr(0xC0, 7, bytes(7)), AttrType.AGGREGATOR, None),
        (
            "AS4_PATH malformed",
            attr(0xC0, 17, b"\x02\x05"),
            AttrType.AS4_PATH,
            CodecContext(four_octet_as=False),
        ),
        (
            "AS4_PATH between 4-octet speakers",
            attr(0xC0, 17, b"\x02\x01\x00\x00\xfd\xe8"),
            AttrType.AS4_PATH,
            None,
        ),
        ("AS4_AGGREGATOR of 6 bytes", attr(0xC0, 18, bytes(6)), AttrType.AS4_AGGREGATOR, None),
        # RFC 7607 §2: AS 0 in AS4_PATH is a malformed AS4_PATH, in AGGREGATOR (or
        # AS4_AGGREGATOR) the attribute is discarded
        (
            "AS4_PATH with AS 0",
            attr(0xC0, 17, b"\x02\x01\x00\x00\x00\x00"),
            AttrType.AS4_PATH,
            CodecContext(four_octet_as=False),
        ),
        (
            "AGGREGATOR from AS 0",
            attr(0xC0, 7, bytes(4) + b"\xc0\x00\x02\x01"),
            AttrType.AGGREGATOR,
            None,
        ),
        (
            "AS4_AGGREGATOR from AS 0",
            attr(0xC0, 18, bytes(4) + b"\xc0\x00\x02\x01"),
            AttrType.AS4_AGGREGATOR,
            CodecContext(four_octet_as=False),
        ),
    ],
)
def test_malformed_attribute_discard(name, extra, code, ctx) -> None:
    expect_discard(update(GOOD + extra), code, ctx)


def test_local_pref_from_external_peer_is_discarded() -> None:
    result = expect_discard(update(GOOD), AttrType.LOCAL_PREF, CodecContext(external=True))
    assert result.attributes.local_pref is None


def test_unrecognized_well_known_attribute_resets() -> None:
    error = expect_reset(
        update(GOOD + attr(0x40, 99, b"abc")),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
    )
    assert error.data == attr(0x40, 99, b"abc")


def test_unknown_optional_transitive_is_kept_with_partial_bit() -> None:
    result = decode(update(GOOD + attr(0xC0, 99, b"abc")))
    assert isinstance(result, Update) and result.errors == ()
    (raw,) = result.attributes.unknown
    assert (raw.type_code, raw.flags, raw.value) == (99, 0xE0, b"abc")
    reencoded = pack_announcements(result.announced, result.attributes)[0]
    assert attr(0xE0, 99, b"abc") in reencoded


def test_unknown_optional_non_transitive_is_dropped() -> None:
    result = decode(update(GOOD + attr(0x80, 99, b"abc")))
    assert isinstance(result, Update) and result.errors == ()
    assert result.attributes.unknown == ()


def test_most_severe_action_wins_and_all_errors_are_listed() -> None:
    bad = GOOD + attr(0x40, 6, b"\x01") + attr(0x80, 4, bytes(2))
    result = expect_withdraw(update(bad), UpdateSubcode.ATTRIBUTE_LENGTH_ERROR)
    assert sorted(e.action for e in result.errors) == [
        ErrorAction.ATTRIBUTE_DISCARD,
        ErrorAction.TREAT_AS_WITHDRAW,
    ]


# --- MP_REACH_NLRI and the EVPN NLRI -----------------------------------------------------------


def test_next_hop_overrunning_mp_reach_resets() -> None:
    value = struct.pack("!HBB", 25, 70, 200) + bytes(4)
    expect_reset(
        update(attr(0x90, 14, value) + ORIGIN + AS_PATH),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    )


def test_evpn_next_hop_of_odd_length_resets() -> None:
    expect_reset(
        update(mp_reach(ROUTE, nexthop=bytes(5)) + ORIGIN + AS_PATH),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    )


def test_evpn_route_overrunning_the_nlri_resets() -> None:
    reach = bytearray(mp_reach(ROUTE))
    reach[-34] = 60  # the route's length byte
    expect_reset(
        update(bytes(reach) + ORIGIN + AS_PATH),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    )


def test_evpn_type2_with_bad_mac_length_resets() -> None:
    wire = bytearray(ROUTE.encode())
    wire[2 + 22] = 40
    reach = mp_reach() + bytes(wire)
    reach = reach[:2] + struct.pack("!H", len(reach) - 4) + reach[4:]
    error = expect_reset(
        update(reach + ORIGIN + AS_PATH),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR,
    )
    assert "MAC length 40" in error.reason


def test_unknown_evpn_route_type_is_ignored_and_the_rest_kept() -> None:
    unknown = bytes((9, 4)) + b"abcd"
    reach = mp_reach(ROUTE) + unknown
    reach = reach[:2] + struct.pack("!H", len(reach) - 4) + reach[4:]
    result = decode(update(reach + ORIGIN + AS_PATH))
    assert isinstance(result, Update)
    assert result.announced == [ROUTE]
    (error,) = result.errors
    assert error.action == ErrorAction.NLRI_DISCARD and error.data == unknown


def test_family_not_negotiated_is_ignored() -> None:
    result = decode(update(mp_reach(ROUTE, afi=2, safi=1) + ORIGIN + AS_PATH))
    assert isinstance(result, Update) and result.announced == []
    assert [e.action for e in result.errors] == [ErrorAction.NLRI_DISCARD]


def test_ipv4_prefix_longer_than_32_resets() -> None:
    expect_reset(
        update(ORIGIN + AS_PATH + attr(0x40, 3, bytes(4)), nlri=b"\x21" + bytes(5)),
        ErrorCode.UPDATE_MESSAGE,
        UpdateSubcode.INVALID_NETWORK_FIELD,
    )


# --- headers, OPEN, ROUTE-REFRESH ----------------------------------------------------------------


def test_header_errors() -> None:
    keepalive = frame(4, b"")
    cases = [
        (b"\x00" + keepalive[1:], (1, 1), b""),
        (keepalive[:16] + b"\x00\x12\x04", (1, 2), b"\x00\x12"),
        (keepalive[:18] + b"\x09", (1, 3), b"\x09"),
        (frame(4, b"x"), (1, 2), b"\x00\x14"),
        (frame(1, bytes(5000))[:16] + b"\x13\x9d\x01", (1, 2), b"\x13\x9d"),
    ]
    for raw, codes, data in cases:
        reader = MessageReader()
        reader.feed(raw)
        error = reader.next_message()
        assert isinstance(error, DecodeError)
        assert (error.code, error.subcode, error.data) == (*codes, data)
        assert reader.next_message() is error  # the stream stays broken


def test_extended_messages_only_when_negotiated() -> None:
    message = frame(2, b"\x00\x00" + struct.pack("!H", 5000) + attr(0xD0, 99, bytes(4996)))
    assert isinstance(decode_message(message), DecodeError)
    result = decode_message(message, CodecContext(max_message_len=65535))
    assert isinstance(result, Update)


def _open(**kwargs: object) -> bytes:
    fields = {"asn": 65000, "hold_time": 90, "router_id": "192.0.2.1"}
    fields.update(kwargs)
    return Open(**fields).encode()  # type: ignore[arg-type]


def test_open_errors() -> None:
    cases = [
        (_open(version=3), (2, 1), b"\x00\x04"),
        (_open(hold_time=2), (2, 6), b""),
        (_open(router_id="0.0.0.0"), (2, 3), b""),
        (frame(1, bytes.fromhex("04fde8005ac00002010402020101")), (2, 0), b""),
        (frame(1, bytes.fromhex("04fde8005ac000020106020401000119")), (2, 0), b""),
        (frame(1, bytes.fromhex("04fde8005ac0000201090207010300190046")), (2, 0), b""),
    ]
    for raw, codes, data in cases:
        error = decode_message(raw)
        assert isinstance(error, DecodeError), error
        assert (error.code, error.subcode, error.data) == (*codes, data), str(error)


def test_route_refresh_of_wrong_length() -> None:
    raw = frame(5, RouteRefresh(25, 70).encode()[19:] + b"\x00")
    error = decode_message(raw)
    assert isinstance(error, DecodeError)
    assert (error.code, error.subcode, error.data) == (7, 1, raw)


# --- fuzzing: random and mutated input never raises ---------------------------------------------


def _seed_messages() -> list[bytes]:
    seeds = [
        update(GOOD),
        _open(),
        Notification(6, 2, b"\x03bye").encode(),
        RouteRefresh(25, 70).encode(),
    ]
    for stream in read_streams(REFERENCE / "frr-8.4-evpn-irb-session.pcap"):
        reader = MessageReader()
        reader.feed(bytes(stream.data))
        seeds += [m for m in reader.messages() if isinstance(m, bytes)]
    seeds += pack_announcements(
        [ROUTE, ROUTE2],
        PathAttributes(
            origin=0, as_path=AsPath.sequence(65001, 4200000000), nexthop=b"\x0a\x00\x00\x01"
        ),
    )
    return seeds


SEEDS = _seed_messages()
CONTEXTS = [
    CodecContext(),
    CodecContext(
        four_octet_as=False,
        external=True,
        add_path_receive=frozenset({(25, 70)}),
        max_message_len=65535,
    ),
]


def _check(raw: bytes) -> None:
    for ctx in CONTEXTS:
        result = decode_message(raw, ctx, {})
        assert not isinstance(result, BaseException)
        if isinstance(result, DecodeError):
            str(result)
        reader = MessageReader(ctx.max_message_len)
        reader.feed(raw)
        reader.messages()


@given(st.binary(max_size=600))
def test_fuzz_random_bytes(data: bytes) -> None:
    _check(data)
    # the same bytes behind a valid header reach the body decoders
    for kind in (1, 2, 3, 4, 5):
        _check(frame(kind, data))


@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_fuzz_mutated_messages(seed: bytes, flips) -> None:
    raw = bytearray(seed)
    for pos, value in flips:
        raw[pos % len(raw)] = value
    _check(bytes(raw))
    body = bytes(raw[19:])
    _check(frame(seed[18], body))  # header repaired, body broken


def test_fuzz_many_seeded_mutations() -> None:
    """A deterministic, wider sweep: truncations, insertions and byte flips of every seed."""
    rng = random.Random(7606)
    count = 0
    for seed in SEEDS:
        for _ in range(1500):
            raw = bytearray(seed)
            op = rng.randrange(3)
            if op == 0:
                raw = raw[: rng.randrange(len(raw))]
            elif op == 1:
                at = rng.randrange(len(raw))
                raw[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 6)))
            for _ in range(rng.randrange(1, 4)):
                if raw:
                    raw[rng.randrange(len(raw))] = rng.randrange(256)
            body = bytes(raw[19:])
            _check(frame(seed[18], body))
            count += 1
    assert count == 1500 * len(SEEDS)


@given(
    st.lists(s.opens() | s.notifications | s.route_refreshes, max_size=5), st.binary(max_size=40)
)
def test_fuzz_stream_with_garbage_tail(messages, garbage: bytes) -> None:
    reader = MessageReader()
    reader.feed(b"".join(m.encode() for m in messages) + garbage)
    out = reader.messages()
    assert len([m for m in out if isinstance(m, bytes)]) >= len(messages)
