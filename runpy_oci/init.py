"""What runs in the container's init process (pid 1 of a new pid namespace),
forked from the runtime: build the container's world, report ready, wait on
the exec fifo for ``start``, then exec the user program.

Everything that can fail is done before "ready", so ``create`` reports it;
after "ready" only the fifo handshake and the exec remain. The fifo's write
end stays open until the program's own exec (``sealed.execve``), so
``start`` returns once the program runs: a signal sent right after finds its
handlers, and ``state`` says "running" only then.
"""
import os

from runpy_oci import kernel as k
from runpy_oci import launch, namespaces, process, rootfs, sealed
from runpy_oci.errors import RuntimeFailure
from runpy_oci.mounts import Root


def run(a):
    """Never returns: execs the program, or reports the error and exits."""
    try:
        exe, seccomp_filter, state = _prepare(a)
        a.channel.send("ready")
        started = _wait_for_start(a.fifo_fd, a.spec.hooks, state)
        process.close_fds_from(3 + a.passed_fds, keep=(a.exec_fd, started))  # (both are close-on-exec)
        if seccomp_filter is not None:
            seccomp_filter.load()  # as close to execve as can be
        proc = a.process
        sealed.execve(a.exec_fd, exe, proc.args, process.program_env(proc), report_fd=started)
    except BaseException as e:  # past "ready", the runtime may be gone: then stderr hears of it
        launch.child_failed(a.channel, e)


def _prepare(a):
    """Everything up to the exec; returns the program, the seccomp filter
    still to load (None if there is none, or it is loaded already) and the
    state for startContainer hooks (None without hooks that need it)."""
    spec, proc = a.spec, a.process
    os.setsid()
    if a.console_fd is not None:
        from runpy_oci import console  # now: no Python library is visible after the pivot
    seccomp_filter = a.seccomp  # made by the runtime: libseccomp, if it needed it, is loaded already
    if a.agent_fd is not None:
        import socket  # noqa: F401 - loaded now: no library is visible after the pivot
    state = _build_rootfs(a)
    _ensure_cwd(proc.cwd)
    if a.console_fd is not None:
        console.setup_in_container(a.console_fd, proc.console_size)
    process.set_hostname(spec)
    process.write_sysctls(spec.linux.sysctl)
    rootfs.readonly_paths(spec.linux.readonly_paths)
    rootfs.mask_paths(spec.linux.masked_paths)
    if spec.root_readonly:
        rootfs.readonly_root()
    process.apply_rlimits(proc)
    process.apply_oom_score_adj(proc)
    _unshare_cgroup(a)  # while we still have CAP_SYS_ADMIN
    if seccomp_filter is not None and not proc.no_new_privileges:
        # Without no_new_privs loading a filter takes CAP_SYS_ADMIN, which
        # switch_user may drop: load it now (runc does the same).
        seccomp_filter.load_for(a.agent_fd, a.channel)
        seccomp_filter = None
    process.make_undumpable()
    process.switch_user(proc)
    if seccomp_filter is not None and a.agent_fd is not None:
        seccomp_filter.load_for(a.agent_fd, a.channel)  # its agent must have the fd before start
        seccomp_filter = None
    process.enter_cwd(proc.cwd)
    return process.find_executable(proc), seccomp_filter, state


def _unshare_cgroup(a):
    """Make the container's cgroup (ours since stage 1 forked us) the root of
    our own cgroup namespace if asked."""
    if not namespaces.creates(a.spec.linux, "cgroup"):
        return
    try:
        k.get().unshare(k.CLONE_NEWCGROUP)
    except OSError as e:
        raise RuntimeFailure(f"linux.namespaces: cannot create the cgroup namespace: {e.strerror}") from None


def _build_rootfs(a):
    spec = a.spec
    rootfs.prepare_root(spec)
    root = Root(spec.root_path)
    try:
        rootfs.mount_all(spec, root, a.cgroup)
        rootfs.setup_dev(spec, root)
    finally:
        root.close()
    state = _create_hooks(a) if spec.hooks else None
    rootfs.pivot(spec, a.no_pivot)
    rootfs.apply_root_propagation(spec)
    return state


def _create_hooks(a):
    """Before the pivot: the runtime runs prestart and createRuntime and hands
    us the state; we run createContainer (in the container's namespaces, the
    path still resolving as the runtime sees it). The state is kept for
    startContainer; None if no hook needs it."""
    from runpy_oci import hooks  # also for startContainer: no library is visible after the pivot

    if not hooks.needs_state(a.spec.hooks):
        return None
    a.channel.send("hooks")
    msg = a.channel.recv()
    if msg is None or msg["type"] != "state":
        os._exit(1)  # the runtime's hooks failed; it reports why
    hooks.run_all(a.spec.hooks, "createContainer", msg["state"])
    return msg["state"]


def _ensure_cwd(cwd):
    """runc creates a missing cwd (as root, before dropping privileges)."""
    if not os.path.isdir(cwd):
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)
        except OSError as e:
            raise RuntimeFailure(f"process.cwd: cannot create {cwd}: {e.strerror}") from None


def _wait_for_start(fifo_fd, spec_hooks, state):
    """Block until ``start`` opens the exec fifo for reading, run the
    startContainer hooks, then tell it we go ("0"), or why not ("E" and the
    message: start reports it, and we exit). Returns the fifo's write end,
    to close with the program's exec: ``start`` returns at that EOF."""
    try:
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError as e:
        raise RuntimeFailure(f"cannot open exec fifo (is /proc mounted in the container?): {e.strerror}") from None
    if spec_hooks.get("startContainer"):
        from runpy_oci import fastjson, hooks

        created = dict(fastjson.loads(state), status="created")
        try:
            hooks.run_all(spec_hooks, "startContainer", fastjson.dumps(created))
        except RuntimeFailure as e:
            os.write(fd, b"E" + str(e).encode())
            os._exit(1)
    os.write(fd, b"0")
    return fd

