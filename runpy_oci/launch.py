"""Starting a container process, the init (``create``) and an exec'd one
(``exec``) alike, as runc's ``parentProcess`` starts both:

  runtime --fork--> stage 1 --fork--> the process

Stage 1 is born in the container's cgroup on the unified hierarchy and moves
itself on the v1 ones (``Cgroup.fork`` and ``enter``: nothing is moved by
pid, which would make the kernel wait for an RCU grace period, up to 25 ms),
drops the runtime's descriptors, enters the process's namespaces (a new pid
or time namespace applies only to children, hence its own fork), reports the
process's host pid and exits. Where stage 1 would only create namespaces,
the process is cloned straight into them and its cgroup (``fork_direct``).

Stage 1 and the process share one channel (``sync.Channel``): messages
"pid", "error" and whatever the kind of process asks the runtime for. The
process's end closes with the program's own exec (through the sealed
helper), so EOF there means the program runs.
"""
import os

import _signal

from runpy_oci import process
from runpy_oci.errors import HookFailure, RuntimeFailure
from runpy_oci.state import OCI_VERSION

# Signals a foreground run or exec passes on to the process instead of acting on.
_NOT_FORWARDED = {_signal.SIGCHLD, _signal.SIGKILL, _signal.SIGSTOP, _signal.SIGURG, _signal.SIGWINCH}


class ProcessArgs:
    """What the runtime hands to stage 1 and the process across fork, for the
    init and an exec'd process alike (runc's initConfig, youki's ContainerArgs)."""

    __slots__ = ("spec", "process", "channel", "cgroup", "exec_fd", "console_fd", "agent_fd", "passed_fds",
                 "fifo_fd", "no_pivot", "init_pid", "seccomp")

    def __init__(self, spec, proc, channel, cgroup, exec_fd, console_fd=None, agent_fd=None, passed_fds=0,
                 fifo_fd=None, no_pivot=False, init_pid=None, seccomp=None):
        self.spec = spec  # the container's Spec
        self.process = proc  # the spec.model.Process to run (the spec's own, for the init)
        self.channel = channel  # the child's end
        self.cgroup = cgroup
        self.exec_fd = exec_fd  # the sealed exec helper (runpy_oci.sealed)
        self.console_fd = console_fd  # a socket to send the pty's master on, or None
        self.agent_fd = agent_fd  # a socket for the seccomp listener fd (SCMP_ACT_NOTIFY), or None
        self.passed_fds = passed_fds  # descriptors from 3 on that go to the program (LISTEN_FDS, --preserve-fds)
        self.fifo_fd = fifo_fd  # the init's: the exec fifo (O_PATH), to wait on for ``start``
        self.no_pivot = no_pivot  # the init's: chroot rather than pivot_root
        self.init_pid = init_pid  # an exec'd process's: the init whose namespaces it joins
        self.seccomp = seccomp  # the filter, made in the runtime, where libseccomp is visible

    def close_runtime_fds(self):
        """Drop every descriptor of the runtime the process has no use for;
        above all the container's lock, which it would otherwise hold. By
        ranges (close_range), not by listing /proc/self/fd."""
        keep = {self.channel.read_fd, self.channel.write_fd, self.fifo_fd, self.console_fd, self.agent_fd,
                self.exec_fd}
        keep.discard(None)
        process.close_fds_from(3 + self.passed_fds, keep=keep)


def check_process(proc, console_socket, relayed, mount_label=""):
    """What runc refuses before it starts anything: a terminal with nowhere to
    go (no console socket, and the runtime does not relay it in the
    foreground), a console socket with no terminal; LSM fields the host would
    have to enforce."""
    if proc.terminal and not console_socket and not relayed:
        raise RuntimeFailure("cannot allocate tty if runpy-oci will detach without setting console socket")
    if console_socket and not proc.terminal:
        raise RuntimeFailure("cannot use console socket if runpy-oci will not detach or allocate tty")
    if proc.apparmor_profile or proc.selinux_label or mount_label:
        from runpy_oci import lsm

        lsm.check(proc, mount_label)


def wait_for_children():
    """SIGCHLD at its default: a caller that ignores it would have the kernel
    reap our children before we wait for them, and pass it on to the container."""
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)


# -- forking ------------------------------------------------------------------
def fork_direct(a, parent, ns_flags, main):
    """Clone the process straight into its cgroup (unified hierarchy) and the
    new namespaces ``ns_flags``; it runs ``main(a)``. Returns its pid, or
    None when the kernel will not (nothing was forked: take stage 1)."""
    pid = a.cgroup.fork_into_namespaces(ns_flags)
    if pid is None:
        return None
    if pid == 0:
        parent.close()
        try:
            a.cgroup.enter(unified=False)
            a.close_runtime_fds()
        except BaseException as e:
            child_failed(a.channel, e)
        main(a)
    a.channel.close()
    return pid


def fork_stage1(a, parent, enter_namespaces, main):
    """Fork stage 1, which enters the cgroup, drops the runtime's
    descriptors, calls ``enter_namespaces(a)``, forks the process to run
    ``main(a)``, reports its pid ("pid") and exits. Returns stage 1's pid."""
    stage1, in_unified = a.cgroup.fork()
    if stage1 == 0:
        parent.close()
        try:
            # First: the process must inherit it, and a joined mount namespace would hide the cgroupfs.
            a.cgroup.enter(unified=not in_unified)
            a.close_runtime_fds()
            enter_namespaces(a)
            pid = os.fork()
            if pid == 0:
                main(a)
            a.channel.send("pid", pid=pid)
            os._exit(0)
        except BaseException as e:  # never return into the CLI from a child
            child_failed(a.channel, e)
    a.channel.close()
    return stage1


def reap_stage1(pid):
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeFailure("container setup failed in its namespace stage")


def kill_and_reap(pid):
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


# -- the channel --------------------------------------------------------------
def child_failed(channel, e):
    """In stage 1 or the process, before the program's exec: report ``e`` to
    the runtime (or, once it has gone, to stderr) and exit; never return
    into the CLI."""
    try:
        message = failure_message(e)
        try:
            channel.send("error", message=message, hook=isinstance(e, HookFailure))
        except OSError:
            os.write(2, f"runpy-oci: {message}\n".encode())
    finally:
        os._exit(1)


def failure_message(e):
    if isinstance(e, RuntimeFailure):
        return str(e)
    if isinstance(e, OSError):
        return f"{e.strerror}: {e.filename}" if e.filename else str(e)
    return f"{type(e).__name__}: {e}"  # a bug: say at least what it was


class Replies:
    """The runtime's end of the channel. Stage 1 and the process share it, so
    a message may come before the one awaited; it waits for a later ``until``."""

    def __init__(self, channel, gone):
        self.channel = channel
        self.gone = gone  # the failure when the channel closes before what is awaited
        self._waiting = []

    def until(self, kind, handlers=None):
        """Serve messages with ``handlers`` (type -> callable) until one of type
        ``kind`` comes, and return it; with ``kind`` None, until EOF (the
        program runs). "error" raises the failure it reports."""
        handlers = handlers or {}
        later = []
        try:
            while True:
                msg = self._waiting.pop(0) if self._waiting else self.channel.recv()
                if msg is None:
                    if kind is None:
                        return None
                    raise RuntimeFailure(self.gone)
                if msg["type"] == kind:
                    return msg
                if msg["type"] == "error":
                    raise (HookFailure if msg.get("hook") else RuntimeFailure)(msg["message"])
                if msg["type"] in handlers:
                    handlers[msg["type"]]()
                else:
                    later.append(msg)
        finally:
            self._waiting = later + self._waiting


# -- seccomp agents, pid files ------------------------------------------------
def oci_state(container_id, spec, pid, status):
    """The runtime-spec state, as hooks and seccomp agents get it."""
    state = {"ociVersion": OCI_VERSION, "id": container_id, "status": status, "pid": pid, "bundle": spec.bundle}
    if spec.annotations:
        state["annotations"] = spec.annotations
    return state


def agent_sockets(spec):
    """(runtime end, process end) of a socket pair for the seccomp listener fd, when a rule notifies."""
    sc = spec.linux.seccomp
    if sc is None or not sc.notifies:
        return ()
    import socket

    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def to_seccomp_agent(sock, container_id, spec, pid, status):
    """A listener fd from the process, on to the seccomp agent at listenerPath with the state."""
    import socket

    from runpy_oci import seccomp

    _, fds, _, _ = socket.recv_fds(sock, 64, 1)
    if not fds:
        raise RuntimeFailure("linux.seccomp: the container process sent no listener fd")
    try:
        seccomp.send_to_agent(spec.linux.seccomp, fds[0], pid, oci_state(container_id, spec, pid, status))
    finally:
        os.close(fds[0])


def write_pid_file(path, pid):
    """Atomically, like runc: a reader never sees a partial pid."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


# -- the foreground -----------------------------------------------------------
def follow(pid, relay_sock=None):
    """Foreground ``run`` and ``exec``: live as long as the process, pass
    signals on (and relay its terminal over ``relay_sock``); its exit status."""
    _enter_foreground(pid)
    if relay_sock is not None:
        from runpy_oci import console

        master = console.receive_master(relay_sock)
        relay_sock.close()
        console.relay(master, lambda: _alive(pid))
    return _wait(pid)


def _alive(pid):
    from runpy_oci.state import proc_stat

    st = proc_stat(pid)
    return st is not None and st[0] not in "ZX"


def _wait(pid):
    """Reap children (we are a subreaper) until ``pid`` exits; its exit status."""
    status = None
    while status is None:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if got == pid:
            status = st
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _enter_foreground(pid):
    """From here on the runtime lives as long as the process: it passes
    signals on, also those its caller had blocked, and collects reference
    cycles again (the launcher turns the collector off for the short part;
    see scripts/runpy-oci)."""
    import gc

    gc.enable()

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    _set_forwarded(forward)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])


def restore_signals():
    _set_forwarded(_signal.SIG_DFL)


def _set_forwarded(handler):
    for sig in range(1, _signal.NSIG):
        if sig in _NOT_FORWARDED:
            continue
        try:
            _signal.signal(sig, handler)
        except (OSError, ValueError):
            pass
