"""Starts one process of a task with the runtime binary, then reaps it and records its exit status.

Imports only the standard library's small modules: one of these runs beside
every container (see containerd_py/tasks/DESIGN.md).
"""
import json
import os
import signal
import socket
import sys
import tempfile
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
USAGE = ("usage: python -m containerd_py.shim ID BUNDLE NAME RUNTIME RUNTIME_ROOT TERMINAL STDIN STDOUT STDERR"
         " [NO_PIVOT]")


class Args:
    """Positional, fixed order (argparse alone costs more memory than the rest of the shim)."""

    def __init__(self, argv: list[str]):
        if len(argv) not in (9, 10):
            raise SystemExit(USAGE)
        (self.id, self.bundle, self.name, self.runtime, self.runtime_root, terminal,
         self.stdin, self.stdout, self.stderr) = argv[:9]
        self.terminal = terminal == "1"
        self.no_pivot = argv[9:] == ["1"]

    def file(self, suffix: str) -> str:
        return os.path.join(self.bundle, f"{self.name}.{suffix}")


def write_atomic(path: str, data: dict) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.rename(path + ".tmp", path)


def _open_fifo(path: str, write: bool) -> int:
    """Opens never block on a client slow to open its end: O_RDWR for output FIFOs;
    stdin is opened non-blocking (no writer yet is fine) and then made blocking.
    An output may be a file:// URI instead (ctr's --log-uri): the file, appended to."""
    if path.startswith("file://"):
        if not write:
            raise ValueError(f"stdin cannot be a log URI: {path}")
        return os.open(path[len("file://"):], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    if "://" in path:
        raise ValueError(f"unsupported IO URI scheme: {path}")
    if write:
        return os.open(path, os.O_RDWR)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.set_blocking(fd, True)
    return fd


def _runtime_error(args: Args, status: int) -> str:
    """The last error the runtime logged (its --log, JSON lines)."""
    message = f"runtime {os.path.basename(args.runtime)} exited with status {status}"
    try:
        with open(os.path.join(args.bundle, "log.json")) as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("level") in ("error", "fatal"):
                    message = entry.get("msg", message)
    except FileNotFoundError:
        pass
    return message


def _runtime_argv(args: Args, console: str) -> list[str]:
    argv = [args.runtime, "--root", args.runtime_root, "--log", os.path.join(args.bundle, "log.json"),
            "--log-format", "json"]
    if args.name == "init":
        argv += ["create", "--bundle", args.bundle]
        if args.no_pivot:
            argv.append("--no-pivot")
    else:
        argv += ["exec", "--detach", "--process", args.file("process.json")]
    argv += ["--pid-file", args.file("pid")]
    if console:
        argv += ["--console-socket", console]
    return argv + [args.id]


def _spawn(argv: list[str], stdio: list[int], cwd: str) -> int:
    """Runs the runtime with `stdio` as its fds 0-2 (it hands them to the container) and waits."""
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            for target, fd in enumerate(stdio):
                os.dup2(fd, target)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            return 255  # reaped by someone else: cannot happen while we are its parent


def _receive_master(server: socket.socket) -> int:
    """The pty master the runtime sends over the console socket (SCM_RIGHTS)."""
    conn, _ = server.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise RuntimeError("the runtime sent no terminal over the console socket")
    return fds[0]


def _pump(src: int, dst: int, close_dst: bool) -> None:
    try:
        while data := os.read(src, 32768):
            while data:
                data = data[os.write(dst, data):]
    except OSError:
        pass  # EIO from a master whose slave side is all closed: the end
    finally:
        if close_dst:
            os.close(dst)


def _follow_window_size(master: int, args: Args) -> None:
    """The daemon asks for a new window size by writing it to NAME.winsize and sending SIGWINCH."""
    import fcntl
    import struct
    import termios

    def apply(*_):
        try:
            with open(args.file("winsize")) as f:
                width, height = (int(v) for v in f.read().split())
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        except (OSError, ValueError):
            pass  # no size asked for yet, or the terminal is gone

    signal.signal(signal.SIGWINCH, apply)
    apply()  # a size asked for before the terminal existed


def _relay_terminal(master: int, args: Args) -> threading.Thread:
    """Copies the pty's output to the stdout FIFO and the stdin FIFO into the pty."""
    _follow_window_size(master, args)
    out = _open_fifo(args.stdout, True) if args.stdout else os.open(os.devnull, os.O_WRONLY)
    if args.stdin:
        stdin = _open_fifo(args.stdin, False)
        threading.Thread(target=_pump, args=(stdin, master, False), daemon=True).start()
    t = threading.Thread(target=_pump, args=(master, out, True), daemon=True)
    t.start()
    return t


def _start(args: Args) -> tuple[int, threading.Thread | None]:
    """Creates (init) or execs the process; returns its pid and the terminal relay, if any."""
    devnull = os.open(os.devnull, os.O_RDWR)
    server = console_dir = None
    if args.terminal:
        stdio = [devnull] * 3
        console_dir = tempfile.mkdtemp(prefix="cpy-console-")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(os.path.join(console_dir, "sock"))
        server.listen(1)
    else:
        stdio = [_open_fifo(args.stdin, False) if args.stdin else devnull,
                 _open_fifo(args.stdout, True) if args.stdout else devnull,
                 _open_fifo(args.stderr, True) if args.stderr else devnull]
    try:
        console = os.path.join(console_dir, "sock") if console_dir else ""
        # The runtime's stderr is the container's: its errors are read from its --log.
        status = _spawn(_runtime_argv(args, console), stdio, args.bundle)
        if status != 0:
            raise RuntimeError(_runtime_error(args, status))
        relay = _relay_terminal(_receive_master(server), args) if server else None
        with open(args.file("pid")) as f:
            return int(f.read().strip()), relay
    finally:
        for fd in set(stdio):
            os.close(fd)
        if server:
            server.close()
            os.unlink(console)
            os.rmdir(console_dir)


def _reap(pid: int) -> int:
    """Waits for the process (re-parented to us as subreaper); its status as a shell reports it."""
    while True:
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255  # it was never ours to reap
        if child == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def main(argv: list[str]) -> int:
    args = Args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    import ctypes  # (only here: its import is most of the shim's start-up)

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    report = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)  # detach from the daemon's pipe: the daemon may go away, we stay
    try:
        pid, relay = _start(args)
    except (OSError, RuntimeError, ValueError) as e:
        report.write(json.dumps({"error": str(e)}) + "\n")
        report.close()
        return 1
    report.write(json.dumps({"pid": pid}) + "\n")
    report.close()
    status = _reap(pid)
    if relay is not None:
        relay.join(timeout=5)  # the last output, once the pty's slave side is closed
    write_atomic(args.file("exit"), {"pid": pid, "status": status, "exited_at": time.time_ns()})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
