"""``run``: create + start, and in the foreground also wait, relay signals (and
the terminal), remove the container and exit with the program's status."""
from runpy_oci import kernel as k
from runpy_oci import launch
from runpy_oci.create import create
from runpy_oci.errors import RuntimeFailure
from runpy_oci.lifecycle import destroy, start_loaded, stop
from runpy_oci.state import Container


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
    status = launch.follow(init_pid, relay_sock)
    launch.restore_signals()
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
