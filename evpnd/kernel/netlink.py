"""Raw rtnetlink sockets for the bulk of the work: batched neighbour writes whose
acknowledgements are matched back to the entry that caused them, dumps, and the event feed."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
from collections.abc import Callable, Container, Iterable, Sequence
from typing import TypeVar

from evpnd.kernel import iproutes as ipr
from evpnd.kernel import neighbours as nl

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
SO_RCVBUFFORCE = 33
RTNLGRP_LINK = 1
RTNLGRP_NEIGH = 3
RTNLGRP_IPV4_IFADDR = 5
RTNLGRP_IPV4_ROUTE = 7
RTNLGRP_IPV6_IFADDR = 9
RTNLGRP_IPV6_ROUTE = 11

#: Messages per sendmsg: the kernel handles a whole batch inside one system call (each message
#: takes and drops the RTNL lock by itself), and its refusals (about 100 bytes each) must fit
#: the 16 MB receive buffer before we read them. Few, large writes also mean the writer
#: thread seldom waits for the GIL between them.
BATCH = 50_000
SO_SNDBUFFORCE = 32


def _socket(groups: Iterable[int] = ()) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    try:  # room for a whole batch in one sendmsg (the default takes about 3,000 messages)
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 << 20)
    sock.bind((0, 0))
    for group in groups:
        sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
    return sock


#: what a message was for, handed back with its refusal
Tag = TypeVar("Tag")


class Writer:
    """Sends prepared messages in batches; returns the ones the kernel refused."""

    def __init__(self) -> None:
        self.sock = _socket()
        self._seq = 1
        self._buffer = bytearray(1 << 16)
        #: the socket's netlink port (asked once: getsockname waits while the writer thread
        #: is inside a long sendmsg on the same socket)
        self.port_id = int(self.sock.getsockname()[0])

    def close(self) -> None:
        self.sock.close()

    def reserve(self, count: int) -> int:
        """The first of `count` consecutive sequence numbers for a batch (from 1 again rather
        than past 2**31 - 1)."""
        first = self._seq + 1
        if first + count > 0x7FFFFFFF:
            first = 1
        self._seq = first + count - 1
        return first

    def send(self, messages: list[bytes], tags: Sequence[Tag]) -> list[tuple[Tag, int]]:
        """`messages` (each with its sequence number) and, at the same places in `tags`, what
        each is for. Returns (what, errno) for each message the kernel refused.

        Messages go without NLM_F_ACK: the kernel then answers only refusals, and since
        rtnetlink handles a sendmsg's messages before the call returns, every refusal is
        queued by then. (With an ack per message, reading 100,000 acks cost more than the
        kernel's own work.)"""
        failures: list[tuple[Tag, int]] = []
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            self.sock.sendall(b"".join(chunk))
            refused = self._drain()
            if refused:
                by_seq = {
                    int.from_bytes(m[8:12], "little"): tags[at] for at, m in enumerate(chunk, start)
                }
                failures += [(by_seq[seq], err) for seq, err in refused if seq in by_seq]
        return failures

    def _drain(self) -> list[tuple[int, int]]:
        refused: list[tuple[int, int]] = []
        buffer = self._buffer
        while True:
            try:
                size = self.sock.recv_into(buffer, len(buffer), socket.MSG_DONTWAIT)
            except BlockingIOError:
                return refused
            _, acks, _ = nl.parse(bytes(buffer[:size]))
            refused += [(ack.seq, -ack.error) for ack in acks if ack.error]


#: requests per sendmsg when asking for single entries: their answers (about 100 bytes each)
#: fit the receive buffer many times over
PROBE_BATCH = 20_000


class Prober:
    """Asks the kernel for single entries (RTM_GETNEIGH without NLM_F_DUMP), many requests per
    sendmsg. Each costs one hash lookup in the kernel, where a dump of the FDB restarts from
    its first entry for every batch it returns."""

    def __init__(self) -> None:
        self.sock = _socket()
        self.sock.settimeout(10.0)  # every request is answered; this only guards a bug

    def close(self) -> None:
        self.sock.close()

    def ask(self, requests: list[bytes]) -> list[nl.Neighbour | None]:
        """`requests[i]` must carry sequence number i + 1. The answers, in the same order:
        the entry, or None where the kernel has none."""
        out: list[nl.Neighbour | None] = [None] * len(requests)
        for start in range(0, len(requests), PROBE_BATCH):
            chunk = requests[start : start + PROBE_BATCH]
            self.sock.sendall(b"".join(chunk))
            missing = len(chunk)
            while missing:
                for seq, found in nl.answers(self.sock.recv(1 << 20)):
                    if start < seq <= start + len(chunk):
                        out[seq - 1] = found
                        missing -= 1
        return out


def _dump(request: bytes, read: Callable[[bytes], bool]) -> None:
    """Send a dump request and hand each read to `read`, which says when the dump is done."""
    with contextlib.closing(_socket()) as sock:
        sock.sendall(request)
        while not read(sock.recv(1 << 20)):
            pass


def dump(family: int) -> list[nl.Neighbour]:
    """Every neighbour (family AF_BRIDGE: every FDB entry) the kernel has."""
    out: list[nl.Neighbour] = []

    def read(data: bytes) -> bool:
        neighbours, acks, done = nl.parse(data)
        out.extend(neighbours)
        for ack in acks:
            if ack.error:
                raise OSError(-ack.error, os.strerror(-ack.error))
        return done

    _dump(nl.dump_request(family, 1), read)
    return out


def dump_routes() -> dict[ipr.RouteKey, ipr.Nexthops]:
    """Every IPv4 and IPv6 route of ours (protocol RTPROT_EVPND), in every table."""
    out: dict[ipr.RouteKey, ipr.Nexthops] = {}

    def read(data: bytes) -> bool:
        found, done = ipr.parse_routes(data)
        out.update(found)
        return done

    for family in (socket.AF_INET, socket.AF_INET6):
        _dump(ipr.dump_request(family, 1), read)
    return out


SO_ATTACH_FILTER = 26
SO_DETACH_FILTER = 27
_BPF_INSN = struct.Struct("=HBBI")  # struct sock_filter: code, jt, jf, k
_LD_W, _LD_H, _LD_B = 0x20, 0x28, 0x30  # BPF_LD | size | BPF_ABS
_JEQ, _JSET, _RET = 0x15, 0x45, 0x06
_ACCEPT, _DROP = 0xFFFFFFFF, 0
#: the classic BPF limit is 4096 instructions; past this many ports we filter nothing
MAX_FILTERED_PORTS = 2000


def _wire(fmt: str, value: int) -> int:
    """A host-order field as BPF's absolute loads see it: in network byte order."""
    return int.from_bytes(struct.pack(fmt, value), "big")


def own_events_filter(
    ports: frozenset[int],
    pid: int,
    writing: bool = False,
    deletions: bool = False,
    route_protocol: int = 238,
) -> bytes:
    """A socket filter that drops, in the kernel, the notifications our own writes cause: those
    carrying our writer's port id (IP neighbours) always, and — while a write of ours is under
    way (`writing`) — new extern_learn entries on the ports we program (the bridge and vxlan
    FDB notifications carry port id 0, so only the moment tells ours from anyone else's). A
    bulk write of 100,000 MACs otherwise costs 200,000 reads of one notification each. With
    `deletions`, removals of extern_learn entries on those ports go too (while we remove many
    ourselves). Between writes everything passes: someone else's entry on our ports is news.
    Of route notifications only those of `route_protocol` (ours, changed by someone else) pass:
    a full routing table churning beside us must not wake us."""
    code = [
        (_LD_W, 0, 0, 12),  # nlmsg_pid
        (_JEQ, 0, 1, _wire("=I", pid)),
        (_RET, 0, 0, _DROP),
        (_LD_H, 0, 0, 4),  # nlmsg_type
        (_JEQ, 1, 0, _wire("=H", nl.RTM_NEWROUTE)),
        (_JEQ, 0, 4, _wire("=H", nl.RTM_DELROUTE)),
        (_LD_B, 0, 0, 21),  # rtm_protocol
        (_JEQ, 1, 0, route_protocol),
        (_RET, 0, 0, _DROP),
        (_RET, 0, 0, _ACCEPT),
    ]
    if not (writing or deletions):
        code.append((_RET, 0, 0, _ACCEPT))
        return b"".join(_BPF_INSN.pack(*insn) for insn in code)
    code += [
        (_JEQ, 2, 0, _wire("=H", nl.RTM_NEWNEIGH)) if writing else (_JEQ, 0, 0, 0),
        (_JEQ, 1, 0, _wire("=H", nl.RTM_DELNEIGH)) if deletions else (_JEQ, 0, 0, 0),
        (_RET, 0, 0, _ACCEPT),
        (_LD_B, 0, 0, 26),  # ndm_flags
        (_JSET, 1, 0, nl.NTF_EXT_LEARNED),
        (_RET, 0, 0, _ACCEPT),
        (_LD_W, 0, 0, 20),  # ndm_ifindex
    ]
    for ifindex in sorted(ports):
        code += [(_JEQ, 0, 1, _wire("=i", ifindex)), (_RET, 0, 0, _DROP)]
    code.append((_RET, 0, 0, _ACCEPT))
    return b"".join(_BPF_INSN.pack(*insn) for insn in code)


def attach_filter(sock: socket.socket, program: bytes) -> None:
    import ctypes

    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("@HP", len(program) // _BPF_INSN.size, ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class Events:
    """Link, address and neighbour notifications, readable without blocking."""

    def __init__(self) -> None:
        self.sock = _socket(
            (
                RTNLGRP_LINK,
                RTNLGRP_NEIGH,
                RTNLGRP_IPV4_IFADDR,
                RTNLGRP_IPV6_IFADDR,
                RTNLGRP_IPV4_ROUTE,
                RTNLGRP_IPV6_ROUTE,
            )
        )
        # room for a bulk write's notifications (two per FDB entry, ~100 bytes each)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 128 << 20)
        self.sock.setblocking(False)
        self._buffer = bytearray(1 << 20)

    def fileno(self) -> int:
        return self.sock.fileno()

    def ignore_own(
        self, ports: frozenset[int], pid: int, writing: bool = False, deletions: bool = False
    ) -> bool:
        """Filter out what our own writes cause (see own_events_filter); False when there
        are too many ports to filter in the kernel (then walk() skips new entries on them,
        ours and anyone else's alike, and only the audit finds someone else's)."""
        if len(ports) > MAX_FILTERED_PORTS:
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_FILTER, 0)
            return False
        attach_filter(self.sock, own_events_filter(ports, pid, writing, deletions))
        return True

    def read(
        self,
        skip_pid: int = -1,
        skip_new_on: frozenset[int] = frozenset(),
        route_protocol: int = -1,
        skip_gone: Container[tuple[int, bytes]] = (),
    ) -> tuple[list[nl.Neighbour], bool, bool, bool]:
        """Neighbour events, whether any link/address event came, whether events were lost
        (the buffer overran: a full resync is due), whether a route of `route_protocol`
        changed. (`skip_*`: see neighbours.walk.)"""
        neighbours: list[nl.Neighbour] = []
        links = False
        lost = False
        routes = False
        buffer = self._buffer
        while True:
            try:
                # into one buffer: a notification is a datagram of its own, and recv() made a
                # megabyte-sized bytes object for each of 100,000 (a table's IPs going)
                size = self.sock.recv_into(buffer)
            except BlockingIOError:
                return neighbours, links, lost, routes
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    lost = True
                    continue
                raise
            found, _, _, other, changed = nl.walk(
                bytes(buffer[:size]), skip_pid, skip_new_on, route_protocol, skip_gone
            )
            neighbours.extend(found)
            links |= other  # anything but a neighbour or route message: a link or an address
            routes |= changed

    def close(self) -> None:
        self.sock.close()
