"""The underlay's decisions (kernel/underlay.py), without root: the inner MTU of a VNI from the
ways to its VTEPs, and what to say when its devices are larger."""

from __future__ import annotations

from evpnd.kernel.underlay import Way, inner_mtu, mtu_problem

V4, V4B = bytes((10, 255, 1, 1)), bytes((10, 255, 2, 1))
V6 = bytes.fromhex("20010db8" + "00" * 11 + "01")


def test_the_inner_mtu_is_the_smallest_way_less_the_overhead() -> None:
    ways = {V4: Way(True, "eth0", 1500), V4B: Way(True, "wg0", 1420), V6: Way(True, "eth1", 1500)}
    assert inner_mtu([V4], ways) == 1450  # IPv4 underlay: 50 bytes
    assert inner_mtu([V6], ways) == 1430  # IPv6: 70
    assert inner_mtu([V4, V4B, V6], ways) == 1370  # the WireGuard way decides
    unreachable = {V4: Way(False, reason="no route")}
    assert inner_mtu([V4], unreachable) is None and inner_mtu([], ways) is None


def test_a_device_larger_than_the_way_is_named_with_its_fix() -> None:
    assert mtu_problem("vxlan100", 1450, "br100", 1450, 1450) is None
    problem = mtu_problem("vxlan100", 1500, "br100", 1370, 1370)
    assert problem == (
        "MTU larger than the underlay carries (vxlan100 1500 > 1370): ip link set vxlan100 mtu 1370"
    )
    assert mtu_problem("vxlan100", 9000, "br100", 9000, None) is None  # nothing to compare
