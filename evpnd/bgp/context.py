"""What a session negotiated that changes how its messages are encoded and decoded."""

from __future__ import annotations

from dataclasses import dataclass, field

from evpnd.wire.constants import MAX_MESSAGE_LEN


@dataclass(frozen=True, slots=True)
class CodecContext:
    #: RFC 6793: both sides sent the 4-octet AS capability, so AS_PATH carries 4-byte ASNs.
    four_octet_as: bool = True
    #: The peer is in another AS: LOCAL_PREF from it is discarded (RFC 7606 §7.5).
    external: bool = False
    #: (AFI, SAFI) pairs for which NLRI carry an ADD-PATH identifier (RFC 7911), per direction.
    add_path_receive: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    add_path_send: frozenset[tuple[int, int]] = field(default_factory=frozenset)
    #: 65535 once both sides sent the extended message capability (RFC 8654).
    max_message_len: int = MAX_MESSAGE_LEN


DEFAULT_CONTEXT = CodecContext()
