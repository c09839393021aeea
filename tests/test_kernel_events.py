"""The in-kernel filter on evpnd's event socket, against the real kernel: our own writes'
notifications never reach us, everyone else's do."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.netns import ROOT, lab

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

PROBE = textwrap.dedent(
    """
    import socket, subprocess, sys, time
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
    time.sleep(0.2)
    seen, _, _, _ = events.read()
    for n in seen:
        kind = "new" if n.kind == nl.RTM_NEWNEIGH else "del"
        what = n.mac.hex(":") if n.family == nl.AF_BRIDGE else socket.inet_ntop(n.family, n.dst)
        print(kind, what)
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


def test_filter_program_is_plain_bpf() -> None:
    from evpnd.kernel.netlink import MAX_FILTERED_PORTS, own_events_filter

    program = own_events_filter(frozenset(range(1, 11)), 1234)
    assert len(program) % 8 == 0 and len(program) // 8 == 18 + 2 * 10
    big = own_events_filter(frozenset(range(1, MAX_FILTERED_PORTS + 1)), 1)
    assert len(big) // 8 <= 4096  # the kernel's limit for classic BPF


ROUTES_PROBE = textwrap.dedent(
    """
    import subprocess, time
    from evpnd.kernel.netlink import Events

    def run(*args):
        subprocess.run(args, check=True)

    events = Events()
    events.ignore_own(frozenset(), pid=0x7FFFFFF0)
    run("ip", "route", "add", "10.77.0.0/16", "dev", "lo", "proto", "bgp")
    time.sleep(0.1)
    print("others", events.read(route_protocol=238)[3])
    run("ip", "route", "add", "10.66.0.0/16", "dev", "lo", "proto", "238")
    time.sleep(0.1)
    print("ours", events.read(route_protocol=238)[3])
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
