"""Reading the BGP byte streams out of the reference pcap files (Ethernet / IPv4 / TCP)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

#: The FRR captures the tests read, kept in the repository (see tests/data/README.md).
REFERENCE = Path(__file__).resolve().parent / "data"


@dataclass
class TcpStream:
    src: str
    sport: int
    dst: str
    dport: int
    data: bytearray = field(default_factory=bytearray)


def _ip(raw: bytes) -> str:
    return ".".join(str(b) for b in raw)


def read_streams(path: Path) -> list[TcpStream]:
    """One stream per direction of each TCP connection, in capture order."""
    blob = path.read_bytes()
    magic = struct.unpack_from("<I", blob)[0]
    if magic != 0xA1B2C3D4:
        raise ValueError(f"{path}: not a little-endian pcap file")
    streams: dict[tuple[str, int, str, int], TcpStream] = {}
    next_seq: dict[tuple[str, int, str, int], int] = {}
    pos = 24
    while pos < len(blob):
        _, _, incl, _ = struct.unpack_from("<IIII", blob, pos)
        frame = blob[pos + 16 : pos + 16 + incl]
        pos += 16 + incl
        if frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack_from("!H", ip, 2)[0]
        if ip[9] != 6:
            continue
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack_from("!HHI", tcp)
        offset = (tcp[12] >> 4) * 4
        payload = tcp[offset:]
        key = (_ip(ip[12:16]), sport, _ip(ip[16:20]), dport)
        if key not in streams:
            streams[key] = TcpStream(*key)
        if not payload:
            continue
        expected = next_seq.get(key)
        if expected is not None and seq != expected:
            continue  # a retransmission
        streams[key].data += payload
        next_seq[key] = seq + len(payload)
    return [s for s in streams.values() if s.data]
