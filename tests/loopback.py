"""evpnd processes on loopback addresses without kernel programming: real sessions, the control
socket, logs and sd_notify, without root or namespaces (so in the quick loop). Each daemon gets
its own folder, a free port and a notify socket of its own; only the processes started here are
stopped, by PID."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


class Loopback:
    def __init__(self, home: Path, address: str, config: str) -> None:
        self.home = home
        home.mkdir(parents=True)
        self.address = address
        self.port = free_port(address)
        self.config_path = home / "evpnd.yaml"
        self.config_text = config
        self.log = home / "evpnd.log"
        self.socket = str(home / "evpnd.sock")
        self.notify_path = str(home / "notify")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notified: list[str] = []
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self, neighbors: str, extra: str = "") -> None:
        self.config_path.write_text(
            f"""asn: 65000
router_id: {self.address}
listen: {{address: {self.address}, port: {self.port}}}
control_socket: {self.socket}
state_dir: {self.home / "state"}
hold_time: 9
evpn:
  program_kernel: false
  vnis: [{{vni: 100}}]
{self.config_text}{extra}neighbors:
{neighbors}"""
        )

    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "evpnd.cli", "--config", str(self.config_path)],
                stdout=out,
                stderr=out,
                cwd=ROOT,
                env=env,
            )

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "evpnd.control.cli", "-s", self.socket, *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=ROOT)
        if check and result.returncode != 0:
            raise AssertionError(f"evpnctl {' '.join(args)}: {result.returncode} {result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ctl(*args, "--json").stdout)

    def peer(self, address: str) -> dict[str, Any] | None:
        return next((p for p in self.json("show", "peers") if p["address"] == address), None)

    def state(self, address: str) -> str | None:
        peer = self.peer(address)
        return peer["state"] if peer else None

    def datagrams(self) -> list[str]:
        """Every sd_notify message so far (READY=1, STATUS=…, RELOADING=1)."""
        self.notify.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.notified.append(self.notify.recv(4096).decode())
        return self.notified

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(15)


@contextlib.contextmanager
def loopback_pair(extra_a: str = "", extra_b: str = "") -> Iterator[tuple[Loopback, Loopback]]:
    """Two evpnd on 127.0.0.1 and 127.0.0.2, iBGP between them, started."""
    with tempfile.TemporaryDirectory(prefix="evpnd-lo-") as folder:
        a = Loopback(Path(folder) / "a", "127.0.0.1", extra_a)
        b = Loopback(Path(folder) / "b", "127.0.0.2", extra_b)
        try:
            for one, other in ((a, b), (b, a)):
                one.write_config(
                    f"  - {{address: {other.address}, remote_as: 65000, port: {other.port},"
                    f" update_source: {one.address}, connect_retry: 2, description: the other}}\n"
                )
            a.start()
            b.start()
            yield a, b
        finally:
            for one in (a, b):
                with contextlib.suppress(Exception):
                    one.stop(signal.SIGKILL)
                one.notify.close()
