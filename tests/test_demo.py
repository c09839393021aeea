"""`evpnd demo` end to end: it builds its fabric, every host reaches every other, `evpnctl
doctor` finds nothing on any VTEP of it (the demo's fabric is a healthy one), and it leaves
nothing behind but its logs, which it names — also when interrupted."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.netns import LAB, ROOT, sh, wait_for

pytestmark = LAB


def _namespaces(tag: str) -> list[str]:
    return [line.split()[0] for line in sh("ip", "netns", "list").splitlines() if tag in line]


def _tag(output: str) -> str:
    found = re.search(r"built (evdemo-\w+-)\*", output)
    assert found, output
    return found.group(1)


def run_demo(
    *args: str,
    vteps: int | None = None,
    evpnd: tuple[str, ...] = (sys.executable, "-m", "evpnd.cli"),
) -> tuple[str, int]:
    """Runs `evpnd demo ARGS` to the end (`evpnd`: the program, e.g. the package's
    /usr/bin/evpnd); its output, and how many VTEPs it built (`vteps`, or 3 and FRR's when
    installed). It must have pinged every pair and left no namespace behind."""
    result = subprocess.run(
        [*evpnd, "demo", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT if evpnd[0] == sys.executable else "/",
    )
    out = result.stdout
    try:
        assert result.returncode == 0, out + result.stderr
        if vteps is None:
            vteps = 4 if os.path.exists("/usr/lib/frr/bgpd") else 3
        pairs = vteps * (vteps - 1)
        assert f"ping: {pairs} of {pairs} host pairs answered" in out
        assert _namespaces(_tag(out)) == []
    finally:
        logs = _kept_logs(out)
    assert logs, "the demo must keep its logs and say where: " + out
    # doctor ran on every evpnd VTEP (each kept an evpnd.log) and found nothing on any
    doctor = re.search(r"evpnctl doctor: no problem found on (.+)", out)
    assert doctor is not None, out
    named = set(doctor.group(1).strip().split(", "))
    assert named == {log.parent.name for log in logs if log.name == "evpnd.log"}, out
    return out, vteps


def _kept_logs(output: str) -> list[Path]:
    """The logs the demo says it kept: they must be there, and nothing else but their
    configurations; the folder is removed afterwards (the test's own clean-up)."""
    found = re.search(r"logs kept in (\S+): (.+)", output)
    if found is None:
        return []
    folder = Path(found.group(1))
    try:
        logs = [folder / name for name in found.group(2).split(", ")]
        assert logs and all(log.is_file() and log.stat().st_size for log in logs), logs
        left = {p.name for p in folder.rglob("*") if p.is_file()}
        assert left <= {"evpnd.log", "evpnd.yaml", "frr.log", "frr.conf"}, left
        return logs
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _doctor(socket: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "evpnd.control.cli", "-s", socket, "doctor"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def test_demo_pings_every_host_and_cleans_up() -> None:
    out, vteps = run_demo()
    # show mac on vtep1: its own host local, every other host remote behind its VTEP.
    for index in range(2, vteps + 1):
        assert re.search(rf"100\s+02:de:00:00:00:0{index}\s+remote\s+198\.18\.0\.{index}\b", out)
    assert re.search(r"100\s+02:de:00:00:00:01\s+local", out)
    assert "02:de:00:00:00:02 dst 198.18.0.2 self extern_learn" in out


def test_demo_interrupted_removes_everything() -> None:
    """--keep leaves the fabric up and says how to reach each VTEP: evpnctl, the logs, and
    FRR's own vtysh (its socket is in the demo's folder); Ctrl-C removes it all."""
    frr = os.path.exists("/usr/lib/frr/bgpd")
    process = subprocess.Popen(
        [sys.executable, "-m", "evpnd.cli", "demo", "--frr" if frr else "--no-frr", "--vteps",
         "2", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )  # fmt: skip
    last = "vtep3's FRR log:" if frr else "vtep2's evpnd log:"
    seen: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        for line in process.stdout:
            seen.append(line)
            if last in line or time.monotonic() > deadline:
                break
        output = "".join(seen)
        tag = _tag(output)
        assert len(_namespaces(tag)) == (7 if frr else 5), output  # spine, VTEPs, hosts
        logs = re.findall(r"evpnd log: (\S+)", output)
        assert len(logs) == 2 and all(os.path.exists(log) for log in logs)
        # a healthy fabric: `evpnctl doctor` exits 0 on each evpnd VTEP
        for log in logs:
            socket = str(Path(log).parent / "evpnd.sock")
            wait_for(f"doctor quiet at {socket}", lambda s=socket: _doctor(s).returncode == 0, 15)
            assert _doctor(socket).stdout.strip() == "no problem found"
        if frr:
            (command,) = [line.strip() for line in seen if "vtysh --vty_socket" in line]
            shown = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
            assert "local router ID is 198.18.0.3" in shown.stdout, shown.stderr
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 130, output + rest
        assert "removed the namespaces" in rest
        assert _namespaces(tag) == []
        # stopping keeps the logs, and says where
        kept = _kept_logs(rest)
        assert {str(p) for p in kept} >= set(logs), rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for log in re.findall(r"evpnd log: (\S+)", "".join(seen)):
            shutil.rmtree(Path(log).parent.parent, ignore_errors=True)


def test_demo_irb_routes_between_subnets() -> None:
    out, vteps = run_demo("--irb")
    assert re.search(r"4001\s+default\s+up\s+br4001", out)
    # vtep1 routes the other VTEPs' subnets through the L3VNI (FRR's too, when it is there)
    for index in range(2, vteps + 1):
        assert f"10.10{index}.0.0/24 via 198.18.0.{index} dev br4001 metric 20 onlink" in out


def test_demo_multisite_finds_the_tunnels_mtu_and_pings_across() -> None:
    """`evpnd demo --multisite`: two sites over wireguard-go (test_multisite.py checks the same
    topology in detail); doctor names the MTU at each VTEP before the demo applies the fixes."""
    import shutil

    import pytest

    if not (shutil.which("wireguard-go") and shutil.which("wg")):
        pytest.skip("wireguard-go and wireguard-tools are not installed")
    out, _ = run_demo("--multisite", vteps=3)
    assert out.count("fix: ip link set vxlan100 mtu 1370; ip link set br100 mtu 1370") == 2
    assert re.search(r"100\s+02:de:00:00:01:03\s+remote\s+10\.255\.1\.1\b", out)
