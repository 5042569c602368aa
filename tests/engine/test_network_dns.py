"""The embedded resolver in real network namespaces: a "container" namespace
where it listens on 127.0.0.11:53, the "engine" namespace it serves and
forwards from, and an upstream namespace with a fake DNS server behind a
veth pair — all made by the test and removed after it."""
import os
import socket
import struct
import subprocess

import pytest

from engine.network.dns import MAX_FORWARDS, Closed, Resolver
from engine.network.netlink import run_in_netns
from network_dns_client import FakeUpstream, ask_tcp, ask_udp, link_pair, netns, parse, query

pytestmark = pytest.mark.root

A, PTR, AAAA, MX = 1, 12, 28, 15
NAMES = {"web": ["10.89.0.2", "10.89.0.3"], "db": ["10.89.0.4"]}
UPSTREAM = {"example.test": "192.0.2.7", "broken.test": 2}   # anything else: silence


def lookup(key, name):
    return list(NAMES.get(name, [])) if key == "c1" else []


def reverse(key, ip):
    return {"10.89.0.4": "db.mynet"}.get(ip) if key == "c1" else None


@pytest.fixture
def engine_ns():
    with netns() as path:
        yield path


@pytest.fixture
def container_ns():
    with netns() as path:
        yield path


@pytest.fixture
def upstream(engine_ns):
    with netns() as path:
        link_pair(engine_ns, "10.99.0.1/29", path, "10.99.0.2/29")
        server = FakeUpstream(path, "10.99.0.2", UPSTREAM)
        try:
            yield server
        finally:
            server.close()


@pytest.fixture
def resolver(engine_ns, container_ns, upstream):
    made = run_in_netns(engine_ns, lambda: Resolver(lookup, reverse, upstream_timeout=0.3))
    try:
        made.attach("c1", container_ns, ["10.99.0.2"])
        yield made
    finally:
        made.close()


def test_a_names_of_ours_answered_with_every_address_in_turn(resolver, container_ns, upstream):
    """Flags (QR RD RA, not authoritative), TTL and the name as asked: as dockerd 20.10's resolver."""
    first = parse(ask_udp(container_ns, query("web")))
    second = parse(ask_udp(container_ns, query("WEB.", ident=7)))
    assert first["id"] == 0x1234 and first["rcode"] == 0 and first["flags"] & 0x8080 == 0x8080
    assert [(a[0], a[1], a[2]) for a in first["answers"]] == [("web", A, 600)] * 2
    assert [a[3] for a in first["answers"]] == ["10.89.0.2", "10.89.0.3"]
    assert second["id"] == 7 and [a[3] for a in second["answers"]] == ["10.89.0.3", "10.89.0.2"]
    assert second["answers"][0][0] == "WEB"  # the name as asked
    assert upstream.seen == []


def test_aaaa_and_mx_of_our_name_are_empty_noerror_and_ptr_of_our_ip_named(resolver, container_ns, upstream):
    aaaa = parse(ask_udp(container_ns, query("db", AAAA)))
    mx = parse(ask_udp(container_ns, query("db", MX)))
    ptr = parse(ask_udp(container_ns, query("4.0.89.10.in-addr.arpa", PTR)))
    assert (aaaa["rcode"], aaaa["answers"], aaaa["flags"]) == (0, [], 0x8180)
    assert (mx["rcode"], mx["answers"]) == (0, [])
    assert ptr["answers"] == [("4.0.89.10.in-addr.arpa", PTR, 600, "db.mynet")]
    assert upstream.seen == []


def test_other_names_types_and_addresses_go_upstream_under_another_id(resolver, container_ns, upstream):
    forwarded = parse(ask_udp(container_ns, query("example.test", ident=0x4242)))
    assert forwarded["id"] == 0x4242 and forwarded["answers"][0][3] == "192.0.2.7"
    for name, qtype in (("web", 16), ("nothere", AAAA), ("9.9.89.10.in-addr.arpa", PTR)):  # 16: TXT
        assert parse(ask_udp(container_ns, query(name, qtype)))["rcode"] == 2  # upstream silent
    assert [name for _, name in upstream.seen] == ["example.test", "web", "nothere", "9.9.89.10.in-addr.arpa"]


def test_tcp_answers_ours_and_forwards_the_rest(resolver, container_ns, upstream):
    ours, theirs = ask_tcp(container_ns, [query("db", ident=1), query("example.test", ident=2)])
    assert parse(ours)["id"] == 1 and parse(ours)["answers"][0][3] == "10.89.0.4"
    assert parse(theirs)["id"] == 2 and parse(theirs)["answers"][0][3] == "192.0.2.7"
    hung_up = parse(ask_tcp(container_ns, [query("silent.test", ident=3)])[0])  # upstream closes without a reply
    assert (hung_up["id"], hung_up["rcode"]) == (3, 2)


def test_silent_upstream_is_servfail_and_the_next_one_is_tried(engine_ns, container_ns, upstream):
    resolver = run_in_netns(engine_ns, lambda: Resolver(lookup, reverse, upstream_timeout=0.3))
    try:
        resolver.attach("c1", container_ns, ["10.99.0.3", "10.99.0.2"])  # nobody at .3
        assert parse(ask_udp(container_ns, query("example.test")))["answers"][0][3] == "192.0.2.7"
        assert parse(ask_udp(container_ns, query("silent.test")))["rcode"] == 2
        assert parse(ask_udp(container_ns, query("broken.test")))["rcode"] == 2
    finally:
        resolver.close()


def test_without_upstreams_only_our_names_resolve(engine_ns, container_ns):
    resolver = run_in_netns(engine_ns, lambda: Resolver(lookup, reverse))
    try:
        resolver.attach("c1", container_ns, [])
        assert parse(ask_udp(container_ns, query("db")))["answers"][0][3] == "10.89.0.4"
        assert parse(ask_udp(container_ns, query("example.test")))["rcode"] == 2
    finally:
        resolver.close()


# the flags of the replies as dockerd 20.10's resolver gives them (no RA, no question)
@pytest.mark.parametrize("packet,reply", [
    (b"", None), (b"\x12", None),
    (query("x", flags=0x8000), None),                           # a response: never answered
    (struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\x05ab", 0x8101),   # label past the end
    (struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\0\x01\0\x01", 0x8101),  # pointer loop
    (struct.pack("!HHHHHH", 9, 0x0100, 2, 0, 0, 0) + b"\0\0\x01\0\x01" * 2, 0x8101),    # two questions
    (struct.pack("!HHHHHH", 9, 0x0100, 0, 0, 0, 0), None),                                # none: dropped
    (struct.pack("!HHHHHH", 9, 0x0100, 1, 0, 0, 0) + b"\x01a\0\0", 0x8101),             # no class
    (query("db", flags=0x1100), 0x9104),                        # opcode STATUS: not implemented
])
def test_malformed_packets_get_formerr_or_nothing_and_the_resolver_goes_on(resolver, container_ns, packet, reply):
    def exchange():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.5)
            sock.sendto(packet, ("127.0.0.11", 53))
            try:
                return sock.recv(65535)
            except TimeoutError:
                return None
    answer = run_in_netns(container_ns, exchange)
    assert (answer and struct.unpack_from("!H", answer, 2)[0]) == reply
    assert parse(ask_udp(container_ns, query("db")))["answers"][0][3] == "10.89.0.4"


def test_many_addresses_over_udp_are_truncated_for_tcp(engine_ns, container_ns):
    many = [f"10.90.{i // 250}.{i % 250 + 1}" for i in range(40)]
    resolver = run_in_netns(engine_ns, lambda: Resolver(lambda key, name: many if name == "big" else [], reverse))
    try:
        resolver.attach("c1", container_ns, [])
        udp = parse(ask_udp(container_ns, query("big")))
        tcp = parse(ask_tcp(container_ns, [query("big")])[0])
        assert udp["tc"] and 0 < len(udp["answers"]) < 40
        assert not tcp["tc"] and len(tcp["answers"]) == 40
    finally:
        resolver.close()


def test_busybox_nslookup_in_the_namespace(resolver, container_ns):
    def nslookup(name):
        return subprocess.run(["ip", "netns", "exec", os.path.basename(container_ns), "busybox", "nslookup",
                               name, "127.0.0.11"], capture_output=True, text=True, timeout=30)
    web, forwarded, back = nslookup("web"), nslookup("example.test"), nslookup("10.89.0.4")
    assert web.returncode == 0 and "Address: 10.89.0.2" in web.stdout and "Address: 10.89.0.3" in web.stdout
    assert forwarded.returncode == 0 and "Address: 192.0.2.7" in forwarded.stdout
    assert back.returncode == 0 and "name = db.mynet" in back.stdout


def test_detach_frees_the_port_and_nothing_else_moves(engine_ns, container_ns):
    engine_threads_netns = os.readlink("/proc/thread-self/ns/net")
    resolver = run_in_netns(engine_ns, lambda: Resolver(lookup, reverse))
    try:
        resolver.attach("c1", container_ns, [])
        with pytest.raises(ValueError, match="c1 is already attached"):
            resolver.attach("c1", container_ns, [])
        resolver.detach("c1")
        with pytest.raises(ConnectionRefusedError):
            ask_udp(container_ns, query("db"))
        resolver.attach("c1", container_ns, [])
        assert parse(ask_udp(container_ns, query("db")))["answers"][0][3] == "10.89.0.4"
        resolver.detach("c1")
        resolver.detach("c1")
        resolver.attach("c2", container_ns, [])
    finally:
        resolver.close()
    assert os.readlink("/proc/thread-self/ns/net") == engine_threads_netns
    with pytest.raises(ConnectionRefusedError):  # close() detached c2
        ask_udp(container_ns, query("db"))
    resolver.detach("c2")
    with pytest.raises(Closed, match="dns resolver: closed"):
        resolver.attach("c1", container_ns, [])


def test_attach_to_a_missing_namespace_names_it(engine_ns):
    resolver = run_in_netns(engine_ns, lambda: Resolver(lookup, reverse))
    try:
        with pytest.raises(OSError, match="joining network namespace /run/netns/nope-dns: No such file"):
            resolver.attach("c1", "/run/netns/nope-dns", [])
    finally:
        resolver.close()


def test_forwards_beyond_the_cap_are_servfail_at_once(engine_ns, container_ns, upstream):
    resolver = run_in_netns(engine_ns, lambda: Resolver(lookup, reverse, upstream_timeout=60))
    try:
        resolver.attach("c1", container_ns, ["10.99.0.2"])

        def flood():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(10)
                sock.connect(("127.0.0.11", 53))
                for n in range(MAX_FORWARDS):
                    sock.send(query(f"silent{n}.test", ident=n))
                sock.send(query("one-more.test", ident=0xFFFF))
                return sock.recv(512)
        answer = parse(run_in_netns(container_ns, flood))
        assert (answer["id"], answer["rcode"]) == (0xFFFF, 2)
        assert parse(ask_udp(container_ns, query("db")))["answers"][0][3] == "10.89.0.4"
    finally:
        resolver.close()


def test_idle_tcp_connections_are_closed(engine_ns, container_ns):
    resolver = run_in_netns(engine_ns, lambda: Resolver(lookup, reverse, tcp_idle=0.2))
    try:
        resolver.attach("c1", container_ns, [])

        def idle():
            with socket.create_connection(("127.0.0.11", 53), timeout=10) as sock:
                return sock.recv(1)
        assert run_in_netns(container_ns, idle) == b""
    finally:
        resolver.close()
