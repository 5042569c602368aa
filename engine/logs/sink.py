"""The container service's LogSink: a task's output goes through
engine-py-logger, which the shim starts from a `binary://` log URI (see
DESIGN.md), and its stdin, for a container created with OpenStdin, comes
from a FIFO under the exec-root that the engine holds open.

With the json-file or local driver the logger writes the container's log
in that driver's format; with `none` it writes a small rotating file under
the exec-root instead, which only attach reads (`docker logs` is refused,
as dockerd refuses it).
"""
import errno
import logging
import os
import shutil
import threading

from containerd_py.types import Stdio

from engine.errors import InvalidParameter, System, Unimplemented
from engine.logs import (JSON_FILE, LOCAL, FileConfig, detached, file_config, local_log_path, log_path, log_uri,
                         logger_options, validate_opts)
from engine.logs.jsonfile import JSON_LINES, Format
from engine.logs.local import LOCAL_FRAMES

log = logging.getLogger(__name__)

NONE = "none"
DRIVERS = (JSON_FILE, LOCAL, NONE)
BUILT_IN_OPTS = ("mode", "max-buffer-size")  # dockerd's, taken by every driver
# The file attach follows under `none`: on the exec-root's tmpfs, so kept small.
ATTACH_MAX_SIZE, ATTACH_MAX_FILE = 512 << 10, 2
STDIN_FIFO = "init-stdin"
ATTACH_LOG = "attach-json.log"


def validate_log_config(driver: str, opts: dict[str, str]) -> None:
    """dockerd's logger.ValidateLogOpts for the drivers there are (the keys;
    values are read at the start); raises ValueError with dockerd's message."""
    if driver == NONE:
        return
    if driver not in DRIVERS:
        raise ValueError(f"logger: no log driver named '{driver}' is registered")
    validate_opts(driver, _driver_opts(opts))


def _driver_opts(opts: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in opts.items() if key not in BUILT_IN_OPTS}


class LoggerSink:
    """LogSink (engine.services.containers) through engine-py-logger.

    ``containers_dir`` holds the json-file logs (<data-root>/containers),
    ``exec_root`` the stdin FIFOs; ``driver``/``opts`` are the daemon's default (daemon.json's log-driver
    and log-opts), filled into a create's LogConfig as dockerd fills them."""

    def __init__(self, containers_dir: str, exec_root: str, driver: str = JSON_FILE,
                 opts: dict[str, str] | None = None):
        self.containers_dir, self.exec_root = containers_dir, exec_root
        self.driver, self.opts = driver, dict(opts or {})
        try:
            validate_log_config(self.driver, self.opts)
        except ValueError as err:  # the daemon's default, refused at its start as dockerd refuses it
            raise InvalidParameter(f"failed to set log opts: {err}") from None
        self._lock = threading.Lock()
        self._stdin: dict[str, int] = {}  # container ID -> the engine's end of its stdin FIFO

    # -- LogSink --------------------------------------------------------------------------------

    def configure(self, host_config: dict) -> dict:
        """HostConfig with its LogConfig completed from the daemon's default;
        bad options refused with dockerd's message (400)."""
        config = dict(host_config.get("LogConfig") or {})
        driver, opts = config.get("Type") or self.driver, dict(config.get("Config") or {})
        if driver == self.driver:  # dockerd's mergeAndVerifyLogConfig: the daemon's opts under the container's
            opts = {**self.opts, **opts}
        try:
            validate_log_config(driver, opts)
        except ValueError as err:
            raise InvalidParameter(str(err)) from None
        return {**host_config, "LogConfig": {"Type": driver, "Config": opts}}

    def stdio(self, record) -> Stdio:
        """The task's IO: the logger's URI for stdout and stderr (a TTY's
        console goes to stdout), the stdin FIFO for an OpenStdin container;
        with a stdin and no TTY, FIFOs a logger of the engine's reads
        (engine.logs.detached: containerd's shim takes no stdin beside a
        logging binary)."""
        run_dir = self._run_dir(record.id)
        os.makedirs(run_dir, exist_ok=True)
        tty, open_stdin = bool(record.config.get("Tty")), bool(record.config.get("OpenStdin"))
        log_file = self._log_file(record)
        os.makedirs(os.path.dirname(log_file[0]), exist_ok=True)  # local-logs/: the logger only opens its file
        record.log_path = log_path(self.containers_dir, record.id) if self._driver(record) == JSON_FILE else ""
        uri = log_uri(*log_file, flush_partial=tty or open_stdin)
        if not open_stdin:
            return Stdio("", uri, uri, tty)
        stdin = self._open_stdin(record.id, run_dir)
        if tty:
            return Stdio(stdin, uri, uri, True)
        return Stdio(stdin, *detached.start(run_dir, logger_options(*log_file, flush_partial=True)), False)

    def closed(self, record) -> None:
        """The task is gone: the engine's end of its stdin goes, and a logger
        of the engine's is stopped once it has written what is left."""
        self.close_stdin(record.id)
        detached.stop(self._run_dir(record.id))

    def removed(self, record) -> None:
        """The container is gone: its directory under the exec-root too."""
        self.close_stdin(record.id)
        shutil.rmtree(self._run_dir(record.id), ignore_errors=True)

    # -- for logs and attach ----------------------------------------------------------------------

    def readable_log(self, record) -> tuple[str, Format]:
        """The log `docker logs` reads, and its format; dockerd's 501 for `none`."""
        if self._driver(record) == NONE:
            raise Unimplemented("configured logging driver does not support reading")
        return self.output_log(record), self.output_format(record)

    def output_log(self, record) -> str:
        """The file the logger writes whatever the driver: what attach follows."""
        driver = self._driver(record)
        if driver == JSON_FILE:
            return log_path(self.containers_dir, record.id)
        if driver == LOCAL:
            return local_log_path(self.containers_dir, record.id)
        return os.path.join(self._run_dir(record.id), ATTACH_LOG)

    def output_format(self, record) -> Format:
        """How the entries of output_log are written: the local driver's frames, or json lines."""
        return LOCAL_FRAMES if self._driver(record) == LOCAL else JSON_LINES

    def write_stdin(self, container_id: str, data: bytes) -> int | None:
        """What the container's stdin FIFO takes of ``data`` now (0: it is
        full); None while it has none. Under the lock, so a close meanwhile
        cannot turn the write onto a file that took the fd's number. After
        an engine restart the FIFO is opened again, by path."""
        with self._lock:
            fd = self._stdin.get(container_id)
            if fd is None:
                try:
                    fd = self._stdin[container_id] = _open_fifo(
                        os.path.join(self._run_dir(container_id), STDIN_FIFO))
                except FileNotFoundError:
                    return None
            try:
                return os.write(fd, data)
            except BlockingIOError:
                return 0

    def close_stdin(self, container_id: str) -> None:
        """EOF for the container's stdin (StdinOnce); the FIFO goes, so that
        no later attach opens it again."""
        with self._lock:
            fd = self._stdin.pop(container_id, None)
            try:
                os.unlink(os.path.join(self._run_dir(container_id), STDIN_FIFO))
            except FileNotFoundError:
                pass
        if fd is not None:
            os.close(fd)

    # -- inside ------------------------------------------------------------------------------------

    def _driver(self, record) -> str:
        return (record.host_config.get("LogConfig") or {}).get("Type") or self.driver

    def _run_dir(self, container_id: str) -> str:
        return os.path.join(self.exec_root, "containers", container_id)

    def _log_file(self, record) -> tuple[str, FileConfig, str]:
        """(path, rotation, driver) of what the logger writes; the options'
        values refused as dockerd refuses them when it starts the container."""
        driver = self._driver(record)
        if driver == NONE:
            return self.output_log(record), FileConfig(ATTACH_MAX_SIZE, ATTACH_MAX_FILE), JSON_FILE
        opts = (record.host_config.get("LogConfig") or {}).get("Config") or {}
        try:
            return self.output_log(record), file_config(driver, _driver_opts(opts)), driver
        except ValueError as err:
            raise System(f"failed to initialize logging driver: {err}") from None

    def _open_stdin(self, container_id: str, run_dir: str) -> str:
        """A new FIFO, the engine's end opened read-write (so neither side
        waits for the other); the shim opens it for reading. Under the lock:
        an attach waiting for the stdin must not open a second end of it."""
        self.close_stdin(container_id)
        path = os.path.join(run_dir, STDIN_FIFO)
        with self._lock:
            try:
                os.mkfifo(path, 0o600)
                self._stdin[container_id] = _open_fifo(path)
            except OSError as err:
                raise System(f"creating the stdin of {container_id}: {os.strerror(err.errno or errno.EIO)}: "
                             f"{path}") from None
        return path


def _open_fifo(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
