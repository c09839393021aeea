"""Hypothesis strategies for every value the codec encodes."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

from evpnd.bgp.attribute_codecs import EXPECTED_FLAGS
from evpnd.bgp.attributes import (
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SEQUENCE,
    AS_SET,
    Aggregator,
    AsPath,
    PathAttributes,
    PmsiTunnel,
    RawAttribute,
)
from evpnd.bgp.capabilities import (
    AddPath,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAs,
    Fqdn,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    RouteRefresh,
    UnknownCapability,
)
from evpnd.bgp.messages import Notification, Open
from evpnd.bgp.messages import RouteRefresh as RouteRefreshMessage
from evpnd.evpn.extcommunities import (
    DefaultGateway,
    DfElection,
    Encapsulation,
    EsiLabel,
    EsImportRouteTarget,
    ExtCommunity,
    MacMobility,
    RouterMac,
    RouteTarget,
    UnknownExtCommunity,
    decode_ext_community,
)
from evpnd.evpn.identifiers import Esi, RouteDistinguisher
from evpnd.evpn.routes import (
    EthernetAdRoute,
    EthernetSegmentRoute,
    EvpnRoute,
    InclusiveMulticastRoute,
    IpPrefixRoute,
    MacIpRoute,
)
from evpnd.wire.constants import CapabilityCode

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u24 = st.integers(0, 0xFFFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
ipv4 = st.binary(min_size=4, max_size=4)
ipv6 = st.binary(min_size=16, max_size=16)
ip = st.one_of(ipv4, ipv6)
mac = st.binary(min_size=6, max_size=6)

rds = st.one_of(
    st.builds(RouteDistinguisher.type0, u16, u32),
    st.builds(RouteDistinguisher.type1, ipv4.map(lambda b: str(ipaddress.IPv4Address(b))), u16),
    st.builds(RouteDistinguisher.type2, u32, u16),
)
esis = st.one_of(st.just(bytes(10)), st.binary(min_size=10, max_size=10)).map(Esi.intern)

mac_ip_routes = st.builds(
    MacIpRoute,
    rds,
    u32,
    mac,
    st.one_of(st.just(b""), ipv4, ipv6),
    esis,
    u24,
    st.one_of(st.none(), u24),
)


@st.composite
def ip_prefix_routes(draw: st.DrawFn) -> IpPrefixRoute:
    size = draw(st.sampled_from([4, 16]))
    raw = st.binary(min_size=size, max_size=size)
    return IpPrefixRoute(
        draw(rds),
        draw(u32),
        draw(st.integers(0, size * 8)),
        draw(raw),
        draw(esis),
        draw(raw),
        draw(u24),
    )


evpn_routes: st.SearchStrategy[EvpnRoute] = st.one_of(
    st.builds(EthernetAdRoute, rds, esis, u32, u24),
    mac_ip_routes,
    st.builds(InclusiveMulticastRoute, rds, u32, ip),
    st.builds(EthernetSegmentRoute, rds, esis, ip),
    ip_prefix_routes(),
)

ext_communities: st.SearchStrategy[ExtCommunity] = st.one_of(
    st.builds(RouteTarget, st.just(0), u16, u32),
    st.builds(RouteTarget, st.just(1), u32, u16),
    st.builds(RouteTarget, st.just(2), u32, u16),
    st.builds(Encapsulation, u16, u32),
    st.builds(MacMobility, u32, st.booleans(), u8.map(lambda f: f & 0xFE), u8),
    st.builds(EsiLabel, st.booleans(), u24, u8.map(lambda f: f & 0xFE), u16),
    st.builds(EsImportRouteTarget, mac),
    st.builds(RouterMac, mac),
    st.builds(DefaultGateway, st.binary(min_size=6, max_size=6)),
    st.builds(DfElection, u8, u16, st.binary(min_size=3, max_size=3)),
    st.binary(min_size=8, max_size=8)
    .filter(lambda raw: isinstance(decode_ext_community(raw), UnknownExtCommunity))
    .map(UnknownExtCommunity),
)

asns = st.integers(1, 0xFFFFFFFF)
segments = st.tuples(
    st.sampled_from([AS_SET, AS_SEQUENCE, AS_CONFED_SEQUENCE, AS_CONFED_SET]),
    st.lists(asns, min_size=1, max_size=12).map(tuple),
)
as_paths = st.lists(segments, max_size=4).map(lambda s: AsPath(tuple(s)))

#: What an old (2-octet) speaker's path looks like: confederation segments only in front, and
#: their member ASes 2-byte ones (RFC 6793 §6: AS4_PATH never carries them).
old_speaker_paths = st.tuples(
    st.lists(
        st.tuples(
            st.sampled_from([AS_CONFED_SEQUENCE, AS_CONFED_SET]),
            st.lists(st.integers(1, 0xFFFF), min_size=1, max_size=4).map(tuple),
        ),
        max_size=1,
    ),
    st.lists(
        st.tuples(
            st.sampled_from([AS_SEQUENCE, AS_SET]),
            st.lists(asns, min_size=1, max_size=8).map(tuple),
        ),
        max_size=3,
    ),
).map(lambda parts: AsPath(tuple(parts[0] + parts[1])))

unknown_attributes = st.builds(
    RawAttribute,
    st.integers(0, 255).filter(lambda c: c not in EXPECTED_FLAGS and c not in (0,)),
    st.just(0xE0),
    st.binary(max_size=300),
)


@st.composite
def path_attributes(draw: st.DrawFn, announcing: bool = True, as_path=as_paths) -> PathAttributes:
    unknown = draw(st.lists(unknown_attributes, max_size=2, unique_by=lambda a: a.type_code))
    return PathAttributes(
        origin=draw(st.integers(0, 2)) if announcing else draw(st.none() | st.integers(0, 2)),
        as_path=draw(as_path) if announcing else draw(st.none() | as_path),
        next_hop=draw(st.none() | ipv4),
        med=draw(st.none() | u32),
        local_pref=draw(st.none() | u32),
        atomic_aggregate=draw(st.booleans()),
        aggregator=draw(st.none() | st.builds(Aggregator, asns, ipv4)),
        communities=tuple(draw(st.lists(u32, max_size=5))),
        originator_id=draw(st.none() | ipv4),
        cluster_list=tuple(draw(st.lists(ipv4, max_size=3))),
        ext_communities=tuple(draw(st.lists(ext_communities, max_size=6))),
        pmsi_tunnel=draw(st.none() | st.builds(PmsiTunnel, u8, u8, u24, st.binary(max_size=16))),
        large_communities=tuple(draw(st.lists(st.tuples(u32, u32, u32), max_size=3))),
        unknown=tuple(sorted(unknown, key=lambda a: a.type_code)),
        nexthop=draw(
            st.sampled_from([4, 16, 32]).flatmap(lambda n: st.binary(min_size=n, max_size=n))
        )
        if announcing
        else None,
    )


_KNOWN_CAPS = {int(c) for c in CapabilityCode}
families = st.tuples(u16, u8)
capabilities: st.SearchStrategy[Capability] = st.one_of(
    st.builds(Multiprotocol, u16, u8, u8),
    st.builds(RouteRefresh, st.booleans()),
    st.just(EnhancedRouteRefresh()),
    st.just(ExtendedMessage()),
    st.builds(FourOctetAs, u32),
    st.builds(
        GracefulRestart,
        st.integers(0, 4095),
        st.booleans(),
        st.booleans(),
        st.lists(
            st.builds(GracefulRestartFamily, u16, u8, st.booleans(), st.integers(0, 127)),
            max_size=3,
        ).map(tuple),
        st.integers(0, 3),
    ),
    st.builds(
        AddPath, st.lists(st.tuples(u16, u8, st.integers(1, 3)), min_size=1, max_size=3).map(tuple)
    ),
    st.builds(
        Fqdn,
        st.text("abcdefghijklmnopqrstuvwxyz0123456789-", max_size=30),
        st.text("abcdefghijklmnopqrstuvwxyz.", max_size=30),
    ),
    st.builds(UnknownCapability, u8.filter(lambda c: c not in _KNOWN_CAPS), st.binary(max_size=40)),
)


@st.composite
def opens(draw: st.DrawFn) -> Open:
    caps = draw(
        st.lists(capabilities.filter(lambda c: not isinstance(c, FourOctetAs)), max_size=12)
    )
    asn = draw(asns)
    if asn > 0xFFFF or draw(st.booleans()):
        caps.insert(draw(st.integers(0, len(caps))), FourOctetAs(asn))
    my_as = asn if asn <= 0xFFFF else 23456
    return Open(
        asn=asn,
        hold_time=draw(u16.filter(lambda h: h not in (1, 2))),
        router_id=str(ipaddress.IPv4Address(draw(st.integers(1, 0xFFFFFFFF)))),
        capabilities=tuple(caps),
        other_parameters=tuple(
            draw(
                st.lists(
                    st.tuples(u8.filter(lambda t: t not in (2, 255)), st.binary(max_size=20)),
                    max_size=2,
                )
            )
        ),
        my_as_field=my_as,
        extended_parameters=draw(st.booleans()),
        one_parameter_per_capability=len(caps) < 2 or draw(st.booleans()),
    )


notifications = st.builds(Notification, u8, u8, st.binary(max_size=64))
route_refreshes = st.builds(RouteRefreshMessage, u16, u8, u8)
