"""A peer that asks for everything and reads nothing, a peer that keeps reconnecting, and the
log lines both cause — in memory, time moved by hand (issue #23). The same against real
evpnd processes is in test_hostile_loopback.py."""

from __future__ import annotations

from evpnd.bgp.attributes import PmsiTunnel
from evpnd.bgp.backlog import Answer, Backlog
from evpnd.bgp.damping import Damping
from evpnd.bgp.events import (
    CloseConnection,
    PeerDamped,
    PeerRouteRefresh,
    SendData,
    State,
)
from evpnd.bgp.messages import Notification, RouteRefresh, decode_message
from evpnd.bgp.negotiation import EVPN_FAMILY
from evpnd.bgp.peer import PeerSettings
from evpnd.evpn.routes import InclusiveMulticastRoute
from evpnd.rib.validation import problem
from evpnd.wire.constants import CeaseSubcode, ErrorCode
from tests.peer_pair import PeerPair
from tests.test_rib import RD1, with_

EVPN = EVPN_FAMILY


def test_refreshes_coalesce_one_waiting_and_one_more_while_one_leaves() -> None:
    backlog = Backlog()
    assert backlog.requested(EVPN) is Answer.START
    # not a byte left yet: the answer reaches the peer after these requests
    assert [backlog.requested(EVPN) for _ in range(3)] == [Answer.COALESCED] * 3
    backlog.answer_started(EVPN)
    # part of it left before this request: one more answer, never two
    assert backlog.requested(EVPN) is Answer.AFTER
    assert backlog.requested(EVPN) is Answer.COALESCED
    assert backlog.answer_written(EVPN) is True  # the one asked for meanwhile starts now
    assert backlog.requested(EVPN) is Answer.COALESCED
    assert backlog.answer_written(EVPN) is False
    assert backlog.requested(EVPN) is Answer.START
    assert backlog.coalesced == 5
    # another family is answered on its own
    assert backlog.requested((1, 128)) is Answer.START


def established() -> PeerPair:
    pair = PeerPair()
    pair.start()
    pair.advance(5)
    assert pair.established()
    return pair


def test_a_hundred_thousand_pipelined_refreshes_ask_for_one_answer() -> None:
    pair = established()
    a, b = pair.a.peer, pair.b.peer
    conn = a.established_id
    assert conn is not None and b.established is not None
    pair.a.actions.clear()
    pipelined = RouteRefresh(*EVPN).encode() * 100_000
    a.data_received(conn, pipelined, pair.now)
    pair.pump()
    assert len(pair.of_type(pair.a, PeerRouteRefresh)) == 1
    assert a.backlog.coalesced == 99_999
    assert pair.established()


def test_a_peer_over_the_byte_bound_is_dropped_with_out_of_resources() -> None:
    pair = established()
    a = pair.a.peer
    a.backlog.limit = 1 << 20
    assert a.output_measured(1 << 20, pair.now) is False  # at the bound: kept
    assert pair.established()
    assert a.output_measured((1 << 20) + 1, pair.now) is True
    pair.a.actions.clear()
    pair.pump()
    sent = [decode_message(action.data[-21:]) for action in pair.of_type(pair.a, SendData)]
    (cease,) = [m for m in sent if isinstance(m, Notification)]
    assert (cease.code, cease.subcode) == (ErrorCode.CEASE, CeaseSubcode.OUT_OF_RESOURCES)
    assert pair.of_type(pair.a, CloseConnection)
    assert a.state is not State.ESTABLISHED and "over 1048576" in a.last_error


def test_the_idle_hold_doubles_from_one_second_to_two_minutes_and_resets() -> None:
    damping = Damping()
    holds = [damping.ended(100.0, None) for _ in range(11)]
    assert holds == [0, 0, 1, 2, 4, 8, 16, 32, 64, 120, 120]
    assert damping.holding(100.0) and not damping.holding(220.0)
    # a session that stayed up a minute forgives what went before
    assert damping.ended(400.0, up_since=340.0) == 0 and damping.failures == 1
    # a session up only a little while is a failure like the others
    damping.ended(401.0, None)
    assert damping.ended(402.0, up_since=401.5) == 1


def test_sessions_that_keep_dying_hold_the_peer_idle_both_ways() -> None:
    pair = PeerPair(
        a_settings=PeerSettings("192.0.2.2", 65000, connect_retry=1),
    )
    pair.start()
    for _ in range(3):
        pair.advance(2)
        assert pair.established()
        pair.cut()  # dies soon after it started
    (damped,) = pair.of_type(pair.a, PeerDamped)
    assert (damped.hold, damped.failures) == (1.0, 3)
    assert pair.of_type(pair.b, PeerDamped)  # the passive side counts its own
    # the active side does not try before the hold ends ...
    assert pair.a.peer.timer() is not None and pair.a.peer.timer() >= pair.now + 1.0 - 1e-9
    # ... and the passive side refuses a connection from it meanwhile
    b = pair.b.peer
    assert b.connection_made(pair.now + 0.5, outbound=False) is None
    assert b.connections_damped == 1 and b.refused_because == "damped"
    pair.advance(3)
    assert pair.established()
    # the next quick failure doubles the hold
    pair.cut()
    assert [d.hold for d in pair.of_type(pair.a, PeerDamped)] == [1.0, 2.0]


def test_an_operators_clears_never_hold_the_peer_idle() -> None:
    """`evpnctl clear peer` ends sessions on purpose: however often, no idle hold follows on
    our side (the peer, which sees our Cease, counts its own)."""
    pair = PeerPair(a_settings=PeerSettings("192.0.2.2", 65000, connect_retry=1))
    pair.start()
    cleared = Notification(ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_RESET)
    for _ in range(5):
        pair.advance(10)  # (past the far side's holds: it counts the Cease it received)
        assert pair.established()
        pair.a.peer.reset(pair.now, cleared, "cleared by the operator", failure=False)
        pair.pump()
    assert pair.of_type(pair.a, PeerDamped) == []
    assert pair.a.peer.damping.failures == 0


def test_a_refused_route_is_keyed_by_its_reason_not_the_tunnel_type() -> None:
    imet = InclusiveMulticastRoute(RD1, 0, bytes(4))
    reasons = {
        problem(imet, with_(pmsi_tunnel=PmsiTunnel(0, kind, 100, bytes(4))))
        for kind in (0, 1, 2, 3, 4, 5, 7, 255)
    }
    assert reasons == {"PMSI tunnel not ingress replication"}
