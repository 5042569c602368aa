"""The kernel door for links, addresses, routes and network namespaces.

Raw rtnetlink (a NETLINK_ROUTE socket and struct) rather than pyroute2 or an
`ip` process per change: the engine's import time and memory are targets, and
one container's wiring is a handful of messages. unshare/setns/mount come from
libc through ctypes, loaded on first use.

A network namespace belongs to a thread, not to the process: whatever has to
happen inside another namespace (opening a socket there, making a new one)
runs in a short-lived thread that joins it and ends, so none of the engine's
own threads is ever moved.
"""
import errno
import ipaddress
import os
import socket
import struct
import threading

NETLINK_ROUTE = 0
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11

# nlmsghdr types and flags
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 0x100, 0x200, 0x400
NLM_F_CAPPED, NLM_F_ACK_TLVS = 0x100, 0x200
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_PROTINFO, IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_EXT_MASK = 12, 18, 28, 29
IFLA_BRPORT_MODE = 4
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFF_UP = 0x1
NLA_F_NESTED = 0x8000

IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_GATEWAY, RTA_TABLE = 1, 5, 15
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1

CLONE_NEWNET = 0x40000000
MS_BIND, MNT_DETACH = 0x1000, 2

_HEADER = struct.Struct("=IHHII")          # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")         # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")          # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")       # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ATTR = struct.Struct("=HH")               # rtattr: len, type
_ANY_LINK = _IFINFO.pack(0, 0, 0, 0, 0)    # a link named by its IFLA_IFNAME


class Netlink:
    """One rtnetlink socket, bound to the network namespace it was opened in;
    every method acts in that namespace, whichever thread calls it."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._seq = 0
        self._lock = threading.Lock()  # one exchange at a time: replies are matched to their request

    @classmethod
    def here(cls) -> "Netlink":
        """The caller's network namespace."""
        return cls(_route_socket())

    @classmethod
    def inside(cls, netns_path: str) -> "Netlink":
        """The namespace bind-mounted at netns_path; the socket stays in it after the thread that opened it ends."""
        return cls(run_in_netns(netns_path, _route_socket))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # links

    def links(self) -> list[str]:
        return [_attributes(payload, _IFINFO.size)[IFLA_IFNAME][:-1].decode()
                for payload in self._dump(RTM_GETLINK, _link_query(), "listing links")]

    def link_exists(self, name: str) -> bool:
        try:
            self._index(name, f"looking up link {name}")
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise
            return False
        return True

    def create_bridge(self, name: str, mtu: int | None = None) -> None:
        """A new bridge; one already there is FileExistsError naming it. Its MAC is
        a random one set explicitly, as dockerd sets it: a bridge whose MAC the
        kernel chose takes its lowest port's, so the gateway's MAC would change
        as containers come and go, and their ARP caches would go stale."""
        attrs = _attr(IFLA_IFNAME, _name(name)) + _mtu_attr(mtu) + _attr(IFLA_ADDRESS, _random_mac()) \
            + _attr(IFLA_LINKINFO | NLA_F_NESTED, _attr(IFLA_INFO_KIND, b"bridge"))
        self._ack(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, _ANY_LINK + attrs,
                  f"creating bridge {name}")

    def create_veth(self, name: str, peer_name: str, peer_netns_path: str, mtu: int | None = None) -> None:
        """A veth pair: name here, peer_name made directly inside the namespace at
        peer_netns_path (never visible here, so it cannot clash with a host link)."""
        what = f"creating veth {name} with peer {peer_name} in {peer_netns_path}"
        netns = _open(peer_netns_path, what)
        try:
            peer = _ANY_LINK + _attr(IFLA_IFNAME, _name(peer_name)) + _mtu_attr(mtu) \
                + _attr(IFLA_NET_NS_FD, struct.pack("=I", netns))
            info = _attr(IFLA_INFO_KIND, b"veth") + _attr(IFLA_INFO_DATA | NLA_F_NESTED,
                                                          _attr(VETH_INFO_PEER | NLA_F_NESTED, peer))
            attrs = _attr(IFLA_IFNAME, _name(name)) + _mtu_attr(mtu) + _attr(IFLA_LINKINFO | NLA_F_NESTED, info)
            self._ack(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, _ANY_LINK + attrs, what)
        finally:
            os.close(netns)

    def set_master(self, name: str, bridge: str) -> None:
        what = f"attaching {name} to bridge {bridge}"
        self._set_link(name, _attr(IFLA_MASTER, struct.pack("=I", self._index(bridge, what))), what)

    def set_hairpin(self, name: str) -> None:
        """Hairpin mode on a bridge port, as dockerd sets it without its userland
        proxy: a container reaching its own published port through the gateway
        has its DNATed frames bridged back out of the port they came in by
        (br_netfilter), which a bridge otherwise never does."""
        what = f"setting hairpin mode on {name}"
        body = _IFINFO.pack(socket.AF_BRIDGE, 0, self._index(name, what), 0, 0)
        self._ack(RTM_SETLINK, 0, body + _attr(IFLA_PROTINFO | NLA_F_NESTED, _attr(IFLA_BRPORT_MODE, b"\1")), what)

    def set_up(self, name: str) -> None:
        self._set_link(name, b"", f"setting link {name} up", flags=IFF_UP)

    def set_mtu(self, name: str, mtu: int) -> None:
        self._set_link(name, _mtu_attr(mtu), f"setting mtu {mtu} on {name}")

    def set_mac(self, name: str, mac: str) -> None:
        what = f"setting mac address {mac} on {name}"
        try:
            address = bytes.fromhex(mac.replace(":", ""))
        except ValueError:
            address = b""
        if len(address) != 6:
            raise ValueError(f"{what}: not a mac address")
        self._set_link(name, _attr(IFLA_ADDRESS, address), what)

    def delete_link(self, name: str) -> None:
        """Deletes a link (a veth's peer goes with it); one already gone is no error."""
        try:
            self._ack(RTM_DELLINK, 0, _ANY_LINK + _attr(IFLA_IFNAME, _name(name)),
                      f"deleting link {name}")
        except OSError as e:
            if e.errno != errno.ENODEV:
                raise

    # addresses and routes (IPv4: the engine's networks are)

    def add_address(self, name: str, address: str) -> None:
        """Adds "ip/prefix" with its broadcast address, as dockerd's netlink does; one already there is no error."""
        what = f"adding address {address} to {name}"
        interface = _interface(address, what)
        attrs = _attr(IFA_LOCAL, interface.ip.packed) + _attr(IFA_ADDRESS, interface.ip.packed)
        if interface.network.prefixlen < 31:
            attrs += _attr(IFA_BROADCAST, interface.network.broadcast_address.packed)
        body = _IFADDR.pack(socket.AF_INET, interface.network.prefixlen, 0, RT_SCOPE_UNIVERSE,
                            self._index(name, what)) + attrs
        try:
            self._ack(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, what)
        except FileExistsError:
            pass

    def addresses(self, name: str) -> list[str]:
        """The link's IPv4 addresses as "ip/prefix"."""
        what = f"listing addresses of {name}"
        index = self._index(name, what)
        found = []
        for payload in self._dump(RTM_GETADDR, _IFADDR.pack(socket.AF_INET, 0, 0, 0, 0), what):
            _family, prefixlen, _flags, _scope, link = _IFADDR.unpack_from(payload)
            attrs = _attributes(payload, _IFADDR.size)
            if link == index:
                found.append(f"{ipaddress.IPv4Address(attrs.get(IFA_LOCAL) or attrs[IFA_ADDRESS])}/{prefixlen}")
        return found

    def add_default_route(self, gateway_ip: str) -> None:
        """The main table's default route via gateway_ip (a route already there is replaced, so a retry is harmless)."""
        what = f"adding default route via {gateway_ip}"
        try:
            gateway = ipaddress.IPv4Address(gateway_ip)
        except ValueError as e:
            raise ValueError(f"{what}: {e}") from None
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
        self._ack(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body + _attr(RTA_GATEWAY, gateway.packed), what)

    def routes(self) -> list[ipaddress.IPv4Network]:
        """The IPv4 destinations of the main table but the default route (dockerd's
        overlap check skips it too: every subnet would overlap it)."""
        found = []
        query = _RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        for payload in self._dump(RTM_GETROUTE, query, "listing routes"):
            _family, dst_len, _src, _tos, table, _proto, _scope, _type, _flags = _RTMSG.unpack_from(payload)
            attrs = _attributes(payload, _RTMSG.size)
            if RTA_TABLE in attrs:
                table = struct.unpack("=I", attrs[RTA_TABLE])[0]
            if table == RT_TABLE_MAIN and dst_len:
                found.append(ipaddress.IPv4Network((attrs[RTA_DST], dst_len)))
        return found

    # the exchange

    def _index(self, name: str, what: str) -> int:
        """The link's index in this socket's namespace (if_nametoindex would look in the caller's)."""
        [payload] = self._exchange(RTM_GETLINK, NLM_F_ACK, _link_query(name), what)
        return _IFINFO.unpack_from(payload)[2]

    def _set_link(self, name: str, attrs: bytes, what: str, flags: int = 0) -> None:
        self._ack(RTM_SETLINK, 0, _IFINFO.pack(0, 0, 0, flags, flags) + _attr(IFLA_IFNAME, _name(name)) + attrs, what)

    def _ack(self, msg_type: int, flags: int, body: bytes, what: str) -> None:
        self._exchange(msg_type, flags | NLM_F_ACK, body, what)

    def _dump(self, msg_type: int, body: bytes, what: str) -> list[bytes]:
        return self._exchange(msg_type, NLM_F_DUMP, body, what)

    def _exchange(self, msg_type: int, flags: int, body: bytes, what: str) -> list[bytes]:
        """Sends one request; returns the payloads of its answer up to its ack or
        its dump's end, or raises the kernel's error as OSError naming what."""
        with self._lock:
            self._seq = seq = self._seq % 0xFFFFFFFF + 1
            self._sock.send(_HEADER.pack(_HEADER.size + len(body), msg_type, flags | NLM_F_REQUEST, seq, 0) + body)
            payloads = []
            while True:
                for reply_type, reply_flags, reply_seq, payload in _messages(self._sock.recv(65536)):
                    if reply_seq != seq:
                        continue  # a late answer to a request whose caller gave up
                    if reply_type == NLMSG_ERROR:
                        _raise_error(payload, reply_flags, what)
                        return payloads
                    if reply_type == NLMSG_DONE:
                        _raise_error(payload[:4], 0, what)  # a dump that failed midway
                        return payloads
                    payloads.append(payload)


def run_in_netns(netns_path: str, work):
    """work() run in a short-lived thread joined to the namespace at netns_path: its
    result, or its exception. Sockets work() opens stay in that namespace."""
    what = f"joining network namespace {netns_path}"

    def joined():
        netns = _open(netns_path, what)
        try:
            _check(_libc().setns(netns, CLONE_NEWNET), what)
        finally:
            os.close(netns)
        return work()
    return _in_thread(joined, what)


def create_netns(path: str) -> None:
    """A new network namespace bind-mounted at path (as `ip netns add`), with lo
    up inside; made by a short-lived thread, so the caller's namespace is unchanged."""
    what = f"creating network namespace {path}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.close(_open(path, what, os.O_CREAT | os.O_EXCL, mode=0))

    def made():
        libc = _libc()
        _check(libc.unshare(CLONE_NEWNET), what)
        _check(libc.mount(b"/proc/thread-self/ns/net", path.encode(), None, MS_BIND, None), what)
        with Netlink(_route_socket()) as inside:
            inside.set_up("lo")
    try:
        _in_thread(made, what)
    except BaseException:
        delete_netns(path)
        raise


def delete_netns(path: str) -> None:
    """Unmounts (detached, as `ip netns del`: a namespace still in use lives on
    until its last process leaves) and unlinks; one already gone is no error."""
    if _libc().umount2(path.encode(), MNT_DETACH) != 0:
        err = _errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not mounted (any more)
            raise OSError(err, f"deleting network namespace {path}: {os.strerror(err)}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        raise OSError(e.errno, f"deleting network namespace {path}: {e.strerror}") from None


def netns_under(directory: str) -> list[str]:
    """The namespace files made under directory (none when it does not exist)."""
    try:
        return sorted(os.path.join(directory, name) for name in os.listdir(directory))
    except FileNotFoundError:
        return []


def set_sysctl(name: str, value: str | int) -> None:
    """Writes a sysctl of the caller's network namespace, by sysctl(8)'s dotted
    name ("net.ipv4.conf.<bridge>.route_localnet"; a name with "/" is a path under /proc/sys)."""
    path = "/proc/sys/" + (name if "/" in name else name.replace(".", "/"))
    try:
        with open(path, "w") as f:
            f.write(f"{value}\n")
    except OSError as e:
        raise OSError(e.errno, f"setting sysctl {name}={value}: {e.strerror}") from None


def _route_socket() -> socket.socket:
    """A NETLINK_ROUTE socket of the calling thread's namespace, with short acks
    that carry the kernel's own error text."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.bind((0, 0))
    except BaseException:
        sock.close()
        raise
    return sock


def _in_thread(work, what: str):
    outcome = {}

    def run():
        try:
            outcome["result"] = work()
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e
    thread = threading.Thread(target=run, name="netns", daemon=True)
    try:
        thread.start()
    except RuntimeError as e:
        raise OSError(errno.EAGAIN, f"{what}: {e}") from None
    thread.join()
    if "error" in outcome:
        raise outcome.pop("error")
    return outcome["result"]


# message encoding

def _attr(kind: int, payload: bytes) -> bytes:
    size = _ATTR.size + len(payload)
    return _ATTR.pack(size, kind) + payload + b"\0" * (-size % 4)


def _attributes(data: bytes, offset: int) -> dict[int, bytes]:
    """The attributes from offset on, by type (nested flag bits dropped)."""
    found = {}
    while offset + _ATTR.size <= len(data):
        size, kind = _ATTR.unpack_from(data, offset)
        if size < _ATTR.size:
            break
        found[kind & 0x3FFF] = data[offset + _ATTR.size:offset + size]
        offset += (size + 3) & ~3
    return found


def _messages(data: bytes):
    """(type, flags, seq, payload) of each message in one datagram."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        size, msg_type, flags, seq, _pid = _HEADER.unpack_from(data, offset)
        if size < _HEADER.size:
            break
        yield msg_type, flags, seq, data[offset + _HEADER.size:offset + size]
        offset += (size + 3) & ~3


def _raise_error(payload: bytes, flags: int, what: str) -> None:
    """An NLMSG_ERROR (or a failed NLMSG_DONE): nothing for an ack, else OSError
    with the kernel's extended message after the errno's text when it gave one."""
    err = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
    if not err:
        return
    message = os.strerror(err)
    if flags & NLM_F_ACK_TLVS:
        request_size = _HEADER.size if flags & NLM_F_CAPPED else _HEADER.unpack_from(payload, 4)[0]
        detail = _attributes(payload, 4 + ((request_size + 3) & ~3)).get(NLMSGERR_ATTR_MSG, b"").rstrip(b"\0")
        if detail:
            message += f" ({detail.decode(errors='replace')})"
    raise OSError(err, f"{what}: {message}")


def _link_query(name: str | None = None) -> bytes:
    query = _ANY_LINK + _attr(IFLA_EXT_MASK, struct.pack("=I", RTEXT_FILTER_SKIP_STATS))
    return query + _attr(IFLA_IFNAME, _name(name)) if name else query


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _random_mac() -> bytes:
    """Unicast and locally administered, as dockerd's netutils.GenerateRandomMAC."""
    mac = bytearray(os.urandom(6))
    mac[0] = (mac[0] & 0xFE) | 0x02
    return bytes(mac)


def _mtu_attr(mtu: int | None) -> bytes:
    return _attr(IFLA_MTU, struct.pack("=I", mtu)) if mtu else b""


def _interface(address: str, what: str) -> ipaddress.IPv4Interface:
    if "/" not in address:
        raise ValueError(f"{what}: expected ip/prefix")
    try:
        return ipaddress.IPv4Interface(address)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


# libc, loaded on first use: the engine imports this module long before it makes a namespace

_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.unshare.argtypes = [ctypes.c_int]
        _LIBC = libc
    return _LIBC


def _errno() -> int:
    import ctypes

    return ctypes.get_errno()


def _check(result: int, what: str) -> None:
    if result != 0:
        err = _errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _open(path: str, what: str, flags: int = 0, mode: int = 0o777) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | flags, mode)
    except OSError as e:
        raise OSError(e.errno, f"{what}: {e.strerror}") from None
