"""What the benchmark scripts in bench/ read from and do to the system:
processes in /proc with their memory and CPU, mounts, cgroups, long-running
services (a registry, our daemon, real containerd) and `ctr`. Python 3.11
standard library only; see benchlib.py for the skeleton of a run.
"""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import threading
import time

START_DEADLINE = 60  # seconds for a service to answer; only guards against a hang
CGROUP_ROOT = "/sys/fs/cgroup"
CLK_TCK = os.sysconf("SC_CLK_TCK")
KiB = 1024
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


# --------------------------------------------------------------------------
# Processes in /proc

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


def live_pids(match):
    """Pids of the processes still running (not zombies) for which
    match(pid, stat_fields) is true."""
    out = []
    for pid in proc_pids():
        try:
            fields = stat_fields(pid)
            if fields[0] not in (b"Z", b"X") and match(pid, fields):
                out.append(pid)
        except (OSError, IndexError, ValueError):
            pass
    return out


def cmdline(pid):
    """The argv of a process ([] if it is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def describe(pids, sep=", ", width=160, most=5):
    """"PID COMMAND LINE" of the first few pids, joined by sep."""
    return sep.join(f"{pid} {' '.join(cmdline(pid))[:width]}" for pid in pids[:most])


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


def status_mib(pid, *keys):
    """{key: MiB} of the kB fields `keys` (VmRSS, VmHWM, ...) of /proc/PID/status."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in keys:
                out[key] = int(value.split()[0]) / KiB
    return out


def rollup_mib(pid):
    """{field: MiB} of the kB fields of /proc/PID/smaps_rollup (Rss, Pss, Private_Clean, ...)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) / KiB
    return out


def tree(pid):
    """pid and its descendants."""
    children = {}
    for p in proc_pids():
        try:
            children.setdefault(int(stat_fields(p)[1]), []).append(p)
        except (OSError, IndexError, ValueError):
            pass
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_rss(pid):
    """VmRSS in MiB summed over pid and its descendants."""
    total = 0.0
    for p in tree(pid):
        try:
            total += status_mib(p, "VmRSS").get("VmRSS", 0)
        except OSError:
            pass
    return total


def mnt_ns(pid):
    """The mount namespace of a process ("mnt:[N]"), or None if it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def serving_pids(pid, mark):
    """The processes that serve a daemon: pid, its descendants and every
    process whose argv names mark (shims, loggers: they leave the daemon's
    tree), but only those in the host's mount namespace; a container's own
    processes, below a shim, are in one of their own."""
    host = mnt_ns(os.getpid())
    named = live_pids(lambda p, _: any(mark in a for a in cmdline(p)))
    return sorted(p for p in set(tree(pid)) | set(named) if mnt_ns(p) == host)


def cpu_ms(pid):
    """User + system CPU of a process (its threads included) so far, and of its reaped children."""
    ticks = sum(int(x) for x in stat_fields(pid)[11:15])  # utime stime cutime cstime
    return ticks * 1000 / CLK_TCK


# --------------------------------------------------------------------------
# Children spawned and reaped by the bench itself

def setns_mnt(fd):
    """Enter the mount namespace that fd refers to."""
    _check(_libc.setns(fd, CLONE_NEWNS), "setns(CLONE_NEWNS)")


class Children:
    """The processes a bench spawns (posix_spawn) and reaps (wait4) itself,
    timed from spawn to reap, stdio on /dev/null unless given. The bench is
    made a child subreaper, as a containerd shim is, so the processes they
    leave behind (a container's init after `create` or `run -d`) are reaped
    here too, never left to pid 1."""

    def __init__(self):
        _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)")
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.host_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY)
        self.env = dict(os.environ)
        self.inflight = set()   # pids we spawned, not yet reaped
        self.reaped = {}        # pid -> (status, rusage, t_ns) for pids that were in inflight
        self.orphans = set()    # pids reaped that we did not spawn (container inits)

    def spawn(self, argv, stdout=None, stderr=None, mntns=None):
        """Start argv, in the mount namespace mntns (an fd) if given; (pid, start time in ns)."""
        fa = [(os.POSIX_SPAWN_DUP2, self.devnull, 0),
              (os.POSIX_SPAWN_DUP2, self.devnull if stdout is None else stdout, 1),
              (os.POSIX_SPAWN_DUP2, self.devnull if stderr is None else stderr, 2)]
        if mntns is not None:
            setns_mnt(mntns)
        try:
            t0 = time.perf_counter_ns()
            pid = os.posix_spawn(argv[0], argv, self.env, file_actions=fa)
        finally:
            if mntns is not None:
                setns_mnt(self.host_ns)
                os.chdir("/")
        self.inflight.add(pid)
        return pid, t0

    def reap_one(self, block):
        """Reap one child (waiting for one if block); its pid, or None."""
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
        while self.reap_one(False):
            pass

    def wait(self, pid):
        """(wait status, rusage, reap time in ns) of a child we spawned."""
        while pid not in self.reaped:
            if self.reap_one(True) is None and pid not in self.reaped:
                raise RuntimeError(f"lost child {pid}")
        return self.reaped.pop(pid)

    def run(self, argv, **spawn_args):
        """Spawn and reap argv; (exit status, wall ms, rusage)."""
        pid, t0 = self.spawn(argv, **spawn_args)
        status, ru, t1 = self.wait(pid)
        return os.waitstatus_to_exitcode(status), (t1 - t0) / 1e6, ru

    def capture(self, argv, **spawn_args):
        """Spawn and reap argv; its stdout as text."""
        r, w = os.pipe()
        try:
            pid, _ = self.spawn(argv, stdout=w, **spawn_args)
        finally:
            os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read()
        self.wait(pid)
        return out.decode(errors="replace")

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

    def settle(self):
        """At cleanup: back in the host mount namespace; the commands still
        running (after an interruption) get 10 s to end, then SIGKILL."""
        try:
            setns_mnt(self.host_ns)
            os.chdir("/")
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while self.inflight and time.monotonic() < deadline:
            self.reap_nohang()
            time.sleep(0.01)
        for pid in list(self.inflight):
            kill_all([pid])
            self.wait(pid)

    def kill_orphans(self):
        """Kill and reap the processes of ours still alive: they are our
        children, as every orphan of what we ran was handed to us; returns a
        leak line for them, if any."""
        me = os.getpid()

        def left():
            self.reap_nohang()
            return live_pids(lambda pid, fields: int(fields[1]) == me)
        deadline = time.monotonic() + 2
        while (kids := left()) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not kids:
            return []
        leak = f"{len(kids)} orphaned process(es) left: {describe(kids, '; ', 120)} (killed)"
        kill_all(kids)
        deadline = time.monotonic() + 5
        while left() and time.monotonic() < deadline:
            time.sleep(0.01)
        return [leak]


# --------------------------------------------------------------------------
# Mounts, cgroups and the temporary directory

def mounts_under(path):
    """Mount points (of this mount namespace) at or below path."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == path or p.startswith(path.rstrip("/") + "/")]


def unmount_all(mnts):
    """umount -l each mount point, deepest first."""
    for m in sorted(mnts, key=lambda p: -p.count("/")):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)


def remove_tmp(tmp):
    """Unmount what is still mounted under the bench's temporary directory,
    then remove it; returns what was left behind, as leak lines."""
    leaks = []
    mnts = mounts_under(tmp)
    if mnts:
        leaks.append(f"{len(mnts)} mount(s) under {tmp}, e.g. {mnts[0]} (unmounted)")
        unmount_all(mnts)
    shutil.rmtree(tmp, ignore_errors=True)
    if os.path.exists(tmp):
        leaks.append(f"{tmp} could not be removed")
    return leaks


def find_cgroups(prefix, max_depth=4):
    """Cgroup directories named PREFIX-... in every hierarchy of /sys/fs/cgroup,
    down to max_depth + 1 levels (e.g. memory/NS/PREFIX-ID)."""
    found = []
    for top in sorted(os.listdir(CGROUP_ROOT)):
        start = os.path.join(CGROUP_ROOT, top)
        if not os.path.isdir(start) or os.path.islink(start):
            continue
        depth0 = start.count("/")
        for dirpath, dirnames, _ in os.walk(start):
            found += [os.path.join(dirpath, d) for d in dirnames if d.startswith(prefix + "-")]
            dirnames[:] = [d for d in dirnames if not d.startswith(prefix + "-")]
            if dirpath.count("/") - depth0 >= max_depth:
                dirnames[:] = []
    return found


def remove_cgroups(paths):
    """rmdir each cgroup directory with the ones below it, deepest first;
    returns "PATH: error" for each that could not be removed."""
    kept = []
    for path in sorted(paths, key=lambda p: -p.count("/")):
        for dirpath, _, _ in os.walk(path, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError as e:
                kept.append(f"{dirpath}: {e}")
    return kept


class Netns:
    """A network namespace of the bench (`ip netns add`, loopback up), so
    that daemons and registries in it touch nothing of the host's network."""

    def __init__(self, name):
        self.name, self.path = name, f"/run/netns/{name}"
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True)

    def argv(self, argv):
        """argv run inside the namespace."""
        return ["nsenter", f"--net={self.path}", *argv]

    def call(self, fn):
        """fn() from inside the namespace; what fn returns or raises."""
        return self.start(fn).result()

    def start(self, fn):
        """fn() started inside the namespace, in a thread of its own (setns()
        moves only the calling thread), while the caller goes on; an
        InNetns whose result() waits for it."""
        thread = InNetns(self.path, fn)
        thread.start()
        return thread

    def remove(self):
        """`ip netns del`; a leak line if it stays."""
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        return [f"network namespace {self.name} could not be removed"] if os.path.exists(self.path) else []


class InNetns(threading.Thread):
    """fn() in a thread that first enters the network namespace at path."""

    def __init__(self, path, fn):
        super().__init__(daemon=True)
        self.path, self.fn, self.out = path, fn, {}

    def run(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                _check(_libc.setns(fd, CLONE_NEWNET), f"setns({self.path})")
            finally:
                os.close(fd)
            self.out["value"] = self.fn()
        except BaseException as e:
            self.out["error"] = e

    def result(self, timeout=None):
        """What fn returned (raises what it raised); TimeoutError if it runs past timeout seconds."""
        self.join(timeout)
        if self.is_alive():
            raise TimeoutError(f"still running after {timeout} s in {self.path}")
        if "error" in self.out:
            raise self.out["error"]
        return self.out["value"]


# --------------------------------------------------------------------------
# Long-running services: a registry, our daemon, real containerd

class Service:
    """A long-running process of a bench, in its own session, logging to a file in workdir."""

    def __init__(self, name, argv, workdir, env=None):
        self.name, self.argv, self.workdir = name, argv, workdir
        self.log_path = os.path.join(workdir, f"{name}.log")
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
        """SIGTERM, then SIGKILL to its process group after 30 s, then SIGKILL
        to anything left in its session; returns what went wrong, as leak lines."""
        leaks = []
        if self.proc.poll() is not None:
            leaks.append(f"[{self.name}] had already exited with {self.proc.returncode}")
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
                leaks.append(f"[{self.name}] did not stop within 30 s of SIGTERM (SIGKILLed)")
        left = live_pids(lambda pid, fields: int(fields[3]) == self.pid)
        if left:
            kill_all(left)
            leaks.append(f"[{self.name}] {len(left)} process(es) left in its session: {left[:5]} (killed)")
        return leaks


def warnings_logged(services):
    """(service name, line) for each line of a service's log at warning
    level or worse (logfmt, as containerd and our daemon log), or a traceback."""
    out = []
    for svc in services:
        try:
            with open(svc.log_path, errors="replace") as f:
                out += [(svc.name, line.strip()) for line in f
                        if re.search(r"level=(warn|warning|error|fatal|panic)\b|Traceback|Exception", line)]
        except OSError:
            pass
    return out


def start_containerd_py(tmp, python, repo):
    """Our daemon (`python -m containerd_py.daemon` of repo) with its own root,
    state, socket and a config of its own that disables nothing, so no
    /etc/containerd-py/config.toml applies; in tmp/ours."""
    workdir = os.path.join(tmp, "ours")
    os.mkdir(workdir)
    with open(f"{workdir}/config.toml", "w") as f:
        f.write("version = 2\ndisabled_plugins = []\n")
    address = f"{workdir}/containerd.sock"
    argv = [python, "-m", "containerd_py.daemon", "--root", f"{workdir}/root", "--state", f"{workdir}/state",
            "--address", address, "-c", f"{workdir}/config.toml"]
    return _daemon("ours", argv, workdir, address, dict(os.environ, PYTHONPATH=repo))


def start_containerd(tmp, binary):
    """Real containerd with its own root, state and sockets (CRI and tracing
    plugins off), in tmp/containerd."""
    workdir = os.path.join(tmp, "containerd")
    os.mkdir(workdir)
    address = f"{workdir}/containerd.sock"
    with open(f"{workdir}/config.toml", "w") as f:
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
    return _daemon("containerd", [binary, "--config", f"{workdir}/config.toml"], workdir, address)


def _daemon(name, argv, workdir, address, env=None):
    svc = Service(name, argv, workdir, env)
    svc.address, svc.root = address, f"{workdir}/root"
    return svc


def version(argv, timeout=30):
    """The first line argv prints on stdout (e.g. [binary, "--version"]), or "?"."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL).stdout
        return out.splitlines()[0] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def daemon_versions(python, containerd, ctr):
    """The versions of our daemon (and its Python), of containerd and of ctr."""
    return {"ours": version([python, "-m", "containerd_py.daemon", "--version"])
            + f" (python {version([python, '-V']).split()[-1]})",
            "containerd": version([containerd, "--version"]),
            "ctr": version([ctr, "--version"])}


def ctr_argv(ctr, daemon, ns, *args):
    """`ctr` against daemon's socket in namespace ns."""
    return [ctr, "--address", daemon.address, "--connect-timeout", "30s", "-n", ns, *args]


def wait_ready(ctr, daemon):
    """Wait until `ctr version` gets an answer from daemon (a Service with an
    address); raises if it exits or does not answer within START_DEADLINE."""
    wait_answering(daemon, daemon.address, [ctr, "--address", daemon.address, "version"])


def wait_answering(daemon, socket_path, probe):
    """Wait until the probe command exits 0 once socket_path exists; raises
    if the daemon exits or does not answer within START_DEADLINE."""
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        daemon.check_alive()
        if os.path.exists(socket_path):
            r = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            if r.returncode == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{daemon.name} did not answer on {socket_path}:\n{daemon.log_tail()}")
