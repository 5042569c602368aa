"""``run``: create + start, and in the foreground also wait, relay signals (and
the terminal), remove the container and exit with the program's status."""
import gc
import os

import _signal

from runpy_oci import kernel as k
from runpy_oci.create import create
from runpy_oci.errors import RuntimeFailure
from runpy_oci.lifecycle import destroy, start_loaded, stop
from runpy_oci.state import Container, proc_stat

# Signals a foreground run passes on to the container instead of acting on.
_NOT_FORWARDED = {_signal.SIGCHLD, _signal.SIGKILL, _signal.SIGSTOP, _signal.SIGURG, _signal.SIGWINCH}


def run(root, container_id, opts):
    """Returns the exit status for the runtime to exit with."""
    from runpy_oci import spec as spec_loader

    spec = spec_loader.load(opts.bundle)
    relay_sock = console_sock = None
    if not opts.detach:
        # The init is our child, or stage 1's that exits: as subreaper we reap it either way.
        k.get().prctl(k.PR_SET_CHILD_SUBREAPER, 1)
        if spec.process.terminal and not opts.console_socket:
            import socket

            relay_sock, console_sock = socket.socketpair()
    c = create(root, container_id, opts, spec, console_sock)
    try:
        start_loaded(c)
    except BaseException:
        _remove(c)
        raise
    if opts.detach:
        c.close()
        return 0
    init_pid = c.pid
    c.close()  # let state/kill from others in while we wait
    enter_foreground(init_pid)
    if relay_sock is not None:
        from runpy_oci import console

        master = console.receive_master(relay_sock)
        relay_sock.close()
        console.relay(master, lambda: _alive(init_pid))
    status = _wait(init_pid)
    _restore_signals()
    try:
        c = Container.load(root, container_id)
    except RuntimeFailure:
        return status  # someone deleted it meanwhile
    _remove(c)
    return status


def _remove(c):
    try:
        stop(c)
        destroy(c)
    finally:
        c.close()


def _alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in "ZX"


def _wait(pid):
    """Reap children (we are a subreaper) until the init exits; its exit code."""
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


def enter_foreground(pid):
    """From here on the runtime lives as long as the container: it passes
    signals on, and collects reference cycles again (the launcher turns the
    collector off for the short part; see scripts/runpy-oci)."""
    gc.enable()

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in range(1, _signal.NSIG):
        if sig in _NOT_FORWARDED:
            continue
        try:
            _signal.signal(sig, forward)
        except (OSError, ValueError):
            pass


def _restore_signals():
    for sig in range(1, _signal.NSIG):
        if sig in _NOT_FORWARDED:
            continue
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError):
            pass
