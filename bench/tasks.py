#!/usr/bin/env python3
"""Tasks benchmark: containerd_py side by side with real containerd, in one run.

    python3 bench/tasks.py [--quick] [--runs N] [--json FILE]

Starts our daemon (default runtime runpy-oci, a C shim per process) and real
containerd (Debian's, default runtime runc, containerd-shim-runc-v2), each
with a private root, state directory and socket under one temporary
directory, imports the same busybox image into both (built locally by
bundles/make-busybox-image.py) and drives both with containerd's own `ctr`:

  * latency of `ctr run --rm IMAGE ID true`, for four manager/runtime pairs:
    containerd_py + runpy-oci, containerd + runc (the two defaults), and,
    with `--runc-binary`, containerd_py + runc and containerd + runpy-oci,
    so the manager's and the runtime's shares can be told apart;
  * throughput: 50 `ctr run --rm ... true` with 4 in flight, per daemon;
  * memory with 20 running containers (`ctr run -d IMAGE ID sleep 600`) in
    each daemon: the daemon's RSS and PSS, and the PSS (and RSS) of its
    shims per container.

Samples are interleaved (the order rotating) after a warm-up. Prints
numbers and ratios (ours/containerd); decides nothing. Removes every
container, task, daemon and mount it made, also on failure or Ctrl-C, and
lists anything left behind. See bench/README.md. Needs root. Python 3.11
standard library only. Only local unix sockets: no network.
"""
import collections
import os
import shutil
import subprocess
import sys
import time

import benchlib
import benchsys
from benchlib import Table, cell, fmt, log, med, ratio, rotate, side_by_side

MAKE_IMAGE = os.path.join(benchlib.REPO, "bundles", "make-busybox-image.py")
IMAGE = "docker.io/library/busybox:latest"
OUR_SHIM = "containerd-py-shim"
THEIR_SHIM = "containerd-shim-runc-v2"
FIFO_DIR = "/run/containerd/fifo"   # where ctr makes its stdio FIFOs

# A manager/runtime pair of the latency table: the daemon, and the runtime
# it is given with `ctr run --runc-binary` (None: its default).
Pair = collections.namedtuple("Pair", "name daemon runtime label")


def memory(pid):
    """(VmRSS, PSS) of one process in MiB."""
    return benchsys.status_mib(pid, "VmRSS")["VmRSS"], benchsys.rollup_mib(pid)["Pss"]


def private_mib(pid):
    """USS: the pages of the process alone (Private_Clean + Private_Dirty), in MiB."""
    r = benchsys.rollup_mib(pid)
    return r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)


def shims(mark, kinds=(OUR_SHIM, THEIR_SHIM)):
    """Live shim processes of these kinds whose argv names mark."""
    def match(pid, _):
        argv = benchsys.cmdline(pid)
        return bool(argv) and argv[0].endswith(kinds) and any(mark in a for a in argv[1:])
    return benchsys.live_pids(match)


def shims_of(daemon):
    """Live shim processes of one daemon of this bench: ours by their argv
    (BUNDLE is under the daemon's state directory), containerd's by the
    `-address` it gave them (the daemon's socket)."""
    if daemon.name == "ours":
        return shims(daemon.workdir + "/", OUR_SHIM)
    return shims(daemon.address, THEIR_SHIM)


class TasksBench(benchlib.Bench):
    name = "tasks"
    counts = {"runs": (40, 6, "`ctr run --rm` samples per manager/runtime pair"),
              "warmup": (3, 2, "warm-up runs per pair"),
              "containers": (50, 12, "containers per throughput round"),
              "rounds": (3, 1, "throughput rounds per daemon"),
              "running": (20, 5, "running containers per daemon for memory")}
    quantiles = "inclusive"
    error_subs = ((r"bt\d+-[\w.-]+", "<id>"), (r"bt\d+", "<ns>"))
    error_width = 400
    tools = benchlib.CONTAINERD_TOOLS + (
        ("runpy-oci", os.path.join(benchlib.VENV_BIN, "runpy-oci"), "our runtime, for containerd's --runc-binary row"),
        ("runc", "/usr/sbin/runc", "runc, for our --runc-binary row"))

    @classmethod
    def add_options(cls, ap):
        ap.add_argument("--parallel", type=int, default=4, help="containers in flight in the throughput rounds (4)")
        ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading memory (1)")

    @classmethod
    def needs(cls, args):
        return super().needs(args) + [(THEIR_SHIM, shutil.which(THEIR_SHIM) or "/usr/bin/" + THEIR_SHIM),
                                      (OUR_SHIM, os.path.join(benchlib.REPO, "containerd_py", "shim", OUR_SHIM))]

    def __init__(self, args):
        super().__init__(args)
        self.ns, self.n = f"bt{os.getpid()}", 0
        self.daemon_log = []  # (daemon, line): warnings and errors the daemons logged
        try:
            self.fifo_before = set(os.listdir(FIFO_DIR))
        except OSError:
            self.fifo_before = set()
        self.results.update(namespace=self.ns, options={k: getattr(args, k) for k in (
            "runs", "warmup", "containers", "parallel", "rounds", "running", "settle")})

    def setup(self):
        a = self.args
        log("building the busybox image ...")
        tar = os.path.join(self.tmp, "busybox.tar")
        r = subprocess.run([sys.executable, MAKE_IMAGE, tar], capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"make-busybox-image.py: {r.stderr.strip()}")
        self.services += [benchsys.start_containerd_py(self.tmp, a.python, benchlib.REPO),
                          benchsys.start_containerd(self.tmp, a.containerd)]
        for d in self.services:
            benchsys.wait_ready(a.ctr, d)
        for d in self.services:
            if not self.ctr(d, "images", "import", tar, what="images import").ok:
                raise RuntimeError(f"{d.name}: ctr images import failed: {self.errors[-1][3]}")
        self.results["versions"] = {**benchsys.daemon_versions(a.python, a.containerd, a.ctr),
                                    "runc": benchsys.version([a.runc, "--version"]),
                                    "runpy-oci": benchsys.version([a.runpy_oci, "--version"])}

    # -- ctr ------------------------------------------------------------------
    def new_id(self, tag):
        with self.lock:
            self.n += 1
            return f"{self.ns}-{tag}-{self.n}"

    def ctr(self, daemon, *args, what=None, note_stderr=False, check=True):
        """One ctr command against daemon in the bench's namespace; a benchlib.Result."""
        argv = benchsys.ctr_argv(self.args.ctr, daemon, self.ns, *args)
        return self.command(daemon.name, argv, what or " ".join(args[:2]), note_stderr, check)

    def run_rm(self, daemon, tag, runc_binary=None):
        """One timed `ctr run --rm IMAGE ID true`; its wall ms, or None if it failed."""
        daemon.check_alive()
        extra = ["--runc-binary", runc_binary] if runc_binary else []
        r = self.ctr(daemon, "run", "--rm", *extra, IMAGE, self.new_id(tag), "true",
                     what=f"run --rm ({tag})", note_stderr=True)
        return r.ms if r.ok else None

    def listing(self, daemon, what):
        """IDs from `ctr containers|tasks ls -q` (None if the command failed)."""
        r = self.ctr(daemon, what, "ls", "-q", what=f"{what} ls", check=False)
        return r.out.split() if r.ok else None

    def check_clean(self, daemon, when):
        """After a phase: no container, no task, no container snapshot left, nothing mounted."""
        for what in ("containers", "tasks"):
            left = self.listing(daemon, what) or []
            if left:
                self.error(daemon.name, f"check {when}", "-", f"{len(left)} {what[:-1]}(s) still listed, e.g. {left[0]}")
        r = self.ctr(daemon, "snapshots", "ls", what="snapshots ls")
        snaps = [line.split()[0] for line in r.out.splitlines()[1:] if line.strip()]
        extra = [s for s in snaps if s.startswith(self.ns + "-")]
        if r.ok and extra:
            self.error(daemon.name, f"check {when}", "-", f"{len(extra)} container snapshot(s) left, e.g. {extra[0]}")
        mnts = benchsys.mounts_under(daemon.workdir)
        if mnts:
            self.error(daemon.name, f"check {when}", "-",
                       f"{len(mnts)} mount(s) under its directory with no container running, e.g. {mnts[0]}")

    def remove_all(self, daemon):
        """Kills and removes every task and container of the bench's namespace in one daemon."""
        if not daemon.alive():
            return
        tasks = self.listing(daemon, "tasks") or []
        for cid in tasks:
            self.ctr(daemon, "tasks", "kill", "-s", "SIGKILL", cid, what="cleanup tasks kill", check=False)
        for cid in tasks:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = self.ctr(daemon, "tasks", "ls", what="tasks ls", check=False)
                row = [line.split() for line in r.out.splitlines()[1:] if line.split()[:1] == [cid]]
                if not r.ok or not row or row[0][-1] == "STOPPED":
                    break
                time.sleep(0.05)
            if not self.ctr(daemon, "tasks", "rm", cid, what="cleanup tasks rm", check=False).ok:
                self.ctr(daemon, "tasks", "rm", "-f", cid, what="cleanup tasks rm -f")
        for cid in self.listing(daemon, "containers") or []:
            self.ctr(daemon, "containers", "rm", cid, what="cleanup containers rm")

    # -- the measurements -------------------------------------------------------
    def measure(self):
        ours, theirs = self.services
        self.latency(ours, theirs)
        for d in self.services:
            self.check_clean(d, "after the latency runs")
        self.throughput()
        for d in self.services:
            self.check_clean(d, "after the throughput runs")
        self.supervision()

    def latency(self, ours, theirs):
        """`ctr run --rm IMAGE ID true` for the four manager/runtime pairs, interleaved."""
        a = self.args
        pairs = [Pair("ours", ours, None, "containerd_py + runpy-oci (its default)"),
                 Pair("containerd", theirs, None, "containerd + runc (its default)"),
                 Pair("ours+runc", ours, a.runc, "containerd_py + runc (--runc-binary)"),
                 Pair("containerd+runpy", theirs, a.runpy_oci, "containerd + runpy-oci (--runc-binary)")]
        log(f"warm-up: {a.warmup} `ctr run --rm` per manager/runtime pair ...")
        side_by_side(pairs, a.warmup, lambda p: self.run_rm(p.daemon, "warm-" + p.name.replace("+", "-"), p.runtime))
        log(f"latency: {a.runs} `ctr run --rm ... true` per pair (interleaved, order rotating) ...")
        samples = side_by_side(pairs, a.runs, lambda p: self.run_rm(p.daemon, "rm-" + p.name.replace("+", "-"),
                                                                    p.runtime), progress=10)
        self.results["latency_ms"] = {p.name: {"label": p.label, "failed": samples[p.name].count(None),
                                               **(self.summary(samples[p.name]) or {})} for p in pairs}
        self.results["_latency_summaries"] = self.summaries(samples)

    def throughput(self):
        """N `ctr run --rm ... true` with P in flight, per daemon; rounds alternate the daemon order."""
        a, daemons = self.args, self.services
        log(f"throughput: {a.containers} `ctr run --rm` with {a.parallel} in flight, {a.rounds} round(s)"
            " per daemon ...")
        cps = {d.name: [] for d in daemons}
        failed = {d.name: 0 for d in daemons}
        for r in range(a.rounds):
            for d in rotate(daemons, r):
                wall, fails = self.in_flight(d.name, "run --rm (tp)", a.containers, a.parallel,
                                             lambda d=d: self.run_rm(d, "tp"))
                failed[d.name] += fails
                cps[d.name].append(a.containers / wall)
                log(f"  round {r + 1}/{a.rounds}, {d.name}: {a.containers / wall:.1f} containers/s"
                    + (f" ({fails} failed)" if fails else ""))
        self.results["throughput_cps"] = {n: dict(self.summary(cps[n]) or {}, failed=failed[n]) for n in cps}

    def supervision(self):
        """N running `sleep 600` containers in each daemon: daemon RSS/PSS and shims' PSS per container."""
        a, daemons, n = self.args, self.services, self.args.running
        mem = {d.name: dict(zip(("idle_rss", "idle_pss"), memory(d.pid))) for d in daemons}
        log(f"memory: {n} running containers (`ctr run -d ... sleep 600`) per daemon ...")
        ids = {d.name: [] for d in daemons}

        def run_d(d):
            d.check_alive()
            ids[d.name].append(self.new_id("run"))
            r = self.ctr(d, "run", "-d", IMAGE, ids[d.name][-1], "sleep", "600", what="run -d", note_stderr=True)
            return r.ms if r.ok else None
        run_d_ms = side_by_side(daemons, n, run_d)
        time.sleep(a.settle)
        for d in daemons:
            m = mem[d.name]
            out = self.ctr(d, "tasks", "ls", what="tasks ls").out
            m["running"] = sum(1 for line in out.splitlines()[1:]
                               if line.split()[:1] and line.split()[0] in ids[d.name] and line.split()[-1] == "RUNNING")
            if m["running"] != n:
                self.error(d.name, "run -d", "-", f"{m['running']} of {n} tasks RUNNING")
            m["rss"], m["pss"] = memory(d.pid)
            m["uss"] = private_mib(d.pid)
            pids = shims_of(d)
            m["shims"] = len(pids)
            rss_sum = pss_sum = 0.0
            for pid in pids:
                try:
                    rss, pss = memory(pid)
                except (OSError, KeyError):
                    continue
                rss_sum += rss
                pss_sum += pss
            m["shim_rss_sum"], m["shim_pss_sum"] = rss_sum, pss_sum
            m["shim_rss_per"], m["shim_pss_per"] = rss_sum / n, pss_sum / n
            m["rss_growth_per"] = (m["rss"] - m["idle_rss"]) / n
            m["total_per"] = m["rss_growth_per"] + m["shim_pss_per"]
            m["run_d_ms"] = self.summary(run_d_ms[d.name])
            m["run_d_failed"] = run_d_ms[d.name].count(None)
        log("removing the running containers (tasks kill -s SIGKILL, tasks rm, containers rm) ...")
        for d in daemons:
            t0 = time.perf_counter()
            self.remove_all(d)
            mem[d.name]["teardown_s"] = time.perf_counter() - t0
        time.sleep(a.settle)
        for d in daemons:
            d.check_alive()
            mem[d.name]["after_rss"], mem[d.name]["after_pss"] = memory(d.pid)
            self.check_clean(d, "after the running containers were removed")
            left = shims_of(d)
            if left:
                self.error(d.name, "check after removal", "-", f"{len(left)} shim(s) still alive, e.g. pid {left[0]}")
        self.results["memory"] = mem

    # -- report -------------------------------------------------------------------
    def report(self):
        a, R, v = self.args, self.results, self.results["versions"]
        benchlib.print_head("tasks", R["host"], "", R["elapsed_s"],
                            " (samples are interleaved: other load hits every daemon alike)")
        print(f"  ours        {v['ours']}; default runtime {v['runpy-oci']}, shim {OUR_SHIM} (C)")
        print(f"  containerd  {v['containerd']}; default runtime {v['runc']}, shim {THEIR_SHIM}")
        print(f"  client: {v['ctr']} for both; image {IMAGE} from bundles/make-busybox-image.py, ctr images import")
        print("  cells: median [p25-p75]; a * means some samples failed (see the errors below)")

        lat = R["_latency_summaries"]
        base = med(lat["containerd"])
        print()
        print(f"ctr run --rm {IMAGE} ID true  ({a.runs} samples per row after {a.warmup} warm-up runs each)")
        table = Table("manager + runtime", 42, ["ms"], 22, ["/ containerd+runc"], 20)
        for key, row in R["latency_ms"].items():
            table.row(row["label"], [cell(lat[key], 0, row["failed"])], [ratio(med(lat[key]), base)])
        print()
        print("  the same four medians as a matrix (ratios of medians):")
        r_runpy_cd, r_runc_cd = med(lat["containerd+runpy"]), base
        r_runpy_ours, r_runc_ours = med(lat["ours"]), med(lat["ours+runc"])
        print(f"  {'':28}{'runpy-oci':>14}{'runc':>14}{'runpy-oci/runc':>18}")
        print(f"  {'containerd_py':28}{fmt(r_runpy_ours, 0):>14}{fmt(r_runc_ours, 0):>14}"
              f"{fmt(ratio(r_runpy_ours, r_runc_ours), 2):>18}")
        print(f"  {'containerd':28}{fmt(r_runpy_cd, 0):>14}{fmt(r_runc_cd, 0):>14}"
              f"{fmt(ratio(r_runpy_cd, r_runc_cd), 2):>18}")
        print(f"  {'containerd_py/containerd':28}{fmt(ratio(r_runpy_ours, r_runpy_cd), 2):>14}"
              f"{fmt(ratio(r_runc_ours, r_runc_cd), 2):>14}")
        print("  (a column: the managers with the same runtime; a row: the runtimes under the same manager)")

        tp = {n: s if s.get("n") else None for n, s in R["throughput_cps"].items()}
        r_tp = ratio(med(tp["ours"]), med(tp["containerd"]))
        print()
        print(f"throughput: {a.containers} x ctr run --rm ... true, {a.parallel} in flight"
              f"  ({a.rounds} round(s) per daemon)")
        table = Table("", 42, ["containerd_py", "containerd"], 22, ["ours/containerd"], 18)
        table.row("containers/s (higher is better)",
                  [cell(tp[n], 1, R["throughput_cps"][n]["failed"]) for n in ("ours", "containerd")], [r_tp])

        o, c = R["memory"]["ours"], R["memory"]["containerd"]
        n = a.running
        print()
        print(f"memory: {n} running containers (ctr run -d ... sleep 600) in each daemon, MiB")
        table = Table("", 42, ["containerd_py", "containerd"], 22, ["ours/containerd"], 18)

        def row(label, key, nd=1):
            table.row(label, [fmt(o.get(key), nd), fmt(c.get(key), nd)], [ratio(o.get(key), c.get(key))])
        row("daemon VmRSS, none running (after the runs)", "idle_rss")
        row(f"daemon VmRSS, {n} running", "rss")
        row(f"daemon PSS, {n} running", "pss")
        row(f"daemon USS (private), {n} running", "uss")
        row("daemon VmRSS, after they were removed", "after_rss")
        row("daemon VmRSS growth per running container", "rss_growth_per", 2)
        table.row("shims alive (count)", [o["shims"], c["shims"]], [""])
        row(f"shim PSS per container (sum / {n})", "shim_pss_per", 2)
        row(f"shim VmRSS per container (sum / {n})", "shim_rss_per", 2)
        row("per container: shim PSS + daemon growth", "total_per", 2)
        table.row(f"ctr run -d ms (each of the {n})", [cell(m["run_d_ms"], 0, m["run_d_failed"]) for m in (o, c)],
                  [ratio(med(o["run_d_ms"]), med(c["run_d_ms"]))])
        row(f"remove all {n} (kill, tasks rm, containers rm) s", "teardown_s", 1)
        print("  daemon: the daemon process only; VmRSS from /proc/PID/status, PSS and USS from /proc/PID/smaps_rollup")
        print("  (PSS shares pages with every other process mapping the same files, e.g. other Python processes);")
        print(f"  shims: the {OUR_SHIM} processes vs the {THEIR_SHIM} processes of that daemon")

        s = R["summary"] = {
            "run_rm_ours_over_containerd": ratio(med(lat["ours"]), base),
            "run_rm_manager_only_ours_over_containerd_with_runc": ratio(r_runc_ours, r_runc_cd),
            "run_rm_runtime_only_runpy_over_runc_under_containerd": ratio(r_runpy_cd, r_runc_cd),
            "throughput_ours_over_containerd": r_tp,
            "daemon_rss_ours_over_containerd": ratio(o.get("rss"), c.get("rss")),
            "shim_pss_per_container_mib": {"ours": o.get("shim_pss_per"), "containerd": c.get("shim_pss_per")},
            "shim_pss_ours_over_containerd": ratio(o.get("shim_pss_per"), c.get("shim_pss_per")),
        }
        print()
        print("summary (targets from the containerd_py issue; this script only reports):")
        print(f"  ctr run --rm: ours/containerd = {fmt(s['run_rm_ours_over_containerd'], 2)} (target <= 1.0);"
              f" with runc under both: {fmt(s['run_rm_manager_only_ours_over_containerd_with_runc'], 2)};"
              f" runpy-oci/runc under containerd: {fmt(s['run_rm_runtime_only_runpy_over_runc_under_containerd'], 2)}")
        print(f"  throughput, {a.parallel} in flight: ours/containerd = {fmt(r_tp, 2)} (above 1 = ours faster)")
        print(f"  daemon RSS with {n} running: ours/containerd = {fmt(s['daemon_rss_ours_over_containerd'], 2)}"
              f" (target < 1.0)")
        print(f"  supervision PSS per container: ours {fmt(o.get('shim_pss_per'), 2)} MiB,"
              f" containerd's shim {fmt(c.get('shim_pss_per'), 2)} MiB,"
              f" ratio {fmt(s['shim_pss_ours_over_containerd'], 2)} (target <= 2 MB each)")

    def print_errors(self, leaks, interrupted):
        self.print_error_groups(interrupted)
        benchlib.print_log_groups(self.daemon_log, self.error_subs)
        benchlib.print_leaks(leaks, self.leaks_title, "left behind: nothing (no shim or container process,"
                             " no mount, no cgroup, no FIFO directory)")

    # -- cleanup -----------------------------------------------------------------
    def cleanup(self):
        leaks = []
        # 1. Every task and container of ours, in each daemon still alive; then the daemons.
        for d in self.services:
            try:
                self.remove_all(d)
            except Exception as e:   # cleanup goes on whatever happens
                leaks.append(f"[{d.name}] cleanup through ctr failed: {e!r}")
        leaks += self.stop_services()
        # 2. What should be gone now: shims, container processes.
        time.sleep(0.2)
        left = shims(self.tmp + "/")
        if left:
            leaks.append(f"{len(left)} shim process(es) alive after cleanup: {benchsys.describe(left, most=3)} (killed)")
        in_cgroups = set(benchsys.pids_in_cgroups(f":/{self.ns}/")) - set(left)
        procs = benchsys.live_pids(lambda pid, _: pid in in_cgroups)
        if procs:
            leaks.append(f"{len(procs)} container process(es) alive after cleanup: "
                         f"{benchsys.describe(procs, most=3)} (killed)")
        benchsys.kill_all(left + procs)
        # 3. What the daemons logged as warnings or errors (their logs go with the directory).
        self.daemon_log = benchsys.warnings_logged(self.services)
        self.results["daemon_log"] = [{"daemon": n, "line": line} for n, line in self.daemon_log]
        leaks += benchsys.remove_tmp(self.tmp)
        # 4. Cgroups of containers (/NS/ID) left by a runtime, then the /NS parents both runtimes leave.
        time.sleep(0.1)
        dirs = benchsys.find_cgroups(self.ns)
        if dirs:
            kept = benchsys.remove_cgroups(dirs)
            leaks.append(f"{len(dirs)} container cgroup dir(s), e.g. {dirs[0]}"
                         + (f" ({len(kept)} could not be removed)" if kept else " (removed)"))
        for h in os.listdir(benchsys.CGROUP_ROOT):
            try:
                os.rmdir(os.path.join(benchsys.CGROUP_ROOT, h, self.ns))
            except OSError:
                pass
        # 5. ctr's FIFO directories for containers of ours (ctr removes them on tasks rm / run --rm).
        try:
            new = set(os.listdir(FIFO_DIR)) - self.fifo_before
        except OSError:
            new = set()
        fifo_left = []
        for ent in new:
            path = os.path.join(FIFO_DIR, ent)
            try:
                if any(f.startswith(self.ns + "-") for f in os.listdir(path)):
                    fifo_left.append(path)
            except OSError:
                pass
        if fifo_left:
            leaks.append(f"{len(fifo_left)} ctr FIFO directory(ies) in {FIFO_DIR}, e.g. {fifo_left[0]}: "
                         + ", ".join(sorted(os.listdir(fifo_left[0]))) + " (removed)")
            for path in fifo_left:
                shutil.rmtree(path, ignore_errors=True)
        return leaks


if __name__ == "__main__":
    sys.exit(TasksBench.main(__doc__))
