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
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import benchlib
from benchlib import cell, fmt, kill_all, loadavg, log, med, mounts_under, ratio, rotate, version

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAKE_IMAGE = os.path.join(REPO, "bundles", "make-busybox-image.py")
IMAGE = "docker.io/library/busybox:latest"
OUR_SHIM = "containerd-py-shim"
THEIR_SHIM = "containerd-shim-runc-v2"
FIFO_DIR = "/run/containerd/fifo"   # where ctr makes its stdio FIFOs
CGROUP_ROOT = "/sys/fs/cgroup"
CTR_TIMEOUT = 120    # seconds for one ctr command; only guards against a hang
KiB = 1024


# --------------------------------------------------------------------------
# The two daemons

class Daemon(benchlib.Service):
    """One daemon of the bench, in its own session and directory, logging to daemon.log there."""

    def __init__(self, name, label, argv, workdir, address, env=None):
        super().__init__(name, argv, workdir, env, log_name="daemon.log")
        self.label, self.address = label, address


def start_ours(tmp, python):
    workdir = os.path.join(tmp, "ours")
    os.mkdir(workdir)
    # A config of our own (disabling nothing), so no /etc/containerd-py/config.toml applies.
    with open(f"{workdir}/config.toml", "w") as f:
        f.write("version = 2\ndisabled_plugins = []\n")
    address = f"{workdir}/containerd.sock"
    argv = [python, "-m", "containerd_py.daemon", "--root", f"{workdir}/root", "--state", f"{workdir}/state",
            "--address", address, "-c", f"{workdir}/config.toml"]
    env = dict(os.environ, PYTHONPATH=REPO)
    return Daemon("ours", "containerd_py", argv, workdir, address, env)


def start_containerd(tmp, binary):
    workdir = os.path.join(tmp, "containerd")
    os.mkdir(workdir)
    address = f"{workdir}/containerd.sock"
    config = benchlib.write_containerd_config(workdir, address)
    return Daemon("containerd", "containerd", [binary, "--config", config], workdir, address)


# --------------------------------------------------------------------------
# /proc

def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def proc_state(pid):
    try:
        return benchlib.stat_fields(pid)[0].decode()
    except (OSError, IndexError):
        return None


def live(pid):
    return proc_state(pid) not in (None, "Z", "X")


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def rollup_kib(pid):
    """The kB fields of /proc/PID/smaps_rollup (Rss, Pss, Private_Clean, ...)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def memory(pid):
    """(VmRSS, PSS) of one process in MiB."""
    return status_kib(pid, "VmRSS") / KiB, rollup_kib(pid)["Pss"] / KiB


def private_mib(pid):
    """USS: the pages of the process alone (Private_Clean + Private_Dirty), in MiB."""
    r = rollup_kib(pid)
    return (r.get("Private_Clean", 0) + r.get("Private_Dirty", 0)) / KiB


def shims_of(daemon):
    """Live shim processes of one daemon of this bench: ours by their argv
    (BUNDLE is under the daemon's state directory), containerd's by the
    `-address` it gave them (the daemon's socket)."""
    want = OUR_SHIM if daemon.name == "ours" else THEIR_SHIM
    mark = daemon.workdir + "/" if daemon.name == "ours" else daemon.address
    out = []
    for pid in benchlib.proc_pids():
        argv = cmdline(pid)
        if argv and argv[0].endswith(want) and any(mark in a for a in argv[1:]) and live(pid):
            out.append(pid)
    return out


def all_shims(tmp):
    """Every live shim (either kind) whose argv names this bench's directory."""
    out = []
    for pid in benchlib.proc_pids():
        argv = cmdline(pid)
        if argv and (argv[0].endswith(OUR_SHIM) or argv[0].endswith(THEIR_SHIM)) \
                and any(tmp + "/" in a for a in argv[1:]) and live(pid):
            out.append(pid)
    return out


def container_procs(ns):
    """Live processes in a cgroup of this bench's namespace: `ctr` puts a
    container in the cgroup /NS/ID, with either runtime."""
    return [pid for pid in benchlib.pids_in_cgroups(f":/{ns}/") if live(pid)]


def cgroup_dirs(ns):
    """Cgroup directories of containers of this bench's namespace (/NS/ID in every hierarchy)."""
    out = []
    try:
        hierarchies = os.listdir(CGROUP_ROOT)
    except OSError:
        return out
    for h in hierarchies:
        base = os.path.join(CGROUP_ROOT, h, ns)
        if os.path.isdir(base):
            for ent in os.listdir(base):
                if os.path.isdir(os.path.join(base, ent)):
                    out.append(os.path.join(base, ent))
    return out


# --------------------------------------------------------------------------
# ctr

class Bench:
    def __init__(self, tmp, ctr, ns):
        self.tmp, self.ctr, self.ns = tmp, ctr, ns
        self.errors = []     # (daemon, what, exit status, text)
        self.daemon_log = []  # (daemon, line): warnings and errors the daemons logged
        self.made = {}       # daemon name -> container ids this bench created (or tried to)
        self.lock = threading.Lock()
        self.stop = threading.Event()   # tells the throughput workers to start no new command
        self.n = 0

    def new_id(self, daemon, tag):
        with self.lock:
            self.n += 1
            cid = f"{self.ns}-{tag}-{self.n}"
            self.made.setdefault(daemon.name, set()).add(cid)
            return cid

    def run_ctr(self, daemon, *args, what=None, note_stderr=False, check=True):
        """One ctr command against daemon; (ok, wall ms, stdout). Failures are
        recorded with what ctr printed; with note_stderr, so is anything a
        successful command printed on stderr."""
        argv = benchlib.ctr_argv(self.ctr, daemon, self.ns, *args)
        t0 = time.perf_counter_ns()
        # Its own process group: a Ctrl-C at the terminal reaches the bench
        # only, which then lets the commands in flight finish and cleans up.
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             process_group=0)
        try:
            out, err = p.communicate(timeout=CTR_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err += f"\n(bench: killed after {CTR_TIMEOUT} s)".encode()
        except BaseException:
            p.kill()
            p.wait()
            raise
        t1 = time.perf_counter_ns()
        out, err = out.decode(errors="replace"), err.decode(errors="replace").strip()
        ok = p.returncode == 0
        what = what or " ".join(args[:2])
        if check and not ok:
            with self.lock:
                self.errors.append((daemon.name, what, p.returncode, err or out.strip()))
        elif ok and note_stderr and err:
            with self.lock:
                for line in err.splitlines():
                    self.errors.append((daemon.name, f"{what}, exit 0, on stderr", 0, line))
        return ok, (t1 - t0) / 1e6, out

    def run_rm(self, daemon, tag, runc_binary=None):
        """One timed `ctr run --rm IMAGE ID true`; its wall ms, or None if it failed."""
        daemon.check_alive()
        cid = self.new_id(daemon, tag)
        extra = ["--runc-binary", runc_binary] if runc_binary else []
        ok, ms, _ = self.run_ctr(daemon, "run", "--rm", *extra, IMAGE, cid, "true",
                                 what=f"run --rm ({tag})", note_stderr=True)
        return ms if ok else None

    def listing(self, daemon, what):
        """IDs from `ctr containers|tasks ls -q` (None if the command failed)."""
        ok, _, out = self.run_ctr(daemon, what, "ls", "-q", what=f"{what} ls", check=False)
        return out.split() if ok else None

    def check_clean(self, daemon, when):
        """After a phase: no container, no task, no container snapshot left, nothing mounted."""
        left = self.listing(daemon, "containers") or []
        if left:
            self.errors.append((daemon.name, f"check {when}", "-",
                                f"{len(left)} container(s) still listed, e.g. {left[0]}"))
        tasks = self.listing(daemon, "tasks") or []
        if tasks:
            self.errors.append((daemon.name, f"check {when}", "-",
                                f"{len(tasks)} task(s) still listed, e.g. {tasks[0]}"))
        ok, _, out = self.run_ctr(daemon, "snapshots", "ls", what="snapshots ls")
        snaps = [line.split()[0] for line in out.splitlines()[1:] if line.strip()]
        extra = [s for s in snaps if s.startswith(self.ns + "-")]
        if ok and extra:
            self.errors.append((daemon.name, f"check {when}", "-",
                                f"{len(extra)} container snapshot(s) left, e.g. {extra[0]}"))
        mnts = mounts_under(daemon.workdir)
        if mnts:
            self.errors.append((daemon.name, f"check {when}", "-",
                                f"{len(mnts)} mount(s) under its directory with no container running, e.g. {mnts[0]}"))

    def remove_all(self, daemon):
        """Kills and removes every task and container of the bench's namespace in one daemon."""
        if not daemon.alive():
            return
        tasks = self.listing(daemon, "tasks") or []
        for cid in tasks:
            self.run_ctr(daemon, "tasks", "kill", "-s", "SIGKILL", cid, what="cleanup tasks kill", check=False)
        for cid in tasks:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                ok, _, out = self.run_ctr(daemon, "tasks", "ls", what="tasks ls", check=False)
                row = [line.split() for line in out.splitlines()[1:] if line.split()[:1] == [cid]]
                if not ok or not row or row[0][-1] == "STOPPED":
                    break
                time.sleep(0.05)
            ok, _, _ = self.run_ctr(daemon, "tasks", "rm", cid, what="cleanup tasks rm", check=False)
            if not ok:
                self.run_ctr(daemon, "tasks", "rm", "-f", cid, what="cleanup tasks rm -f")
        for cid in self.listing(daemon, "containers") or []:
            self.run_ctr(daemon, "containers", "rm", cid, what="cleanup containers rm")


# --------------------------------------------------------------------------
# Statistics

def summary(xs):
    """benchlib.summary with the inclusive quantiles this bench reports."""
    return benchlib.summary(xs, method="inclusive")


# --------------------------------------------------------------------------
# The measurements

def latency(args, b, ours, theirs, runpy, runc, results):
    """`ctr run --rm IMAGE ID true` for the four manager/runtime pairs, interleaved."""
    configs = [("ours", ours, None, "containerd_py + runpy-oci (its default)"),
               ("containerd", theirs, None, "containerd + runc (its default)"),
               ("ours+runc", ours, runc, "containerd_py + runc (--runc-binary)"),
               ("containerd+runpy", theirs, runpy, "containerd + runpy-oci (--runc-binary)")]
    log(f"warm-up: {args.warmup} `ctr run --rm` per manager/runtime pair ...")
    for _ in range(args.warmup):
        for key, d, binary, _ in configs:
            b.run_rm(d, "warm-" + key.replace("+", "-"), binary)
    log(f"latency: {args.runs} `ctr run --rm ... true` per pair (interleaved, order rotating) ...")
    samples = {key: [] for key, *_ in configs}
    failed = {key: 0 for key, *_ in configs}
    for i in range(args.runs):
        for key, d, binary, _ in rotate(configs, i):
            ms = b.run_rm(d, "rm-" + key.replace("+", "-"), binary)
            samples[key].append(ms)
            failed[key] += ms is None
        if (i + 1) % 10 == 0 or i + 1 == args.runs:
            log(f"  {i + 1}/{args.runs}")
    results["latency_ms"] = {key: {"label": label, "failed": failed[key], **(summary(samples[key]) or {})}
                             for key, _, _, label in configs}
    results["_latency_summaries"] = {key: summary(samples[key]) for key in samples}


def throughput(args, b, daemons, results):
    """N `ctr run --rm ... true` with P in flight, per daemon; rounds alternate the daemon order."""
    log(f"throughput: {args.containers} `ctr run --rm` with {args.parallel} in flight, {args.rounds} round(s)"
        " per daemon ...")
    cps = {d.name: [] for d in daemons}
    failed = {d.name: 0 for d in daemons}
    for r in range(args.rounds):
        for d in rotate(daemons, r):
            counter = iter(range(args.containers))
            fails = []

            def worker():
                for _ in counter:
                    if b.stop.is_set():
                        return
                    try:
                        if b.run_rm(d, "tp") is None:
                            fails.append(1)
                    except Exception as e:   # e.g. the daemon died: stop this round
                        fails.append(1)
                        b.errors.append((d.name, "run --rm (tp)", "-", repr(e)))
                        b.stop.set()
            threads = [threading.Thread(target=worker) for _ in range(args.parallel)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            try:
                for t in threads:
                    t.join()
            except BaseException:
                # Interrupted: let the commands in flight finish (killing ctr
                # half-way would leave containers behind), start no new ones.
                b.stop.set()
                for t in threads:
                    t.join()
                raise
            wall = time.perf_counter() - t0
            if b.stop.is_set():
                d.check_alive()
                raise RuntimeError(f"throughput round against {d.name} stopped (see the errors below)")
            failed[d.name] += len(fails)
            cps[d.name].append(args.containers / wall)
            log(f"  round {r + 1}/{args.rounds}, {d.name}: {args.containers / wall:.1f} containers/s"
                + (f" ({len(fails)} failed)" if fails else ""))
    results["throughput_cps"] = {n: dict(summary(cps[n]) or {}, failed=failed[n]) for n in cps}


def supervision(args, b, daemons, results):
    """N running `sleep 600` containers in each daemon: daemon RSS/PSS and shims' PSS per container."""
    mem = {d.name: {} for d in daemons}
    for d in daemons:
        rss, pss = memory(d.pid)
        mem[d.name]["idle_rss"], mem[d.name]["idle_pss"] = rss, pss
    log(f"memory: {args.running} running containers (`ctr run -d ... sleep 600`) per daemon ...")
    run_d = {d.name: [] for d in daemons}
    ids = {d.name: [] for d in daemons}
    for i in range(args.running):
        for d in rotate(daemons, i):
            d.check_alive()
            cid = b.new_id(d, "run")
            ids[d.name].append(cid)
            ok, ms, _ = b.run_ctr(d, "run", "-d", IMAGE, cid, "sleep", "600", what="run -d", note_stderr=True)
            run_d[d.name].append(ms if ok else None)
    time.sleep(args.settle)
    for d in daemons:
        m = mem[d.name]
        ok, _, out = b.run_ctr(d, "tasks", "ls", what="tasks ls")
        running = sum(1 for line in out.splitlines()[1:] if line.split()[:1] and line.split()[0] in ids[d.name]
                      and line.split()[-1] == "RUNNING")
        m["running"] = running
        if running != args.running:
            b.errors.append((d.name, "run -d", "-", f"{running} of {args.running} tasks RUNNING"))
        m["rss"], m["pss"] = memory(d.pid)
        m["uss"] = private_mib(d.pid)
        shims = shims_of(d)
        m["shims"] = len(shims)
        rss_sum = pss_sum = 0.0
        for pid in shims:
            try:
                rss, pss = memory(pid)
            except (OSError, TypeError):
                continue
            rss_sum += rss
            pss_sum += pss
        n = args.running
        m["shim_rss_sum"], m["shim_pss_sum"] = rss_sum, pss_sum
        m["shim_rss_per"], m["shim_pss_per"] = rss_sum / n, pss_sum / n
        m["rss_growth_per"] = (m["rss"] - m["idle_rss"]) / n
        m["total_per"] = m["rss_growth_per"] + m["shim_pss_per"]
        m["run_d_ms"] = summary(run_d[d.name])
        m["run_d_failed"] = sum(x is None for x in run_d[d.name])
    log("removing the running containers (tasks kill -s SIGKILL, tasks rm, containers rm) ...")
    for d in daemons:
        t0 = time.perf_counter()
        b.remove_all(d)
        mem[d.name]["teardown_s"] = time.perf_counter() - t0
    time.sleep(args.settle)
    for d in daemons:
        d.check_alive()
        mem[d.name]["after_rss"], mem[d.name]["after_pss"] = memory(d.pid)
        b.check_clean(d, "after the running containers were removed")
        left = shims_of(d)
        if left:
            b.errors.append((d.name, "check after removal", "-",
                             f"{len(left)} shim(s) still alive, e.g. pid {left[0]}"))
    results["memory"] = mem


# --------------------------------------------------------------------------

def report(args, results):
    p = print
    v = results["versions"]
    benchlib.print_head("tasks", results["host"], "", results["elapsed_s"],
                        " (samples are interleaved: other load hits every daemon alike)")
    p(f"  ours        {v['ours']}; default runtime {v['runpy-oci']}, shim {OUR_SHIM} (C)")
    p(f"  containerd  {v['containerd']}; default runtime {v['runc']}, shim {THEIR_SHIM}")
    p(f"  client: {v['ctr']} for both; image {IMAGE} from bundles/make-busybox-image.py, ctr images import")
    p("  cells: median [p25-p75]; a * means some samples failed (see the errors below)")

    lat = results["_latency_summaries"]
    failed = {k: v["failed"] for k, v in results["latency_ms"].items()}
    labels = {k: v["label"] for k, v in results["latency_ms"].items()}
    base = med(lat["containerd"])
    p()
    p(f"ctr run --rm {IMAGE} ID true  ({args.runs} samples per row after {args.warmup} warm-up runs each)")
    hdr = f"{'manager + runtime':42}{'ms':>22}{'/ containerd+runc':>20}"
    p(hdr)
    p("-" * len(hdr))
    for key in ("ours", "containerd", "ours+runc", "containerd+runpy"):
        p(f"{labels[key]:42}{cell(lat[key], 0, failed[key]):>22}{fmt(ratio(med(lat[key]), base), 2):>20}")
    p()
    p("  the same four medians as a matrix (ratios of medians):")
    r_runpy_cd, r_runc_cd = med(lat["containerd+runpy"]), base
    r_runpy_ours, r_runc_ours = med(lat["ours"]), med(lat["ours+runc"])
    hdr = f"  {'':28}{'runpy-oci':>14}{'runc':>14}{'runpy-oci/runc':>18}"
    p(hdr)
    p(f"  {'containerd_py':28}{fmt(r_runpy_ours, 0):>14}{fmt(r_runc_ours, 0):>14}"
      f"{fmt(ratio(r_runpy_ours, r_runc_ours), 2):>18}")
    p(f"  {'containerd':28}{fmt(r_runpy_cd, 0):>14}{fmt(r_runc_cd, 0):>14}"
      f"{fmt(ratio(r_runpy_cd, r_runc_cd), 2):>18}")
    p(f"  {'containerd_py/containerd':28}{fmt(ratio(r_runpy_ours, r_runpy_cd), 2):>14}"
      f"{fmt(ratio(r_runc_ours, r_runc_cd), 2):>14}")
    p("  (a column: the managers with the same runtime; a row: the runtimes under the same manager)")

    tp = results["throughput_cps"]
    p()
    p(f"throughput: {args.containers} x ctr run --rm ... true, {args.parallel} in flight"
      f"  ({args.rounds} round(s) per daemon)")
    hdr = f"{'':42}{'containerd_py':>22}{'containerd':>22}{'ours/containerd':>18}"
    p(hdr)
    p("-" * len(hdr))
    r_tp = ratio(med(tp["ours"]) if tp["ours"].get("n") else None,
                 med(tp["containerd"]) if tp["containerd"].get("n") else None)
    p(f"{'containers/s (higher is better)':42}"
      f"{cell(tp['ours'] if tp['ours'].get('n') else None, 1, tp['ours']['failed']):>22}"
      f"{cell(tp['containerd'] if tp['containerd'].get('n') else None, 1, tp['containerd']['failed']):>22}"
      f"{fmt(r_tp, 2):>18}")

    m = results["memory"]
    o, c = m["ours"], m["containerd"]
    n = args.running
    p()
    p(f"memory: {n} running containers (ctr run -d ... sleep 600) in each daemon, MiB")
    hdr = f"{'':42}{'containerd_py':>22}{'containerd':>22}{'ours/containerd':>18}"
    p(hdr)
    p("-" * len(hdr))

    def row(label, key, nd=1):
        p(f"{label:42}{fmt(o.get(key), nd):>22}{fmt(c.get(key), nd):>22}{fmt(ratio(o.get(key), c.get(key)), 2):>18}")
    row("daemon VmRSS, none running (after the runs)", "idle_rss")
    row(f"daemon VmRSS, {n} running", "rss")
    row(f"daemon PSS, {n} running", "pss")
    row(f"daemon USS (private), {n} running", "uss")
    row("daemon VmRSS, after they were removed", "after_rss")
    row("daemon VmRSS growth per running container", "rss_growth_per", 2)
    p(f"{'shims alive (count)':42}{o['shims']:>22}{c['shims']:>22}{'':>18}")
    row(f"shim PSS per container (sum / {n})", "shim_pss_per", 2)
    row(f"shim VmRSS per container (sum / {n})", "shim_rss_per", 2)
    row("per container: shim PSS + daemon growth", "total_per", 2)
    p(f"{'ctr run -d ms (each of the ' + str(n) + ')':42}{cell(o['run_d_ms'], 0, o['run_d_failed']):>22}"
      f"{cell(c['run_d_ms'], 0, c['run_d_failed']):>22}{fmt(ratio(med(o['run_d_ms']), med(c['run_d_ms'])), 2):>18}")
    row(f"remove all {n} (kill, tasks rm, containers rm) s", "teardown_s", 1)
    p("  daemon: the daemon process only; VmRSS from /proc/PID/status, PSS and USS from /proc/PID/smaps_rollup")
    p("  (PSS shares pages with every other process mapping the same files, e.g. other Python processes);")
    p(f"  shims: the {OUR_SHIM} processes vs the {THEIR_SHIM} processes of that daemon")

    s = results["summary"] = {
        "run_rm_ours_over_containerd": ratio(med(lat["ours"]), base),
        "run_rm_manager_only_ours_over_containerd_with_runc": ratio(r_runc_ours, r_runc_cd),
        "run_rm_runtime_only_runpy_over_runc_under_containerd": ratio(r_runpy_cd, r_runc_cd),
        "throughput_ours_over_containerd": r_tp,
        "daemon_rss_ours_over_containerd": ratio(o.get("rss"), c.get("rss")),
        "shim_pss_per_container_mib": {"ours": o.get("shim_pss_per"), "containerd": c.get("shim_pss_per")},
        "shim_pss_ours_over_containerd": ratio(o.get("shim_pss_per"), c.get("shim_pss_per")),
    }
    p()
    p("summary (targets from the containerd_py issue; this script only reports):")
    p(f"  ctr run --rm: ours/containerd = {fmt(s['run_rm_ours_over_containerd'], 2)} (target <= 1.0);"
      f" with runc under both: {fmt(s['run_rm_manager_only_ours_over_containerd_with_runc'], 2)};"
      f" runpy-oci/runc under containerd: {fmt(s['run_rm_runtime_only_runpy_over_runc_under_containerd'], 2)}")
    p(f"  throughput, {args.parallel} in flight: ours/containerd = {fmt(r_tp, 2)} (above 1 = ours faster)")
    p(f"  daemon RSS with {n} running: ours/containerd = {fmt(s['daemon_rss_ours_over_containerd'], 2)}"
      f" (target < 1.0)")
    p(f"  supervision PSS per container: ours {fmt(o.get('shim_pss_per'), 2)} MiB,"
      f" containerd's shim {fmt(c.get('shim_pss_per'), 2)} MiB, ratio {fmt(s['shim_pss_ours_over_containerd'], 2)}"
      f" (target <= 2 MB each)")


def _normalize(text, ns):
    return benchlib.normalize(text.replace(ns, "<ns>"), (r"<ns>-[\w.-]+", "<id>"),
                              (r"/run/containerd/fifo/\d+", "<fifo>"))


def _log_message(line):
    """The gist of a logfmt line: `level: msg`, with the innermost non-info
    message of a nested record (containerd quotes its shims' logs in its own)."""
    found = re.findall(r'level=\\*"?(\w+)\\*"? msg=\\*"((?:[^"\\]|\\[^"])*)\\*"(?: error=\\*"((?:[^"\\]|\\[^"])*))?',
                       line)
    if not found:
        return line
    def one(f):
        text = re.sub(r"\s*time=$", "", f[1])
        return f"{f[0]}: {text}" + (f" (error: {f[2]})" if f[2] else "")
    inner = [f for f in found[1:] if f[0] != "info"]
    if inner:
        return one(inner[-1])
    return one(found[0]) + "".join(f" / nested {one(f)}" for f in found[1:])


def print_errors(b, leaks, interrupted):
    benchlib.print_error_groups(b.errors, lambda line: _normalize(line, b.ns), 400, interrupted)
    if b.daemon_log:
        print()
        print("warnings and errors in the daemons' logs (one example per message, with its count):")
        groups = {}
        for name, line in b.daemon_log:
            msg = _log_message(line)
            key = (name != "ours", name, _normalize(msg, b.ns)[:160])
            if key in groups:
                groups[key][0] += 1
            else:
                groups[key] = [1, msg]
        for (_, name, _), (count, msg) in sorted(groups.items()):
            print(f"  [{name}] ({count}x): {msg[:300]}")
    if leaks:
        benchlib.print_leaks(leaks, "left behind (the bench removed them):")
    else:
        print()
        print("left behind: nothing (no shim or container process, no mount, no cgroup, no FIFO directory)")


def cleanup(b, daemons, tmp, fifo_before):
    leaks = []
    benchlib.ignore_signals()
    b.stop.set()
    # 1. Every task and container of ours, in each daemon still alive.
    for d in daemons:
        try:
            b.remove_all(d)
        except Exception as e:   # cleanup goes on whatever happens
            leaks.append(f"[{d.name}] cleanup through ctr failed: {e!r}")
    # 2. The daemons.
    for d in daemons:
        how = d.stop()
        if how:
            leaks.append(f"[{d.name}] daemon {how}")
    # 3. What should be gone now: shims, container processes.
    time.sleep(0.2)
    shims = all_shims(tmp)
    if shims:
        leaks.append(f"{len(shims)} shim process(es) alive after cleanup: "
                     + ", ".join(f"{pid} {' '.join(cmdline(pid))[:160]}" for pid in shims[:3]) + " (killed)")
    procs = [pid for pid in container_procs(b.ns) if pid not in shims]
    if procs:
        leaks.append(f"{len(procs)} container process(es) alive after cleanup: "
                     + ", ".join(f"{pid} {' '.join(cmdline(pid))[:160]}" for pid in procs[:3]) + " (killed)")
    kill_all(shims + procs)
    # 4. What the daemons logged as warnings or errors (their logs go with the directory).
    for d in daemons:
        try:
            with open(d.log_path, errors="replace") as f:
                for line in f:
                    if re.search(r"level=(warn|warning|error|fatal|panic)\b|Traceback|Exception", line):
                        b.daemon_log.append((d.name, line.strip()))
        except OSError:
            pass
    # 5. Mounts under the temporary directory.
    mnts = mounts_under(tmp)
    if mnts:
        leaks.append(f"{len(mnts)} mount(s) under {tmp}, e.g. {mnts[0]} (unmounted)")
        benchlib.unmount_all(mnts)
    shutil.rmtree(tmp, ignore_errors=True)
    if os.path.exists(tmp):
        leaks.append(f"{tmp} could not be removed")
    # 6. Cgroups of containers (/NS/ID) left by a runtime, then the /NS parents both runtimes leave.
    time.sleep(0.1)
    dirs = cgroup_dirs(b.ns)
    if dirs:
        kept = []
        for path in sorted(dirs, key=lambda p: -p.count("/")):
            try:
                os.rmdir(path)
            except OSError:
                kept.append(path)
        leaks.append(f"{len(dirs)} container cgroup dir(s), e.g. {dirs[0]}"
                     + (f" ({len(kept)} could not be removed)" if kept else " (removed)"))
    for h in os.listdir(CGROUP_ROOT) if os.path.isdir(CGROUP_ROOT) else []:
        try:
            os.rmdir(os.path.join(CGROUP_ROOT, h, b.ns))
        except OSError:
            pass
    # 7. ctr's FIFO directories for containers of ours (ctr removes them on tasks rm / run --rm).
    try:
        new = set(os.listdir(FIFO_DIR)) - fifo_before
    except OSError:
        new = set()
    fifo_left = []
    for ent in new:
        path = os.path.join(FIFO_DIR, ent)
        try:
            if any(f.startswith(b.ns + "-") for f in os.listdir(path)):
                fifo_left.append(path)
        except OSError:
            pass
    if fifo_left:
        leaks.append(f"{len(fifo_left)} ctr FIFO directory(ies) in {FIFO_DIR}, e.g. {fifo_left[0]}: "
                     + ", ".join(sorted(os.listdir(fifo_left[0]))) + " (removed)")
        for path in fifo_left:
            shutil.rmtree(path, ignore_errors=True)
    return leaks


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer samples, smaller batches (a smoke test)")
    ap.add_argument("--runs", type=int, help="`ctr run --rm` samples per manager/runtime pair (default 40, --quick 6)")
    ap.add_argument("--warmup", type=int, help="warm-up runs per pair (default 3, --quick 2)")
    ap.add_argument("--containers", type=int, help="containers per throughput round (default 50, --quick 12)")
    ap.add_argument("--parallel", type=int, default=4, help="containers in flight in the throughput rounds (4)")
    ap.add_argument("--rounds", type=int, help="throughput rounds per daemon (default 3, --quick 1)")
    ap.add_argument("--running", type=int, help="running containers per daemon for memory (default 20, --quick 5)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading memory (1)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--python", default=os.path.join(REPO, ".venv", "bin", "python"),
                    help="the Python that runs our daemon (default: .venv/bin/python of this repo)")
    ap.add_argument("--runpy-oci", dest="runpy", default=os.path.join(REPO, ".venv", "bin", "runpy-oci"),
                    help="our runtime, for containerd's --runc-binary row (default .venv/bin/runpy-oci)")
    ap.add_argument("--runc", default="/usr/sbin/runc", help="runc, for our --runc-binary row")
    ap.add_argument("--containerd", default=shutil.which("containerd") or "/usr/bin/containerd")
    ap.add_argument("--ctr", default=shutil.which("ctr") or "/usr/bin/ctr")
    args = ap.parse_args()
    q = args.quick
    args.runs = args.runs or (6 if q else 40)
    args.warmup = args.warmup if args.warmup is not None else (2 if q else 3)
    args.containers = args.containers or (12 if q else 50)
    args.rounds = args.rounds or (1 if q else 3)
    args.running = args.running or (5 if q else 20)
    if args.json:
        args.json = os.path.abspath(args.json)
    if os.geteuid() != 0:
        sys.exit("tasks.py: must run as root")
    for what, path in (("python", args.python), ("runpy-oci", args.runpy), ("runc", args.runc),
                       ("containerd", args.containerd), ("ctr", args.ctr),
                       (THEIR_SHIM, shutil.which(THEIR_SHIM) or "/usr/bin/" + THEIR_SHIM)):
        if not os.access(path, os.X_OK):
            sys.exit(f"tasks.py: {what} not found at {path} (run: bash scripts/setup.sh)")
    if not os.access(os.path.join(REPO, "containerd_py", "shim", OUR_SHIM), os.X_OK):
        sys.exit(f"tasks.py: containerd_py/shim/{OUR_SHIM} is not built (run: bash scripts/setup.sh)")

    benchlib.interrupt_on(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    tmp = tempfile.mkdtemp(prefix="bench-tasks-")
    os.chdir("/")
    ns = f"bt{os.getpid()}"
    b = Bench(tmp, args.ctr, ns)
    try:
        fifo_before = set(os.listdir(FIFO_DIR))
    except OSError:
        fifo_before = set()
    daemons = []
    results = {"host": benchlib.host_facts(),
               "namespace": ns, "versions": {}, "summary": {},
               "options": {k: getattr(args, k) for k in ("runs", "warmup", "containers", "parallel", "rounds",
                                                         "running", "settle")}}
    rc = 0
    t_start = time.monotonic()
    try:
        log("building the busybox image ...")
        tar = os.path.join(tmp, "busybox.tar")
        r = subprocess.run([sys.executable, MAKE_IMAGE, tar], capture_output=True, text=True, timeout=300,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"make-busybox-image.py: {r.stderr.strip()}")
        daemons.append(start_ours(tmp, args.python))
        daemons.append(start_containerd(tmp, args.containerd))
        for d in daemons:
            benchlib.wait_ready(args.ctr, d)
        ours, theirs = daemons
        for d in daemons:
            ok, _, _ = b.run_ctr(d, "images", "import", tar, what="images import")
            if not ok:
                raise RuntimeError(f"{d.name}: ctr images import failed: {b.errors[-1][3]}")
        results["versions"] = {
            "ours": version([args.python, "-m", "containerd_py.daemon", "--version"])
            + f" (python {version([args.python, '-V']).split()[-1]})",
            "containerd": version([args.containerd, "--version"]),
            "ctr": version([args.ctr, "--version"]),
            "runc": version([args.runc, "--version"]),
            "runpy-oci": version([args.runpy, "--version"])}

        latency(args, b, ours, theirs, args.runpy, args.runc, results)
        for d in daemons:
            b.check_clean(d, "after the latency runs")
        throughput(args, b, daemons, results)
        for d in daemons:
            b.check_clean(d, "after the throughput runs")
        supervision(args, b, daemons, results)
        results["host"]["loadavg_end"] = loadavg()
        results["elapsed_s"] = time.monotonic() - t_start
    except KeyboardInterrupt:
        rc = benchlib.interrupted()
    except Exception:
        rc = benchlib.failed()
        for d in daemons:
            if not d.alive():
                log(f"{d.name} log:\n{d.log_tail()}")
    finally:
        log("cleaning up ...")
        leaks = cleanup(b, daemons, tmp, fifo_before)
    if rc == 0:
        report(args, results)
    results["errors"] = benchlib.errors_json(b.errors)
    results["daemon_log"] = [{"daemon": n, "line": line} for n, line in b.daemon_log]
    return benchlib.end_run(rc, results, leaks, lambda leaks, intr: print_errors(b, leaks, intr), args.json)


if __name__ == "__main__":
    sys.exit(main())
