"""evpnd with evpnd in network namespaces: route reflection, graceful restart, TCP MD5, listen
ranges, and malformed UPDATEs from a hand-driven client."""

from __future__ import annotations

import json
import signal
import sys

from tests.netns import LAB, lab, tcp_counter, wait_for
from tests.test_malformed import GOOD, ORIGIN, ROUTE, attr, mp_reach, update

pytestmark = LAB


def vtep(router_id: str, neighbors: str, extra: str = "", vni: bool = True) -> str:
    """A VTEP with VNI 100 and one static MAC/IP derived from the router id's last byte."""
    last = int(router_id.split(".")[-1])
    mac = f"02:00:00:00:{last % 100:02d}:01"
    vnis = ""
    if vni:
        vnis = f"""evpn:
  vnis:
    - vni: 100
      vtep_ip: {router_id}
      macs: [{{mac: "{mac}", ip: 10.0.0.{last}}}]
"""
    return f"""asn: 65000
router_id: {router_id}
listen: {{address: "{router_id}", port: 179}}
graceful_restart: {{restart_time: 30}}
neighbors:
{neighbors}
{extra}
{vnis}"""


def test_route_reflector_between_two_vteps() -> None:
    with lab() as the_lab:
        a, b, rr = the_lab.ns("a"), the_lab.ns("b"), the_lab.ns("rr")
        the_lab.link(a, "10.20.1.1/24", rr, "10.20.1.254/24")
        the_lab.link(b, "10.20.2.1/24", rr, "10.20.2.254/24")
        reflector = the_lab.evpnd(
            rr,
            "rr",
            vtep(
                "10.20.1.254",
                """
  - {address: 10.20.1.1, remote_as: 65000, route_reflector_client: true}
  - {address: 10.20.2.1, remote_as: 65000, route_reflector_client: true}""",
                vni=False,
            ).replace('address: "10.20.1.254"', 'address: "::"'),
        )
        one = the_lab.evpnd(
            a, "a", vtep("10.20.1.1", "  - {address: 10.20.1.254, remote_as: 65000}")
        )
        two = the_lab.evpnd(
            b, "b", vtep("10.20.2.1", "  - {address: 10.20.2.254, remote_as: 65000}")
        )
        for daemon, peer in ((one, "10.20.1.254"), (two, "10.20.2.254")):
            wait_for("Established", lambda d=daemon, p=peer: d.peer_state(p) == "Established", 30)
        routes = wait_for(
            "b to learn a's routes through the reflector",
            lambda: [r for r in two.routes() if r["rd"].startswith("10.20.1.1:")],
            30,
        )
        texts = {r["text"] for r in routes}
        assert "[3]:[0]:[32]:[10.20.1.1]" in texts
        assert "[2]:[0]:[48]:[02:00:00:00:01:01]:[32]:[10.0.0.1]" in texts
        for route in routes:
            assert route["source"] == "10.20.2.254" and route["nexthop"] == "10.20.1.1"
        assert {p["address"]: p["routes_received"] for p in reflector.ctl("show", "peers")} == {
            "10.20.1.1": 2,
            "10.20.2.1": 2,
        }


def test_graceful_restart_keeps_routes_across_a_restart() -> None:
    with lab() as the_lab:
        a, b = the_lab.ns("a"), the_lab.ns("b")
        the_lab.link(a, "10.21.0.1/24", b, "10.21.0.2/24")
        one = the_lab.evpnd(
            a,
            "a",
            vtep("10.21.0.1", "  - {address: 10.21.0.2, remote_as: 65000, connect_retry: 2}"),
        )
        two = the_lab.evpnd(
            b,
            "b",
            vtep("10.21.0.2", "  - {address: 10.21.0.1, remote_as: 65000, connect_retry: 2}"),
        )

        def from_a() -> list[dict[str, object]]:
            return [r for r in two.routes() if r["source"] == "10.21.0.1"]

        wait_for("b to learn a's routes", lambda: len(from_a()) == 2, 30)
        one.stop(signal.SIGKILL)
        stale = wait_for(
            "b to keep them as stale",
            lambda: (r := from_a()) and all(x["stale"] for x in r) and r,
            10,
        )
        assert len(stale) == 2  # kept through the outage (restart_time is 30 s)
        one.start()
        wait_for(
            "fresh routes after the restart",
            lambda: (r := from_a()) and len(r) == 2 and not any(x["stale"] for x in r),
            30,
        )


def test_tcp_md5() -> None:
    with lab() as the_lab:
        a, b, c = the_lab.ns("a"), the_lab.ns("b"), the_lab.ns("c")
        the_lab.link(a, "10.22.0.1/24", b, "10.22.0.2/24")
        the_lab.link(a, "10.23.0.1/24", c, "10.23.0.3/24")
        one = the_lab.evpnd(
            a,
            "a",
            vtep(
                "10.22.0.1",
                """
  - {address: 10.22.0.2, remote_as: 65000, password: right, connect_retry: 1}
  - {address: 10.23.0.3, remote_as: 65000, password: right, connect_retry: 1}""",
            ).replace('address: "10.22.0.1"', 'address: "::"'),
        )
        two = the_lab.evpnd(
            b,
            "b",
            vtep(
                "10.22.0.2",
                "  - {address: 10.22.0.1, remote_as: 65000, password: right, connect_retry: 1}",
            ),
        )
        three = the_lab.evpnd(
            c,
            "c",
            vtep(
                "10.23.0.3",
                "  - {address: 10.23.0.1, remote_as: 65000, password: wrong, connect_retry: 1}",
            ),
        )
        wait_for("the matching pair", lambda: two.peer_state("10.22.0.1") == "Established", 30)
        # Both ends of the mismatched pair have tried again and again, and each time the
        # kernel dropped the other's segments for their signature (its own counter says so).
        wait_for(
            "repeated MD5 failures",
            lambda: (
                tcp_counter(the_lab, a, "TCPMD5Failure") >= 3
                and tcp_counter(the_lab, c, "TCPMD5Failure") >= 3
            ),
            30,
        )
        for daemon, address in ((three, "10.23.0.1"), (one, "10.23.0.3")):
            assert daemon.peer_state(address) not in ("OpenSent", "OpenConfirm", "Established")
            log = daemon.log.read_text().splitlines()
            assert not [x for x in log if "session established" in x and address in x]
        assert tcp_counter(the_lab, b, "TCPMD5Failure") == 0


def test_a_listen_range_password_guards_the_whole_range() -> None:
    """MD5 per prefix (TCP_MD5SIG_EXT): a spoke in the range with the range's password gets a
    session; one in the range without it never completes the handshake (the kernel drops
    its segments for their missing signature, and says so)."""
    with lab() as the_lab:
        a, b, c = the_lab.ns("a"), the_lab.ns("b"), the_lab.ns("c")
        the_lab.link(a, "10.26.0.1/24", b, "10.26.0.2/24")
        the_lab.link(a, "10.26.1.1/24", c, "10.26.1.3/24")
        hub = the_lab.evpnd(
            a,
            "a",
            vtep(
                "10.26.0.1",
                "  []",
                extra="""listen_ranges:
  - {prefix: 10.26.0.0/16, remote_as: 65000, password: ranged}""",
            ).replace('address: "10.26.0.1"', 'address: "::"'),
        )
        signed = the_lab.evpnd(
            b,
            "b",
            vtep(
                "10.26.0.2",
                "  - {address: 10.26.0.1, remote_as: 65000, password: ranged, connect_retry: 1}",
            ),
        )
        unsigned = the_lab.evpnd(
            c,
            "c",
            vtep("10.26.1.3", "  - {address: 10.26.1.1, remote_as: 65000, connect_retry: 1}"),
        )
        wait_for("the signed spoke", lambda: signed.peer_state("10.26.0.1") == "Established", 30)
        wait_for(
            "the unsigned spoke's segments dropped",
            lambda: tcp_counter(the_lab, a, "TCPMD5NotFound") >= 3,
            30,
        )
        assert unsigned.peer_state("10.26.1.1") not in ("OpenSent", "OpenConfirm", "Established")
        assert [p["address"] for p in hub.ctl("show", "peers")] == ["10.26.0.2"]


def test_listen_range_accepts_an_unnamed_peer_and_refuses_strangers() -> None:
    with lab() as the_lab:
        a, b, c = the_lab.ns("a"), the_lab.ns("b"), the_lab.ns("c")
        the_lab.link(a, "10.24.0.1/24", b, "10.24.0.2/24")
        the_lab.link(a, "10.25.0.1/24", c, "10.25.0.3/24")
        hub = the_lab.evpnd(
            a,
            "a",
            vtep(
                "10.24.0.1",
                "  []",
                extra="""listen_ranges:
  - {prefix: 10.24.0.0/24, remote_as: 65000}""",
            ).replace('address: "10.24.0.1"', 'address: "::"'),
        )
        spoke = the_lab.evpnd(
            b,
            "b",
            vtep("10.24.0.2", "  - {address: 10.24.0.1, remote_as: 65000, connect_retry: 1}"),
        )
        stranger = the_lab.evpnd(
            c,
            "c",
            vtep("10.25.0.3", "  - {address: 10.25.0.1, remote_as: 65000, connect_retry: 1}"),
        )
        wait_for("the spoke", lambda: spoke.peer_state("10.24.0.1") == "Established", 30)
        peers = hub.ctl("show", "peers")
        assert [(p["address"], p["dynamic"], p["state"]) for p in peers] == [
            ("10.24.0.2", True, "Established")
        ]
        wait_for("the stranger refused", lambda: "connection refused" in hub.log.read_text(), 15)
        assert stranger.peer_state("10.25.0.1") != "Established"


def test_max_routes_ends_the_session_with_a_cease() -> None:
    with lab() as the_lab:
        a, c = the_lab.ns("a"), the_lab.ns("c")
        the_lab.link(a, "10.28.0.1/24", c, "10.28.0.3/24")
        the_lab.evpnd(
            a,
            "a",
            vtep(
                "10.28.0.1",
                "  []",
                extra="""listen_ranges:
  - {prefix: 10.28.0.0/24, remote_as: 65000, max_routes: 1}""",
            ),
        )
        out = the_lab.run(
            c,
            sys.executable,
            "-m",
            "tests.raw_client",
            "10.28.0.1",
            "179",
            "65000",
            "10.28.0.3",
            update(GOOD).hex(),
        )
        (answer,) = json.loads(out)["report"]
        assert {"notification": [6, 1]} in answer  # RFC 4486: maximum number of prefixes


def test_malformed_updates_on_the_wire_leave_other_sessions_alone() -> None:
    with lab() as the_lab:
        a, b, c = the_lab.ns("a"), the_lab.ns("b"), the_lab.ns("c")
        the_lab.link(a, "10.26.0.1/24", b, "10.26.0.2/24")
        the_lab.link(a, "10.27.0.1/24", c, "10.27.0.3/24")
        one = the_lab.evpnd(
            a,
            "a",
            vtep(
                "10.26.0.1",
                "  - {address: 10.26.0.2, remote_as: 65000}",
                extra="""listen_ranges:
  - {prefix: 10.27.0.0/24, remote_as: 65000}""",
            ).replace('address: "10.26.0.1"', 'address: "::"'),
        )
        the_lab.evpnd(b, "b", vtep("10.26.0.2", "  - {address: 10.26.0.1, remote_as: 65000}"))
        wait_for("a-b", lambda: one.peer_state("10.26.0.2") == "Established", 30)
        uptime_before = next(p for p in one.ctl("show", "peers") if p["address"] == "10.26.0.2")[
            "uptime_s"
        ]
        good = update(GOOD)
        treat_as_withdraw = update(mp_reach(ROUTE) + ORIGIN)  # AS_PATH missing
        reset = update(GOOD + attr(0x40, 99, b"abc"))  # unknown well-known attribute
        out = the_lab.run(
            c,
            sys.executable,
            "-m",
            "tests.raw_client",
            "10.27.0.1",
            "179",
            "65000",
            "10.27.0.3",
            good.hex(),
            treat_as_withdraw.hex(),
            reset.hex(),
        )
        report = json.loads(out)["report"]
        assert report[0] == [] and report[1] == []  # no NOTIFICATION: the session survived
        assert {"notification": [3, 2]} in report[2] and "closed" in report[2]
        log = (one.home / "evpnd.log").read_text()
        assert "missing AS_PATH" in log and "treat_as_withdraw" in log
        assert ROUTE.text in log  # the route the error withdrew is named
        assert "unrecognized well-known attribute 99" in log
        # the other session never noticed
        peer = next(p for p in one.ctl("show", "peers") if p["address"] == "10.26.0.2")
        assert peer["state"] == "Established" and peer["uptime_s"] >= uptime_before
        # and nothing of the broken peer is left
        assert not [r for r in one.routes() if r["source"] == "10.27.0.3"]


def test_reload_removes_and_adds_peers() -> None:
    with lab() as the_lab:
        a, b = the_lab.ns("a"), the_lab.ns("b")
        the_lab.link(a, "10.29.0.1/24", b, "10.29.0.2/24")
        neighbor = "  - {address: 10.29.0.2, remote_as: 65000, connect_retry: 1}"
        one = the_lab.evpnd(a, "a", vtep("10.29.0.1", neighbor))
        two = the_lab.evpnd(
            b,
            "b",
            vtep("10.29.0.2", "  - {address: 10.29.0.1, remote_as: 65000, connect_retry: 1}"),
        )
        wait_for("up", lambda: two.peer_state("10.29.0.1") == "Established", 30)
        config = one.home / "evpnd.yaml"
        original = config.read_text()
        config.write_text(original.replace(neighbor, "  []"))
        one.reload()
        wait_for(
            "b to see the session go", lambda: two.peer_state("10.29.0.1") != "Established", 10
        )
        assert one.ctl("show", "peers") == []
        assert not [r for r in two.routes() if r["source"] == "10.29.0.1"]  # dropped at once
        assert "hard reset" in two.log.read_text()  # RFC 8538: not a graceful end
        config.write_text(original)
        one.reload()
        wait_for("up again", lambda: two.peer_state("10.29.0.1") == "Established", 30)


PIPELINED = """
import socket, sys
sys.path.insert(0, ".")
from evpnd.bgp.negotiation import LocalSettings
from evpnd.bgp.messages import Keepalive
from tests.test_malformed import GOOD, update
sock = socket.create_connection(("10.32.0.1", 179), source_address=("10.33.0.3", 0), timeout=10)
opening = LocalSettings(65000, "10.33.0.3", graceful_restart_time=0).open_message().encode()
sock.sendall(opening + Keepalive().encode() + update(GOOD))
try:
    data = sock.recv(4096)
except OSError:
    data = b""
print("closed before an OPEN" if not data else f"got {len(data)} bytes")
"""


def test_gtsm_accepts_one_hop_and_refuses_two() -> None:
    """RFC 5082: with ttl_security_hops 1 both send TTL 255 and accept only 255, so a peer one
    router further away (TTL 254 on arrival) never gets a session."""
    with lab() as the_lab:
        a, b, r, c = the_lab.ns("a"), the_lab.ns("b"), the_lab.ns("r"), the_lab.ns("c")
        the_lab.link(a, "10.31.0.1/24", b, "10.31.0.2/24")
        the_lab.link(a, "10.32.0.1/24", r, "10.32.0.254/24")
        the_lab.link(r, "10.33.0.254/24", c, "10.33.0.3/24")
        the_lab.run(r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        the_lab.run(a, "ip", "route", "add", "10.33.0.0/24", "via", "10.32.0.254")
        the_lab.run(c, "ip", "route", "add", "10.32.0.0/24", "via", "10.33.0.254")
        gtsm = "ttl_security_hops: 1, connect_retry: 1"
        one = the_lab.evpnd(
            a,
            "a",
            vtep(
                "10.31.0.1",
                f"""
  - {{address: 10.31.0.2, remote_as: 65000, {gtsm}}}
  - {{address: 10.33.0.3, remote_as: 65000, {gtsm}}}""",
            ).replace('address: "10.31.0.1"', 'address: "::"'),
        )
        the_lab.evpnd(
            b, "b", vtep("10.31.0.2", f"  - {{address: 10.31.0.1, remote_as: 65000, {gtsm}}}")
        )
        far = the_lab.evpnd(
            c, "c", vtep("10.33.0.3", f"  - {{address: 10.32.0.1, remote_as: 65000, {gtsm}}}")
        )
        wait_for("the direct neighbour", lambda: one.peer_state("10.31.0.2") == "Established", 30)
        # The far peer's segments arrived with TTL 254 and the kernel dropped them (its own
        # counter says so), more than once: it has tried, and been refused, repeatedly.
        wait_for(
            "segments dropped for their TTL",
            lambda: (
                tcp_counter(the_lab, a, "TCPMinTTLDrop") + tcp_counter(the_lab, c, "TCPMinTTLDrop")
                >= 3
            ),
            30,
        )
        assert one.peer_state("10.33.0.3") not in ("OpenSent", "OpenConfirm", "Established")
        assert far.peer_state("10.32.0.1") not in ("OpenSent", "OpenConfirm", "Established")
        # A raw peer two hops away sends OPEN, KEEPALIVE and an UPDATE in its first flight,
        # without GTSM of its own: refused on the SYN's TTL before a byte is read.
        far.stop()
        out = the_lab.run(c, sys.executable, "-c", PIPELINED, check=False)
        assert "closed before an OPEN" in out, out
        log = one.log.read_text()
        assert "SYN arrived with TTL" in log and "below 255" in log
        assert not [x for x in log.splitlines() if "session established" in x and "10.33" in x]
        assert not [r for r in one.routes() if r["source"] == "10.33.0.3"]
