"""10,000 MACs announced and withdrawn over and over, the session flapping in between: not one
stale FDB or neighbour entry may be left (FRR sometimes leaves one: FRRouting/frr#21473)."""

from __future__ import annotations

import sys
import textwrap

from tests.netns import LAB, lab, wait_for

pytestmark = LAB

CLIENT = textwrap.dedent("""
    import sys, time, socket
    sys.path.insert(0, ".")
    from benchmarks.receive import Client
    from evpnd.bgp.attributes import AsPath, PathAttributes
    from evpnd.bgp.update import end_of_rib, pack_announcements, pack_withdrawals
    from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
    from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
    from evpnd.evpn.routes import MacIpRoute, InclusiveMulticastRoute
    from evpnd.bgp.attributes import PmsiTunnel

    vtep = socket.inet_aton("192.168.70.2")
    attrs = PathAttributes(origin=0, as_path=AsPath(), local_pref=100, nexthop=vtep,
                           ext_communities=(Encapsulation(8), RouteTarget(0, 65000, 100)))
    rd = RouteDistinguisher.from_text("192.168.70.2:1")

    def macs(first, count):
        return [MacIpRoute(rd, 0, (0x020000000000 + i).to_bytes(6, "big"),
                           (0x0A640000 + i).to_bytes(4, "big"), ZERO_ESI, 100)
                for i in range(first, first + count)]

    imet = [InclusiveMulticastRoute(rd, 0, vtep)]
    imet_attrs = PathAttributes(origin=0, as_path=AsPath(), local_pref=100, nexthop=vtep,
                                ext_communities=attrs.ext_communities,
                                pmsi_tunnel=PmsiTunnel(0, 6, 100, vtep))

    def connect():
        # after three short sessions evpnd holds the peer idle (RFC 4271 §8.1.1): it refuses
        # the connection for a second or more, and the peer tries again, as a router would
        deadline = time.monotonic() + 30
        while True:
            try:
                return Client(179, host="192.168.70.1", source="192.168.70.3")
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def session(actions):
        # The pauses are the stimulus, not a wait for a condition: they place the cut in the
        # middle of evpnd's programming, as a flapping peer would.
        client = connect()
        for data, pause in actions:
            client.send(data)
            time.sleep(pause)
        client.close()  # no NOTIFICATION, no graceful restart: everything is dropped

    a, b = macs(0, 10000), macs(5000, 10000)
    join = lambda msgs: b"".join(msgs)
    for round_ in range(3):
        session([
            (join(pack_announcements(imet, imet_attrs)), 0),
            (join(pack_announcements(a, attrs)) + end_of_rib(), 1.0),
            (join(pack_withdrawals(a[:5000])), 0.3),
            (join(pack_announcements(b, attrs)), 0.0),  # cut right after: mid-programming
        ])
        time.sleep(0.5)  # the stimulus again: the next flap half a second later
    import subprocess

    def programmed():
        table = subprocess.run(["bridge", "fdb", "show", "dev", "vxlan100"],
                               capture_output=True, text=True).stdout
        return table.count("extern_learn")

    client = connect()
    client.send(join(pack_announcements(imet, imet_attrs)) + join(pack_announcements(a, attrs)))
    deadline = time.monotonic() + 20
    while programmed() < 20000 and time.monotonic() < deadline:
        time.sleep(0.2)
    print("peak", programmed())  # master and self entry for each of the 10,000 MACs
    client.send(join(pack_withdrawals(a)) + join(pack_withdrawals(imet)))
    time.sleep(1.0)  # the stimulus: the session ends a second after the withdrawal
    client.close()
    print("done")
""")


def test_flapping_leaves_nothing_stale() -> None:
    with lab() as the_lab:
        ns = the_lab.ns("v")
        for address in ("192.168.70.1/32", "192.168.70.3/32"):
            the_lab.run(ns, "ip", "addr", "add", address, "dev", "lo")
        _, bridge = the_lab.vxlan_bridge(ns, 100, "192.168.70.1")
        the_lab.reach(ns, "192.168.70.0/24")  # the VTEP the peer script announces
        the_lab.run(ns, "ip", "addr", "add", "10.100.255.254/16", "dev", bridge)
        evpnd = the_lab.evpnd(
            ns,
            "e",
            """asn: 65000
router_id: 192.168.70.1
listen: {address: 192.168.70.1, port: 179}
graceful_restart: {restart_time: 1}
listen_ranges: [{prefix: 192.168.70.0/24, remote_as: 65000}]
""",
        )
        out = the_lab.run(ns, sys.executable, "-c", CLIENT)
        assert "done" in out and "peak 20000" in out, out

        def leftovers() -> tuple[int, int, int]:
            table = the_lab.run(ns, "bridge", "fdb", "show", "dev", "vxlan100")
            fdb = sum(1 for line in table.splitlines() if "extern_learn" in line)
            flood = sum(1 for line in table.splitlines() if "00:00:00:00:00:00" in line)
            neigh = the_lab.run(ns, "ip", "neigh", "show", "dev", bridge)
            return fdb, flood, neigh.count("extern_learn")

        assert wait_for("a clean kernel", lambda: leftovers() == (0, 0, 0), 60)
        assert not [r for r in evpnd.routes() if r["source"] != "local"]
