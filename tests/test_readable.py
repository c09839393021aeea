"""What operators read says MACs, addresses, RDs and RTs in their text forms — never a Python
repr such as `b'\\xc0\\xa8d\\x01'` or `PathAttributes(...)`: the kernel invariant's differences,
the "kernel repaired" event (its log line and its `evpnctl watch` line), debug lines of an
UPDATE, and everything two real daemons log and answer (no root: loopback addresses)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import structlog

from evpnd.bgp.attributes import AsPath, PathAttributes, PmsiTunnel
from evpnd.control.tables import format_event, show_findings, show_kernel_table
from evpnd.daemon.debugging import Debugging
from evpnd.daemon.logs import configure
from evpnd.events import KernelRepaired, readable
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
from evpnd.kernel import entry_text, invariant
from evpnd.kernel.desired import Changes, Entries
from evpnd.kernel.iproutes import Nexthop, RouteKey
from tests.capture import read_streams
from tests.loopback import loopback_pair
from tests.waiting import wait_for

#: a bytes repr, or a dataclass repr of ours, anywhere in a text
REPR = re.compile(r"""\bb['"]|\\x[0-9a-f]{2}|PathAttributes\(|RouteTarget\(|Nexthop\(""")

VXLAN, BRIDGE, L3BRIDGE = 3, 4, 9
NAMES = {VXLAN: "vxlan100", BRIDGE: "br100", L3BRIDGE: "br4001"}
MAC = bytes.fromhex("020000000001")
VTEP = bytes([192, 168, 100, 1])


def assert_readable(text: str) -> None:
    found = REPR.search(text)
    assert found is None, f"a repr in: {text!r}"


def test_the_wish_differences_name_devices_macs_and_addresses() -> None:
    have = Entries(
        fdb={(VXLAN, MAC): VTEP},
        flood={(VXLAN, bytes([192, 0, 2, 2])): 1},
        neigh={(BRIDGE, bytes([10, 0, 0, 5])): MAC},
        routes={RouteKey(1001, bytes([10, 1, 0, 0]), 24): (Nexthop(VTEP, L3BRIDGE),)},
    )
    lines = invariant.differences(have, Entries(), NAMES)
    assert lines == [
        "fdb vxlan100 02:00:00:00:00:01: have 192.168.100.1, want none",
        "flood vxlan100 192.0.2.2: extra",
        "neigh br100 10.0.0.5: have 02:00:00:00:00:01, want none",
        "routes table 1001 10.1.0.0/24: have via 192.168.100.1 dev br4001, want none",
    ]
    # a device it cannot name: its index, still no repr
    (line,) = invariant.differences(Entries(), Entries(fdb={(77, MAC): VTEP}))
    assert line == "fdb ifindex 77 02:00:00:00:00:01: have none, want 192.168.100.1"


def test_show_kernel_prints_the_wish_in_words() -> None:
    wish = invariant.differences(Entries(fdb={(VXLAN, MAC): VTEP}), Entries(), NAMES)
    counts = {"fdb": 1, "flood": 0, "neigh": 0, "routes": 0}
    result = {
        "programming": True,
        "in_sync": False,
        "settled": True,
        "wanted": counts,
        "kernel": counts,
        "differences": [],
        "wish_differences": wish,
    }
    shown = show_kernel_table(result)
    assert "fdb vxlan100 02:00:00:00:00:01: have 192.168.100.1, want none" in shown
    assert_readable(shown)


def test_a_repair_names_its_entries_and_counts_the_rest() -> None:
    changes = Changes(
        fdb_set={(VXLAN, bytes([2, 0, 0, 0, 0, n])): bytes([192, 0, 2, 2]) for n in range(1, 7)},
        neigh_del={(BRIDGE, bytes([10, 0, 0, 5])): None},
    )
    text = entry_text.named(changes, NAMES)
    assert text.startswith(
        "fdb vxlan100 02:00:00:00:00:01 -> 192.0.2.2, fdb vxlan100 02:00:00:00:00:02 -> 192.0.2.2"
    )
    assert text.count("fdb vxlan100") == 5 and text.endswith(" and 2 more")
    one = Changes(flood_add={(VXLAN, bytes([192, 0, 2, 3]))})
    assert entry_text.named(one, NAMES) == "flood vxlan100 -> 192.0.2.3"
    event = KernelRepaired(7, 6, 0, 0, 0, 1, text)
    line = format_event({"time": 0, "event": event.kind, **event.fields()})
    assert "kernel repaired" in line and "fdb vxlan100 02:00:00:00:00:01 -> 192.0.2.2" in line
    assert_readable(line)


def test_update_attributes_read_like_frr() -> None:
    attributes = PathAttributes(
        origin=0,
        as_path=AsPath.sequence(65001),
        local_pref=100,
        ext_communities=(RouteTarget.from_text("65000:100"), Encapsulation(8)),
        pmsi_tunnel=PmsiTunnel(0, 6, 100, bytes([192, 0, 2, 2])),
        nexthop=bytes([192, 0, 2, 2]),
    )
    text = attributes.text
    assert text == (
        "nexthop 192.0.2.2, origin IGP, as-path 65001, localpref 100, extcommunity "
        "RT:65000:100 ET:8, pmsi ingress-replication label 100 endpoint 192.0.2.2"
    )
    assert str(attributes) == text and f"{attributes}" == text


def test_no_log_line_carries_bytes() -> None:
    """The renderer's net: fields given bytes, and debug lines, come out in text forms."""
    assert readable(MAC) == "02:00:00:00:00:01" and readable(VTEP) == "192.168.100.1"
    assert readable([VTEP]) == ["192.168.100.1"] and readable(b"\x01\x02") == "0102"
    stream = io.StringIO()
    configure("debug", json_lines=True, stream=stream)
    try:
        structlog.get_logger("test").warning("entry", mac=MAC, vtep=VTEP, vteps=(VTEP,))
        Debugging(peers={"192.0.2.2"}).emit("peer", "192.0.2.2", 0.0, "saw", ip=VTEP)
    finally:
        structlog.reset_defaults()
    text = stream.getvalue()
    assert_readable(text)
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["mac"] == "02:00:00:00:00:01" and first["vteps"] == ["192.168.100.1"]
    assert second["ip"] == "192.168.100.1"


def test_two_daemons_log_and_answer_in_words() -> None:
    """A debugged peer's UPDATEs, doctor, show kernel and every other line either daemon logs:
    scanned for reprs."""
    with loopback_pair(extra_a="debug: {peers: [127.0.0.2]}\n") as (a, b):
        wait_for("Established", lambda: a.state(b.address) == "Established", 30)
        wait_for(
            "a debug line of an UPDATE",
            lambda: any(
                line.get("event") == "update received" and line.get("announced")
                for line in a.log_lines()
            ),
            15,
        )
        updates = [line for line in a.log_lines() if line.get("event") == "update received"]
        assert any("nexthop 127.0.0.2" in line["attributes"] for line in updates), updates
        outputs = [a.log.read_text(), b.log.read_text()]
        commands = [
            ("doctor",),
            ("show", "kernel"),
            ("show", "routes"),
            ("show", "routes", "--detail"),
            ("show", "mac"),
            ("show", "peers"),
            ("show", "vni"),
            ("show", "summary"),
            ("show", "bgp", "neighbors", b.address),
            ("debug", "peer", b.address, "off"),
        ]
        for command in commands:
            outputs.append(a.ctl(*command, check=False).stdout)
            outputs.append(a.ctl(*command, "--json", check=False).stdout)
        findings = json.loads(a.ctl("doctor", "--json", check=False).stdout)["findings"]
        outputs.append(show_findings(findings))
        for text in outputs:
            assert_readable(text)


def test_decode_words_every_message_of_frr_sessions() -> None:
    """`evpnd decode` on both FRR captures: OPENs, UPDATEs, KEEPALIVEs, NOTIFICATIONs."""
    data = Path(__file__).parent / "data"
    for capture in ("frr-8.4-evpn-session.pcap", "frr-8.4-evpn-irb-session.pcap"):
        for stream in read_streams(data / capture):
            result = subprocess.run(
                [sys.executable, "-m", "evpnd.cli", "decode"],
                input=stream.data.hex(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.stdout.startswith(("OPEN", "NOTIFICATION")), result.stdout
            assert "attributes: nexthop " in result.stdout or "UPDATE" not in result.stdout
            assert_readable(result.stdout)
