"""The kernel's invariant under random sequences, without root: after every step — routes
announced, re-announced with another label, next hop, sequence number or RT, withdrawn; a
session flapping with or without graceful restart; local MACs coming and going; evpnd
restarting — the entries a simulated kernel holds (built only from the operations evpnd
would write) equal those the best paths call for, computed from scratch."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from evpnd.bgp.attributes import AsPath, PathAttributes, PmsiTunnel
from evpnd.evpn.extcommunities import Encapsulation, MacMobility, RouterMac, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import MAC_IP, EvpnRoute, InclusiveMulticastRoute, IpPrefixRoute, MacIpRoute
from evpnd.kernel import invariant
from evpnd.kernel import operations as ops
from evpnd.kernel.audit import Probed
from evpnd.kernel.desired import DesiredState, Entries, L3Ports, VniPorts
from evpnd.kernel.reconciler import Reconciler
from evpnd.kernel.reimport import Reimport
from evpnd.local.learning import LocalMac, LocalMacGone, LocalRoutes
from evpnd.local.origination import Vni
from evpnd.rib import validation
from evpnd.rib.locrib import Rib
from evpnd.rib.paths import LOCAL, Path, Source

PORTS = {
    100: VniPorts(100, vxlan_ifindex=10, bridge_ifindex=11, local_ip=bytes((192, 0, 2, 9))),
    101: VniPorts(101, vxlan_ifindex=20, bridge_ifindex=21, local_ip=bytes((192, 0, 2, 9))),
}
L3 = {4001: L3Ports(4001, vxlan_ifindex=40, bridge_ifindex=41, table=254)}
PEERS = [Source(f"192.0.2.{n}", f"192.0.2.{n}", 65000, ibgp=True) for n in (1, 2)]
LOCAL_SOURCE = Source(LOCAL, "192.0.2.9", 65000, ibgp=True)
VTEPS = [bytes((192, 0, 2, n)) for n in (1, 2, 3)] + [bytes.fromhex("20010db8" + "00" * 11 + "01")]
MACS = [bytes.fromhex(f"0200000000{n:02x}") for n in (1, 2, 3)] + [bytes(6), b"\xff" * 6]
IPS = [b"", bytes((10, 0, 0, 1)), bytes((10, 0, 0, 2))]


def importing_l3(path: Path) -> list[int]:
    if path.source.is_local:
        return []
    return sorted({rt.assigned for rt in path.attributes.route_targets} & L3.keys())


class Kernel:
    """What the kernel would hold after the operations evpnd writes (both FDB halves move
    together here; the real kernel's halves are the namespace tests' business)."""

    def __init__(self) -> None:
        self.entries = Entries()

    def apply(self, operations: list[ops.Operation]) -> None:
        e = self.entries
        for op in operations:
            if isinstance(op, ops.FdbSet):
                e.fdb[(op.ifindex, op.mac)] = op.vtep
            elif isinstance(op, ops.FdbDel | ops.FdbDelSelf):
                e.fdb.pop((op.ifindex, op.mac), None)
            elif isinstance(op, ops.FloodAdd):
                e.flood[(op.ifindex, op.vtep)] = 1
            elif isinstance(op, ops.FloodDel):
                e.flood.pop((op.ifindex, op.vtep), None)
            elif isinstance(op, ops.NeighSet):
                e.neigh[(op.ifindex, op.ip)] = op.mac
            elif isinstance(op, ops.NeighDel):
                e.neigh.pop((op.ifindex, op.ip), None)
            elif isinstance(op, ops.RouteSet):
                e.routes[op.key] = op.nexthops
            elif isinstance(op, ops.RouteDel):
                e.routes.pop(op.key, None)


#: what one VNI imports in a configuration: None (not configured: nothing), () (auto, *:VNI)
#: or its import RTs' assigned numbers
ImportRule = tuple[int, ...] | None


@dataclass
class World:
    rib: Rib = field(default_factory=Rib)
    kernel: Kernel = field(default_factory=Kernel)
    #: the L3VNIs (symmetric IRB); without any, routes with an IP take the bulk path of a
    #: table arriving or going (kernel/desired.py), which a routed route never does
    l3: dict[int, L3Ports] = field(default_factory=lambda: dict(L3))
    #: the configuration's import rules per VNI (a reload changes them)
    rules: dict[int, ImportRule] = field(default_factory=lambda: dict.fromkeys(PORTS, ()))
    #: the RD index of the local VNIs (a reload may change the RD)
    rd_index: int = 1

    def __post_init__(self) -> None:
        self.start()
        self.local = LocalRoutes(self.rib)
        self.local.configure(self.vnis(), {}, 0.0)

    def vnis(self) -> list[Vni]:
        return [
            Vni(
                n,
                RouteDistinguisher.type1("192.0.2.9", self.rd_index * 1000 + n),
                (RouteTarget(0, 65000, n),),
                tuple(RouteTarget(0, 65000, rt) for rt in rule),
                "192.0.2.9",
            )
            for n, rule in self.rules.items()
            if rule is not None
        ]

    def importing(self, path: Path) -> list[int]:
        """As the daemon's: the configured VNIs whose import RTs match the path's."""
        if path.source.is_local:
            return []
        targets = path.attributes.route_targets
        return sorted(v.vni for v in self.vnis() if v.imports(targets))

    def reload(
        self,
        rules: dict[int, ImportRule],
        rd_index: int,
        now: float,
        meanwhile: list[Callable[[], None]],
        slice_: int,
    ) -> None:
        """A reload as the daemon makes it: local routes re-originated (new RD, new RTs),
        their changes handed to the wish (queued, not yet written), and when what the VNIs
        import changed, the wish worked out again in slices of `slice_` paths — with the RIB
        changing and the kernel written between the slices (`meanwhile`)."""
        before = self.rules
        self.rules, self.rd_index = dict(rules), rd_index
        for update in self.local.configure(self.vnis(), {}, now).updates:
            self.rib.update(LOCAL_SOURCE, *update)
        while changes := self.rib.take_changes():
            self.state.on_changes(changes)  # queued, not yet taken
            for update in self.local.rib_changed(changes, now).updates:
                self.rib.update(LOCAL_SOURCE, *update)
        if rules == before:
            return
        job = Reimport(self.state)
        rebuilt = unseen = False
        for change in meanwhile:
            job.step(slice_)
            if change is AGAIN:  # another reload overtakes this one
                job, rebuilt = Reimport(self.state), False
                continue
            if change is UNSEEN:  # the next change reaches the wish only a step later
                unseen = True
                continue
            if change is REBUILD:  # the kernel's VNIs looked at again: a rebuild overtakes
                self.state.rebuild()
                rebuilt = True
            else:
                change()
            if not unseen:
                self.settle(now)
            unseen = False
        while not job.step(slice_):
            self.settle(now)  # (the writer takes what the comparison queued)
        assert rebuilt or job.result is not None

    def start(self) -> None:
        """evpnd (re)starting: a new desired state from the RIB, compared with the kernel."""
        self.state = DesiredState(
            self.rib, dict(PORTS), self.importing, dict(self.l3), importing_l3
        )
        self.state.rebuild()
        self.reconciler = Reconciler(self.state)
        operations, _ = self.reconciler.repair(self.kernel_entries(), settled=True)
        self.kernel.apply(operations)

    def kernel_entries(self) -> Entries:
        e = self.kernel.entries
        return Entries(dict(e.fdb), dict(e.flood), dict(e.neigh), dict(e.routes))

    def settle(self, now: float) -> None:
        """As the daemon's settle: the kernel's wish, then the local core, until quiet."""
        while changes := self.rib.take_changes():
            self.state.on_changes(changes)
            step = self.local.rib_changed(changes, now)
            for update in step.updates:
                self.rib.update(LOCAL_SOURCE, *update)
        operations, _ = self.reconciler.take()
        self.kernel.apply(operations)

    def tamper(self, key: tuple[int, bytes], vtep: bytes | None, ip: bytes) -> None:
        """Someone else changes the kernel behind evpnd's back — removes or rewrites an FDB
        entry, adds a stray, binds an IP — and a notification names it: evpnd asks the kernel
        about those entries (the simulated answers below), then makes its periodic pass."""
        e = self.kernel.entries
        if vtep is None:
            e.fdb.pop(key, None)
        else:
            e.fdb[key] = vtep
        nkey = (11, ip)
        e.neigh[nkey] = key[1]
        probed = Probed(
            fdb={key: (e.fdb.get(key), key in e.fdb)},
            neigh={nkey: e.neigh.get(nkey)},
        )
        believed = self.reconciler.programmed
        # "wrong": the entries whose state in the kernel is not what evpnd believed
        expected_wrong = (e.fdb.get(key) != believed.fdb.get(key)) + (
            e.neigh.get(nkey) != believed.neigh.get(nkey)
        )
        operations, _, wrong = self.reconciler.check(probed)
        assert wrong == expected_wrong
        self.kernel.apply(operations)
        operations, _ = self.reconciler.take_strays()
        self.kernel.apply(operations)

    def check(self) -> None:
        want = invariant.expected(
            self.rib, dict(PORTS), self.importing, dict(self.l3), importing_l3
        )
        assert invariant.differences(self.state.desired, want) == []  # the incremental wish
        assert invariant.differences(self.kernel_entries(), want) == []  # and the kernel
        # next-hop tracking: nothing points at a VTEP the underlay cannot reach
        unreachable = self.rib.unreachable
        assert not unreachable & set(self.kernel.entries.fdb.values())
        assert not unreachable & {vtep for _, vtep in self.kernel.entries.flood}
        self.check_rib_indexes()

    def check_rib_indexes(self) -> None:
        """The RIB's running counts and index equal what its tables say, counted afresh: the
        next hops to track (per received path), and the (VNI, MAC) index of best Type 2
        paths (a bulk withdrawal keeps both by hand, rib/locrib.py `_withdraw`)."""
        rib = self.rib
        counted = Counter(
            path.attributes.nexthop
            for table in rib.adj_in.values()
            for path in table.values()
            if not path.source.is_local and path.attributes.nexthop is not None
        )
        assert rib.nexthops == dict(counted)
        index: dict[tuple[int, bytes], set[object]] = {}
        for path in rib.best_of_type(MAC_IP):
            route = path.route
            assert isinstance(route, MacIpRoute)
            index.setdefault((route.label1, route.mac), set()).add(route.key)
        kept = rib._macs  # (private: the index is what is checked)
        assert {k: {v} if isinstance(v, tuple) else set(v) for k, v in kept.items()} == index


def attributes(vtep: int, rt: int, seq: int, sticky: bool, rmac: bool) -> PathAttributes:
    communities: tuple[object, ...] = (Encapsulation(8), RouteTarget(0, 65000, rt))
    if seq or sticky:
        communities += (MacMobility(seq, sticky),)
    if rmac:
        communities += (RouteTarget(0, 65000, 4001), RouterMac(bytes.fromhex("02aa00000001")))
    return PathAttributes(
        origin=0,
        as_path=AsPath(),
        local_pref=100,
        nexthop=VTEPS[vtep],
        ext_communities=communities,  # type: ignore[arg-type]
    )


type2 = st.builds(
    lambda peer, rd, mac, ip, label, vtep, rt, seq, sticky, l3: (
        "update",
        peer,
        MacIpRoute(
            RouteDistinguisher.type1(f"192.0.2.{peer + 1}", rd),
            0,
            MACS[mac],
            IPS[ip],
            ZERO_ESI,
            label,
            4001 if l3 and ip else None,
        ),
        attributes(vtep, rt, seq, sticky, l3 and bool(ip)),
    ),
    st.integers(0, 1),
    st.integers(1, 2),
    st.integers(0, len(MACS) - 1),
    st.integers(0, len(IPS) - 1),
    st.sampled_from([100, 101]),
    st.integers(0, len(VTEPS) - 1),
    st.sampled_from([100, 101, 999]),
    st.integers(0, 3),
    st.booleans(),
    st.booleans(),
)
type3 = st.builds(
    lambda peer, vtep, rt: (
        "update",
        peer,
        InclusiveMulticastRoute(RouteDistinguisher.type1(f"192.0.2.{peer + 1}", 1), 0, VTEPS[vtep]),
        PathAttributes(
            origin=0,
            as_path=AsPath(),
            nexthop=VTEPS[vtep],
            ext_communities=(Encapsulation(8), RouteTarget(0, 65000, rt)),
            pmsi_tunnel=PmsiTunnel(0, 6, rt, VTEPS[vtep]),
        ),
    ),
    st.integers(0, 1),
    st.integers(0, 2),
    st.sampled_from([100, 101]),
)
type5 = st.builds(
    lambda peer, prefix, vtep: (
        "update",
        peer,
        IpPrefixRoute(
            RouteDistinguisher.type1(f"192.0.2.{peer + 1}", 9),
            0,
            24,
            bytes((10, 9, prefix, 0)),
            ZERO_ESI,
            bytes(4),
            4001,
        ),
        attributes(vtep, 4001, 0, False, True),
    ),
    st.integers(0, 1),
    st.integers(0, 2),
    st.integers(0, 2),
)
event = st.one_of(
    type2,
    type3,
    type5,
    st.tuples(st.just("withdraw"), st.integers(0, 1), type2 | type3 | type5),
    st.tuples(st.just("flap"), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("withdraw_all"), st.integers(0, 1)),
    st.tuples(st.just("local"), st.integers(0, 2), st.booleans()),
    st.tuples(st.just("restart")),
    st.tuples(
        st.just("reload"),
        st.fixed_dictionaries(
            {
                n: st.one_of(
                    st.none(), st.just(()), st.sets(st.sampled_from([100, 101, 999])).map(tuple)
                )
                for n in PORTS
            }
        ),
        st.integers(1, 2),
        st.one_of(st.none(), type2 | type3),
        st.lists(
            type2
            | type3
            | st.tuples(st.just("withdraw"), type2 | type3)
            | st.sampled_from([("again",), ("rebuild",), ("unseen",)]),
            max_size=6,
        ),
        st.integers(1, 3),
    ),
    st.tuples(st.just("underlay"), st.frozensets(st.sampled_from(VTEPS), max_size=2)),
    st.tuples(
        st.just("tamper"),
        st.sampled_from([10, 20]),
        st.integers(0, len(MACS) - 1),
        st.one_of(st.none(), st.sampled_from(VTEPS)),
        st.sampled_from(IPS[1:]),
    ),
)


def AGAIN() -> None:
    """(a marker among the changes made while a reimport is under way: another reload)"""


def REBUILD() -> None:
    """(a marker: the desired state rebuilt, as when the kernel's VNIs change)"""


def UNSEEN() -> None:
    """(a marker: the next change is made to the RIB, and handed to the wish a step later)"""


def announce(world: World, event: tuple[object, ...]) -> None:
    _, peer, route, attrs = event
    kept, refused = validation.split([route], attrs)  # type: ignore[list-item, arg-type]
    world.rib.update(PEERS[int(peer)], kept, attrs, [r for r, _ in refused])  # type: ignore[arg-type, call-overload]


def withdraw(world: World, event: tuple[object, ...]) -> None:
    _, (_, peer, route, attrs) = event  # type: ignore[misc]
    world.rib.update(PEERS[int(peer)], [], attrs, [route])  # type: ignore[list-item, arg-type]


@settings(max_examples=300, deadline=None)
@given(st.lists(event, min_size=1, max_size=40), st.booleans())
def test_the_kernel_equals_what_the_best_paths_call_for(
    events: list[tuple[object, ...]], routed: bool
) -> None:
    world = World(l3=dict(L3) if routed else {})
    now = 0.0
    for step in events:
        now += 1.0
        kind = step[0]
        if kind == "update":
            _, peer, route, attrs = step
            assert isinstance(route, EvpnRoute.__args__) and isinstance(attrs, PathAttributes)  # type: ignore[attr-defined]
            kept, refused = validation.split([route], attrs)  # as the peer driver does
            world.rib.update(PEERS[int(peer)], kept, attrs, [r for r, _ in refused])
        elif kind == "withdraw":
            _, peer, (_, _, route, attrs) = step  # type: ignore[misc]
            world.rib.update(PEERS[int(peer)], [], attrs, [route])  # type: ignore[list-item]
        elif kind == "withdraw_all":  # a peer's whole table in one UPDATE, mixed attributes
            _, peer = step
            table = world.rib.adj_in.get(PEERS[int(peer)].name, {})
            gone = [path.route for path in table.values()]
            world.rib.update(PEERS[int(peer)], [], PathAttributes(), gone)
        elif kind == "flap":
            _, peer, graceful = step
            source = PEERS[int(peer)].name
            if graceful:  # helper: stale, then the peer's End-of-RIB sweeps what it did not resend
                world.rib.mark_stale(source)
                world.settle(now)
                world.check()
                world.rib.sweep_stale(source)
            else:
                world.rib.remove_source(source)
        elif kind == "local":
            _, mac, here = step
            seen = LocalMac(100, MACS[int(mac)]) if here else LocalMacGone(100, MACS[int(mac)])
            for update in world.local.observe([seen], now).updates:
                world.rib.update(LOCAL_SOURCE, *update)
        elif kind == "underlay":  # VTEPs becoming unreachable, or reachable again
            _, unreachable = step
            world.rib.set_unreachable(unreachable)  # type: ignore[arg-type]
        elif kind == "reload":  # what the VNIs import, which VNIs, their RD: changed
            _, rules, rd_index, before, meanwhile, slice_ = step
            if before is not None:  # a route arriving just before, its write not yet made
                announce(world, before)  # type: ignore[arg-type]
            marker = {"again": AGAIN, "rebuild": REBUILD, "unseen": UNSEEN}
            changes = [
                marker[c[0]]  # type: ignore[index]
                if c[0] in marker  # type: ignore[index]
                else functools.partial(announce if c[0] == "update" else withdraw, world, c)  # type: ignore[index]
                for c in meanwhile  # type: ignore[attr-defined]
            ]
            world.reload(rules, int(rd_index), now, changes, int(slice_))  # type: ignore[arg-type]
        elif kind == "tamper":
            _, ifindex, mac, vtep, ip = step
            world.settle(now)
            world.tamper((int(ifindex), MACS[int(mac)]), vtep, ip)  # type: ignore[arg-type]
        else:
            world.settle(now)
            world.start()
        world.settle(now)
        world.check()
