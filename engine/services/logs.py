"""`docker logs` and `docker attach` over the file the container's logger
writes (engine/logs): the engine never copies a container's output, so
attach follows that file from now, as `logs --follow` follows it from where
it is asked to start (engine/logs/DESIGN.md).

Both end once the container's exit is recorded, which is when its log is
whole; attach with stdin relays the client's bytes into the container's
stdin FIFO (engine/logs/sink.py), with docker's detach keys under a TTY.
"""
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from engine.errors import Conflict, InvalidParameter, NotFound
from engine.logs import jsonfile
from engine.logs.jsonfile import Entry, ReadConfig
from engine.logs.sink import LoggerSink
from engine.services.containers import ContainerService
from engine.services.exec_io import DEFAULT_DETACH_KEYS, EscapeFilter, detach_key_bytes

_STDIN_POLL = 0.1  # seconds between looks for a stdin that is not there yet
_STDIN_FULL = 0.005  # and at a full one
INTERACTIVE_POLL = 0.02  # seconds between looks at the log for a terminal's attach (the echo of a keystroke)


def parse_detach_keys(text: str) -> bytes:
    """moby's term.ToBytes ("ctrl-p,ctrl-q", "a,ctrl-x"), as exec reads them;
    attach's 400 in dockerd's words otherwise."""
    try:
        return detach_key_bytes(text)
    except InvalidParameter:
        raise InvalidParameter(f"Invalid detach keys ({text}) provided") from None


def parse_timestamp(text: str | None, name: str) -> int:
    """dockerd's since/until: seconds since the epoch with an optional
    fraction ("1700000000.5"); ns since the epoch, 0 for none."""
    if not text:
        return 0
    seconds, _, fraction = text.partition(".")
    if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        raise InvalidParameter(f'invalid value for "{name}": failed to parse value as time or duration: "{text}"')
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)


def parse_tail(text: str | None) -> int:
    """"all" (or nothing) is -1; a number is a count of entries."""
    if not text or text == "all":
        return -1
    try:
        return int(text)
    except ValueError:
        raise InvalidParameter(f'invalid value for "tail": strconv.Atoi: parsing "{text}": invalid syntax') from None


class ExitOrEnd:
    """What jsonfile.read's follow waits on (an Event's is_set/wait): the
    container's next exit after construction (its log is whole then), or
    any of ``ends`` (the client gone, the attach over). ``poll`` shortens
    the follow's waits between looks at the log (an interactive attach,
    whose echo should not wait for the usual FOLLOW_POLL)."""

    def __init__(self, containers: ContainerService, container_id: str, *ends: threading.Event,
                 poll: float | None = None):
        self.containers, self.container_id, self.ends, self.poll = containers, container_id, ends, poll
        self.seen = containers.exit_count(container_id)

    def is_set(self) -> bool:
        return any(end.is_set() for end in self.ends) or self.containers.wait_exit(self.container_id, self.seen, 0)

    def wait(self, timeout: float) -> bool:
        timeout = min(timeout, self.poll) if self.poll else timeout
        return self.is_set() or self.containers.wait_exit(self.container_id, self.seen, timeout) or self.is_set()


class ExitedAlready:
    """A follow of a container that is not running: what is there, then the end."""

    @staticmethod
    def is_set() -> bool:
        return True

    def wait(self, timeout: float) -> bool:
        return True


@dataclass(frozen=True)
class LogsRequest:
    stdout: bool = True
    stderr: bool = True
    since: int = 0
    until: int = 0
    tail: int = -1
    follow: bool = False


@dataclass(frozen=True)
class AttachRequest:
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    logs: bool = False
    stream: bool = False
    detach_keys: bytes = DEFAULT_DETACH_KEYS


class Attachment:
    """One attach: ``output()`` for the client, ``relay_stdin(read)`` on a
    thread of its own when stdin was asked for, ``close()`` at the end."""

    def __init__(self, service: "LogService", record, request: AttachRequest, disconnected: threading.Event,
                 idle=None):
        self.service, self.record, self.request = service, record, request
        self.tty = bool(record.config.get("Tty"))
        self.ended = threading.Event()  # detached, or the client's stdin ended the attach
        self.detached = False
        self.wants_stdin = request.stdin and bool(record.config.get("OpenStdin"))
        self.stopped = ExitOrEnd(service.containers, record.id, self.ended, disconnected,
                                 poll=INTERACTIVE_POLL if self.tty and self.wants_stdin else None)
        self._output = self._read(idle)  # "now" is the attach's time, not the first read's

    def _read(self, idle) -> Iterator[Entry]:
        request = self.request
        if not (request.stdout or request.stderr) or not (request.stream or request.logs):
            return iter(())
        config = ReadConfig(request.stdout, request.stderr, tail=-1 if request.logs else 0)
        sink = self.service.sink
        return jsonfile.read(sink.output_log(self.record), config, self.stopped if request.stream else None, idle,
                             sink.output_format(self.record))

    def output(self) -> Iterator[Entry]:
        """The container's output from the attach on (from the start of its
        log with ``logs``) until its exit, or until the attach ends; ``idle``
        (given to attach) as jsonfile.read yields it."""
        yield from self._output
        while self.request.stream and not self.stopped.wait(jsonfile.FOLLOW_POLL):
            pass  # no output asked for: the attach still lasts as long as the container

    def relay_stdin(self, read: Callable[[int], bytes]) -> None:
        """The client's bytes into the container's stdin until they end: then,
        as dockerd, StdinOnce without a TTY closes the container's stdin and
        output goes on; otherwise the attach ends. The detach keys (TTY only,
        as in dockerd) end it too."""
        keys = EscapeFilter(self.request.detach_keys) if self.tty and self.request.detach_keys else None
        while not self.stopped.is_set():
            data = read(32 << 10)
            if not data:
                break
            detached = False
            if keys is not None:
                data, detached = keys.feed(data)
            if data and not self._write_stdin(data):
                return
            if detached:
                self.detached = True
                self.ended.set()
                self.service.containers.publish(self.record, "detach")
                return
        if self.record.config.get("StdinOnce") and not self.tty:
            if self._write_stdin(b""):
                self._close_stdin()
        else:
            self.ended.set()

    def _close_stdin(self) -> None:
        """EOF for the container: the engine's end goes, and containerd is told (CloseIO)."""
        self.service.sink.close_stdin(self.record.id)
        try:
            self.service.containers.tasks.close_stdin(self.record.id)
        except (NotFound, Conflict):
            pass  # exited meanwhile

    def _write_stdin(self, data: bytes) -> bool:
        """Whole, as the container's stdin drains, once its task runs (an
        attach comes before the start; before the shim holds the FIFO's
        other end, what the engine wrote would go with its own end); False
        once the attach is over."""
        view = memoryview(data)
        while True:
            written = self.service.sink.write_stdin(self.record.id, view) if self.record.state.running else None
            if written is not None:
                view = view[written:]
                if not view:
                    return True
            if self.stopped.wait(_STDIN_POLL if written is None else _STDIN_FULL):
                return False

    def close(self) -> None:
        """The attach is over. A container's stdin outlives it: StdinOnce
        closes it only when the client's input ends without a TTY (the
        relay's end, a client gone included), as in dockerd, so that
        `docker run -it` detached can be attached to again."""
        self.ended.set()


class LogService:
    """Logs, attach and resize of the containers of a ContainerService."""

    def __init__(self, containers: ContainerService, sink: LoggerSink):
        self.containers, self.sink = containers, sink

    def logs(self, ref: str, request: LogsRequest, disconnected: threading.Event,
             idle=None) -> tuple[bool, Iterator[Entry]]:
        """(the container has a TTY, its entries); with ``follow`` they go on
        until its exit is recorded or the client goes (``idle`` as
        jsonfile.read yields it)."""
        record = self.containers.store.get(ref)
        if not (request.stdout or request.stderr):
            raise InvalidParameter("You must choose at least one stream")
        path, fmt = self.sink.readable_log(record)
        config = ReadConfig(request.stdout, request.stderr, request.since, request.until, request.tail)
        stopped = None
        if request.follow:
            stopped = ExitOrEnd(self.containers, record.id, disconnected)
            if not record.state.running:  # read after the count: an exit in between is seen either way
                stopped = ExitedAlready()
        return bool(record.config.get("Tty")), jsonfile.read(path, config, stopped, idle, fmt)

    def attach(self, ref: str, request: AttachRequest, disconnected: threading.Event, idle=None) -> Attachment:
        record = self.containers.store.get(ref)
        if record.state.paused:
            raise Conflict("You cannot attach to a paused container, unpause it first")
        if record.state.restarting:
            raise Conflict("You cannot attach to a restarting container, wait until it is running")
        attachment = Attachment(self, record, request, disconnected, idle)
        self.containers.publish(record, "attach")
        return attachment

    def resize(self, ref: str, height: int, width: int) -> None:
        record = self.containers.store.get(ref)
        if not record.state.running:
            raise Conflict(f"Container {record.id} is not running")
        self.containers.tasks.resize(record.id, width, height)
        self.containers.publish(record, "resize", {"height": str(height), "width": str(width)})
