"""Adj-RIB-Out: what the peers of one outbound policy should have from us, what they have,
and the UPDATEs between.

Peers whose `Policy` is the same — iBGP clients of a route reflector, say — get the same
UPDATEs, so they share one Adj-RIB-Out (an update group): each UPDATE is built once and its
bytes go to every member. Changes are queued and coalesced until the shell flushes (a route
announced and withdrawn before the flush is never sent), then packed: routes sharing an
outbound attribute set go into as few UPDATEs as fit.

A route goes back to the peer it came from when that peer is in the group (an RR client's
own routes, reflected to all clients): RFC 4456 §8 has the receiver drop it by its
ORIGINATOR_ID, and an eBGP peer's own routes carry its AS (`eligible` leaves those out). Per
member, nothing is kept but the bytes still to write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from evpnd.bgp.attributes import AsPath, PathAttributes
from evpnd.bgp.context import CodecContext
from evpnd.bgp.update import pack_announcements, pack_withdrawals
from evpnd.evpn.routes import EvpnRoute
from evpnd.rib.bestpath import DEFAULT_LOCAL_PREF
from evpnd.rib.locrib import Key, Rib, RouteChange
from evpnd.rib.paths import Path, Source


@dataclass(frozen=True, slots=True)
class Speaker:
    """This speaker, as export policy needs to know it."""

    asn: int
    router_id: str
    #: Route reflection (RFC 4456) is on when any neighbour is a client.
    route_reflector: bool = False

    @property
    def cluster_id(self) -> bytes:
        return bytes(int(x) for x in self.router_id.split("."))

    def accepts(self, attrs: PathAttributes, ibgp: bool) -> bool:
        """Loop checks on a received path: our AS in an eBGP path (RFC 4271 §9.1.2), our
        cluster id as originator or in the cluster list (RFC 4456 §8)."""
        if not ibgp and attrs.as_path is not None and self.asn in attrs.as_path.asns():
            return False
        if attrs.originator_id is not None and attrs.originator_id == self.cluster_id:
            return False
        return self.cluster_id not in attrs.cluster_list


@dataclass(frozen=True, slots=True)
class Policy:
    """All that decides which routes a peer gets from us, with which attributes, encoded how:
    peers of equal policy share an Adj-RIB-Out."""

    ibgp: bool
    route_reflector_client: bool
    #: an eBGP peer's AS (routes with it in their AS path are not sent); 0 for iBGP
    asn: int
    #: what the session negotiated that changes the encoding (4-octet AS, ADD-PATH, size)
    ctx: CodecContext

    @classmethod
    def of(cls, peer: Source, ctx: CodecContext) -> Policy:
        return cls(peer.ibgp, peer.route_reflector_client, 0 if peer.ibgp else peer.asn, ctx)


#: UPDATEs are handed to the peers' sockets joined into chunks of about this size: one copy
#: shared by every member, and a KEEPALIVE can go between any two
CHUNK = 64 * 1024


class Chunks(NamedTuple):
    """UPDATEs joined into chunks, and how many messages they hold."""

    chunks: list[bytes]
    messages: int


def chunked(messages: list[bytes], size: int = CHUNK) -> Chunks:
    """Whole messages joined into chunks of about `size` bytes."""
    chunks: list[bytes] = []
    run: list[bytes] = []
    length = 0
    for message in messages:
        run.append(message)
        length += len(message)
        if length >= size:
            chunks.append(b"".join(run))
            run, length = [], 0
    if run:
        chunks.append(b"".join(run))
    return Chunks(chunks, len(messages))


class AdjRibOut:
    def __init__(self, policy: Policy, speaker: Speaker) -> None:
        self.policy = policy
        self.speaker = speaker
        self.ctx = policy.ctx
        #: key -> (route, attributes) as the peer has them from us
        self.sent: dict[Key, tuple[EvpnRoute, PathAttributes]] = {}
        self._pending: dict[Key, Path | None] = {}
        #: id(source attributes), originator -> (source attributes, outbound attributes)
        self._exported: dict[tuple[int, str], tuple[PathAttributes, PathAttributes]] = {}
        #: the whole table as chunks of UPDATEs, for peers that join late (None: build anew)
        self._table: Chunks | None = None
        #: flushes that changed the table (a table built in steps is kept only if none ran)
        self._generation = 0

    def __len__(self) -> int:
        return len(self.sent)

    @property
    def pending(self) -> int:
        return len(self._pending)

    # --- policy ------------------------------------------------------------------------------

    def eligible(self, path: Path) -> bool:
        source = path.source
        policy = self.policy
        if policy.ibgp and source.ibgp and not source.is_local:
            # RFC 4456 §6: iBGP routes go to iBGP peers only through a reflector, and only
            # when the route came from a client or goes to one.
            if not (source.route_reflector_client or policy.route_reflector_client):
                return False
        if not policy.ibgp:
            as_path = path.attributes.as_path
            if as_path is not None and policy.asn in as_path.asns():
                return False  # the peer would drop it anyway (its own AS in the path)
        return True

    def export(self, path: Path) -> PathAttributes:
        attrs = path.attributes
        cache_key = (id(attrs), path.source.router_id)
        cached = self._exported.get(cache_key)
        if cached is not None and cached[0] is attrs:
            return cached[1]
        out = self._transform(path)
        if len(self._exported) > 65536:
            self._exported.clear()
        self._exported[cache_key] = (attrs, out)
        return out

    def _transform(self, path: Path) -> PathAttributes:
        attrs = path.attributes
        source = path.source
        changes: dict[str, object] = {}
        if self.policy.ibgp:
            if attrs.local_pref is None:
                changes["local_pref"] = DEFAULT_LOCAL_PREF
            if source.ibgp and not source.is_local:
                # RFC 4456 §8: reflected routes carry where they came from.
                if attrs.originator_id is None:
                    changes["originator_id"] = bytes(int(x) for x in source.router_id.split("."))
                changes["cluster_list"] = (self.speaker.cluster_id, *attrs.cluster_list)
        else:
            as_path = attrs.as_path or AsPath()
            changes["as_path"] = as_path.prepend(self.speaker.asn)
            changes["local_pref"] = None
            changes["originator_id"] = None
            changes["cluster_list"] = ()
            if not source.is_local:
                changes["med"] = None  # RFC 4271 §5.1.4: MED stays within the next AS
            # The EVPN next hop (the VTEP) is passed on unchanged, as FRR does.
        if attrs.as_path is None and "as_path" not in changes:
            changes["as_path"] = AsPath()
        if attrs.origin is None:
            changes["origin"] = 0
        return replace(attrs, **changes) if changes else attrs  # type: ignore[arg-type]

    # --- changes -----------------------------------------------------------------------------

    def enqueue(self, changes: list[RouteChange]) -> None:
        pending = self._pending
        sent = self.sent
        if not sent:
            # The group has nothing from us (a client's own table going back to it is never
            # sent): a withdrawal concerns it only while the route waits in `pending`.
            eligible = self.eligible
            for key, _, new in changes:
                if new is not None and eligible(new):
                    pending[key] = new
                elif pending and key in pending:
                    pending[key] = None
            return
        for key, _, new in changes:
            if new is not None and self.eligible(new):
                pending[key] = new
            elif key in sent or key in pending:
                pending[key] = None

    def enqueue_table(self, rib: Rib) -> None:
        """Everything the peer should have: after Established, and for a ROUTE-REFRESH."""
        for path in rib.best_paths():
            if self.eligible(path):
                self._pending[path.route.key] = path

    def load(self, rib: Rib) -> Chunks:
        """A new group's first member: the whole table, as chunks of UPDATEs; kept for the
        members that join later (`table`)."""
        self.enqueue_table(rib)
        self._table = chunked(self.flush())
        return self._table

    def table(self) -> Chunks:
        """Everything the members have from us, as chunks of UPDATEs: for a peer that joins
        late, and for a ROUTE-REFRESH. Built once for all of them, until the table changes."""
        if self._table is None:
            groups: dict[int, tuple[PathAttributes, list[EvpnRoute]]] = {}
            for route, attrs in self.sent.values():
                groups.setdefault(id(attrs), (attrs, []))[1].append(route)
            messages: list[bytes] = []
            for attrs, routes in groups.values():
                messages += pack_announcements(routes, attrs, self.ctx)
            self._table = chunked(messages)
        return self._table

    #: routes packed per step of `table_parts`: about 15 ms of encoding
    PART = 20_000

    def table_parts(self, part: int = PART) -> Iterator[Chunks]:
        """The table as `table` has it, a slice of routes per step, for an answer that must not
        hold the loop (a ROUTE-REFRESH at a million routes): what the members had from us when
        the first step ran. The finished table is kept for the next asker when nothing was
        flushed meanwhile. A table built already is one step."""
        if self._table is not None:
            yield self._table
            return
        generation = self._generation
        snapshot = list(self.sent.values())
        chunks: list[bytes] = []
        count = 0
        for start in range(0, len(snapshot), part):
            groups: dict[int, tuple[PathAttributes, list[EvpnRoute]]] = {}
            for route, attrs in snapshot[start : start + part]:
                groups.setdefault(id(attrs), (attrs, []))[1].append(route)
            messages: list[bytes] = []
            for attrs, routes in groups.values():
                messages += pack_announcements(routes, attrs, self.ctx)
            piece = chunked(messages)
            chunks += piece.chunks
            count += piece.messages
            yield piece
        if self._generation == generation and self._table is None:
            self._table = Chunks(chunks, count)

    def flush(self) -> list[bytes]:
        """The UPDATEs that bring the peer up to date; afterwards it has what `sent` says."""
        if not self._pending:
            return []
        groups: dict[int, tuple[PathAttributes, list[EvpnRoute]]] = {}
        withdrawals: list[EvpnRoute] = []
        sent = self.sent
        for key, path in self._pending.items():
            if path is None:
                previous = sent.pop(key, None)
                if previous is not None:
                    withdrawals.append(previous[0])
                continue
            attrs = self.export(path)
            previous = sent.get(key)
            if previous is not None and previous[1] is attrs and previous[0] == path.route:
                continue  # the peer already has exactly this
            sent[key] = (path.route, attrs)
            group = groups.get(id(attrs))
            if group is None:
                groups[id(attrs)] = (attrs, [path.route])
            else:
                group[1].append(path.route)
        self._pending.clear()
        messages = pack_withdrawals(withdrawals, self.ctx)
        for attrs, routes in groups.values():
            messages += pack_announcements(routes, attrs, self.ctx)
        if messages:
            self._table = None
            self._generation += 1
        return messages
