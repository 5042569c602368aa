"""Terminals: the init makes a pty inside the container (on its own devpts)
and hands the master to whoever listens on ``--console-socket``, with
SCM_RIGHTS, as runc does; foreground ``run -t`` listens itself and relays the
pty to its own stdio.

The init imports this module before it pivots into the rootfs (where no
Python library is visible), so what the in-container half needs is imported
at the top."""
import fcntl
import os
import socket
import struct
import termios

from runpy_oci import kernel as k


def connect(path):
    """Connect to the console socket before fork: its path is not visible once
    the init has pivoted into the rootfs."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        from runpy_oci.errors import RuntimeFailure

        raise RuntimeFailure(f"cannot connect to console socket {path}: {e.strerror}") from None
    return sock


def setup_in_container(console_fd, console_size, bind_console=True):
    """Open a pty in the container, send its master, make the slave our stdio
    and controlling terminal; for the init, also its /dev/console."""
    master, slave = os.openpty()
    if console_size:
        height, width = console_size
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
    name = os.ttyname(slave)
    if bind_console:
        _bind_dev_console(name)
    sock = socket.socket(fileno=console_fd)
    try:
        socket.send_fds(sock, [name.encode()], [master])
    finally:
        sock.close()
        os.close(master)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _bind_dev_console(pts_path):
    """The runtime-spec's /dev/console: the container's pty, bind-mounted."""
    if not os.path.exists("/dev/console"):
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600))
    k.get().mount(pts_path, "/dev/console", None, k.MS_BIND)


def receive_master(sock):
    """Receive the pty master fd sent by a container's init."""
    _msg, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        from runpy_oci.errors import RuntimeFailure

        raise RuntimeFailure("console socket: no terminal file descriptor received")
    return fds[0]


def relay(master, child_alive):
    """Copy our stdin to the pty and the pty to our stdout until the container
    is gone; stdin is put in raw mode while it is a terminal, and window size
    changes are passed on."""
    import select
    import signal
    import tty

    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)

        def resize(*_):
            try:
                size = fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8)
                fcntl.ioctl(master, termios.TIOCSWINSZ, size)
            except OSError:
                pass

        resize()
        signal.signal(signal.SIGWINCH, resize)
    readers = [master, 0]
    try:
        while True:
            try:
                ready, _, _ = select.select(readers, [], [], 0.2)
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(1, data)
            if 0 in ready:
                data = os.read(0, 65536)
                if data:
                    os.write(master, data)
                else:
                    readers.remove(0)
            if not ready and not child_alive():
                break
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
