"""``create``: everything but exec'ing the user program.

Process tree, like runc's nsexec (the machinery is ``runpy_oci.launch``):
  runtime (this process) --fork--> stage 1 --fork--> init
Stage 1 joins the namespaces given by path and unshares the new ones, mapping
the ids of a new user namespace with the runtime's help, and exits once it
has reported the init's host pid. The init builds the rootfs and waits on
the exec fifo (see ``runpy_oci.init``).

When stage 1 has nothing to do but create namespaces (none joined by path,
no user namespace, no time offsets: ``runc spec``'s config), there is none:
  runtime --clone3--> init
born in its new namespaces as well as its cgroup (``_direct_clone_flags``).

Any failure removes all that was made: state dir, cgroup, processes.
"""
import os
import time

from runpy_oci import kernel as k
from runpy_oci import launch, namespaces, rootfs, sealed, seccomp_bpf
from runpy_oci.cgroups import Cgroup
from runpy_oci.errors import HookFailure, RuntimeFailure
from runpy_oci.state import Container, proc_stat, rfc3339_nano
from runpy_oci.sync import Channel


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
    launch.check_process(spec.process, opts.console_socket, console_sock is not None, spec.linux.mount_label)
    launch.wait_for_children()
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


def _socket_activation(spec):
    """runc: the descriptors of systemd's socket activation (LISTEN_FDS, with
    LISTEN_PID naming us) go on to the init as its fds 3.., before those of
    --preserve-fds, and its environment says so. Returns how many."""
    count = os.environ.get("LISTEN_FDS", "")
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or not count.isdigit() or not int(count):
        return 0
    spec.process.env = [*spec.process.env, f"LISTEN_FDS={int(count)}", "LISTEN_PID=1"]
    return int(count)


def _state_json(container_id, spec, pid, status):
    """The state as a hook reads it on its stdin."""
    from runpy_oci import fastjson

    return fastjson.dumps(launch.oci_state(container_id, spec, pid, status))


class _Made:
    """What a create has made so far, to undo on failure."""

    def __init__(self):
        self.pids = []
        self.cgroup = None

    def undo(self, c):
        for pid in reversed(self.pids):
            launch.kill_and_reap(pid)
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
    if not rootfs.has_own_mount_namespace(spec):
        c.data["rootfs_bind"] = rootfs.bind_in_runtime_namespace(spec)  # c.remove() releases it
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
    agent_socks = launch.agent_sockets(spec)
    exec_fd = sealed.helper_fd()
    try:
        a = launch.ProcessArgs(spec, spec.process, child, cgroup, exec_fd, console_fd=console_fd,
                               agent_fd=agent_socks[1].fileno() if agent_socks else None,
                               passed_fds=_socket_activation(spec) + opts.preserve_fds, fifo_fd=fifo_fd,
                               no_pivot=opts.no_pivot,
                               # made here, where --root is at hand: a kept program spares the init
                               # loading libseccomp and generating (~10 ms with docker's profile)
                               seccomp=seccomp_bpf.filter_for(spec, os.path.dirname(c.dir)))
        # Imported before the fork: in a forked child every page an import
        # writes costs a copy-on-write fault.
        from runpy_oci import init

        replies = launch.Replies(parent, "container init exited before it was set up")
        init_pid = _fork_init(a, replies, made, init.run)
        replies.until("ready", {
            "hooks": lambda: _create_hooks(parent, c.id, spec, init_pid),
            "seccomp": lambda: launch.to_seccomp_agent(agent_socks[0], c.id, spec, init_pid, "creating")})
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
    if c.deletion_requested():
        raise RuntimeFailure(f"container {c.id} was deleted (delete --force) while it was being created")
    c.save()
    if opts.pid_file:
        launch.write_pid_file(opts.pid_file, init_pid)


def _fork_init(a, replies, made, init_run):
    """Fork the init (to run ``init_run``), straight into its cgroup and new
    namespaces if it can be, else through stage 1. Returns its pid."""
    ns_flags = _direct_clone_flags(a.spec.linux)
    init_pid = None if ns_flags is None else launch.fork_direct(a, replies.channel, ns_flags, init_run)
    if init_pid is not None:
        made.pids.append(init_pid)
        return init_pid
    stage1 = launch.fork_stage1(a, replies.channel, _enter_namespaces, init_run)
    made.pids.append(stage1)
    init_pid = replies.until("pid", {"userns": lambda: _map_ids(replies.channel, stage1, a.spec.linux)})["pid"]
    made.pids.insert(0, init_pid)
    launch.reap_stage1(stage1)
    made.pids.remove(stage1)
    return init_pid


def _direct_clone_flags(linux):
    """The clone flags that create the init in its namespaces with no stage 1,
    or None when it takes stage 1: to join a namespace by path, to create a
    user namespace (mapped from here before anything else happens in it),
    to write time offsets (only before any process is in the namespace).
    Not the cgroup namespace: the init makes that later (``init.run``)."""
    if linux.time_offsets or namespaces.creates(linux, "user") or any(ns.path for ns in linux.namespaces):
        return None
    return namespaces.new_flags(linux, exclude=("cgroup",))


def _create_hooks(parent, container_id, spec, init_pid):
    """prestart and createRuntime here, in the runtime's namespaces; then the
    init gets the state for its createContainer and startContainer hooks."""
    from runpy_oci import hooks

    state = _state_json(container_id, spec, init_pid, "creating")
    hooks.run_all(spec.hooks, "prestart", state)
    hooks.run_all(spec.hooks, "createRuntime", state)
    parent.send("state", state=state)


def _map_ids(parent, stage1, linux):
    """Stage 1 has made its user namespace: map its ids, from out here."""
    namespaces.write_id_maps(stage1, linux)
    parent.send("mapped")


def _enter_namespaces(a):
    """In stage 1: join the namespaces given by path, create the new ones.
    The cgroup namespace comes later, from the init, once it is in its cgroup."""
    linux = a.spec.linux
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
    try:
        k.get().unshare(namespaces.new_flags(linux, exclude=("user", "cgroup")))
    except OSError as e:
        raise RuntimeFailure(f"linux.namespaces: cannot create namespaces: {e.strerror}") from None
    namespaces.write_time_offsets(linux)
