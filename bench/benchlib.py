"""The skeleton every benchmark script in bench/ is built on (`Bench`: the
options, the phases of a run, timed client commands, the errors and the
end of a run) and what its report is made of (statistics, table cells,
tables of ratios, host facts). Python 3.11 standard library only; what a
bench reads from and does to the system is in benchsys.py. How a script is
built on it: bench/README.md, "A new bench script".

The scripts import it as `import benchlib`: Python puts a script's own
directory first on sys.path, so this works from any working directory.
"""
import argparse
import collections
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import benchsys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.join(REPO, ".venv", "bin")
COMMAND_TIMEOUT = 120  # seconds for one client command; only guards against a hang
# The tools of a bench against real containerd (see Bench.tools): the Python
# that runs our daemon, containerd and its client.
CONTAINERD_TOOLS = (
    ("python", os.path.join(VENV_BIN, "python"), "the Python that runs our daemon"),
    ("containerd", shutil.which("containerd") or "/usr/bin/containerd", None),
    ("ctr", shutil.which("ctr") or "/usr/bin/ctr", None))
# a local registry to pull from, and what fills it
REGISTRY_TOOLS = (
    ("registry", "/usr/bin/docker-registry", "docker-registry"),
    ("skopeo", shutil.which("skopeo") or "/usr/bin/skopeo", None))


def log(msg=""):
    """Progress on stderr (the tables go to stdout)."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Statistics, table cells and tables

def summary(xs, method="exclusive"):
    """n, median, p25, p75, min, max and the samples (None entries dropped);
    None if there are none. `method` is that of statistics.quantiles."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    s = sorted(xs)
    q = statistics.quantiles(s, n=4, method=method) if len(s) > 1 else [s[0]] * 3
    return {"n": len(s), "median": statistics.median(s), "p25": q[0], "p75": q[2],
            "min": s[0], "max": s[-1], "samples": [round(x, 3) for x in xs]}


def med(s):
    """The median of a summary, or None."""
    return s.get("median") if s else None


def ratio(a, b):
    """a / b, or None if either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def ours_over(per, others):
    """ours/other of the medians in per ({name: summary}), for each of others."""
    return [ratio(med(per.get("ours")), med(per.get(o))) for o in others]


def fmt(x, nd=1):
    """x with nd decimals, or "-"."""
    return "-" if x is None else f"{x:.{nd}f}"


def cell(s, nd=0, failed=0, spread_of_one=False):
    """A table cell "median [p25-p75]" of a summary ("failed" for None), with
    a "*" when some samples failed; a single sample shows alone unless
    spread_of_one."""
    if s is None:
        return "failed"
    star = "*" if failed else ""
    if s["n"] == 1 and not spread_of_one:
        return fmt(s["median"], nd) + star
    return f"{fmt(s['median'], nd)} [{fmt(s['p25'], nd)}-{fmt(s['p75'], nd)}]{star}"


class Table:
    """A table on stdout: a title over the label column, value columns and
    ratio columns (two decimals), right-aligned, under a rule as wide."""

    def __init__(self, title, width, headings, cell_width, ratio_headings=(), ratio_width=12):
        self.width, self.cell_width, self.ratio_width = width, cell_width, ratio_width
        hdr = (f"{title:{width}}" + "".join(f"{h:>{cell_width}}" for h in headings)
               + "".join(f"{h:>{ratio_width}}" for h in ratio_headings))
        print(hdr)
        print("-" * len(hdr))

    def row(self, label, cells, ratios=()):
        """One row: cells as given, ratios as numbers (or strings, shown as they are)."""
        print(f"{label:{self.width}}" + "".join(f"{c:>{self.cell_width}}" for c in cells)
              + "".join(f"{r if isinstance(r, str) else fmt(r, 2):>{self.ratio_width}}" for r in ratios))


def print_target(label, versus, r, target):
    """A line of a report's summary: ours/versus against the project's target."""
    print(f"  {label} ours/{versus} = {fmt(r, 2)} (target {target})")


def normalize(text, *subs):
    """text with the (pattern, replacement) subs applied, then timestamps and
    numbers blanked: the key that groups alike error lines."""
    for pattern, repl in subs:
        text = re.sub(pattern, repl, text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z?", "<time>", text)
    return re.sub(r"\b\d+\b", "<n>", text)


# --------------------------------------------------------------------------
# Side by side: interleaved samples

def rotate(seq, i):
    """seq started at its (i mod len)-th item: round i of an interleaved
    loop, so every item takes its turn first (for two, they alternate)."""
    i %= len(seq)
    return seq[i:] + seq[:i]


def side_by_side(items, rounds, measure, progress=0):
    """measure(item) for each item, in `rounds` rounds whose order rotates,
    so load from elsewhere and warm caches hit every item alike; returns
    {item.name: [what measure returned, round by round]}. With progress,
    says so on stderr every `progress` rounds."""
    out = {item.name: [] for item in items}
    for i in range(rounds):
        for item in rotate(items, i):
            out[item.name].append(measure(item))
        if progress and ((i + 1) % progress == 0 or i + 1 == rounds):
            log(f"  {i + 1}/{rounds}")
    return out


# --------------------------------------------------------------------------
# Host facts

def loadavg():
    """The 1, 5 and 15 minute load averages, as one string."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def host_facts(**extra):
    """CPUs, kernel, any extra facts, and the load average now."""
    return {"cpus": os.cpu_count(), "kernel": platform.release(), **extra, "loadavg_start": loadavg()}


def print_head(kind, host, details, elapsed_s, note):
    """The first lines of a report: a blank line, "KIND benchmark (host,
    details, time)" and the load average at the start and end, with a note."""
    print()
    print(f"{kind} benchmark  ({host['cpus']} CPUs, kernel {host['kernel']}, {details}{elapsed_s:.0f} s)")
    print(f"  load average at start {host['loadavg_start']}, at end {host['loadavg_end']}{note}")


# --------------------------------------------------------------------------
# Timed client commands

Result = collections.namedtuple("Result", "ok ms cpu_ms out")


def run_timed(argv, timeout=COMMAND_TIMEOUT):
    """Run argv with stdin on /dev/null, in a process group of its own (a
    Ctrl-C at the terminal reaches the bench only, which lets the commands
    of other threads finish); (exit status, wall ms from spawn to reap,
    user+sys CPU ms, stdout, stderr). Killed after timeout seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, process_group=0)
        try:
            pidfd = os.pidfd_open(p.pid)
            try:
                poll = select.poll()
                poll.register(pidfd, select.POLLIN)
                hung = not poll.poll(timeout * 1000)
            finally:
                os.close(pidfd)
            if hung:
                p.kill()
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            p.wait()
            raise
        t1 = time.perf_counter_ns()
        p.returncode = status = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, err_text = out.read().decode(errors="replace"), err.read().decode(errors="replace").strip()
    if hung:
        err_text += f"\n(bench: killed after {timeout} s)"
    return status, (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1000, text, err_text


# --------------------------------------------------------------------------
# The skeleton of a run

def interrupt_on(*signals):
    """Make these signals raise KeyboardInterrupt, so cleanup still runs."""
    def _interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in signals:
        signal.signal(sig, _interrupt)


class Bench:
    """A side-by-side benchmark. A script subclasses it: it names itself,
    declares its options, and fills in the phases: setup() starts what it
    compares, measure() takes the samples into self.results, report()
    prints the tables, cleanup() removes what the run made and returns what
    was left behind. main() parses the arguments and checks the host; run()
    calls the phases in order and always cleans up, also after a failure,
    Ctrl-C, SIGTERM or SIGHUP."""

    name = "bench"          # runtime, tasks, pull: names the script and its temporary directory
    counts = {}             # option: (default, with --quick, help): the counts --quick makes smaller
    tools = ()              # (option, default path, help): the executables the run needs
    quantiles = "exclusive"  # the method of statistics.quantiles for p25 and p75
    error_keys = ("daemon", "what", "status", "output")  # of an error in the JSON
    error_title = "errors seen"
    error_subs = ()         # (pattern, replacement): what makes alike error lines one kind
    error_width = None      # characters of an error line shown
    every_error_line = False  # group every line of a failed command's output, not just its last
    leaks_title = "left behind (the bench removed them):"

    @classmethod
    def add_options(cls, ap):
        """The script's own options (--quick, --json, the counts and the tools are there already)."""

    @classmethod
    def needs(cls, args):
        """(what, path) of the executables the run needs: the tools."""
        return [(opt, getattr(args, opt.replace("-", "_"))) for opt, _, _ in cls.tools]

    @classmethod
    def main(cls, doc):
        """Parse the arguments (described by doc's first paragraph), check the
        host, run; the exit status."""
        ap = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
        ap.add_argument("--quick", action="store_true", help="fewer samples, smaller batches (a smoke test)")
        for opt, (full, quick, text) in cls.counts.items():
            ap.add_argument("--" + opt.replace("_", "-"), dest=opt, type=int, metavar="N",
                            help=f"{text} (default {full}, --quick {quick})")
        ap.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
        for opt, default, text in cls.tools:
            ap.add_argument("--" + opt, metavar="PATH", default=default, help=f"{text or ''} (default {default})".lstrip())
        cls.add_options(ap)
        args = ap.parse_args()
        for opt, (full, quick, _) in cls.counts.items():
            if getattr(args, opt) is None:
                setattr(args, opt, quick if args.quick else full)
        if args.json:
            args.json = os.path.abspath(args.json)
        if os.geteuid() != 0:
            sys.exit(f"{cls.name}.py: must run as root")
        for what, path in cls.needs(args):
            if not os.access(path, os.X_OK):
                sys.exit(f"{cls.name}.py: {what} not found at {path} (run: bash scripts/setup.sh)")
        # Termination by SIGTERM/SIGHUP behaves like Ctrl-C: cleanup still runs.
        interrupt_on(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        os.chdir("/")
        return cls(args).run()

    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
        self.errors = []       # (who, what, exit status, output)
        self.services = []     # benchsys.Service: stopped by cleanup(), the last started first
        self.lock = threading.Lock()
        self.stop = threading.Event()   # set at cleanup: in_flight() starts no new call
        self.results = {"host": host_facts(), "versions": {}, "summary": {}}

    # -- the phases ---------------------------------------------------------
    def setup(self):
        """Make and start what the run compares."""

    def measure(self):
        """Take the samples into self.results."""

    def report(self):
        """Print the tables (only after a run that went through)."""

    def cleanup(self):
        """Remove what the run made; returns what was left behind, as lines."""
        return self.stop_services() + benchsys.remove_tmp(self.tmp)

    def run(self):
        """setup, measure, cleanup and report; the exit status (0, 1 failed, 130 interrupted)."""
        rc = 0
        try:
            self.setup()
            t0 = time.monotonic()
            self.measure()
            self.results["elapsed_s"] = time.monotonic() - t0
            self.results["host"]["loadavg_end"] = loadavg()
            log("cleaning up ...")
        except KeyboardInterrupt:
            log("\ninterrupted: cleaning up ...")
            rc = 130
        except Exception:
            traceback.print_exc()
            for svc in self.services:
                if not svc.alive():
                    log(f"{svc.name} log:\n{svc.log_tail()}")
            log("failed: cleaning up ...")
            rc = 1
        finally:
            # Nothing may cut a cleanup short.
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
            self.stop.set()
            leaks = self.cleanup()
        if rc == 0:
            self.report()
        self.results["errors"] = [dict(zip(self.error_keys, (who, what, str(status), text)))
                                  for who, what, status, text in self.errors]
        self.results["leaks"] = leaks
        self.print_errors(leaks, rc == 130)
        if self.args.json and rc == 0:
            out = {k: v for k, v in self.results.items() if not k.startswith("_")}
            with open(self.args.json, "w") as f:
                json.dump(out, f, indent=2)
            print(f"\nresults written to {self.args.json}")
        return rc

    # -- helpers of the phases ------------------------------------------------
    def summary(self, xs):
        """summary() with this bench's quantiles."""
        return summary(xs, self.quantiles)

    def summaries(self, samples, key=None):
        """{name: summary} of side_by_side's samples: of the samples (s[key]
        with a key) of each that did not fail (None)."""
        return {name: self.summary([s if key is None else s[key] for s in xs if s is not None])
                for name, xs in samples.items()}

    def error(self, who, what, status, text):
        """Record an error (thread-safe), for the errors section and the JSON."""
        with self.lock:
            self.errors.append((who, what, status, text))

    def command(self, who, argv, what, note_stderr=False, check=True):
        """Run one client command of `who` (e.g. ctr against a daemon) with
        run_timed; a Result. A failure is recorded with what it printed
        (unless not check); with note_stderr, so is each line that a command
        that worked printed on stderr."""
        status, ms, cpu, out, err = run_timed(argv)
        ok = status == 0
        if check and not ok:
            self.error(who, what, status, err or out.strip())
        elif ok and note_stderr:
            for line in err.splitlines():
                self.error(who, f"{what}, exit 0, on stderr", 0, line)
        return Result(ok, ms, cpu, out)

    def in_flight(self, who, what, count, parallel, one):
        """Call one() count times with `parallel` calls in flight (threads);
        (wall seconds, failures: the calls that returned None). A call that
        raises (e.g. its daemon died) is recorded and makes the batch stop and
        raise. Interrupted, it lets the calls in flight finish (a client killed
        half-way would leave things behind) and starts no new one."""
        counter = iter(range(count))
        fails = []

        def worker():
            for _ in counter:
                if self.stop.is_set():
                    return
                try:
                    if one() is None:
                        fails.append(1)
                except Exception as e:
                    fails.append(1)
                    self.error(who, what, "-", repr(e))
                    self.stop.set()
        threads = [threading.Thread(target=worker) for _ in range(parallel)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except BaseException:
            self.stop.set()
            for t in threads:
                t.join()
            raise
        wall = time.perf_counter() - t0
        if self.stop.is_set():
            raise RuntimeError(f"{count} x {what} against {who} stopped (see the errors below)")
        return wall, len(fails)

    def stop_services(self):
        """Stop the services, the last started first; what went wrong, as leak lines."""
        return [line for svc in reversed(self.services) for line in svc.stop()]

    # -- the end of the report -------------------------------------------------
    def print_errors(self, leaks, interrupted):
        """The errors section, then what was left behind."""
        self.print_error_groups(interrupted)
        print_leaks(leaks, self.leaks_title)

    def print_error_groups(self, interrupted):
        """The errors: one example per (who, what, kind of line) with its
        count, ours first; the last line of each output, or every line."""
        if not self.errors:
            return
        print()
        print(f"{self.error_title} (verbatim; one example per kind, with its count):")
        if interrupted:
            print("  (interrupted run: the last errors may be the interruption's doing)")
        groups = {}
        for who, what, status, text in self.errors:
            lines = text.strip().splitlines() or [f"(exit status {status}, no output)"]
            for line in lines if self.every_error_line else lines[-1:]:
                key = (who != "ours", who, what, normalize(line, *self.error_subs))
                groups.setdefault(key, [0, line])[0] += 1
        for (_, who, what, _), (count, line) in sorted(groups.items()):
            print(f"  [{who}] {what} ({count}x): {line[:self.error_width]}")


def print_leaks(leaks, title, nothing=None):
    """A blank line, title and one indented line per leak; if there is none,
    the line nothing (or nothing at all)."""
    if leaks:
        print()
        print(title)
        for line in leaks:
            print(f"  {line}")
    elif nothing:
        print()
        print(nothing)


def print_log_groups(entries, subs):
    """The warnings and errors the daemons logged ((daemon, line) entries,
    see benchsys.warnings_logged): one example per message with its count,
    ours first; subs as in normalize()."""
    if not entries:
        return
    print()
    print("warnings and errors in the daemons' logs (one example per message, with its count):")
    groups = {}
    for name, line in entries:
        msg = log_message(line)
        groups.setdefault((name != "ours", name, normalize(msg, *subs)[:160]), [0, msg])[0] += 1
    for (_, name, _), (count, msg) in sorted(groups.items()):
        print(f"  [{name}] ({count}x): {msg[:300]}")


def log_message(line):
    """The gist of a logfmt line: `level: msg`, with the innermost non-info
    message of a nested record (containerd quotes its shims' logs in its own);
    of a Python traceback logged in one record, the message and the exception."""
    start = line.find("Traceback (most recent call last):")
    if start >= 0:
        level = re.search(r"level=(\w+)", line)
        head = line[:start].split('msg="', 1)[-1].strip()
        last = line[start:].rsplit("\\n", 1)[-1].rstrip('"').strip()
        return f"{level.group(1) if level else '?'}: {head} ... {last}"
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
