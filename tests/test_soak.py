"""The fault soak (benchmarks/soak.py) for two minutes: four VTEPs (two evpnd, FRR 8.4, an
evpnd route reflector), faults at random every few seconds, and every evpnd kernel checked
against FRR's best paths after each quiet period (docs/testing.md, "The soak").

The seeds that found defects, each now a fast test of its own:
- 1: a killed `evpnctl watch` logged as a failed request with a traceback
  (tests/test_control_server.py::test_a_watcher_that_went_away_is_let_go_quietly_on_uvloop);
- 2: an IP that moved to another MAC left the old MAC/IP route advertised
  (tests/test_local.py::test_an_ip_that_moves_to_another_mac_leaves_no_binding_behind);
- 3: two damping speakers held each other off for good after link flaps
  (tests/test_peer_fsm.py::test_a_connection_the_peer_closes_without_a_word_is_no_failure_of_ours).
The run below replays seed 3's kinds of fault (the CI set)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks import soak
from tests.netns import LAB

pytestmark = [
    *LAB,
    pytest.mark.skipif(
        not os.path.exists("/usr/lib/frr/bgpd"),
        reason="FRR is not installed (scripts/test installs Debian's frr)",
    ),
]

SEED = int(os.environ.get("EVPND_SOAK_SEED", "3"))


def test_two_minutes_of_faults_leave_every_kernel_as_the_fabric_says(tmp_path: Path) -> None:
    # the event log (and the daemons' logs after a violation) in pytest's own folder: kept
    # for a replay, cleared with pytest's older runs, never left in /tmp
    log = tmp_path / "soak.log"
    result = soak.main(["--seconds", "120", "--seed", str(SEED), "--ci", "--log", str(log)])
    assert result["violations"] == [], result
    assert sum(result["faults"].values()) >= 10, result
    assert result["max_loop_lag_s"] < 0.2, result
