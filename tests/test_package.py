"""The Debian package end to end: `scripts/install --build` makes it from a copy of this tree,
dpkg installs it on Debian's own python3-* libraries, `/usr/bin/evpnd demo` pings across its
fabric, and `apt-get purge evpnd` leaves no file. The machine is left as it was found: the test
skips when evpnd is installed already, or when a package it needs is missing (./scripts/test
installs them), rather than install or remove anything else; the evpnd user the package makes
(and keeps, as Debian does) is removed again."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.netns import LAB, ROOT
from tests.test_demo import run_demo

pytestmark = LAB

NEEDED = (
    # to build (debian/control's Build-Depends) and to check
    "debhelper", "dh-python", "pybuild-plugin-pyproject", "python3-all", "python3-setuptools",
    "lintian",
    # to run: the package's Depends, so that installing it installs nothing else
    "python3-pyroute2", "python3-uvloop", "python3-structlog", "python3-prometheus-client",
    "python3-yaml", "iproute2", "adduser", "iputils-ping",
)  # fmt: skip
PACKAGED = (
    "/usr/bin/evpnd", "/usr/bin/evpnctl", "/lib/systemd/system/evpnd.service",
    "/etc/evpnd/evpnd.yaml", "/usr/share/man/man8/evpnd.8.gz", "/usr/share/man/man8/evpnctl.8.gz",
    "/usr/share/bash-completion/completions/evpnctl", "/usr/share/doc/evpnd/copyright",
)  # fmt: skip
MADE_AT_RUN_TIME = ("/etc/evpnd", "/var/lib/evpnd", "/run/evpnd")


def _status(package: str) -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def _run(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd="/")
    assert result.returncode == 0, f"{' '.join(args)}: {result.stdout}{result.stderr}"
    return result.stdout


def _exists(name: str, database: str) -> bool:
    return subprocess.run(["getent", database, name], capture_output=True).returncode == 0


def test_the_package_installs_runs_the_demo_and_purges_to_nothing(tmp_path: Path) -> None:
    if not Path("/etc/debian_version").exists() or shutil.which("dpkg-buildpackage") is None:
        pytest.skip("not Debian: no dpkg-buildpackage")
    if _status("evpnd"):
        pytest.skip(f"evpnd's package is on this machine ({_status('evpnd')}): not removing it")
    if any(os.path.lexists(p) for p in ("/usr/bin/evpnd", "/usr/bin/evpnctl", "/etc/evpnd")):
        pytest.skip("an evpnd not from the package is installed here: not touching it")
    missing = [p for p in NEEDED if "ok installed" not in _status(p)]
    if missing:
        pytest.skip(f"not installed (./scripts/test installs them): {', '.join(missing)}")
    user_before, group_before = _exists("evpnd", "passwd"), _exists("evpnd", "group")

    started = time.monotonic()
    _run(str(ROOT / "scripts" / "install"), "--build", str(tmp_path), timeout=300)
    built = time.monotonic() - started
    (deb,) = tmp_path.glob("evpnd_*_all.deb")
    lint = subprocess.run(["lintian", str(deb)], capture_output=True, text=True, timeout=120)
    assert not [line for line in lint.stdout.splitlines() if line.startswith("E:")], lint.stdout
    files: list[str] = []
    try:
        _run("dpkg", "-i", str(deb))
        listed = _run("dpkg-query", "-L", "evpnd").splitlines()
        files = [f for f in listed if f.strip() and not os.path.isdir(f)]  # not /lib, /etc
        for wanted in PACKAGED:
            assert wanted in files, wanted
        unit = Path("/lib/systemd/system/evpnd.service").read_text()
        assert "ExecStart=/usr/bin/evpnd --config" in unit and "man:evpnd(8)" in unit
        # the conffile is root:evpnd 0640 (a statoverride), the user exists
        config = os.stat("/etc/evpnd/evpnd.yaml")
        assert (config.st_uid, oct(config.st_mode & 0o777)) == (0, "0o640")
        assert _run("stat", "-c", "%G", "/etc/evpnd/evpnd.yaml").strip() == "evpnd"
        assert "/etc/evpnd/evpnd.yaml" in _run("dpkg-query", "-W", "-f=${Conffiles}", "evpnd")
        # the programs run on Debian's libraries, not this tree's virtualenv
        where = _run("/usr/bin/python3", "-c", "import evpnd, pyroute2, structlog; "
                     "print(evpnd.__file__, pyroute2.__file__, structlog.__file__)")  # fmt: skip
        assert where.split() and all(
            p.startswith("/usr/lib/python3/dist-packages/") for p in where.split()
        ), where
        assert Path("/usr/bin/evpnd").read_text().startswith("#!/usr/bin/python3\n")
        version = _run("/usr/bin/evpnctl", "--version").split()[1]
        assert _run("/usr/bin/evpnd", "--version").strip() == f"evpnd {version}"
        out, _ = run_demo(evpnd=("/usr/bin/evpnd",))
        assert "no problem found" in out
    finally:
        purged = subprocess.run(
            ["apt-get", "purge", "-y", "-q", "evpnd"], capture_output=True, text=True,
            timeout=120, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )  # fmt: skip
        if not user_before and _exists("evpnd", "passwd"):
            subprocess.run(["userdel", "evpnd"], check=False)
        if not group_before and _exists("evpnd", "group"):
            subprocess.run(["groupdel", "evpnd"], check=False)
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert _status("evpnd") == ""
    left = [f for f in files if os.path.lexists(f)]
    left += [p for p in MADE_AT_RUN_TIME if os.path.lexists(p)]
    assert left == [], left
    assert "evpnd" not in _run("dpkg-statoverride", "--list")
    assert built < 120, f"the package took {built:.0f} s to build"
