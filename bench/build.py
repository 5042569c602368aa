#!/usr/bin/env python3
"""Build benchmark: engine-py side by side with dockerd's legacy builder, in one run.

    python3 bench/build.py [--quick] [--runs N] [--json FILE]

Starts engine-py and real dockerd 20.10, each with its default networking
inside a network namespace the bench makes (as bench/network.py does),
loads busybox into both (as bench/engine.py does) and times the same
`docker build` (docker CLI 28 with DOCKER_BUILDKIT=0: the legacy builder,
`POST /build?version=1`) against both:

  * a tiny Dockerfile (FROM busybox, RUN, COPY, CMD) with --no-cache;
  * the same, fully cached;
  * a build after one file of a 1000-file context changed (the steps
    before its COPY cached, the COPY and what follows run);
  * a 100 MB context (100 files of random bytes) copied in, --no-cache;
  * a three-stage build whose first two stages are independent, --no-cache.

An image built with --no-cache is removed (untimed) after each sample, so
no store grows. Samples are interleaved; prints medians and ratios
(ours/dockerd) with the issue's targets and decides nothing. A build our
engine does not serve yet is reported as "not available" and the run goes
on. Removes every image, container, daemon, mount, cgroup and namespace it
made, also on failure or Ctrl-C. See bench/README.md. Needs root. Python
3.11 standard library only.
"""
import os
import sys

import benchlib
import benchsys
from benchlib import log
from engine import EngineBench

TINY = 'FROM busybox\nRUN echo built > /built\nCOPY hello.txt /hello.txt\nCMD ["cat", "/built", "/hello.txt"]\n'
MANY = ('FROM busybox\nRUN echo prepared > /prepared\nCOPY files /files\nRUN ls /files | wc -l > /count\n'
        'CMD ["cat", "/count"]\n')
BIG = 'FROM busybox\nCOPY data /data\nCMD ["du", "-s", "/data"]\n'
STAGES = ("FROM busybox AS left\nRUN echo left > /left\nRUN cat /left > /left.copy\n"
          "FROM busybox AS right\nRUN echo right > /right\nRUN cat /right > /right.copy\n"
          "FROM busybox\nCOPY --from=left /left /left.copy /got/\nCOPY --from=right /right /right.copy /got/\n"
          'CMD ["ls", "/got"]\n')
MIB = 1 << 20

ROWS = (("no_cache", "tiny Dockerfile, --no-cache, ms", "<= 0.7", False),
        ("cached", "the same, fully cached, ms", "<= 1.0", False),
        ("one_changed", "one changed file of {files}, ms", "<= 0.8", False),
        ("big_context", "{big_mb} MB context copied in, --no-cache, ms", "<= 1.0", False),
        ("three_stage", "three stages, two independent, --no-cache, ms", "<= 0.7", False))


class BuildBench(EngineBench):
    name = "build"
    counts = {"runs": (10, 3, "samples per timed build per daemon"),
              "big_runs": (5, 2, "samples of the big-context build per daemon"),
              "warmup": (2, 1, "untimed --no-cache builds of the tiny Dockerfile per daemon")}
    options = ("files", "big_mb")
    error_subs = ((r"bb\d+-[\w.-]+", "<name>"), (r"\b[0-9a-f]{12,64}\b", "<id>"))
    tools = tuple(t for t in EngineBench.tools if t[0] != "registry")

    @classmethod
    def add_options(cls, ap):
        ap.add_argument("--files", type=int, default=1000, help="files in the context of the one-changed build (1000)")
        ap.add_argument("--big-mb", type=int, default=100, help="MB of the big context (100)")

    def __init__(self, args):
        super().__init__(args)
        self.tag = f"bb{os.getpid()}"
        self.changes = 0

    # -- setup ----------------------------------------------------------------
    def setup(self):
        os.environ["DOCKER_BUILDKIT"] = "0"   # CLI 28 without buildx: the legacy builder, as dockerd 20.10 has it
        docker_tar = self.busybox_archive()
        log(f"making the contexts ({self.args.files} files; {self.args.big_mb} MB) ...")
        for name in ("ours", "dockerd"):
            self.netns.append(benchsys.Netns(f"{self.tag}-{name}"))
            self.make_contexts(name)
        self.start_daemons(docker_tar, networking=True)

    def context(self, daemon_name, scenario):
        return os.path.join(self.tmp, "contexts", daemon_name, scenario)

    def make_contexts(self, daemon_name):
        """One directory per scenario for this daemon: its builds change files of their own only."""
        a = self.args
        files = {"tiny": {"Dockerfile": TINY, "hello.txt": b"hello\n"},
                 "many": {"Dockerfile": MANY, **{f"files/f{i:04}": f"file {i}\n".encode() * 16
                                                  for i in range(a.files)}},
                 "big": {"Dockerfile": BIG, **{f"data/d{i:03}": os.urandom(MIB) for i in range(a.big_mb)}},
                 "stages": {"Dockerfile": STAGES}}
        for scenario, members in files.items():
            for name, data in members.items():
                path = os.path.join(self.context(daemon_name, scenario), name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "wb") as f:
                    f.write(data.encode() if isinstance(data, str) else data)

    # -- the measurements -------------------------------------------------------
    def build(self, daemon, scenario, *flags, cached=0, remove=False):
        """ms of `docker build FLAGS -t TAG CONTEXT` (None if it failed or
        did not hit the cache in `cached` steps); with remove, `docker rmi
        TAG` after it, untimed."""
        tag = f"{self.tag}-{scenario}"
        r = self.docker(daemon, "build", *flags, "-t", tag, self.context(daemon.name, scenario),
                        what=f"build ({scenario})")
        hits = r.out.count(" ---> Using cache")
        if r.ok and hits != cached:
            self.error(daemon.name, f"build ({scenario})", "-", f"{hits} steps hit the cache, not {cached}")
            return None
        if r.ok and remove and not self.docker(daemon, "rmi", tag, what="rmi").ok:
            return None
        return r.ms if r.ok else None

    def build_untimed(self, scenario):
        """A build of the scenario on each daemon, whatever the cache holds: the cache filled."""
        for d in self.daemons:
            self.docker(d, "build", "-t", f"{self.tag}-{scenario}", self.context(d.name, scenario),
                        what=f"build ({scenario}, untimed)")

    def change_one(self, daemon):
        """ms of a build after one file of the many-file context changed (the change untimed)."""
        self.changes += 1
        path = os.path.join(self.context(daemon.name, "many"), "files", f"f{self.changes % self.args.files:04}")
        with open(path, "w") as f:
            f.write(f"changed {self.changes}\n")
        return self.build(daemon, "many", cached=1)

    def measure(self):
        a = self.args
        log(f"warm-up: {a.warmup} --no-cache build(s) per daemon ...")
        benchlib.side_by_side(self.daemons, a.warmup,
                              lambda d: self.build(d, "tiny", "--no-cache", remove=True))
        log(f"tiny Dockerfile, --no-cache and cached: {a.runs} each per daemon ...")
        self.sampled("no_cache", a.runs, lambda d: self.build(d, "tiny", "--no-cache", remove=True))
        self.build_untimed("tiny")   # fills the cache
        self.sampled("cached", a.runs, lambda d: self.build(d, "tiny", cached=3))
        log(f"one changed file of {a.files}: {a.runs} per daemon ...")
        self.build_untimed("many")
        self.sampled("one_changed", a.runs, self.change_one)
        log(f"{a.big_mb} MB context: {a.big_runs} per daemon ...")
        self.sampled("big_context", a.big_runs, lambda d: self.build(d, "big", "--no-cache", remove=True))
        log(f"three stages: {a.runs} per daemon ...")
        self.sampled("three_stage", a.runs, lambda d: self.build(d, "stages", "--no-cache", remove=True))
        self.results["client_alone_ms"] = self.summary(
            [self.command("client", [a.docker, "--version"], "--version").ms for _ in range(a.runs)])

    # -- report -------------------------------------------------------------------
    def report(self):
        a, R = self.args, self.results
        self.print_head("build")
        print(f"  client: {R['versions']['client']} with DOCKER_BUILDKIT=0 (the legacy builder) for both; each daemon"
              " in a network namespace of its own, with its default networking; RUN steps on the default bridge")
        print("  cells: median [p25-p75]; a * means some samples failed (see the errors below)")
        print()
        fields = {"files": a.files, "big_mb": a.big_mb}
        self.print_rows(ROWS, fields, 50)
        print(f"  for scale: the docker CLI alone (`docker --version`, no daemon) takes"
              f" {benchlib.cell(R['client_alone_ms'])} ms")
        print()
        self.print_summary(ROWS, fields, "the builds issue, #12")


if __name__ == "__main__":
    sys.exit(BuildBench.main(__doc__))
