"""`containerd-py`: the daemon's command line, with containerd's flags; it runs
the parts `assembly.py` wires together.

One daemon per root: a lock file in the root refuses a second one, and an
address another daemon serves is refused too (`endpoint.py`). A start that
fails says why in one line and removes the directories it made. SIGTERM or
SIGINT stop it cleanly, removing its socket if it is still its own.
"""
import argparse
import logging
import os
import sqlite3
import sys
import time

from . import __version__, config as configlib
from .daemon_support import LogrusFormatter, MadeDirectories, RootLock, Signals
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
    handler.setFormatter(LogrusFormatter())
    logging.basicConfig(level=_LEVELS[config.log_level], handlers=[handler])
    started = time.monotonic()
    for key in config.ignored:
        log.warning("Ignoring unknown key in TOML", extra={"fields": {"file": args.config or configlib.DEFAULT_CONFIG,
                                                                      "key": key}})

    stop = Signals()  # everything is torn down from the main thread
    try:
        return _run(config, stop, started)
    except StartupError as e:
        print(f"containerd-py: {e}", file=sys.stderr)
        return 1


def _run(config: configlib.Config, stop: Signals, started: float) -> int:
    endpoint = Endpoint(config.address)
    endpoint.refuse_if_served()  # before anything is made
    made = MadeDirectories()
    try:
        for path in (config.root, config.state, os.path.dirname(config.address)):
            made.create(path)
        lock = RootLock(config.root, "containerd-py")
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


def _serve(config: configlib.Config, endpoint: Endpoint, stop: Signals, started: float) -> None:
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
