from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from evpnd.daemon.sdnotify import notify

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "evpnd.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_unit_verifies(tmp_path) -> None:
    # verify resolves ExecStart: point it at a path that exists on any machine (and the man
    # pages are the package's: --man=no)
    unit = tmp_path / "evpnd.service"
    text = UNIT.read_text()
    unit.write_text(
        text.replace("/usr/bin/evpnctl", "/bin/true").replace("/usr/bin/evpnd", "/bin/true")
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    problems = [
        line
        for line in result.stderr.splitlines()
        if "evpnd.service" in line and "Documentation" not in line
    ]
    assert "Documentation=man:evpnd(8) man:evpnctl(8)" in text
    assert result.returncode == 0 and not problems, result.stderr


def test_notify_sends_one_datagram(tmp_path, monkeypatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1")
        assert server.recv(64) == b"READY=1"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notify("READY=1") is False


def test_a_reload_that_is_refused_fails_systemctl_reload() -> None:
    """ExecReload waits for evpnd's answer (evpnctl reload exits 1 when refused, as
    test_operator.py checks), instead of a signal that cannot fail."""
    reload = [line for line in UNIT.read_text().splitlines() if line.startswith("ExecReload=")]
    assert reload == ["ExecReload=/usr/bin/evpnctl -s /run/evpnd/evpnd.sock reload"]


def test_the_unit_runs_the_packaged_programs() -> None:
    """The Debian package installs /usr/bin/evpnd and /usr/bin/evpnctl; scripts/install --venv
    rewrites these to its /usr/local/bin (checked in test_install.py)."""
    commands = [
        line.split("=", 1)[1].split()[0]
        for line in UNIT.read_text().splitlines()
        if line.startswith(("ExecStart=", "ExecStartPre=", "ExecReload="))
    ]
    assert commands == ["/usr/bin/evpnd", "/usr/bin/evpnd", "/usr/bin/evpnctl"]
