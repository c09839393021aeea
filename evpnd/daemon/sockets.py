"""TCP sockets for BGP: MD5 signatures (RFC 2385), TTL for eBGP multihop and GTSM (RFC 5082),
and the local address (update-source)."""

from __future__ import annotations

import ipaddress
import socket
import struct

# From <linux/tcp.h> and <linux/in.h>; Python's socket module does not name them.
TCP_MD5SIG = 14
TCP_MD5SIG_EXT = 32
TCP_MD5SIG_FLAG_PREFIX = 1
TCP_SAVE_SYN = 27
TCP_SAVED_SYN = 28
IP_MINTTL = 21
IPV6_MINHOPCOUNT = 73
_TCP_MD5SIG_MAXKEYLEN = 80


def family_of(address: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET


def _sockaddr(address: str, sock_family: int) -> bytes:
    """A struct sockaddr_storage for the kernel's MD5 key table. On an IPv6 socket an IPv4
    peer arrives as ::ffff:a.b.c.d, and its key must be given in that form."""
    ip = ipaddress.ip_address(address)
    if sock_family == socket.AF_INET6:
        packed = ip.packed if ip.version == 6 else (b"\x00" * 10 + b"\xff\xff" + ip.packed)
        raw = struct.pack("=HHI16sI", socket.AF_INET6, 0, 0, packed, 0)
    else:
        raw = struct.pack("=HH4s", socket.AF_INET, 0, ip.packed)
    return raw + bytes(128 - len(raw))


def set_md5(
    sock: socket.socket, peer: str, password: str | None, prefix_len: int | None = None
) -> None:
    """Install (or with None, remove) the TCP MD5 key for `peer` on `sock` — with
    `prefix_len`, for every address of the prefix `peer/prefix_len` (a listen range; the
    kernel's TCP_MD5SIG_EXT with TCP_MD5SIG_FLAG_PREFIX)."""
    key = (password or "").encode()
    if len(key) > _TCP_MD5SIG_MAXKEYLEN:
        raise ValueError("TCP MD5 passwords are at most 80 bytes")
    flags, option = 0, TCP_MD5SIG
    if prefix_len is not None:
        # (for an IPv4 prefix on a dual-stack socket the kernel takes the IPv4 length)
        flags, option = TCP_MD5SIG_FLAG_PREFIX, TCP_MD5SIG_EXT
    value = (
        _sockaddr(peer, sock.family)
        + struct.pack("=BBHI", flags, prefix_len or 0, len(key), 0)
        + key
        + bytes(_TCP_MD5SIG_MAXKEYLEN - len(key))
    )
    sock.setsockopt(socket.IPPROTO_TCP, option, value)


def set_ttl(sock: socket.socket, ttl: int, min_ttl: int | None = None) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        if min_ttl is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, min_ttl)
    # an IPv6 socket may carry IPv4 (mapped) traffic too
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if min_ttl is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)
    except OSError:
        if sock.family != socket.AF_INET6:
            raise


def normalise(address: str) -> str:
    """'::ffff:192.0.2.1' -> '192.0.2.1'; strips a scope id."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def listening_socket(address: str, port: int) -> socket.socket:
    sock = socket.socket(family_of(address), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    # SYN-ACKs leave with the listener's TTL: 255 lets GTSM peers (RFC 5082) accept them, and
    # costs nothing elsewhere (FRR does the same).
    set_ttl(sock, 255)
    # keep each connection's SYN, so that GTSM can look at the TTL it arrived with before a
    # byte of the connection is read (IP_MINTTL set after accept() is too late for data
    # that came with the handshake)
    sock.setsockopt(socket.IPPROTO_TCP, TCP_SAVE_SYN, 1)
    sock.bind((address, port))
    sock.listen(64)
    sock.setblocking(False)
    return sock


def syn_ttl(sock: socket.socket) -> int | None:
    """The TTL (IPv4) or hop limit (IPv6) the accepted connection's SYN arrived with; None
    when the kernel kept no SYN for it."""
    try:
        headers = sock.getsockopt(socket.IPPROTO_TCP, TCP_SAVED_SYN, 512)
    except OSError:
        return None
    return ttl_of(headers)


def ttl_of(headers: bytes) -> int | None:
    """The TTL of an IPv4 header, the hop limit of an IPv6 one."""
    if len(headers) >= 20 and headers[0] >> 4 == 4:
        return headers[8]
    if len(headers) >= 40 and headers[0] >> 4 == 6:
        return headers[7]
    return None


def interface_address(name: str, family: int) -> str | None:
    """The address an `update_source` interface gives a session of `family`: its first
    address of global scope (a loopback VTEP's 10.255.0.1/32 rather than lo's 127.0.0.1),
    None when it has none or does not exist. pyroute2 runs an event loop of its own: call
    this in a thread."""
    from pyroute2 import IPRoute  # (the daemon's import of it stays in the thread)

    try:
        index = socket.if_nametoindex(name)
    except OSError:
        return None
    with IPRoute() as ipr:
        messages = ipr.get_addr(family=family, index=index)
    found = [(m["scope"], m.get_attr("IFA_ADDRESS")) for m in messages]
    found = [(scope, address) for scope, address in found if address]
    found.sort(key=lambda f: f[0] != 0)  # scope universe (0) first, then site, link, host
    return str(found[0][1]) if found else None
