"""Which file evpnd reads without `--config`: /etc/evpnd/evpnd.yaml when it exists (here the
file EVPND_CONFIG names, so no test reads the host's /etc — tests/conftest.py points it
nowhere for every test), else the embedded default; `--check` and a plain start say which."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from evpnd import cli
from tests.loopback import ROOT, free_port
from tests.waiting import wait_for


def evpnd(*args: str, config: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evpnd.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=dict(os.environ, EVPND_CONFIG=str(config)),
    )


def test_the_default_path_and_its_override(monkeypatch) -> None:
    monkeypatch.delenv("EVPND_CONFIG")
    assert cli.default_config_path() == "/etc/evpnd/evpnd.yaml" == cli.DEFAULT_CONFIG
    monkeypatch.setenv("EVPND_CONFIG", "/nowhere/x.yaml")
    assert cli.config_path(None) is None  # not there: the embedded default
    assert cli.config_name(None) == "the embedded default (no /nowhere/x.yaml)"
    assert cli.config_path("/given.yaml") == "/given.yaml"  # --config wins, there or not


def test_check_reads_the_default_file_when_it_exists_and_names_it(tmp_path) -> None:
    path = tmp_path / "evpnd.yaml"
    path.write_text(
        "asn: 65123\nrouter_id: 192.0.2.1\nevpn: {advertise_all_vni: false, vnis: [{vni: 7}]}\n"
        "neighbors:\n  - {address: 192.0.2.2, remote_as: 65123}\n"
    )
    checked = evpnd("--check", config=path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"{path}: configuration is valid (1 neighbors, 1 VNIs)")
    # a broken default file is refused with its line, not replaced by the embedded one
    path.write_text("asn: 65123\ncolour: blue\n")
    refused = evpnd("--check", config=path)
    assert refused.returncode == 1 and "evpnd.yaml:2: colour: unknown key" in refused.stderr
    # --config still wins over the default file
    other = tmp_path / "other.yaml"
    other.write_text("asn: 65001\nrouter_id: 192.0.2.9\nevpn: {advertise_all_vni: false}\n")
    assert evpnd("--check", "--config", str(other), config=path).stdout.startswith(
        f"{other}: configuration is valid"
    )


def test_check_without_a_default_file_says_it_checked_the_embedded_one(tmp_path) -> None:
    checked = evpnd("--check", config=tmp_path / "absent.yaml")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(
        f"the embedded default (no {tmp_path / 'absent.yaml'}): configuration is valid"
    )


def test_a_plain_start_runs_on_the_default_file_and_logs_its_path(tmp_path) -> None:
    address = "127.0.0.1"
    socket_path = tmp_path / "evpnd.sock"
    path = tmp_path / "evpnd.yaml"
    path.write_text(
        f"asn: 65123\nrouter_id: {address}\n"
        f"listen: {{address: {address}, port: {free_port(address)}}}\n"
        f"control_socket: {socket_path}\nstate_dir: {tmp_path / 'state'}\n"
        "evpn: {program_kernel: false, vnis: [{vni: 100}]}\n"
    )
    log = tmp_path / "evpnd.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "evpnd.cli"],
            stdout=out,
            stderr=out,
            cwd=ROOT,
            env=dict(os.environ, EVPND_CONFIG=str(path)),
        )
    try:
        wait_for("the control socket", socket_path.exists, 30)
        lines = [json.loads(line) for line in log.read_text().splitlines() if line[:1] == "{"]
        (said,) = [line for line in lines if line["event"] == "configuration"]
        assert said["file"] == str(path)
        shown = subprocess.run(
            [sys.executable, "-m", "evpnd.control.cli", "-s", str(socket_path), "show", "summary"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        assert "AS 65123" in shown.stdout, shown.stdout + shown.stderr  # the file's, not 65000
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        process.wait(15)
