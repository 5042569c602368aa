"""Published ports as dockerd takes them: PortBindings checks and errors,
the host port requests made at start, and the allocator's held sockets
(bound on 127.0.0.1 only; no traffic)."""
import socket

import pytest

from engine import errors
from engine.network.portmap import (
    DEFAULT_EPHEMERAL_RANGE, PortAllocationError, PortAllocator, RequestedPort, ephemeral_range,
    parse_port_range, requested_ports, validate_port_bindings,
)


@pytest.mark.parametrize("raw, expected", [("", (0, 0)), ("80", (80, 80)), ("0080", (80, 80)),
                                            ("8000-8010", (8000, 8010)), ("65535", (65535, 65535))])
def test_host_port_ranges_parse_as_go_connections(raw, expected):
    assert parse_port_range(raw) == expected


@pytest.mark.parametrize("bindings, culprit", [
    ({"abc/tcp": []}, "abc"),
    ({"80-90/tcp": []}, "80-90"),
    ({"70000": []}, "70000"),
    ({"80/tcp": [{"HostIp": "", "HostPort": "x"}]}, "x"),
    ({"80/tcp": [{"HostPort": "9000-8000"}]}, "9000-8000"),
    ({"80/tcp": [{"HostPort": "+8080"}]}, "+8080"),
    ({"80/tcp": [{"HostPort": "65536"}]}, "65536"),
])
def test_bad_port_bindings_get_dockerds_error(bindings, culprit):
    with pytest.raises(errors.InvalidParameter) as refused:
        validate_port_bindings(bindings)
    assert str(refused.value) == f'invalid port specification: "{culprit}"'


def test_good_port_bindings_pass():
    validate_port_bindings({"80/tcp": [{"HostIp": "", "HostPort": ""}, {"HostPort": "8000-8010"}],
                            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353/udp"}], "8080": None})
    validate_port_bindings(None)


def test_requests_put_explicit_host_ports_before_random_ones():
    requests = requested_ports(
        {"80/tcp": [{"HostIp": "", "HostPort": ""}], "443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8443"}],
         "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "8000-8010"}]},
        {"80/tcp": {}, "443/tcp": {}, "53/udp": {}, "9000/tcp": {}})
    assert requests == [
        RequestedPort("tcp", 443, "127.0.0.1", 8443, 8443),
        RequestedPort("udp", 53, "", 8000, 8010),
        RequestedPort("tcp", 80, "", 0, 0),
    ]


def test_publish_all_gives_every_exposed_port_without_a_binding_a_random_one():
    requests = requested_ports({"80/tcp": [{"HostPort": "8080"}]}, {"80/tcp": {}, "53/udp": {}, "22": {}},
                               publish_all=True)
    assert requests == [RequestedPort("tcp", 80, "", 8080, 8080), RequestedPort("tcp", 22, "", 0, 0),
                        RequestedPort("udp", 53, "", 0, 0)]


def test_ipv6_host_addresses_are_left_out_and_unparsable_ones_mean_every_address():
    requests = requested_ports({"80/tcp": [{"HostIp": "::1", "HostPort": "8080"},
                                           {"HostIp": "bogus", "HostPort": "8081"}]}, None)
    assert requests == [RequestedPort("tcp", 80, "", 8081, 8081)]


def test_sctp_is_not_published():
    with pytest.raises(errors.Unimplemented, match="sctp"):
        requested_ports({"80/sctp": [{"HostPort": "8080"}]}, None)


def test_ephemeral_range_comes_from_the_kernel_or_dockerds_default(tmp_path):
    (tmp_path / "range").write_text("32768\t60999\n")
    assert ephemeral_range(str(tmp_path / "range")) == (32768, 60999)
    assert ephemeral_range(str(tmp_path / "missing")) == DEFAULT_EPHEMERAL_RANGE


def free_ports(count: int) -> int:
    """The first of `count` consecutive loopback ports free for TCP and UDP just now."""
    for base in range(41000, 42000, count):
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, kind) as probe:
                        probe.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free loopback ports")


@pytest.fixture
def allocator():
    made = PortAllocator()
    yield made
    made.close()


def test_a_port_given_twice_is_already_allocated(allocator):
    port = free_ports(1)
    assert allocator.allocate("tcp", "127.0.0.1", port, port) == port
    with pytest.raises(PortAllocationError) as refused:
        allocator.allocate("tcp", "127.0.0.1", port, port)
    assert str(refused.value) == f"Bind for 127.0.0.1:{port} failed: port is already allocated"
    assert allocator.allocate("udp", "127.0.0.1", port, port) == port


def test_a_port_held_by_another_program_is_address_already_in_use(allocator):
    port = free_ports(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.bind(("127.0.0.1", port))
        with pytest.raises(PortAllocationError) as refused:
            allocator.allocate("udp", "127.0.0.1", port, port)
    assert str(refused.value) == (f"Error starting userland proxy: listen udp4 127.0.0.1:{port}: "
                                  "bind: address already in use")
    assert allocator.held() == []


def test_a_held_port_keeps_even_reuseaddr_binders_out_until_released(allocator):
    port = free_ports(1)
    allocator.allocate("tcp", "127.0.0.1", port, port)
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        with pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
            other.listen(1)
    allocator.release("tcp", "127.0.0.1", port)
    allocator.release("tcp", "127.0.0.1", port)
    with socket.socket() as other:
        other.bind(("127.0.0.1", port))


def test_random_ports_go_round_the_ephemeral_range_and_skip_busy_ones():
    base = free_ports(3)
    allocator = PortAllocator(ephemeral=(base, base + 2))
    try:
        with socket.socket() as other:
            other.bind(("127.0.0.1", base + 1))
            other.listen(1)
            assert allocator.allocate("tcp", "127.0.0.1") == base
            assert allocator.allocate("tcp", "127.0.0.1") == base + 2
            with pytest.raises(PortAllocationError, match="^Error starting userland proxy: listen tcp4 "):
                allocator.allocate("tcp", "127.0.0.1")
        assert allocator.allocate("tcp", "127.0.0.1") == base + 1
        with pytest.raises(PortAllocationError, match="^all ports are allocated$"):
            allocator.allocate("tcp", "127.0.0.1")
        allocator.release("tcp", "127.0.0.1", base)
        assert allocator.allocate("tcp", "127.0.0.1") == base
    finally:
        allocator.close()


def test_a_range_gives_its_first_free_port(allocator):
    base = free_ports(3)
    assert allocator.allocate("tcp", "127.0.0.1", base, base + 2) == base
    assert allocator.allocate("tcp", "127.0.0.1", base, base + 2) == base + 1
    assert allocator.allocate("tcp", "127.0.0.1", base + 2, base + 2) == base + 2
    with pytest.raises(PortAllocationError, match="^all ports are allocated$"):
        allocator.allocate("tcp", "127.0.0.1", base, base + 2)


def test_an_address_not_on_the_host_cannot_be_bound(allocator):
    with pytest.raises(PortAllocationError, match="bind: cannot assign requested address$"):
        allocator.allocate("tcp", "192.0.2.77", 8080, 8080)
