"""``exec``: another process in a running container.

The process is born in the init's pid and time namespaces (the runtime
enters them for its children only, around the fork), joins the init's
other namespaces, applies its own settings (terminal, rlimits,
capabilities, user, cwd) and the container's seccomp profile, and execs.
Where the runtime may not enter those two, stage 1 (``runpy_oci.launch``)
joins every namespace first and forks it. EOF on the channel means the
program runs.

With --detach the runtime exits once the program runs; the process, whose
parent is gone, belongs to the caller's subreaper (a containerd shim is
one). Otherwise the runtime is that subreaper itself, waits, and exits with
the program's status, as runc does.
"""
import os

from runpy_oci import kernel as k
from runpy_oci import launch, namespaces, process, sealed, seccomp_bpf
from runpy_oci.cgroups import Cgroup
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
    launch.check_process(proc, opts.console_socket, relayed=not opts.detach)
    seccomp_filter = seccomp_bpf.filter_for(spec, root)
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
    launch.wait_for_children()
    parent, child = Channel.pair()
    agent_socks = launch.agent_sockets(spec)
    exec_fd = sealed.helper_fd()
    a = launch.ProcessArgs(spec, proc, child, Cgroup(cgroup_paths), exec_fd,
                           console_fd=console_sock.fileno() if console_sock is not None else None,
                           agent_fd=agent_socks[1].fileno() if agent_socks else None,
                           passed_fds=opts.preserve_fds, init_pid=init_pid, seccomp=seccomp_filter)
    stage1 = pid = None
    try:
        replies = launch.Replies(parent, "exec: the process exited before it was set up")
        pid = _fork_born_joined(a, parent)
        if pid is None:
            stage1 = launch.fork_stage1(a, parent, _join_namespaces, _process)
            pid = replies.until("pid")["pid"]
            launch.reap_stage1(stage1)
            stage1 = None
        replies.until(None, {"seccomp": lambda: launch.to_seccomp_agent(agent_socks[0], container_id, spec, pid,
                                                                         "running")})
    except BaseException:
        for started in (pid, stage1):
            if started is not None:
                launch.kill_and_reap(started)
        raise
    finally:
        parent.close()
        if console_sock is not None:
            console_sock.close()
        for sock in agent_socks:
            sock.close()
        os.close(exec_fd)
    if opts.pid_file:
        launch.write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    return launch.follow(pid, relay_sock)


# Namespaces a process is born in (setns applies them to the caller's children only).
_FOR_CHILDREN = (("pid", k.CLONE_NEWPID), ("time", k.CLONE_NEWTIME))


def _fork_born_joined(a, parent):
    """The process forked at once, born in the init's pid and time namespaces,
    which the runtime enters for its children only, around the fork; it joins
    the others itself. Spares stage 1's fork and exit (~3-5 ms of an exec).
    None when the runtime may not enter them (one without privilege over the
    container's user namespace): stage 1, in that namespace, forks it then."""
    entered = _enter_for_children(a.init_pid)
    if entered is None:
        return None
    try:
        pid, in_unified = a.cgroup.fork()
    except BaseException:
        _leave(entered)
        raise
    if pid != 0:
        _leave(entered)  # not in the child: born in them, it could not go back (nor forks again)
        a.channel.close()
        return pid
    parent.close()
    try:
        a.cgroup.enter(unified=not in_unified)
        a.close_runtime_fds()
        _join_namespaces(a)  # those it was born in are ours already, so skipped
    except BaseException as e:
        launch.child_failed(a.channel, e)
    _process(a)


def _enter_for_children(init_pid):
    """[(flag, fd of our own namespace)] of each _FOR_CHILDREN namespace of the
    init entered for our children; None (nothing entered) where one is refused."""
    entered = []
    try:
        for name, flag, path in _not_ours(init_pid, _FOR_CHILDREN):
            own = os.open(f"/proc/self/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                k.get().setns(fd, flag)
            except OSError:
                os.close(own)
                raise
            finally:
                os.close(fd)
            entered.append((flag, own))
    except OSError:
        _leave(entered)
        return None
    return entered


def _leave(entered):
    """Our children are born in our own namespaces again."""
    for flag, own in reversed(entered):
        k.get().setns(own, flag)
        os.close(own)


def _join_namespaces(a):
    """In stage 1: setns into each namespace of the init that is not already
    ours; without a mount namespace of its own, chroot into its rootfs."""
    root_fd = namespaces.shared_root(a.init_pid)
    _setns_all(a.init_pid)
    namespaces.enter_shared_root(root_fd)


def _setns_all(init_pid):
    fds = []
    try:
        for name, flag, path in _not_ours(init_pid, _NAMESPACES):
            try:
                fds.append((name, flag, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
            except FileNotFoundError:
                continue  # the init went meanwhile: nothing to join, as for a type the kernel lacks
        for name, flag, fd in fds:
            try:
                k.get().setns(fd, flag)
            except OSError as e:
                raise RuntimeFailure(f"exec: cannot join the container's {name} namespace: {e.strerror}") from None
    finally:
        for _, _, fd in fds:
            os.close(fd)


def _not_ours(init_pid, kinds):
    """(name, flag, /proc path) of each of ``kinds`` (name, flag) where the
    init's namespace is not ours; a type this kernel does not have is none."""
    for name, flag in kinds:
        path = f"/proc/{init_pid}/ns/{name}"
        try:
            if os.stat(path).st_ino != os.stat(f"/proc/self/ns/{name}").st_ino:
                yield name, flag, path
        except FileNotFoundError:
            continue


def _process(a):
    """The exec'd process, in every namespace of the container; never returns."""
    try:
        proc = a.process
        if a.console_fd is not None:
            from runpy_oci import console

            os.setsid()
            console.setup_in_container(a.console_fd, proc.console_size, bind_console=False)
        process.apply_rlimits(proc)
        process.apply_oom_score_adj(proc)
        seccomp_filter = a.seccomp
        if seccomp_filter is not None and (not proc.no_new_privileges or a.agent_fd is not None):
            seccomp_filter.load_for(a.agent_fd, a.channel)  # before the switch without no_new_privs (it takes CAP_SYS_ADMIN then)
            seccomp_filter = None
        process.make_undumpable()
        process.switch_user(proc)
        process.enter_cwd(proc.cwd)
        exe = process.find_executable(proc)
        # the channel's and the helper's close-on-exec descriptors stay until the exec
        process.close_fds_from(3 + a.passed_fds, keep=(a.channel.read_fd, a.channel.write_fd, a.exec_fd))
        if seccomp_filter is not None:
            seccomp_filter.load()
        # EOF on the channel once the program itself runs
        sealed.execve(a.exec_fd, exe, proc.args, process.program_env(proc), report_fd=a.channel.write_fd)
    except BaseException as e:
        launch.child_failed(a.channel, e)
