"""The BGP state machine without sockets: two peers in memory, time moved by hand."""

from __future__ import annotations

import itertools
import random

from hypothesis import given
from hypothesis import strategies as st

from evpnd.bgp.events import (
    CloseConnection,
    ConnectRequested,
    PeerDown,
    PeerUp,
    PeerUpdate,
    PeerUpdateErrors,
    SendData,
    StaleRoutesExpired,
    State,
    StateChanged,
)
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import Keepalive, Notification, Open, decode_message
from evpnd.bgp.negotiation import LocalSettings
from evpnd.bgp.peer import Peer, PeerSettings
from evpnd.bgp.update import end_of_rib
from evpnd.wire.constants import CeaseSubcode, ErrorCode, OpenSubcode
from tests.peer_pair import PeerPair, Side
from tests.test_malformed import GOOD, update


def notifications(side: Side) -> list[Notification]:
    reader = MessageReader(65535)
    for data in side.sent:
        reader.feed(data)
    out = []
    for raw in reader.messages():
        assert isinstance(raw, bytes)
        message = decode_message(raw)
        if isinstance(message, Notification):
            out.append(message)
    return out


def test_sessions_establish_and_negotiate() -> None:
    pair = PeerPair(b=LocalSettings(asn=65000, router_id="192.0.2.2", hold_time=30, hostname="b"))
    pair.start()
    assert pair.established()
    (up,) = pair.of_type(pair.a, PeerUp)
    assert isinstance(up, PeerUp)
    assert up.negotiated.hold_time == 30 and up.negotiated.keepalive == 10
    assert up.negotiated.four_octet_as and up.negotiated.extended_message
    assert up.negotiated.peer_hostname == "b"
    states = [a.new for a in pair.a.actions if isinstance(a, StateChanged)]
    assert states == [
        State.ACTIVE,
        State.CONNECT,
        State.OPEN_SENT,
        State.OPEN_CONFIRM,
        State.ESTABLISHED,
    ]


def test_keepalives_keep_the_session_and_silence_ends_it() -> None:
    pair = PeerPair(b=LocalSettings(asn=65000, router_id="192.0.2.2", hold_time=9))
    pair.start()
    pair.advance(60)
    assert pair.established()  # keepalives every 3 s kept both hold timers from expiring
    pair.reachable = False
    pair.a.links.clear()  # A's packets vanish: B hears nothing
    pair.advance(9.5)
    assert pair.b.peer.state is not State.ESTABLISHED
    (sent,) = notifications(pair.b)[-1:]
    assert sent.code == ErrorCode.HOLD_TIMER_EXPIRED
    (down,) = pair.of_type(pair.b, PeerDown)
    assert isinstance(down, PeerDown) and "hold timer" in down.reason


def test_hold_time_zero_means_no_keepalives() -> None:
    pair = PeerPair(
        a=LocalSettings(asn=65000, router_id="192.0.2.1", hold_time=0),
        b=LocalSettings(asn=65000, router_id="192.0.2.2", hold_time=0),
    )
    pair.start()
    sent_before = len(pair.a.sent)
    pair.advance(3600)
    assert pair.established() and len(pair.a.sent) == sent_before
    assert pair.a.peer.timer() is None


def test_wrong_peer_as_is_refused() -> None:
    pair = PeerPair(a_settings=PeerSettings("192.0.2.2", 65099))
    pair.start()
    assert not pair.of_type(pair.a, PeerUp)
    refused = notifications(pair.a)[0]
    assert (refused.code, refused.subcode) == (ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS)
    assert refused.data == (65000).to_bytes(2, "big")
    assert "AS 65000" in pair.a.peer.last_error


def test_peer_without_evpn_gets_unsupported_capability_once() -> None:
    pair = PeerPair(b=LocalSettings(asn=65000, router_id="192.0.2.2", families=((1, 1),)))
    pair.start()
    sent = notifications(pair.a)
    assert [(n.code, n.subcode) for n in sent] == [
        (ErrorCode.OPEN_MESSAGE, OpenSubcode.UNSUPPORTED_CAPABILITY)
    ]
    assert sent[0].data == bytes.fromhex("010400190046")
    assert "L2VPN EVPN" in pair.a.peer.last_error


def test_collision_keeps_the_connection_of_the_higher_router_id() -> None:
    pair = PeerPair(b_settings=PeerSettings("192.0.2.1", 65000))  # both sides active
    pair.a.peer.start(pair.now)
    pair.b.peer.start(pair.now)
    # Both connect at once: hold back every action until both connections exist.
    for side in (pair.a, pair.b):
        action = side.peer.next_action()
        while action is not None and not isinstance(action, ConnectRequested):
            side.actions.append(action)
            action = side.peer.next_action()
    pending = [pair.a, pair.b]
    for side in pending:
        pair._perform(side, ConnectRequested())
    pair.pump()
    assert pair.established()
    assert len(pair.a.peer._connections) == 1 and len(pair.b.peer._connections) == 1
    (conn_id,) = pair.b.peer._connections
    # B (192.0.2.2) has the higher identifier: the connection B opened survives.
    assert conn_id in pair.b.peer._outbound
    ceases = [
        n
        for n in notifications(pair.a) + notifications(pair.b)
        if (n.code, n.subcode) == (ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
    ]
    # Each side resolves the collision by itself and closes the same (A's) connection with a
    # Cease, as FRR does in the reference capture.
    assert len(ceases) == 2


def test_unexpected_update_in_opensent_is_an_fsm_error() -> None:
    pair = PeerPair()
    pair.a.peer.start(pair.now)
    pair.a.peer.handle_timer(pair.now)
    actions = []
    while (action := pair.a.peer.next_action()) is not None:
        actions.append(action)
    assert any(isinstance(a, ConnectRequested) for a in actions)
    conn = pair.a.peer.connection_made(pair.now, outbound=True)
    assert conn is not None
    pair.a.peer.data_received(conn, update(GOOD), pair.now)
    pair.pump()
    (sent,) = notifications(pair.a)
    assert (sent.code, sent.subcode, sent.data) == (ErrorCode.FSM, 1, b"\x02")


def test_malformed_update_resets_and_soft_errors_do_not() -> None:
    pair = PeerPair()
    pair.start()
    b_conn = next(iter(pair.b.links))
    a_conn = pair.b.links[b_conn][0]
    soft = update(GOOD + bytes.fromhex("40060101"))  # ATOMIC_AGGREGATE with a value
    pair.a.peer.data_received(a_conn, soft, pair.now)
    pair.pump()
    assert pair.established()
    assert pair.of_type(pair.a, PeerUpdate) and pair.of_type(pair.a, PeerUpdateErrors)
    hard = update(GOOD + bytes.fromhex("40630100"))  # an unknown well-known attribute
    pair.a.peer.data_received(a_conn, hard, pair.now)
    pair.pump()
    (down,) = pair.of_type(pair.a, PeerDown)
    assert isinstance(down, PeerDown) and down.sent is not None
    assert (down.sent.code, down.sent.subcode) == (3, 2)


def test_graceful_restart_keeps_routes_until_end_of_rib() -> None:
    pair = PeerPair()
    pair.start()
    pair.cut()  # B "crashes": no NOTIFICATION, TCP gone
    (down,) = pair.of_type(pair.a, PeerDown)
    assert isinstance(down, PeerDown) and down.graceful_restart == 120
    pair.advance(5)
    assert pair.established()  # A reconnected by itself
    assert not pair.of_type(pair.a, StaleRoutesExpired)
    b_conn = next(iter(pair.b.links))
    pair.b.peer.send([end_of_rib()], pair.now)
    pair.pump()
    assert pair.a.peer._stale_deadline is None  # End-of-RIB ended the stale period
    pair.advance(1000)
    assert not pair.of_type(pair.a, StaleRoutesExpired)
    assert b_conn in pair.b.links


def test_graceful_restart_time_runs_out() -> None:
    pair = PeerPair()
    pair.start()
    pair.reachable = False
    pair.cut()
    pair.advance(119)
    assert not pair.of_type(pair.a, StaleRoutesExpired)
    pair.advance(2)
    assert len(pair.of_type(pair.a, StaleRoutesExpired)) == 1


def test_no_graceful_restart_from_a_helper_only_peer() -> None:
    pair = PeerPair(b=LocalSettings(asn=65000, router_id="192.0.2.2", graceful_restart_time=0))
    pair.start()
    pair.cut()
    (down,) = pair.of_type(pair.a, PeerDown)
    assert isinstance(down, PeerDown) and down.graceful_restart is None


def test_admin_stop_sends_hard_reset_with_the_reason_when_n_bit_negotiated() -> None:
    pair = PeerPair()
    pair.start()
    pair.a.peer.stop(pair.now, "maintenance")
    pair.pump()
    assert pair.a.peer.state is State.IDLE
    sent = notifications(pair.a)[-1]
    assert (sent.code, sent.subcode) == (ErrorCode.CEASE, CeaseSubcode.HARD_RESET)
    inner = Notification(sent.data[0], sent.data[1], sent.data[2:])
    assert inner.shutdown_message == "maintenance"
    (down,) = pair.of_type(pair.b, PeerDown)
    assert isinstance(down, PeerDown) and down.graceful_restart is None
    pair.advance(600)
    assert pair.a.peer.state is State.IDLE  # stays down


def test_connect_retry_backs_off_with_jitter_up_to_the_cap() -> None:
    pair = PeerPair(a_settings=PeerSettings("192.0.2.2", 65000, connect_retry=30))
    pair.reachable = False
    pair.a.peer.start(pair.now)
    attempts = []
    for _ in range(10):
        deadline = pair.a.peer.timer()
        assert deadline is not None
        pair.now = deadline
        attempts.append(deadline)
        pair.a.peer.handle_timer(pair.now)
        pair.pump()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    for gap, nominal in zip(gaps, [1, 2, 4, 8, 16, 30, 30, 30, 30], strict=True):
        assert 0.75 * nominal <= gap <= nominal
    assert pair.a.peer.state is State.ACTIVE


def test_passive_peer_never_connects() -> None:
    pair = PeerPair()
    pair.b.peer.start(pair.now)
    pair.advance(300)
    assert not pair.of_type(pair.b, ConnectRequested)
    assert pair.b.peer.state is State.ACTIVE


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("data"), st.binary(max_size=64)),
            st.tuples(st.just("advance"), st.floats(0, 200)),
            st.tuples(st.just("cut"), st.none()),
            st.tuples(st.just("stop"), st.none()),
            st.tuples(st.just("start"), st.none()),
        ),
        max_size=30,
    )
)
def test_any_sequence_of_inputs_leaves_a_sane_machine(steps) -> None:
    pair = PeerPair()
    pair.start()
    for kind, value in steps:
        if kind == "data":
            for conn_id in list(pair.a.peer._connections):
                pair.a.peer.data_received(conn_id, value, pair.now)
            pair.pump()
        elif kind == "advance":
            pair.advance(value)
        elif kind == "cut":
            pair.cut()
        elif kind == "stop":
            pair.a.peer.stop(pair.now, "test")
            pair.pump()
        else:
            pair.a.peer.start(pair.now)
            pair.pump()
        for side in (pair.a, pair.b):
            assert len(side.peer._connections) <= 2
            if side.peer.state is State.ESTABLISHED:
                assert side.peer.established is not None
            # a closed connection never lingers in the peer
            assert all(c.alive for c in side.peer._connections.values())
    pair.a.peer.start(pair.now)
    pair.reachable = True
    pair.advance(120)
    assert pair.established()  # whatever happened, the two find each other again


def test_graceful_stop_lets_the_peer_keep_our_routes() -> None:
    pair = PeerPair()
    pair.start()
    pair.a.peer.stop(pair.now, "restarting", graceful=True)
    pair.pump()
    sent = notifications(pair.a)[-1]
    assert (sent.code, sent.subcode) == (ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
    assert sent.shutdown_message == "restarting"
    (down,) = pair.of_type(pair.b, PeerDown)
    assert isinstance(down, PeerDown) and down.graceful_restart == 120


def test_graceful_stop_without_the_n_bit_closes_without_a_notification() -> None:
    """RFC 4724 alone (BIRD 2.x, GoBGP configured so): a NOTIFICATION ends the session for
    good there (RFC 8538 §2), so a restart closes the connection silently and the peer keeps
    our routes; a stop for good still sends the Cease."""
    rfc4724 = LocalSettings(asn=65000, router_id="192.0.2.2", graceful_notification=False)
    pair = PeerPair(b=rfc4724)
    pair.start()
    pair.a.peer.stop(pair.now, "restarting", graceful=True)
    pair.pump()
    assert notifications(pair.a) == []
    (down,) = pair.of_type(pair.b, PeerDown)
    assert isinstance(down, PeerDown) and down.graceful_restart == 120 and down.received is None
    again = PeerPair(b=rfc4724)
    again.start()
    again.a.peer.stop(again.now, "going away")
    again.pump()
    (sent,) = notifications(again.a)
    assert (sent.code, sent.subcode) == (ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
    (down,) = again.of_type(again.b, PeerDown)
    assert isinstance(down, PeerDown) and down.graceful_restart is None


def test_a_pipelined_open_from_an_established_peer_closes_only_the_new_connection() -> None:
    """RFC 4271 §6.8: a second connection from a peer whose session is Established (and that
    cannot restart gracefully) is the one to close — also when its OPEN and KEEPALIVE arrive
    in one segment, so that the new connection would reach Established at once."""
    from evpnd.bgp.messages import KEEPALIVE_BYTES

    no_gr = LocalSettings(asn=65000, router_id="192.0.2.2", graceful_restart_time=0)
    pair = PeerPair(b=no_gr)
    pair.start()
    assert pair.established()
    before = pair.a.peer.established
    second = pair.a.peer.connection_made(pair.now, outbound=False)
    assert second is not None
    pair.a.peer.data_received(second, no_gr.open_message().encode() + KEEPALIVE_BYTES, pair.now)
    actions = [pair.a.peer.next_action() for _ in range(20)]
    assert not [a for a in actions if isinstance(a, PeerDown)]
    assert pair.a.peer.established is before and pair.a.peer.state is State.ESTABLISHED
    closed = [a for a in actions if isinstance(a, CloseConnection)]
    assert [a.connection for a in closed] == [second]


def test_a_peer_gets_two_connections_at_most() -> None:
    """1,100 idle connections from a configured address must not take every descriptor: a
    third inbound connection is refused (the shell closes it) and counted."""
    pair = PeerPair()
    pair.start()
    assert pair.established()
    second = pair.a.peer.connection_made(pair.now, outbound=False)
    assert second is not None  # a collision or a restart: allowed
    refused = [pair.a.peer.connection_made(pair.now, outbound=False) for _ in range(1100)]
    assert refused == [None] * 1100 and pair.a.peer.connections_refused == 1100
    assert pair.a.peer.state is State.ESTABLISHED


def test_a_new_open_is_a_restart_only_with_the_r_bit() -> None:
    """RFC 4724 §4: a new connection's OPEN from an Established, restart-capable peer means it
    restarted only when it says so (the R bit); without it, the two sides connected at once and
    the new connection is the one to close (RFC 4271 §6.8) — the session must not flap (it did,
    at start, when both evpnds connected at the same moment)."""
    for restarting in (False, True):
        b = LocalSettings(asn=65000, router_id="192.0.2.2", restarting=restarting)
        pair = PeerPair()
        pair.start()
        before = pair.a.peer.established
        second = pair.a.peer.connection_made(pair.now, outbound=False)
        assert second is not None
        pair.a.peer.data_received(second, b.open_message().encode(), pair.now)
        actions = [pair.a.peer.next_action() for _ in range(20)]
        downs = [a for a in actions if isinstance(a, PeerDown)]
        if restarting:
            assert [d.reason for d in downs] == ["peer reconnected (graceful restart)"]
            assert downs[0].graceful_restart  # its routes are kept as stale
        else:
            assert not downs and pair.a.peer.established is before
            closed = [a.connection for a in actions if isinstance(a, CloseConnection)]
            assert closed == [second]


# --- RFC checks (issue #23): each failed before its fix ------------------------------------------


def test_a_graceful_stop_still_sends_the_cease_to_a_peer_without_graceful_restart() -> None:
    """A peer that did not offer graceful restart keeps nothing for us across a restart: a
    silent close would only leave it forwarding to us until its hold timer ran out. It gets
    the Cease at once, with or without the N bit on our side."""
    for notification in (True, False):
        no_gr = LocalSettings(asn=65000, router_id="192.0.2.2", graceful_restart_time=0)
        ours = LocalSettings(asn=65000, router_id="192.0.2.1", graceful_notification=notification)
        pair = PeerPair(a=ours, b=no_gr)
        pair.start()
        pair.a.peer.stop(pair.now, "restarting", graceful=True)
        pair.pump()
        (sent,) = notifications(pair.a)
        assert (sent.code, sent.subcode) == (ErrorCode.CEASE, CeaseSubcode.ADMINISTRATIVE_SHUTDOWN)
        (down,) = pair.of_type(pair.b, PeerDown)
        assert isinstance(down, PeerDown) and down.graceful_restart is None


def test_the_losing_connection_of_a_collision_gets_no_keepalive() -> None:
    """RFC 4271 §6.8: a collision is resolved when the OPEN that reveals it arrives. The
    connection that loses then gets our Cease alone, never first a KEEPALIVE saying its OPEN
    was accepted. Here the peer (192.0.2.2, the higher identifier) has an inbound connection
    in OpenConfirm; the OPEN on our own outbound connection loses against it."""
    peer = Peer(
        PeerSettings("192.0.2.2", 65000),
        LocalSettings(asn=65000, router_id="192.0.2.1"),
        random.Random(1),
    )
    theirs = LocalSettings(asn=65000, router_id="192.0.2.2").open_message().encode()
    peer.start(0.0)
    inbound = peer.connection_made(0.0, outbound=False)
    outbound = peer.connection_made(0.0, outbound=True)
    assert inbound is not None and outbound is not None
    peer.data_received(inbound, theirs, 0.0)  # inbound: OpenConfirm, confirmed
    peer.data_received(outbound, theirs, 0.0)  # the collision, resolved against outbound
    sent: dict[int, list[object]] = {}
    for action in iter(peer.next_action, None):
        if isinstance(action, SendData):
            reader = MessageReader(65535)
            reader.feed(action.data)
            sent.setdefault(action.connection, []).extend(
                decode_message(raw) for raw in reader.messages() if isinstance(raw, bytes)
            )
    assert [type(m) for m in sent[inbound]] == [Open, Keepalive]
    assert [type(m) for m in sent[outbound]] == [Open, Notification]
    cease = sent[outbound][1]
    assert isinstance(cease, Notification)
    assert cease.subcode == CeaseSubcode.CONNECTION_COLLISION_RESOLUTION


def refusal_of(open_message: Open, peer_as: int | None) -> Notification:
    """What a passive peer answers `open_message` with, on a fresh inbound connection."""
    peer = Peer(
        PeerSettings("192.0.2.2", peer_as, passive=True),  # type: ignore[arg-type]
        LocalSettings(asn=65000, router_id="192.0.2.1"),
        random.Random(1),
    )
    peer.start(0.0)
    conn_id = peer.connection_made(0.0, outbound=False)
    assert conn_id is not None
    peer.data_received(conn_id, open_message.encode(), 0.0)
    sent = b"".join(a.data for a in iter(peer.next_action, None) if isinstance(a, SendData))
    reader = MessageReader(65535)
    reader.feed(sent)
    found = [decode_message(raw) for raw in reader.messages()]
    assert not any(isinstance(m, Keepalive) for m in found), found
    (refusal,) = [m for m in found if isinstance(m, Notification)]
    return refusal


def test_an_open_from_as_0_is_refused() -> None:
    """RFC 7607 §2: AS 0 is never a peer's AS, even where any AS is welcome (a listen range
    without remote_as)."""
    local = LocalSettings(asn=0, router_id="192.0.2.2")
    for peer_as in (None, 65000):
        refused = refusal_of(local.open_message(), peer_as)
        assert (refused.code, refused.subcode) == (ErrorCode.OPEN_MESSAGE, OpenSubcode.BAD_PEER_AS)


def test_an_open_with_an_unknown_optional_parameter_is_refused() -> None:
    """RFC 4271 §6.2: an optional parameter we do not recognise (only capabilities, type 2,
    are defined; type 1, authentication, is deprecated by RFC 5492) is OPEN Message Error /
    Unsupported Optional Parameter."""
    caps = LocalSettings(asn=65000, router_id="192.0.2.2").capabilities()
    odd = Open(65000, 90, "192.0.2.2", caps, other_parameters=((9, b"\x01\x02"),))
    refused = refusal_of(odd, 65000)
    assert (refused.code, refused.subcode) == (
        ErrorCode.OPEN_MESSAGE,
        OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER,
    )


def test_a_connection_the_peer_closes_without_a_word_is_no_failure_of_ours() -> None:
    """A peer in its idle hold (damping) closes our connection before reading a byte. Counted
    as our failure, two damping speakers held each other off in turn — each refusal doubled
    the other's hold, up to two minutes, and the session never came back (found by the soak:
    benchmarks/soak.py --seed 3, evpnd reflector and evpnd VTEP after link flaps). A
    connection that brought bytes (a header error, a NOTIFICATION) still counts."""
    pair = PeerPair()
    peer = pair.a.peer
    peer.start(pair.now)
    for _ in range(10):
        conn = peer.connection_made(pair.now, outbound=True)
        assert conn is not None
        peer.connection_lost(conn, pair.now)  # closed by the peer, nothing read
        pair.advance(5)
    assert peer.damping.failures == 0 and not peer.damping.holding(pair.now)
    for _ in range(3):
        conn = peer.connection_made(pair.now, outbound=True)
        assert conn is not None
        peer.data_received(conn, b"\x00" * 19, pair.now)  # no marker: a header error
        peer.connection_lost(conn, pair.now)
        pair.advance(5)
    assert peer.damping.failures == 3
