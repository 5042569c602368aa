"""What the benchmark scripts in bench/ share: statistics and table cells,
host facts, /proc and mount helpers, long-running daemons, signals and the
end of a run. Python 3.11 standard library only.

The scripts import it as `import benchlib`: Python puts a script's own
directory first on sys.path, so this works from any working directory.
"""
import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
import traceback

START_DEADLINE = 60  # seconds for a daemon to answer; only guards against a hang


def log(msg=""):
    """Progress on stderr (the tables go to stdout)."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Statistics and table cells

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
    return s["median"] if s else None


def ratio(a, b):
    """a / b, or None if either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return None
    return a / b


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


def rotate(seq, i):
    """seq started at its (i mod len)-th item: round i of an interleaved
    loop, so every item takes its turn first (for two, they alternate)."""
    i %= len(seq)
    return seq[i:] + seq[:i]


def normalize(text, *subs):
    """text with the (pattern, replacement) subs applied, then timestamps and
    numbers blanked: the key that groups alike error lines."""
    for pattern, repl in subs:
        text = re.sub(pattern, repl, text)
    text = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z?", "<time>", text)
    return re.sub(r"\b\d+\b", "<n>", text)


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


def version(argv, timeout=30):
    """The first line argv prints on stdout (e.g. [binary, "--version"]), or "?"."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL).stdout
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


# --------------------------------------------------------------------------
# /proc, processes and mounts

def proc_pids():
    """Every pid in /proc."""
    for ent in os.listdir("/proc"):
        if ent.isdigit():
            yield int(ent)


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (bytes): state,
    ppid, pgrp, session, ... Raises OSError or IndexError."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].split()


def pids_in_cgroups(needle):
    """Pids whose /proc/PID/cgroup contains needle."""
    out = []
    for pid in proc_pids():
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                text = f.read()
        except OSError:
            continue
        if needle in text:
            out.append(pid)
    return out


def kill_all(pids):
    """SIGKILL each pid (those already gone are skipped)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def mounts_under(path):
    """Mount points (of this mount namespace) at or below path."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path.rstrip("/") + "/")]


def unmount_all(mnts):
    """umount -l each mount point, deepest first."""
    for m in sorted(mnts, key=lambda p: -p.count("/")):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# Daemons: ours and real containerd

class Service:
    """A long-running process of a bench, in its own session, logging to a file in workdir."""

    def __init__(self, name, argv, workdir, env=None, log_name=None):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.log_path = os.path.join(workdir, log_name or f"{name}.log")
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def log_tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def check_alive(self):
        if not self.alive():
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM, then SIGKILL to its process group after 30 s; None, or how it went otherwise."""
        if self.proc.poll() is not None:
            return f"had already exited with {self.proc.returncode}"
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
            return None
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            return "did not stop within 30 s of SIGTERM (SIGKILLed)"


def write_containerd_config(workdir, address):
    """A config.toml in workdir for real containerd: root, state and sockets
    of its own there, CRI and tracing plugins off. Returns its path."""
    path = f"{workdir}/config.toml"
    with open(path, "w") as f:
        f.write(f"""version = 2
root = "{workdir}/root"
state = "{workdir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.tracing",
                    "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{address}"
[ttrpc]
  address = "{address}.ttrpc"
""")
    return path


def ctr_argv(ctr, daemon, ns, *args):
    """`ctr` against daemon's socket in namespace ns."""
    return [ctr, "--address", daemon.address, "--connect-timeout", "30s", "-n", ns, *args]


def wait_ready(ctr, daemon):
    """Wait until `ctr version` gets an answer from daemon (a Service with an
    address); raises if it exits or does not answer within START_DEADLINE."""
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        daemon.check_alive()
        if os.path.exists(daemon.address):
            r = subprocess.run([ctr, "--address", daemon.address, "version"], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=30)
            if r.returncode == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{daemon.name} did not answer on {daemon.address}:\n{daemon.log_tail()}")


# --------------------------------------------------------------------------
# A run: arguments, signals, failure, errors and results

def arg_parser(doc):
    """An ArgumentParser described by the first paragraph of a script's docstring."""
    return argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def interrupt_on(*signals):
    """Make these signals raise KeyboardInterrupt, so cleanup still runs."""
    def _interrupt(signum, frame):
        raise KeyboardInterrupt
    for sig in signals:
        signal.signal(sig, _interrupt)


def ignore_signals():
    """Ignore SIGINT, SIGTERM and SIGHUP: nothing may cut a cleanup short."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


def interrupted():
    """Say a run was interrupted; its exit status (130)."""
    log("\ninterrupted: cleaning up ...")
    return 130


def failed():
    """Print the exception being handled and say the run failed; its exit status (1)."""
    traceback.print_exc()
    log("failed: cleaning up ...")
    return 1


def print_error_groups(errors, key_of, width, interrupted=False):
    """The "errors seen" section: the last line of each error's output, one
    example per (daemon, what, key_of(line)) with its count, ours first."""
    if not errors:
        return
    print()
    print("errors seen (verbatim; one example per kind, with its count):")
    if interrupted:
        print("  (interrupted run: the last errors may be the interruption's doing)")
    groups = {}
    for name, what, status, text in errors:
        line = (text.strip().splitlines() or [f"(exit status {status}, no output)"])[-1]
        key = (name != "ours", name, what, key_of(line))
        if key in groups:
            groups[key][0] += 1
        else:
            groups[key] = [1, line]
    for (_, name, what, _), (count, line) in sorted(groups.items()):
        print(f"  [{name}] {what} ({count}x): {line[:width]}")


def print_leaks(leaks, title):
    """A blank line, title and one indented line per leak (nothing if none)."""
    if leaks:
        print()
        print(title)
        for line in leaks:
            print(f"  {line}")


def errors_json(errors):
    """The (daemon, what, status, output) errors of a daemon bench, for the JSON."""
    return [{"daemon": n, "what": w, "status": str(s), "output": t} for n, w, s, t in errors]


def end_run(rc, results, leaks, print_errors, json_path):
    """The end of a run: results["leaks"], print_errors(leaks, interrupted),
    the JSON file if one was asked for and the run went through; returns rc."""
    results["leaks"] = leaks
    print_errors(leaks, rc == 130)
    if json_path and rc == 0:
        write_json(json_path, results)
    return rc


def write_json(path, results):
    """Write results (but keys starting with "_") as JSON to path, and say so."""
    out = {k: v for k, v in results.items() if not k.startswith("_")}
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
    print(f"\nresults written to {path}")
