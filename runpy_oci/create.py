"""``create``: everything but exec'ing the user program.

Process tree, like runc's nsexec:
  runtime (this process) --fork--> stage 1 --fork--> init
Stage 1 joins the namespaces given by path and unshares the new ones (a new
pid or time namespace only applies to children, hence its own fork) and
exits once it has reported the init's host pid. The init builds the rootfs
and waits on the exec fifo (see ``runpy_oci.init``).

When stage 1 has nothing to do but create namespaces (none joined by path,
no user namespace, no time offsets: ``runc spec``'s config), there is none:
  runtime --clone3--> init
born in its new namespaces as well as its cgroup (``_direct_clone_flags``).

Moving a process into a cgroup by its pid makes the kernel wait for an RCU
grace period (up to 25 ms, most of a ``run``). So nothing is moved by pid:
stage 1 (or the init itself) is born in the container's cgroup on the
unified hierarchy (``Cgroup.fork``) and moves itself on the v1 ones
(``Cgroup.enter``) before it does anything else; the init, its child,
inherits all of them.

Any failure removes all that was made: state dir, cgroup, processes.
"""
import os
import time

import _signal

from runpy_oci import kernel as k
from runpy_oci import namespaces, process, sealed
from runpy_oci.cgroups import Cgroup
from runpy_oci.errors import HookFailure, RuntimeFailure
from runpy_oci.lifecycle import deletion_requested
from runpy_oci.state import OCI_VERSION, Container, proc_stat, rfc3339_nano
from runpy_oci.sync import Channel


class InitArgs:
    """What the runtime hands to stage 1 and the init across fork."""

    __slots__ = ("spec", "channel", "fifo_fd", "console_fd", "no_pivot", "cgroup", "preserve_fds", "agent_fd",
                 "exec_fd")

    def __init__(self, spec, channel, fifo_fd, console_fd, no_pivot, cgroup, preserve_fds, agent_fd, exec_fd):
        self.exec_fd = exec_fd  # the sealed exec helper (runpy_oci.sealed)
        self.agent_fd = agent_fd  # a socket for the seccomp listener fd (SCMP_ACT_NOTIFY), or None
        self.spec = spec
        self.channel = channel
        self.fifo_fd = fifo_fd
        self.console_fd = console_fd
        self.no_pivot = no_pivot
        self.cgroup = cgroup
        self.preserve_fds = preserve_fds


class CreateOptions:
    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "preserve_fds", "detach")

    def __init__(self, bundle=".", pid_file=None, console_socket=None, no_pivot=False, preserve_fds=0, detach=True):
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds
        # False for foreground ``run``: it may take the terminal itself.
        self.detach = detach


def create(root, container_id, opts, spec=None, console_sock=None):
    """Create the container; returns its (locked) Container. ``spec`` and
    ``console_sock`` let ``run`` pass what it already made."""
    from runpy_oci import spec as spec_loader

    if spec is None:
        spec = spec_loader.load(opts.bundle)
    _check_terminal(spec, opts, console_sock)
    wait_for_children()
    if spec.process.apparmor_profile or spec.process.selinux_label or spec.linux.mount_label:
        from runpy_oci import lsm

        lsm.check(spec.process, spec.linux.mount_label)
    c = Container.new(root, container_id)
    made = _Made()
    try:
        _create_in(c, spec, opts, console_sock, made)
    except BaseException as e:
        made.undo(c)
        if spec.hooks and isinstance(e, HookFailure):
            from runpy_oci import hooks

            hooks.warn_all(spec.hooks, "poststop", _state_json(c.id, spec, 0, "stopped"))
        raise
    return c


def wait_for_children():
    """SIGCHLD at its default: a caller that ignores it would have the kernel
    reap our children before we wait for them, and pass it on to the container."""
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)


def _socket_activation(spec):
    """runc: the descriptors of systemd's socket activation (LISTEN_FDS, with
    LISTEN_PID naming us) go on to the init as its fds 3.., before those of
    --preserve-fds, and its environment says so. Returns how many."""
    count = os.environ.get("LISTEN_FDS", "")
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or not count.isdigit() or not int(count):
        return 0
    spec.process.env = [*spec.process.env, f"LISTEN_FDS={int(count)}", "LISTEN_PID=1"]
    return int(count)


def _state(container_id, spec, pid, status):
    """The runtime-spec state, as hooks and seccomp agents get it."""
    state = {"ociVersion": OCI_VERSION, "id": container_id, "status": status, "pid": pid, "bundle": spec.bundle}
    if spec.annotations:
        state["annotations"] = spec.annotations
    return state


def _state_json(container_id, spec, pid, status):
    """The state as a hook reads it on its stdin."""
    from runpy_oci import fastjson

    return fastjson.dumps(_state(container_id, spec, pid, status))


def _check_terminal(spec, opts, console_sock):
    if spec.process.terminal and not opts.console_socket and console_sock is None:
        raise RuntimeFailure("cannot allocate tty if runpy-oci will detach without setting console socket")
    if opts.console_socket and not spec.process.terminal:
        raise RuntimeFailure("cannot use console socket if runpy-oci will not detach or allocate tty")


class _Made:
    """What a create has made so far, to undo on failure."""

    def __init__(self):
        self.pids = []
        self.cgroup = None

    def undo(self, c):
        for pid in reversed(self.pids):
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()
            except OSError:
                pass
        try:
            c.remove()
        finally:
            c.close()


def _create_in(c, spec, opts, console_sock, made):
    # Written now so that state/list report "creating" while we work.
    c.data = {"id": c.id, "bundle": spec.bundle, "rootfs": spec.root_path,
              "created": rfc3339_nano(time.time_ns()), "annotations": spec.annotations}
    c.save()
    os.mkfifo(c.fifo_path, 0o622)
    os.chmod(c.fifo_path, 0o622)
    cgroup = Cgroup.for_container(spec.linux.cgroups_path, c.id)
    cgroup.create()
    made.cgroup = cgroup
    cgroup.apply(spec.linux.resources)  # limits in place before any process joins
    if opts.console_socket and console_sock is None:
        from runpy_oci import console

        console_sock = console.connect(opts.console_socket)
    parent, child = Channel.pair()
    fifo_fd = os.open(c.fifo_path, os.O_PATH | os.O_CLOEXEC)
    console_fd = None
    if console_sock is not None:
        console_fd = console_sock.fileno()
        os.set_inheritable(console_fd, False)
    agent_socks = _agent_sockets(spec)
    exec_fd = sealed.helper_fd()
    passed_fds = _socket_activation(spec) + opts.preserve_fds
    try:
        init_args = InitArgs(spec, child, fifo_fd, console_fd, opts.no_pivot, cgroup, passed_fds,
                             agent_socks[1].fileno() if agent_socks else None, exec_fd)
        # Imported before the fork: in a forked child every page an import
        # writes costs a copy-on-write fault.
        from runpy_oci import init

        init_pid, early = _fork_init(init_args, parent, made, init.run)
        _expect_ready(parent, early, {
            "hooks": lambda: _create_hooks(parent, c.id, spec, init_pid),
            "seccomp": lambda: _to_seccomp_agent(agent_socks[0], c.id, spec, init_pid)})
    finally:
        parent.close()
        os.close(fifo_fd)
        if console_sock is not None:
            console_sock.close()
        for sock in agent_socks:
            sock.close()
        os.close(exec_fd)
    st = proc_stat(init_pid)
    c.data.update(
        pid=init_pid,
        pid_start=st[1] if st else 0,
        cgroup_paths=cgroup.paths,
        freezer_state=cgroup.freezer_state_file(),
        namespaces={ns.type: ns.path for ns in spec.linux.namespaces},
    )
    if spec.hooks:
        from runpy_oci import hooks

        c.data["hooks"] = hooks.record(spec.hooks)
    if deletion_requested(c):
        raise RuntimeFailure(f"container {c.id} was deleted (delete --force) while it was being created")
    c.save()
    if opts.pid_file:
        _write_pid_file(opts.pid_file, init_pid)


def _fork_init(a, parent, made, init_run):
    """Fork the init (to run ``init_run``), straight into its cgroup and new
    namespaces if it can be, else through stage 1. Returns (init pid, the
    init's messages read meanwhile, see ``_handshake``)."""
    ns_flags = _direct_clone_flags(a.spec.linux)
    init_pid = None if ns_flags is None else a.cgroup.fork_into_namespaces(ns_flags)
    if init_pid == 0:
        parent.close()
        _direct_init(a, init_run)
    if init_pid is not None:
        made.pids.append(init_pid)
        a.channel.close()
        return init_pid, []
    stage1, in_unified = a.cgroup.fork()
    if stage1 == 0:
        parent.close()
        _stage1(a, in_unified, init_run)
    made.pids.append(stage1)
    a.channel.close()
    init_pid, early = _handshake(parent, stage1, a.spec)
    made.pids.insert(0, init_pid)
    _reap(stage1)
    made.pids.remove(stage1)
    return init_pid, early


def _direct_clone_flags(linux):
    """The clone flags that create the init in its namespaces with no stage 1,
    or None when it takes stage 1: to join a namespace by path, to create a
    user namespace (mapped from here before anything else happens in it),
    to write time offsets (only before any process is in the namespace).
    Not the cgroup namespace: the init makes that later (``init.run``)."""
    if linux.time_offsets or namespaces.creates(linux, "user") or any(ns.path for ns in linux.namespaces):
        return None
    return namespaces.new_flags(linux, exclude=("cgroup",))


def _handshake(parent, stage1, spec):
    """Drive stage 1: map ids if it made a user namespace; get the init pid.
    Returns (init pid, the init's messages that came first): the init and
    stage 1 share the channel, and the init may get there first."""
    early = []
    while True:
        msg = parent.recv()
        if msg is None:
            raise RuntimeFailure("container init exited before it was set up")
        kind = msg["type"]
        if kind == "userns":
            namespaces.write_id_maps(stage1, spec.linux)
            parent.send("mapped")
        elif kind == "pid":
            return msg["pid"], early
        elif kind in ("ready", "hooks"):
            early.append(msg)
        elif kind == "error":
            raise _init_error(msg)


def _init_error(msg):
    return (HookFailure if msg.get("hook") else RuntimeFailure)(msg["message"])


def _expect_ready(parent, early, handlers):
    """The init's messages until "ready": "hooks" when it is ready for the create
    hooks, "seccomp" when it has put its seccomp listener fd on the agent socket."""
    pending = list(early)
    while True:
        msg = pending.pop(0) if pending else parent.recv()
        if msg is None:
            raise RuntimeFailure("container init exited before it was set up")
        if msg["type"] == "ready":
            return
        if msg["type"] in handlers:
            handlers[msg["type"]]()
        elif msg["type"] == "error":
            raise _init_error(msg)


def _agent_sockets(spec):
    """(runtime end, init end) of a socket pair for the seccomp listener fd, when a rule notifies."""
    sc = spec.linux.seccomp
    if sc is None or not sc.notifies:
        return ()
    import socket

    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def _to_seccomp_agent(sock, container_id, spec, pid, status="creating"):
    """A listener fd from the container (its init's, or an exec'd process's), on
    to the seccomp agent at listenerPath with the state."""
    import socket

    from runpy_oci import seccomp

    _, fds, _, _ = socket.recv_fds(sock, 64, 1)
    if not fds:
        raise RuntimeFailure("linux.seccomp: the init sent no listener fd")
    try:
        seccomp.send_to_agent(spec.linux.seccomp, fds[0], pid, _state(container_id, spec, pid, status))
    finally:
        os.close(fds[0])


def _create_hooks(parent, container_id, spec, init_pid):
    """prestart and createRuntime here, in the runtime's namespaces; then the
    init gets the state for its createContainer and startContainer hooks."""
    from runpy_oci import hooks

    state = _state_json(container_id, spec, init_pid, "creating")
    hooks.run_all(spec.hooks, "prestart", state)
    hooks.run_all(spec.hooks, "createRuntime", state)
    parent.send("state", state=state)


def _reap(pid):
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeFailure("container setup failed in its namespace stage")


def _stage1(a, in_unified, init_run):
    """In the first child: enter the cgroup, enter/create namespaces, fork
    the init (to run ``init_run``), report its pid."""
    try:
        # First: the init must inherit it, and a joined mount namespace would hide the cgroupfs.
        a.cgroup.enter(unified=not in_unified)
        linux = a.spec.linux
        _close_fds_except(a)
        namespaces.join_existing(linux)
        if namespaces.creates(linux, "user"):
            try:
                k.get().unshare(k.CLONE_NEWUSER)
            except OSError as e:
                raise RuntimeFailure(f"linux.namespaces: cannot create the user namespace: {e.strerror}") from None
            a.channel.send("userns")
            if a.channel.recv() is None:
                os._exit(1)
            if linux.gid_mappings:
                os.setresgid(0, 0, 0)
            if linux.uid_mappings:
                os.setresuid(0, 0, 0)
            # Changing ids made us non-dumpable: /proc/self would belong to the
            # host's root and e.g. timens_offsets would be closed to us.
            k.get().prctl(k.PR_SET_DUMPABLE, 1)
        # The cgroup namespace comes later, from the init, once it is in its cgroup.
        try:
            k.get().unshare(namespaces.new_flags(linux, exclude=("user", "cgroup")))
        except OSError as e:
            raise RuntimeFailure(f"linux.namespaces: cannot create namespaces: {e.strerror}") from None
        namespaces.write_time_offsets(linux)
        pid = os.fork()
        if pid == 0:
            init_run(a)
        a.channel.send("pid", pid=pid)
        os._exit(0)
    except BaseException as e:  # never return into the CLI from a child
        _child_failed(a, e)


def _direct_init(a, init_run):
    """In the init, born in its cgroup on the unified hierarchy and in its new
    namespaces: what stage 1 would do still (``_stage1``), then ``init_run``."""
    try:
        a.cgroup.enter(unified=False)
        _close_fds_except(a)
    except BaseException as e:
        _child_failed(a, e)
    init_run(a)


def _child_failed(a, e):
    """Report ``e`` to the runtime and exit."""
    try:
        msg = f"{e.strerror}: {e.filename}" if isinstance(e, OSError) and e.filename else str(e)
        a.channel.send("error", message=msg or type(e).__name__)
    finally:
        os._exit(1)


def _close_fds_except(a):
    """Drop every descriptor of the runtime the container has no use for; above
    all the container's lock, which would otherwise stay held by the init.
    By ranges (close_range), not by listing /proc/self/fd."""
    keep = {a.channel.read_fd, a.channel.write_fd, a.fifo_fd, a.console_fd, a.agent_fd, a.exec_fd}
    keep.discard(None)
    process.close_fds_from(3 + a.preserve_fds, keep=keep)


def _write_pid_file(path, pid):
    """Atomically, like runc: a reader never sees a partial pid."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path))
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)
