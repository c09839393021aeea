"""Test hosts in network namespaces: unique names, cleaned up even when a test fails, and only
the processes a test started are stopped (by PID)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evpnd.demo import teardown
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]

#: Every test that needs root, network namespaces or an external daemon carries these marks:
#: `pytest -m "not lab"` leaves them out (tests/conftest.py refuses a module that uses this
#: file's helpers without them).
LAB = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"),
]


def sh(*args: str, check: bool = True, timeout: float = 30) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def listed_before_repair(make: Callable[[], None], listed: Callable[[], bool]) -> None:
    """Make a stray entry, then ask whether a report lists it. The periodic reconciliation may
    remove it in between (it runs every 10 s, at any moment): then make it again; three misses
    in a row are a failure."""
    for _ in range(3):
        make()
        if listed():
            return
    raise AssertionError("the stray entry was never listed")


def tcp_counter(lab: Lab, ns: str, name: str) -> int:
    """A TcpExt counter of a namespace's network stack (/proc/net/netstat is per namespace),
    e.g. TCPMD5Failure or TCPMinTTLDrop: the kernel's own word that it dropped a segment."""
    lines = lab.run(ns, "cat", "/proc/net/netstat").splitlines()
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split(), values.split(), strict=True))[name])
    raise KeyError(name)


class Ping:
    """`ping` running in the background; the constructor returns once the first reply came,
    so whatever the test does next happens while packets are flowing."""

    def __init__(self, lab: Lab, ns: str, target: str, count: int, interval: float) -> None:
        command = ["ip", "netns", "exec", ns, "ping", "-i", str(interval), "-c", str(count)]
        self.process = subprocess.Popen(
            [*command, "-W", "1", target], stdout=subprocess.PIPE, text=True
        )
        lab.processes.append(self.process)  # type: ignore[arg-type]
        assert self.process.stdout is not None
        self.head: list[str] = []
        for line in self.process.stdout:  # ends when ping does, if no reply ever comes
            self.head.append(line)
            if "bytes from" in line:
                return
        raise AssertionError(f"no reply from {target}: {''.join(self.head)}")

    def output(self, timeout: float = 60) -> str:
        """Everything ping printed, once it has finished."""
        rest, _ = self.process.communicate(timeout=timeout)
        return "".join(self.head) + rest


class Lab:
    """A set of namespaces joined by veth pairs, and the daemons started in them."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self.pidfiles: list[Path] = []
        self._links = 0
        self.dir = Path(tempfile.mkdtemp(prefix=f"evpnd-lab-{self.tag}-"))
        os.chmod(self.dir, 0o755)

    def ns(self, name: str) -> str:
        full = f"ev{self.tag}{name}"
        sh("ip", "netns", "add", full)
        self.namespaces.append(full)
        self.run(full, "ip", "link", "set", "lo", "up")
        return full

    def run(self, ns: str, *args: str, check: bool = True) -> str:
        return sh("ip", "netns", "exec", ns, *args, check=check)

    def link(self, a: str, a_addr: str, b: str, b_addr: str) -> tuple[str, str]:
        """A veth pair between namespaces a and b with addresses like '10.0.0.1/24'."""
        self._links += 1
        index = self._links
        left, right = f"v{self.tag}a{index}", f"v{self.tag}b{index}"
        sh("ip", "link", "add", left, "netns", a, "type", "veth", "peer", "name", right, "netns", b)
        for ns, dev, addr in ((a, left, a_addr), (b, right, b_addr)):
            self.run(ns, "ip", "addr", "add", addr, "dev", dev)
            self.run(ns, "ip", "link", "set", dev, "up")
        return left, right

    def reach(self, ns: str, prefix: str) -> None:
        """A route to `prefix` in `ns` over a veth whose far end stays unused: remote VTEPs
        that exist only in BGP (a test's script announces them) are reachable, as next-hop
        tracking wants (FRR too installs nothing towards a VTEP it cannot resolve)."""
        self._links += 1
        near, far = f"u{self.tag}a{self._links}", f"u{self.tag}b{self._links}"
        self.run(ns, "ip", "link", "add", near, "type", "veth", "peer", "name", far)
        for dev in (near, far):
            self.run(ns, "ip", "link", "set", dev, "up")
        self.run(ns, "ip", "route", "add", prefix, "dev", near)

    def vxlan_bridge(self, ns: str, vni: int, local: str) -> tuple[str, str]:
        vxlan, bridge = f"vxlan{vni}", f"br{vni}"
        self.run(
            ns,
            "ip",
            "link",
            "add",
            vxlan,
            "type",
            "vxlan",
            "id",
            str(vni),
            "dstport",
            "4789",
            "local",
            local,
            "nolearning",
        )
        self.run(ns, "ip", "link", "add", bridge, "type", "bridge")
        self.run(ns, "ip", "link", "set", vxlan, "master", bridge)
        self.run(
            ns,
            "ip",
            "link",
            "set",
            vxlan,
            "type",
            "bridge_slave",
            "neigh_suppress",
            "on",
            "learning",
            "off",
        )
        self.run(ns, "ip", "link", "set", vxlan, "up")
        self.run(ns, "ip", "link", "set", bridge, "up")
        return vxlan, bridge

    # --- evpnd ---------------------------------------------------------------------------------

    def evpnd(self, ns: str, name: str, config: str) -> Evpnd:
        home = self.dir / name
        home.mkdir()
        (home / "evpnd.yaml").write_text(
            config + f"\ncontrol_socket: {home}/evpnd.sock\nstate_dir: {home}\n"
        )
        daemon = Evpnd(self, ns, home)
        daemon.start()
        return daemon

    # --- FRR -----------------------------------------------------------------------------------

    def frr(self, ns: str, name: str, config: str) -> Frr:
        home = self.dir / name
        home.mkdir()
        shutil.chown(home, "frr", "frr")
        conf = home / "frr.conf"
        conf.write_text(config)
        shutil.chown(conf, "frr", "frr")
        for daemon in ("zebra", "bgpd"):
            pidfile = home / f"{daemon}.pid"
            self.run(
                ns,
                f"/usr/lib/frr/{daemon}",
                "-d",
                "-i",
                str(pidfile),
                "-z",
                str(home / "zserv.api"),
                "--vty_socket",
                str(home),
                "-f",
                str(conf),
                "-A",
                "127.0.0.1",
                "-P",
                "0",
            )
            self.pidfiles.append(pidfile)
            if daemon == "zebra":
                wait_for("zebra", lambda: (home / "zserv.api").exists(), 15)
        return Frr(self, ns, home)

    def close(self) -> None:
        teardown(self.processes, self.pidfiles, self.namespaces, self.dir, signal.SIGKILL)


class Evpnd:
    def __init__(self, lab: Lab, ns: str, home: Path) -> None:
        self.lab = lab
        self.ns = ns
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None
        self.log = home / "evpnd.log"

    @property
    def socket(self) -> str:
        return str(self.home / "evpnd.sock")

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.ns,
                sys.executable,
                "-m",
                "evpnd.cli",
                "--config",
                str(self.home / "evpnd.yaml"),
            ],
            stdout=out,
            stderr=out,
            cwd=ROOT,
        )
        self.lab.processes.append(self.process)
        wait_for(f"evpnd in {self.ns}", lambda: os.path.exists(self.socket), 20)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(10)

    def reload(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGHUP)

    def ctl(self, *args: str, check: bool = True) -> Any:
        """`evpnctl ARGS --json`; with check=False, also when it exits 1 (a problem to show)."""
        command = [sys.executable, "-m", "evpnd.control.cli", "-s", self.socket, *args, "--json"]
        return json.loads(sh(*command, check=check))

    def peer_state(self, address: str) -> str | None:
        for peer in self.ctl("show", "peers"):
            if peer["address"] == address:
                return str(peer["state"])
        return None

    def routes(self, **filters: str) -> list[dict[str, Any]]:
        args = [x for k, v in filters.items() for x in (f"--{k}", v)]
        return list(self.ctl("show", "routes", *args))


class Frr:
    def __init__(self, lab: Lab, ns: str, home: Path) -> None:
        self.lab = lab
        self.ns = ns
        self.home = home

    def vtysh(self, *commands: str) -> str:
        args = ["vtysh", "--vty_socket", str(self.home)]
        for command in commands:
            args += ["-c", command]
        return self.lab.run(self.ns, *args)

    def json(self, command: str) -> Any:
        return json.loads(self.vtysh(command + " json"))

    def evpn_routes(self) -> dict[str, dict[str, Any]]:
        """'RD prefix' -> path info, from `show bgp l2vpn evpn json`."""
        data = self.json("show bgp l2vpn evpn")
        out = {}
        for rd, entries in data.items():
            if not isinstance(entries, dict) or "rd" not in entries:
                continue
            for prefix, info in entries.items():
                if isinstance(info, dict) and "paths" in info:
                    out[f"{rd} {prefix}"] = info
        return out


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    the_lab = Lab()
    try:
        yield the_lab
    finally:
        the_lab.close()
