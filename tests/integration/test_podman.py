"""podman runs busybox with runpy-oci as its OCI runtime and with runc, and a
user sees the same from both: output, exit status, state, flags and limits.

podman gets a private store under the session's temp dir (its own
containers.conf, storage.conf and registries.conf, --root/--runroot/--tmpdir,
file locks and events, the runtime's own --root), the image is loaded from a
local archive, and containers run with --network none: nothing reaches a
registry or the host's podman state."""
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from runpy_oci import seccomp_bpf

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIMES = {"runpy-oci": os.path.join(os.path.dirname(sys.executable), "runpy-oci"),
            "runc": shutil.which("runc") or "/usr/sbin/runc"}
IMAGE = "docker.io/library/busybox:latest"
RUN = ("run", "--network", "none", "--pull", "never")
PARENT = "libpod_parent"  # podman's parent cgroup (containers and conmon) with cgroupfs
CGROUP_ROOTS = ["/sys/fs/cgroup"] + [os.path.join("/sys/fs/cgroup", d) for d in os.listdir("/sys/fs/cgroup")
                                     if os.path.isdir(os.path.join("/sys/fs/cgroup", d))]

CONTAINERS_CONF = """\
[containers]
# As root podman asks for RLIMIT_NOFILE/NPROC of 1048576, more than a host
# without CAP_SYS_RESOURCE grants; both runtimes then refuse alike.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
tmp_dir = "{home}/tmp"
volume_path = "{home}/volumes"
image_copy_tmp_dir = "{home}/tmp"
# Both runtimes get --log-format=json --log FILE, and podman reports the
# message from that log (podman's default list has runc and crun only).
runtime_supports_json = ["runc", "runpy-oci"]

[engine.runtimes]
{runtimes}

[network]
network_config_dir = "{home}/net"
"""
STORAGE_CONF = '[storage]\ndriver = "overlay"\ngraphroot = "{home}/root"\nrunroot = "{home}/runroot"\n'
REGISTRIES_CONF = 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n'
# The runtime under its own name (podman keys behaviour on it), with a private
# state --root and a log of every invocation podman and conmon make.
WRAPPER = '#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {binary} --root {state} "$@"\n'


class Store:
    """A private podman store; `store(runtime, *args)` runs podman in it."""

    def __init__(self, home):
        self.home = home
        for sub in ("bin", "state", "tmp", "net"):
            os.makedirs(os.path.join(home, sub))
        for name, binary in RUNTIMES.items():
            path = self.wrapper(name)
            with open(path, "w") as f:
                f.write(WRAPPER.format(log=self.calls_log(name), binary=binary,
                                       state=self.state(name)))
            os.chmod(path, 0o755)
        runtimes = "\n".join(f'"{n}" = ["{self.wrapper(n)}"]' for n in RUNTIMES)
        self._write("containers.conf", CONTAINERS_CONF.format(home=home, runtimes=runtimes))
        self._write("storage.conf", STORAGE_CONF.format(home=home))
        self._write("registries.conf", REGISTRIES_CONF)
        # Not the caller's docker client settings: podman reads DOCKER_CONFIG for
        # credentials and fails every command when it names a missing directory.
        inherited = {k: v for k, v in os.environ.items() if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE")}
        self.env = dict(inherited, CONTAINERS_CONF=self._path("containers.conf"),
                        CONTAINERS_STORAGE_CONF=self._path("storage.conf"),
                        CONTAINERS_REGISTRIES_CONF=self._path("registries.conf"),
                        TMPDIR=self._path("tmp"))
        self.flags = ["--root", self._path("root"), "--runroot", self._path("runroot"),
                      "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs",
                      "--events-backend", "file", "--tmpdir", self._path("tmp"),
                      "--network-config-dir", self._path("net"), "--volumepath", self._path("volumes")]

    def _path(self, name):
        return os.path.join(self.home, name)

    def _write(self, name, text):
        with open(self._path(name), "w") as f:
            f.write(text)

    def wrapper(self, name):
        return os.path.join(self.home, "bin", name)

    def state(self, name):
        return os.path.join(self.home, "state", name)

    def calls_log(self, name):
        return os.path.join(self.home, f"{name}-calls.log")

    def argv(self, runtime, *args):
        return ["podman", *self.flags, "--runtime", self.wrapper(runtime), *args]

    def __call__(self, runtime, *args, input=None, tty=False, timeout=120, prefix=()):
        """Output goes through files: conmon may inherit and hold a pipe open.
        With tty=True the command runs under script(1), on a terminal."""
        argv = [*prefix, *self.argv(runtime, *args)]
        if tty:
            argv = ["script", "-qec", shlex.join(argv), "/dev/null"]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            r = subprocess.run(argv, input=input, stdout=out, stderr=err, text=True, env=self.env,
                               timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(argv, r.returncode, out.read(), err.read())


def _mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4].encode().decode("unicode_escape") for line in f]
    return [p for p in points if p == path or p.startswith(path + "/")]


def _processes_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(pid) != os.getpid():
            found.append(f"{pid}: {cmdline}")
    return found


def _eventually(check, timeout=30):
    """Poll `check` until it is true (or time runs out); its last answer."""
    deadline = time.monotonic() + timeout
    while not (ok := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return ok


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """The private store with the busybox image loaded, once per session."""
    home = str(tmp_path_factory.mktemp("podman"))
    before = {root for root in CGROUP_ROOTS if os.path.isdir(os.path.join(root, PARENT))}
    s = Store(home)
    archive = os.path.join(home, "busybox.tar")
    subprocess.run([sys.executable, os.path.join(REPO, "bundles/make-busybox-image.py"), archive],
                   check=True, capture_output=True)
    # `podman load` writes its blob-info cache to /var/lib/containers/cache and
    # unpacks the archive in /var/tmp whatever the flags say: load the image in
    # a mount namespace with tmpfs on both.
    hide = ("unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount -t tmpfs tmpfs /var/lib && mount -t tmpfs tmpfs /var/tmp && exec "$@"', "sh")
    r = s("runc", "load", "-i", archive, prefix=hide)
    assert r.returncode == 0, r.stderr
    try:
        yield s
    finally:
        for name in RUNTIMES:
            s(name, "rm", "-af", "-t", "0")
        s("runc", "rmi", "-af")
        for point in reversed(_mounts_under(home)):
            subprocess.run(["umount", "-l", point], check=False)
        for root in set(CGROUP_ROOTS) - before:
            for sub in (os.path.join(PARENT, "conmon"), PARENT):
                try:
                    os.rmdir(os.path.join(root, sub))
                except OSError:
                    pass


@pytest.fixture(params=sorted(RUNTIMES))
def podman(request, store):
    """`podman(*args)` runs podman with one runtime; afterwards every container
    is removed and nothing of them (process, mount, cgroup, state) is left."""
    name = request.param
    for mark in request.node.iter_markers("deviation"):
        if mark.args[0] == name:
            request.node.add_marker(pytest.mark.xfail(strict=True, reason=f"{name}: {mark.args[1]}"))
    open(store.calls_log(name), "w").close()

    def run(*args, **kw):
        return store(name, *args, **kw)

    yield run
    ids = run("ps", "-aq", "--no-trunc").stdout.split()
    removed = run("rm", "-af", "-t", "0")
    with open(store.calls_log(name)) as f:
        print(f"{name} invocations:\n{f.read()}")
    _eventually(lambda: not _processes_mentioning(store.home))  # conmon's exit command may still run
    cgroups = [os.path.join(root, PARENT, "libpod-" + cid) for cid in ids for root in CGROUP_ROOTS]
    left = {"containers": run("ps", "-aq").stdout.split(),
            "processes": _processes_mentioning(store.home),
            # the seccomp filters kept for the next containers are no container's state
            "runtime state": [n for n in os.listdir(store.state(name)) if n != seccomp_bpf.CACHE_DIR],
            "cgroups": [path for path in cgroups if os.path.isdir(path)],
            "mounts": _mounts_under(store.home)}
    left = {k: v for k, v in left.items() if v}
    for entry in left.get("processes", ()):
        os.kill(int(entry.split(":", 1)[0]), signal.SIGKILL)
    assert removed.returncode == 0 and not left, (removed.stderr, left)


def _cat_cgroup_file(v1, v2):
    """A shell command printing a cgroup file as the container sees it, v1 or v2."""
    return f"cat /sys/fs/cgroup/{v1} 2>/dev/null || cat /sys/fs/cgroup/{v2}"


def _frozen(pid):
    """Whether the freezer (v1) or cgroup.freeze (v2) holds the process."""
    with open(f"/proc/{pid}/cgroup") as f:
        lines = [line.rstrip("\n").split(":", 2) for line in f]
    for _, controllers, path in lines:
        if "freezer" in controllers.split(","):
            with open(f"/sys/fs/cgroup/freezer{path}/freezer.state") as f:
                return f.read().strip() == "FROZEN"
    path = next(p for hid, _, p in lines if hid == "0")
    with open(f"/sys/fs/cgroup{path}/cgroup.events") as f:
        return "frozen 1" in f.read().split("\n")


def _inspect(podman, name, fmt):
    r = podman("inspect", "-f", fmt, name)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_run_rm_prints_output_and_returns_the_exit_status(podman):
    r = podman(*RUN, "--rm", IMAGE, "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert (r.returncode, r.stdout, r.stderr) == (3, "hi\n", "oops\n")
    assert podman("ps", "-aq").stdout == ""


def test_run_i_passes_stdin(podman):
    r = podman(*RUN, "--rm", "-i", IMAGE, "sh", "-c", "cat; echo done", input="abc\n")
    assert (r.returncode, r.stdout, r.stderr) == (0, "abc\ndone\n", "")


def test_a_missing_command_exits_127(podman):
    r = podman(*RUN, "--rm", IMAGE, "/nonexistent")
    assert r.returncode == 127
    assert 'exec: "/nonexistent": stat /nonexistent: no such file or directory' in r.stderr
    assert r.stderr.endswith(": OCI runtime attempted to invoke a command that was not found\n")


def test_run_t_gives_a_terminal(podman):
    r = podman(*RUN, "--rm", "-t", IMAGE, "sh", "-c", "tty; echo hi; exit 4", tty=True)
    assert r.returncode == 4, r.stdout
    assert r.stdout.replace("\r\n", "\n") == "/dev/pts/0\nhi\n"


def test_env_workdir_user_and_hostname_flags(podman):
    r = podman(*RUN, "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "1000", "--hostname", "box", IMAGE,
               "sh", "-c", 'echo "$FOO"; pwd; id; hostname')
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "bar\n/tmp\nuid=1000(user) gid=1000(user) groups=1000(user)\nbox\n"


def test_security_flags(podman):
    r = podman(*RUN, "--rm", "--read-only", "--cap-drop", "all", "--cap-add", "NET_RAW",
               "--security-opt", "no-new-privileges", IMAGE,
               "sh", "-c", "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; touch /x || echo read-only")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "CapEff:\t0000000000002000\nNoNewPrivs:\t1\nread-only\n"


def test_ulimit_sysctl_and_oom_score_flags(podman):
    r = podman(*RUN, "--rm", "--ulimit", "nofile=100:200", "--ulimit", "nproc=50:60",
               "--sysctl", "kernel.msgmax=12345", "--oom-score-adj", "500", IMAGE, "sh", "-c",
               "ulimit -n; ulimit -Hn; ulimit -u; cat /proc/sys/kernel/msgmax /proc/self/oom_score_adj")
    assert (r.returncode, r.stdout) == (0, "100\n200\n50\n12345\n500\n"), r.stderr


def test_uidmap_runs_in_a_user_namespace(podman):
    r = podman(*RUN, "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", IMAGE,
               "sh", "-c", "id -u; cat /proc/self/uid_map; touch /f && echo wrote")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "0", "100000", "65536", "wrote"]


def test_memory_and_pids_limits_are_visible_and_enforced(podman):
    script = "; ".join([_cat_cgroup_file("memory/memory.limit_in_bytes", "memory.max"),
                        _cat_cgroup_file("pids/pids.max", "pids.max"),
                        "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 30 & done"])
    r = podman(*RUN, "--rm", "--memory", "64m", "--pids-limit", "8", IMAGE, "sh", "-c", script)
    assert r.stdout == "67108864\n8\n", r.stderr
    assert "can't fork" in r.stderr


def test_create_then_start_attach(podman):
    r = podman("create", "--network", "none", "--pull", "never", "--name", "job", IMAGE,
               "sh", "-c", "echo hello; exit 2")
    assert r.returncode == 0, r.stderr
    assert _inspect(podman, "job", "{{.State.Status}}") == "created"
    r = podman("start", "-a", "job")
    assert (r.returncode, r.stdout) == (2, "hello\n"), r.stderr
    assert _inspect(podman, "job", "{{.State.Status}} {{.State.ExitCode}}") == "exited 2"


def test_detached_container_ps_exec_logs_stop_rm(podman):
    script = 'echo started; trap "echo bye; exit 7" TERM; while :; do sleep 1; done'
    r = podman(*RUN, "-d", "--name", "web", IMAGE, "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    cid = r.stdout.strip()
    r = podman("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Command}}")
    assert r.stdout.split(" ", 2)[:2] == [cid, "web"]
    assert _inspect(podman, "web", "{{.State.Status}}") == "running"
    r = podman("exec", "web", "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (r.returncode, r.stdout, r.stderr) == (5, "out\n", "err\n")
    assert _eventually(lambda: podman("logs", "web").stdout == "started\n")
    r = podman("stop", "-t", "60", "web")
    assert (r.returncode, r.stdout) == (0, "web\n"), r.stderr
    assert _inspect(podman, "web", "{{.State.Status}} {{.State.ExitCode}}") == "exited 7"
    assert podman("logs", "web").stdout == "started\nbye\n"
    r = podman("rm", "web")
    assert (r.returncode, r.stdout) == (0, "web\n"), r.stderr
    assert podman("ps", "-aq").stdout == ""


def test_exec_flags_tty_detach_and_top(podman):
    assert podman(*RUN, "-d", "--name", "box", IMAGE, "sleep", "1000").returncode == 0
    r = podman("exec", "-u", "1000", "-w", "/tmp", "-e", "X=y", "box", "sh", "-c", 'id -u; pwd; echo "$X"')
    assert (r.returncode, r.stdout, r.stderr) == (0, "1000\n/tmp\ny\n", "")
    r = podman("exec", "-t", "box", "sh", "-c", "tty; exit 6", tty=True)
    assert (r.returncode, r.stdout.replace("\r\n", "\n")) == (6, "/dev/pts/0\n")
    r = podman("exec", "-d", "box", "sleep", "999")
    assert r.returncode == 0, r.stderr
    r = podman("top", "box", "pid", "args")
    assert r.returncode == 0, r.stderr
    rows = [line.split(None, 1) for line in r.stdout.splitlines()[1:]]
    assert ["1", "sleep 1000"] in [[pid, args.strip()] for pid, args in rows]
    assert "sleep 999" in [args.strip() for _, args in rows]


def test_kill_and_wait(podman):
    assert podman(*RUN, "-d", "--name", "sleeper", IMAGE, "sleep", "1000").returncode == 0
    r = podman("kill", "sleeper")
    assert (r.returncode, r.stdout) == (0, "sleeper\n"), r.stderr
    r = podman("wait", "sleeper")
    assert (r.returncode, r.stdout) == (0, "137\n"), r.stderr
    assert _inspect(podman, "sleeper", "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"


def test_kill_with_a_signal_and_restart(podman):
    script = 'echo up; trap "echo usr1" USR1; while :; do sleep 1; done'
    assert podman(*RUN, "-d", "--name", "svc", IMAGE, "sh", "-c", script).returncode == 0
    assert _eventually(lambda: podman("logs", "svc").stdout == "up\n")
    assert podman("kill", "-s", "USR1", "svc").returncode == 0
    assert _eventually(lambda: podman("logs", "svc").stdout == "up\nusr1\n")
    r = podman("restart", "-t", "0", "svc")
    assert r.returncode == 0, r.stderr
    assert _inspect(podman, "svc", "{{.State.Status}}") == "running"
    assert _eventually(lambda: podman("logs", "svc").stdout == "up\nusr1\nup\n")


def test_pause_and_unpause(podman):
    assert podman(*RUN, "-d", "--name", "frozen", IMAGE, "sleep", "1000").returncode == 0
    pid = int(_inspect(podman, "frozen", "{{.State.Pid}}"))
    r = podman("pause", "frozen")
    assert (r.returncode, r.stdout) == (0, "frozen\n"), r.stderr
    assert _inspect(podman, "frozen", "{{.State.Status}}") == "paused"
    assert _frozen(pid)
    r = podman("exec", "frozen", "true")
    assert r.returncode != 0 and "container state improper" in r.stderr
    r = podman("unpause", "frozen")
    assert (r.returncode, r.stdout) == (0, "frozen\n"), r.stderr
    assert _inspect(podman, "frozen", "{{.State.Status}}") == "running"
    assert not _frozen(pid)
    assert podman("exec", "frozen", "true").returncode == 0


def test_device_flag_makes_the_node(podman):
    r = podman(*RUN, "--rm", "--device", "/dev/null:/dev/mynull", IMAGE,
               "stat", "-c", "%F %t,%T %a", "/dev/mynull")
    assert (r.returncode, r.stdout) == (0, "character special file 1,3 666\n"), r.stderr


def test_privileged_gets_every_capability(podman):
    with open("/proc/self/status") as f:
        bounding = next(line.split()[1] for line in f if line.startswith("CapBnd:"))
    r = podman(*RUN, "--rm", "--privileged", IMAGE, "grep", "^CapEff:", "/proc/self/status")
    assert (r.returncode, r.stdout.split()) == (0, ["CapEff:", bounding]), r.stderr


def test_tmpfs_flag_mounts_a_world_writable_tmpfs(podman):
    r = podman(*RUN, "--rm", "-u", "1000", "--tmpfs", "/scratch", IMAGE,
               "sh", "-c", "stat -c '%a %U' /scratch; touch /scratch/f && echo wrote")
    assert (r.returncode, r.stdout) == (0, "1777 root\nwrote\n"), r.stderr


def test_tmpfs_over_an_image_directory_copies_its_content_up(podman):
    r = podman(*RUN, "--rm", "--tmpfs", "/etc", IMAGE, "sh", "-c", "ls /etc; grep ^user: /etc/passwd")
    assert r.returncode == 0, r.stderr
    assert {"group", "passwd", "hosts", "hostname"} <= set(r.stdout.split())
