#!/usr/bin/env python3
"""Engine benchmark: engine-py side by side with real dockerd, in one run.

    python3 bench/engine.py [--quick] [--runs N] [--json FILE]

Starts our engine (engine-py with its own containerd-py, default runtime
runpy-oci) and real dockerd (Debian's docker.io with its own containerd and
runc), each with private directories, socket and pidfile, inside a network
namespace the bench makes (both with `--bridge none --iptables=false`),
loads the same busybox image into both (bundles/make-busybox-image.py, as a
docker-archive, with `docker load`), and drives both with the same docker CLI:

  * `docker run --rm --network none busybox true`;
  * 50 x (`docker run -d` + `docker rm -f`) with 4 in flight: containers/s;
  * `docker exec C true` in a running container;
  * `docker logs C` of a container that printed 100k lines;
  * `docker ps -a` with 100 containers, and compose's label-filtered list;
    the same `docker ps -a` against a server that answers from memory with
    each daemon's bytes (bench/replay.py): the CLI's own part of it;
  * `docker pull` of a 50 MB one-layer image from a docker-registry on the
    namespace's loopback (each pull cold: `docker rmi` after it);
  * the resident memory of each side (daemon, its containerd, shims),
    idle and with 50 running containers.

Samples are interleaved (the order rotating). A verb our engine does not
serve yet is reported as "not available". Prints numbers and ratios
(ours/dockerd) with the issue's targets; decides nothing. Removes every
container, daemon, mount, cgroup and namespace it made, also on failure or
Ctrl-C, and lists anything left behind. See bench/README.md. Needs root.
Python 3.11 standard library only.
"""
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

import benchlib
import benchsys
from benchlib import Table, cell, fmt, log, med, ratio, rotate, side_by_side
from pull import build_images, start_registry
from replay import Replay

MAKE_IMAGE = os.path.join(benchlib.REPO, "bundles", "make-busybox-image.py")
IMAGE = "busybox"
PROJECT_LABEL = "com.docker.compose.project"
# dockerd leaves these mounted when it exits (its data-root bind and its
# netns file): routine, unmounted without a leak line.
DOCKERD_MOUNTS = ("data", "exec/netns/default")

# dockerd without networking: its containers all run with --network none here.
DOCKERD_NO_NETWORK = ("--bridge", "none", "--iptables=false", "--ip-masq=false", "--userland-proxy=false")
ENGINE_NO_NETWORK = ("--bridge", "none", "--iptables=false")  # the same choice for ours

# The rows of the report: key, label, target (as the issue states it), and
# whether higher is better.
ROWS = (("run_rm", "docker run --rm busybox true, ms", "<= 0.5", False),
        ("rate", "run -d + rm -f, 4 in flight, containers/s", ">= 1.5", True),
        ("exec", "docker exec C true, ms", "<= 0.7", False),
        ("ps_all", "docker ps -a ({listed} containers), ms", "<= 0.5", False),
        ("ps_label", "docker ps -a --filter label=...project=x, ms", "<= 0.5", False),
        ("ps_floor", "  the same docker ps -a answered from memory, ms", "-", False),
        ("ps_api", "  the same list over the API (no CLI), ms", "-", False),
        ("ps_label_api", "  compose's label-filtered list over the API, ms", "<= 0.5", False),
        ("logs", "docker logs ({lines} lines), ms", "<= 1.0", False),
        ("pull", "docker pull ({size_mb:g} MB, cold), ms", "<= 1.0", False),
        ("rss_idle", "RSS idle (after a warm-up), MiB", "<= 0.5", False),
        ("rss_running", "RSS with {running} running, MiB", "<= 0.5", False))


class UnixHTTP(http.client.HTTPConnection):
    """HTTP/1.1 over a daemon's unix socket (http.client reads chunked replies)."""

    def __init__(self, path):
        super().__init__("docker")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)

    @classmethod
    def get(cls, path, url):
        """(status, body) of one GET of url over a new connection to the socket at path."""
        connection = cls(path)
        try:
            connection.request("GET", url)
            reply = connection.getresponse()
            return reply.status, reply.read()
        finally:
            connection.close()


def start_engine(tmp, netns, engine, namespace, flags=ENGINE_NO_NETWORK):
    """engine-py in netns with private data-root, exec-root, pidfile, socket,
    containerd namespace and cgroup parent (named as the namespace), and
    flags (by default, as dockerd's, no bridge and no firewall table); its
    own containerd-py (supervised) in exec-root."""
    workdir = _workdir(tmp, "ours")
    argv = [engine, "--data-root", f"{workdir}/data", "--exec-root", f"{workdir}/exec",
            "--pidfile", f"{workdir}/engine.pid", "-H", f"unix://{workdir}/engine.sock",
            "--config-file", f"{workdir}/daemon.json", "--containerd-namespace", namespace,
            "--cgroup-parent", f"/{namespace}", *flags]
    return _daemon("ours", netns, argv, workdir, "engine.sock")


def start_dockerd(tmp, netns, dockerd, cgroup_parent, flags=DOCKERD_NO_NETWORK):
    """dockerd in netns with private data-root, exec-root, pidfile, socket,
    config file and cgroup parent, and flags (by default no bridge and no
    iptables rules); its own containerd."""
    workdir = _workdir(tmp, "dockerd")
    argv = [dockerd, "--data-root", f"{workdir}/data", "--exec-root", f"{workdir}/exec",
            "--pidfile", f"{workdir}/dockerd.pid", "-H", f"unix://{workdir}/docker.sock",
            "--config-file", f"{workdir}/daemon.json", "--cgroup-parent", f"/{cgroup_parent}", *flags]
    return _daemon("dockerd", netns, argv, workdir, "docker.sock")


def _workdir(tmp, name):
    workdir = os.path.join(tmp, name)
    os.mkdir(workdir)
    with open(f"{workdir}/daemon.json", "w") as f:   # not the host's /etc/.../daemon.json
        f.write("{}\n")
    return workdir


def _daemon(name, netns, argv, workdir, socket_name):
    svc = benchsys.Service(name, netns.argv(argv), workdir)
    svc.netns, svc.socket = netns, f"{workdir}/{socket_name}"
    return svc


class EngineBench(benchlib.Bench):
    name = "engine"
    counts = {"runs": (20, 4, "samples per timed verb per daemon"),
              "warmup": (3, 1, "warm-up `run --rm` per daemon"),
              "containers": (50, 12, "run -d + rm -f pairs per throughput round"),
              "rounds": (2, 1, "throughput rounds per daemon"),
              "running": (50, 10, "running containers per daemon for memory"),
              "listed": (100, 20, "containers (running and created) that docker ps lists"),
              "lines": (100000, 20000, "lines of the container whose logs are read"),
              "pulls": (6, 1, "cold pulls of the big image per daemon")}
    options = ("parallel", "size_mb", "settle")   # of add_options(), recorded in the results
    quantiles = "inclusive"
    error_subs = ((r"be\d+-[\w.-]+", "<name>"), (r"\b[0-9a-f]{12,64}\b", "<id>"))
    error_width = 300
    tools = (("docker", "/usr/local/bin/docker", "the client (docker CLI 28)"),
             ("engine-py", os.path.join(benchlib.VENV_BIN, "engine-py"), "our engine"),
             ("dockerd", shutil.which("dockerd") or "/usr/sbin/dockerd", "Debian's docker.io")) + benchlib.REGISTRY_TOOLS

    @classmethod
    def add_options(cls, ap):
        ap.add_argument("--parallel", type=int, default=4, help="calls in flight in the throughput rounds (4)")
        ap.add_argument("--size-mb", type=float, default=50, help="compressed size of the pulled image (50 MB)")
        ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading memory (1)")

    def __init__(self, args):
        super().__init__(args)
        self.tag = f"be{os.getpid()}"
        self.n = 0
        self.netns = []
        self.daemons = []
        self.unavailable = {}   # (daemon, verb) -> the line it answered
        self.results.update(options={k: getattr(args, k) for k in (*self.counts, *self.options)},
                            verbs={}, memory={})

    # -- setup ----------------------------------------------------------------
    def setup(self):
        a = self.args
        docker_tar = self.busybox_archive()
        log(f"building the {a.size_mb:g} MB image ...")
        layout = os.path.join(self.tmp, "layout")
        self.results["image"] = build_images(layout, [("big", [int(a.size_mb * 1e6)])])["big"]
        storage = os.path.join(self.tmp, "registry-data")
        port = None
        for name in ("ours", "dockerd"):
            netns = benchsys.Netns(f"{self.tag}-{name}")
            self.netns.append(netns)
            registry = start_registry(self.tmp, a.registry, self.services, f"registry-{name}", netns, storage, port)
            port = int(registry.host.rsplit(":", 1)[1])   # the same reference in both namespaces
        self.pull_ref = f"{registry.host}/bench/big:latest"
        self.tool(self.netns[-1].argv([a.skopeo, "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:big",
                                       f"docker://{self.pull_ref}"]), "skopeo copy to the registry")
        shutil.rmtree(layout)
        self.start_daemons(docker_tar)

    def busybox_archive(self):
        """The busybox image as a docker-archive (the path); the docker CLI's config made private."""
        os.environ["DOCKER_CONFIG"] = os.path.join(self.tmp, "docker-config")  # not the host user's CLI config
        log("building the busybox image and a docker-archive of it ...")
        oci_tar, docker_tar = os.path.join(self.tmp, "busybox-oci.tar"), os.path.join(self.tmp, "busybox.tar")
        self.tool([sys.executable, MAKE_IMAGE, oci_tar], "make-busybox-image.py")
        self.tool([self.args.skopeo, "copy", "--quiet", f"oci-archive:{oci_tar}",
                   f"docker-archive:{docker_tar}:busybox:latest"], "skopeo copy to a docker-archive")
        return docker_tar

    def start_daemons(self, docker_tar, networking=False):
        """engine-py in the first namespace of self.netns, dockerd in the
        second, both with their default networking or both without a bridge
        and firewall rules; busybox loaded into both; their versions."""
        a = self.args
        log("starting engine-py and dockerd ...")
        self.daemons = [start_engine(self.tmp, self.netns[0], a.engine_py, f"{self.tag}-engine",
                                     () if networking else ENGINE_NO_NETWORK),
                        start_dockerd(self.tmp, self.netns[1], a.dockerd, f"{self.tag}-dockerd",
                                      () if networking else DOCKERD_NO_NETWORK)]
        self.services += self.daemons
        for d in self.daemons:
            benchsys.wait_answering(d, d.socket, self.docker_argv(d, "version"))
        for d in self.daemons:
            self.tool(self.docker_argv(d, "load", "-q", "-i", docker_tar), f"docker load ({d.name})")
        self.results["versions"] = {
            "client": benchsys.version([a.docker, "--version"]),
            **{d.name: self.docker(d, "version", "--format", "{{.Server.Version}} (containerd {{range .Server.Components}}"
                                   "{{if eq .Name \"containerd\"}}{{.Version}}{{end}}{{end}})", what="version").out.strip()
               for d in self.daemons}}

    def tool(self, argv, what):
        """A setup command that must work."""
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"{what}: {(r.stderr or r.stdout).strip()}")
        return r.stdout

    # -- the docker CLI ---------------------------------------------------------
    def docker_argv(self, daemon, *args):
        return [self.args.docker, "-H", f"unix://{daemon.socket}", *args]

    def docker(self, daemon, *args, what=None, check=True):
        """One docker CLI command against daemon; a benchlib.Result."""
        return self.command(daemon.name, self.docker_argv(daemon, *args), what or args[0], check=check)

    def new_name(self, what):
        with self.lock:
            self.n += 1
            return f"{self.tag}-{what}-{self.n}"

    def serves(self, daemon, verb, *args):
        """Whether daemon serves a verb, tried once (untimed): a verb our engine
        does not have yet is noted as not available rather than failing the run."""
        status, _, _, out, err = benchlib.run_timed(self.docker_argv(daemon, *args))
        if status != 0:
            lines = [l for l in (err or out).strip().splitlines() if l.strip() and not l.startswith("Run 'docker")]
            line = (lines or [f"(exit status {status}, no output)"])[-1]
            self.unavailable[(daemon.name, verb)] = line
            log(f"  {daemon.name}: {verb} not available: {line}")
            if daemon.name != "ours":   # dockerd serves every verb here: its failure is an error
                self.error(daemon.name, f"{verb} (first try)", status, err or out)
        return status == 0

    def timed(self, verb, *args, check_out=None):
        """Samples of `docker ARGS` (ms) on each daemon that serves it,
        interleaved, into results["verbs"][verb]; check_out(stdout) must hold
        for a sample to count."""
        serving = [d for d in self.daemons if self.serves(d, verb, *args)]

        def one(d):
            r = self.docker(d, *args, what=verb)
            if r.ok and check_out and not check_out(r.out):
                self.error(d.name, verb, "-", f"unexpected output: {len(r.out.splitlines())} lines:"
                           f" {r.out[:120]!r}")
                return None
            return r.ms if r.ok else None
        samples = side_by_side(serving, self.args.runs, one) if serving else {}
        self.record(verb, samples)

    def sampled(self, verb, count, one):
        """Samples of one(daemon) (a number, None if it failed), interleaved,
        after an untimed first try per daemon; a daemon whose first try
        fails is left out, noted as not available."""
        serving = []
        for d in self.daemons:
            if one(d) is not None:
                serving.append(d)
            else:
                self.unavailable[(d.name, verb)] = "the first try failed (see the errors below)"
                log(f"  {d.name}: {verb}: the first try failed")
        self.record(verb, side_by_side(serving, count, one) if serving else {})

    def timed_api(self, verb, path, count):
        """Samples (ms) of one GET as docker-compose sends it, over a new
        connection to each daemon's socket: the daemon's side of a list
        without the docker CLI's own ~10 ms; the reply must list count containers."""
        def one(d):
            t0 = time.perf_counter_ns()
            status, body = UnixHTTP.get(d.socket, path)
            ms = (time.perf_counter_ns() - t0) / 1e6
            if status != 200 or len(json.loads(body)) != count:
                self.error(d.name, verb, "-", f"unexpected reply: {status} {body[:80]!r}")
                return None
            return ms
        self.record(verb, side_by_side(self.daemons, self.args.runs, one))

    def timed_replayed(self, verb, path, *args):
        """Samples of `docker ARGS` against a Replay of each daemon's answer
        to GET path: the docker CLI's own part of that command."""
        replays = {}
        try:
            for d in self.daemons:
                status, body = UnixHTTP.get(d.socket, path)
                if status == 200:
                    replays[d.name] = Replay(os.path.join(self.tmp, f"replay-{d.name}.sock"), {("GET", path): body})

            def one(d):
                r = self.command(d.name, [self.args.docker, "-H", f"unix://{replays[d.name].path}", *args], verb)
                return r.ms if r.ok else None
            self.record(verb, side_by_side([d for d in self.daemons if d.name in replays], self.args.runs, one))
        finally:
            for replay in replays.values():
                replay.close()

    def record(self, verb, samples):
        """{daemon: summary with its failures, or None where it was not sampled} of {daemon: [ms or None]}."""
        self.results["verbs"][verb] = {d.name: ({"failed": samples[d.name].count(None),
                                                 **(self.summary(samples[d.name]) or {})}
                                                if d.name in samples else None) for d in self.daemons}

    # -- the measurements -------------------------------------------------------
    def measure(self):
        a = self.args
        self.read_memory("rss_start")
        log(f"warm-up: {a.warmup} `docker run --rm` per daemon ...")
        side_by_side(self.daemons, a.warmup, lambda d: self.docker(d, "run", "--rm", "--network", "none", IMAGE, "true",
                                                                    what="run --rm (warm-up)", check=False))
        time.sleep(a.settle)
        self.read_memory("rss_idle")
        log(f"docker run --rm: {a.runs} per daemon ...")
        self.timed("run_rm", "run", "--rm", "--network", "none", IMAGE, "true")
        self.exec_and_logs()
        self.throughput()
        self.running_and_listed()
        self.pulls()
        self.results["client_alone_ms"] = self.summary(
            [self.command("client", [a.docker, "--version"], "--version").ms for _ in range(a.runs)])

    def exec_and_logs(self):
        a = self.args
        log(f"docker exec and docker logs ({a.lines} lines): {a.runs} each per daemon ...")
        for d in self.daemons:
            self.docker(d, "run", "-d", "--network", "none", "--name", f"{self.tag}-exec", IMAGE, "sleep", "3600",
                        what="run -d (exec)")
            self.docker(d, "run", "-d", "--network", "none", "--name", f"{self.tag}-logs", IMAGE,
                        "seq", "1", str(a.lines), what="run -d (logs)")
        self.timed("exec", "exec", f"{self.tag}-exec", "true")
        for d in self.daemons:
            self.docker(d, "wait", f"{self.tag}-logs", what="wait (logs)")
        self.timed("logs", "logs", f"{self.tag}-logs", check_out=lambda out: out.count("\n") == a.lines)
        for d in self.daemons:
            self.docker(d, "rm", "-f", f"{self.tag}-exec", f"{self.tag}-logs", what="rm -f")

    def throughput(self):
        """N x (run -d + rm -f) with P in flight, per daemon; rounds alternate the daemon order."""
        a = self.args
        log(f"throughput: {a.containers} x (run -d + rm -f), {a.parallel} in flight, {a.rounds} round(s) per daemon ...")

        def one(d):
            r = self.docker(d, "run", "-d", "--network", "none", "--name", self.new_name("tp"), IMAGE, "sleep", "600",
                            what="run -d (tp)")
            return r.ok and self.docker(d, "rm", "-f", r.out.strip(), what="rm -f (tp)").ok or None
        serving = []
        for d in self.daemons:
            name = self.new_name("try")
            if self.serves(d, "rate", "run", "-d", "--network", "none", "--name", name, IMAGE, "true"):
                serving.append(d)
                self.docker(d, "rm", "-f", name, what="rm -f (tp)")
        rates = {d.name: [] for d in serving}
        failed = dict.fromkeys(rates, 0)
        for i in range(a.rounds):
            for d in rotate(serving, i):
                wall, fails = self.in_flight(d.name, "run -d + rm -f", a.containers, a.parallel, lambda d=d: one(d))
                failed[d.name] += fails
                rates[d.name].append(a.containers / wall)
                log(f"  round {i + 1}/{a.rounds}, {d.name}: {a.containers / wall:.1f} containers/s"
                    + (f" ({fails} failed)" if fails else ""))
        self.results["verbs"]["rate"] = {n: {"failed": failed[n], **(self.summary(rates[n]) or {})} for n in rates}

    def running_and_listed(self):
        """N running containers per daemon (memory), then created ones up to
        the listed count, half of them in compose project x (docker ps)."""
        a = self.args
        log(f"memory: {a.running} running containers per daemon; docker ps with {a.listed} ...")
        for d in self.daemons:   # what earlier phases left (a `run --rm` that failed half-way)
            self.remove_containers(d)
        total = max(a.listed, a.running)
        for i in range(total):
            project = "x" if i % 2 == 0 else "y"
            verb = "run" if i < a.running else "create"
            for d in rotate(self.daemons, i):
                self.docker(d, verb, *(["-d"] if verb == "run" else []), "--network", "none",
                            "--label", f"{PROJECT_LABEL}={project}", "--name", self.new_name(verb),
                            IMAGE, "sleep", "600", what=f"{verb} (listed)")
            if i + 1 == a.running:
                time.sleep(a.settle)
                self.read_memory("rss_running")
        half = (total + 1) // 2
        self.timed("ps_all", "ps", "-a", "-q", "--no-trunc", check_out=lambda out: len(out.split()) == total)
        self.timed("ps_label", "ps", "-a", "--filter", f"label={PROJECT_LABEL}=x",
                   check_out=lambda out: len(out.splitlines()) == half + 1)
        self.timed_replayed("ps_floor", "/v1.41/containers/json?all=1", "ps", "-a", "-q", "--no-trunc")
        labelled = urllib.parse.quote(json.dumps({"label": [f"{PROJECT_LABEL}=x"]}))
        self.timed_api("ps_api", "/v1.41/containers/json?all=1", total)
        self.timed_api("ps_label_api", f"/v1.41/containers/json?all=1&filters={labelled}", half)
        for d in self.daemons:
            self.remove_containers(d)

    def pulls(self):
        """Cold pulls of the big image: `docker rmi` (untimed) after each."""
        a = self.args
        log(f"docker pull of the {a.size_mb:g} MB image: {a.pulls} cold pull(s) per daemon ...")
        serving = [d for d in self.daemons if self.serves(d, "pull", "pull", "-q", self.pull_ref)
                   and self.cold_again(d)]

        def one(d):
            r = self.docker(d, "pull", "-q", self.pull_ref, what="pull")
            removed = self.docker(d, "rmi", self.pull_ref, what="rmi").ok
            return r.ms if r.ok and removed else None
        self.record("pull", side_by_side(serving, a.pulls, one) if serving else {})
        self.read_memory("rss_end")

    def cold_again(self, daemon):
        """After the untimed first pull: removes the image so the next pull is cold."""
        if self.docker(daemon, "rmi", self.pull_ref, what="rmi").ok:
            return True
        self.unavailable[(daemon.name, "pull")] = "docker rmi failed, so no pull after the first could be cold"
        return False

    # -- memory -------------------------------------------------------------------
    def read_memory(self, key):
        """VmRSS and PSS summed over each daemon's serving processes (see benchsys.serving_pids)."""
        for d in self.daemons:
            self.results["memory"].setdefault(d.name, {})[key] = self.side_memory(d)

    @staticmethod
    def side_memory(daemon):
        """{"rss", "pss" (MiB), "processes" (argv[0] names: counts)} summed over daemon's serving processes."""
        daemon.check_alive()
        rss = pss = 0.0
        names = {}
        for pid in benchsys.serving_pids(daemon.pid, daemon.workdir + "/"):
            try:
                rss += benchsys.status_mib(pid, "VmRSS").get("VmRSS", 0)
                pss += benchsys.rollup_mib(pid).get("Pss", 0)
            except OSError:
                continue
            name = os.path.basename((benchsys.cmdline(pid) or ["?"])[0])
            names[name] = names.get(name, 0) + 1
        return {"rss": rss, "pss": pss, "processes": names}

    # -- report -------------------------------------------------------------------
    def report(self):
        a, R = self.args, self.results
        self.print_head("engine")
        print(f"  client: {R['versions']['client']} for both; each daemon in a network namespace of its own;"
              " containers with --network none")
        img = R["image"]
        print(f"  pulled image: 1 gzip layer, {img['compressed_bytes'] / 1e6:.1f} MB, from docker-registry on"
              " the namespace's 127.0.0.1 (plain HTTP)")
        print("  cells: median [p25-p75]; a * means some samples failed (see the errors below)")
        print()
        for key in ("rss_idle", "rss_running"):
            R["verbs"][key] = {n: {"n": 1, "median": m[key]["rss"]} if key in m else None
                               for n, m in R["memory"].items()}
        fields = {"listed": a.listed, "lines": a.lines, "size_mb": a.size_mb, "running": a.running}
        self.print_rows(ROWS, fields, 46)
        print(f"  for scale: the docker CLI alone (`docker --version`, no daemon) takes {cell(R['client_alone_ms'])} ms")
        self.print_daemon_part("ps_all", "ps_floor", "docker ps -a")
        print()
        print("memory: VmRSS (PSS) in MiB summed over each side's processes:")
        for name, m in R["memory"].items():
            for key in ("rss_start", "rss_idle", "rss_running", "rss_end"):
                if key in m:
                    procs = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(m[key]["processes"].items()))
                    print(f"  {name:8} {key[4:]:8} {fmt(m[key]['rss']):>7} ({fmt(m[key]['pss'])}): {procs}")
        print("  start: after start; idle: after the warm-up, nothing running; running: with the running containers;"
              " end: after the pulls")
        print()
        self.print_summary(ROWS, fields, "the engine issue")

    def print_daemon_part(self, key, floor, what):
        """What is left of row `key` once each side's `floor` row (the CLI's own part) is taken out."""
        per, lows = self.results["verbs"].get(key, {}), self.results["verbs"].get(floor, {})
        parts = {n: med(per.get(n)) - med(lows.get(n)) for n in ("ours", "dockerd")
                 if med(per.get(n)) is not None and med(lows.get(n)) is not None}
        if len(parts) == 2:
            print(f"  the daemons' part of {what} (the row less the CLI's, answered from memory): ours"
                  f" {fmt(parts['ours'])} ms, dockerd {fmt(parts['dockerd'])} ms,"
                  f" ours/dockerd = {fmt(ratio(parts['ours'], parts['dockerd']), 2)}")

    def print_head(self, kind):
        """The report's first lines: the host, the load, both daemons' versions."""
        R = self.results
        benchlib.print_head(kind, R["host"], "", R["elapsed_s"],
                            " (samples are interleaved: other load hits both daemons alike)")
        for name in ("ours", "dockerd"):
            print(f"  {name:8} {R['versions'].get(name, '?')}")

    def print_rows(self, rows, fields, width):
        """The table of rows (key, label, target, higher is better): both
        medians, ours/dockerd and the target; the ratios into the summary."""
        R = self.results
        table = Table("", width, ["engine-py", "dockerd"], 22, ["ours/dockerd", "target"], 14)
        for key, label, target, _ in rows:
            per = R["verbs"].get(key, {})
            cells = [self.cell(name, key, per.get(name)) for name in ("ours", "dockerd")]
            r = ratio(med(per.get("ours")), med(per.get("dockerd")))
            R["summary"][key] = {"ratio": r, "target": target}
            table.row(label.format(**fields), cells, [r, target])

    def print_summary(self, rows, fields, source):
        """One line per row: ours/dockerd against its target, or why it is not available."""
        R = self.results
        print(f"summary (targets from {source}; this script only reports):")
        for key, label, target, higher in rows:
            r = R["summary"][key]["ratio"]
            why = [f"{n}: {self.unavailable[(n, key)]}" for n in ("ours", "dockerd") if (n, key) in self.unavailable]
            text = f"not available ({'; '.join(why)})" if why else fmt(r, 2)
            print(f"  {label.format(**fields).rsplit(', ', 1)[0]}: ours/dockerd = {text} (target {target}"
                  f"{', higher is better' if higher else ''})")

    def cell(self, name, key, s):
        if (name, key) in self.unavailable:
            return "not available"
        if s is None or not s.get("n"):
            return "failed" if s is not None else "-"
        return cell(s, 1 if key == "rate" else 0, s.get("failed", 0))

    # -- cleanup ---------------------------------------------------------------------
    def remove_containers(self, daemon):
        """docker rm -f of every container of the daemon."""
        if not daemon.alive():
            return
        ids = self.docker(daemon, "ps", "-aq", what="ps -aq (cleanup)", check=False).out.split()
        for i in range(0, len(ids), 25):
            self.docker(daemon, "rm", "-f", *ids[i:i + 25], what="rm -f (cleanup)")

    def cleanup(self):
        leaks = []
        for d in self.daemons:
            try:
                self.remove_containers(d)
            except Exception as e:   # cleanup goes on whatever happens
                leaks.append(f"[{d.name}] cleanup through the docker CLI failed: {e!r}")
        leaks += self.stop_services()
        time.sleep(0.2)
        # What serves containers outlives its daemon (shims, loggers), and the containers' own processes.
        left = benchsys.live_pids(lambda pid, _: any(self.tmp in arg for arg in benchsys.cmdline(pid)))
        left += [p for p in benchsys.pids_in_cgroups(f":/{self.tag}-") if p not in left]
        if left:
            leaks.append(f"{len(left)} process(es) alive after the daemons stopped: {benchsys.describe(left, most=3)}"
                         " (killed)")
            benchsys.kill_all(left)
            time.sleep(0.2)
        self.daemon_log = benchsys.warnings_logged(self.daemons)
        self.results["daemon_log"] = [{"daemon": n, "line": line} for n, line in self.daemon_log]
        dockerd_dir = os.path.join(self.tmp, "dockerd")
        benchsys.unmount_all([m for m in benchsys.mounts_under(dockerd_dir)
                              if os.path.relpath(m, dockerd_dir) in DOCKERD_MOUNTS])
        leaks += benchsys.remove_tmp(self.tmp)
        for netns in self.netns:
            leaks += netns.remove()
        dirs = benchsys.find_cgroups(self.tag)
        if dirs:
            nested = [p for d in dirs for p, _, _ in os.walk(d) if p != d]
            kept = benchsys.remove_cgroups(dirs)
            if nested or kept:
                leaks.append(f"{len(nested)} container cgroup dir(s), e.g. {(nested or dirs)[0]}"
                             + (f" ({len(kept)} could not be removed)" if kept else " (removed)"))
        return leaks

    def print_errors(self, leaks, interrupted):
        self.print_error_groups(interrupted)
        benchlib.print_log_groups(getattr(self, "daemon_log", []), self.error_subs)
        benchlib.print_leaks(leaks, self.leaks_title, "left behind: nothing (no process, mount, cgroup or"
                             " network namespace)")


if __name__ == "__main__":
    sys.exit(EngineBench.main(__doc__))
