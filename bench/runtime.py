#!/usr/bin/env python3
"""Runtime benchmark: runpy-oci side by side with runc and crun, in one run.

    python3 bench/runtime.py [--runs N] [--quick] [--json FILE]

Measures, on one busybox bundle (config from `runc spec`, args ["true"]):
  * `run` of `true` in the foreground, and separately `create`, `start`,
    `delete` (of a created, started and exited container) and `state` (of a
    running `sleep` container): wall time of the runtime process, medians;
  * throughput: 50 `run`s one at a time and 4 at a time (containers/s);
  * peak RSS of one `run` (ru_maxrss of the runtime's process tree).
Samples are interleaved across runtimes (with a rotating order) after a
warm-up. Prints numbers and ratios (ours/runc, ours/crun); decides nothing.
See bench/README.md. Needs root. Python 3.11 standard library only.
"""
import ctypes
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import benchlib
from benchlib import cell, fmt, kill_all, loadavg, log, ratio, rotate, stat_fields, summary

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MAKE_BUNDLE = os.path.join(REPO, "bundles", "make-busybox-bundle.sh")
UNIFIED = "/sys/fs/cgroup/unified"
TIME = "/usr/bin/time"   # GNU time (Debian package `time`), for peak RSS
CLONE_NEWNS = 0x00020000
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd):
    _check(_libc.setns(fd, CLONE_NEWNS), "setns(CLONE_NEWNS)")


# --------------------------------------------------------------------------
# Runtimes and process spawning

class Runtime:
    def __init__(self, name, binary, root, mntns_fd=None):
        self.name = name
        self.binary = binary
        self.root = root
        self.mntns_fd = mntns_fd   # crun on a hybrid host: its private mount ns
        self.live = set()          # ids that may exist in this runtime's root
        self.stderr_path = None
        self.stderr_fd = None

    def argv(self, *args):
        return [self.binary, "--root", self.root, *args]


class Bench:
    def __init__(self, tmp):
        self.tmp = tmp
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.host_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        self.inflight = set()   # pids of runtime processes we spawned, not yet reaped
        self.reaped = {}        # pid -> (status, rusage, t_ns) for pids in inflight
        self.orphans = set()    # pids reaped that we did not spawn (container inits)
        self.errors = []        # (runtime, verb, status, stderr text)
        self.env = dict(os.environ)

    # -- spawning ---------------------------------------------------------
    def spawn(self, rt, args, stdout=None, wrap=()):
        argv = [*wrap, *rt.argv(*args)]
        fa = [
            (os.POSIX_SPAWN_DUP2, self.devnull, 0),
            (os.POSIX_SPAWN_DUP2, self.devnull if stdout is None else stdout, 1),
            (os.POSIX_SPAWN_DUP2, rt.stderr_fd, 2),
        ]
        if rt.mntns_fd is not None:
            setns(rt.mntns_fd)
        try:
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, self.env, file_actions=fa)
        finally:
            if rt.mntns_fd is not None:
                setns(self.host_ns)
                os.chdir("/")
        self.inflight.add(pid)
        self.t0 = t0
        return pid

    def _reap_one(self, block):
        try:
            pid, status, ru = os.wait4(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == 0:
            return None
        t = time.perf_counter_ns()
        if pid in self.inflight:
            self.inflight.discard(pid)
            self.reaped[pid] = (status, ru, t)
        else:
            self.orphans.add(pid)
        return pid

    def reap_nohang(self):
        while self._reap_one(False):
            pass

    def wait(self, pid):
        while pid not in self.reaped:
            if self._reap_one(True) is None and pid not in self.reaped:
                raise RuntimeError(f"lost child {pid}")
        return self.reaped.pop(pid)

    def call(self, rt, verb, args, stdout=None, wrap=(), record=True):
        """Run one runtime command; returns (ok, ms, rusage)."""
        off = os.fstat(rt.stderr_fd).st_size
        pid = self.spawn(rt, args, stdout, wrap)
        t0 = self.t0
        status, ru, t1 = self.wait(pid)
        ok = os.waitstatus_to_exitcode(status) == 0
        if record and (not ok or os.fstat(rt.stderr_fd).st_size != off):
            with open(rt.stderr_path, "rb") as f:
                f.seek(off)
                text = f.read().decode(errors="replace")
            self.errors.append((rt.name, verb, os.waitstatus_to_exitcode(status), text.strip()))
        return ok, (t1 - t0) / 1e6, ru

    def wait_gone(self, pid, timeout=10.0):
        """Wait until process pid has exited (reaping it if it is ours)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.reap_nohang()
            if pid in self.orphans:
                self.orphans.discard(pid)
                return True
            try:
                if stat_fields(pid)[0] in (b"Z", b"X"):  # exited; not our child to reap
                    return True
            except (FileNotFoundError, ProcessLookupError, IndexError):
                return True
            time.sleep(0.0005)
        return False


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


# --------------------------------------------------------------------------
# Set-up

def make_bundles(tmp):
    true_b = os.path.join(tmp, "bundle-true")
    sleep_b = os.path.join(tmp, "bundle-sleep")
    subprocess.run(["bash", MAKE_BUNDLE, true_b], check=True, stdout=subprocess.DEVNULL)
    cfg_path = os.path.join(true_b, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["true"]
    cfg["process"]["terminal"] = False
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)
    os.mkdir(sleep_b)
    cfg["process"]["args"] = ["sleep", "3600"]
    cfg["root"]["path"] = os.path.join(true_b, "rootfs")  # share one rootfs
    with open(os.path.join(sleep_b, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    return true_b, sleep_b, bool(cfg["root"].get("readonly"))


def host_has_unified():
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == UNIFIED for line in f)


def private_mntns_without_unified():
    """A mount namespace (fd) like the host's but with cgroup2 at
    /sys/fs/cgroup/unified unmounted, for crun. Made by `unshare -m
    --propagation private` so the umount cannot propagate to the host."""
    p = subprocess.Popen(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         f"umount {UNIFIED} && echo ready; read x"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError("could not unmount cgroup2 in a private mount namespace for crun")
        fd = os.open(f"/proc/{p.pid}/ns/mnt", os.O_RDONLY)
    finally:
        p.stdin.close()
        p.wait()
    return fd


# --------------------------------------------------------------------------
# Benchmarks

class Ids:
    def __init__(self):
        self.prefix = f"rb{os.getpid()}"
        self.n = 0

    def new(self, rt, tag):
        self.n += 1
        return f"{self.prefix}-{rt.name}-{tag}{self.n}"


def one_run(b, ids, rt, bundle, tag="r", wrap=()):
    cid = ids.new(rt, tag)
    rt.live.add(cid)
    ok, ms, ru = b.call(rt, "run", ["run", "-b", bundle, cid], wrap=wrap)
    if ok:
        rt.live.discard(cid)
    return ok, ms, ru


def lifecycle(b, ids, rt, bundle):
    """create, start, wait for exit, delete: times of the three verbs."""
    cid = ids.new(rt, "c")
    pidfile = os.path.join(b.tmp, f"{cid}.pid")
    rt.live.add(cid)
    out = {}
    ok, out["create"], _ = b.call(rt, "create", ["create", "-b", bundle, "--pid-file", pidfile, cid])
    if not ok:
        return None
    init = read_pid(pidfile)
    os.unlink(pidfile)
    ok, out["start"], _ = b.call(rt, "start", ["start", cid])
    if not ok:
        return None
    if init and not b.wait_gone(init):
        return None
    ok, out["delete"], _ = b.call(rt, "delete", ["delete", cid])
    if not ok:
        return None
    rt.live.discard(cid)
    return out


def throughput(b, ids, rt, bundle, n, parallel):
    """n foreground runs with `parallel` in flight; (containers/s, failures)."""
    pending = n
    running = {}
    failures = 0
    off = os.fstat(rt.stderr_fd).st_size
    t0 = time.perf_counter()
    while pending or running:
        while pending and len(running) < parallel:
            cid = ids.new(rt, f"t{parallel}-")
            rt.live.add(cid)
            running[b.spawn(rt, ["run", "-b", bundle, cid])] = cid
            pending -= 1
        b._reap_one(True)
        for pid in [p for p in running if p in b.reaped]:
            status, _, _ = b.reaped.pop(pid)
            cid = running.pop(pid)
            if os.waitstatus_to_exitcode(status) == 0:
                rt.live.discard(cid)
            else:
                failures += 1
    dt = time.perf_counter() - t0
    done = n - failures
    if os.fstat(rt.stderr_fd).st_size != off or failures:
        with open(rt.stderr_path, "rb") as f:
            f.seek(off)
            text = f.read().decode(errors="replace").strip()
        b.errors.append((rt.name, f"run x{n} ({parallel} at a time)", f"{failures} failed", text))
    return (done / dt if done else None), failures


def time_raw(b, argv, runs, env=None):
    """Median ms to spawn+wait a plain command (for wrapper overhead)."""
    xs = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env or b.env,
                             file_actions=[(os.POSIX_SPAWN_DUP2, b.devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, b.devnull, 2)])
        b.inflight.add(pid)
        b.wait(pid)
        xs.append((time.perf_counter_ns() - t0) / 1e6)
    return xs


def bench_all(args, b, rts, true_b, sleep_b, ids, results):
    names = [rt.name for rt in rts]
    t_start = time.monotonic()

    # -- warm-up ----------------------------------------------------------
    log(f"warm-up ({args.warmup} runs + 1 lifecycle each) ...")
    for i in range(args.warmup):
        for rt in rotate(rts, i):
            one_run(b, ids, rt, true_b, "w")
    for rt in rts:
        lifecycle(b, ids, rt, true_b)

    # -- run (foreground) ---------------------------------------------------
    log(f"run x{args.runs} per runtime (interleaved) ...")
    run_ms = {n: [] for n in names}
    run_cpu = {n: [] for n in names}
    for i in range(args.runs):
        for rt in rotate(rts, i):
            ok, ms, ru = one_run(b, ids, rt, true_b)
            if ok:
                run_ms[rt.name].append(ms)
                run_cpu[rt.name].append((ru.ru_utime + ru.ru_stime) * 1000)

    # -- create / start / delete --------------------------------------------
    log(f"create/start/delete x{args.runs} per runtime (interleaved) ...")
    verb_ms = {v: {n: [] for n in names} for v in ("create", "start", "delete")}
    for i in range(args.runs):
        for rt in rotate(rts, i):
            out = lifecycle(b, ids, rt, true_b)
            if out:
                for v, ms in out.items():
                    verb_ms[v][rt.name].append(ms)

    # -- state of a running sleep container -----------------------------------
    log(f"state x{args.runs} per runtime on a running sleep container ...")
    verb_ms["state"] = {n: [] for n in names}
    sleepers = {}
    for rt in rts:
        cid = ids.new(rt, "s")
        rt.live.add(cid)
        ok, _, _ = b.call(rt, "run -d", ["run", "-d", "-b", sleep_b, cid])
        if ok:
            sleepers[rt.name] = cid
    for i in range(args.runs + 3):
        for rt in rotate(rts, i):
            if rt.name in sleepers:
                ok, ms, _ = b.call(rt, "state", ["state", sleepers[rt.name]])
                if ok and i >= 3:  # first 3 rounds are warm-up
                    verb_ms["state"][rt.name].append(ms)
    for rt in rts:
        cid = sleepers.get(rt.name)
        if cid:
            ok, _, _ = b.call(rt, "delete --force", ["delete", "--force", cid])
            if ok:
                rt.live.discard(cid)

    # -- throughput -----------------------------------------------------------
    log(f"throughput: {args.containers} runs, 1 and 4 at a time, {args.rounds} round(s) ...")
    tput = {p: {n: [] for n in names} for p in (1, 4)}
    tfail = {p: {n: 0 for n in names} for p in (1, 4)}
    for r in range(args.rounds):
        for p in (1, 4):
            for rt in rotate(rts, r):
                cps, failed = throughput(b, ids, rt, true_b, args.containers, p)
                if cps is not None:
                    tput[p][rt.name].append(cps)
                tfail[p][rt.name] += failed

    # -- peak RSS of one run ------------------------------------------------------
    # ru_maxrss of a process we spawn ourselves is useless: exec() records the
    # high-water RSS of the mm it replaces, which for a vfork/fork child of this
    # Python process is ~this process's RSS. GNU time forks from its own small
    # mm, so its %M (wait4's ru_maxrss of its child) is the max over the
    # runtime's process tree only.
    rss_n = max(5, args.runs // 5)
    run_rss = {n: [] for n in names}
    floor_rss = None
    if os.access(TIME, os.X_OK):
        log(f"peak RSS: run x{rss_n} per runtime under {TIME} -f %M ...")
        out = os.path.join(b.tmp, "time.out")
        wrap = (TIME, "-f", "%M", "-o", out)
        for i in range(rss_n):
            for rt in rotate(rts, i):
                if os.path.exists(out):
                    os.unlink(out)
                ok, _, _ = one_run(b, ids, rt, true_b, "m", wrap=wrap)
                kib = read_pid(out)
                if ok and kib:
                    run_rss[rt.name].append(kib / 1024)
        busybox = os.path.join(true_b, "rootfs", "bin", "busybox")
        floor = []
        for _ in range(5):
            pid = os.posix_spawn(TIME, [TIME, "-f", "%M", "-o", out, busybox, "true"], b.env)
            b.inflight.add(pid)
            b.wait(pid)
            floor.append(read_pid(out) / 1024)
        floor_rss = statistics.median(floor)
    else:
        log(f"peak RSS: skipped, {TIME} missing (apt-get install time)")
    wrapper = None
    if any(rt.mntns_fd is not None for rt in rts):
        wr = [shutil.which("unshare") or "/usr/bin/unshare", "-m", "--propagation", "private", "sh", "-c",
              f'umount {UNIFIED}; exec "$@"', "sh", "/bin/true"]
        bare, wrapped = [], []
        for _ in range(max(10, args.runs // 3)):
            bare += time_raw(b, ["/bin/true"], 1)
            wrapped += time_raw(b, wr, 1)
        wrapper = {"bare_true_ms": statistics.median(bare),
                   "wrapped_true_ms": statistics.median(wrapped)}
        wrapper["overhead_ms"] = wrapper["wrapped_true_ms"] - wrapper["bare_true_ms"]

    results["elapsed_s"] = time.monotonic() - t_start
    results["verbs"] = {}
    for v, data in [("run", run_ms)] + [(v, verb_ms[v]) for v in ("create", "start", "state", "delete")]:
        results["verbs"][v] = {n: summary(data[n]) for n in names}
    results["run_peak_rss_mib"] = {n: summary(run_rss[n]) for n in names}
    results["run_cpu_ms"] = {n: summary(run_cpu[n]) for n in names}
    results["throughput_cps"] = {
        f"{p}_at_a_time": {n: {"median": statistics.median(tput[p][n]) if tput[p][n] else None,
                               "rounds": tput[p][n], "failures": tfail[p][n]} for n in names}
        for p in (1, 4)}
    results["busybox_true_rss_mib"] = floor_rss
    results["crun_wrapper"] = wrapper


# --------------------------------------------------------------------------
# Report

def report(args, rts, results):
    names = [rt.name for rt in rts]
    others = [n for n in names if n != "ours"]
    p = print
    benchlib.print_head("runtime", results["host"], f"{args.runs} samples per verb, warm-up {args.warmup}, ",
                        results["elapsed_s"],
                        " (other work on the machine adds noise to all runtimes alike: samples are interleaved)")
    for rt in rts:
        p(f"  {rt.name:5} {rt.binary}  ({results['versions'][rt.name]})")
    p(f"  bundle: busybox, `runc spec` config, args [\"true\"], root.readonly={results['bundle_readonly']}")
    p("  times: wall ms of the runtime process (spawn to reap), median [p25-p75]")
    p()
    hdr = f"{'':10}" + "".join(f"{n + ' ms':>22}" for n in names) + "".join(f"{'ours/' + o:>12}" for o in others)
    p(hdr)
    p("-" * len(hdr))
    short = []
    for v, per in results["verbs"].items():
        cells = []
        for n in names:
            c = cell(per[n], 1, spread_of_one=True)
            got = per[n]["n"] if per[n] else 0
            if got < args.runs:
                c += "*"
                short.append(f"{n} {v} {got}/{args.runs}")
            cells.append(c)
        row = f"{v:10}" + "".join(f"{c:>22}" for c in cells)
        for o in others:
            r = ratio(per["ours"] and per["ours"]["median"], per[o] and per[o]["median"])
            row += f"{fmt(r, 2):>12}"
        p(row)
    if short:
        p(f"  * failed samples (successful/attempted): {', '.join(short)}; see the errors below")
    p()
    hdr = f"{'throughput':22}" + "".join(f"{n + ' c/s':>12}" for n in names) + "".join(f"{'ours/' + o:>12}" for o in others)
    p(hdr)
    p("-" * len(hdr))
    for key, label in (("1_at_a_time", f"{args.containers} runs, 1 at a time"),
                       ("4_at_a_time", f"{args.containers} runs, 4 at a time")):
        per = results["throughput_cps"][key]
        row = f"{label:22}" + "".join(f"{fmt(per[n]['median']):>12}" for n in names)
        for o in others:
            row += f"{fmt(ratio(per['ours']['median'], per[o]['median']), 2):>12}"
        p(row)
        bad = [f"{n} {per[n]['failures']}" for n in names if per[n]["failures"]]
        if bad:
            p(f"  failed runs in this batch (all rounds): {', '.join(bad)}")
    p()
    hdr = f"{'per run':22}" + "".join(f"{n:>16}" for n in names) + "".join(f"{'ours/' + o:>12}" for o in others)
    p(hdr)
    p("-" * len(hdr))
    for key, label in (("run_peak_rss_mib", "peak RSS MiB"), ("run_cpu_ms", "CPU ms (user+sys)")):
        per = results[key]
        row = f"{label:22}" + "".join(f"{fmt(per[n] and per[n]['median']):>16}" for n in names)
        for o in others:
            row += f"{fmt(ratio(per['ours'] and per['ours']['median'], per[o] and per[o]['median']), 2):>12}"
        p(row)
    p(f"  peak RSS: median of {TIME} -f %M over `run` (max RSS over the runtime's process tree,")
    p(f"  including the container's `true`; busybox `true` alone: {fmt(results['busybox_true_rss_mib'])} MiB)."
      f" CPU: user+sys of the tree.")
    w = results.get("crun_wrapper")
    if w:
        p(f"  crun ran in one private mount namespace (cgroup2 at {UNIFIED} unmounted), entered by")
        p(f"  setns() before each spawn: no per-call wrapper in its times. The per-call wrapper")
        p(f"  (unshare -m + sh + umount) would add {fmt(w['overhead_ms'])} ms"
          f" (wrapped /bin/true {fmt(w['wrapped_true_ms'])} ms vs bare {fmt(w['bare_true_ms'])} ms).")
    p()
    p("summary (targets from DESIGN.md; this script only reports):")
    v = results["verbs"]
    for verb in ("run", "create", "start", "state", "delete"):
        r = ratio(v[verb]["ours"] and v[verb]["ours"]["median"], v[verb]["runc"] and v[verb]["runc"]["median"]) \
            if "runc" in v[verb] else None
        tgt = "<= 1.0" if verb == "run" else "<= 1.5"
        p(f"  {verb}: ours/runc = {fmt(r, 2)} (target {tgt})")
        results["summary"][verb] = {"ours_over_runc": r, "target": tgt}
    for key, label in (("1_at_a_time", "throughput 1 at a time"), ("4_at_a_time", "throughput 4 at a time")):
        per = results["throughput_cps"][key]
        r = ratio(per["ours"]["median"], per.get("runc", {}).get("median"))
        p(f"  {label}: ours/runc = {fmt(r, 2)} (target >= 1.0)")
        results["summary"][f"throughput_{key}"] = {"ours_over_runc": r, "target": ">= 1.0"}
    per = results["run_peak_rss_mib"]
    r = ratio(per["ours"] and per["ours"]["median"], per.get("runc") and per["runc"]["median"])
    p(f"  peak RSS of run: ours/runc = {fmt(r, 2)} (target < 1.0)")
    results["summary"]["peak_rss"] = {"ours_over_runc": r, "target": "< 1.0"}


def print_errors(b, leaks, interrupted=False):
    if b.errors:
        print()
        print("runtime errors / stderr output seen (verbatim; one example per kind, with its count):")
        if interrupted:
            print("  (interrupted run: Ctrl-C also reaches the runtimes, so the last errors may be its doing)")
        groups = {}
        order = {"ours": 0}
        for name, verb, status, text in b.errors:
            lines = text.splitlines() or [f"(exit status {status}, nothing on stderr)"]
            for line in lines:
                key = (order.get(name, 1), name, verb, _normalize(line))
                if key in groups:
                    groups[key][0] += 1
                else:
                    groups[key] = [1, line]
        for (_, name, verb, _), (count, line) in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[1][0])):
            print(f"  [{name}] {verb} ({count}x): {line}")
    benchlib.print_leaks(leaks, "left behind by the runtimes (the bench removed them):")


def _normalize(text):
    return benchlib.normalize(text, (r"rb\d+-[\w.-]+", "<id>"))


# --------------------------------------------------------------------------
# Cleanup

def find_cgroups(prefix):
    found = []
    base = "/sys/fs/cgroup"
    for top in sorted(os.listdir(base)):
        start = os.path.join(base, top)
        if not os.path.isdir(start) or os.path.islink(start):
            continue
        depth0 = start.count("/")
        for dirpath, dirnames, _ in os.walk(start):
            for d in dirnames:
                if d.startswith(prefix + "-"):
                    found.append(os.path.join(dirpath, d))
            dirnames[:] = [d for d in dirnames if not d.startswith(prefix + "-")]
            if dirpath.count("/") - depth0 >= 4:
                dirnames[:] = []
    return found


def our_children():
    me = os.getpid()
    kids = []
    for pid in benchlib.proc_pids():
        try:
            rest = stat_fields(pid)
            if int(rest[1]) == me and rest[0] not in (b"Z", b"X"):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                kids.append((pid, cmd[:120]))
        except (OSError, IndexError, ValueError):
            pass
    return kids


def cleanup(b, rts, ids, tmp):
    """Delete every container we made, then check and repair leftovers.
    Returns descriptions of what the runtimes left behind."""
    leaks = []
    benchlib.ignore_signals()
    try:
        setns(b.host_ns)
        os.chdir("/")
    except OSError:
        pass
    # Runtime processes still running (interrupted): give them a moment.
    deadline = time.monotonic() + 10
    while b.inflight and time.monotonic() < deadline:
        b.reap_nohang()
        time.sleep(0.01)
    for pid in list(b.inflight):
        kill_all([pid])
        b.wait(pid)
    for rt in rts:
        ids_left = set(rt.live)
        listed = set()
        try:
            r = _capture(b, rt, ["list", "-q"])
            listed = {l.strip() for l in r.splitlines() if l.strip()}
        except Exception:
            pass
        unexpected = listed - ids_left
        if unexpected:
            leaks.append(f"[{rt.name}] {len(unexpected)} container(s) still listed in --root after "
                         f"the runtime reported success: {', '.join(sorted(unexpected)[:5])}")
        # A tracked id whose create/run failed may not exist at all: its
        # "does not exist" error is not worth reporting.
        for cid in sorted(ids_left | listed):
            b.call(rt, "cleanup delete --force", ["delete", "--force", cid], record=cid in listed)
        b.reap_nohang()
    time.sleep(0.05)
    b.reap_nohang()
    # Processes and cgroups named after our container ids.
    pids = benchlib.pids_in_cgroups(f"/{ids.prefix}-")
    if pids:
        leaks.append(f"{len(pids)} process(es) still in cgroups named after our containers: {pids[:10]} (killed)")
        kill_all(pids)
        time.sleep(0.1)
        b.reap_nohang()
    cgs = find_cgroups(ids.prefix)
    if cgs:
        by_rt = {}
        for path in cgs:
            name = os.path.basename(path).split("-")[1]
            by_rt.setdefault(name, []).append(path)
        for name, paths in sorted(by_rt.items()):
            leaks.append(f"[{name}] {len(paths)} cgroup dir(s) left, e.g. {paths[0]}")
        for path in sorted(cgs, key=lambda p: -p.count("/")):
            for dirpath, dirnames, _ in os.walk(path, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    leaks.append(f"could not remove {dirpath}: {e}")
    # Mounts under our temp dir in the host mount namespace.
    mnts = benchlib.mounts_under(tmp)
    if mnts:
        leaks.append(f"{len(mnts)} mount(s) under {tmp} in the host namespace, e.g. {mnts[0]} (unmounted)")
        benchlib.unmount_all(mnts)
    # Anything of ours still alive is our child: we are a subreaper, so every
    # orphan of a runtime we ran (e.g. an init whose `create` was interrupted)
    # was handed to us.
    deadline = time.monotonic() + 2
    kids = []
    while time.monotonic() < deadline:
        b.reap_nohang()
        kids = our_children()
        if not kids:
            break
        time.sleep(0.02)
    if kids:
        leaks.append(f"{len(kids)} orphaned process(es) left: "
                     + "; ".join(f"{pid} {cmd}" for pid, cmd in kids[:5]) + " (killed)")
        kill_all(pid for pid, _ in kids)
        deadline = time.monotonic() + 5
        while our_children() and time.monotonic() < deadline:
            b.reap_nohang()
            time.sleep(0.01)
        b.reap_nohang()
    for rt in rts:
        if rt.mntns_fd is not None:
            os.close(rt.mntns_fd)
            rt.mntns_fd = None
        if rt.stderr_fd is not None:
            os.close(rt.stderr_fd)
    b.reap_nohang()
    shutil.rmtree(tmp, ignore_errors=True)
    return leaks


def _capture(b, rt, args):
    """Run a runtime command; its stdout as text."""
    r, w = os.pipe()
    try:
        pid = b.spawn(rt, args, stdout=w)
    finally:
        os.close(w)
    chunks = []
    while True:
        data = os.read(r, 65536)
        if not data:
            break
        chunks.append(data)
    os.close(r)
    b.wait(pid)
    return b"".join(chunks).decode(errors="replace")


# --------------------------------------------------------------------------

def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--runs", type=int, help="samples per verb per runtime (default 100, --quick 10)")
    ap.add_argument("--quick", action="store_true", help="fewer samples, smaller batches (~15 s)")
    ap.add_argument("--containers", type=int, help="containers per throughput batch (default 50, --quick 20)")
    ap.add_argument("--rounds", type=int, help="throughput rounds per runtime (default 3, --quick 1)")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    ap.add_argument("--ours", metavar="PATH", default=os.path.join(REPO, ".venv", "bin", "runpy-oci"),
                    help="our runtime (default: .venv/bin/runpy-oci of this repo)")
    ap.add_argument("--runc", metavar="PATH", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--crun", metavar="PATH", default=shutil.which("crun") or "/usr/bin/crun")
    ap.add_argument("--only", help="comma-separated subset of ours,runc,crun (ours is always kept)")
    args = ap.parse_args()
    args.runs = args.runs or (10 if args.quick else 100)
    args.containers = args.containers or (20 if args.quick else 50)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warmup = 3 if args.quick else 5
    if args.json:
        args.json = os.path.abspath(args.json)
    if os.geteuid() != 0:
        sys.exit("runtime.py: must run as root")
    if not os.path.exists(args.ours):
        sys.exit(f"runtime.py: {args.ours} missing (run: bash scripts/setup.sh)")
    wanted = ["ours", "runc", "crun"]
    if args.only:
        wanted = ["ours"] + [n for n in ("runc", "crun") if n in args.only.split(",")]

    # Termination by SIGTERM/SIGHUP behaves like Ctrl-C: cleanup still runs.
    benchlib.interrupt_on(signal.SIGTERM, signal.SIGHUP)
    # Container inits orphaned by `create`/`run -d` come to us to be reaped,
    # as they would to a containerd shim.
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")

    tmp = tempfile.mkdtemp(prefix="bench-runtime-")
    os.chdir("/")
    b = Bench(tmp)
    ids = Ids()
    rts = []
    leaks = []
    results = {"host": benchlib.host_facts(hybrid_cgroups=host_has_unified()),
               "runs": args.runs, "containers": args.containers, "rounds": args.rounds,
               "warmup": args.warmup, "versions": {}, "summary": {}}
    rc = 0
    try:
        true_b, sleep_b, results["bundle_readonly"] = make_bundles(tmp)
        binaries = {"ours": args.ours, "runc": args.runc, "crun": args.crun}
        for name in wanted:
            ns = None
            if name == "crun" and results["host"]["hybrid_cgroups"]:
                ns = private_mntns_without_unified()
            rt = Runtime(name, binaries[name], os.path.join(tmp, f"root-{name}"), ns)
            rt.stderr_path = os.path.join(tmp, f"stderr-{name}.log")
            rt.stderr_fd = os.open(rt.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            results["versions"][name] = benchlib.version([rt.binary, "--version"], timeout=10)
            rts.append(rt)
        bench_all(args, b, rts, true_b, sleep_b, ids, results)
        results["host"]["loadavg_end"] = loadavg()
    except KeyboardInterrupt:
        rc = benchlib.interrupted()
    except Exception:
        rc = benchlib.failed()
    finally:
        leaks = cleanup(b, rts, ids, tmp)
    if rc == 0:
        report(args, rts, results)
    results["errors"] = [{"runtime": n, "verb": v, "status": s, "stderr": t} for n, v, s, t in b.errors]
    return benchlib.end_run(rc, results, leaks, lambda leaks, intr: print_errors(b, leaks, intr), args.json)


if __name__ == "__main__":
    sys.exit(main())
