"""A randomized fault soak: a fabric of four VTEPs in network namespaces, faults at random every
few seconds, and after each quiet period the kernel of every evpnd VTEP checked against what the
fabric's best paths call for (docs/testing.md, "The soak").

    benchmarks/soak.py --seconds 120 --seed 7        # as root
    benchmarks/soak.py --replay /tmp/evpnd-soak-….log  # the rounds of a logged run, again

The fabric: a spine namespace routes the underlay (10.99.N.0/24 per box); `rr` is an evpnd route
reflector (no kernel programming), `e1` and `e2` evpnd VTEPs, `f3` an FRR 8.4 VTEP (zebra and
bgpd), all in AS 65000, every VTEP a client of the reflector; VNI 100 (10.0.100.0/24) with two
hosts behind each VTEP, each with an address (ARP suppression), and a mobile host that moves
between e1 and e2. A blaster (a raw BGP client in the spine) peers with e1 and churns about
1,000 Type 2 routes a second during its bursts. No L3VNI: docs/testing.md says why.

The oracle is independent of evpnd's own view: every evpnd VTEP's kernel (both FDB halves,
flood entries, ARP suppression entries) must equal what FRR's `show bgp l2vpn evpn json` calls
for on that VTEP, and FRR's table must list exactly the hosts the soak put where it put them.

Every event is a JSON line in the log whose path is printed first; the last line of output is
one JSON object (violations, faults, slopes, loop lag, pings lost).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evpnd.control.client import request  # noqa: E402
from tests.waiting import wait_for  # noqa: E402

VNI = 100
RT = "RT:65000:100"
RR_IP = "10.99.9.1"
VTEP_IPS = {"e1": "10.99.1.1", "e2": "10.99.2.1", "f3": "10.99.3.1"}
EVPND_VTEPS = ("e1", "e2")
BLASTER_IP = "10.99.1.254"  # the spine's end of e1's link
SVI = {"e1": "10.0.100.1", "e2": "10.0.100.2", "f3": "10.0.100.3"}
HOLD = 9

#: Every fault kind; the two-minute CI run draws from `CI_KINDS` (docs/testing.md says why the
#: others are left to the run by hand).
KINDS = (
    "kill9_restart",
    "sigterm_restart",
    "frr_bgpd_restart",
    "clear_peer",
    "link_flap",
    "vtep_unreachable",
    "vtep_isolated",
    "rr_lost",
    "host_move",
    "mac_ephemeral",
    "ip_move",
    "blaster_burst",
    "reload_valid",
    "reload_invalid",
    "tamper_kernel",
    "stuck_watch",
    "show_routes",
)
#: What `tamper_kernel` does behind evpnd's back (either FDB half, a flood entry, a neighbour).
TAMPERS = (
    "fdb_del_self",
    "fdb_del_master",
    "fdb_change",
    "fdb_stray",
    "flood_del",
    "neigh_del",
    "neigh_change",
    "neigh_stray",
)
CI_KINDS = tuple(k for k in KINDS if k not in ("vtep_isolated",))

#: Log lines at error level that a fault explains: event text -> the kinds that may cause it.
EXPLAINED_ERRORS: dict[str, tuple[str, ...]] = {
    # an invalid reload is refused at error level on purpose (`journalctl -p err` finds it)
    "reload refused; keeping the running configuration": ("reload_invalid",),
}


def sh(*args: str, check: bool = True, timeout: float = 30) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def least_squares_slope(points: list[tuple[float, float]]) -> float:
    """The slope of the least-squares line through (x, y) points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / sxx


class Violation(Exception):
    pass


# --- the blaster: a raw BGP client churning Type 2 routes (run in the spine's namespace) --------


def blaster_main(target: str, source: str, seed: int) -> None:
    """Reads `burst SECONDS` lines on stdin; for each, churns ~1,000 routes a second at `target`
    (announce, re-announce with another label or next hop, withdraw), then withdraws all and
    answers `done N` (N: route operations sent, 0 when the peer refused us the whole time)."""
    from benchmarks.receive import Client
    from evpnd.bgp.attributes import AsPath, PathAttributes
    from evpnd.bgp.update import pack_announcements, pack_withdrawals
    from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
    from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
    from evpnd.evpn.routes import MacIpRoute

    rng = random.Random(seed)
    rd = RouteDistinguisher.from_text(f"{source}:{VNI}")
    pool = [
        MacIpRoute(rd, 0, (0x02BB00000000 + i).to_bytes(6, "big"), b"", ZERO_ESI, VNI)
        for i in range(2000)
    ]
    hops = [ipaddress.IPv4Address(source).packed, ipaddress.IPv4Address("10.99.2.254").packed]

    def attrs(hop: bytes) -> PathAttributes:
        return PathAttributes(
            origin=0,
            as_path=AsPath(),
            local_pref=100,
            ext_communities=(Encapsulation(8), RouteTarget(0, 65000, VNI)),
            nexthop=hop,
        )

    client: Client | None = None

    def connect(deadline: float) -> Client | None:
        # evpnd may hold us idle (damping) or be restarting: try again until the deadline
        while time.monotonic() < deadline:
            try:
                return Client(179, host=target, source=source)
            except (OSError, RuntimeError):
                time.sleep(0.5)  # the pace of reconnection attempts (a stimulus, not a wait)
        return None

    for line in sys.stdin:
        seconds = float(line.split()[1])
        end = time.monotonic() + seconds
        sent = 0
        try:
            if client is None:
                client = connect(end)
            if client is not None:
                announced: set[int] = set()
                while time.monotonic() < end:
                    tick = time.monotonic()
                    new = [i for i in rng.sample(range(len(pool)), 60) if i not in announced]
                    again = rng.sample(sorted(announced), min(25, len(announced)))
                    gone = rng.sample(sorted(announced), min(15, len(announced)))
                    data = b"".join(pack_announcements([pool[i] for i in new], attrs(hops[0])))
                    data += b"".join(
                        pack_announcements([pool[i] for i in again], attrs(hops[rng.randrange(2)]))
                    )
                    data += b"".join(pack_withdrawals([pool[i] for i in gone]))
                    client.send(data)
                    announced |= set(new)
                    announced -= set(gone)
                    sent += len(new) + len(again) + len(gone)
                    # ~100 operations every 0.1 s: the blaster's rate (a stimulus)
                    time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
                client.send(b"".join(pack_withdrawals([pool[i] for i in sorted(announced)])))
        except OSError:
            # the session died under us (evpnd restarted, the link went down): evpnd drops
            # our routes with it; the next burst connects again
            with contextlib.suppress(OSError):
                if client is not None:
                    client.close()
            client = None
        print(f"done {sent}", flush=True)


# --- the lab ------------------------------------------------------------------------------------


@dataclass
class Host:
    name: str
    mac: str
    ip: str
    vtep: str
    ns: str
    port: str


@dataclass
class Daemon:
    name: str
    ns: str
    ip: str
    home: Path
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    log_pos: int = 0
    #: (time since the soak's start, RSS kB, open fds) per incarnation (pid)
    samples: dict[int, list[tuple[float, float, float]]] = field(default_factory=dict)

    @property
    def socket(self) -> str:
        return str(self.home / "evpnd.sock")

    @property
    def log(self) -> Path:
        return self.home / "evpnd.log"


def evpnd_config(name: str, ip: str) -> str:
    if name == "rr":
        neighbors = "\n".join(
            f"  - {{address: {v}, remote_as: 65000, route_reflector_client: true, "
            "connect_retry: 1}"
            for v in VTEP_IPS.values()
        )
        evpn = "evpn: {program_kernel: false}\n"
    else:
        neighbors = f"  - {{address: {RR_IP}, remote_as: 65000, connect_retry: 1, description: rr}}"
        if name == "e1":
            neighbors += (
                f"\n  - {{address: {BLASTER_IP}, remote_as: 65000, passive: true, "
                "description: blaster}"
            )
        evpn = ""
    return f"""asn: 65000
router_id: {ip}
hold_time: {HOLD}
listen: {{address: "{ip}", port: 179}}
graceful_restart: {{restart_time: 30}}
metrics: {{address: "{ip}", port: 9179}}
{evpn}neighbors:
{neighbors}
"""


def frr_config() -> str:
    return f"""frr defaults traditional
hostname soak-f3
!
router bgp 65000
 bgp router-id {VTEP_IPS["f3"]}
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 neighbor {RR_IP} remote-as 65000
 neighbor {RR_IP} timers 3 {HOLD}
 neighbor {RR_IP} timers connect 1
 !
 address-family l2vpn evpn
  neighbor {RR_IP} activate
  advertise-all-vni
 exit-address-family
!
"""


class Soak:
    def __init__(self, seed: int, log_path: Path, kinds: tuple[str, ...]) -> None:
        self.seed = seed
        self.kinds = kinds
        self.tag = os.urandom(3).hex()
        self.dir = Path(tempfile.mkdtemp(prefix=f"evpnd-soak-{self.tag}-"))
        os.chmod(self.dir, 0o755)
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[Any]] = []
        self.pidfiles: list[Path] = []
        self.log_file = log_path.open("a")
        self.events: deque[dict[str, Any]] = deque(maxlen=50)
        self.start = time.monotonic()
        self.faults: Counter[str] = Counter()
        self.daemons: dict[str, Daemon] = {}
        self.hosts: dict[str, Host] = {}
        self.ports = 0
        self.generation = 0
        self.spine = ""
        self.spine_dev: dict[str, str] = {}
        self.vtep_ns: dict[str, str] = {}
        self.frr_home = self.dir / "f3"
        self.blaster: subprocess.Popen[str] | None = None
        self.max_lag = 0.0
        self.lag_by_daemon: dict[str, float] = {}
        self.pings: dict[str, Ping] = {}
        #: (start, end, kind) of every fault, for the pings lost meanwhile
        self.fault_times: list[tuple[float, float, str]] = []
        self.explained: set[str] = set()
        self.lost: Counter[str] = Counter()
        self.checks = 0
        self.convergence: list[float] = []
        self.stopping = threading.Event()

    # --- events ---------------------------------------------------------------------------------

    def event(self, name: str, **fields: Any) -> None:
        record = {"t": round(time.monotonic() - self.start, 3), "event": name, **fields}
        self.events.append(record)
        self.log_file.write(json.dumps(record) + "\n")
        self.log_file.flush()

    # --- building -------------------------------------------------------------------------------

    def run(self, ns: str, *args: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", ns, *args, check=check)

    def ns(self, name: str) -> str:
        full = f"sk{self.tag}{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        self.run(full, "ip", "link", "set", "lo", "up")
        return full

    def veth(self, a: str, a_name: str, b: str, b_name: str) -> None:
        sh("ip", "link", "add", a_name, "netns", a, "type", "veth", "peer", "name", b_name,
           "netns", b)  # fmt: skip

    def build(self) -> None:
        self.spine = self.ns("sp")
        self.run(self.spine, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for index, name in ((1, "e1"), (2, "e2"), (3, "f3"), (9, "rr")):
            ns = self.ns(name)
            self.vtep_ns[name] = ns
            near, far = f"u{self.tag}{name}", f"s{self.tag}{name}"
            self.veth(ns, near, self.spine, far)
            self.spine_dev[name] = far
            self.run(ns, "ip", "addr", "add", f"10.99.{index}.1/24", "dev", near)
            self.run(self.spine, "ip", "addr", "add", f"10.99.{index}.254/24", "dev", far)
            self.run(ns, "ip", "link", "set", near, "up")
            self.run(self.spine, "ip", "link", "set", far, "up")
            self.run(ns, "ip", "route", "add", "10.99.0.0/16", "via", f"10.99.{index}.254")
            if name == "rr":
                continue
            ip = VTEP_IPS[name]
            self.run(ns, "ip", "link", "add", "vxlan100", "type", "vxlan", "id", str(VNI),
                     "dstport", "4789", "local", ip, "nolearning")  # fmt: skip
            self.run(ns, "ip", "link", "add", "br100", "type", "bridge")
            self.run(ns, "ip", "link", "set", "vxlan100", "master", "br100")
            self.run(ns, "ip", "link", "set", "vxlan100", "type", "bridge_slave",
                     "neigh_suppress", "on", "learning", "off")  # fmt: skip
            self.run(ns, "ip", "link", "set", "vxlan100", "up")
            self.run(ns, "ip", "link", "set", "br100", "up")
            self.run(ns, "ip", "addr", "add", f"{SVI[name]}/24", "dev", "br100")
        for vtep, number in (("e1", 1), ("e2", 2), ("f3", 3)):
            for letter, last in (("a", 1), ("b", 2)):
                self.add_host(f"h{number}{letter}", vtep, f"10.0.100.{number}{last}",
                              f"02:00:00:00:0{number}:{last:02x}")  # fmt: skip
        self.add_host("m", "e1", "10.0.100.50", "02:00:00:00:05:00")
        for name in ("rr", "e1", "e2"):
            self.start_evpnd(name)
        self.start_frr()
        self.event("built", dir=str(self.dir), namespaces=self.namespaces)

    def add_host(self, name: str, vtep: str, ip: str, mac: str) -> Host:
        self.generation += 1
        ns = self.ns(f"{name}{self.generation}")
        self.ports += 1
        port = f"p{self.tag}{self.ports}"
        self.veth(self.vtep_ns[vtep], port, ns, "eth0")
        self.run(self.vtep_ns[vtep], "ip", "link", "set", port, "master", "br100")
        self.run(self.vtep_ns[vtep], "ip", "link", "set", port, "up")
        self.run(ns, "ip", "link", "set", "eth0", "address", mac)
        self.run(ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        self.run(ns, "ip", "link", "set", "eth0", "up")
        host = Host(name, mac, ip, vtep, ns, port)
        self.hosts[name] = host
        return host

    def drop_ns(self, ns: str) -> None:
        sh("ip", "netns", "del", ns, check=False)
        with contextlib.suppress(ValueError):
            self.namespaces.remove(ns)

    def start_evpnd(self, name: str) -> Daemon:
        daemon = self.daemons.get(name)
        if daemon is None:
            ip = RR_IP if name == "rr" else VTEP_IPS[name]
            home = self.dir / name
            home.mkdir()
            daemon = Daemon(name, self.vtep_ns[name], ip, home)
            (home / "evpnd.yaml").write_text(self.config_text(daemon))
            self.daemons[name] = daemon
        with contextlib.suppress(FileNotFoundError):
            os.unlink(daemon.socket)
        out = daemon.log.open("ab")
        daemon.process = subprocess.Popen(
            ["ip", "netns", "exec", daemon.ns, sys.executable, "-m", "evpnd.cli",
             "--config", str(daemon.home / "evpnd.yaml")],
            stdout=out, stderr=out, cwd=ROOT,
        )  # fmt: skip
        out.close()
        self.processes.append(daemon.process)
        daemon.started = time.monotonic()
        self.wait("evpnd " + name + " to listen", lambda: os.path.exists(daemon.socket), 30)
        return daemon

    def config_text(self, daemon: Daemon, description: str = "rr") -> str:
        text = evpnd_config(daemon.name, daemon.ip)
        text = text.replace("description: rr", f"description: {description}")
        return text + f"control_socket: {daemon.socket}\nstate_dir: {daemon.home}\n"

    def start_frr(self) -> None:
        home = self.frr_home
        if not home.exists():
            home.mkdir()
            shutil.chown(home, "frr", "frr")
            conf = home / "frr.conf"
            conf.write_text(frr_config())
            shutil.chown(conf, "frr", "frr")
            self.frr_daemon("zebra")
            self.wait("zebra", lambda: (home / "zserv.api").exists(), 15)
        self.frr_daemon("bgpd")

    def frr_daemon(self, daemon: str) -> None:
        home = self.frr_home
        pidfile = home / f"{daemon}.pid"
        with contextlib.suppress(FileNotFoundError):
            pidfile.unlink()
        self.run(self.vtep_ns["f3"], f"/usr/lib/frr/{daemon}", "-d", "-i", str(pidfile),
                 "-z", str(home / "zserv.api"), "--vty_socket", str(home),
                 "-f", str(home / "frr.conf"), "-A", "127.0.0.1", "-P", "0")  # fmt: skip
        self.wait(f"{daemon}'s pid file", pidfile.exists, 15)
        if pidfile not in self.pidfiles:
            self.pidfiles.append(pidfile)

    def vtysh_json(self, command: str) -> Any:
        out = self.run(self.vtep_ns["f3"], "vtysh", "--vty_socket", str(self.frr_home),
                       "-c", command + " json")  # fmt: skip
        return json.loads(out)

    def start_blaster(self) -> None:
        self.blaster = subprocess.Popen(
            ["ip", "netns", "exec", self.spine, sys.executable, str(Path(__file__).resolve()),
             "--blaster", VTEP_IPS["e1"], "--source", BLASTER_IP, "--seed", str(self.seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        self.processes.append(self.blaster)

    def start_pings(self) -> None:
        """Background pings (5 a second, -O: each lost one is printed) from h1a to a host behind
        each other VTEP: what each fault costs in lost packets."""
        for target in ("h2a", "h3a"):
            command = ["ip", "netns", "exec", self.hosts["h1a"].ns, "ping", "-D", "-O", "-i",
                       "0.2", "-W", "1", self.hosts[target].ip]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            self.processes.append(process)
            self.pings[target] = Ping(process, self)

    def wait(self, what: str, probe: Callable[[], Any], timeout: float, every: float = 0.2) -> Any:
        return wait_for(what, probe, timeout, every, failure=Violation)

    def close(self) -> None:
        self.stopping.set()
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(OSError):
                    process.send_signal(signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        for pidfile in self.pidfiles:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        for ns in list(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.log_file.close()

    # --- faults ---------------------------------------------------------------------------------

    def fault(self, kind: str, params: dict[str, Any]) -> None:
        """Carries out one fault (its stimulus pauses included) and counts it."""
        self.faults[kind] += 1
        self.explained.add(kind)
        self.event("fault", kind=kind, **params)
        began = time.monotonic()
        try:
            getattr(self, "fault_" + kind)(**params)
        finally:
            self.fault_times.append((began, time.monotonic(), kind))
        self.event("fault done", kind=kind)

    def restart(self, name: str, sig: int, pause: float) -> None:
        daemon = self.daemons[name]
        assert daemon.process is not None
        daemon.process.send_signal(sig)
        daemon.process.wait(20)
        time.sleep(pause)  # how long the daemon stays away (the stimulus)
        self.start_evpnd(name)

    def fault_kill9_restart(self, target: str, pause: float) -> None:
        self.restart(target, signal.SIGKILL, pause)

    def fault_sigterm_restart(self, target: str, pause: float) -> None:
        self.restart(target, signal.SIGTERM, pause)

    def fault_rr_lost(self, pause: float) -> None:
        self.restart("rr", signal.SIGKILL, pause)

    def fault_frr_bgpd_restart(self, pause: float) -> None:
        pidfile = self.frr_home / "bgpd.pid"
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        self.wait("bgpd to die", lambda: not Path(f"/proc/{pid}").exists(), 10, 0.05)
        time.sleep(pause)  # how long bgpd stays away (the stimulus)
        self.frr_daemon("bgpd")

    def fault_clear_peer(self, target: str, peer: str) -> None:
        out = subprocess.run(self.evpnctl(self.daemons[target], "clear", "peer", peer),
                             capture_output=True, text=True)  # fmt: skip
        if out.returncode != 0:
            raise Violation(f"clear peer {peer} on {target} failed: {out.stdout}{out.stderr}")

    def fault_link_flap(self, target: str, pause: float) -> None:
        dev = self.spine_dev[target]
        self.run(self.spine, "ip", "link", "set", dev, "down")
        time.sleep(pause)  # how long the link stays down (the stimulus)
        self.run(self.spine, "ip", "link", "set", dev, "up")

    def fault_vtep_isolated(self, target: str, pause: float) -> None:
        self.fault_link_flap(target, pause)

    def fault_vtep_unreachable(self, target: str, vtep: str, pause: float) -> None:
        ns = self.vtep_ns[target]
        route = f"{VTEP_IPS[vtep]}/32"
        self.run(ns, "ip", "route", "add", "unreachable", route)
        time.sleep(pause)  # how long the VTEP stays unreachable (the stimulus)
        self.run(ns, "ip", "route", "del", "unreachable", route)

    def fault_host_move(self, to: str) -> None:
        old = self.hosts["m"]
        if old.vtep == to:
            return
        new = self.add_host("m", to, old.ip, old.mac)  # the new port is up first...
        # ...and the host speaks there (the VTEP learns it) before the old port goes
        self.run(new.ns, "ping", "-c1", "-W1", SVI[to], check=False)
        self.drop_ns(old.ns)

    def fault_mac_ephemeral(self, target: str, count: int, pause: float) -> None:
        """MACs appear behind a host port and age out. The bridge's ageing is stood in for by
        deleting the entries: the kernel tells evpnd the same thing (RTM_DELNEIGH) either way,
        and a short ageing time would also age the soak's quiet hosts."""
        host = next(h for h in self.hosts.values() if h.vtep == target and h.name != "m")
        ns = self.vtep_ns[target]
        macs = [f"02:ee:00:{self.generation % 256:02x}:{i // 256:02x}:{i % 256:02x}"
                for i in range(count)]  # fmt: skip
        self.generation += 1
        for mac in macs:
            self.run(ns, "bridge", "fdb", "add", mac, "dev", host.port, "master", "dynamic")
        time.sleep(pause)  # how long the MACs live (the stimulus)
        for mac in macs:
            self.run(ns, "bridge", "fdb", "del", mac, "dev", host.port, "master", check=False)

    def fault_ip_move(self, target: str) -> None:
        """A host's IP moves to another MAC (a new NIC): the host takes a new MAC and speaks;
        the old MAC ages out of the bridge (deleted, as above)."""
        host = self.hosts[target]
        self.generation += 1
        new_mac = f"02:ad:00:00:{self.generation // 256 % 256:02x}:{self.generation % 256:02x}"
        old_mac = host.mac
        self.run(host.ns, "ip", "link", "set", "eth0", "address", new_mac)
        host.mac = new_mac
        ns = self.vtep_ns[host.vtep]
        self.run(ns, "bridge", "fdb", "del", old_mac, "dev", host.port, "master", check=False)
        self.run(host.ns, "ip", "neigh", "flush", "all")
        self.run(host.ns, "ping", "-c1", "-W1", SVI[host.vtep], check=False)

    def fault_blaster_burst(self, seconds: float) -> None:
        assert self.blaster is not None and self.blaster.stdin and self.blaster.stdout
        self.blaster.stdin.write(f"burst {seconds}\n")
        self.blaster.stdin.flush()
        answer = self.blaster.stdout.readline()
        self.event("blaster", answer=answer.strip())

    def fault_reload_valid(self, target: str) -> None:
        daemon = self.daemons[target]
        self.generation += 1
        if target != "rr":
            text = self.config_text(daemon, f"rr-{self.generation}")
        else:
            text = self.config_text(daemon).replace("connect_retry: 1}", "connect_retry: 2}", 1)
            if self.generation % 2:
                text = self.config_text(daemon)
        (daemon.home / "evpnd.yaml").write_text(text)
        out = subprocess.run(self.evpnctl(daemon, "reload"), capture_output=True, text=True)
        if out.returncode != 0:
            raise Violation(f"a valid reload of {target} was refused: {out.stdout}{out.stderr}")

    def fault_reload_invalid(self, target: str, how: str) -> None:
        daemon = self.daemons[target]
        path = daemon.home / "evpnd.yaml"
        good = path.read_text()
        bad = {
            "syntax": good + "neighbors: [\n",
            "restart_key": good.replace(f"router_id: {daemon.ip}", "router_id: 10.99.99.99"),
            "bad_value": good.replace(f"hold_time: {HOLD}", "hold_time: 2"),
        }[how]
        path.write_text(bad)
        try:
            out = subprocess.run(self.evpnctl(daemon, "reload"), capture_output=True, text=True)
        finally:
            path.write_text(good)
        if out.returncode != 1:
            raise Violation(f"an invalid reload ({how}) of {target} was not refused: {out}")

    def evpnctl(self, daemon: Daemon, *args: str) -> list[str]:
        return [sys.executable, "-m", "evpnd.control.cli", "-s", daemon.socket, *args]

    def fault_tamper_kernel(self, target: str, how: str, pick: int) -> None:
        ns = self.vtep_ns[target]
        remote = [h for h in self.hosts.values() if h.vtep != target]
        host = remote[pick % len(remote)]
        dst = VTEP_IPS[host.vtep]
        wrong = "10.99.3.1" if dst != "10.99.3.1" else "10.99.2.1"
        stray_mac = f"02:dd:00:00:00:{pick % 256:02x}"
        command = {
            "fdb_del_self": ["bridge", "fdb", "del", host.mac, "dev", "vxlan100", "dst", dst,
                             "self"],
            "fdb_del_master": ["bridge", "fdb", "del", host.mac, "dev", "vxlan100", "master"],
            "fdb_change": ["bridge", "fdb", "replace", host.mac, "dev", "vxlan100", "dst", wrong,
                           "self", "extern_learn"],
            "fdb_stray": ["bridge", "fdb", "add", stray_mac, "dev", "vxlan100", "dst", wrong,
                          "self", "extern_learn"],
            "flood_del": ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan100", "dst",
                          dst, "self"],
            "neigh_del": ["ip", "neigh", "del", host.ip, "dev", "br100"],
            "neigh_change": ["ip", "neigh", "replace", host.ip, "lladdr", stray_mac, "dev",
                             "br100", "nud", "noarp", "extern_learn"],
            "neigh_stray": ["ip", "neigh", "replace", f"10.0.100.{200 + pick % 50}", "lladdr",
                            stray_mac, "dev", "br100", "nud", "noarp", "extern_learn"],
        }[how]  # fmt: skip
        self.run(ns, *command, check=False)

    def fault_stuck_watch(self, target: str, pause: float) -> None:
        daemon = self.daemons[target]
        # a client that asks for the stream and never reads it
        process = subprocess.Popen(
            self.evpnctl(daemon, "watch"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.processes.append(process)
        time.sleep(pause)  # how long it stays attached (the stimulus)
        process.kill()
        process.wait()
        self.processes.remove(process)

    def fault_show_routes(self, target: str) -> None:
        daemon = self.daemons[target]
        out = subprocess.run(
            self.evpnctl(daemon, "show", "routes", "--json"), capture_output=True, timeout=60
        )
        if out.returncode != 0:
            raise Violation(f"show routes on {target} failed: {out.stderr!r}")
        json.loads(out.stdout)

    # --- the oracle ---------------------------------------------------------------------------

    def frr_view(self) -> tuple[list[tuple[str, str | None, str, int]], set[str]]:
        """FRR's best paths in VNI 100: Type 2 as (mac, ip, next hop, sequence), Type 3 next
        hops. FRR's own routes carry its VTEP address as next hop."""
        data = self.vtysh_json("show bgp l2vpn evpn")
        macs: list[tuple[str, str | None, str, int]] = []
        flood: set[str] = set()
        for entries in data.values():
            if not isinstance(entries, dict) or "rd" not in entries:
                continue
            for prefix, info in entries.items():
                if not isinstance(info, dict) or "paths" not in info:
                    continue
                for paths in info["paths"]:
                    for path in paths if isinstance(paths, list) else [paths]:
                        if not path.get("bestpath") or not path.get("valid"):
                            continue
                        communities = path.get("extendedCommunity", {}).get("string", "")
                        if RT not in communities.split():
                            continue
                        hop = (path.get("nexthops") or [{}])[0].get("ip", VTEP_IPS["f3"])
                        if hop in ("0.0.0.0", "::"):
                            hop = VTEP_IPS["f3"]
                        if prefix.startswith("[2]"):
                            match = re.search(r"MM:(\d+)", communities)
                            seq = int(match.group(1)) if match else 0
                            parts = prefix.strip("[]").split("]:[")
                            mac = parts[3].lower()
                            ip = parts[5] if len(parts) > 5 and parts[4] != "0" else None
                            macs.append((mac, ip, hop, seq))
                        elif prefix.startswith("[3]"):
                            flood.add(hop)
        return macs, flood

    def model_view(self) -> tuple[set[tuple[str, str | None, str]], set[str]]:
        """What the soak put where: each host's MAC and MAC/IP at its VTEP; a flood route per
        VTEP."""
        routes: set[tuple[str, str | None, str]] = set()
        for host in self.hosts.values():
            hop = VTEP_IPS[host.vtep]
            routes |= {(host.mac, None, hop), (host.mac, host.ip, hop)}
        return routes, set(VTEP_IPS.values())

    @staticmethod
    def wanted(
        view: list[tuple[str, str | None, str, int]], flood: set[str], me: str
    ) -> dict[str, Any]:
        """What the kernel of the VTEP `me` should hold, from best paths alone: per MAC the
        mobility winner (highest sequence, then the lowest VTEP), a remote entry unless it is
        `me`; per IP the binding of the winning route; a flood entry per other VTEP."""
        best: dict[str, tuple[int, str]] = {}
        for mac, _, hop, seq in view:
            rank = (seq, hop)
            if mac not in best or (rank[0], _neg(rank[1])) > (best[mac][0], _neg(best[mac][1])):
                best[mac] = rank
        fdb = {mac: hop for mac, (_, hop) in best.items() if hop != me}
        neigh: dict[str, str] = {}
        for mac, ip, hop, _ in sorted(view, key=str):
            if ip is not None and best[mac][1] == hop and hop != me and ip not in neigh:
                neigh[ip] = mac
        return {"fdb": fdb, "flood": sorted(flood - {me}), "neigh": neigh}

    def kernel(self, name: str) -> dict[str, Any]:
        ns = self.vtep_ns[name]
        entries = json.loads(self.run(ns, "bridge", "-j", "fdb", "show", "dev", "vxlan100"))
        fdb: dict[str, str] = {}
        master: set[str] = set()
        flood: list[str] = []
        for e in entries:
            flags = e.get("flags", [])
            if e["mac"] == "00:00:00:00:00:00":
                if "dst" in e:
                    flood.append(e["dst"])
            elif "extern_learn" in flags and e.get("master") == "br100" and "dst" not in e:
                master.add(e["mac"])
            elif "extern_learn" in flags and "dst" in e:
                fdb[e["mac"]] = e["dst"]
        neigh = {
            n["dst"]: n.get("lladdr", "")
            for n in json.loads(self.run(ns, "ip", "-j", "neigh", "show", "dev", "br100"))
            if "extern_learn" in n or "extern_learn" in n.get("flags", [])
        }
        return {"fdb": fdb, "master": sorted(master), "flood": sorted(flood), "neigh": neigh}

    def differences(self) -> list[str]:
        problems: list[str] = []
        view, flood = self.frr_view()
        model, model_flood = self.model_view()
        frr_routes = {(mac, ip, hop) for mac, ip, hop, _ in view}
        if frr_routes != model:
            problems.append(
                f"FRR's table vs the soak's hosts: extra {sorted(frr_routes - model, key=str)}, "
                f"missing {sorted(model - frr_routes, key=str)}"
            )
        if flood != model_flood:
            problems.append(f"FRR's flood routes {sorted(flood)} vs {sorted(model_flood)}")
        for name in EVPND_VTEPS:
            want = self.wanted(view, flood, VTEP_IPS[name])
            have = self.kernel(name)
            for part in ("fdb", "flood", "neigh"):
                if have[part] != want[part]:
                    problems.append(f"{name} kernel {part}: has {have[part]}, wants {want[part]}")
            if have["master"] != sorted(want["fdb"]):
                problems.append(
                    f"{name} kernel fdb master half: has {have['master']}, "
                    f"wants {sorted(want['fdb'])}"
                )
        return problems

    def sessions_up(self) -> list[str]:
        down = []
        rr = request(self.daemons["rr"].socket, "show peers")
        states = {p["address"]: p["state"] for p in rr}
        for vtep, ip in VTEP_IPS.items():
            if states.get(ip) != "Established":
                down.append(f"rr-{vtep}: {states.get(ip)}")
        for name in EVPND_VTEPS:
            peers = request(self.daemons[name].socket, "show peers")
            for p in peers:
                if p["address"] == RR_IP and p["state"] != "Established":
                    down.append(f"{name}-rr: {p['state']}")
        return down

    def ping_all(self) -> list[str]:
        """Every host pings every other (after flushing its ARP cache: the answers come from
        the VTEPs' suppression entries, or the flood). Returns the pairs that failed."""
        hosts = list(self.hosts.values())
        procs = []
        for h in hosts:
            targets = " ".join(o.ip for o in hosts if o is not h)
            script = (
                "ip neigh flush all; "
                f"for t in {targets}; do (ping -c1 -W2 $t >/dev/null || echo $t) & done; wait"
            )
            procs.append((h, subprocess.Popen(["ip", "netns", "exec", h.ns, "sh", "-c", script],
                                              stdout=subprocess.PIPE, text=True)))  # fmt: skip
        failed = []
        for h, p in procs:
            out, _ = p.communicate(timeout=30)
            failed += [f"{h.name}->{t}" for t in out.split()]
        return failed

    def quiet_check(self) -> None:
        """After a round's faults: wait (a condition, with a timeout) until sessions are up,
        FRR lists the soak's hosts, every evpnd kernel holds what FRR's best paths call for,
        and every host reaches every other; then logs, RSS, fds and loop lag."""
        began = time.monotonic()
        self.checks += 1
        self.hosts_speak()
        # Damping holds a peer whose sessions keep failing idle for up to 120 s (an hour
        # brings a VTEP's session there); in a two-minute run 16 s at most.
        down: list[str] = []

        def up() -> bool:
            nonlocal down
            down = self.sessions_up()
            return not down

        try:
            self.wait("sessions Established", up, 150, 0.5)
            sessions_at = time.monotonic()
        except Violation:
            raise Violation(f"sessions not Established after 150 s: {down}") from None
        last: list[str] = []

        def converged() -> bool:
            nonlocal last
            try:
                seen = self.differences()
            except Exception as exc:  # FRR or a daemon not answering yet
                seen = [f"{type(exc).__name__}: {exc}"]
            if seen != last and seen:
                self.event("differences", problems=seen)  # each new picture, for the record
            last = seen
            return not last

        try:
            self.wait("the kernels to converge", converged, 60, 0.5)
            kernels_at = time.monotonic()
        except Violation:
            raise Violation("kernel differences after 60 s: " + "; ".join(last)) from None
        failed: list[str] = []

        def reached() -> bool:
            nonlocal failed
            failed = self.ping_all()
            return not failed

        try:
            self.wait("every host to reach every other", reached, 30, 0.5)
        except Violation:
            raise Violation(f"hosts unreachable: {failed}") from None
        self.convergence.append(time.monotonic() - began)
        self.check_logs()
        self.sample()
        self.event(
            "quiet check",
            seconds=round(time.monotonic() - began, 2),
            sessions_s=round(sessions_at - began, 2),
            kernels_s=round(kernels_at - sessions_at, 2),
        )
        self.explained.clear()

    def keep_hosts_speaking(self) -> None:
        """Live hosts speak: every 10 s each pings its gateway. A quiet host's SVI entry goes
        stale and is collected (gc_stale_time, 60 s, once the host's neighbour tables — one
        count for all namespaces — pass gc_thresh1), and its MAC/IP route with it, on FRR too."""

        def loop() -> None:
            while not self.stopping.wait(10):  # the hosts' pace (a stimulus)
                with contextlib.suppress(Exception):  # a host moving meanwhile
                    self.hosts_speak()

        threading.Thread(target=loop, daemon=True).start()

    def hosts_speak(self) -> None:
        """Each host speaks to its own gateway once, so its VTEP (re)learns it after a restart
        or move flushed it, and its SVI entry stays fresh (hosts are quiet otherwise)."""
        procs = [
            subprocess.Popen(
                ["ip", "netns", "exec", h.ns, "ping", "-c1", "-W1", SVI[h.vtep]],
                stdout=subprocess.DEVNULL,
            )
            for h in list(self.hosts.values())
        ]
        for p in procs:
            p.wait()

    def check_logs(self) -> None:
        for daemon in self.daemons.values():
            with daemon.log.open("rb") as f:
                f.seek(daemon.log_pos)
                data = f.read()
            cut = data.rfind(b"\n") + 1
            daemon.log_pos += cut
            for raw in data[:cut].decode(errors="replace").splitlines():
                if "Traceback" in raw:
                    raise Violation(f"{daemon.name}: a traceback in the log: {raw}")
                if not raw.startswith("{"):
                    continue
                with contextlib.suppress(ValueError):
                    line = json.loads(raw)
                    if line.get("level") in ("error", "critical", "exception"):
                        kinds = EXPLAINED_ERRORS.get(str(line.get("event")), ())
                        if not self.explained & set(kinds):
                            raise Violation(f"{daemon.name}: an unexplained error: {raw}")

    def sample(self) -> None:
        now = time.monotonic() - self.start
        for daemon in self.daemons.values():
            assert daemon.process is not None
            pid = daemon.process.pid
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                rss = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS"))
                fds = len(os.listdir(f"/proc/{pid}/fd"))
                daemon.samples.setdefault(pid, []).append((now, rss, fds))

    def scrape_lag(self) -> None:
        """evpnd_loop_lag_seconds: the loop's largest lag since the last scrape. A daemon's
        first 10 s are left out: a start reads the kernel's tables and every peer's full
        table, and its loop answers late meanwhile (a restart's cost, logged as such)."""
        for daemon in self.daemons.values():
            try:
                text = self.run(daemon.ns, "curl", "-s", "-m", "2",
                                f"http://{daemon.ip}:9179/metrics", check=False)  # fmt: skip
            except subprocess.TimeoutExpired:
                continue
            match = re.search(r"^evpnd_loop_lag_seconds (\S+)$", text, re.M)
            if not match:
                continue
            lag = float(match.group(1))
            if time.monotonic() - daemon.started < 10:
                continue
            self.lag_by_daemon[daemon.name] = max(self.lag_by_daemon.get(daemon.name, 0), lag)
            if lag > self.max_lag:
                self.max_lag = lag
            if lag >= 0.2:
                raise Violation(f"{daemon.name}: loop lag {lag:.3f} s")

    # --- the schedule ---------------------------------------------------------------------------

    def draw_round(self, rng: random.Random) -> list[dict[str, Any]]:
        """One round: 1 to 3 faults, each with its parameters and its start (seconds after
        the previous one's end) — all drawn from the seeded generator, nothing from the run."""
        faults = []
        for _ in range(rng.randint(1, 3)):
            kind = rng.choice(self.kinds)
            faults.append({"kind": kind, "gap": round(rng.uniform(0.5, 2.5), 2),
                           "params": self.draw_params(kind, rng)})  # fmt: skip
        return faults

    @staticmethod
    def draw_params(kind: str, rng: random.Random) -> dict[str, Any]:
        vteps = list(EVPND_VTEPS)
        match kind:
            case "kill9_restart" | "sigterm_restart":
                return {"target": rng.choice(vteps), "pause": round(rng.uniform(0.2, 2), 2)}
            case "rr_lost":
                return {"pause": round(rng.uniform(1, 6), 2)}
            case "frr_bgpd_restart":
                return {"pause": round(rng.uniform(0.2, 3), 2)}
            case "clear_peer":
                target = rng.choice(["rr", *vteps])
                if target == "rr":
                    return {"target": "rr", "peer": rng.choice(list(VTEP_IPS.values()))}
                return {"target": target, "peer": RR_IP}
            case "link_flap":
                target = rng.choice(["e1", "e2", "f3", "rr"])
                return {"target": target, "pause": round(rng.uniform(0.5, 3), 2)}
            case "vtep_isolated":
                target = rng.choice(["e1", "e2", "f3"])
                return {"target": target, "pause": round(rng.uniform(HOLD + 1, HOLD + 4), 2)}
            case "vtep_unreachable":
                target = rng.choice(vteps)
                other = rng.choice([v for v in VTEP_IPS if v != target])
                return {"target": target, "vtep": other, "pause": round(rng.uniform(2, 6), 2)}
            case "host_move":
                return {"to": rng.choice(vteps)}
            case "mac_ephemeral":
                return {"target": rng.choice([*vteps, "f3"]), "count": rng.randint(1, 20),
                        "pause": round(rng.uniform(0.5, 4), 2)}  # fmt: skip
            case "ip_move":
                return {"target": rng.choice(["h1b", "h2b"])}
            case "blaster_burst":
                return {"seconds": round(rng.uniform(2, 6), 2)}
            case "reload_valid":
                return {"target": rng.choice(["rr", *vteps])}
            case "reload_invalid":
                return {"target": rng.choice(["rr", *vteps]),
                        "how": rng.choice(["syntax", "restart_key", "bad_value"])}  # fmt: skip
            case "tamper_kernel":
                how = rng.choice(TAMPERS)
                return {"target": rng.choice(vteps), "how": how, "pick": rng.randrange(1000)}
            case "stuck_watch":
                return {"target": rng.choice(["rr", *vteps]),
                        "pause": round(rng.uniform(1, 5), 2)}  # fmt: skip
            case "show_routes":
                return {"target": rng.choice(["rr", *vteps])}
        raise ValueError(kind)

    def play_round(self, number: int, faults: list[dict[str, Any]]) -> None:
        self.event("round", n=number, faults=faults)
        threads: list[threading.Thread] = []
        errors: list[BaseException] = []

        def one(f: dict[str, Any]) -> None:
            try:
                self.fault(f["kind"], f["params"])
            except BaseException as exc:  # reported by the round, not lost in a thread
                errors.append(exc)

        # Faults overlap: each starts `gap` seconds after the one before it started (the
        # pacing is the stimulus), and runs in its own thread, since many have durations.
        busy: set[str] = set()
        for f in faults:
            time.sleep(f["gap"])  # the pacing of faults (a stimulus)
            # two faults on one daemon's process at once (a restart during a restart) would
            # race each other's start: the later waits for the earlier
            key = _resource(f)
            if key in busy:
                for t in threads:
                    t.join()
            busy.add(key)
            thread = threading.Thread(target=one, args=(f,), daemon=True)
            thread.start()
            threads.append(thread)
            self.scrape_lag()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.5)
                self.scrape_lag()
        if errors:
            raise errors[0]


def _neg(ip: str) -> tuple[int, ...]:
    return tuple(-int(x) for x in ip.split("."))


def _resource(fault: dict[str, Any]) -> str:
    """Which process or link a fault works on: faults on the same one run one after another."""
    kind, params = fault["kind"], fault["params"]
    if kind in ("kill9_restart", "sigterm_restart", "reload_valid", "reload_invalid"):
        return "daemon " + params["target"]
    if kind == "rr_lost":
        return "daemon rr"
    if kind == "frr_bgpd_restart":
        return "frr"
    if kind == "blaster_burst":
        return "blaster"
    if kind in ("host_move",):
        return "host m"
    if kind == "ip_move":
        return "host " + params["target"]
    if kind in ("link_flap", "vtep_isolated"):
        return "link " + params["target"]
    if kind == "vtep_unreachable":
        return f"route {params['target']}"
    return kind + json.dumps(params, sort_keys=True)


class Ping:
    """Reads a background `ping -D -O` and notes each lost packet's time."""

    def __init__(self, process: subprocess.Popen[str], soak: Soak) -> None:
        self.process = process
        self.sent = 0
        self.lost_at: list[float] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "icmp_seq" not in line:
                continue
            self.sent += 1
            if "no answer yet" in line:
                self.lost_at.append(time.monotonic())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--replay", type=Path, help="replay the rounds of a soak's log")
    parser.add_argument("--ci", action="store_true", help="only the fault kinds of the CI run")
    parser.add_argument("--log", type=Path, help="the event log (default: a file in /tmp)")
    parser.add_argument("--blaster", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.blaster:
        blaster_main(args.blaster, args.source, args.seed or 0)
        return {}

    replay: list[list[dict[str, Any]]] | None = None
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    kinds = CI_KINDS if args.ci else KINDS
    if args.replay:
        lines = [json.loads(x) for x in args.replay.read_text().splitlines() if x.strip()]
        replay = [x["faults"] for x in lines if x["event"] == "round"]
        seed = next((x["seed"] for x in lines if x["event"] == "start"), seed)
    log_path = args.log or Path(tempfile.gettempdir()) / (
        f"evpnd-soak-{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}-{os.getpid()}.log"
    )
    print(f"soak: seed {seed}, event log {log_path}", flush=True)
    soak = Soak(seed, log_path, kinds)

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)  # the finally below tears the lab down

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    violations: list[str] = []
    rounds = 0
    try:
        soak.event("start", seed=seed, seconds=args.seconds, kinds=list(kinds),
                   replay=str(args.replay) if args.replay else None)  # fmt: skip
        soak.build()
        soak.start_blaster()
        soak.quiet_check()
        soak.start_pings()
        soak.keep_hosts_speaking()
        rng = random.Random(seed)
        end = time.monotonic() + args.seconds
        while time.monotonic() < end if replay is None else rounds < len(replay):
            faults = soak.draw_round(rng) if replay is None else replay[rounds]
            rounds += 1
            soak.play_round(rounds, faults)
            soak.quiet_check()
            soak.scrape_lag()
    except Violation as exc:
        violations.append(str(exc))
    except Exception as exc:  # the harness itself failed: reported as such, with the events
        violations.append(f"soak error: {type(exc).__name__}: {exc}")
    finally:
        if violations:
            soak.event("violation", problems=violations)
            kept = Path(str(log_path) + ".daemons")
            with contextlib.suppress(OSError):
                kept.mkdir(exist_ok=True)
                for daemon in soak.daemons.values():
                    shutil.copy(daemon.log, kept / f"{daemon.name}.log")
            print(f"VIOLATION (seed {seed}): {violations[0]}", file=sys.stderr)
            print("last events:", file=sys.stderr)
            for record in soak.events:
                print("  " + json.dumps(record), file=sys.stderr)
        lost: Counter[str] = Counter()
        sent = 0
        for ping in soak.pings.values():
            sent += ping.sent
            for at in ping.lost_at:
                # a lost packet is put down to each fault under way when it was sent, or
                # ended less than 5 s before (ping -W 1: sent a second before it was missed)
                sent_at = at - 1
                kinds_then = {k for b, e, k in soak.fault_times if b <= sent_at <= e + 5}
                for kind in kinds_then or {"none"}:
                    lost[kind] += 1
        slopes = {}
        for daemon in soak.daemons.values():
            # each incarnation is fitted alone (a restart starts from scratch); the longest
            # one speaks for the daemon
            longest = max(daemon.samples.values(), key=len, default=[])
            slopes[daemon.name] = {
                "rss_kb_per_min": round(
                    least_squares_slope([(t / 60, r) for t, r, _ in longest]), 1
                ),
                "fd_per_min": round(least_squares_slope([(t / 60, f) for t, _, f in longest]), 2),
                "samples": len(longest),
                "rss_kb_last": longest[-1][1] if longest else None,
            }
        soak.event("end", violations=violations)
        soak.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    result = {
        "seed": seed,
        "log": str(log_path),
        "seconds": round(time.monotonic() - soak.start, 1),
        "rounds": rounds,
        "checks": soak.checks,
        "violations": violations,
        "faults": dict(sorted(soak.faults.items())),
        "rss_slope_kb_per_min": max((s["rss_kb_per_min"] for s in slopes.values()), default=0),
        "fd_slope_per_min": max((s["fd_per_min"] for s in slopes.values()), default=0),
        "per_daemon": slopes,
        "max_loop_lag_s": round(soak.max_lag, 4),
        "loop_lag_by_daemon": soak.lag_by_daemon,
        "pings_sent": sent,
        "pings_lost": sum(len(p.lost_at) for p in soak.pings.values()),
        "pings_lost_by_fault": dict(sorted(lost.items())),
        "convergence_s_max": round(max(soak.convergence, default=0), 2),
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(1 if main().get("violations") else 0)
