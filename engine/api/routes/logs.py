"""`/containers/{name}/logs`, `/attach` and `/resize`: dockerd's replies over
the log service. Output is raw under a TTY and multiplexed (8-byte frames)
without; it is sent in batches, each flushed once the log is caught up."""
import threading

from engine.errors import EngineError, InvalidParameter, http_status
from engine.logs.jsonfile import format_time
from engine.services.exec_io import DEFAULT_DETACH_KEYS
from engine.services.logs import AttachRequest, LogService, LogsRequest, parse_detach_keys, parse_tail, parse_timestamp

from ..http import Hijack, Reply, Streamed
from ..streams import STDERR, STDOUT, frame

RAW_STREAM = "application/vnd.docker.raw-stream"
BATCH = 64 << 10  # bytes gathered before they are sent, when more is already there
_CAUGHT_UP = object()
_STREAMS = {"stdout": STDOUT, "stderr": STDERR}


def batches(entries, tty: bool, timestamps: bool = False, details: bool = False):
    """The entries as the client reads them, in chunks of about BATCH bytes,
    each sent as soon as the log is caught up (`_CAUGHT_UP` from the follow).
    ``details`` puts the entry's attributes and a space first (there are
    none: no labels or env options are logged)."""
    pending, size = [], 0
    for entry in entries:
        if entry is not _CAUGHT_UP:
            data = b" " + entry.line if details else entry.line
            data = format_time(entry.time).encode() + b" " + data if timestamps else data
            data = data if tty else frame(_STREAMS[entry.stream], data)
            pending.append(data)
            size += len(data)
            if size < BATCH:
                continue
        if pending:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


def add_routes(router, logs: LogService) -> None:
    def get_logs(request):
        stdout, stderr = request.bool_arg("stdout"), request.bool_arg("stderr")
        if not (stdout or stderr):
            raise InvalidParameter("Bad parameters: you must choose at least one stream")
        wanted = LogsRequest(stdout, stderr, parse_timestamp(request.arg("since"), "since"),
                             parse_timestamp(request.arg("until"), "until"), parse_tail(request.arg("tail")),
                             request.bool_arg("follow"))
        tty, entries = logs.logs(request.params["name"], wanted, request.disconnected, idle=_CAUGHT_UP)
        return Streamed(batches(entries, tty, request.bool_arg("timestamps"), request.bool_arg("details")),
                        content_type=RAW_STREAM)

    def attach(request):
        wanted = AttachRequest(request.bool_arg("stdin"), request.bool_arg("stdout"), request.bool_arg("stderr"),
                               request.bool_arg("logs"), request.bool_arg("stream"),
                               parse_detach_keys(keys) if (keys := request.arg("detachKeys")) else DEFAULT_DETACH_KEYS)
        try:
            attachment = logs.attach(request.params["name"], wanted, request.disconnected, idle=_CAUGHT_UP)
        except EngineError as err:  # dockerd hijacks first and writes its error raw, not as JSON
            return Reply(http_status(err), f"{err}\r\n".encode(), RAW_STREAM, [("Connection", "close")])

        def serve(stream):
            if attachment.wants_stdin:  # ends with the client's input, or once the attach is over
                threading.Thread(target=attachment.relay_stdin, args=(stream.read,), name="attach-stdin",
                                 daemon=True).start()
            try:
                for chunk in batches(attachment.output(), attachment.tty):
                    stream.write(chunk)
            except BrokenPipeError:
                pass  # the client has gone
            finally:
                attachment.close()

        return Hijack(serve)  # API 1.41's content type for both (the multiplexed one came with 1.42)

    def resize(request):
        logs.resize(request.params["name"], request.int_arg("h", 0), request.int_arg("w", 0))
        return Reply(200, b"", "text/plain; charset=utf-8")

    router.add("GET", "/containers/{name}/logs", get_logs)
    router.add("POST", "/containers/{name}/attach", attach)
    router.add("POST", "/containers/{name}/resize", resize)
