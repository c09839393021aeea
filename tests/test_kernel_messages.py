"""The fast netlink neighbour messages agree byte for byte with pyroute2's."""

from __future__ import annotations

import socket

import pytest
from pyroute2 import IPBatch

from evpnd.kernel import iproutes as ipr
from evpnd.kernel import neighbours as nl


def pyroute2_bytes(command: str, method: str, **kwargs: object) -> bytes:
    batch = IPBatch()
    getattr(batch, method)(command, **kwargs)
    return bytes(batch.batch)


def same_body(ours: bytes, theirs: bytes) -> None:
    # pyroute2 numbers its own messages and may set other header flags: compare from the
    # type field on, less the sequence number and port id.
    assert len(ours) == len(theirs)
    assert ours[4:6] == theirs[4:6]  # type
    assert ours[16:] == theirs[16:], (ours[16:].hex(), theirs[16:].hex())


@pytest.mark.parametrize("dst", ["10.0.0.2", "2001:db8::2"])
def test_fdb_entry_matches_pyroute2(dst: str) -> None:
    packed = socket.inet_pton(socket.AF_INET if "." in dst else socket.AF_INET6, dst)
    flags = nl.NTF_MASTER | nl.NTF_SELF | nl.NTF_EXT_LEARNED
    ours = nl.fdb_message(
        nl.RTM_NEWNEIGH, 0, 1, 7, bytes.fromhex("020000000001"), packed, nl.NUD_REACHABLE, flags
    )
    theirs = pyroute2_bytes(
        "replace",
        "fdb",
        ifindex=7,
        lladdr="02:00:00:00:00:01",
        dst=dst,
        flags=flags,
        state=nl.NUD_REACHABLE,
    )
    same_body(ours, theirs)


@pytest.mark.parametrize("ip", ["10.0.100.12", "2001:db8:100::12"])
def test_neighbour_matches_pyroute2(ip: str) -> None:
    packed = socket.inet_pton(socket.AF_INET if "." in ip else socket.AF_INET6, ip)
    ours = nl.neigh_message(
        nl.RTM_NEWNEIGH,
        0,
        1,
        9,
        packed,
        bytes.fromhex("020000000002"),
        nl.NUD_NOARP,
        nl.NTF_EXT_LEARNED,
    )
    theirs = pyroute2_bytes(
        "replace",
        "neigh",
        ifindex=9,
        dst=ip,
        lladdr="02:00:00:00:00:02",
        state=nl.NUD_NOARP,
        flags=nl.NTF_EXT_LEARNED,
    )
    same_body(ours, theirs)


def test_parse_reads_what_we_build_and_acks() -> None:
    message = nl.fdb_message(
        nl.RTM_NEWNEIGH,
        0,
        5,
        3,
        bytes(range(6)),
        bytes((10, 0, 0, 9)),
        nl.NUD_PERMANENT,
        nl.NTF_SELF,
    )
    ack = (
        bytes.fromhex("24000000020000000500000000000000")
        + (-17).to_bytes(4, "little", signed=True)
        + message[:16]
    )
    neighbours, acks, done = nl.parse(message + ack)
    assert neighbours == [
        nl.Neighbour(
            nl.RTM_NEWNEIGH,
            nl.AF_BRIDGE,
            3,
            nl.NUD_PERMANENT,
            nl.NTF_SELF,
            bytes(range(6)),
            bytes((10, 0, 0, 9)),
            None,
        )
    ]
    assert acks == [nl.Ack(5, -17)] and not done


@pytest.mark.parametrize(
    ("dst", "length", "gateway", "table"),
    [
        ("10.2.2.0", 24, "192.0.2.2", 254),
        ("10.2.2.10", 32, "192.0.2.2", 1001),  # a VRF's table: beyond the 8-bit field
        ("2001:db8:220::", 64, "::ffff:192.0.2.2", 254),
    ],
)
def test_route_matches_pyroute2_and_parses_back(
    dst: str, length: int, gateway: str, table: int
) -> None:
    family = socket.AF_INET if "." in dst else socket.AF_INET6
    key = ipr.RouteKey(table, socket.inet_pton(family, dst), length)
    nexthop = ipr.Nexthop(socket.inet_pton(family, gateway), 5)
    flags = nl.NLM_F_REQUEST | nl.NLM_F_CREATE | nl.NLM_F_REPLACE
    ours = ipr.route_message(ipr.RTM_NEWROUTE, flags, 1, key, (nexthop,))
    theirs = pyroute2_bytes(
        "replace",
        "route",
        dst=f"{dst}/{length}",
        gateway=gateway,
        oif=5,
        table=table,
        proto=ipr.RTPROT_EVPND,
        priority=ipr.METRIC,
        flags=ipr.RTNH_F_ONLINK,
        scope=0,
        type=1,
    )
    if table > 255:
        # the 8-bit field is a don't-care when RTA_TABLE is there: iproute2 sends 0 (as we
        # do), pyroute2 254
        theirs = theirs[:20] + ours[20:21] + theirs[21:]
    same_body(ours, theirs)
    # a dump answer has the same layout: our own parser reads it back, and skips routes of
    # other protocols
    parsed, done = ipr.parse_routes(ours)
    assert parsed == {key: (nexthop,)} and not done
    assert ipr.parse_routes(ours, protocol=186) == ({}, False)
    removal = ipr.route_message(ipr.RTM_DELROUTE, nl.NLM_F_REQUEST, 2, key)
    assert removal[4:6] == ipr.RTM_DELROUTE.to_bytes(2, "little")


def test_ecmp_route_matches_pyroute2_and_parses_back() -> None:
    key = ipr.RouteKey(254, socket.inet_aton("10.8.0.0"), 16)
    hops = (
        ipr.Nexthop(socket.inet_aton("192.0.2.2"), 5),
        ipr.Nexthop(socket.inet_aton("192.0.2.3"), 5),
    )
    flags = nl.NLM_F_REQUEST | nl.NLM_F_CREATE | nl.NLM_F_REPLACE
    ours = ipr.route_message(ipr.RTM_NEWROUTE, flags, 1, key, hops)
    theirs = pyroute2_bytes(
        "replace",
        "route",
        dst="10.8.0.0/16",
        multipath=[
            {"gateway": "192.0.2.2", "oif": 5, "flags": ipr.RTNH_F_ONLINK},
            {"gateway": "192.0.2.3", "oif": 5, "flags": ipr.RTNH_F_ONLINK},
        ],
        table=254,
        proto=ipr.RTPROT_EVPND,
        priority=ipr.METRIC,
        scope=0,
        type=1,
    )
    same_body(ours, theirs)
    assert ipr.parse_routes(ours) == ({key: hops}, False)


def test_filter_program_is_plain_bpf() -> None:
    from evpnd.kernel.netlink import MAX_FILTERED_PORTS, own_events_filter

    program = own_events_filter(frozenset(range(1, 11)), 1234, writing=True)
    assert len(program) % 8 == 0 and len(program) // 8 == 18 + 2 * 10
    # between writes the ports are not looked at: everyone else's entries pass
    assert len(own_events_filter(frozenset(range(1, 11)), 1234)) // 8 == 11
    big = own_events_filter(frozenset(range(1, MAX_FILTERED_PORTS + 1)), 1, writing=True)
    assert len(big) // 8 <= 4096  # the kernel's limit for classic BPF


def test_removals_of_ip_entries_being_removed_by_us_are_dropped_unread() -> None:
    """An IP neighbour's removal notification says nothing of who removed it (port id 0, no
    extern_learn flag): the walk drops those of the entries named in `skip_gone`, and only
    those — someone else's removal of another entry, and any new entry, are read."""
    ours = (7, bytes((10, 0, 0, 1)))
    theirs = (7, bytes((10, 0, 0, 2)))
    v6 = (7, bytes.fromhex("20010db8" + "00" * 11 + "05"))
    gone = [
        nl.neigh_message(nl.RTM_DELNEIGH, 0, 0, i, ip, None, 0x20, 0)
        for i, ip in (ours, theirs, v6)
    ]
    new = nl.neigh_message(nl.RTM_NEWNEIGH, 0, 0, *ours, bytes(6), 0x02, 0)
    buffer = b"".join([*gone, new])
    everything, _, _, _, _ = nl.walk(buffer)
    assert [(n.kind, n.dst) for n in everything] == [
        (nl.RTM_DELNEIGH, ours[1]),
        (nl.RTM_DELNEIGH, theirs[1]),
        (nl.RTM_DELNEIGH, v6[1]),
        (nl.RTM_NEWNEIGH, ours[1]),
    ]
    read, _, _, _, _ = nl.walk(buffer, skip_gone={ours: None, v6: None})
    assert [(n.kind, n.dst) for n in read] == [
        (nl.RTM_DELNEIGH, theirs[1]),
        (nl.RTM_NEWNEIGH, ours[1]),
    ]
