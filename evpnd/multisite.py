"""`evpnd demo --multisite`: two sites joined only by WireGuard, built in namespaces.

Site A (AS 65000): VTEPs a1 and a2 on a LAN, loopbacks 10.255.0.1 and .2; site B (AS 65001):
b1, loopback 10.255.1.1. a1 and b1 run a WireGuard tunnel (wireguard-go, the userspace
implementation; 10.200.0.1/30 - .2/30) over an "internet" link, and route the other site's
loopbacks into it. eBGP multihop between a1 and b1 from their loopbacks (`update_source:
lo`), iBGP between a1 and a2; VNI 100 spans the sites with a host behind each VTEP.

The vxlan devices start at 1500 bytes, as a device made without `dev` does: the demo shows
`evpnctl doctor` naming the tunnel's MTU, applies its fix, and then pings. The topology is
the one tests/test_multisite.py checks."""

from __future__ import annotations

import base64
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from evpnd.control.client import request
from evpnd.control.tables import show_findings
from evpnd.demo import (
    DemoError,
    Fabric,
    Vtep,
    _sh,
    _vxlan_bridge,
    _wait,
    add_host,
    launch_evpnd,
)
from evpnd.demo import run as run_demo

VNI = 100
SITES = (("a1", 65000, "10.255.0.1"), ("a2", 65000, "10.255.0.2"), ("b1", 65001, "10.255.1.1"))
#: who peers with whom: eBGP multihop between the sites over the tunnel, iBGP inside site A
SESSIONS = {"a1": ("a2", "b1"), "a2": ("a1",), "b1": ("a1",)}


def available() -> str | None:
    """Why the multi-site demo cannot run here, or None."""
    if not (shutil.which("wireguard-go") and shutil.which("wg")):
        return "needs wireguard-go and wireguard-tools (apt install wireguard-go wireguard-tools)"
    if not os.path.exists("/dev/net/tun"):
        return "needs /dev/net/tun (wireguard-go makes its device there)"
    return None


Run = Callable[..., str]


def _tunnel(
    run: Run, processes: list[subprocess.Popen[bytes]], directory: Path, ns: str, name: str,
    address: str, port: int,
) -> str:  # fmt: skip
    """A wireguard-go device; its public key. Its name is unique: the control socket is
    /var/run/wireguard/NAME.sock, shared by every namespace."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", ns, "wireguard-go", "-f", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1"},
    )
    processes.append(process)
    _wait(f"{name}", lambda: os.path.exists(f"/var/run/wireguard/{name}.sock"), 10)
    key = base64.b64encode(os.urandom(32)).decode()  # a Curve25519 private key: 32 bytes
    key_file = directory / f"{name}.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    run(ns, "wg", "set", name, "private-key", str(key_file), "listen-port", str(port))
    run(ns, "ip", "addr", "add", address, "dev", name)
    run(ns, "ip", "link", "set", name, "up")
    answer = subprocess.run(["wg", "pubkey"], input=key, capture_output=True, text=True)
    if answer.returncode != 0:
        raise DemoError(f"wg pubkey: {answer.stderr.strip()}")
    return answer.stdout.strip()


def join_sites(
    run: Run, processes: list[subprocess.Popen[bytes]], directory: Path, tag: str,
    a1: str, a2: str, b1: str,
) -> tuple[str, str]:  # fmt: skip
    """The underlay of the two sites between namespaces a1, a2 (site A) and b1 (site B), whose
    loopbacks are 10.255.0.1, .2 and 10.255.1.1: site A's LAN, the internet link, the
    WireGuard tunnel over it, and the routes to the other site's loopbacks through it. The
    names of the tunnel's two devices."""
    for left, right, ns_left, ns_right, net, length in (
        (f"evd{tag}l1", f"evd{tag}l2", a1, a2, "10.10.0", 24),  # site A's LAN
        (f"evd{tag}i1", f"evd{tag}i2", a1, b1, "198.51.100", 30),  # the internet
    ):
        _sh("ip", "link", "add", left, "netns", ns_left, "type", "veth", "peer", "name", right,
            "netns", ns_right)  # fmt: skip
        for ns, dev, host in ((ns_left, left, 1), (ns_right, right, 2)):
            run(ns, "ip", "addr", "add", f"{net}.{host}/{length}", "dev", dev)
            run(ns, "ip", "link", "set", dev, "up")
    wg_a, wg_b = f"wg{tag}a", f"wg{tag}b"
    key_a = _tunnel(run, processes, directory, a1, wg_a, "10.200.0.1/30", 51820)
    key_b = _tunnel(run, processes, directory, b1, wg_b, "10.200.0.2/30", 51821)
    run(a1, "wg", "set", wg_a, "peer", key_b, "endpoint", "198.51.100.2:51821",
        "allowed-ips", "10.200.0.2/32,10.255.1.0/24")  # fmt: skip
    run(b1, "wg", "set", wg_b, "peer", key_a, "endpoint", "198.51.100.1:51820",
        "allowed-ips", "10.200.0.1/32,10.255.0.0/24")  # fmt: skip
    run(a1, "ip", "route", "add", "10.255.1.0/24", "dev", wg_a)
    run(a1, "ip", "route", "add", "10.255.0.2/32", "via", "10.10.0.2")
    run(a1, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    run(a2, "ip", "route", "add", "10.255.0.0/16", "via", "10.10.0.1")
    run(b1, "ip", "route", "add", "10.255.0.0/24", "dev", wg_b)
    return wg_a, wg_b


def _config(vtep: Vtep, asn: int, peers: list[tuple[str, int]]) -> str:
    neighbors = "\n".join(
        f"  - {{address: {address}, remote_as: {remote_as}, update_source: lo, "
        f"connect_retry: 1{', multihop: 2' if remote_as != asn else ''}}}"
        for address, remote_as in peers
    )
    return f"""# written by `evpnd demo --multisite`
asn: {asn}
router_id: {vtep.address}
hostname: {vtep.name}
neighbors:
{neighbors}
evpn: {{vtep_ip: {vtep.address}}}
control_socket: {vtep.socket}
state_dir: {vtep.home}
"""


def build(fabric: Fabric, say: Callable[[str], None]) -> None:
    vteps: dict[str, Vtep] = {}
    for name, _, loopback in SITES:
        home = fabric.dir / name
        home.mkdir()
        vtep = Vtep(name, fabric.ns(name), loopback, "evpnd", home)
        vtep.sessions = len(SESSIONS[name])
        vteps[name] = vtep
        fabric.vteps.append(vtep)
        fabric.run(vtep.namespace, "ip", "addr", "add", f"{loopback}/32", "dev", "lo")
    a1, a2, b1 = (vteps[n].namespace for n in ("a1", "a2", "b1"))
    tag = fabric.tag
    wg_a, wg_b = join_sites(fabric.run, fabric.processes, fabric.dir, tag, a1, a2, b1)
    for index, vtep in enumerate(fabric.vteps, start=1):
        _vxlan_bridge(fabric, vtep.namespace, VNI, vtep.address, suppress=True)
        add_host(fabric, vtep, index, f"host-{vtep.name}", f"br{VNI}",
                 f"10.0.100.{10 * index}", f"02:de:00:00:01:{index:02x}")  # fmt: skip
    say(
        f"built evdemo-{tag}-*: site A (AS 65000: a1, a2) and site B (AS 65001: b1) joined "
        f"by WireGuard ({wg_a} - {wg_b}), VNI {VNI} across both, a host behind each VTEP"
    )
    asn = {name: a for name, a, _ in SITES}
    for name, vtep in vteps.items():
        peers = [(vteps[other].address, asn[other]) for other in SESSIONS[name]]
        launch_evpnd(fabric, vtep, _config(vtep, asn[name], peers))


def fix_mtu(fabric: Fabric, findings: list[dict[str, object]], vtep: Vtep) -> None:
    """Carry out doctor's MTU fixes on a VTEP, and give its host the same MTU (a bridge
    cannot fragment)."""
    for finding in findings:
        if finding["check"] != "mtu":
            continue
        for command in str(finding["fix"]).split("; "):
            words = command.split()
            fabric.run(vtep.namespace, *words)
            fabric.run(vtep.host, "ip", "link", "set", "eth0", "mtu", words[-1])


def doctor_and_fix(fabric: Fabric, say: Callable[[str], None]) -> None:
    """What doctor says at each VTEP once the underlay has been looked at; its MTU fixes
    carried out."""
    for vtep in fabric.vteps:
        _wait(
            f"{vtep.name}'s look at the underlay",
            functools.partial(_inner_mtu, vtep),
            20,
        )
        findings = request(vtep.socket, "doctor")["findings"]
        print(f"\n$ evpnctl doctor              (on {vtep.name})")
        print(show_findings(findings))
        fix_mtu(fabric, findings, vtep)
    say("applied doctor's fixes (and the hosts' MTU to match)")


def _inner_mtu(vtep: Vtep) -> object:
    """The inner MTU once it counts every remote VTEP (the underlay is looked at once a
    second: a VTEP that came a moment ago is not in it yet)."""
    (vni,) = request(vtep.socket, "show vni")
    complete = vni["remote_vteps"] and vni["inner_mtu_vteps"] == sorted(vni["remote_vteps"])
    return vni["inner_mtu"] if complete else None


def run(keep: bool = False) -> int:
    missing = available()
    if missing is not None:
        print(f"evpnd demo --multisite: {missing}", file=sys.stderr)
        return 2
    return run_demo(keep=keep, sites=build, after_converge=doctor_and_fix)
