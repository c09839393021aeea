"""Restarts that keep every packet flowing (benchmarks/restart.py, at a smaller scale): with
5,000 remote MACs installed, evpnd is stopped with SIGTERM and started, then killed with -9
and started, while a host behind it pings a host behind its peer every 50 ms. No reply may be
lost, and afterwards the kernel holds exactly what the RIB says — with an evpnd peer (graceful
restart with the N bit) and with a peer whose graceful restart is RFC 4724's alone, which must
see the restart end its session without a NOTIFICATION."""

from __future__ import annotations

import pytest

from benchmarks.restart import run
from tests.netns import LAB

pytestmark = LAB


@pytest.mark.parametrize("peer", ["evpnd", "rfc4724"])
def test_a_restart_loses_no_packet_and_leaves_nothing_stale(peer: str) -> None:
    result = run(peer, 5000)
    assert result["lost"] == 0 and result["replies"] >= 40, result
    assert result["stale_or_missing"] == 0, result
    assert result["fdb_entries"] >= 5000, result
    if peer == "rfc4724":
        # SIGTERM: closed without a NOTIFICATION (RFC 8538 §2); kill -9: closed too
        assert result["rfc4724_sessions_ended_by"][:2] == ["closed", "closed"], result
