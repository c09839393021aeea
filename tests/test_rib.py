"""Loc-RIB, best path and Adj-RIB-Out, without sockets."""

from __future__ import annotations

from dataclasses import replace

from evpnd.bgp.attributes import AsPath, PathAttributes
from evpnd.bgp.context import CodecContext
from evpnd.bgp.update import Update, decode_update
from evpnd.evpn.extcommunities import Encapsulation, MacMobility, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import MacIpRoute
from evpnd.rib.adjout import AdjRibOut, Policy, Speaker, chunked
from evpnd.rib.locrib import Rib, RouteChange
from evpnd.rib.paths import Path, Source
from tests.ribs import FollowedRib

RD1 = RouteDistinguisher.from_text("192.0.2.1:1")
RD2 = RouteDistinguisher.from_text("192.0.2.2:1")
MAC = bytes.fromhex("020000000001")
A = Source("192.0.2.1", "192.0.2.1", 65000, ibgp=True)
B = Source("192.0.2.2", "192.0.2.2", 65000, ibgp=True)
E = Source("198.51.100.1", "198.51.100.1", 65001, ibgp=False)
LOCAL = Source("local", "192.0.2.9", 65000, ibgp=True)

BASE = PathAttributes(
    origin=0,
    as_path=AsPath(),
    ext_communities=(Encapsulation(8), RouteTarget(0, 65000, 100)),
    nexthop=b"\xc0\x00\x02\x01",
)


def mac_route(rd: RouteDistinguisher = RD1, mac: bytes = MAC, ip: bytes = b"") -> MacIpRoute:
    return MacIpRoute(rd, 0, mac, ip, ZERO_ESI, 100)


def with_(**changes: object) -> PathAttributes:
    return replace(BASE, **changes)  # type: ignore[arg-type]


def test_add_change_withdraw_report_best_path_changes() -> None:
    rib = FollowedRib()
    seen: list[list[RouteChange]] = []
    rib.follow(seen.append)
    route = mac_route()
    (added,) = rib.update(A, [route], BASE, [])
    assert added.old is None and added.new is not None and added.new.source is A
    (changed,) = rib.update(A, [route], with_(med=5), [])
    assert changed.old is added.new and changed.new is not None
    assert changed.new.attributes.med == 5
    (gone,) = rib.update(A, [], BASE, [route._replace(label1=0)])  # labels are not the key
    assert gone.new is None and len(rib) == 0
    assert len(seen) == 3


def test_mac_only_and_mac_ip_routes_are_two_routes() -> None:
    rib = Rib()
    rib.update(A, [mac_route(), mac_route(ip=b"\x0a\x00\x00\x01")], BASE, [])
    assert len(rib) == 2
    assert len(rib.mac_paths(100, MAC)) == 2


def test_best_path_order() -> None:
    rib = Rib()
    route = mac_route()
    rib.update(A, [route], with_(local_pref=100), [])
    rib.update(B, [route], with_(local_pref=200), [])
    assert rib.best(route.key).source is B  # type: ignore[union-attr]
    rib.update(B, [route], with_(local_pref=100, as_path=AsPath.sequence(1)), [])
    assert rib.best(route.key).source is A  # type: ignore[union-attr]  # shorter AS_PATH
    rib.update(B, [route], with_(local_pref=100), [])
    assert rib.best(route.key).source is A  # type: ignore[union-attr]  # lower router id
    rib.update(E, [route], with_(local_pref=100), [])
    assert rib.best(route.key).source is E  # type: ignore[union-attr]  # eBGP over iBGP
    rib.update(A, [route], with_(ext_communities=(MacMobility(3),)), [])
    assert rib.best(route.key).source is A  # type: ignore[union-attr]  # higher sequence
    rib.update(B, [route], with_(ext_communities=(MacMobility(0, sticky=True),)), [])
    assert rib.best(route.key).source is B  # type: ignore[union-attr]  # sticky wins
    assert len(rib.candidates(route.key)) == 3


def test_med_is_compared_only_within_one_neighbour_as() -> None:
    rib = Rib()
    route = mac_route()
    rib.update(A, [route], with_(as_path=AsPath.sequence(65010), med=50), [])
    rib.update(B, [route], with_(as_path=AsPath.sequence(65010), med=10), [])
    assert rib.best(route.key).source is B  # type: ignore[union-attr]
    rib.update(B, [route], with_(as_path=AsPath.sequence(65020), med=10), [])
    assert rib.best(route.key).source is A  # type: ignore[union-attr]  # router id decides


def test_mac_mobility_across_vteps() -> None:
    rib = Rib()
    old_home = mac_route(RD1)
    new_home = mac_route(RD2)
    rib.update(A, [old_home], with_(nexthop=b"\xc0\x00\x02\x01"), [])
    rib.update(
        B, [new_home], with_(nexthop=b"\xc0\x00\x02\x02", ext_communities=(MacMobility(1),)), []
    )
    winner, loser = rib.mac_paths(100, MAC)
    assert winner.source is B and loser.source is A
    rib.update(A, [], BASE, [old_home])
    assert [p.source for p in rib.mac_paths(100, MAC)] == [B]


def test_graceful_restart_stale_then_sweep() -> None:
    rib = Rib()
    kept, dropped = mac_route(), mac_route(mac=bytes.fromhex("020000000002"))
    rib.update(A, [kept, dropped], BASE, [])
    assert rib.mark_stale(A.name) == 2
    rib.update(A, [kept], BASE, [])  # the peer came back and re-sent one of them
    changes = rib.sweep_stale(A.name)
    assert [c.key for c in changes] == [dropped.key]
    assert rib.best(kept.key) is not None and not rib.best(kept.key).stale  # type: ignore[union-attr]


def test_stale_path_loses_to_a_fresh_one() -> None:
    rib = Rib()
    route = mac_route()
    rib.update(A, [route], BASE, [])
    rib.update(B, [route], BASE, [])
    assert rib.best(route.key).source is A  # type: ignore[union-attr]
    rib.mark_stale(A.name)
    assert rib.best(route.key).source is B  # type: ignore[union-attr]


def decode_all(messages: list[bytes], ctx: CodecContext) -> list[Update]:
    out = []
    for raw in messages:
        update = decode_update(raw, ctx)
        assert isinstance(update, Update), update
        out.append(update)
    return out


def test_adj_rib_out_coalesces_and_packs() -> None:
    rib = FollowedRib()
    ctx = CodecContext()
    out = AdjRibOut(Policy.of(B, ctx), Speaker(65000, "192.0.2.9"))
    rib.follow(out.enqueue)
    routes = [mac_route(mac=i.to_bytes(6, "big")) for i in range(1, 301)]
    rib.update(LOCAL, routes, BASE, [])
    rib.update(LOCAL, [], BASE, routes[:100])  # withdrawn before ever being sent
    updates = decode_all(out.flush(), ctx)
    assert sum(len(u.announced) for u in updates) == 200
    assert not any(u.withdrawn for u in updates)
    assert len(updates) <= 3  # 200 routes of 35 bytes in 4096-byte messages
    assert updates[0].attributes.local_pref == 100  # added for iBGP
    assert out.flush() == []
    rib.update(LOCAL, [], BASE, routes[100:110])
    (withdrawal,) = decode_all(out.flush(), ctx)
    assert withdrawal.withdrawn == [r.key for r in routes[100:110]]  # (key fields only)


def test_split_horizon_and_route_reflection() -> None:
    rib = FollowedRib()
    speaker = Speaker(65000, "192.0.2.9", route_reflector=True)
    to_b = AdjRibOut(Policy.of(B, CodecContext()), speaker)
    client = replace(B, name="192.0.2.3", router_id="192.0.2.3", route_reflector_client=True)
    to_client = AdjRibOut(Policy.of(client, CodecContext()), speaker)
    from_a = mac_route()
    rib.follow(to_b.enqueue)
    rib.follow(to_client.enqueue)
    rib.update(A, [from_a], BASE, [])  # A is a non-client iBGP peer
    assert to_b.flush() == []  # non-client to non-client: not reflected
    (reflected,) = decode_all(to_client.flush(), CodecContext())
    assert reflected.attributes.originator_id == bytes((192, 0, 2, 1))
    assert reflected.attributes.cluster_list == (bytes((192, 0, 2, 9)),)


def test_ebgp_export_prepends_and_keeps_the_vtep_next_hop() -> None:
    rib = FollowedRib()
    out = AdjRibOut(Policy.of(E, CodecContext(external=True)), Speaker(65000, "192.0.2.9"))
    rib.follow(out.enqueue)
    rib.update(A, [mac_route()], with_(local_pref=300, med=7), [])
    (update,) = decode_all(out.flush(), CodecContext(external=True))
    attrs = update.attributes
    assert attrs.as_path == AsPath.sequence(65000)
    assert attrs.local_pref is None and attrs.med is None
    assert attrs.nexthop == BASE.nexthop
    rib.update(E, [mac_route(RD2)], with_(as_path=AsPath.sequence(65001)), [])
    assert out.flush() == []  # not back to E


def test_route_refresh_resends_everything() -> None:
    rib = FollowedRib()
    out = AdjRibOut(Policy.of(B, CodecContext()), Speaker(65000, "192.0.2.9"))
    rib.follow(out.enqueue)
    rib.update(LOCAL, [mac_route(mac=i.to_bytes(6, "big")) for i in range(1, 11)], BASE, [])
    first = out.flush()
    assert out.table() == chunked(first)
    assert out.table() is out.table()  # built once for everyone who asks
    rib.update(LOCAL, [], BASE, [mac_route(mac=(1).to_bytes(6, "big"))])
    out.flush()
    assert out.table().messages == 1 and out.table() != chunked(first)  # built anew


def test_path_repr() -> None:
    assert "02:00:00:00:00:01" in repr(Path(mac_route(), BASE, A))


def test_loop_checks_on_received_paths() -> None:
    """RFC 4271 §9.1.2 (our AS in an eBGP path), RFC 4456 §8 (our cluster id)."""
    speaker = Speaker(65000, "192.0.2.9")
    ours = bytes((192, 0, 2, 9))
    assert speaker.accepts(BASE, ibgp=True)
    looped = with_(as_path=AsPath.sequence(65001, 65000))
    assert not speaker.accepts(looped, ibgp=False) and speaker.accepts(looped, ibgp=True)
    assert not speaker.accepts(with_(originator_id=ours), ibgp=True)
    assert not speaker.accepts(with_(cluster_list=(bytes(4), ours)), ibgp=True)
    assert speaker.accepts(with_(cluster_list=(bytes(4),)), ibgp=True)


def test_routes_that_may_not_be_imported() -> None:
    from evpnd.bgp.attributes import PmsiTunnel
    from evpnd.evpn.routes import InclusiveMulticastRoute
    from evpnd.rib.validation import problem, split

    good = mac_route()
    zero = mac_route(mac=bytes(6))
    group = mac_route(mac=bytes.fromhex("333300000001"))
    routes = [good, zero, group]
    kept, refused = split(routes, BASE)
    assert kept == [good]
    assert refused == [(zero, "MAC 00:00:00:00:00:00"), (group, "multicast or broadcast MAC")]
    assert split([good], BASE) == ([good], [])
    assert problem(good, with_(nexthop=bytes(5))) == "no IPv4 or IPv6 next hop"
    imet = InclusiveMulticastRoute(RD1, 0, bytes(4))
    assert problem(imet, with_(pmsi_tunnel=PmsiTunnel(0, 6, 100, bytes(4)))) is None
    assert "not ingress replication" in str(
        problem(imet, with_(pmsi_tunnel=PmsiTunnel(0, 3, 100, bytes(4))))
    )


def test_a_throttle_says_the_first_then_once_an_interval_with_the_count() -> None:
    from evpnd.ratelimit import Throttle

    throttle = Throttle(60.0, limit=2)
    assert throttle.allow("a", 0.0) == 0
    assert [throttle.allow("a", t) for t in (1.0, 2.0, 30.0)] == [None, None, None]
    assert throttle.allow("a", 61.0) == 3  # said again, with the three held back
    assert throttle.allow("b", 62.0) == 0 and throttle.allow("c", 63.0) == 0
    assert throttle.allow("a", 64.0) == 0  # forgotten (limit 2): said at once


def test_watchers_that_do_not_read_cost_nothing_and_see_what_they_lost() -> None:
    import asyncio

    from evpnd.control.watch import EventStream

    async def scenario() -> tuple[list[dict[str, object]], int]:
        stream = EventStream(limit=3)
        events = stream.follow()
        rib = Rib()
        routes = [mac_route(mac=i.to_bytes(6, "big")) for i in range(1, 101)]
        rib.update(A, routes, BASE, [])
        stream.route_changes(rib.take_changes())  # 3 queued, 97 lost
        first = [await anext(events) for _ in range(4)]
        return first, len(routes)

    first, count = asyncio.run(scenario())
    assert sorted(str(e["event"]) for e in first) == ["lost", "route", "route", "route"]
    (lost,) = [e for e in first if e["event"] == "lost"]
    assert lost["count"] == count - 3  # said as soon as there is room again


def test_peers_of_one_outbound_policy_share_an_update_group() -> None:
    client = replace(B, route_reflector_client=True)
    other_client = replace(client, name="192.0.2.4", router_id="192.0.2.4", asn=65000)
    ctx = CodecContext()
    assert Policy.of(client, ctx) == Policy.of(other_client, ctx)
    assert Policy.of(client, ctx) != Policy.of(B, ctx)  # a non-client gets fewer routes
    assert Policy.of(client, ctx) != Policy.of(client, replace(ctx, four_octet_as=False))
    assert Policy.of(E, ctx) != Policy.of(replace(E, asn=65077), ctx)  # eBGP: by the peer's AS


def test_a_client_gets_its_own_routes_back_with_its_originator_id() -> None:
    """One group for all clients: a client's route reaches it too, and RFC 4456 §8 has it
    drop the route by the ORIGINATOR_ID (evpnd does: Speaker.accepts)."""
    rib = FollowedRib()
    speaker = Speaker(65000, "192.0.2.9", route_reflector=True)
    client = replace(B, route_reflector_client=True)
    out = AdjRibOut(Policy.of(client, CodecContext()), speaker)
    rib.follow(out.enqueue)
    rib.update(client, [mac_route()], BASE, [])
    (update,) = decode_all(out.flush(), CodecContext())
    assert update.attributes.originator_id == bytes(int(x) for x in client.router_id.split("."))
    assert not Speaker(65000, client.router_id).accepts(update.attributes, ibgp=True)


def test_chunks_hold_whole_messages() -> None:
    messages = [bytes([n]) * 1000 for n in range(150)]
    chunks, count = chunked(messages, size=4096)
    assert count == 150 and b"".join(chunks) == b"".join(messages)
    assert all(len(c) % 1000 == 0 and len(c) <= 4096 + 999 for c in chunks)
    assert chunked([]) == ([], 0)


def test_a_path_whose_next_hop_is_unreachable_is_no_candidate() -> None:
    """RFC 4271 §9.1.2.1, as FRR: a route towards a VTEP the underlay cannot reach is kept but
    not used, and comes back when the VTEP does."""
    rib = Rib()
    far, near = bytes((192, 0, 2, 50)), bytes((192, 0, 2, 51))
    route = mac_route()
    rib.update(A, [route], with_(nexthop=far), [])
    rib.update(B, [route], with_(nexthop=near, local_pref=50), [])
    assert rib.best(route.key).source is A  # type: ignore[union-attr]
    assert rib.nexthops == {far: 1, near: 1}
    rib.take_changes()
    (change,) = rib.set_unreachable(frozenset({far}))
    assert change.old.source is A and change.new.source is B  # type: ignore[union-attr]
    assert [p.source for p in rib.ineligible()] == [A]
    # A's withdrawal of a path that is no candidate leaves B's alone
    rib.update(A, [], BASE, [route])
    assert rib.best(route.key).source is B and rib.nexthops == {near: 1}  # type: ignore[union-attr]
    # a new announcement towards an unreachable VTEP is kept, not used; then it comes back
    rib.update(A, [route], with_(nexthop=far), [])
    assert rib.best(route.key).source is B  # type: ignore[union-attr]
    rib.set_unreachable(frozenset())
    assert rib.best(route.key).source is A and not list(rib.ineligible())  # type: ignore[union-attr]


def test_a_walk_of_the_whole_rib_gives_the_loop_back_between_slices() -> None:
    """evpnctl's views and the metrics walk a snapshot of the Loc-RIB in slices
    (daemon/views.py `snapshot_slices`, `sliced`): others run between the slices, every entry
    comes once (its best path alone from `sliced`), and a change made meanwhile does not break
    the walk."""
    import asyncio
    from types import SimpleNamespace

    from evpnd.daemon.views import WALK_SLICE, sliced, snapshot_slices

    rib = Rib()
    routes = [mac_route(mac=i.to_bytes(6, "big")) for i in range(1, 2 * WALK_SLICE + 2)]
    rib.update(B, routes, BASE, [])
    rib.update(LOCAL, routes[-1:], BASE, [])  # a second candidate for one key
    daemon = SimpleNamespace(rib=rib)

    async def walk(best_only: bool) -> tuple[int, list[int]]:
        turns = 0

        async def others() -> None:
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(others())
        await asyncio.sleep(0)
        count, seen_turns = 0, []
        walked = sliced(daemon) if best_only else snapshot_slices(daemon)  # type: ignore[arg-type]
        async for entries in walked:
            count += sum(len(e) if isinstance(e, list) else 1 for e in entries)
            seen_turns.append(turns)
            rib.update(B, [], BASE, routes[:1])  # withdrawn meanwhile: the snapshot walks on
        task.cancel()
        return count, seen_turns

    count, turns = asyncio.run(walk(best_only=True))
    assert count == len(routes) and len(turns) == 3
    assert turns[0] < turns[1] < turns[2]  # the loop ran others between the slices
    count, _ = asyncio.run(walk(best_only=False))
    assert count == len(routes) - 1 + 1  # the first route is gone; the last has two paths
