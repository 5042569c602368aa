#!/usr/bin/env python3
"""Compose benchmark: engine-py side by side with real dockerd, under the clients people run.

    python3 bench/compose.py [--quick] [--runs N] [--json FILE]

Starts engine-py and real dockerd 20.10, each with its default networking
inside a network namespace the bench makes (as bench/build.py does), loads
busybox into both (as bench/engine.py does) and times against both:

  * `docker-compose up -d` (Debian's 1.29.2) of a six-service project (two
    services built from Dockerfiles FROM busybox, four from a tag of
    busybox, one network, two named volumes, healthchecks every second)
    until all six are healthy;
  * `docker-compose down -v` of it;
  * `docker-compose up -d --scale web=20` of the project once up;
  * a testcontainers-python (4.15) start-exec-stop cycle of a generic
    DockerContainer with a log wait strategy, Ryuk disabled;
  * with 50 containers running a healthcheck every second, one daemon at a
    time: the resident memory of each side (daemon, its containerd, shims)
    and the CPU its processes spend per healthcheck run.

Samples are interleaved; prints medians and ratios (ours/dockerd) with the
issue's targets and decides nothing. Removes every container, volume,
network, daemon, mount, cgroup and namespace it made, also on failure or
Ctrl-C. See bench/README.md. Needs root. Python 3.11 standard library only
(testcontainers runs in the checkout's .venv).
"""
import json
import os
import statistics
import sys
import time
import urllib.parse

import benchlib
import benchsys
from benchlib import log, side_by_side
from engine import IMAGE, EngineBench, UnixHTTP

PROJECT = "benchco"
TAGGED = "benchco/base:1"   # the four image services' image: busybox, tagged
SERVICES = 6
SCALE = 20
HEALTHY_DEADLINE = 90   # s for a project to be healthy; only guards against a hang
HEALTH_POLL = 0.05      # s between two lists while waiting for healthy
# PID 1 of every container here ends on SIGTERM (a shell's trap), so no stop waits for its 10 s timeout.
SERVE = "trap 'exit 0' TERM; sleep 600 & wait"
COMPOSE_FILE = f"""version: "2.4"
x-health: &health
  interval: 1s
  timeout: 5s
  retries: 3
x-tagged: &tagged
  image: {TAGGED}
  command: ["sh", "-c", "{SERVE}"]
  networks: [back]
  healthcheck:
    <<: *health
    test: ["CMD", "true"]
services:
  web:
    build: ./web
    healthcheck:
      <<: *health
      test: ["CMD", "test", "-e", "/www/index.html"]
    networks: [back]
  worker:
    build: ./worker
    volumes: ["data:/data"]
    networks: [back]
    depends_on: [db, queue]
  db:
    <<: *tagged
    volumes: ["dbdata:/var/lib/db"]
    healthcheck:
      <<: *health
      test: ["CMD-SHELL", "test -d /var/lib/db"]
  cache: *tagged
  queue: *tagged
  proxy:
    <<: *tagged
    depends_on: [web]
networks:
  back: {{}}
volumes:
  data: {{}}
  dbdata: {{}}
"""
DOCKERFILES = {
    # the healthcheck of compose's file
    "web": f'FROM busybox\nRUN mkdir /www && echo hello > /www/index.html\nCMD ["sh", "-c", "{SERVE}"]\n',
    # the image's own HEALTHCHECK
    "worker": (f'FROM busybox\nRUN mkdir /data\nHEALTHCHECK --interval=1s --timeout=5s --retries=3 CMD test -d /data\n'
               f'CMD ["sh", "-c", "{SERVE}"]\n')}

# One process: an untimed cycle (imports, first connection), then argv[1]
# timed cycles of create+start with a log wait, exec, stop; prints their ms.
TESTCONTAINERS_CYCLE = """
import sys, time
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy
image, cycles = sys.argv[1], int(sys.argv[2])
took = []
for i in range(cycles + 1):
    t0 = time.perf_counter_ns()
    container = (DockerContainer(image).with_command(["sh", "-c", "echo ready; " + sys.argv[3]])
                 .with_env("ROLE", "bench").waiting_for(LogMessageWaitStrategy("ready").with_poll_interval(0.05)))
    container.start()
    code, out = container.exec(["cat", "/proc/self/environ"])
    container.stop()
    if code != 0 or b"ROLE=bench" not in out:
        sys.exit(f"exec: exit {code}, {out[:80]!r}")
    took.append((time.perf_counter_ns() - t0) / 1e6)
print(*took[1:])
"""

ROWS = (("up", "docker-compose up -d, 6 services, to all healthy, ms", "<= 0.7", False),
        ("up_returns", "  until `up -d` itself returns, ms", "-", False),
        ("down", "docker-compose down -v, ms", "<= 0.7", False),
        ("scale", f"docker-compose up -d --scale web={SCALE}, ms", "<= 0.7", False),
        ("testcontainers", "testcontainers start-exec-stop cycle, ms", "<= 0.6", False),
        ("rss_health", "RSS, {running} running, healthchecks each 1 s, MiB", "<= 0.5", False),
        ("cpu_per_probe", "CPU per healthcheck (daemon side), ms", "<= 1.0", False),
        ("probes_per_s", "  healthchecks run per second", "-", True))


class ComposeBench(EngineBench):
    name = "compose"
    counts = {"runs": (5, 2, "compose cycles (up, down, up --scale, down) per daemon"),
              "tc_runs": (4, 2, "testcontainers processes per daemon, each timing --tc-cycles cycles"),
              "tc_cycles": (5, 3, "timed testcontainers cycles per process (after an untimed one)"),
              "warmup": (1, 1, "untimed compose cycles per daemon first (the first one builds)"),
              "running": (50, 20, "containers with healthchecks per daemon for memory and CPU"),
              "window": (20, 8, "seconds over which CPU and healthchecks are counted"),
              "rounds": (2, 1, "healthcheck rounds per daemon (one daemon at a time)")}
    options = ("parallel", "settle")
    error_subs = ((r"bc\d+-[\w.-]+", "<name>"), (r"\b[0-9a-f]{12,64}\b", "<id>"))
    tools = tuple(t for t in EngineBench.tools if t[0] != "registry") + (
        ("docker-compose", "/usr/bin/docker-compose", "Debian's docker-compose 1.29.2"),
        ("tc-python", os.path.join(benchlib.VENV_BIN, "python"), "the Python with testcontainers 4.15"))

    @classmethod
    def add_options(cls, ap):
        ap.add_argument("--parallel", type=int, default=4, help="`docker run -d` in flight starting the"
                        " healthchecked containers (4)")
        ap.add_argument("--settle", type=float, default=5.0, help="seconds from the last start to the window (5)")

    def __init__(self, args):
        super().__init__(args)
        self.tag = f"bc{os.getpid()}"
        self.project_dir = os.path.join(self.tmp, "project")

    # -- setup ----------------------------------------------------------------
    def setup(self):
        docker_tar = self.busybox_archive()
        for name, dockerfile in DOCKERFILES.items():
            os.makedirs(os.path.join(self.project_dir, name))
            with open(os.path.join(self.project_dir, name, "Dockerfile"), "w") as f:
                f.write(dockerfile)
        with open(os.path.join(self.project_dir, "docker-compose.yml"), "w") as f:
            f.write(COMPOSE_FILE)
        for name in ("ours", "dockerd"):
            self.netns.append(benchsys.Netns(f"{self.tag}-{name}"))
        self.start_daemons(docker_tar, networking=True)
        for d in self.daemons:
            self.tool(self.docker_argv(d, "tag", IMAGE, TAGGED), f"docker tag ({d.name})")
        a = self.args
        self.results["versions"]["docker-compose"] = benchsys.version([a.docker_compose, "version", "--short"])
        self.results["versions"]["testcontainers"] = self.tool(
            [a.tc_python, "-c", "import importlib.metadata as m; print(m.version('testcontainers'),"
                                " 'docker-py', m.version('docker'))"], "testcontainers' version").strip()

    # -- docker-compose -----------------------------------------------------------
    def compose_argv(self, daemon, *args):
        return ["env", "COMPOSE_DOCKER_CLI_BUILD=0", self.args.docker_compose, "-H", f"unix://{daemon.socket}",
                "-p", PROJECT, "--project-directory", self.project_dir,
                "-f", os.path.join(self.project_dir, "docker-compose.yml"), "--ansi", "never", *args]

    def compose(self, daemon, *args, what=None):
        """One docker-compose command of the project against daemon; a benchlib.Result."""
        return self.command(daemon.name, self.compose_argv(daemon, *args), what or " ".join(args))

    def healthy(self, daemon, count):
        """Seconds (perf_counter) when count containers of the project list as
        healthy (polled over the API as `docker ps` would), or None past the deadline."""
        path = "/v1.41/containers/json?filters=" + urllib.parse.quote(
            json.dumps({"label": [f"com.docker.compose.project={PROJECT}"]}))
        deadline = time.monotonic() + HEALTHY_DEADLINE
        while time.monotonic() < deadline:
            status, body = UnixHTTP.get(daemon.socket, path)
            if status == 200 and sum("(healthy)" in c["Status"] for c in json.loads(body)) >= count:
                return time.perf_counter()
            time.sleep(HEALTH_POLL)
        self.error(daemon.name, "up -d (to healthy)", "-", f"not {count} healthy after {HEALTHY_DEADLINE} s")
        return None

    def compose_cycle(self, daemon):
        """One sample of each compose row: up to healthy, down -v; up (untimed), up --scale, down -v (untimed)."""
        out = {}
        t0 = time.perf_counter()
        up = self.compose(daemon, "up", "-d", what="up -d")
        if up.ok:
            out["up_returns"] = up.ms
            done = self.healthy(daemon, SERVICES)
            if done is not None:
                out["up"] = (done - t0) * 1000
        down = self.compose(daemon, "down", "-v", what="down -v")
        if up.ok and down.ok:
            out["down"] = down.ms
        if self.compose(daemon, "up", "-d", what="up -d (before --scale)").ok:
            scale = self.compose(daemon, "up", "-d", "--scale", f"web={SCALE}", what="up -d --scale")
            if scale.ok:
                out["scale"] = scale.ms
        self.compose(daemon, "down", "-v", what="down -v (after --scale)")
        return out

    # -- testcontainers -------------------------------------------------------------
    def testcontainers(self, daemon):
        """The cycles' ms of one testcontainers process (None if it failed)."""
        a = self.args
        r = self.command(daemon.name, ["env", f"DOCKER_HOST=unix://{daemon.socket}", "TESTCONTAINERS_RYUK_DISABLED=true",
                                       a.tc_python, "-c", TESTCONTAINERS_CYCLE, IMAGE, str(a.tc_cycles), SERVE],
                         "testcontainers cycle")
        return [float(x) for x in r.out.split()] if r.ok else None

    # -- healthchecks: memory and CPU -------------------------------------------------
    def health_round(self, daemon):
        """With --running containers probed every second on daemon (the other
        idle): the side's RSS (median of reads over the window), its CPU per
        probe run and probes per second; the containers removed after."""
        a = self.args
        probes_dir = os.path.join(self.tmp, "probes", daemon.name)
        os.makedirs(probes_dir, exist_ok=True)

        def start():
            name = self.new_name("hc")
            os.mkdir(os.path.join(probes_dir, name))
            return self.docker(daemon, "run", "-d", "--network", "none", "--name", name, "-v",
                               f"{probes_dir}/{name}:/probes", "--health-cmd", "echo -n . >> /probes/count",
                               "--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "3",
                               IMAGE, "sh", "-c", SERVE, what="run -d (healthchecked)").ok or None
        self.in_flight(daemon.name, "run -d (healthchecked)", a.running, a.parallel, start)
        time.sleep(a.settle)
        mark = daemon.workdir + "/"
        cpu0, probes0, t0 = self.side_cpu(daemon, mark), probes_run(probes_dir), time.perf_counter()
        reads = []
        for _ in range(4):
            time.sleep(a.window / 4)
            reads.append(self.side_memory(daemon))
        cpu1, probes1, t1 = self.side_cpu(daemon, mark), probes_run(probes_dir), time.perf_counter()
        self.remove_containers(daemon)
        probes = probes1 - probes0
        cpu = sum(ms - cpu0.get(pid, 0.0) for pid, ms in cpu1.items())
        rss = statistics.median(r["rss"] for r in reads)
        log(f"  {daemon.name}: {probes} healthchecks in {t1 - t0:.1f} s, {cpu:.0f} ms CPU, RSS {rss:.0f} MiB")
        self.health_memory.setdefault(daemon.name, reads[len(reads) // 2])
        return {"rss_health": rss, "cpu_per_probe": cpu / probes if probes else None,
                "probes_per_s": probes / (t1 - t0)}

    @staticmethod
    def side_cpu(daemon, mark):
        """{pid: CPU ms (its own and its reaped children's)} of the side's serving processes."""
        out = {}
        for pid in benchsys.serving_pids(daemon.pid, mark):
            try:
                out[pid] = benchsys.cpu_ms(pid)
            except (OSError, IndexError):
                continue
        return out

    # -- the measurements ---------------------------------------------------------
    def measure(self):
        a = self.args
        log(f"compose: {a.warmup} untimed cycle(s) per daemon (the first builds web and worker) ...")
        side_by_side(self.daemons, a.warmup, self.compose_cycle)
        log(f"compose: {a.runs} cycles (up to healthy, down -v, up --scale web={SCALE}) per daemon ...")
        samples = side_by_side(self.daemons, a.runs, self.compose_cycle, progress=1)
        for key in ("up", "up_returns", "down", "scale"):
            self.record(key, {n: [s.get(key) for s in xs] for n, xs in samples.items()})
        log(f"testcontainers: {a.tc_runs} processes of {a.tc_cycles} cycles per daemon ...")
        samples = side_by_side(self.daemons, a.tc_runs, self.testcontainers)
        self.record("testcontainers", {n: [ms for xs in runs for ms in (xs or [None])] for n, runs in samples.items()})
        log(f"healthchecks: {a.running} containers, one daemon at a time, {a.rounds} round(s) ...")
        self.health_memory = {}
        samples = side_by_side(self.daemons, a.rounds, self.health_round)
        for key in ("rss_health", "cpu_per_probe", "probes_per_s"):
            self.record(key, {n: [s.get(key) for s in xs] for n, xs in samples.items()})
        self.results["memory"] = self.health_memory
        self.results["client_alone_ms"] = self.summary(
            [self.command("client", self.compose_argv(self.daemons[0], "config", "-q"), "config -q").ms
             for _ in range(a.runs)])

    # -- report -------------------------------------------------------------------
    def report(self):
        a, R = self.args, self.results
        self.print_head("compose")
        print(f"  clients: docker-compose {R['versions']['docker-compose']} (COMPOSE_DOCKER_CLI_BUILD=0),"
              f" testcontainers {R['versions']['testcontainers']}; each daemon in a network namespace of its own,"
              " with its default networking")
        print("  cells: median [p25-p75]; a * means some samples failed (see the errors below)")
        print()
        self.print_rows(ROWS, {"running": a.running}, 52)
        print(f"  for scale: docker-compose alone (`config -q`: the project read, no daemon) takes"
              f" {benchlib.cell(R['client_alone_ms'])} ms; it is in every compose row, for both daemons alike")
        print()
        print(f"memory with {a.running} healthchecked containers: VmRSS (PSS) in MiB summed over each side's processes:")
        for name, m in R["memory"].items():
            procs = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in sorted(m["processes"].items()))
            print(f"  {name:8} {benchlib.fmt(m['rss']):>7} ({benchlib.fmt(m['pss'])}): {procs}")
        print()
        self.print_summary(ROWS, {"running": a.running}, "issue 13")

    def cell(self, name, key, s):
        if s is not None and s.get("n") and key in ("cpu_per_probe", "probes_per_s"):
            return benchlib.cell(s, 1, s.get("failed", 0))
        return super().cell(name, key, s)


def probes_run(probes_dir):
    """Healthchecks run so far in the containers of probes_dir: each appends one byte to its container's count."""
    total = 0
    for name in os.listdir(probes_dir):
        try:
            total += os.path.getsize(os.path.join(probes_dir, name, "count"))
        except OSError:
            pass
    return total


if __name__ == "__main__":
    sys.exit(ComposeBench.main(__doc__))
