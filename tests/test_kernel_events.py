"""The in-kernel filter on evpnd's event socket, against the real kernel: our own writes'
notifications never reach us, everyone else's do."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.netns import LAB, ROOT, lab

pytestmark = LAB

PROBE = textwrap.dedent(
    """
    import select, socket, subprocess, sys, time
    from evpnd.kernel import neighbours as nl
    from evpnd.kernel.netlink import Events

    def ifindex(name):
        return int(open(f"/sys/class/net/{name}/ifindex").read())

    def run(*args):
        subprocess.run(args, check=True)

    mode = sys.argv[1]
    events = Events()
    ports = frozenset({ifindex("vxlan100"), ifindex("br100")})
    events.ignore_own(
        ports, pid=0x7FFFFFF0, writing=mode != "between", deletions=mode == "deletions"
    )
    run("bridge", "fdb", "add", "02:00:00:00:00:01", "dev", "vxlan100", "dst", "192.0.2.2",
        "self", "extern_learn")
    run("bridge", "fdb", "add", "02:00:00:00:00:02", "dev", "vxlan100", "dst", "192.0.2.2",
        "self")
    run("ip", "neigh", "replace", "10.0.100.9", "lladdr", "02:00:00:00:00:09", "dev", "br100",
        "extern_learn", "nud", "noarp")
    run("ip", "neigh", "replace", "10.0.100.8", "lladdr", "02:00:00:00:00:08", "dev", "br100",
        "nud", "reachable")
    run("bridge", "fdb", "del", "02:00:00:00:00:01", "dev", "vxlan100", "dst", "192.0.2.2",
        "self")
    # A last change that always passes the filter: once it is read, everything before it has
    # been (one socket, one queue, in order), so what is missing was dropped by the filter.
    run("bridge", "fdb", "add", "02:00:00:00:00:ff", "dev", "vxlan100", "dst", "192.0.2.2",
        "self")
    lines = []
    deadline = time.monotonic() + 10
    while "new 02:00:00:00:00:ff" not in lines and time.monotonic() < deadline:
        select.select([events], [], [], 1)
        seen, _, _, _ = events.read()
        for n in seen:
            kind = "new" if n.kind == nl.RTM_NEWNEIGH else "del"
            what = (n.mac.hex(":") if n.family == nl.AF_BRIDGE
                    else socket.inet_ntop(n.family, n.dst))
            lines.append(f"{kind} {what}")
    print("\\n".join(lines))
    """
)


@pytest.mark.parametrize("mode", ["writing", "deletions", "between"])
def test_own_notifications_are_dropped_in_the_kernel(mode: str) -> None:
    """While evpnd writes (`writing`, and `deletions` for a bulk removal) the notifications
    of new extern_learn entries on its ports are dropped, whoever made them; between writes
    (`between`) they pass: someone else's entry there is news."""
    with lab() as the_lab:
        ns = the_lab.ns("ev")
        the_lab.vxlan_bridge(ns, 100, "192.0.2.1")
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", PROBE,
             mode],
            capture_output=True, text=True, cwd=ROOT, timeout=30,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        lines = set(out.stdout.split("\n")) - {""}
        # new extern_learn entries on the managed ports (FDB and SVI): dropped while writing
        assert ("new 02:00:00:00:00:01" in lines) is (mode == "between")
        assert ("new 10.0.100.9" in lines) is (mode == "between")
        assert "new 02:00:00:00:00:02" in lines and "new 10.0.100.8" in lines
        # an extern_learn entry removed: passes, unless removals are being filtered too
        assert ("del 02:00:00:00:00:01" in lines) is (mode != "deletions")


ROUTES_PROBE = textwrap.dedent(
    """
    import select, subprocess, time
    from evpnd.kernel.netlink import Events

    def run(*args):
        subprocess.run(args, check=True)

    events = Events()
    events.ignore_own(frozenset(), pid=0x7FFFFFF0)

    def route_changed_before(address):
        # An address added after the route change is a marker: once its event is read, the
        # route's notification (if any passed) has been read too (one socket, in order).
        run("ip", "addr", "add", address, "dev", "lo")
        changed = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            select.select([events], [], [], 1)
            _, marker, _, routes = events.read(route_protocol=238)
            changed |= routes
            if marker:
                return changed
        raise SystemExit("the marker event never came")

    run("ip", "route", "add", "10.77.0.0/16", "dev", "lo", "proto", "bgp")
    print("others", route_changed_before("10.99.0.1/32"))
    run("ip", "route", "add", "10.66.0.0/16", "dev", "lo", "proto", "238")
    print("ours", route_changed_before("10.99.0.2/32"))
    """
)


def test_only_our_routes_changes_are_seen() -> None:
    with lab() as the_lab:
        ns = the_lab.ns("rt")
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", ROUTES_PROBE],
            capture_output=True, text=True, cwd=ROOT, timeout=30,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.split("\n")[:2] == ["others False", "ours True"]


AUDIT_PROBE = textwrap.dedent(
    """
    import socket, subprocess
    from evpnd.kernel.audit import Questions
    from evpnd.kernel.netlink import Prober

    def ifindex(name):
        return int(open(f"/sys/class/net/{name}/ifindex").read())

    def run(*args):
        subprocess.run(args, check=True)

    vx, br, local = ifindex("vxlan100"), ifindex("br100"), ifindex("veth-l")
    def mac(n):
        return bytes.fromhex(f"0200000000{n:02x}")
    # 1: both halves, as evpnd writes them; 2: the vxlan half only; 3: the bridge half only;
    # 4: not extern_learn (an operator's static entry); 5: on a local port; 6: nowhere
    run("bridge", "fdb", "add", "02:00:00:00:00:01", "dev", "vxlan100", "dst", "192.0.2.2",
        "self", "master", "extern_learn")
    run("bridge", "fdb", "add", "02:00:00:00:00:02", "dev", "vxlan100", "dst", "192.0.2.3",
        "self", "extern_learn")
    run("bridge", "fdb", "add", "02:00:00:00:00:03", "dev", "vxlan100", "master",
        "extern_learn")
    run("bridge", "fdb", "add", "02:00:00:00:00:04", "dev", "vxlan100", "dst", "192.0.2.4",
        "self")
    run("bridge", "fdb", "add", "02:00:00:00:00:05", "dev", "veth-l", "master", "static")
    run("ip", "neigh", "replace", "10.0.100.9", "lladdr", "02:00:00:00:00:09", "dev", "br100",
        "extern_learn", "nud", "noarp")
    run("ip", "neigh", "replace", "10.0.100.8", "lladdr", "02:00:00:00:00:08", "dev", "br100",
        "nud", "reachable")
    ips = [socket.inet_aton(a) for a in ("10.0.100.9", "10.0.100.8", "10.0.100.7")]
    questions = Questions(
        tuple((vx, mac(n)) for n in range(1, 7)), tuple((br, ip) for ip in ips)
    )
    # many times over: answers must come back in order, across PROBE_BATCH boundaries
    big = Questions(questions.fdb * 3000, ())
    assert len(big.requests()) > 20_000
    prober = Prober()
    probed = questions.read(prober.ask(questions.requests()))
    again = big.read(prober.ask(big.requests()))
    assert again.fdb == probed.fdb, (again.fdb, probed.fdb)
    for (_, m), (vtep, bridge) in probed.fdb.items():
        print(m[-1], socket.inet_ntoa(vtep) if vtep else None, bridge)
    for (_, ip), found in probed.neigh.items():
        print(socket.inet_ntoa(ip), found.hex(":") if found else None)
    """
)


def test_entries_are_read_back_one_by_one() -> None:
    """The audit's requests against the real kernel: each FDB half is ours only when it is
    extern_learn on the vxlan port; an SVI neighbour only when extern_learn."""
    with lab() as the_lab:
        ns = the_lab.ns("au")
        the_lab.vxlan_bridge(ns, 100, "192.0.2.1")
        the_lab.run(ns, "ip", "link", "add", "veth-l", "type", "veth", "peer", "veth-r")
        the_lab.run(ns, "ip", "link", "set", "veth-l", "master", "br100", "up")
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", AUDIT_PROBE],
            capture_output=True, text=True, cwd=ROOT, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.split("\n") == [
            "1 192.0.2.2 True",
            "2 192.0.2.3 False",
            "3 None True",
            "4 None False",
            "5 None False",
            "6 None False",
            "10.0.100.9 02:00:00:00:00:09",
            "10.0.100.8 None",
            "10.0.100.7 None",
            "",
        ]
