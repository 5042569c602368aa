"""`containerd-py`: the daemon's command line, with containerd's flags.

One daemon per root: a lock file in the root refuses a second one. SIGTERM
or SIGINT stop it cleanly, removing its socket.
"""
import argparse
import fcntl
import logging
import os
import signal
import sys
import threading
import time

from . import __version__, config as configlib

log = logging.getLogger("containerd-py")

_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL, "panic": logging.CRITICAL}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="containerd-py", description="containerd-compatible container daemon")
    p.add_argument("-c", "--config", help=f"path to the configuration file (default {configlib.DEFAULT_CONFIG})")
    p.add_argument("-l", "--log-level", choices=configlib.LOG_LEVELS, help="set the logging level")
    p.add_argument("-a", "--address", help="address for containerd's GRPC server")
    p.add_argument("--root", help="containerd root directory")
    p.add_argument("--state", help="containerd state directory")
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    return p


class _Formatter(logging.Formatter):
    """logrus' text format, which containerd logs in."""

    def format(self, record):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        msg = record.getMessage().replace('"', '\\"')
        if record.exc_info:
            msg += " " + self.formatException(record.exc_info).replace("\n", "\\n")
        return f'time="{ts}.{int(record.created % 1 * 1e9):09d}Z" level={level} msg="{msg}"'


class RootLock:
    """An exclusive flock on <root>/containerd-py.lock, held for the daemon's life."""

    def __init__(self, root: str):
        self.path = os.path.join(root, "containerd-py.lock")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise RuntimeError(f"root {root} is in use by another containerd-py (pid {holder or 'unknown'})") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self._fd)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.version:
        from .server import VERSION
        print(f"containerd-py {VERSION} {__version__}")
        return 0
    try:
        config = configlib.load(args.config or configlib.DEFAULT_CONFIG, required=args.config is not None)
    except configlib.ConfigError as e:
        print(f"containerd-py: {args.config or configlib.DEFAULT_CONFIG}: {e}", file=sys.stderr)
        return 1
    for flag, attr in (("address", "address"), ("root", "root"), ("state", "state"), ("log_level", "log_level")):
        if getattr(args, flag):
            setattr(config, attr, getattr(args, flag))
    config.root, config.state, config.address = (os.path.abspath(p) for p in (config.root, config.state, config.address))

    from .content.heap import limit_arenas

    limit_arenas(2)
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=_LEVELS[config.log_level], handlers=[handler])
    started = time.monotonic()

    # Signals only set a flag; everything is torn down from the main thread.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())

    for path in (config.root, config.state):
        os.makedirs(path, mode=0o711, exist_ok=True)
    try:
        lock = RootLock(config.root)
    except RuntimeError as e:
        log.error("%s", e)
        return 1
    try:
        return _serve(config, stop, started)
    finally:
        lock.release()


def _serve(config: configlib.Config, stop: threading.Event, started: float) -> int:
    from .server import VERSION, Daemon  # the server and the stores load only once the lock is ours

    log.info("starting containerd-py revision=%s version=%s", __version__, VERSION)
    daemon = Daemon(config)
    try:
        server = daemon.server()
        os.makedirs(os.path.dirname(config.address), mode=0o711, exist_ok=True)
        try:
            os.unlink(config.address)  # a stale socket of a daemon that died; the root lock proves it gone
        except FileNotFoundError:
            pass
        server.listen_unix(config.address)
        server.start()
        try:
            os.chmod(config.address, 0o660)
            os.chown(config.address, config.uid, config.gid)
            log.info("serving... address=%s", config.address)
            log.info("containerd-py successfully booted in %.6fs", time.monotonic() - started)
            stop.wait()
            log.info("stop received, shutting down")
        finally:
            server.stop(grace=2).wait()
            try:
                os.unlink(config.address)
            except FileNotFoundError:
                pass
    finally:
        daemon.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
