"""The few parts of the DNS wire format (RFC 1035) the embedded resolver
needs: read a query's header and question, write a reply with A or PTR
answers. Our own small code rather than dnspython: the engine's import cost
and RSS are targets, and the resolver answers only these shapes."""
import ipaddress
import struct
from dataclasses import dataclass

HEADER = struct.Struct("!HHHHHH")
TYPE_A, TYPE_PTR, TYPE_MX, TYPE_AAAA = 1, 12, 15, 28
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NOTIMP = 0, 1, 2, 4
REFUSED = 5
FLAG_QR, FLAG_TC, FLAG_RD, FLAG_RA = 0x8000, 0x0200, 0x0100, 0x0080
TTL = 600                       # libnetwork's respTTL for the names it answers
UDP_LIMIT = 512                 # a reply over UDP without EDNS (RFC 1035 4.2.1)
_ANSWER = struct.Struct("!HHHIH")
_NAME_POINTER = 0xC000 | HEADER.size   # the question's name, right after the header
_MAX_POINTERS = 64


class Malformed(ValueError):
    """A packet that is not a DNS query we can read."""


@dataclass(frozen=True)
class Query:
    id: int
    flags: int
    name: str                   # as asked, without the final dot ("" = the root)
    qtype: int
    qclass: int
    question: bytes             # the question section as received, echoed in replies

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF


def read_name(packet: bytes, offset: int) -> tuple[str, int]:
    """The name at offset (following compression pointers, which cannot loop
    forever) and the offset after it in the packet."""
    labels, end, jumps = [], None, 0
    while True:
        if offset >= len(packet):
            raise Malformed("name runs past the end of the packet")
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(packet):
                raise Malformed("truncated compression pointer")
            jumps += 1
            if jumps > _MAX_POINTERS:
                raise Malformed("compression pointers loop")
            end = offset + 2 if end is None else end
            offset = ((length & 0x3F) << 8) | packet[offset + 1]
            continue
        if length & 0xC0:
            raise Malformed(f"unknown label type {length >> 6}")
        if length == 0:
            return ".".join(labels), offset + 1 if end is None else end
        label = packet[offset + 1:offset + 1 + length]
        if len(label) != length:
            raise Malformed("label runs past the end of the packet")
        labels.append(label.decode("latin-1"))
        offset += 1 + length


def parse_query(packet: bytes) -> Query:
    """The header and the one question of a query; Malformed otherwise."""
    if len(packet) < HEADER.size:
        raise Malformed("shorter than a DNS header")
    ident, flags, qdcount, _, _, _ = HEADER.unpack_from(packet)
    if flags & FLAG_QR:
        raise Malformed("a response, not a query")
    if qdcount != 1:
        raise Malformed(f"{qdcount} questions")
    name, offset = read_name(packet, HEADER.size)
    if offset + 4 > len(packet):
        raise Malformed("question runs past the end of the packet")
    qtype, qclass = struct.unpack_from("!HH", packet, offset)
    return Query(ident, flags, name, qtype, qclass, packet[HEADER.size:offset + 4])


def encode_name(name: str) -> bytes:
    """A name as labels; the caller gives a name of valid labels."""
    labels = [label.encode() for label in name.rstrip(".").split(".") if label]
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def a_answer(ip: str) -> bytes:
    return _ANSWER.pack(_NAME_POINTER, TYPE_A, CLASS_IN, TTL, 4) + ipaddress.IPv4Address(ip).packed


def ptr_answer(host: str) -> bytes:
    target = encode_name(host)
    return _ANSWER.pack(_NAME_POINTER, TYPE_PTR, CLASS_IN, TTL, len(target)) + target


def reply(query: Query, rcode: int, answers: list[bytes] = (), limit: int = 0) -> bytes:
    """The reply to query: its question echoed, flags as libnetwork sets them
    (recursion available, not authoritative). With a limit (UDP), answers
    that do not fit are dropped and TC set, so the client asks again over TCP."""
    flags = FLAG_QR | (query.flags & (0x7800 | FLAG_RD)) | FLAG_RA | rcode
    answers = list(answers)
    size = HEADER.size + len(query.question) + sum(map(len, answers))
    while limit and size > limit and answers:
        size -= len(answers.pop())
        flags |= FLAG_TC
    header = HEADER.pack(query.id, flags, 1, len(answers), 0, 0)
    return header + query.question + b"".join(answers)


def error_reply(packet: bytes, rcode: int) -> bytes | None:
    """A bare reply (no question, no RA: as dockerd's) to a query that cannot
    be answered, or None when it asks nothing (then it is dropped, as by dockerd)."""
    if len(packet) < HEADER.size:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", packet)
    if flags & FLAG_QR or qdcount == 0:
        return None
    return HEADER.pack(ident, FLAG_QR | (flags & (0x7800 | FLAG_RD)) | rcode, 0, 0, 0, 0)


def reverse_ipv4(name: str) -> str | None:
    """The address a PTR query for "d.c.b.a.in-addr.arpa" asks about, or None."""
    labels = name.lower().split(".")
    if len(labels) != 6 or labels[4:] != ["in-addr", "arpa"]:
        return None
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
    except ValueError:
        return None


def rcode_of(packet: bytes) -> int:
    return struct.unpack_from("!H", packet, 2)[0] & 0xF
