"""One version everywhere: evpnd/__init__.py's `__version__` is what `evpnd --version`,
`evpnctl --version`, the metric evpnd_build_info and the wheel (pyproject.toml reads it) say,
and debian/changelog and CHANGELOG.md must name it as their latest."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import evpnd
from evpnd.daemon import metrics

ROOT = Path(__file__).resolve().parents[1]


def _output(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args, "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_programs_say_the_one_version() -> None:
    assert _output("evpnd.cli") == f"evpnd {evpnd.__version__}"
    assert _output("evpnd.control.cli") == f"evpnctl {evpnd.__version__}"
    # evpnd_build_info's label is the package's attribute itself
    assert metrics.__version__ is evpnd.__version__


def test_the_wheel_reads_it_from_the_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "evpnd.__version__"}


def test_the_changelogs_name_it() -> None:
    debian = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert re.match(rf"evpnd \({re.escape(evpnd.__version__)}\) ", debian), debian
    versions = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert versions and versions[0] == evpnd.__version__


def test_the_package_ships_the_unit_and_the_licence() -> None:
    assert (ROOT / "debian" / "evpnd.service").resolve() == ROOT / "systemd" / "evpnd.service"
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    assert "Version 2.0, January 2004" in (ROOT / "LICENSE").read_text()[:200]
