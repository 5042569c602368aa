"""The resolver's wire code on its own: queries read (compression, bad
packets), replies written as libnetwork's, truncation for UDP."""
import struct

import pytest

from engine.network import dnswire
from engine.network.dnswire import Malformed
from network_dns_client import parse, query

HEADER = struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0)


def test_a_query_read_with_its_question_kept_as_sent():
    read = dnswire.parse_query(query("Web.MyNet", qtype=1, ident=0xBEEF))
    assert (read.id, read.name, read.qtype, read.qclass, read.opcode) == (0xBEEF, "Web.MyNet", 1, 1, 0)
    assert read.question == b"\x03Web\x05MyNet\x00\x00\x01\x00\x01"


def test_names_follow_compression_pointers():
    packet = HEADER + b"\x03web\x00" + b"\x02db\xc0\x0c"
    assert dnswire.read_name(packet, 17) == ("db.web", 22)
    assert dnswire.read_name(packet, 12) == ("web", 17)


@pytest.mark.parametrize("packet,why", [
    (b"\x00" * 11, "shorter than a DNS header"),
    (struct.pack("!HHHHHH", 9, 0x8180, 1, 0, 0, 0) + b"\0\0\x01\0\x01", "a response"),
    (struct.pack("!HHHHHH", 9, 0x0100, 0, 0, 0, 0), "0 questions"),
    (HEADER + b"\x05ab", "label runs past"),
    (HEADER + b"\x03abc", "name runs past"),
    (HEADER + b"\xc0", "truncated compression pointer"),
    (HEADER + b"\xc0\x0c\0\x01\0\x01", "compression pointers loop"),
    (HEADER + b"\x80a\0\0\x01\0\x01", "unknown label type 2"),
    (HEADER + b"\x01a\0\0\x01", "question runs past"),
])
def test_bad_queries_are_malformed(packet, why):
    with pytest.raises(Malformed, match=why):
        dnswire.parse_query(packet)


def test_replies_echo_the_question_with_ra_set_and_rd_copied():
    asked = dnswire.parse_query(query("web", ident=5))
    answer = parse(dnswire.reply(asked, dnswire.NOERROR, [dnswire.a_answer("10.0.0.2")]))
    assert answer["id"] == 5 and answer["flags"] == 0x8180 and answer["question"] == "web"
    assert answer["answers"] == [("web", 1, 600, "10.0.0.2")]
    ptr = parse(dnswire.reply(asked, dnswire.NOERROR, [dnswire.ptr_answer("web.mynet")]))
    assert ptr["answers"] == [("web", 12, 600, "web.mynet")]


def test_udp_replies_drop_what_does_not_fit_and_say_so():
    asked = dnswire.parse_query(query("web"))
    answers = [dnswire.a_answer(f"10.0.{i}.1") for i in range(40)]
    cut = dnswire.reply(asked, dnswire.NOERROR, answers, limit=dnswire.UDP_LIMIT)
    whole = dnswire.reply(asked, dnswire.NOERROR, answers)
    assert len(cut) <= 512 and parse(cut)["tc"] and len(parse(cut)["answers"]) == (512 - 12 - 9) // 16
    assert not parse(whole)["tc"] and len(parse(whole)["answers"]) == 40


def test_error_replies_need_at_least_a_query_header():
    assert dnswire.error_reply(b"\x00\x09\x01", dnswire.FORMERR) is None
    assert dnswire.error_reply(struct.pack("!HHHHHH", 9, 0x8000, 0, 0, 0, 0), dnswire.FORMERR) is None
    assert dnswire.error_reply(struct.pack("!HHHHHH", 9, 0x0100, 0, 0, 0, 0), dnswire.FORMERR) is None
    assert dnswire.error_reply(HEADER + b"junk", dnswire.FORMERR) == struct.pack("!HHHHHH", 9, 0x8101, 0, 0, 0, 0)


@pytest.mark.parametrize("name,ip", [("4.0.89.10.in-addr.arpa", "10.89.0.4"), ("4.0.89.10.IN-ADDR.ARPA", "10.89.0.4"),
                                     ("0.89.10.in-addr.arpa", None), ("256.0.89.10.in-addr.arpa", None),
                                     ("4.0.89.10.ip6.arpa", None), ("x.0.89.10.in-addr.arpa", None)])
def test_ptr_names_to_addresses(name, ip):
    assert dnswire.reverse_ipv4(name) == ip
