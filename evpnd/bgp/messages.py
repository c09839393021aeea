"""OPEN, KEEPALIVE, NOTIFICATION and ROUTE-REFRESH messages (RFC 4271 §4, RFC 2918, RFC 7313),
and `decode_message`, which dispatches a whole message to its decoder.

UPDATE lives in `evpnd.bgp.update`, since it is where nearly all the work is.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from evpnd.bgp.capabilities import (
    Capability,
    CapabilityError,
    FourOctetAs,
    decode_capability,
    encode_capability,
)
from evpnd.bgp.context import DEFAULT_CONTEXT, CodecContext
from evpnd.bgp.update import Update, decode_update
from evpnd.wire.constants import (
    AS_TRANS,
    HEADER_LEN,
    MARKER,
    MAX_MESSAGE_LEN,
    CeaseSubcode,
    ErrorCode,
    HeaderSubcode,
    MessageType,
    OpenSubcode,
    RouteRefreshSubcode,
    error_name,
)
from evpnd.wire.errors import DecodeError, ErrorAction, Malformed

_PARAM_CAPABILITIES = 2
_PARAM_EXTENDED = 255  # RFC 9072


def frame(message_type: int, body: bytes) -> bytes:
    return MARKER + struct.pack("!HB", HEADER_LEN + len(body), message_type) + body


@dataclass(frozen=True, slots=True)
class Open:
    """`asn` is the 4-octet AS when the peer sent that capability, else the 2-byte field."""

    asn: int
    hold_time: int
    router_id: str
    capabilities: tuple[Capability, ...] = ()
    #: Optional parameters other than capabilities: (type, value), kept to be reported.
    other_parameters: tuple[tuple[int, bytes], ...] = ()
    version: int = 4
    #: The 2-byte "My Autonomous System" field as sent (AS_TRANS for a 4-byte AS).
    my_as_field: int | None = None
    #: RFC 9072 extended optional parameters: used when received, or to force it when sending.
    extended_parameters: bool = False
    #: Capabilities each in their own optional parameter (FRR, GoBGP) or all in one.
    one_parameter_per_capability: bool = True

    def capability(self, kind: type) -> Capability | None:
        for cap in self.capabilities:
            if isinstance(cap, kind):
                return cap
        return None

    def encode(self) -> bytes:
        my_as = self.my_as_field
        if my_as is None:
            my_as = self.asn if self.asn <= 0xFFFF else AS_TRANS
        params = []
        caps = [encode_capability(c) for c in self.capabilities]
        if self.one_parameter_per_capability:
            params += [(_PARAM_CAPABILITIES, c) for c in caps]
        elif caps:
            params.append((_PARAM_CAPABILITIES, b"".join(caps)))
        params += list(self.other_parameters)
        extended = self.extended_parameters or any(len(v) > 255 for _, v in params)
        if not extended:
            blob = b"".join(bytes((t, len(v))) + v for t, v in params)
            extended = len(blob) > 255
        if extended:
            blob = b"".join(struct.pack("!BH", t, len(v)) + v for t, v in params)
            head = struct.pack("!BBH", 255, _PARAM_EXTENDED, len(blob))
        else:
            head = bytes((len(blob),))
        body = struct.pack(
            "!BHH4s",
            self.version,
            my_as,
            self.hold_time,
            ipaddress.IPv4Address(self.router_id).packed,
        )
        return frame(MessageType.OPEN, body + head + blob)


@dataclass(frozen=True, slots=True)
class Keepalive:
    def encode(self) -> bytes:
        return KEEPALIVE_BYTES


KEEPALIVE_BYTES = frame(MessageType.KEEPALIVE, b"")


@dataclass(frozen=True, slots=True)
class Notification:
    code: int
    subcode: int = 0
    data: bytes = b""

    @property
    def name(self) -> str:
        return error_name(self.code, self.subcode)

    @property
    def shutdown_message(self) -> str | None:
        """RFC 8203 / RFC 9003: the operator's reason in an administrative shutdown or reset."""
        if (
            self.code != ErrorCode.CEASE
            or self.subcode
            not in (
                CeaseSubcode.ADMINISTRATIVE_SHUTDOWN,
                CeaseSubcode.ADMINISTRATIVE_RESET,
            )
            or not self.data
        ):
            return None
        length = self.data[0]
        if length + 1 > len(self.data):
            return None
        return self.data[1 : 1 + length].decode("utf-8", "replace")

    @classmethod
    def cease(cls, subcode: int, message: str = "") -> Notification:
        text = message.encode()[:255]  # RFC 9003 allows 255 bytes
        data = bytes((len(text),)) + text if message else b""
        return cls(ErrorCode.CEASE, subcode, data)

    @classmethod
    def from_error(cls, error: DecodeError) -> Notification:
        return cls(error.code, error.subcode, error.data)

    def encode(self) -> bytes:
        return frame(MessageType.NOTIFICATION, bytes((self.code, self.subcode)) + self.data)

    def __str__(self) -> str:
        text = self.shutdown_message
        if text:
            return f"{self.name}: {text!r}"
        return f"{self.name}" + (f" data {self.data.hex()}" if self.data else "")


def _words(value: object) -> str:
    """A capability or a message's field in words: bytes as hex, a NamedTuple as its name and
    fields (`Multiprotocol afi 25 safi 70`) — for `evpnd decode`, never a Python repr."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex() or "(none)"
    fields = getattr(value, "_fields", None)
    if fields is not None:
        inner = " ".join(f"{name} {_words(getattr(value, name))}" for name in fields)
        return f"{type(value).__name__} {inner}".rstrip()
    if isinstance(value, tuple):
        return "(" + ", ".join(_words(v) for v in value) + ")"
    return str(value)


def message_text(message: Open | Notification | Keepalive | RouteRefresh) -> str:
    """A message other than an UPDATE, in words (`evpnd decode`)."""
    if isinstance(message, Open):
        capabilities = "; ".join(_words(c) for c in message.capabilities) or "none"
        text = (
            f"OPEN version {message.version}, AS {message.asn}, hold time {message.hold_time}, "
            f"router id {message.router_id}, capabilities: {capabilities}"
        )
        for kind, value in message.other_parameters:
            text += f"; parameter {kind} {_words(value)}"
        return text
    if isinstance(message, Notification):
        return f"NOTIFICATION {message}"
    if isinstance(message, RouteRefresh):
        return f"ROUTE-REFRESH afi {message.afi} safi {message.safi} subtype {message.subtype}"
    return "KEEPALIVE"


ROUTE_REFRESH_NORMAL = 0
ROUTE_REFRESH_BEGIN = 1  # RFC 7313 BoRR
ROUTE_REFRESH_END = 2  # RFC 7313 EoRR


@dataclass(frozen=True, slots=True)
class RouteRefresh:
    afi: int
    safi: int
    subtype: int = ROUTE_REFRESH_NORMAL

    def encode(self) -> bytes:
        return frame(
            MessageType.ROUTE_REFRESH, struct.pack("!HBB", self.afi, self.subtype, self.safi)
        )


Message = Open | Update | Notification | Keepalive | RouteRefresh


def _header_error(subcode: int, reason: str, data: bytes = b"", offset: int = 0) -> DecodeError:
    return DecodeError(
        ErrorAction.SESSION_RESET, reason, offset, ErrorCode.MESSAGE_HEADER, subcode, data
    )


def check_header(header: bytes, max_len: int = MAX_MESSAGE_LEN) -> DecodeError | None:
    """RFC 4271 §6.1 checks of a 19-byte header, before the body has arrived."""
    if header[:16] != MARKER:
        return _header_error(HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED, "marker is not all ones")
    length = (header[16] << 8) | header[17]
    kind = header[18]
    if kind not in _MIN_LEN:
        return _header_error(
            HeaderSubcode.BAD_MESSAGE_TYPE, f"unknown message type {kind}", bytes((kind,)), 18
        )
    # RFC 8654 §4: OPEN and KEEPALIVE stay within 4096 bytes even with extended messages.
    limit = MAX_MESSAGE_LEN if kind in (MessageType.OPEN, MessageType.KEEPALIVE) else max_len
    if (
        length < _MIN_LEN[kind]
        or length > limit
        or (kind == MessageType.KEEPALIVE and length != HEADER_LEN)
    ):
        return _header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            f"{MessageType(kind).name} message of length {length}",
            header[16:18],
            16,
        )
    return None


_MIN_LEN: dict[int, int] = {
    MessageType.OPEN: 29,
    MessageType.UPDATE: 23,
    MessageType.NOTIFICATION: 21,
    MessageType.KEEPALIVE: 19,
    MessageType.ROUTE_REFRESH: 23,
}


def decode_message(
    data: bytes,
    ctx: CodecContext = DEFAULT_CONTEXT,
    attribute_cache: dict[bytes, object] | None = None,
) -> Message | DecodeError:
    """Decode one whole message (header included). Never raises for bad input: a message that
    cannot be used comes back as a DecodeError whose action is SESSION_RESET; an UPDATE with
    softer RFC 7606 errors comes back as an Update carrying them."""
    if len(data) < HEADER_LEN:
        return _header_error(HeaderSubcode.BAD_MESSAGE_LENGTH, f"{len(data)} bytes is no message")
    header_error = check_header(data[:HEADER_LEN], ctx.max_message_len)
    if header_error is not None:
        return header_error
    length = (data[16] << 8) | data[17]
    if length != len(data):
        return _header_error(
            HeaderSubcode.BAD_MESSAGE_LENGTH,
            f"length field says {length}, message has {len(data)} bytes",
            data[16:18],
            16,
        )
    kind = data[18]
    try:
        if kind == MessageType.UPDATE:
            return decode_update(data, ctx, attribute_cache)
        if kind == MessageType.KEEPALIVE:
            return Keepalive()
        if kind == MessageType.NOTIFICATION:
            return Notification(data[19], data[20], data[21:])
        if kind == MessageType.ROUTE_REFRESH:
            return _decode_route_refresh(data)
        return _decode_open(data)
    except Malformed as exc:
        return exc.error


def _decode_route_refresh(data: bytes) -> RouteRefresh:
    if len(data) != 23:
        # RFC 7313 §5: the whole message goes back in the NOTIFICATION's data.
        raise Malformed(
            DecodeError(
                ErrorAction.SESSION_RESET,
                f"ROUTE-REFRESH of {len(data)} bytes",
                16,
                ErrorCode.ROUTE_REFRESH_MESSAGE,
                RouteRefreshSubcode.INVALID_MESSAGE_LENGTH,
                data,
            )
        )
    afi, subtype, safi = struct.unpack_from("!HBB", data, 19)
    return RouteRefresh(afi, safi, subtype)


def _open_error(subcode: int, reason: str, offset: int, data: bytes = b"") -> Malformed:
    return Malformed(
        DecodeError(
            ErrorAction.SESSION_RESET, reason, offset, ErrorCode.OPEN_MESSAGE, subcode, data
        )
    )


def _decode_open(data: bytes) -> Open:
    version, my_as, hold_time, router_id, params_len = struct.unpack_from("!BHH4sB", data, 19)
    if version != 4:
        # RFC 4271 §6.2: the data is the largest version we support.
        raise _open_error(
            OpenSubcode.UNSUPPORTED_VERSION_NUMBER, f"BGP version {version}", 19, b"\x00\x04"
        )
    if hold_time in (1, 2):
        raise _open_error(OpenSubcode.UNACCEPTABLE_HOLD_TIME, f"hold time {hold_time}", 22)
    if router_id == b"\x00\x00\x00\x00":
        raise _open_error(OpenSubcode.BAD_BGP_IDENTIFIER, "BGP identifier 0.0.0.0", 24)
    pos = 29
    extended = False
    if params_len == 255 and len(data) > 29 and data[29] == _PARAM_EXTENDED:
        # RFC 9072 §2: a non-extended length of 255 then a type of 255 marks the long form.
        if len(data) < 32:
            raise _open_error(OpenSubcode.UNSPECIFIC, "extended parameters cut short", 29)
        params_len = int.from_bytes(data[30:32], "big")
        pos = 32
        extended = True
    end = pos + params_len
    if end != len(data):
        raise _open_error(
            OpenSubcode.UNSPECIFIC,
            f"optional parameters of {params_len} bytes in a {len(data)}-byte OPEN",
            28,
        )
    caps: list[Capability] = []
    others: list[tuple[int, bytes]] = []
    params_seen = 0
    cap_params = 0
    head = 3 if extended else 2
    while pos < end:
        if pos + head > end:
            raise _open_error(OpenSubcode.UNSPECIFIC, "optional parameter header cut short", pos)
        ptype = data[pos]
        plen = int.from_bytes(data[pos + 1 : pos + head], "big")
        vstart = pos + head
        vend = vstart + plen
        if vend > end:
            raise _open_error(
                OpenSubcode.UNSPECIFIC,
                f"optional parameter of {plen} bytes runs past the OPEN",
                pos,
            )
        params_seen += 1
        if ptype == _PARAM_CAPABILITIES:
            cap_params += 1
            cpos = vstart
            while cpos < vend:
                if cpos + 2 > vend:
                    raise _open_error(OpenSubcode.UNSPECIFIC, "capability header cut short", cpos)
                code, clen = data[cpos], data[cpos + 1]
                if cpos + 2 + clen > vend:
                    raise _open_error(
                        OpenSubcode.UNSPECIFIC, f"capability {code} of {clen} bytes overruns", cpos
                    )
                try:
                    caps.append(decode_capability(code, data[cpos + 2 : cpos + 2 + clen]))
                except CapabilityError as exc:
                    raise _open_error(OpenSubcode.UNSPECIFIC, str(exc), cpos) from None
                cpos += 2 + clen
        else:
            others.append((ptype, data[vstart:vend]))
        pos = vend
    asn = my_as
    for cap in caps:
        if isinstance(cap, FourOctetAs):
            asn = cap.asn
            break
    return Open(
        asn=asn,
        hold_time=hold_time,
        router_id=str(ipaddress.IPv4Address(router_id)),
        capabilities=tuple(caps),
        other_parameters=tuple(others),
        version=version,
        my_as_field=my_as,
        extended_parameters=extended,
        one_parameter_per_capability=cap_params == len(caps) or cap_params != 1,
    )
