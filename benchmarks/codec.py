"""Codec benchmark: 100,000 Type 2 routes (MAC + IPv4) packed into 4096-byte UPDATEs.

Prints routes/s for encoding and decoding on one core, the bytes each decoded route holds in
memory (tracemalloc, with the routes' shared attribute set), and, where os-ken or ExaBGP is
installed, the same decode by them and the ratios. Ends with one line of JSON.

    .venv/bin/python benchmarks/codec.py [--routes N]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
import tracemalloc
from collections.abc import Callable

from evpnd.bgp.attributes import AsPath, PathAttributes
from evpnd.bgp.framing import MessageReader
from evpnd.bgp.messages import decode_message
from evpnd.bgp.update import Update, pack_announcements
from evpnd.evpn.extcommunities import Encapsulation, RouteTarget
from evpnd.evpn.identifiers import ZERO_ESI, RouteDistinguisher
from evpnd.evpn.routes import EvpnRoute, MacIpRoute


def make_routes(count: int) -> list[EvpnRoute]:
    rd = RouteDistinguisher.from_text("192.168.100.2:2")
    return [
        MacIpRoute(
            rd,
            0,
            (0x020000000000 + i).to_bytes(6, "big"),
            (0x0A000000 + i).to_bytes(4, "big"),
            ZERO_ESI,
            100,
        )
        for i in range(count)
    ]


ATTRIBUTES = PathAttributes(
    origin=0,
    as_path=AsPath(),
    local_pref=100,
    ext_communities=(Encapsulation(8), RouteTarget(0, 65000, 100)),
    nexthop=bytes((192, 168, 100, 2)),
)


def best_of(runs: int, fn: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def decode_stream(stream: bytes) -> list[Update]:
    cache: dict[bytes, object] = {}
    reader = MessageReader()
    reader.feed(stream)
    updates = []
    for raw in reader.messages():
        assert isinstance(raw, bytes)
        message = decode_message(raw, attribute_cache=cache)
        assert isinstance(message, Update), message
        updates.append(message)
    return updates


def try_os_ken(messages: list[bytes], count: int) -> float | None:
    try:
        from os_ken.lib.packet import bgp
    except ImportError:
        return None

    def run() -> None:
        total = 0
        for raw in messages:
            msg, _, _ = bgp.BGPMessage.parser(raw)
            for attr in msg.path_attributes:
                if attr.type == 14:
                    total += len(attr.nlri)
        assert total == count, total

    return best_of(2, run)


def try_exabgp(messages: list[bytes], count: int) -> float | None:
    try:
        from exabgp.bgp.message import Update as XUpdate
        from exabgp.bgp.message.direction import Direction
        from exabgp.bgp.message.open.capability.negotiated import Negotiated
        from exabgp.bgp.neighbor import Neighbor
        from exabgp.logger import log
        from exabgp.protocol.family import AFI, SAFI
    except ImportError:
        return None
    log.disable()  # its debug logging is on by default and would dominate the timing
    negotiated = Negotiated(Neighbor())
    negotiated.families = [(AFI.l2vpn, SAFI.evpn)]
    negotiated.asn4 = True

    def run() -> None:
        total = 0
        for raw in messages:
            total += len(XUpdate.unpack_message(raw[19:], Direction.IN, negotiated).nlris)
        assert total == count, total

    return best_of(2, run)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--routes", type=int, default=100_000)
    args = parser.parse_args()
    count = args.routes
    routes = make_routes(count)

    encode_s = best_of(3, lambda: pack_announcements(routes, ATTRIBUTES))
    messages = pack_announcements(routes, ATTRIBUTES)
    stream = b"".join(messages)
    decode_s = best_of(3, lambda: decode_stream(stream))

    decoded = decode_stream(stream)
    total = sum(len(u.announced) for u in decoded)
    assert total == count and decoded[0].announced[0] == routes[0]
    del decoded
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = decode_stream(stream)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    bytes_per_route = (after - before) / count
    assert len(held) == len(messages)

    results: dict[str, float | int | None] = {
        "routes": count,
        "updates": len(messages),
        "wire_bytes_per_route": round(len(stream) / count, 1),
        "encode_routes_per_s": round(count / encode_s),
        "decode_routes_per_s": round(count / decode_s),
        "bytes_per_route": round(bytes_per_route, 1),
    }
    for name, timer in (("os_ken", try_os_ken), ("exabgp", try_exabgp)):
        seconds = timer(messages, count)
        if seconds is None:
            print(f"{name}: not installed here (pip install {name.replace('_', '-')})")
            continue
        results[f"{name}_decode_routes_per_s"] = round(count / seconds)
        results[f"vs_{name}_decode_ratio"] = round(seconds / decode_s, 2)

    print(f"{count} Type 2 routes in {len(messages)} UPDATEs of up to 4096 bytes")
    print(f"  encode: {results['encode_routes_per_s']:>10,} routes/s")
    print(f"  decode: {results['decode_routes_per_s']:>10,} routes/s")
    print(f"  held:   {results['bytes_per_route']:>10} bytes per decoded route")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
