"""What an operator sees of a peer that crashed, of a reload that is refused and of a stop, with
two real evpnd processes on loopback addresses (no root): the history of a down peer, logs
journald can grade, and systemd told the truth (READY, RELOADING, STATUS)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from evpnd.bgp.events import State, StateChanged
from evpnd.bgp.negotiation import LocalSettings
from evpnd.bgp.peer import Peer, PeerSettings
from evpnd.daemon.peer_driver import connect_failure
from tests.loopback import ROOT, loopback_pair
from tests.waiting import wait_for


def test_a_crashed_peer_keeps_its_history_and_the_logs_grade_it() -> None:
    with loopback_pair(extra_b="hostname: vtep-b\n") as (a, b):
        wait_for("Established", lambda: a.state(b.address) == "Established", 30)
        up = a.peer(b.address)
        assert up is not None and up["hostname"] == "vtep-b" and up["flaps"] == 0
        detail = a.json("show", "peers", b.address)
        assert detail["capabilities"]["families"] == ["25/70"]
        assert list(a.json("show", "bgp", "neighbors")) == [b.address]  # FRR's JSON
        summary = a.json("show", "summary")
        assert summary["peers_up"] == 1 and summary["status"].startswith("1/1 peers up")
        assert detail["timers"]["hold_time"] == 9 and detail["session"]["remote"].startswith(
            "127.0.0.2 port "
        )
        status = "STATUS=1/1 peers up, 1 VNIs"
        wait_for("STATUS", lambda: any(m.startswith(status) for m in a.datagrams()), 15)
        assert "READY=1" in a.datagrams()

        b.stop(signal.SIGKILL)  # a crash: no NOTIFICATION, the connection just closes
        # the reconnection attempts fail with their errno, and the first reason stays
        down = wait_for(
            "a refused reconnection",
            lambda: (
                (p := a.peer(b.address))
                and (p["last_error"] or "").startswith("ECONNREFUSED")
                and p
            ),
            30,
        )
        assert down["last_down"]["reason"] == "connection closed by peer", down
        assert down["last_down"]["uptime_s"] > 0 and down["flaps"] == 1
        assert down["hostname"] == "vtep-b" and down["uptime_s"] is None
        table = a.ctl("show", "peers").stdout
        row = next(line for line in table.splitlines() if line.startswith(b.address))
        assert "never" not in row and "vtep-b" in row and "connection closed by peer" in row
        detail = a.json("show", "peers", b.address)
        assert detail["last_down"]["reason"] == "connection closed by peer"

        # the NOTIFICATION-less end of a session is a warning; later state changes carry
        # only their own reason
        lines = a.log_lines()
        downs = [line for line in lines if line["event"] == "session down"]
        assert [d["level"] for d in downs] == ["warning"]
        changes = [line for line in lines if line["event"] == "peer state"]
        to_connect = [c for c in changes if c["new"] == "Connect" and c["old"] == "Active"]
        assert to_connect and all(c["reason"] is None for c in to_connect)

        # debugging one peer and one VNI at run time: their details, at level debug, in a
        # daemon that logs at info
        assert "debugging peers: 127.0.0.2" in a.ctl("debug", "peer", b.address, "on").stdout
        stranger = a.ctl("debug", "peer", "192.0.2.99", "on", check=False)
        assert stranger.returncode == 1 and "no peer '192.0.2.99'" in stranger.stderr
        assert a.json("deb", "vni", "100", "on") == {
            "peers": [b.address], "vnis": [100], "everything": False
        }  # fmt: skip
        b.start()  # back: its routes arrive again
        wait_for("Established again", lambda: a.state(b.address) == "Established", 30)

        def debug_lines() -> list[dict[str, object]]:
            return [line for line in a.log_lines() if line.get("scope")]

        def debugged(event: str) -> bool:
            return any(d["event"] == event for d in debug_lines())

        wait_for("the peer's UPDATEs in debug lines", lambda: debugged("update received"), 15)
        # (B's own routes are not used here: 127.0.0.2 is an address of this host; a static
        # MAC gives VNI 100 a best-path change)
        config = a.config_path.read_text()
        static = 'vnis: [{vni: 100, macs: [{mac: "02:00:00:00:00:01"}]}]'
        a.config_path.write_text(config.replace("vnis: [{vni: 100}]", static))
        assert a.ctl("reload").returncode == 0
        wait_for("VNI 100's best paths in debug lines", lambda: debugged("best path"), 15)
        for line in debug_lines():
            assert line["level"] == "debug" and line["target"] in (b.address, 100)
        assert a.ctl("debug", "peer", b.address, "off").returncode == 0

        # a refused reload: evpnctl exits 1, systemd hears RELOADING=1 then READY=1
        good = a.config_path.read_text()
        a.config_path.write_text(good + "  - {address: not-an-address, remote_as: 1}\n")
        refused = a.ctl("reload", check=False)
        assert refused.returncode == 1 and "not-an-address" in refused.stdout
        said = a.datagrams()
        assert "RELOADING=1" in said and said.index("RELOADING=1") < len(said) - 1
        assert said[said.index("RELOADING=1") + 1 :].count("READY=1") >= 1
        assert any(line["level"] == "error" for line in a.log_lines())
        a.config_path.write_text(good)
        assert a.ctl("reload").returncode == 0

        # a stop with a `watch` attached: no traceback, nothing at error level, JSON only
        watcher = subprocess.Popen(
            [sys.executable, "-m", "evpnd.control.cli", "-s", a.socket, "watch"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert watcher.stderr is not None
        assert watcher.stderr.readline().startswith("evpnctl: watching")
        errors_before = sum(1 for line in a.log_lines() if line["level"] == "error")
        a.stop(signal.SIGTERM)
        assert watcher.wait(10) == 1  # "evpnd closed the stream"
        text = a.log.read_text()
        assert "Traceback" not in text
        lines = [json.loads(line) for line in text.splitlines()]  # every line one JSON object
        assert sum(1 for line in lines if line["level"] == "error") == errors_before
        assert lines[-1]["event"] == "stopped"


def test_a_state_change_carries_only_its_own_reason() -> None:
    peer = Peer(PeerSettings("192.0.2.2", 65000), LocalSettings(65000, "192.0.2.1"))
    peer.start(0.0)
    peer.next_action()  # Idle -> Active
    peer.handle_timer(0.0)
    peer.connection_failed(0.1, "ECONNREFUSED: Connection refused")
    peer.handle_timer(60.0)  # the next attempt
    changes = []
    while (action := peer.next_action()) is not None:
        if isinstance(action, StateChanged):
            changes.append((action.old, action.new, action.reason))
    assert (State.CONNECT, State.ACTIVE, "ECONNREFUSED: Connection refused") in changes
    assert changes[-1] == (State.ACTIVE, State.CONNECT, "")


def test_connection_failures_name_their_errno() -> None:
    import errno

    refused = OSError(errno.ECONNREFUSED, "Connect call failed ('192.0.2.2', 179)")
    assert connect_failure(refused) == "ECONNREFUSED: Connection refused"
    unreachable = OSError(errno.EHOSTUNREACH, "Connect call failed")
    assert connect_failure(unreachable) == "EHOSTUNREACH: No route to host"
    assert connect_failure(TimeoutError()).startswith("ETIMEDOUT")
    assert connect_failure(OSError(0, "update_source lo has no IPv4 address")) == (
        "update_source lo has no IPv4 address"
    )


def test_lines_to_the_journal_carry_their_syslog_priority(tmp_path, monkeypatch) -> None:
    """journald reads `<N>` at the start of a line as its priority (sd-daemon(3)): `journalctl
    -p err` then finds `reload refused`. Only when standard error is the journal's stream."""
    import os

    import structlog

    from evpnd.daemon.logs import configure

    path = tmp_path / "journal"
    with path.open("w") as stream:
        info = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
        configure("info", json_lines=True, stream=stream)
        log = structlog.get_logger("test")
        log.error("reload refused; keeping the running configuration", problems=["x"])
        log.warning("session down", peer="192.0.2.2")
        log.info("started")
        log.debug("not at info")
        log.debug("a debugged peer", scope="peer", target="192.0.2.2")
    lines = path.read_text().splitlines()
    assert [line[:3] for line in lines] == ["<3>", "<4>", "<6>", "<7>"]
    assert json.loads(lines[0][3:])["event"].startswith("reload refused")
    assert json.loads(lines[3][3:])["scope"] == "peer"
    # written elsewhere (a file, a pipe): plain JSON lines
    monkeypatch.setenv("JOURNAL_STREAM", "0:0")
    other = tmp_path / "file"
    with other.open("w") as stream:
        configure("info", json_lines=True, stream=stream)
        structlog.get_logger("test").error("reload refused")
    assert other.read_text().startswith("{")
    structlog.reset_defaults()


def test_doctor_names_a_peer_that_announces_our_vtep_address() -> None:
    """B announces VNI 100 from A's own VTEP address. Such routes are never used (next-hop
    tracking: an address of this host), which is why doctor looks at what was received, not at
    the best paths — it used to, and so never said it."""
    with loopback_pair() as (a, b):

        def vtep_finding() -> list[dict[str, object]]:
            findings = json.loads(a.ctl("doctor", "--json", check=False).stdout)["findings"]
            return [f for f in findings if f["check"] == "vtep"]

        wait_for("Established", lambda: a.state(b.address) == "Established", 30)
        assert vtep_finding() == []
        config = b.config_path.read_text()
        b.config_path.write_text(
            config.replace("vnis: [{vni: 100}]", "vnis: [{vni: 100, vtep_ip: 127.0.0.1}]")
        )
        assert b.ctl("reload").returncode == 0

        def unreachable() -> list[str]:
            return [v["vtep"] for v in a.json("show", "summary")["vteps_unreachable"]]

        # next-hop tracking sets the routes aside (within a second): doctor still names them
        wait_for("127.0.0.1 unreachable", lambda: unreachable() == ["127.0.0.1"], 15)
        (found,) = vtep_finding()
        assert found["what"] == "127.0.0.2 announces routes with our VTEP address 127.0.0.1"
        assert found["evidence"] == {"peer": "127.0.0.2", "route": "[3]:[0]:[32]:[127.0.0.1]"}
