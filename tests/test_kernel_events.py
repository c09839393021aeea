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

    deletions = sys.argv[1] == "deletions"
    events = Events()
    ports = frozenset({ifindex("vxlan100"), ifindex("br100")})
    events.ignore_own(ports, pid=0x7FFFFFF0, deletions=deletions)
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


@pytest.mark.parametrize("deletions", [False, True])
def test_own_notifications_are_dropped_in_the_kernel(deletions: bool) -> None:
    with lab() as the_lab:
        ns = the_lab.ns("ev")
        the_lab.vxlan_bridge(ns, 100, "192.0.2.1")
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", PROBE,
             "deletions" if deletions else "keep"],
            capture_output=True, text=True, cwd=ROOT, timeout=30,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        lines = set(out.stdout.split("\n")) - {""}
        # new extern_learn entries on the managed ports: dropped; the others pass
        assert "new 02:00:00:00:00:01" not in lines and "new 10.0.100.9" not in lines
        assert "new 02:00:00:00:00:02" in lines and "new 10.0.100.8" in lines
        # an extern_learn entry removed: passes, unless removals are being filtered too
        assert ("del 02:00:00:00:00:01" in lines) is not deletions


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
