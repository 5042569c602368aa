"""Helpers for the runtime conformance suite.

The suite drives a runc-compatible runtime *binary* (runc, crun, runpy-oci)
through its command line only, the way containerd does, so that the same
tests run against all of them.  Modelled on crun's Python tests: a
``base_config()`` that returns a fresh runc-spec-like config, and tiny busybox
``sh -c`` probes inside the container whose output the tests parse.

Every command's stdout/stderr go to files, never pipes: a created or detached
container inherits the runtime's stdio and would keep a pipe open forever.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BUNDLES = REPO / "bundles"
MAKE_BUNDLE = BUNDLES / "make-busybox-bundle.sh"
DEFAULT_CONFIG = BUNDLES / "configs" / "default.json"

#: prefix of every temp dir, container id and netns name the suite makes
PREFIX = "oci-conf"

#: leaks found by per-test finalizers; the session check fails the run on them
LEAKS: list[str] = []
#: every container id used in this session (for the cgroup leak check)
USED_IDS: set[str] = set()
#: every netns this session created
USED_NETNS: set[str] = set()

DEFAULT_TIMEOUT = 30.0


# --------------------------------------------------------------------------
# runtime selection

def resolve_runtime() -> tuple[str | None, str]:
    """(absolute path or None, the name given) of the runtime under test."""
    given = os.environ.get("RUNTIME") or "runpy-oci"
    if os.sep in given:
        path = os.path.abspath(given)
        return (path if os.access(path, os.X_OK) else None), given
    return shutil.which(given), given


def runtime_name(path: str) -> str:
    """'runc', 'crun', 'runpy-oci', ...: what deviation markers are keyed on."""
    known = {"runc", "crun", "runpy-oci"}
    base = os.path.basename(path)
    if base in known:
        return base
    real = os.path.basename(os.path.realpath(path))
    return real if real in known else base


# --------------------------------------------------------------------------
# configs

def base_config(args=("true",)) -> dict:
    """A fresh config dict shaped like `runc spec` output (runc 1.1.5):
    pid/net/ipc/uts/mount namespaces, readonly root, the usual mounts,
    masked/readonly paths; with ``terminal: false`` and ``args: ["true"]``."""
    with open(DEFAULT_CONFIG) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = list(args)
    return cfg


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def add_namespace(cfg: dict, ns_type: str, path: str | None = None) -> None:
    nss = cfg["linux"].setdefault("namespaces", [])
    nss[:] = [n for n in nss if n["type"] != ns_type]
    entry = {"type": ns_type}
    if path:
        entry["path"] = path
    nss.append(entry)


def remove_namespace(cfg: dict, ns_type: str) -> None:
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != ns_type]


def bind_mount(cfg: dict, source, destination: str, *options: str) -> None:
    cfg["mounts"].append({
        "destination": destination,
        "type": "bind",
        "source": str(source),
        "options": list(options) or ["rbind", "rw"],
    })


def kv(text: str) -> dict[str, str]:
    """Parse probe output made of ``key=value`` lines."""
    out = {}
    for line in text.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


# --------------------------------------------------------------------------
# waiting

def wait_for(pred, timeout: float = 20.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``pred()`` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 1.5, 0.2)


def pid_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


# --------------------------------------------------------------------------
# the runtime binary

class Runtime:
    """The runtime binary with a private ``--root`` state dir.

    Every verb returns a ``subprocess.CompletedProcess`` (text stdout/stderr)
    with two more attributes, ``out_path`` and ``err_path``: the files that
    hold the command's (and, for create/run -d, the container's) output.
    """

    def __init__(self, binary: str, root: Path, iodir: Path, name: str | None = None):
        self.binary = binary
        self.name = name or runtime_name(binary)
        self.root = Path(root)
        self.iodir = Path(iodir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.iodir.mkdir(parents=True, exist_ok=True)
        self.ids: list[str] = []
        self._seq = itertools.count(1)  # thread-safe: tests call verbs from threads
        self.prefix: list[str] = []
        self.setup = ""  # shell to run first in a mount namespace the runtime gets to itself
        if self.name == "crun" and os.path.ismount("/sys/fs/cgroup/unified"):
            # crun 1.8 refuses the hybrid layout ("cgroups in hybrid mode not
            # supported, drop all controllers from cgroupv2"); hide cgroup2 in
            # a private mount namespace of its own.  Slave propagation: host
            # mounts still reach it, nothing it does reaches the host.
            self.setup = "umount /sys/fs/cgroup/unified 2>/dev/null; "
            self.prefix = ["unshare", "-m", "--propagation", "slave", "sh", "-c", self.setup + 'exec "$0" "$@"']

    # ---- plumbing
    def argv(self, *args) -> list[str]:
        return [*self.prefix, self.binary, "--root", str(self.root), *map(str, args)]

    def new_id(self, hint: str = "c") -> str:
        hint = re.sub(r"[^A-Za-z0-9_.-]", "-", hint)[:24].strip("-") or "c"
        cid = f"{PREFIX}-{hint}-{uuid.uuid4().hex[:8]}"
        self.ids.append(cid)
        USED_IDS.add(cid)
        return cid

    def popen(self, *args, stdin=subprocess.DEVNULL, **kw):
        """Start a runtime command without waiting; returns (Popen, out, err)."""
        return self._spawn(self.argv(*args), stdin=stdin, **kw)

    def _spawn(self, argv, stdin=subprocess.DEVNULL, **kw):
        n = next(self._seq)
        out = self.iodir / f"{n:03d}.out"
        err = self.iodir / f"{n:03d}.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            p = subprocess.Popen(argv, stdin=stdin, stdout=fo, stderr=fe, close_fds=True, **kw)
        return p, out, err

    def in_own_mount_namespace(self, script: str, timeout=DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        """``sh -c script`` in a mount namespace of its own, private both ways,
        with ``$RT`` the runtime's command line. For a container without a
        mount namespace, whose rootfs the runtime mounts in its caller's
        namespace: this one, so nothing reaches the host, and whatever the
        runtime leaves there goes when the script's processes end."""
        rt = " ".join(shlex.quote(a) for a in (self.binary, "--root", str(self.root)))
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f"{self.setup}RT={shlex.quote(rt)}; {script}"]
        p, out, err = self._spawn(argv)
        return self.finish(p, out, err, timeout=timeout)

    @staticmethod
    def finish(p, out, err, input=None, timeout=DEFAULT_TIMEOUT):
        writer = None
        if input is not None:
            data = input.encode() if isinstance(input, str) else input

            def feed():  # in a thread: a runtime that never reads must not hang us
                try:
                    p.stdin.write(data)
                except (BrokenPipeError, ValueError, OSError):
                    pass
                finally:
                    try:
                        p.stdin.close()
                    except (BrokenPipeError, OSError):
                        pass
            writer = threading.Thread(target=feed, daemon=True)
            writer.start()
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError(f"{' '.join(map(str, p.args))} did not finish within {timeout}s;"
                                 f" stderr: {Path(err).read_text(errors='replace')!r}")
        finally:
            if writer is not None:
                writer.join(5)
        cp = subprocess.CompletedProcess(p.args, p.returncode,
                                         Path(out).read_text(errors="replace"),
                                         Path(err).read_text(errors="replace"))
        cp.out_path, cp.err_path = Path(out), Path(err)
        return cp

    def cmd(self, *args, input=None, timeout=DEFAULT_TIMEOUT) -> subprocess.CompletedProcess:
        p, out, err = self.popen(*args, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
        return self.finish(p, out, err, input=input, timeout=timeout)

    # ---- verbs
    def create(self, cid, bundle, *, pid_file=None, console_socket=None, extra=()):
        args = ["create", "--bundle", str(bundle)]
        if pid_file:
            args += ["--pid-file", str(pid_file)]
        if console_socket:
            args += ["--console-socket", str(console_socket)]
        return self.cmd(*args, *extra, cid)

    def run(self, cid, bundle, *, detach=False, pid_file=None, console_socket=None,
            input=None, timeout=DEFAULT_TIMEOUT, extra=()):
        args = ["run", "--bundle", str(bundle)]
        if detach:
            args.append("--detach")
        if pid_file:
            args += ["--pid-file", str(pid_file)]
        if console_socket:
            args += ["--console-socket", str(console_socket)]
        return self.cmd(*args, *extra, cid, input=input, timeout=timeout)

    def start(self, cid):
        return self.cmd("start", cid)

    def state(self, cid):
        return self.cmd("state", cid)

    def kill(self, cid, sig=None, all=False):
        args = ["kill"]
        if all:
            args.append("--all")
        args.append(cid)
        if sig is not None:
            args.append(str(sig))
        return self.cmd(*args)

    def delete(self, cid, force=False):
        return self.cmd("delete", *(["--force"] if force else []), cid)

    def list(self, fmt=None, quiet=False):
        args = ["list"]
        if fmt:
            args += ["--format", fmt]
        if quiet:
            args.append("--quiet")
        return self.cmd(*args)

    # ---- conveniences
    def state_json(self, cid) -> dict:
        cp = self.state(cid)
        assert cp.returncode == 0, f"state {cid} failed ({cp.returncode}): {cp.stderr}"
        return json.loads(cp.stdout)

    def status(self, cid) -> str | None:
        cp = self.state(cid)
        if cp.returncode != 0:
            return None
        return json.loads(cp.stdout)["status"]

    def wait_status(self, cid, status, timeout=20.0):
        seen = []

        def pred():
            s = self.status(cid)
            seen.append(s)
            return s == status
        try:
            wait_for(pred, timeout, what=f"container {cid} to be {status}")
        except AssertionError:
            raise AssertionError(f"container {cid} never became {status!r}; last states {seen[-3:]}")

    def list_ids(self) -> list[str]:
        cp = self.list(quiet=True)
        assert cp.returncode == 0, cp.stderr
        return [line.strip() for line in cp.stdout.splitlines() if line.strip()]

    def check(self, cp: subprocess.CompletedProcess, what="command"):
        assert cp.returncode == 0, (f"{what} failed with {cp.returncode}\n"
                                    f"argv: {cp.args}\nstdout: {cp.stdout}\nstderr: {cp.stderr}")
        return cp

    def probe(self, bundle: "Bundle", script: str, *, hint="probe", input=None) -> str:
        """Run ``sh -c script`` in a fresh container of ``bundle``; return its
        stdout (asserting exit status 0)."""
        bundle.config["process"]["args"] = sh(script)
        bundle.write()
        cid = self.new_id(hint)
        cp = self.run(cid, bundle.path, input=input)
        self.check(cp, f"probe {script!r}")
        return cp.stdout

    def cleanup(self):
        """delete --force everything this runtime instance knows about."""
        ids = list(self.ids)
        try:
            cp = self.list(quiet=True)
            if cp.returncode == 0:
                ids += [i for i in cp.stdout.split() if i not in ids]
        except AssertionError:
            pass
        for cid in ids:
            try:
                self.cmd("delete", "--force", cid, timeout=20)
            except AssertionError:
                pass


# --------------------------------------------------------------------------
# bundles

class Bundle:
    """A bundle dir with its own copy of the busybox rootfs and a config dict
    (``base_config()`` unless given); call ``write()`` after changing it."""

    def __init__(self, path: Path, template_rootfs: Path, config: dict | None = None):
        self.path = Path(path)
        self.path.mkdir(parents=True)
        self.rootfs = self.path / "rootfs"
        # hard links for the (read-only) busybox binary keep this ~0 ms;
        # files a container might edit (/etc) are real copies
        subprocess.run(["cp", "-a", "--link", str(template_rootfs), str(self.rootfs)], check=True)
        for f in (self.rootfs / "etc").iterdir():
            if f.is_file() and not f.is_symlink():
                data = f.read_bytes()
                f.unlink()
                f.write_bytes(data)
        self.config = config if config is not None else base_config()
        self.write()

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def write(self, raw: str | None = None) -> None:
        text = raw if raw is not None else json.dumps(self.config, indent=2)
        tmp = self.path / ".config.json.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.config_path)

    def set_args(self, *args) -> "Bundle":
        self.config["process"]["args"] = list(args)
        self.write()
        return self

    def set_script(self, script: str) -> "Bundle":
        return self.set_args(*sh(script))

    def root_ident(self) -> tuple[int, int]:
        st = os.stat(self.rootfs)
        return st.st_dev, st.st_ino


def make_template(dest: Path) -> Path:
    """Build the session-wide bundle whose rootfs every test copies."""
    subprocess.run(["bash", str(MAKE_BUNDLE), str(dest)], check=True,
                   stdout=subprocess.DEVNULL)
    return dest / "rootfs"


# --------------------------------------------------------------------------
# host-side inspection (for "nothing left behind")

def mounts_under(path) -> list[str]:
    """Mount points in our mount namespace at or below ``path``."""
    path = str(path).rstrip("/")
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return found


def mountinfo_lines_mentioning(*needles: str) -> list[str]:
    """Lines of our /proc/self/mountinfo that contain any of ``needles``
    (as mount point, root or source)."""
    with open("/proc/self/mountinfo") as f:
        return [line.rstrip("\n") for line in f if any(n in line for n in needles)]


def processes_matching(needle: str | None = None, roots: set | None = None) -> list[tuple[int, str]]:
    """Processes (other than us) whose cmdline contains ``needle`` or whose
    root directory is one of ``roots`` ((st_dev, st_ino) pairs)."""
    me = os.getpid()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        pid = int(d)
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if not pid_alive(pid):
            continue
        hit = needle is not None and needle in cmdline
        if not hit and roots:
            try:
                st = os.stat(f"/proc/{pid}/root")
                hit = (st.st_dev, st.st_ino) in roots
            except OSError:
                pass
        if hit:
            found.append((pid, cmdline))
    return found


def cgroup_dirs_named(names: set[str], base="/sys/fs/cgroup") -> list[str]:
    found = []
    if not names:
        return found
    for dirpath, dirnames, _ in os.walk(base):
        for d in dirnames:
            if any(n in d for n in names):  # crun/systemd decorate names
                found.append(os.path.join(dirpath, d))
    return found


def netns_list() -> list[str]:
    cp = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return [line.split()[0] for line in cp.stdout.splitlines() if line.strip()]


def umount_lazy(path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --------------------------------------------------------------------------
# console socket (process.terminal + --console-socket)

class ConsoleSocket:
    """A unix socket that receives the pty master from the runtime
    (SCM_RIGHTS), the way containerd's shim does."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.master: int | None = None
        self.name = b""

    def receive(self, timeout: float = 20.0) -> int:
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(timeout)
            fds = []
            msg, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(4 * 4))
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    n = len(data) // 4
                    fds.extend(int.from_bytes(data[i * 4:i * 4 + 4], "little") for i in range(n))
            self.name = msg
        assert fds, f"no fd received on the console socket (message {msg!r})"
        for extra in fds[1:]:
            os.close(extra)
        self.master = fds[0]
        return self.master

    def read_until(self, needle: bytes, timeout: float = 20.0) -> bytes:
        """Read from the master until ``needle`` appears, EOF/EIO, or timeout."""
        import select
        buf = b""
        deadline = time.monotonic() + timeout
        while needle not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out waiting for {needle!r} on the console; got {buf!r}")
            r, _, _ = select.select([self.master], [], [], left)
            if not r:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: every slave fd closed
                break
            if not chunk:
                break
            buf += chunk
        return buf

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.master is not None:
            try:
                os.close(self.master)
            except OSError:
                pass
            self.master = None
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

