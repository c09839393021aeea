"""`update_source` as an interface name (FRR's `update-source lo`): an eBGP multihop session
between two loopback addresses, the underlay between them a /30. The session's local address
is lo's global address — the /32 loopback, not 127.0.0.1."""

from __future__ import annotations

from tests.netns import LAB, lab, wait_for

pytestmark = LAB


def test_a_session_from_the_loopback_by_interface_name() -> None:
    with lab() as the_lab:
        a, b = the_lab.ns("a"), the_lab.ns("b")
        the_lab.link(a, "10.91.0.1/30", b, "10.91.0.2/30")
        the_lab.run(a, "ip", "addr", "add", "10.255.0.1/32", "dev", "lo")
        the_lab.run(b, "ip", "addr", "add", "10.255.1.1/32", "dev", "lo")
        the_lab.run(a, "ip", "route", "add", "10.255.1.1/32", "via", "10.91.0.2")
        the_lab.run(b, "ip", "route", "add", "10.255.0.1/32", "via", "10.91.0.1")
        one = the_lab.evpnd(
            a,
            "a",
            """asn: 65000
router_id: 10.255.0.1
listen: {address: 10.255.0.1, port: 179}
neighbors:
  - {address: 10.255.1.1, remote_as: 65001, multihop: 2, update_source: lo, connect_retry: 1}
""",
        )
        two = the_lab.evpnd(
            b,
            "b",
            """asn: 65001
router_id: 10.255.1.1
listen: {address: 10.255.1.1, port: 179}
neighbors:
  - {address: 10.255.0.1, remote_as: 65000, multihop: 2, passive: true}
""",
        )
        # b accepts only its configured neighbour's address: the session comes from lo's /32
        wait_for("the session", lambda: two.peer_state("10.255.0.1") == "Established", 30)
        assert one.peer_state("10.255.1.1") == "Established"
