"""contrib/prometheus/evpnd-alerts.yml checked by promtool and exercised by its unit tests
(evpnd-alerts.test.yml): each alert fires on what should fire it, and only then."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.loopback import ROOT

PROMETHEUS = ROOT / "contrib" / "prometheus"

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool missing (Debian: prometheus; scripts/test installs it)",
)


@needs_promtool
def test_the_alert_rules_check_and_pass_their_unit_tests() -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", "evpnd-alerts.yml"],
        capture_output=True,
        text=True,
        cwd=PROMETHEUS,
    )
    assert check.returncode == 0 and "SUCCESS: 14 rules found" in check.stdout, check
    tested = subprocess.run(
        ["promtool", "test", "rules", "evpnd-alerts.test.yml"],
        capture_output=True,
        text=True,
        cwd=PROMETHEUS,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
