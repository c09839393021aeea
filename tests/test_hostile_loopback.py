"""Two hostile peers against real evpnd processes on loopback addresses (no root, quick loop):
one pipelines 200,000 ROUTE-REFRESH messages and never reads, one reconnects as fast as it
can. The 9 s-hold neighbour beside them stays Established, the loop keeps up, the first's
answers are coalesced (its backlog never nears the bound), the second is damped (RFC 4271
§8.1.1) and said so once per hold (issue #23). The drop past the bound, with Cease / Out of
Resources, is tested in memory (test_backpressure.py) and in a namespace whose small socket
buffers leave the table in evpnd (test_hostile_backlog.py): on loopback the kernel's buffers
take about 4 MB before evpnd holds a byte, more churn than a quick test can make."""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Keepalive, RouteRefresh, decode_message
from evpnd.bgp.negotiation import EVPN_FAMILY, LocalSettings
from tests.loopback import Loopback
from tests.waiting import wait_for

HOSTILE, STORM = "127.0.0.3", "127.0.0.4"
#: eBGP: B's routes go to it
HOSTILE_AS = 65099
LIMIT = 1 << 20  # max_output_bytes: the smallest allowed


@contextlib.contextmanager
def fabric() -> Iterator[tuple[Loopback, Loopback]]:
    """A (127.0.0.1) with B (127.0.0.2), an eBGP peer that will not read, and a passive
    neighbour that will storm. (B's routes are not used: 127.0.0.2 is this host's address.)"""
    with tempfile.TemporaryDirectory(prefix="evpnd-hostile-") as folder:
        a = Loopback(Path(folder) / "a", "127.0.0.1", "")
        b = Loopback(Path(folder) / "b", "127.0.0.2", "")
        try:
            peer = "remote_as: 65000, connect_retry: 2"
            a.write_config(
                f"  - {{address: {b.address}, port: {b.port}, update_source: {a.address},"
                f" {peer}}}\n"
                f"  - {{address: {HOSTILE}, remote_as: {HOSTILE_AS}, passive: true,"
                f" max_output_bytes: {LIMIT}}}\n"
                f"  - {{address: {STORM}, remote_as: 65000, passive: true}}\n"
            )
            b.write_config(
                f"  - {{address: {a.address}, port: {a.port}, update_source: {b.address},"
                f" {peer}}}\n"
            )
            a.start()
            b.start()
            yield a, b
        finally:
            for one in (a, b):
                with contextlib.suppress(Exception):
                    one.stop()
                one.notify.close()


def connect(a: Loopback, source: str, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect((a.address, a.port))
    return sock


def session(a: Loopback, source: str, asn: int, rcvbuf: int) -> socket.socket:
    """OPEN (no hold timer: it never has to send a KEEPALIVE), then only what we send."""
    sock = connect(a, source, rcvbuf)
    local = LocalSettings(asn, source, hold_time=0, graceful_restart_time=0)
    sock.sendall(local.open_message().encode() + Keepalive().encode())
    reader, seen = MessageReader(), set()
    while not {"Open", "Keepalive"} <= seen:
        data = sock.recv(4096)
        assert data, "closed during the OPEN exchange"
        reader.feed(data)
        seen |= {type(decode_message(raw)).__name__ for raw in reader.messages()}
    return sock


def test_a_peer_asking_for_everything_and_reading_nothing_costs_a_bounded_backlog() -> None:
    with fabric() as (a, b):
        wait_for("Established with B", lambda: a.state(b.address) == "Established", 30)
        hostile = session(a, HOSTILE, HOSTILE_AS, rcvbuf=4096)
        wait_for("the hostile peer up", lambda: a.state(HOSTILE) == "Established", 10)
        # 200,000 ROUTE-REFRESH in 4.6 MB, and not a byte read back
        hostile.settimeout(120)
        hostile.sendall(RouteRefresh(*EVPN_FAMILY).encode() * 200_000)

        def output() -> dict[str, int]:
            peer = a.peer(HOSTILE)
            assert peer is not None
            return dict(peer["output"])

        def taken_in() -> bool:
            peer = a.peer(HOSTILE)
            return peer is not None and peer["messages_received"] > 200_000

        wait_for("the refreshes taken in", taken_in, 60)
        held = output()
        assert held["refreshes_coalesced"] > 190_000, held
        # one table at most waits for it, whatever it asked
        assert held["queued_worst_bytes"] <= LIMIT, held
        assert a.state(HOSTILE) == "Established"
        hostile.close()
        lines = a.log_lines()
        assert sum(line["event"] == "route refresh" for line in lines) <= 2  # not 200,000
        summary = a.json("show", "summary")
        assert summary["loop_lag_worst_s"] < 0.2, summary
        peer_b = a.peer(b.address)
        assert peer_b is not None and peer_b["state"] == "Established"
        assert peer_b["sessions_established"] == 1  # never lost, 9 s hold time


def test_a_reconnect_storm_is_damped_and_said_once_per_hold() -> None:
    with fabric() as (a, b):
        wait_for("Established with B", lambda: a.state(b.address) == "Established", 30)
        tries = 0

        def storm() -> bool:
            """One connection that dies at once (a header error): true once refused."""
            nonlocal tries
            tries += 1
            sock = connect(a, STORM)
            with sock:
                try:
                    sock.sendall(b"\x00" * 19)  # no marker: a NOTIFICATION, then the close
                    while sock.recv(4096):
                        pass
                except ConnectionResetError:
                    return True  # aborted before a byte was read
            refused = a.json("show", "summary")["connections_refused"]
            return int(refused.get("damped", 0)) >= 3

        wait_for("refusals during the hold", storm, 30, every=0.01)
        damped = [line for line in a.log_lines() if line["event"] == "damping peer"]
        assert damped and damped[0]["message"] == f"damping peer {STORM} for 1 s after 3 failures"
        assert len(damped) <= tries // 3  # once per hold, not once per connection
        peer = a.peer(STORM)
        assert peer is not None and peer["damping"]["failures"] >= 3
        assert a.state(b.address) == "Established"
