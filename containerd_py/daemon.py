"""`containerd-py`: the daemon's command line, with containerd's flags; it runs
the parts `assembly.py` wires together.

One daemon per root: a lock file in the root refuses a second one, and an
address another daemon serves is refused too (`endpoint.py`). A start that
fails says why in one line and removes the directories it made. SIGTERM or
SIGINT stop it cleanly, removing its socket if it is still its own.
"""
import argparse
import fcntl
import logging
import os
import shutil
import signal
import sqlite3
import sys
import threading
import time

from . import __version__, config as configlib
from .endpoint import Endpoint, StartupError, describe_os_error

log = logging.getLogger("containerd-py")

_LEVELS = {"trace": logging.DEBUG, "debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING,
           "warning": logging.WARNING, "error": logging.ERROR, "fatal": logging.CRITICAL, "panic": logging.CRITICAL}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="containerd-py", description="containerd-compatible container daemon",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="The configuration file is containerd's config.toml (version 2, or 1); these are the keys\n"
               "containerd-py understands, with their defaults (others are ignored with a warning):\n\n"
               + "".join(f"  {line}\n" if line else "\n" for line in configlib.render(configlib.Config()).splitlines()))
    p.add_argument("-c", "--config", help=f"path to the configuration file (default {configlib.DEFAULT_CONFIG})")
    p.add_argument("-l", "--log-level", choices=configlib.LOG_LEVELS, help="set the logging level")
    p.add_argument("-a", "--address", help="address for containerd's GRPC server")
    p.add_argument("--root", help="containerd root directory")
    p.add_argument("--state", help="containerd state directory")
    p.add_argument("-v", "--version", action="store_true", help="print the version")
    commands = p.add_subparsers(dest="command", metavar="COMMAND")
    config = commands.add_parser("config", help="information on the containerd-py config")
    config_commands = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    config_commands.add_parser("default", help="see the output of the default config")
    config_commands.add_parser("dump", help="see the output of the config file (-c) as containerd-py reads it")
    return p


class _Formatter(logging.Formatter):
    """logrus' text format, which containerd logs in; `extra={"fields": {...}}` adds key=value pairs."""

    def format(self, record):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        msg = record.getMessage()
        if record.exc_info:
            msg += " " + self.formatException(record.exc_info)
        fields = "".join(f" {key}={_logfmt(str(value))}" for key, value in getattr(record, "fields", {}).items())
        return f'time="{ts}.{int(record.created % 1 * 1e9):09d}Z" level={level} msg={_logfmt(msg, always=True)}{fields}'


def _logfmt(value: str, always: bool = False) -> str:
    """Quoted as logrus quotes a value: when it has more than [A-Za-z0-9-._/@^+] (the message always)."""
    if not always and value and all(c.isalnum() and c.isascii() or c in "-._/@^+" for c in value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class RootLock:
    """An exclusive flock on <root>/containerd-py.lock, held for the daemon's life."""

    def __init__(self, root: str):
        self.path = os.path.join(root, "containerd-py.lock")
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise StartupError(describe_os_error(e, "open")) from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise StartupError(f"root {root} is in use by another containerd-py (pid {holder or 'unknown'})") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self._fd)


class MadeDirectories:
    """The directories a start creates, removed again when the start fails: a
    daemon that cannot start (as non-root, say) leaves nothing behind."""

    def __init__(self):
        self._made: list[str] = []

    def create(self, path: str) -> None:
        missing = []
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o711)
            except FileExistsError:
                if not os.path.isdir(path):
                    raise StartupError(f"mkdir {path}: not a directory") from None
                continue  # made meanwhile by someone else: theirs
            except OSError as e:
                raise StartupError(describe_os_error(e, "mkdir")) from None
            self._made.append(path)

    def remove(self, with_contents: bool) -> None:
        """Only empty ones unless `with_contents` (once the root lock proves the contents ours)."""
        for path in reversed(self._made):
            if with_contents:
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.rmdir(path)
                except OSError:
                    pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.version:
        from .assembly import VERSION
        print(f"containerd-py {__package__} {VERSION} {__version__}")  # containerd's: name, package, version, revision
        return 0
    try:
        config = configlib.load(args.config or configlib.DEFAULT_CONFIG, required=args.config is not None)
    except configlib.ConfigError as e:
        print(f"containerd-py: {args.config or configlib.DEFAULT_CONFIG}: {e}", file=sys.stderr)
        return 1
    if args.command == "config":
        print(configlib.render(configlib.Config() if args.config_command == "default" else config), end="")
        return 0
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
    for key in config.ignored:
        log.warning("Ignoring unknown key in TOML", extra={"fields": {"file": args.config or configlib.DEFAULT_CONFIG,
                                                                      "key": key}})

    # Signals only set a flag; everything is torn down from the main thread.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: stop.set())
    try:
        return _run(config, stop, started)
    except StartupError as e:
        print(f"containerd-py: {e}", file=sys.stderr)
        return 1


def _run(config: configlib.Config, stop: threading.Event, started: float) -> int:
    endpoint = Endpoint(config.address)
    endpoint.refuse_if_served()  # before anything is made
    made = MadeDirectories()
    try:
        for path in (config.root, config.state, os.path.dirname(config.address)):
            made.create(path)
        lock = RootLock(config.root)
    except StartupError:
        made.remove(with_contents=False)
        raise
    try:
        _serve(config, endpoint, stop, started)
    except StartupError:
        made.remove(with_contents=True)  # the root lock proves them ours
        raise
    finally:
        lock.release()
    return 0


def _serve(config: configlib.Config, endpoint: Endpoint, stop: threading.Event, started: float) -> None:
    """Serves until `stop`; StartupError when it cannot start, with everything it opened closed."""
    from .assembly import VERSION, Assembly  # the server and the stores load only once the lock is ours

    log.info("starting containerd-py revision=%s version=%s", __version__, VERSION)
    try:
        assembly = Assembly(config)
    except OSError as e:
        raise StartupError(f"failed to load the stores: {describe_os_error(e)}") from None
    except sqlite3.Error as e:
        raise StartupError(f"failed to load the stores: {e}") from None
    try:
        server = assembly.server()
        try:
            endpoint.claim(server.listen_unix, config.uid, config.gid)
            server.start()
        except StartupError:
            server.stop().wait()
            raise
        log.info("serving... address=%s", config.address)
        log.info("containerd-py successfully booted in %.6fs", time.monotonic() - started)
        stop.wait()
        log.info("stop received, shutting down")
        server.stop(grace=2).wait()
        endpoint.release()
    finally:
        assembly.close()


if __name__ == "__main__":
    sys.exit(main())
