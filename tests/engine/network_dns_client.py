"""What the DNS tests need around the resolver: a tiny DNS client (written
apart from engine/network/dnswire.py, so a shared mistake cannot pass),
network namespaces the test makes and removes, and a fake upstream server."""
import contextlib
import ipaddress
import itertools
import os
import socket
import struct
import subprocess
import threading

from engine.network.netlink import run_in_netns

_names = itertools.count()


def query(name: str, qtype: int = 1, ident: int = 0x1234, flags: int = 0x0100) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".") if part)
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def _name(packet: bytes, offset: int) -> tuple[str, int]:
    labels, end = [], None
    while packet[offset]:
        if packet[offset] >= 0xC0:
            end = end or offset + 2
            offset = struct.unpack_from("!H", packet, offset)[0] & 0x3FFF
            continue
        labels.append(packet[offset + 1:offset + 1 + packet[offset]].decode())
        offset += 1 + packet[offset]
    return ".".join(labels), end or offset + 1


def parse(packet: bytes) -> dict:
    """id, flags, rcode, question and answers [(name, type, ttl, value)] of a reply."""
    ident, flags, qdcount, ancount, _, _ = struct.unpack_from("!HHHHHH", packet)
    offset, question = 12, None
    for _ in range(qdcount):
        question, offset = _name(packet, offset)
        offset += 4
    answers = []
    for _ in range(ancount):
        name, offset = _name(packet, offset)
        rtype, _, ttl, size = struct.unpack_from("!HHIH", packet, offset)
        offset += 10
        data = packet[offset:offset + size]
        value = (str(ipaddress.IPv4Address(data)) if rtype == 1 else
                 _name(packet, offset)[0] if rtype == 12 else data)
        answers.append((name, rtype, ttl, value))
        offset += size
    return {"id": ident, "flags": flags, "rcode": flags & 0xF, "tc": bool(flags & 0x0200),
            "question": question, "answers": answers}


def ask_udp(netns: str, packet: bytes, server: str = "127.0.0.11", timeout: float = 10.0) -> bytes:
    """One UDP exchange from inside netns."""
    def exchange():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.connect((server, 53))  # so that a closed port shows as ConnectionRefusedError
            sock.send(packet)
            return sock.recv(65535)
    return run_in_netns(netns, exchange)


def ask_tcp(netns: str, packets: list[bytes], server: str = "127.0.0.11", timeout: float = 10.0) -> list[bytes]:
    """Several queries over one TCP connection from inside netns, replies in order."""
    def exchange():
        with socket.create_connection((server, 53), timeout=timeout) as sock:
            sock.sendall(b"".join(struct.pack("!H", len(p)) + p for p in packets))
            replies, stream = [], sock.makefile("rb")
            for _ in packets:
                size = struct.unpack("!H", stream.read(2))[0]
                replies.append(stream.read(size))
            return replies
    return run_in_netns(netns, exchange)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def netns():
    """A fresh network namespace at /run/netns/<name>, lo up; yields its path; removed after."""
    name = f"dnstest-{os.getpid()}-{next(_names)}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        yield f"/run/netns/{name}"
    finally:
        ip("netns", "del", name)


def link_pair(left: str, left_ip: str, right: str, right_ip: str) -> None:
    """A veth pair between two test namespaces, addressed "ip/prefix"; it
    goes away with them."""
    left_name, right_name = os.path.basename(left), os.path.basename(right)
    ip("link", "add", "dnsl", "netns", left_name, "type", "veth", "peer", "name", "dnsr", "netns", right_name)
    for name, link, address in ((left_name, "dnsl", left_ip), (right_name, "dnsr", right_ip)):
        ip("-n", name, "addr", "add", address, "dev", link)
        ip("-n", name, "link", "set", link, "up")


class FakeUpstream:
    """A DNS server in a test namespace on <address>:53, UDP and TCP:
    answers[name] = an IPv4 or an rcode (int); names it does not know get no reply."""

    def __init__(self, netns_path: str, address: str, answers: dict):
        self.answers, self.seen, self.stopping = answers, [], threading.Event()
        self.udp, self.tcp = run_in_netns(netns_path, lambda: self._bind(address))
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _bind(address):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind((address, 53))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind((address, 53))
        tcp.listen(8)
        for sock in (udp, tcp):
            sock.settimeout(0.1)  # to notice stopping
        return udp, tcp

    def _reply(self, packet: bytes) -> bytes | None:
        ident = packet[:2]
        name, end = _name(packet, 12)
        self.seen.append((struct.unpack("!H", ident)[0], name))
        answer = self.answers.get(name)
        if answer is None:
            return None
        head = ident + struct.pack("!HHHHH", 0x8180 | (answer if isinstance(answer, int) else 0), 1,
                                   0 if isinstance(answer, int) else 1, 0, 0)
        body = packet[12:end + 4]
        if isinstance(answer, str):
            body += struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + ipaddress.IPv4Address(answer).packed
        return head + body

    def _serve_udp(self):
        while not self.stopping.is_set():
            try:
                packet, client = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            message = self._reply(packet)
            if message:
                self.udp.sendto(message, client)

    def _serve_tcp(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            with conn, conn.makefile("rb") as stream:
                size = struct.unpack("!H", stream.read(2))[0]
                message = self._reply(stream.read(size))
                if message:
                    conn.sendall(struct.pack("!H", len(message)) + message)

    def close(self):
        self.stopping.set()
        for thread in self._threads:
            thread.join()
        self.udp.close()
        self.tcp.close()
