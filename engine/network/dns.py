"""The embedded DNS resolver of user-defined networks, as dockerd's
(libnetwork's resolver.go): containers ask 127.0.0.11:53 inside their own
network namespace; names of the container's networks are answered here,
everything else is forwarded to the upstream resolvers and the reply relayed.

The listening sockets are opened inside each container's network namespace
by a short-lived thread that setns()es there (a network namespace is per
thread, so no other thread of the engine moves); a socket stays in the
namespace it was made in, so one serving thread, in the engine's namespace,
answers every container through a selector. Forwarded queries leave from
that thread, i.e. from the namespace the Resolver was built in.
"""
import contextlib
import itertools
import logging
import os
import queue
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.network import dnswire
from engine.network.netlink import run_in_netns
from engine.network.dnswire import Malformed, Query

LISTEN_ADDRESS = "127.0.0.11"
UPSTREAM_TIMEOUT = 4.0          # libnetwork's extIOTimeout, per upstream tried
MAX_UPSTREAMS = 3               # libnetwork's maxExtDNS
MAX_FORWARDS = 100              # libnetwork's maxConcurrent, per container: beyond it SERVFAIL at once
TCP_IDLE = 8.0                  # a TCP connection without queries is closed (miekg/dns's idle timeout)
_IP_FREEBIND = 15               # lets the sockets bind before the container's lo is up

log = logging.getLogger(__name__)

Lookup = Callable[[str, str], list[str]]
Reverse = Callable[[str, str], "str | None"]


def _listeners(netns_path: str) -> tuple[socket.socket, socket.socket]:
    """UDP and TCP sockets on 127.0.0.11:53 in the namespace the calling thread is in."""
    made = []
    try:
        for kind, name in ((socket.SOCK_DGRAM, "udp"), (socket.SOCK_STREAM, "tcp")):
            sock = socket.socket(socket.AF_INET, kind)
            made.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_IP, _IP_FREEBIND, 1)
            try:
                sock.bind((LISTEN_ADDRESS, 53))
            except OSError as e:
                raise OSError(e.errno, f"binding {LISTEN_ADDRESS}:53/{name} in {netns_path}: {e.strerror}") from None
            if kind == socket.SOCK_STREAM:
                sock.listen(64)
            sock.setblocking(False)
        return made[0], made[1]
    except BaseException:
        for sock in made:
            sock.close()
        raise


@dataclass
class _Container:
    key: str
    upstreams: list[str]
    udp: socket.socket
    tcp: socket.socket
    clients: set = field(default_factory=set)
    forwards: set = field(default_factory=set)


class _TcpClient:
    """One TCP connection from a container: length-prefixed queries in,
    length-prefixed replies out (RFC 1035 4.2.2)."""

    def __init__(self, resolver: "Resolver", container: _Container, sock: socket.socket):
        self.resolver, self.container, self.sock = resolver, container, sock
        self.inbox, self.outbox, self.closed = b"", b"", False
        self.deadline = time.monotonic() + resolver.tcp_idle
        resolver._timers.add(self)

    def on_event(self, events: int) -> None:
        if events & selectors.EVENT_READ:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self.close()
                return
            self.inbox += data or b""
            self.deadline = time.monotonic() + self.resolver.tcp_idle
            while len(self.inbox) >= 2:
                size = struct.unpack_from("!H", self.inbox)[0]
                if len(self.inbox) < 2 + size:
                    break
                packet, self.inbox = self.inbox[2:2 + size], self.inbox[2 + size:]
                self.resolver._handle(self.container, packet, self.send, tcp=True)
        if events & selectors.EVENT_WRITE and not self.closed:
            self._flush()

    def on_timeout(self) -> None:
        """Idle: closed, unless a reply is still on its way from an upstream."""
        if any(forward.respond == self.send for forward in self.container.forwards):
            self.deadline = time.monotonic() + self.resolver.tcp_idle
        else:
            self.close()

    def send(self, message: bytes) -> None:
        if not self.closed:
            self.outbox += struct.pack("!H", len(message)) + message
            self._flush()

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.outbox) if self.outbox else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        self.outbox = self.outbox[sent:]
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbox else 0)
        self.resolver._selector.modify(self.sock, wanted, self.on_event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.container.clients.discard(self)
            self.resolver._timers.discard(self)
            self.resolver._selector.unregister(self.sock)
            self.sock.close()


class _Forward:
    """A query sent on to the upstreams one after the other (UDP if it came
    over UDP, TCP if over TCP) under an ID of its own; the first usable reply
    goes back to the container with the container's ID."""

    def __init__(self, resolver: "Resolver", container: _Container, query: Query, packet: bytes,
                 respond: Callable[[bytes], None], tcp: bool):
        self.resolver, self.container, self.query, self.respond, self.tcp = resolver, container, query, respond, tcp
        self.upstream_id = int.from_bytes(os.urandom(2), "big")
        self.packet = struct.pack("!H", self.upstream_id) + packet[2:]
        self.upstreams = iter(container.upstreams[:MAX_UPSTREAMS])
        self.sock, self.deadline, self.failure, self.inbox, self.outbox = None, 0.0, None, b"", b""

    def next_upstream(self) -> None:
        """Tries the next upstream, or answers with the last failure (SERVFAIL if none replied)."""
        self._drop_socket()
        for upstream in self.upstreams:
            family = socket.AF_INET6 if ":" in upstream else socket.AF_INET
            try:
                sock = socket.socket(family, socket.SOCK_STREAM if self.tcp else socket.SOCK_DGRAM)
            except OSError as e:  # out of fds: as an upstream that failed
                log.warning("dns: forwarding to %s: %s", upstream, e)
                continue
            sock.setblocking(False)
            try:
                if self.tcp:
                    sock.connect_ex((upstream, 53))
                    self.outbox = struct.pack("!H", len(self.packet)) + self.packet
                    events = selectors.EVENT_WRITE
                else:
                    sock.connect((upstream, 53))
                    sock.send(self.packet)
                    events = selectors.EVENT_READ
            except OSError as e:
                log.debug("dns: forwarding to %s: %s", upstream, e)
                sock.close()
                continue
            self.sock, self.inbox = sock, b""
            self.deadline = time.monotonic() + self.resolver.upstream_timeout
            self.resolver._selector.register(sock, events, self.on_event)
            self.resolver._timers.add(self)
            return
        self.finish(self.failure or dnswire.reply(self.query, dnswire.SERVFAIL))

    def on_event(self, events: int) -> None:
        try:
            if events & selectors.EVENT_WRITE:
                sent = self.sock.send(self.outbox)
                self.outbox = self.outbox[sent:]
                if not self.outbox:
                    self.resolver._selector.modify(self.sock, selectors.EVENT_READ, self.on_event)
                return
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:  # refused, unreachable, reset
            log.debug("dns: upstream of %s: %s", self.query.name, e)
            self.next_upstream()
            return
        if self.tcp:
            if not data:
                self.next_upstream()
                return
            self.inbox += data
            if len(self.inbox) < 2 or len(self.inbox) < 2 + struct.unpack_from("!H", self.inbox)[0]:
                return
            data = self.inbox[2:2 + struct.unpack_from("!H", self.inbox)[0]]
        if len(data) < dnswire.HEADER.size or struct.unpack_from("!H", data)[0] != self.upstream_id:
            return  # not the reply to this query: keep waiting until the deadline
        relayed = struct.pack("!H", self.query.id) + data[2:]
        if dnswire.rcode_of(data) in (dnswire.SERVFAIL, dnswire.REFUSED):
            self.failure = relayed  # as libnetwork: the next upstream may know better
            self.next_upstream()
        else:
            self.finish(relayed)

    def on_timeout(self) -> None:
        self.next_upstream()

    def finish(self, message: bytes) -> None:
        self._drop_socket()
        self.container.forwards.discard(self)
        self.respond(message)

    def cancel(self) -> None:
        self._drop_socket()
        self.container.forwards.discard(self)

    def _drop_socket(self) -> None:
        if self.sock is not None:
            self.resolver._timers.discard(self)
            self.resolver._selector.unregister(self.sock)
            self.sock.close()
            self.sock = None


class Closed(RuntimeError):
    """The resolver was closed: nothing attaches any more."""


class Resolver:
    """dockerd's embedded DNS server for every attached container, served by
    one thread. lookup(key, name) gives the IPv4s of a name as the container
    `key` sees it (empty: not one of ours; names come lower-case, without the
    final dot); reverse(key, ip) the name of one of our addresses, or None."""

    def __init__(self, lookup: Lookup, reverse: Reverse, upstream_timeout: float = UPSTREAM_TIMEOUT,
                 tcp_idle: float = TCP_IDLE):
        self.lookup, self.reverse = lookup, reverse
        self.upstream_timeout, self.tcp_idle = upstream_timeout, tcp_idle
        self._selector = selectors.DefaultSelector()
        self._containers: dict[str, _Container] = {}
        self._timers: set = set()  # what waits with a deadline: forwards on an upstream, TCP connections
        self._rotation: dict[tuple[str, str], itertools.count] = {}
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, self._run_calls)
        self._closing, self._closing_lock = False, threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="dns-resolver", daemon=True)
        self._thread.start()

    def attach(self, key: str, netns_path: str, upstreams: list[str]) -> None:
        """Serves 127.0.0.11:53 (UDP and TCP) inside netns_path for container key."""
        if key in self._containers:
            raise ValueError(f"dns resolver: {key} is already attached")
        udp, tcp = run_in_netns(netns_path, lambda: _listeners(netns_path))
        container = _Container(key, list(upstreams), udp, tcp)

        def register():
            if key in self._containers:  # attached meanwhile by another thread
                raise ValueError(f"dns resolver: {key} is already attached")
            self._containers[key] = container
            self._selector.register(udp, selectors.EVENT_READ, lambda _: self._read_udp(container))
            self._selector.register(tcp, selectors.EVENT_READ, lambda _: self._accept(container))
        try:
            self._call(register)
        except BaseException:
            udp.close()
            tcp.close()
            raise

    def detach(self, key: str) -> None:
        """Stops serving container key (missing: nothing to do); its port is free when this returns."""
        with contextlib.suppress(Closed):  # then close() dropped it
            self._call(lambda: self._drop(key))

    def close(self) -> None:
        """Detaches every container and ends the serving thread."""
        with self._closing_lock:
            if self._closing:
                return
            self._closing = True
        self._wake_writer.send(b"\0")
        self._thread.join()
        self._run_calls(0)  # those queued while it ended: their callers wait for them
        for key in list(self._containers):
            self._drop(key)
        self._selector.close()
        self._wake_reader.close()
        self._wake_writer.close()

    def _drop(self, key: str) -> None:
        container = self._containers.pop(key, None)
        if container is None:
            return
        for forward in list(container.forwards):
            forward.cancel()
        for client in list(container.clients):
            client.close()
        for sock in (container.udp, container.tcp):
            self._selector.unregister(sock)
            sock.close()
        for rotated in [k for k in self._rotation if k[0] == key]:
            del self._rotation[rotated]

    def _call(self, work: Callable) -> None:
        """work() run by the serving thread (it alone touches the selector,
        until close()); waits for it."""
        done, outcome = threading.Event(), {}

        def call():
            try:
                work()
            except BaseException as e:  # handed to the caller's thread
                outcome["error"] = e
            done.set()
        with self._closing_lock:
            if self._closing:
                raise Closed("dns resolver: closed")
            self._calls.put(call)
            self._wake_writer.send(b"\0")
        done.wait()
        if "error" in outcome:
            raise outcome["error"]

    def _run_calls(self, _events: int) -> None:
        try:
            self._wake_reader.recv(4096)
        except BlockingIOError:
            pass
        while True:
            try:
                self._calls.get_nowait()()
            except queue.Empty:
                return

    def _serve(self) -> None:
        while not self._closing:
            timeout = max(0.0, min(t.deadline for t in self._timers) - time.monotonic()) if self._timers else None
            for selected, events in self._selector.select(timeout):
                try:
                    selected.data(events)
                except Exception as e:  # one bad exchange must not end the resolver
                    log.error("dns resolver: serving %s: %r", selected.fileobj, e)
            if self._timers:
                now = time.monotonic()
                for timed in [timed for timed in self._timers if timed.deadline <= now]:
                    if timed in self._timers:  # not ended by an earlier one of this round
                        timed.on_timeout()

    def _read_udp(self, container: _Container) -> None:
        for _ in range(64):  # then let the other containers have a turn
            try:
                packet, client = container.udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.debug("dns: reading for %s: %s", container.key, e)
                return

            def respond(message: bytes, client=client) -> None:
                try:
                    container.udp.sendto(message, client)
                except OSError as e:
                    log.debug("dns: replying to %s of %s: %s", client, container.key, e)
            self._handle(container, packet, respond, tcp=False)

    def _accept(self, container: _Container) -> None:
        try:
            sock, _ = container.tcp.accept()
        except OSError:  # gone before accept, or out of fds: the next one may work
            return
        sock.setblocking(False)
        client = _TcpClient(self, container, sock)
        container.clients.add(client)
        self._selector.register(sock, selectors.EVENT_READ, client.on_event)

    def _handle(self, container: _Container, packet: bytes, respond: Callable[[bytes], None], tcp: bool) -> None:
        try:
            query = dnswire.parse_query(packet)
        except Malformed:
            answer = dnswire.error_reply(packet, dnswire.FORMERR)
            if answer is not None:
                respond(answer)
            return
        if query.opcode != 0:
            respond(dnswire.error_reply(packet, dnswire.NOTIMP))
            return
        answer = self._answer(container.key, query, 0 if tcp else dnswire.UDP_LIMIT)
        if answer is not None:
            respond(answer)
        elif len(container.forwards) >= MAX_FORWARDS:
            respond(dnswire.reply(query, dnswire.SERVFAIL))
        else:
            forward = _Forward(self, container, query, packet, respond, tcp)
            container.forwards.add(forward)
            forward.next_upstream()

    def _answer(self, key: str, query: Query, limit: int) -> bytes | None:
        """Our own reply to query, or None when it goes to the upstreams."""
        if query.qclass != dnswire.CLASS_IN:
            return None
        name = query.name.lower()
        if query.qtype in (dnswire.TYPE_A, dnswire.TYPE_AAAA, dnswire.TYPE_MX):
            addresses = self.lookup(key, name) if name else []
            if not addresses:
                return None
            if query.qtype != dnswire.TYPE_A:  # one of ours, IPv4 only, no mail: no answer, no error
                return dnswire.reply(query, dnswire.NOERROR)
            if len(addresses) > 1:  # round robin, as scaled services expect
                turn = next(self._rotation.setdefault((key, name), itertools.count())) % len(addresses)
                addresses = addresses[turn:] + addresses[:turn]
            return dnswire.reply(query, dnswire.NOERROR, [dnswire.a_answer(ip) for ip in addresses], limit)
        if query.qtype == dnswire.TYPE_PTR:
            ip = dnswire.reverse_ipv4(name)
            host = self.reverse(key, ip) if ip else None
            if host:
                return dnswire.reply(query, dnswire.NOERROR, [dnswire.ptr_answer(host)], limit)
        return None
