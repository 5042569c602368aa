#!/usr/bin/env python3
"""Networking benchmark: engine-py side by side with real dockerd, in one run.

    python3 bench/network.py [--quick] [--runs N] [--json FILE]

Starts engine-py (its networking as it comes: the `engine-py0` bridge, its
nftables table, no proxy) and real dockerd 20.10 with its defaults (the
docker0 bridge, iptables, docker-proxy), each inside a network namespace
the bench makes (lo up; a veth pair to a second namespace of the bench, the
"client" namespace), loads busybox into both (as bench/engine.py does) and
drives both with the same docker CLI:

  * `docker run -d -p PORT:80 busybox httpd -f` until the first HTTP reply
    to a client polling 127.0.0.1:PORT in the daemon's namespace;
  * `docker run --rm busybox true` on a user network, on the default bridge
    and with `--network none`;
  * `docker network create` + `docker network rm`;
  * the latency of an A query for a container's name, sent from inside a
    container on the same user network to 127.0.0.11;
  * TCP throughput into a container through a published port, from the
    daemon's loopback and from the client namespace.

Samples are interleaved; prints ratios (ours/dockerd) with the issue's
targets and decides nothing. Removes every container, network, daemon,
mount, cgroup and namespace it made, also on failure or Ctrl-C, and lists
anything left behind. See bench/README.md. Needs root. Python 3.11
standard library only.
"""
import errno
import os
import selectors
import socket
import sys
import threading
import time

import benchlib
import benchsys
from benchlib import log, side_by_side
from engine import IMAGE, EngineBench

HTTP_PORT = 8080        # the host port of the httpd, the same in both namespaces
TCP_PORT = 5001         # the receiver's port, published as the same host port
POLL_INTERVAL = 0.005   # s between two connection attempts of the HTTP poller
REPLY_DEADLINE = 30     # s a published httpd may take to answer; only guards against a hang
# The veth between a daemon's namespace and its client namespace: a /30 of
# the benchmarking range (RFC 2544), which no daemon's pool hands out.
DAEMON_SIDE, CLIENT_SIDE = "198.18.0.1", "198.18.0.2"
# The host's Python, run inside a busybox container through the host's root
# bind-mounted read-only (busybox has no TCP sender, no DNS client to time).
HOST_PYTHON = ("-v", "/:/host:ro", IMAGE, "chroot", "/host", "/usr/bin/python3", "-I", "-S", "-c")

# Counts bytes until EOF on each connection and answers with the count.
RECEIVER = f"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", {TCP_PORT}))
s.listen(8)
buf = bytearray(1 << 18)
while True:
    c, _ = s.accept()
    n = 0
    while k := c.recv_into(buf):
        n += k
    c.sendall(str(n).encode())
    c.close()
"""

# argv: NAME COUNT. COUNT A queries for NAME to the embedded resolver, one
# at a time; prints the address answered and the microseconds of each.
DNS_CLIENT = """
import socket, struct, sys, time
name, count = sys.argv[1], int(sys.argv[2])
qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.connect(("127.0.0.11", 53))
took = []
for i in range(count):
    query = struct.pack(">HHHHHH", i, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    t0 = time.perf_counter_ns()
    s.send(query)
    reply = s.recv(512)
    took.append((time.perf_counter_ns() - t0) // 1000)
    answers = struct.unpack(">H", reply[6:8])[0]
    if reply[:2] != query[:2] or reply[3] & 15 or not answers:
        sys.exit(f"query {i}: rcode {reply[3] & 15}, {answers} answers")
print(socket.inet_ntoa(reply[-4:]), *took)
"""

ROWS = (("publish", "run -d -p {http_port}:80 httpd, to the first HTTP reply, ms", "<= 0.6", False),
        ("publish_early", "the same, polled from the start, ms", "-", False),
        ("run_usernet", "docker run --rm --network USERNET busybox true, ms", "<= 0.6", False),
        ("run_bridge", "docker run --rm busybox true (default bridge), ms", "-", False),
        ("run_none", "docker run --rm --network none busybox true, ms", "#10: <= 0.5", False),
        ("net_create_rm", "docker network create + network rm, ms", "<= 0.5", False),
        ("dns", "A query for a container's name, in a container, us", "<= 1.0", False),
        ("tcp_lo", "TCP via -p, from the daemon's loopback, MB/s", ">= 1.0", True),
        ("tcp_ns", "TCP via -p, from another namespace, MB/s", ">= 1.0", True))


def first_http_reply(port, give_up):
    """Polls 127.0.0.1:port with `GET /` on a new connection every
    POLL_INTERVAL, keeping the earlier ones open (a proxy or a held port may
    accept before anything answers); perf_counter_ns() when the first bytes
    of an HTTP reply arrive, or None once give_up is set or after REPLY_DEADLINE."""
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + REPLY_DEADLINE
    next_try = 0.0
    try:
        while not give_up.is_set() and time.monotonic() < deadline:
            now = time.monotonic()
            if now >= next_try:
                next_try = now + POLL_INTERVAL
                s = socket.socket()
                s.setblocking(False)
                if s.connect_ex(("127.0.0.1", port)) in (0, errno.EINPROGRESS):
                    sel.register(s, selectors.EVENT_WRITE, "connecting")
                else:
                    s.close()
            for key, _ in sel.select(max(0.0, next_try - time.monotonic())):
                s = key.fileobj
                try:
                    if key.data == "connecting":
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                            s.send(b"GET / HTTP/1.0\r\n\r\n")
                            sel.modify(s, selectors.EVENT_READ, "sent")
                            continue
                    elif s.recv(16).startswith(b"HTTP/"):
                        return time.perf_counter_ns()
                except OSError:
                    pass
                sel.unregister(s)
                s.close()
        return None
    finally:
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


def send_through(address, nbytes):
    """nbytes of zeros to address, then EOF; MB/s from the connect until the
    receiver's count arrives (which must be nbytes)."""
    chunk = memoryview(bytes(1 << 20))
    with socket.create_connection(address, timeout=60) as s:
        t0 = time.perf_counter()
        left = nbytes
        while left > 0:
            left -= s.send(chunk[:left])
        s.shutdown(socket.SHUT_WR)
        reply = b"".join(iter(lambda: s.recv(64), b""))   # the receiver closes after its count
        seconds = time.perf_counter() - t0
    if not reply:   # a proxy that accepted before the receiver listened
        raise ConnectionResetError(f"{address[0]}:{address[1]} closed without a count")
    if reply != str(nbytes).encode():
        raise RuntimeError(f"the receiver counted {reply!r} of {nbytes} bytes")
    return nbytes / seconds / 1e6


class NetworkBench(EngineBench):
    name = "network"
    counts = {"runs": (20, 4, "samples per timed verb per daemon"),
              "warmup": (3, 1, "warm-up `run --rm` per daemon"),
              "lookups": (200, 50, "DNS queries per container, one container per sample"),
              "transfers": (5, 3, "TCP transfers per path per daemon"),
              "mb": (256, 128, "MB sent per TCP transfer")}
    error_subs = ((r"bn\d+-[\w.-]+", "<name>"), (r"\b[0-9a-f]{12,64}\b", "<id>"))
    tools = tuple(t for t in EngineBench.tools if t[0] != "registry")
    options = ()

    @classmethod
    def add_options(cls, ap):
        """None beyond the counts."""

    def __init__(self, args):
        super().__init__(args)
        self.tag = f"bn{os.getpid()}"
        self.clients = {}        # daemon name -> its client benchsys.Netns
        self.usernet = f"{self.tag}-net"
        self.networks = set()    # the names of the networks made, removed at cleanup

    # -- setup ----------------------------------------------------------------
    def setup(self):
        docker_tar = self.busybox_archive()
        for name in ("ours", "dockerd"):   # start_daemons() takes the first two
            self.netns.append(benchsys.Netns(f"{self.tag}-{name}"))
        for name, daemon_ns in zip(("ours", "dockerd"), list(self.netns)):
            self.clients[name] = benchsys.Netns(f"{self.tag}-{name}-client")
            self.netns.append(self.clients[name])
            self.wire(daemon_ns, self.clients[name])
        self.start_daemons(docker_tar, networking=True)

    def wire(self, daemon_ns, client_ns):
        """A veth pair between the two namespaces, DAEMON_SIDE/30 and CLIENT_SIDE/30, both up."""
        for argv in (["ip", "-n", daemon_ns.name, "link", "add", "bench0", "type", "veth",
                      "peer", "name", "bench1", "netns", client_ns.name],
                     ["ip", "-n", daemon_ns.name, "addr", "add", f"{DAEMON_SIDE}/30", "dev", "bench0"],
                     ["ip", "-n", client_ns.name, "addr", "add", f"{CLIENT_SIDE}/30", "dev", "bench1"],
                     ["ip", "-n", daemon_ns.name, "link", "set", "bench0", "up"],
                     ["ip", "-n", client_ns.name, "link", "set", "bench1", "up"]):
            self.tool(argv, " ".join(argv[:6]))

    # -- the measurements -------------------------------------------------------
    def measure(self):
        a = self.args
        log(f"warm-up: {a.warmup} `docker run --rm` per daemon ...")
        side_by_side(self.daemons, a.warmup, lambda d: self.docker(d, "run", "--rm", IMAGE, "true",
                                                                    what="run --rm (warm-up)", check=False))
        for d in self.daemons:
            self.make_network(d, self.usernet)
        log(f"docker run --rm (user network, default bridge, none): {a.runs} each per daemon ...")
        self.timed("run_usernet", "run", "--rm", "--network", self.usernet, IMAGE, "true")
        self.timed("run_bridge", "run", "--rm", IMAGE, "true")
        self.timed("run_none", "run", "--rm", "--network", "none", IMAGE, "true")
        log(f"docker network create + rm: {a.runs} per daemon ...")
        self.sampled("net_create_rm", a.runs, self.create_and_remove)
        log(f"docker run -d -p {HTTP_PORT}:80 httpd to the first reply: 2 x {a.runs} per daemon ...")
        self.sampled("publish", a.runs, lambda d: self.publish(d, early=False))
        self.sampled("publish_early", a.runs, lambda d: self.publish(d, early=True))
        log(f"DNS: {a.runs} containers x {a.lookups} queries per daemon ...")
        for d in self.daemons:
            self.docker(d, "run", "-d", "--network", self.usernet, "--name", f"{self.tag}-target", IMAGE,
                        "sleep", "3600", what="run -d (DNS target)")
            # untimed: the name resolves through the container's own resolv.conf too, as a program would ask
            self.docker(d, "run", "--rm", "--network", self.usernet, IMAGE, "nslookup", f"{self.tag}-target",
                        what="nslookup through resolv.conf")
        self.sampled("dns", a.runs, self.lookups)
        log(f"TCP through a published port: {a.transfers} x {a.mb} MB per path per daemon ...")
        for d in self.daemons:
            self.docker(d, "run", "-d", "--name", f"{self.tag}-receiver", "-p", f"{TCP_PORT}:{TCP_PORT}",
                        *HOST_PYTHON, RECEIVER, what="run -d (receiver)")
        self.sampled("tcp_lo", a.transfers, lambda d: self.transfer(d, d.netns, ("127.0.0.1", TCP_PORT)))
        self.sampled("tcp_ns", a.transfers,
                     lambda d: self.transfer(d, self.clients[d.name], (DAEMON_SIDE, TCP_PORT)))
        self.results["client_alone_ms"] = self.summary(
            [self.command("client", [a.docker, "--version"], "--version").ms for _ in range(a.runs)])

    def make_network(self, daemon, name):
        r = self.docker(daemon, "network", "create", name, what="network create")
        if r.ok:
            self.networks.add(name)
        return r

    def create_and_remove(self, daemon):
        """ms of `network create NAME` + `network rm NAME`."""
        name = self.new_name("net")
        created = self.make_network(daemon, name)
        if not created.ok:
            return None
        removed = self.docker(daemon, "network", "rm", name, what="network rm")
        return created.ms + removed.ms if removed.ok else None

    def publish(self, daemon, early):
        """ms from spawning `docker run -d -p` of an httpd until a client in the
        daemon's namespace gets its first HTTP reply; the client starts
        polling when the CLI has exited or, if early, before it is spawned.
        The container is removed after, untimed."""
        name = self.new_name("httpd")
        give_up = threading.Event()

        def poll():
            return daemon.netns.start(lambda: first_http_reply(HTTP_PORT, give_up))
        poller = poll() if early else None
        t0 = time.perf_counter_ns()
        r = self.docker(daemon, "run", "-d", "-p", f"{HTTP_PORT}:80", "--name", name, IMAGE, "httpd", "-f",
                        what="run -d -p (httpd)")
        if not r.ok:
            give_up.set()
        poller = poller or poll()
        try:
            answered = poller.result(REPLY_DEADLINE + 5)
        except Exception as e:
            self.error(daemon.name, "HTTP poller", "-", repr(e))
            answered = None
        if r.ok and answered is None:
            self.error(daemon.name, "first HTTP reply", "-", f"no reply on 127.0.0.1:{HTTP_PORT} within"
                       f" {REPLY_DEADLINE} s")
        self.docker(daemon, "rm", "-f", name, what="rm -f (httpd)", check=r.ok)
        return (answered - t0) / 1e6 if r.ok and answered else None

    def lookups(self, daemon):
        """The median us of --lookups A queries for the target's name from a
        new container on the user network (the container's start untimed)."""
        a = self.args
        r = self.docker(daemon, "run", "--rm", "--network", self.usernet, *HOST_PYTHON, DNS_CLIENT,
                        f"{self.tag}-target", str(a.lookups), what="DNS client")
        fields = r.out.split()
        if not r.ok or len(fields) != a.lookups + 1:
            if r.ok:
                self.error(daemon.name, "DNS client", "-", f"unexpected output: {r.out[:120]!r}")
            return None
        return benchlib.summary([int(x) for x in fields[1:]])["median"]

    def transfer(self, daemon, netns, address):
        """MB/s of one transfer to the receiver's published port from netns;
        the first try waits until the receiver answers."""
        nbytes = self.args.mb * 1000 * 1000
        deadline = time.monotonic() + 30
        while True:
            try:
                return netns.call(lambda: send_through(address, nbytes))
            except (OSError, RuntimeError) as e:
                if time.monotonic() > deadline or isinstance(e, RuntimeError):
                    self.error(daemon.name, f"TCP from {netns.name} to {address[0]}", "-", repr(e))
                    return None
                time.sleep(0.1)

    # -- report -------------------------------------------------------------------
    def report(self):
        a, R = self.args, self.results
        self.print_head("network")
        print(f"  client: {R['versions']['client']} for both; each daemon in a network namespace of its own,"
              " with its default networking (dockerd: docker0, iptables, docker-proxy)")
        print(f"  DNS: {a.lookups} queries per container, the median of each container's; TCP: {a.mb} MB per"
              " transfer into the host's python3 in a busybox container")
        print("  cells: median [p25-p75]; a * means some samples failed (see the errors below)")
        print()
        fields = {"http_port": HTTP_PORT}
        self.print_rows(ROWS, fields, 54)
        print(f"  for scale: the docker CLI alone (`docker --version`, no daemon) takes"
              f" {benchlib.cell(R['client_alone_ms'])} ms")
        print("  dockerd's TCP from its loopback goes through docker-proxy (userland); from another namespace"
              " through its iptables DNAT")
        print("  polled from the start, dockerd's docker-proxy dials the container before its veth is up: the"
              " bridge's ARP entry stays INCOMPLETE until the 1 s retransmit")
        print()
        self.print_summary(ROWS, fields, "the networking issue, #11")

    # -- cleanup ---------------------------------------------------------------------
    def cleanup(self):
        leaks = []
        for d in self.daemons:
            try:
                self.remove_containers(d)
                leaks += self.remove_networks(d)
            except Exception as e:   # cleanup goes on whatever happens
                leaks.append(f"[{d.name}] cleanup through the docker CLI failed: {e!r}")
        return leaks + super().cleanup()

    def remove_networks(self, daemon):
        """docker network rm of what the bench made and still lists; a leak line for each that stays."""
        if not daemon.alive():
            return []
        listed = set(self.docker(daemon, "network", "ls", "--format", "{{.Name}}", what="network ls (cleanup)",
                                 check=False).out.split())
        left = sorted(self.networks & listed)
        if left:
            self.docker(daemon, "network", "rm", *left, what="network rm (cleanup)")
        stays = self.networks & set(self.docker(daemon, "network", "ls", "--format", "{{.Name}}",
                                                what="network ls (cleanup)", check=False).out.split())
        return [f"[{daemon.name}] network {n} could not be removed" for n in sorted(stays)]


if __name__ == "__main__":
    sys.exit(NetworkBench.main(__doc__))
