"""engine.network.netlink without root: the messages it builds and how it reads
the kernel's answers, against a scripted socket standing for the kernel."""
import errno
import socket
import struct

import pytest

from engine.network import netlink as nl

NLM_F_MULTI = 0x2


def header(msg_type, seq, payload, flags=0):
    return nl._HEADER.pack(nl._HEADER.size + len(payload), msg_type, flags, seq, 0) + payload


def ack(seq, err=0, extack=""):
    """The kernel's NLMSG_ERROR, capped (NETLINK_CAP_ACK), with its message as a TLV."""
    payload = struct.pack("=i", -err) + nl._HEADER.pack(16, 0, 0, seq, 0)
    flags = nl.NLM_F_CAPPED
    if extack:
        payload += nl._attr(nl.NLMSGERR_ATTR_MSG, extack.encode() + b"\0")
        flags |= nl.NLM_F_ACK_TLVS
    return header(nl.NLMSG_ERROR, seq, payload, flags)


def link(seq, index, name):
    return header(nl.RTM_NEWLINK, seq, nl._IFINFO.pack(0, 1, index, 0, 0) + nl._attr(nl.IFLA_IFNAME, nl._name(name)),
                  NLM_F_MULTI)


def route(seq, dst, table=nl.RT_TABLE_MAIN):
    network = __import__("ipaddress").IPv4Network(dst)
    body = nl._RTMSG.pack(socket.AF_INET, network.prefixlen, 0, 0, min(table, 255), 3, 0, 1, 0)
    if network.prefixlen:
        body += nl._attr(nl.RTA_DST, network.network_address.packed)
    return header(nl.RTM_NEWROUTE, seq, body + nl._attr(nl.RTA_TABLE, struct.pack("=I", table)), NLM_F_MULTI)


class ScriptedKernel:
    """A socket whose answers come from answer(request) -> datagrams; records what was sent."""

    def __init__(self, answer):
        self.answer, self.sent, self.queue, self.closed = answer, [], [], False

    def send(self, data):
        size, msg_type, flags, seq, _pid = nl._HEADER.unpack_from(data)
        assert size == len(data)
        request = (msg_type, flags, seq, data[nl._HEADER.size:])
        self.sent.append(request)
        self.queue.extend(self.answer(request))
        return len(data)

    def recv(self, size):
        return self.queue.pop(0)

    def close(self):
        self.closed = True


def acking(errors=None, links=None):
    """Acks everything; errors: message type -> (errno, extack); links: name -> index for lookups."""
    errors, links = errors or {}, links or {}

    def answer(request):
        msg_type, _flags, seq, payload = request
        if msg_type == nl.RTM_GETLINK:
            name = nl._attributes(payload, nl._IFINFO.size)[nl.IFLA_IFNAME][:-1].decode()
            if name not in links:
                return [ack(seq, errno.ENODEV)]
            return [link(seq, links[name], name) + ack(seq)]
        return [ack(seq, *errors.get(msg_type, (0,)))]
    return answer


def test_create_veth_makes_the_peer_under_its_name_inside_the_target_namespace(tmp_path):
    netns = tmp_path / "netns"
    netns.write_text("")
    kernel = ScriptedKernel(acking())
    nl.Netlink(kernel).create_veth("veth1a2b3c4", "eth0", str(netns), mtu=1450)

    [(msg_type, flags, _seq, payload)] = kernel.sent
    assert msg_type == nl.RTM_NEWLINK
    assert flags == nl.NLM_F_REQUEST | nl.NLM_F_ACK | nl.NLM_F_CREATE | nl.NLM_F_EXCL
    attrs = nl._attributes(payload, nl._IFINFO.size)
    assert attrs[nl.IFLA_IFNAME] == b"veth1a2b3c4\0" and attrs[nl.IFLA_MTU] == struct.pack("=I", 1450)
    info = nl._attributes(attrs[nl.IFLA_LINKINFO], 0)
    assert info[nl.IFLA_INFO_KIND] == b"veth"
    peer = nl._attributes(info[nl.IFLA_INFO_DATA], 0)[nl.VETH_INFO_PEER]
    peer_attrs = nl._attributes(peer, nl._IFINFO.size)
    assert peer_attrs[nl.IFLA_IFNAME] == b"eth0\0" and peer_attrs[nl.IFLA_MTU] == struct.pack("=I", 1450)
    assert nl.IFLA_NET_NS_FD in peer_attrs


def test_create_veth_closes_the_namespace_fd_whatever_the_kernel_says(tmp_path):
    netns = tmp_path / "netns"
    netns.write_text("")
    fds_before = len(__import__("os").listdir("/proc/self/fd"))
    kernel = ScriptedKernel(acking(errors={nl.RTM_NEWLINK: (errno.EEXIST, "")}))
    with pytest.raises(FileExistsError):
        nl.Netlink(kernel).create_veth("veth0", "eth0", str(netns))
    assert len(__import__("os").listdir("/proc/self/fd")) == fds_before


def test_a_missing_peer_namespace_is_named_in_the_error():
    with pytest.raises(FileNotFoundError, match=r"^\[Errno 2\] creating veth v0 with peer eth0 in /nonexistent/ns: "
                                                r"No such file or directory$"):
        nl.Netlink(ScriptedKernel(acking())).create_veth("v0", "eth0", "/nonexistent/ns")


def test_kernel_errors_name_the_operation_and_the_link_with_the_kernels_own_text():
    kernel = ScriptedKernel(acking(errors={nl.RTM_SETLINK: (errno.EINVAL, "mtu less than device minimum")}))
    with pytest.raises(OSError) as raised:
        nl.Netlink(kernel).set_mtu("br-1234", 10)
    assert raised.value.errno == errno.EINVAL
    assert raised.value.strerror == "setting mtu 10 on br-1234: Invalid argument (mtu less than device minimum)"


def test_an_existing_bridge_is_file_exists_naming_it():
    kernel = ScriptedKernel(acking(errors={nl.RTM_NEWLINK: (errno.EEXIST, "")}))
    with pytest.raises(FileExistsError, match="creating bridge br-x: File exists$"):
        nl.Netlink(kernel).create_bridge("br-x")
    [(_, flags, _seq, _payload)] = kernel.sent
    assert flags & nl.NLM_F_EXCL  # never "adopts" a link of the same name


def test_a_bridge_gets_a_random_local_unicast_mac_of_its_own():
    kernel = ScriptedKernel(acking())
    nl.Netlink(kernel).create_bridge("br-1")
    nl.Netlink(kernel).create_bridge("br-2")
    macs = [nl._attributes(payload, nl._IFINFO.size)[nl.IFLA_ADDRESS] for _t, _f, _s, payload in kernel.sent]
    assert len(set(macs)) == 2 and all(len(mac) == 6 and mac[0] & 0x03 == 0x02 for mac in macs)


def test_set_master_names_a_missing_bridge():
    kernel = ScriptedKernel(acking(links={"veth0": 7}))
    with pytest.raises(OSError, match="attaching veth0 to bridge br-gone: No such device"):
        nl.Netlink(kernel).set_master("veth0", "br-gone")


def test_set_master_sends_the_bridges_index_in_the_namespace_of_the_socket():
    kernel = ScriptedKernel(acking(links={"br-1": 42}))
    nl.Netlink(kernel).set_master("veth0", "br-1")
    msg_type, _flags, _seq, payload = kernel.sent[-1]
    attrs = nl._attributes(payload, nl._IFINFO.size)
    assert (msg_type, attrs[nl.IFLA_IFNAME], attrs[nl.IFLA_MASTER]) == (nl.RTM_SETLINK, b"veth0\0",
                                                                       struct.pack("=I", 42))


def test_hairpin_mode_is_set_on_the_bridge_port_by_its_index():
    kernel = ScriptedKernel(acking(links={"veth0": 7}))
    nl.Netlink(kernel).set_hairpin("veth0")
    msg_type, _flags, _seq, payload = kernel.sent[-1]
    family, _type, index, _flags, _change = nl._IFINFO.unpack_from(payload)
    assert (msg_type, family, index) == (nl.RTM_SETLINK, socket.AF_BRIDGE, 7)
    protinfo = nl._attributes(payload, nl._IFINFO.size)[nl.IFLA_PROTINFO]
    assert nl._attributes(protinfo, 0) == {nl.IFLA_BRPORT_MODE: b"\1"}


def test_set_up_changes_only_the_up_flag():
    kernel = ScriptedKernel(acking())
    nl.Netlink(kernel).set_up("eth0")
    _family, _type, index, flags, change = nl._IFINFO.unpack_from(kernel.sent[0][3])
    assert (index, flags, change) == (0, nl.IFF_UP, nl.IFF_UP)


@pytest.mark.parametrize("mac", ["02:42:zz:00:00:02", "02:42:ac:11"])
def test_a_bad_mac_is_a_value_error_before_any_message(mac):
    kernel = ScriptedKernel(acking())
    with pytest.raises(ValueError, match=f"^setting mac address {mac} on eth0: not a mac address$"):
        nl.Netlink(kernel).set_mac("eth0", mac)
    assert kernel.sent == []


def test_deleting_a_missing_link_is_no_error_but_other_errors_are():
    nl.Netlink(ScriptedKernel(acking(errors={nl.RTM_DELLINK: (errno.ENODEV, "")}))).delete_link("veth0")
    with pytest.raises(PermissionError, match="deleting link veth0: Operation not permitted"):
        nl.Netlink(ScriptedKernel(acking(errors={nl.RTM_DELLINK: (errno.EPERM, "")}))).delete_link("veth0")


def test_link_exists_is_a_lookup_by_name():
    netlink = nl.Netlink(ScriptedKernel(acking(links={"eth0": 2})))
    assert netlink.link_exists("eth0") and not netlink.link_exists("eth1")


def test_add_address_sends_local_address_and_broadcast_and_tolerates_one_already_there():
    kernel = ScriptedKernel(acking(errors={nl.RTM_NEWADDR: (errno.EEXIST, "")}, links={"eth0": 3}))
    nl.Netlink(kernel).add_address("eth0", "172.18.0.2/16")
    msg_type, _flags, _seq, payload = kernel.sent[-1]
    family, prefixlen, _f, _scope, index = nl._IFADDR.unpack_from(payload)
    attrs = nl._attributes(payload, nl._IFADDR.size)
    assert (msg_type, family, prefixlen, index) == (nl.RTM_NEWADDR, socket.AF_INET, 16, 3)
    assert attrs[nl.IFA_LOCAL] == attrs[nl.IFA_ADDRESS] == bytes([172, 18, 0, 2])
    assert attrs[nl.IFA_BROADCAST] == bytes([172, 18, 255, 255])


def test_a_point_to_point_prefix_has_no_broadcast():
    kernel = ScriptedKernel(acking(links={"eth0": 3}))
    nl.Netlink(kernel).add_address("eth0", "10.0.0.0/31")
    assert nl.IFA_BROADCAST not in nl._attributes(kernel.sent[-1][3], nl._IFADDR.size)


@pytest.mark.parametrize("address", ["10.0.0.1", "10.0.0.300/24", "fe80::1/64"])
def test_a_bad_address_is_a_value_error_naming_it(address):
    kernel = ScriptedKernel(acking(links={"eth0": 3}))
    with pytest.raises(ValueError, match=f"^adding address {address} to eth0: "):
        nl.Netlink(kernel).add_address("eth0", address)
    assert kernel.sent == []


def test_the_default_route_is_the_main_tables_and_replaces_one_there():
    kernel = ScriptedKernel(acking())
    nl.Netlink(kernel).add_default_route("172.17.0.1")
    [(msg_type, flags, _seq, payload)] = kernel.sent
    _family, dst_len, _src, _tos, table, _proto, _scope, kind, _f = nl._RTMSG.unpack_from(payload)
    assert (msg_type, dst_len, table, kind) == (nl.RTM_NEWROUTE, 0, nl.RT_TABLE_MAIN, nl.RTN_UNICAST)
    assert flags & nl.NLM_F_REPLACE and flags & nl.NLM_F_CREATE
    assert nl._attributes(payload, nl._RTMSG.size)[nl.RTA_GATEWAY] == bytes([172, 17, 0, 1])


def test_a_dump_spans_datagrams_and_ends_at_done():
    def answer(request):
        seq = request[2]
        return [link(seq, 1, "lo") + link(seq, 2, "eth0"), link(seq, 3, "br-1"),
                header(nl.NLMSG_DONE, seq, struct.pack("=i", 0), NLM_F_MULTI)]
    assert nl.Netlink(ScriptedKernel(answer)).links() == ["lo", "eth0", "br-1"]


def test_a_failed_dump_raises():
    def answer(request):
        return [header(nl.NLMSG_DONE, request[2], struct.pack("=i", -errno.EBUSY), NLM_F_MULTI)]
    with pytest.raises(OSError, match="listing links: Device or resource busy"):
        nl.Netlink(ScriptedKernel(answer)).links()


def test_answers_to_another_request_are_skipped():
    """A caller interrupted mid-exchange leaves its answer queued; the next request must not take it."""
    def answer(request):
        seq = request[2]
        return [ack(seq - 1, errno.EPERM), link(seq - 1, 9, "stale"), link(seq, 2, "eth0") + ack(seq)]
    assert nl.Netlink(ScriptedKernel(answer)).link_exists("eth0")


def test_routes_are_the_main_tables_destinations_without_the_default():
    def answer(request):
        seq = request[2]
        return [route(seq, "0.0.0.0/0") + route(seq, "10.0.0.0/8") + route(seq, "192.168.5.0/24", table=255)
                + route(seq, "172.17.0.0/16") + route(seq, "10.1.0.0/16", table=1000),
                header(nl.NLMSG_DONE, seq, struct.pack("=i", 0), NLM_F_MULTI)]
    assert [str(r) for r in nl.Netlink(ScriptedKernel(answer)).routes()] == ["10.0.0.0/8", "172.17.0.0/16"]


def test_addresses_are_the_links_ipv4_addresses():
    def answer(request):
        msg_type, _flags, seq, _payload = request
        if msg_type == nl.RTM_GETLINK:
            return [link(seq, 4, "eth0") + ack(seq)]
        addr = [header(nl.RTM_NEWADDR, seq, nl._IFADDR.pack(socket.AF_INET, prefix, 0, 0, index)
                       + nl._attr(nl.IFA_ADDRESS, bytes(ip)) + nl._attr(nl.IFA_LOCAL, bytes(ip)), NLM_F_MULTI)
                for ip, prefix, index in (([10, 0, 0, 2], 24, 4), ([127, 0, 0, 1], 8, 1), ([10, 1, 0, 2], 16, 4))]
        return [b"".join(addr), header(nl.NLMSG_DONE, seq, struct.pack("=i", 0), NLM_F_MULTI)]
    assert nl.Netlink(ScriptedKernel(answer)).addresses("eth0") == ["10.0.0.2/24", "10.1.0.2/16"]


def test_close_and_context_manager_close_the_socket():
    kernel = ScriptedKernel(acking())
    with nl.Netlink(kernel):
        pass
    assert kernel.closed


def test_sysctl_names_map_to_proc_sys_paths(monkeypatch, tmp_path):
    opened, real_open = [], open
    monkeypatch.setattr("builtins.open", lambda path, mode: opened.append(path) or real_open(tmp_path / "x", mode))
    nl.set_sysctl("net.ipv4.conf.br-1234.route_localnet", 1)
    nl.set_sysctl("net/ipv4/conf/eth0.100/forwarding", "1")
    assert opened == ["/proc/sys/net/ipv4/conf/br-1234/route_localnet", "/proc/sys/net/ipv4/conf/eth0.100/forwarding"]


def test_a_missing_sysctl_is_named():
    with pytest.raises(FileNotFoundError, match=r"setting sysctl net.ipv4.conf.nope0.forwarding=1: "
                                                r"No such file or directory"):
        nl.set_sysctl("net.ipv4.conf.nope0.forwarding", 1)


def test_importing_the_module_loads_no_ctypes():
    """The engine imports it at start; libc is loaded only when a namespace is made or joined."""
    import subprocess
    import sys
    code = "import sys, engine.network.netlink; print('ctypes' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
