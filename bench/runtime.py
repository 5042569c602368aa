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
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import benchlib
import benchsys
from benchlib import Table, cell, fmt, log, med, ours_over, print_target, rotate, side_by_side

MAKE_BUNDLE = os.path.join(benchlib.REPO, "bundles", "make-busybox-bundle.sh")
UNIFIED = "/sys/fs/cgroup/unified"
TIME = "/usr/bin/time"   # GNU time (Debian package `time`), for peak RSS


class Runtime:
    """One runtime of the comparison: its binary, its own --root, and a log file for its stderr."""

    def __init__(self, name, binary, tmp, mntns_fd=None):
        self.name, self.binary = name, binary
        self.root = os.path.join(tmp, f"root-{name}")
        self.mntns_fd = mntns_fd   # crun on a hybrid host: its private mount ns
        self.live = set()          # ids that may exist in this runtime's root
        self.stderr_path = os.path.join(tmp, f"stderr-{name}.log")
        self.stderr_fd = os.open(self.stderr_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def argv(self, *args):
        return [self.binary, "--root", self.root, *args]

    def stderr_size(self):
        return os.fstat(self.stderr_fd).st_size

    def stderr_since(self, off):
        """What it wrote on stderr since the log was off bytes long."""
        with open(self.stderr_path, "rb") as f:
            f.seek(off)
            return f.read().decode(errors="replace").strip()


class RuntimeBench(benchlib.Bench):
    name = "runtime"
    counts = {"runs": (100, 10, "samples per verb per runtime"),
              "containers": (50, 20, "containers per throughput batch"),
              "rounds": (3, 1, "throughput rounds per runtime"),
              "warmup": (5, 3, "warm-up runs per runtime")}
    error_keys = ("runtime", "verb", "status", "stderr")
    error_title = "runtime errors / stderr output seen"
    error_subs = ((r"rb\d+-[\w.-]+", "<id>"),)
    every_error_line = True
    leaks_title = "left behind by the runtimes (the bench removed them):"
    tools = (("ours", os.path.join(benchlib.VENV_BIN, "runpy-oci"), "our runtime"),
             ("runc", shutil.which("runc") or "/usr/sbin/runc", None),
             ("crun", shutil.which("crun") or "/usr/bin/crun", None))

    @classmethod
    def add_options(cls, ap):
        ap.add_argument("--only", help="comma-separated subset of ours,runc,crun (ours is always kept)")

    @classmethod
    def needs(cls, args):
        return [need for need in super().needs(args) if need[0] in wanted(args)]

    def __init__(self, args):
        super().__init__(args)
        self.kids = benchsys.Children()
        self.prefix, self.n = f"rb{os.getpid()}", 0
        self.rts = []
        self.results["host"]["hybrid_cgroups"] = host_has_unified()
        self.results.update(runs=args.runs, containers=args.containers, rounds=args.rounds, warmup=args.warmup)

    def call(self, rt, verb, args, wrap=(), record=True):
        """Run one runtime command; returns (ok, ms, rusage)."""
        off = rt.stderr_size()
        status, ms, ru = self.kids.run([*wrap, *rt.argv(*args)], stderr=rt.stderr_fd, mntns=rt.mntns_fd)
        if record and (status != 0 or rt.stderr_size() != off):
            self.error(rt.name, verb, status, rt.stderr_since(off))
        return status == 0, ms, ru

    def new_id(self, rt, tag):
        """A container id carrying the runtime's name, tracked until it is deleted."""
        self.n += 1
        cid = f"{self.prefix}-{rt.name}-{tag}{self.n}"
        rt.live.add(cid)
        return cid

    # -- set-up ---------------------------------------------------------------
    def setup(self):
        self.true_b, self.sleep_b, self.results["bundle_readonly"] = make_bundles(self.tmp)
        for name in wanted(self.args):
            ns = None
            if name == "crun" and self.results["host"]["hybrid_cgroups"]:
                ns = private_mntns_without_unified()
            rt = Runtime(name, getattr(self.args, name), self.tmp, ns)
            self.results["versions"][name] = benchsys.version([rt.binary, "--version"], timeout=10)
            self.rts.append(rt)

    # -- the samples ----------------------------------------------------------
    def one_run(self, rt, tag="r", wrap=()):
        """One foreground `run` of true: {"ms", "cpu_ms"}, or None if it failed."""
        cid = self.new_id(rt, tag)
        ok, ms, ru = self.call(rt, "run", ["run", "-b", self.true_b, cid], wrap=wrap)
        if not ok:
            return None
        rt.live.discard(cid)
        return {"ms": ms, "cpu_ms": (ru.ru_utime + ru.ru_stime) * 1000}

    def lifecycle(self, rt):
        """create, start, wait for exit, delete: times of the three verbs."""
        cid = self.new_id(rt, "c")
        pidfile = os.path.join(self.tmp, f"{cid}.pid")
        out = {}
        ok, out["create"], _ = self.call(rt, "create", ["create", "-b", self.true_b, "--pid-file", pidfile, cid])
        if not ok:
            return None
        init = read_int(pidfile)
        os.unlink(pidfile)
        ok, out["start"], _ = self.call(rt, "start", ["start", cid])
        if not ok:
            return None
        if init and not self.kids.wait_gone(init):
            return None
        ok, out["delete"], _ = self.call(rt, "delete", ["delete", cid])
        if not ok:
            return None
        rt.live.discard(cid)
        return out

    def states(self):
        """`state` of a running sleep container, after 3 warm-up rounds."""
        sleepers = {}
        for rt in self.rts:
            cid = self.new_id(rt, "s")
            if self.call(rt, "run -d", ["run", "-d", "-b", self.sleep_b, cid])[0]:
                sleepers[rt.name] = cid

        def state(rt):
            if rt.name in sleepers:
                ok, ms, _ = self.call(rt, "state", ["state", sleepers[rt.name]])
                return ms if ok else None
        side_by_side(self.rts, 3, state)
        samples = side_by_side(self.rts, self.args.runs, state)
        for rt in self.rts:
            cid = sleepers.get(rt.name)
            if cid and self.call(rt, "delete --force", ["delete", "--force", cid])[0]:
                rt.live.discard(cid)
        return samples

    def throughput(self, rt, n, parallel):
        """n foreground runs with `parallel` in flight; (containers/s, failures)."""
        pending, running, failures = n, {}, 0
        off = rt.stderr_size()
        t0 = time.perf_counter()
        while pending or running:
            while pending and len(running) < parallel:
                cid = self.new_id(rt, f"t{parallel}-")
                argv = rt.argv("run", "-b", self.true_b, cid)
                running[self.kids.spawn(argv, stderr=rt.stderr_fd, mntns=rt.mntns_fd)[0]] = cid
                pending -= 1
            self.kids.reap_one(True)
            for pid in [p for p in running if p in self.kids.reaped]:
                status, _, _ = self.kids.reaped.pop(pid)
                cid = running.pop(pid)
                if os.waitstatus_to_exitcode(status) == 0:
                    rt.live.discard(cid)
                else:
                    failures += 1
        dt = time.perf_counter() - t0
        done = n - failures
        if rt.stderr_size() != off or failures:
            self.error(rt.name, f"run x{n} ({parallel} at a time)", f"{failures} failed", rt.stderr_since(off))
        return (done / dt if done else None), failures

    def measure(self):
        a, rts, R = self.args, self.rts, self.results
        log(f"warm-up ({a.warmup} runs + 1 lifecycle each) ...")
        side_by_side(rts, a.warmup, lambda rt: self.one_run(rt, "w"))
        for rt in rts:
            self.lifecycle(rt)
        log(f"run x{a.runs} per runtime (interleaved) ...")
        runs = side_by_side(rts, a.runs, self.one_run)
        log(f"create/start/delete x{a.runs} per runtime (interleaved) ...")
        verbs = side_by_side(rts, a.runs, self.lifecycle)
        log(f"state x{a.runs} per runtime on a running sleep container ...")
        states = self.states()
        R["verbs"] = {"run": self.summaries(runs, "ms"), "create": self.summaries(verbs, "create"),
                      "start": self.summaries(verbs, "start"), "state": self.summaries(states),
                      "delete": self.summaries(verbs, "delete")}
        R["run_cpu_ms"] = self.summaries(runs, "cpu_ms")
        R["throughput_cps"] = self.throughputs()
        R["run_peak_rss_mib"], R["busybox_true_rss_mib"] = self.peak_rss()
        R["crun_wrapper"] = self.wrapper_cost()

    def throughputs(self):
        a, names = self.args, [rt.name for rt in self.rts]
        log(f"throughput: {a.containers} runs, 1 and 4 at a time, {a.rounds} round(s) ...")
        tput = {p: {n: [] for n in names} for p in (1, 4)}
        tfail = {p: {n: 0 for n in names} for p in (1, 4)}
        for r in range(a.rounds):
            for p in (1, 4):
                for rt in rotate(self.rts, r):
                    cps, failed = self.throughput(rt, a.containers, p)
                    if cps is not None:
                        tput[p][rt.name].append(cps)
                    tfail[p][rt.name] += failed
        return {f"{p}_at_a_time": {n: {"median": statistics.median(tput[p][n]) if tput[p][n] else None,
                                       "rounds": tput[p][n], "failures": tfail[p][n]} for n in names}
                for p in (1, 4)}

    def peak_rss(self):
        """Peak RSS of `run` per runtime, and of busybox `true` alone, in MiB.
        ru_maxrss of a process we spawn ourselves is useless: exec() records
        the high-water RSS of the mm it replaces, which for a child of this
        Python process is ~this process's RSS. GNU time forks from its own
        small mm, so its %M (wait4's ru_maxrss of its child) is the max over
        the runtime's process tree only."""
        if not os.access(TIME, os.X_OK):
            log(f"peak RSS: skipped, {TIME} missing (apt-get install time)")
            return self.summaries({rt.name: [] for rt in self.rts}), None
        rss_n = max(5, self.args.runs // 5)
        log(f"peak RSS: run x{rss_n} per runtime under {TIME} -f %M ...")
        out = os.path.join(self.tmp, "time.out")
        wrap = (TIME, "-f", "%M", "-o", out)

        def rss(rt):
            if os.path.exists(out):
                os.unlink(out)
            ok = self.one_run(rt, "m", wrap=wrap)
            kib = read_int(out)
            return kib / 1024 if ok and kib else None
        runs = side_by_side(self.rts, rss_n, rss)
        busybox = os.path.join(self.true_b, "rootfs", "bin", "busybox")
        floor = []
        for _ in range(5):
            self.kids.run([TIME, "-f", "%M", "-o", out, busybox, "true"])
            floor.append(read_int(out) / 1024)
        return self.summaries(runs), statistics.median(floor)

    def wrapper_cost(self):
        """What a per-call `unshare -m` wrapper would add to crun's times (None if crun needs none)."""
        if not any(rt.mntns_fd is not None for rt in self.rts):
            return None
        wr = [shutil.which("unshare") or "/usr/bin/unshare", "-m", "--propagation", "private", "sh", "-c",
              f'umount {UNIFIED}; exec "$@"', "sh", "/bin/true"]
        bare, wrapped = [], []
        for _ in range(max(10, self.args.runs // 3)):
            bare.append(self.kids.run(["/bin/true"])[1])
            wrapped.append(self.kids.run(wr)[1])
        w = {"bare_true_ms": statistics.median(bare), "wrapped_true_ms": statistics.median(wrapped)}
        w["overhead_ms"] = w["wrapped_true_ms"] - w["bare_true_ms"]
        return w

    # -- report -----------------------------------------------------------------
    def report(self):
        a, R = self.args, self.results
        names = [rt.name for rt in self.rts]
        others = names[1:]
        ratios = ["ours/" + o for o in others]
        benchlib.print_head("runtime", R["host"], f"{a.runs} samples per verb, warm-up {a.warmup}, ", R["elapsed_s"],
                            " (other work on the machine adds noise to all runtimes alike: samples are interleaved)")
        for rt in self.rts:
            print(f"  {rt.name:5} {rt.binary}  ({R['versions'][rt.name]})")
        print(f"  bundle: busybox, `runc spec` config, args [\"true\"], root.readonly={R['bundle_readonly']}")
        print("  times: wall ms of the runtime process (spawn to reap), median [p25-p75]")
        print()
        table = Table("", 10, [n + " ms" for n in names], 22, ratios)
        short = []
        for v, per in R["verbs"].items():
            cells = []
            for n in names:
                got = per[n]["n"] if per[n] else 0
                cells.append(cell(per[n], 1, spread_of_one=True) + ("*" if got < a.runs else ""))
                if got < a.runs:
                    short.append(f"{n} {v} {got}/{a.runs}")
            table.row(v, cells, ours_over(per, others))
        if short:
            print(f"  * failed samples (successful/attempted): {', '.join(short)}; see the errors below")
        print()
        table = Table("throughput", 22, [n + " c/s" for n in names], 12, ratios)
        for key in ("1_at_a_time", "4_at_a_time"):
            per = R["throughput_cps"][key]
            table.row(f"{a.containers} runs, {key[0]} at a time", [fmt(med(per[n])) for n in names],
                      ours_over(per, others))
            bad = [f"{n} {per[n]['failures']}" for n in names if per[n]["failures"]]
            if bad:
                print(f"  failed runs in this batch (all rounds): {', '.join(bad)}")
        print()
        table = Table("per run", 22, names, 16, ratios)
        for key, label in (("run_peak_rss_mib", "peak RSS MiB"), ("run_cpu_ms", "CPU ms (user+sys)")):
            table.row(label, [fmt(med(R[key][n])) for n in names], ours_over(R[key], others))
        print(f"  peak RSS: median of {TIME} -f %M over `run` (max RSS over the runtime's process tree,")
        print(f"  including the container's `true`; busybox `true` alone: {fmt(R['busybox_true_rss_mib'])} MiB)."
              f" CPU: user+sys of the tree.")
        w = R["crun_wrapper"]
        if w:
            print(f"  crun ran in one private mount namespace (cgroup2 at {UNIFIED} unmounted), entered by")
            print("  setns() before each spawn: no per-call wrapper in its times. The per-call wrapper")
            print(f"  (unshare -m + sh + umount) would add {fmt(w['overhead_ms'])} ms"
                  f" (wrapped /bin/true {fmt(w['wrapped_true_ms'])} ms vs bare {fmt(w['bare_true_ms'])} ms).")
        print()
        print("summary (targets from DESIGN.md; this script only reports):")
        targets = [(f"{verb}:", verb, R["verbs"][verb], "<= 1.0" if verb == "run" else "<= 1.5")
                   for verb in ("run", "create", "start", "state", "delete")]
        targets += [(f"throughput {key[0]} at a time:", f"throughput_{key}", R["throughput_cps"][key], ">= 1.0")
                    for key in ("1_at_a_time", "4_at_a_time")]
        targets.append(("peak RSS of run:", "peak_rss", R["run_peak_rss_mib"], "< 1.0"))
        for label, key, per, target in targets:
            r = ours_over(per, ["runc"])[0]
            print_target(label, "runc", r, target)
            R["summary"][key] = {"ours_over_runc": r, "target": target}

    # -- cleanup ----------------------------------------------------------------
    def cleanup(self):
        """Delete every container we made, then check and repair leftovers.
        Returns descriptions of what the runtimes left behind."""
        leaks = []
        self.kids.settle()
        for rt in self.rts:
            listed = set()
            try:
                listed = set(self.kids.capture(rt.argv("list", "-q"), stderr=rt.stderr_fd, mntns=rt.mntns_fd).split())
            except Exception:
                pass
            unexpected = listed - rt.live
            if unexpected:
                leaks.append(f"[{rt.name}] {len(unexpected)} container(s) still listed in --root after "
                             f"the runtime reported success: {', '.join(sorted(unexpected)[:5])}")
            # A tracked id whose create/run failed may not exist at all: its
            # "does not exist" error is not worth reporting.
            for cid in sorted(rt.live | listed):
                self.call(rt, "cleanup delete --force", ["delete", "--force", cid], record=cid in listed)
            self.kids.reap_nohang()
        time.sleep(0.05)
        self.kids.reap_nohang()
        # Processes and cgroups named after our container ids.
        pids = benchsys.pids_in_cgroups(f"/{self.prefix}-")
        if pids:
            leaks.append(f"{len(pids)} process(es) still in cgroups named after our containers: {pids[:10]} (killed)")
            benchsys.kill_all(pids)
            time.sleep(0.1)
            self.kids.reap_nohang()
        cgs = benchsys.find_cgroups(self.prefix)
        by_rt = {}
        for path in cgs:
            by_rt.setdefault(os.path.basename(path).split("-")[1], []).append(path)
        for name, paths in sorted(by_rt.items()):
            leaks.append(f"[{name}] {len(paths)} cgroup dir(s) left, e.g. {paths[0]}")
        leaks += [f"could not remove {kept}" for kept in benchsys.remove_cgroups(cgs)]
        leaks += self.kids.kill_orphans()
        for rt in self.rts:
            if rt.mntns_fd is not None:
                os.close(rt.mntns_fd)
            os.close(rt.stderr_fd)
        return leaks + benchsys.remove_tmp(self.tmp)


def wanted(args):
    """The runtimes to compare: ours, and runc and crun unless --only leaves one out."""
    return ["ours"] + [n for n in ("runc", "crun") if not args.only or n in args.only.split(",")]


def read_int(path):
    """The number in a file (a pid file, GNU time's output), or 0."""
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def make_bundles(tmp):
    """Bundles of `true` and `sleep 3600` on one busybox rootfs; (true, sleep, root.readonly)."""
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


if __name__ == "__main__":
    sys.exit(RuntimeBench.main(__doc__))
