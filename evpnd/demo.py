"""`evpnd demo`: a throw-away fabric in network namespaces on this machine.

Three evpnd VTEPs (and one FRR VTEP when FRR is installed) share VNI 100 over an underlay
switch; a host hangs off each VTEP's bridge. With `--irb` each VTEP has a subnet of its own
instead (VNI 101, 102, …) and the hosts are routed to each other through L3VNI 4001
(symmetric IRB, Type 5 routes). The demo waits for the sessions, pings every host
from every host, prints what one VTEP knows, and removes everything again — also when it is
interrupted. Nothing outside the namespaces it creates is touched, and each run has its own
names, so two demos (or a demo and the tests) can run side by side."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from evpnd.control.client import ControlError, request
from evpnd.control.tables import show_findings, show_l3vni_table, show_mac_table, show_peers

ASN = 65000
VNI = 100
L3VNI = 4001
UNDERLAY = "198.18.0"  # RFC 2544 benchmarking space: never a real network's
OVERLAY = "10.100.0"
FRR_BGPD = "/usr/lib/frr/bgpd"
#: the underlay links' MTU: jumbo frames, so the overlay keeps 1500 bytes (see `build`)
UNDERLAY_MTU = 9000
#: what a stop keeps of the demo's folder: the logs, and the configurations they came from
KEPT = ("*.log", "*.yaml", "*.conf")


class DemoError(Exception):
    pass


def _sh(*args: str, timeout: float = 30) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise DemoError(f"{' '.join(args)}: {(result.stderr or result.stdout).strip()}")
    return result.stdout


def _wait(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (ControlError, DemoError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.2)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last})")


@dataclass
class Vtep:
    name: str
    namespace: str
    address: str
    kind: str  # "evpnd" or "frr"
    home: Path
    host: str = ""
    host_ip: str = ""
    host_mac: str = ""
    #: sessions it should have (None: one with every other VTEP)
    sessions: int | None = None

    @property
    def socket(self) -> str:
        return str(self.home / "evpnd.sock")


@dataclass
class Fabric:
    """Everything one demo run created, so that `close` can remove exactly that."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:5])
    namespaces: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    pidfiles: list[Path] = field(default_factory=list)
    vteps: list[Vtep] = field(default_factory=list)
    irb: bool = False
    dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="evpnd-demo-")))

    def ns(self, name: str) -> str:
        full = f"evdemo-{self.tag}-{name}"
        _sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        self.run(full, "ip", "link", "set", "lo", "up")
        return full

    def run(self, ns: str, *args: str, timeout: float = 30) -> str:
        return _sh("ip", "netns", "exec", ns, *args, timeout=timeout)

    def close(self) -> list[Path]:
        """Removes what the run made, except its logs (and the configurations they came
        from) in its folder; returns the logs kept."""
        teardown(self.processes, self.pidfiles, self.namespaces, None)
        return keep_logs(self.dir)


def keep_logs(directory: Path) -> list[Path]:
    """Empties `directory` of everything but the logs and configurations (sockets, pid files,
    state, WireGuard's private keys go); the logs kept, or none (the folder goes too)."""
    kept = {p for pattern in KEPT for p in directory.rglob(pattern) if p.is_file()}
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path in kept:
            continue
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
    logs = sorted(p for p in kept if p.suffix == ".log")
    if not logs:
        shutil.rmtree(directory, ignore_errors=True)
    return logs


def teardown(
    processes: list[subprocess.Popen[bytes]],
    pidfiles: list[Path],
    namespaces: list[str],
    directory: Path | None,
    pidfile_signal: int = signal.SIGTERM,
) -> None:
    """Stop exactly the processes started (our children, and daemons by their pid files),
    then remove the namespaces and the scratch directory (None: the caller keeps it); never
    fails half-way."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pidfile in pidfiles:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pidfile.read_text().strip()), pidfile_signal)
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def _evpnd_config(vtep: Vtep, others: list[Vtep], irb: bool) -> str:
    l3vni = f", l3vni: {{vni: {L3VNI}}}" if irb else ""
    neighbors = "\n".join(
        f"  - {{address: {o.address}, remote_as: {ASN}, connect_retry: 1}}" for o in others
    )
    return f"""# written by `evpnd demo`
asn: {ASN}
router_id: {vtep.address}
hostname: {vtep.name}
listen: {{address: "{vtep.address}", port: 179}}
neighbors:
{neighbors}
evpn: {{advertise_all_vni: true{l3vni}}}
control_socket: {vtep.socket}
state_dir: {vtep.home}
"""


def _frr_config(vtep: Vtep, others: list[Vtep], irb: bool) -> str:
    lines = [
        "frr defaults traditional",
        f"hostname {vtep.name}",
        f"log file {vtep.home / 'frr.log'}",
        "!",
        *([f"vni {L3VNI}", "!"] if irb else []),
        f"router bgp {ASN}",
        f" bgp router-id {vtep.address}",
        " no bgp default ipv4-unicast",
    ]
    for o in others:
        lines += [
            f" neighbor {o.address} remote-as {ASN}",
            f" neighbor {o.address} timers connect 1",
        ]
    if irb:
        # the host subnet only: `redistribute connected` would announce the underlay too
        subnet = vtep.host_ip.rsplit(".", 1)[0] + ".0/24"
        lines += [" address-family ipv4 unicast", f"  network {subnet}", " exit-address-family"]
    lines += [" !", " address-family l2vpn evpn"]
    lines += [f"  neighbor {o.address} activate" for o in others]
    lines += ["  advertise-all-vni", *(["  advertise ipv4 unicast"] if irb else [])]
    lines += [" exit-address-family", "!", ""]
    return "\n".join(lines)


def _vxlan_bridge(fabric: Fabric, ns: str, vni: int, local: str, suppress: bool) -> None:
    vxlan, bridge = f"vxlan{vni}", f"br{vni}"
    fabric.run(ns, "ip", "link", "add", vxlan, "type", "vxlan", "id", str(vni),
               "dstport", "4789", "local", local, "nolearning")  # fmt: skip
    fabric.run(ns, "ip", "link", "add", bridge, "type", "bridge")
    fabric.run(ns, "ip", "link", "set", vxlan, "master", bridge)
    if suppress:
        fabric.run(ns, "ip", "link", "set", vxlan, "type", "bridge_slave",
                   "neigh_suppress", "on", "learning", "off")  # fmt: skip
    fabric.run(ns, "ip", "link", "set", vxlan, "up")
    fabric.run(ns, "ip", "link", "set", bridge, "up")


def build(fabric: Fabric, evpnd_count: int, with_frr: bool, say: Callable[[str], None]) -> None:
    spine = fabric.ns("spine")
    fabric.run(spine, "ip", "link", "add", "underlay", "type", "bridge")
    fabric.run(spine, "ip", "link", "set", "underlay", "up")
    kinds = ["evpnd"] * evpnd_count + (["frr"] if with_frr else [])
    for index, kind in enumerate(kinds, start=1):
        name = f"vtep{index}"
        home = fabric.dir / name
        home.mkdir()
        vtep = Vtep(name, fabric.ns(name), f"{UNDERLAY}.{index}", kind, home)
        fabric.vteps.append(vtep)
        uplink = f"evd{fabric.tag}u{index}"
        _sh("ip", "link", "add", uplink, "netns", spine, "type", "veth", "peer", "name", "eth0",
            "netns", vtep.namespace)  # fmt: skip
        # The underlay carries jumbo frames, as a data-centre fabric's does: VXLAN adds 50
        # bytes to every frame (RFC 7348 §4.3: the underlay must carry them, not fragment),
        # and raising the underlay — which the operator owns — lets the hosts, the bridges and
        # the vxlan devices keep the standard 1500 bytes, with nothing to set on any host.
        # (A 1500-byte underlay would need every overlay device and host at 1450: doctor
        # names that, and the multi-site demo, whose tunnel nobody can raise, shows it.)
        fabric.run(spine, "ip", "link", "set", uplink, "mtu", str(UNDERLAY_MTU))
        fabric.run(spine, "ip", "link", "set", uplink, "master", "underlay", "up")
        fabric.run(vtep.namespace, "ip", "addr", "add", f"{vtep.address}/24", "dev", "eth0")
        fabric.run(vtep.namespace, "ip", "link", "set", "eth0", "mtu", str(UNDERLAY_MTU), "up")
        # The VTEP: a vxlan port in a bridge, set up the way EVPN wants it (no data-plane
        # learning, ARP/ND answered from the neighbour table), with the hosts' gateway address.
        ns = vtep.namespace
        vni = VNI + index if fabric.irb else VNI
        subnet = f"10.{vni}.0" if fabric.irb else OVERLAY
        gateway = f"{subnet}.1" if fabric.irb else f"{subnet}.{index}"
        _vxlan_bridge(fabric, ns, vni, vtep.address, suppress=True)
        fabric.run(ns, "ip", "addr", "add", f"{gateway}/24", "dev", f"br{vni}")
        if fabric.irb:
            # the L3VNI's bridge: its MAC is this VTEP's Router's MAC
            _vxlan_bridge(fabric, ns, L3VNI, vtep.address, suppress=False)
            fabric.run(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        host_ip = f"{subnet}.10" if fabric.irb else f"{subnet}.{100 + index}"
        add_host(fabric, vtep, index, f"host{index}", f"br{vni}", host_ip,
                 f"02:de:00:00:00:{index:02x}")  # fmt: skip
        if fabric.irb:
            fabric.run(vtep.host, "ip", "route", "add", "default", "via", gateway)
    roles = ", ".join(f"{v.name}: {v.kind}" for v in fabric.vteps)
    layout = (
        f"a subnet each (VNI {VNI + 1}.., 10.{VNI + 1}.0.0/24..) routed through L3VNI {L3VNI}"
        if fabric.irb
        else f"VNI {VNI} ({OVERLAY}.0/24)"
    )
    say(
        f"built evdemo-{fabric.tag}-*: {len(kinds)} VTEPs ({roles}), "
        f"a host behind each, underlay {UNDERLAY}.0/24, {layout}"
    )
    for vtep in fabric.vteps:
        others = [o for o in fabric.vteps if o is not vtep]
        if vtep.kind == "evpnd":
            _start_evpnd(fabric, vtep, others)
        else:
            _start_frr(fabric, vtep, others)


def add_host(
    fabric: Fabric, vtep: Vtep, index: int, name: str, bridge: str, ip: str, mac: str
) -> None:
    """The VTEP's host: a namespace with one interface on the bridge."""
    vtep.host, vtep.host_ip, vtep.host_mac = fabric.ns(name), ip, mac
    port = f"evd{fabric.tag}h{index}"
    fabric.run(vtep.namespace, "ip", "link", "add", port, "type", "veth", "peer", "name",
               "eth0", "netns", vtep.host)  # fmt: skip
    fabric.run(vtep.namespace, "ip", "link", "set", port, "master", bridge, "up")
    fabric.run(vtep.host, "ip", "link", "set", "eth0", "address", mac)
    fabric.run(vtep.host, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
    fabric.run(vtep.host, "ip", "link", "set", "eth0", "up")


def _start_evpnd(fabric: Fabric, vtep: Vtep, others: list[Vtep]) -> None:
    launch_evpnd(fabric, vtep, _evpnd_config(vtep, others, fabric.irb))


def launch_evpnd(fabric: Fabric, vtep: Vtep, text: str) -> None:
    """evpnd in the VTEP's namespace, with this configuration, logging to its folder."""
    config = vtep.home / "evpnd.yaml"
    config.write_text(text)
    log = (vtep.home / "evpnd.log").open("ab")
    process = subprocess.Popen(
        ["ip", "netns", "exec", vtep.namespace, sys.executable, "-m", "evpnd.cli",
         "--config", str(config)],
        stdout=log,
        stderr=log,
    )  # fmt: skip
    fabric.processes.append(process)


def _start_frr(fabric: Fabric, vtep: Vtep, others: list[Vtep]) -> None:
    os.chmod(fabric.dir, 0o755)
    shutil.chown(vtep.home, "frr", "frr")
    conf = vtep.home / "frr.conf"
    conf.write_text(_frr_config(vtep, others, fabric.irb))
    shutil.chown(conf, "frr", "frr")
    for daemon in ("zebra", "bgpd"):
        pidfile = vtep.home / f"{daemon}.pid"
        fabric.pidfiles.append(pidfile)
        fabric.run(vtep.namespace, f"/usr/lib/frr/{daemon}", "-d", "-i", str(pidfile),
                   "-z", str(vtep.home / "zserv.api"), "--vty_socket", str(vtep.home),
                   "-f", str(conf), "-A", "127.0.0.1", "-P", "0")  # fmt: skip
        if daemon == "zebra":
            _wait("zebra to start", lambda: (vtep.home / "zserv.api").exists(), 15)


def _established(vtep: Vtep, expected: int) -> bool:
    peers = request(vtep.socket, "show peers")
    return sum(1 for p in peers if p["state"] == "Established") == expected


def converge(fabric: Fabric, timeout: float, say: Callable[[str], None]) -> float:
    start = time.monotonic()
    for vtep in fabric.vteps:
        expected = vtep.sessions if vtep.sessions is not None else len(fabric.vteps) - 1
        if vtep.kind == "evpnd":
            _wait(
                f"{vtep.name}'s {expected} sessions",
                functools.partial(_established, vtep, expected),
                timeout,
            )
    took = time.monotonic() - start
    say(f"all BGP sessions Established after {took:.1f} s")
    return took


def ping_all(fabric: Fabric, timeout: float, say: Callable[[str], None]) -> list[str]:
    """Pings every host from every host; returns the pairs that never answered."""
    failed = []
    for src in fabric.vteps:
        for dst in fabric.vteps:
            if src is dst:
                continue
            deadline = time.monotonic() + timeout
            while True:
                result = subprocess.run(
                    ["ip", "netns", "exec", src.host, "ping", "-c1", "-W1", dst.host_ip],
                    capture_output=True,
                )
                if result.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    failed.append(f"host{src.name[4:]} -> host{dst.name[4:]}")
                    break
    pairs = len(fabric.vteps) * (len(fabric.vteps) - 1)
    say(f"ping: {pairs - len(failed)} of {pairs} host pairs answered")
    return failed


def _doctor_quiet(vtep: Vtep) -> bool:
    return not request(vtep.socket, "doctor")["findings"]


def doctor_all(fabric: Fabric, timeout: float, say: Callable[[str], None]) -> list[str]:
    """`evpnctl doctor` on every evpnd VTEP of the fabric, once it has nothing to say (the
    underlay is looked at once a second, the kernel settles after End-of-RIB): the VTEPs where
    it still names something after `timeout`, with what it names."""
    sick = []
    for vtep in fabric.vteps:
        if vtep.kind != "evpnd":
            continue
        try:
            _wait(f"doctor on {vtep.name}", functools.partial(_doctor_quiet, vtep), timeout)
        except DemoError:
            findings = request(vtep.socket, "doctor")["findings"]
            print(f"\n$ evpnctl doctor              (on {vtep.name})")
            print(show_findings(findings))
            sick.append(vtep.name)
    evpnds = [v.name for v in fabric.vteps if v.kind == "evpnd"]
    if not sick:
        say(f"evpnctl doctor: no problem found on {', '.join(evpnds)}")
    return sick


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(
    evpnd_count: int = 3,
    frr: bool | None = None,
    keep: bool = False,
    irb: bool = False,
    sites: Callable[[Fabric, Callable[[str], None]], None] | None = None,
    after_converge: Callable[[Fabric, Callable[[str], None]], None] | None = None,
) -> int:
    """The demo; `sites` builds another fabric instead of the default one (multisite.py),
    `after_converge` runs once the sessions are up."""
    if os.geteuid() != 0:
        print("evpnd demo: needs root (it creates network namespaces)", file=sys.stderr)
        return 2
    if shutil.which("ip") is None:
        print("evpnd demo: needs iproute2's `ip` command", file=sys.stderr)
        return 2
    if sites is not None:
        frr = False
    with_frr = os.path.exists(FRR_BGPD) if frr is None else frr
    if with_frr and not os.path.exists(FRR_BGPD):
        print("evpnd demo: --frr asked for, but FRR is not installed", file=sys.stderr)
        return 2

    def say(text: str) -> None:
        print(f"demo: {text}", flush=True)

    if not with_frr and sites is None:
        say("FRR is not installed: the fabric is evpnd only (apt install frr adds an FRR VTEP)")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    fabric = Fabric(irb=irb)
    status = 1
    try:
        if sites is not None:
            sites(fabric, say)
        else:
            build(fabric, evpnd_count, with_frr, say)
        converge(fabric, 60, say)
        if after_converge is not None:
            after_converge(fabric, say)
        failed = ping_all(fabric, 20, say)
        sick = doctor_all(fabric, 15, say)
        first = fabric.vteps[0]
        print(f"\n$ evpnctl show peers          (on {first.name})")
        print(show_peers(request(first.socket, "show peers")))
        if irb:
            print(f"\n$ evpnctl show l3vni          (on {first.name})")
            print(show_l3vni_table(request(first.socket, "show l3vni")))
            print(f"\n$ ip route show proto 238     (on {first.name}: what evpnd installed)")
            print(fabric.run(first.namespace, "ip", "route", "show", "proto", "238").rstrip())
        else:
            print(f"\n$ evpnctl show mac            (on {first.name})")
            print(show_mac_table(request(first.socket, "show mac", filters={})))
            print(f"\n$ bridge fdb show dev vxlan{VNI}  (on {first.name}: what evpnd programmed)")
            fdb = fabric.run(first.namespace, "bridge", "fdb", "show", "dev", f"vxlan{VNI}")
            print(fdb.rstrip())
        print()
        if failed:
            say("no answer: " + ", ".join(failed))
        if sick:
            say("evpnctl doctor names problems on " + ", ".join(sick))
        if not failed:
            say("every host reached every other host across the EVPN fabric")
        if not failed and not sick:
            status = 0
        if keep:
            # Blocked before saying so, then waited for: a Ctrl-C right after the message
            # is never lost (signal.pause() would miss one that came just before it).
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)
            try:
                say("fabric left running; Ctrl-C removes it (and keeps the logs). Try:")
                print(f"  ip netns exec {first.namespace} evpnctl -s {first.socket} show routes")
                print(f"  evpnctl -s {first.socket} doctor")
                print(f"  ip netns exec {first.host} ping {fabric.vteps[-1].host_ip}")
                for vtep in fabric.vteps:
                    if vtep.kind == "frr":
                        # FRR's own CLI, pointed at this VTEP's daemons
                        print(
                            f"  ip netns exec {vtep.namespace} vtysh --vty_socket {vtep.home}"
                            " -c 'show bgp l2vpn evpn'"
                        )
                        print(f"  {vtep.name}'s FRR log: {vtep.home / 'frr.log'}")
                    else:
                        print(f"  {vtep.name}'s evpnd log: {vtep.home / 'evpnd.log'}")
                sys.stdout.flush()
                signal.sigwait(stop)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, stop)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        say("interrupted")
        status = 130
    except DemoError as exc:
        say(f"failed: {exc}")
        for vtep in fabric.vteps:
            log = vtep.home / "evpnd.log"
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-5:]
                print(f"--- {vtep.name} evpnd.log (last lines)", *tail, sep="\n")
    finally:
        # Ctrl-C again while tearing down must not leave namespaces behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        logs = fabric.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, previous)
        say("removed the namespaces and stopped the daemons")
        if logs:
            names = ", ".join(str(p.relative_to(fabric.dir)) for p in logs)
            say(f"logs kept in {fabric.dir}: {names}")
    return status
