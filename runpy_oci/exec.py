"""``exec``: another process in a running container.

Process tree: runtime --fork--> stage 1 --fork--> the process. Stage 1 is
born in the container's cgroup on the unified hierarchy and moves itself on
the v1 ones, as create's does (``Cgroup.fork`` and ``enter``: nothing is
moved by pid, which would wait for the kernel), then joins every namespace
of the container's init (a pid or time namespace applies only to children,
hence the second fork), reports the process's host pid and exits. The
process applies its own settings (terminal, rlimits, capabilities, user,
cwd) and the container's seccomp profile, and execs. Its end of the channel
is close-on-exec, so EOF there means the program runs.

With --detach the runtime exits once the program runs; the process, whose
parent (stage 1) is gone, belongs to the caller's subreaper (a containerd
shim is one). Otherwise the runtime is that subreaper itself, waits, and exits
with the program's status, as runc does.
"""
import os

from runpy_oci import kernel as k
from runpy_oci import process as process_settings
from runpy_oci import sealed
from runpy_oci.cgroups import Cgroup
from runpy_oci.create import _agent_sockets, _reap, _to_seccomp_agent, _write_pid_file, wait_for_children
from runpy_oci.errors import RuntimeFailure, WrongState
from runpy_oci.state import Container
from runpy_oci.sync import Channel

# /proc/PID/ns entries in join order: the user namespace first (later joins
# are judged by its credentials), the mount namespace last (it changes what
# paths mean).
_NAMESPACES = (("user", k.CLONE_NEWUSER), ("ipc", k.CLONE_NEWIPC), ("uts", k.CLONE_NEWUTS),
               ("net", k.CLONE_NEWNET), ("pid", k.CLONE_NEWPID), ("cgroup", k.CLONE_NEWCGROUP),
               ("time", k.CLONE_NEWTIME), ("mnt", k.CLONE_NEWNS))


class ExecOptions:
    __slots__ = ("process", "detach", "pid_file", "console_socket", "preserve_fds", "ignore_paused")

    def __init__(self, process, detach=False, pid_file=None, console_socket=None, preserve_fds=0,
                 ignore_paused=False):
        self.ignore_paused = ignore_paused
        self.process = process  # the container's Spec -> the spec.model.Process to run
        self.detach = detach
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.preserve_fds = preserve_fds


class _Args:
    """What the runtime hands to stage 1 and the process across fork."""

    __slots__ = ("process", "channel", "console_fd", "init_pid", "seccomp", "preserve_fds", "cgroup", "agent_fd",
                 "exec_fd")

    def __init__(self, process, channel, console_fd, init_pid, seccomp, preserve_fds, cgroup, agent_fd, exec_fd):
        self.exec_fd = exec_fd  # the sealed exec helper (runpy_oci.sealed)
        self.cgroup = cgroup
        self.agent_fd = agent_fd  # a socket for the seccomp listener fd (SCMP_ACT_NOTIFY), or None
        self.process = process
        self.channel = channel
        self.console_fd = console_fd
        self.init_pid = init_pid
        self.seccomp = seccomp
        self.preserve_fds = preserve_fds


def load_container(root, container_id, ignore_paused):
    """(init pid, cgroup paths, spec) of a container that can take an exec."""
    from runpy_oci import spec as spec_loader

    c = Container.load(root, container_id, lock=False)
    try:
        status = c.status()
        if status == "paused" and not ignore_paused:
            raise WrongState("cannot exec in a paused container (use --ignore-paused to override)")
        if status not in ("running", "paused"):
            raise WrongState(f"cannot exec in a {status} container")
        return c.pid, c.data.get("cgroup_paths", {}), spec_loader.load(c.data["bundle"])
    finally:
        c.close()


def exec_process(root, container_id, opts):
    """Returns the exit status for the runtime to exit with (0 when detached)."""
    init_pid, cgroup_paths, spec = load_container(root, container_id, opts.ignore_paused)
    proc = opts.process(spec)
    if proc.apparmor_profile or proc.selinux_label:
        from runpy_oci import lsm

        lsm.check(proc)
    if proc.terminal and opts.detach and not opts.console_socket:
        raise RuntimeFailure("cannot allocate tty if runpy-oci will detach without setting console socket")
    if opts.console_socket and not proc.terminal:
        raise RuntimeFailure("cannot use console socket if runpy-oci will not detach or allocate tty")
    seccomp_filter = None
    if spec.linux.seccomp is not None:
        from runpy_oci import seccomp  # compiled here: libseccomp is not visible in the container

        seccomp_filter = seccomp.Filter(spec.linux.seccomp)
    relay_sock = console_sock = None
    if proc.terminal:
        from runpy_oci import console

        if opts.console_socket:
            console_sock = console.connect(opts.console_socket)
        else:
            import socket

            relay_sock, console_sock = socket.socketpair()
    if not opts.detach:
        k.get().prctl(k.PR_SET_CHILD_SUBREAPER, 1)
    wait_for_children()
    parent, child = Channel.pair()
    console_fd = console_sock.fileno() if console_sock is not None else None
    cgroup = Cgroup(cgroup_paths)
    agent_socks = _agent_sockets(spec)
    exec_fd = sealed.helper_fd()
    a = _Args(proc, child, console_fd, init_pid, seccomp_filter, opts.preserve_fds, cgroup,
              agent_socks[1].fileno() if agent_socks else None, exec_fd)
    pid = None
    try:
        stage1, in_unified = cgroup.fork()
        if stage1 == 0:
            parent.close()
            _stage1(a, in_unified)
        child.close()
        pid = _expect_pid(parent)
        _reap(stage1)
        _expect_exec(parent, lambda: _to_seccomp_agent(agent_socks[0], container_id, spec, pid, "running"))
    except BaseException:
        if pid is not None:
            _kill(pid)
        raise
    finally:
        parent.close()
        if console_sock is not None:
            console_sock.close()
        for sock in agent_socks:
            sock.close()
        os.close(exec_fd)
    if opts.pid_file:
        _write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    from runpy_oci.run import _wait, enter_foreground

    enter_foreground(pid)
    if relay_sock is not None:
        from runpy_oci import console
        from runpy_oci.run import _alive

        master = console.receive_master(relay_sock)
        relay_sock.close()
        console.relay(master, lambda: _alive(pid))
    return _wait(pid)


def _expect_pid(parent):
    msg = parent.recv()
    if msg is None:
        raise RuntimeFailure("exec: the process exited before it was set up")
    if msg["type"] == "error":
        raise RuntimeFailure(msg["message"])
    return msg["pid"]


def _expect_exec(parent, on_seccomp):
    """EOF: the channel's close-on-exec end went with the exec; "seccomp": the
    process's listener fd is on the agent socket; else the error."""
    while (msg := parent.recv()) is not None:
        if msg["type"] == "seccomp":
            on_seccomp()
        elif msg["type"] == "error":
            raise RuntimeFailure(msg["message"])


def _kill(pid):
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _join_namespaces(init_pid):
    """setns into each namespace of the init that is not already ours."""
    fds = []
    try:
        for name, flag in _NAMESPACES:
            path = f"/proc/{init_pid}/ns/{name}"
            try:
                if os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue
                fds.append((name, flag, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except FileNotFoundError:
                continue  # a namespace type this kernel does not have
        for name, flag, fd in fds:
            try:
                k.get().setns(fd, flag)
            except OSError as e:
                raise RuntimeFailure(f"exec: cannot join the container's {name} namespace: {e.strerror}") from None
    finally:
        for _, _, fd in fds:
            os.close(fd)


def _report_and_exit(channel, e):
    """In a child: never return into the CLI."""
    try:
        if isinstance(e, RuntimeFailure):
            msg = str(e)
        elif isinstance(e, OSError):
            msg = f"{e.strerror}: {e.filename}" if e.filename else str(e)
        else:
            msg = f"exec: {type(e).__name__}: {e}"
        channel.send("error", message=msg)
    finally:
        os._exit(1)


def _stage1(a, in_unified):
    try:
        a.cgroup.enter(unified=not in_unified)  # first: joining the mount namespace hides the cgroupfs
        _join_namespaces(a.init_pid)
        pid = os.fork()
        if pid == 0:
            _process(a)
        a.channel.send("pid", pid=pid)
        os._exit(0)
    except BaseException as e:
        _report_and_exit(a.channel, e)


def _process(a):
    """The exec'd process, in every namespace of the container; never returns."""
    try:
        proc = a.process
        if a.console_fd is not None:
            from runpy_oci import console

            os.setsid()
            console.setup_in_container(a.console_fd, proc.console_size, bind_console=False)
        process_settings.apply_rlimits(proc)
        process_settings.apply_oom_score_adj(proc)
        seccomp_filter = a.seccomp
        if seccomp_filter is not None and (not proc.no_new_privileges or a.agent_fd is not None):
            seccomp_filter.load_for(a.agent_fd, a.channel)  # before the switch without no_new_privs (it takes CAP_SYS_ADMIN then)
            seccomp_filter = None
        process_settings.make_undumpable()
        process_settings.switch_user(proc)
        process_settings.enter_cwd(proc.cwd)
        exe = process_settings.find_executable(proc)
        # the channel's and the helper's close-on-exec descriptors stay until the exec
        process_settings.close_fds_from(3 + a.preserve_fds, keep=(a.channel.read_fd, a.channel.write_fd,
                                                                   a.exec_fd))
        if seccomp_filter is not None:
            seccomp_filter.load()
        # EOF on the channel once the program itself runs
        sealed.execve(a.exec_fd, exe, proc.args, process_settings.env_dict(proc.env), report_fd=a.channel.write_fd)
    except BaseException as e:
        _report_and_exit(a.channel, e)
