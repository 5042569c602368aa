"""One gRPC call (an HTTP/2 stream): its requests as they arrive, its
handler's run on a worker thread, its responses and status trailers.

Flow control: a streaming request's DATA is acknowledged (the client's
window opened again) only while fewer than REQUEST_BUFFER bytes wait for the
handler, so a fast client cannot fill the daemon's memory; a response waits
for the client's window, and for the connection's transport to have sent
most of what it holds (WRITE_BUFFER), so a client that does not read holds
its handler back, not the daemon's memory.

A call answered with a status other than OK is logged once: at info, or at
debug for the NOT_FOUND and ALREADY_EXISTS that containerd's client probes
for. A client that went away is told nothing, and nothing is logged.
"""
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING
from urllib.parse import quote

import h2.exceptions
from google.protobuf.message import DecodeError

from .status import Abort, Cancelled, StatusCode
from .wire import MessageBuffer, framed

if TYPE_CHECKING:  # connection.py imports this module
    from .connection import Connection

log = logging.getLogger(__name__)

REQUEST_BUFFER = 4 << 20  # bytes of one streaming call's requests held before the client must wait
WRITE_BUFFER = 1 << 20    # bytes of a connection's output held before a handler sending more must wait
# Answers containerd's client asks for as it goes (a task looked up before a
# container is removed, a snapshot Stat before each layer's unpack, an image
# created-or-updated): a successful `ctr run --rm` or pull gets several.
_PROBE_ANSWERS = {StatusCode.NOT_FOUND, StatusCode.ALREADY_EXISTS}
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


class Method:
    """One routed method: how to parse its request, whether either side streams."""

    __slots__ = ("request_class", "client_streaming", "server_streaming", "behavior")

    def __init__(self, request_class, client_streaming, server_streaming, behavior):
        self.request_class, self.behavior = request_class, behavior
        self.client_streaming, self.server_streaming = client_streaming, server_streaming


class ServicerContext:
    """What a handler sees of its call (the subset of grpc.ServicerContext we use)."""

    def __init__(self, call: "Call"):
        self._call = call

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self._call.metadata

    def is_active(self) -> bool:
        return self._call.active()

    def abort(self, code: StatusCode, details: str):
        raise Abort(code, details)


class Call:
    """One stream: its requests as they arrive, its responses as the handler makes them."""

    def __init__(self, conn: "Connection", stream_id: int, method: Method | None, path: str,
                 metadata: list, deadline: float | None):
        self.conn, self.stream_id, self.method, self.path = conn, stream_id, method, path
        self.metadata, self.deadline = metadata, deadline
        self._messages = MessageBuffer(conn.server.max_receive)
        self._requests: deque[memoryview] = deque()
        self._held = 0        # bytes of requests waiting for the handler
        self._unacked = 0     # DATA bytes received but not yet acknowledged
        self._arrived = threading.Condition(conn.lock)
        self.ended = False     # the client sent END_STREAM
        self.cancelled = False
        self.finished = False  # we sent the trailers
        self._headers_sent = False

    def active(self) -> bool:
        return not (self.cancelled or self.finished) and (self.deadline is None or time.monotonic() < self.deadline)

    # -- from the reader thread, under the lock -----------------------------------------------------------------
    def on_data(self, data: bytes, flow_length: int) -> None:
        if self.finished or self.cancelled:
            self.conn.h2.acknowledge_received_data(flow_length, self.stream_id)
            return
        self._unacked += flow_length
        self.conn.fed.add(self)
        try:
            messages = self._messages.feed(data)
        except Abort as e:
            self.finish_locked(e.code, e.details)
            return
        for message in messages:
            self._requests.append(message)
            self._held += len(message)
        if messages:
            self._arrived.notify_all()

    def acknowledge(self) -> None:
        """Under the lock: opens the client's window again, unless too much waits for the handler."""
        if self._unacked and self._held < REQUEST_BUFFER:
            self.conn.h2.acknowledge_received_data(self._unacked, self.stream_id)
            self._unacked = 0

    def on_end(self) -> None:
        self.ended = True
        if self.method is not None and not self.method.client_streaming and not self.finished:
            self.conn.server.dispatch(self)
        self._arrived.notify_all()

    def cancel(self) -> None:
        self.cancelled = True
        self._arrived.notify_all()
        self.conn.calls.pop(self.stream_id, None)

    # -- from the handler's thread ------------------------------------------------------------------------------
    def _next_request(self) -> memoryview | None:
        """The next request message; None after the client's last one."""
        with self.conn.lock:
            while not self._requests:
                if self.cancelled or self.finished:  # gone, or answered already (a request too big)
                    raise Cancelled()
                if self.ended:
                    return None
                self._arrived.wait()
            raw = self._requests.popleft()
            self._held -= len(raw)
            if self._unacked:
                self.acknowledge()
                self.conn.flush()
            return raw

    def _parse(self, raw: memoryview):
        try:
            return self.method.request_class.FromString(raw)
        except DecodeError as e:
            raise Abort(StatusCode.INTERNAL, f"{self.path}: cannot parse the request: {e}") from None

    def _request_iterator(self):
        while (raw := self._next_request()) is not None:
            yield self._parse(raw)

    def run(self) -> None:
        method, context = self.method, ServicerContext(self)
        try:
            if method.client_streaming:
                request = self._request_iterator()
            else:
                raws = list(self._requests)
                if len(raws) != 1:
                    raise Abort(StatusCode.INTERNAL, f"{self.path}: expected one request message, got {len(raws)}")
                request = self._parse(raws[0])
            result = method.behavior(request, context)
            if method.server_streaming:
                try:
                    for response in result:
                        self.send(response.SerializeToString())
                finally:
                    close = getattr(result, "close", None)  # a generator's cleanup runs now, not when collected
                    if close is not None:
                        close()
            else:
                self.send(result.SerializeToString())
            self.finish(StatusCode.OK, "")
        except Abort as e:
            self.finish(e.code, e.details)
        except Cancelled:
            self.finish(StatusCode.CANCELLED, "cancelled")  # past the deadline; else no one is left to tell
        except Exception as e:  # noqa: BLE001 - a handler's bug must not take the connection down
            log.exception("%s failed", self.path)
            self.finish(StatusCode.UNKNOWN, f"{type(e).__name__}: {e}")

    def send(self, payload: bytes) -> None:
        conn = self.conn
        if len(payload) > conn.server.max_send:
            raise Abort(StatusCode.RESOURCE_EXHAUSTED,
                        f"grpc: trying to send message larger than max ({len(payload)} vs. {conn.server.max_send})")
        data = memoryview(framed(payload))
        with conn.lock:
            try:
                self._send_headers()
                while data:
                    if not self.active() or conn.closed:
                        raise Cancelled()
                    n = min(len(data), conn.h2.local_flow_control_window(self.stream_id),
                            conn.h2.max_outbound_frame_size)
                    if n <= 0 or conn.transport.buffered > WRITE_BUFFER:
                        conn.flush()
                        conn.can_send.wait(1.0)
                        continue
                    conn.h2.send_data(self.stream_id, data[:n].tobytes())
                    data = data[n:]
                conn.flush()
            except h2.exceptions.StreamClosedError:
                raise Cancelled() from None

    def _send_headers(self) -> None:
        if not self._headers_sent:
            self.conn.h2.send_headers(self.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
            self._headers_sent = True

    def finish(self, code: StatusCode, details: str) -> None:
        with self.conn.lock:
            self.finish_locked(code, details)

    def finish_locked(self, code: StatusCode, details: str) -> None:
        """The trailers (or a trailers-only response); a client still sending is told to stop."""
        if self.finished or self.cancelled or self.conn.closed:
            self.conn.calls.pop(self.stream_id, None)
            return
        self.finished = True
        self._arrived.notify_all()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            code, details = StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"  # whatever the handler made of it
        if code != StatusCode.OK:
            log.log(logging.DEBUG if code in _PROBE_ANSWERS else logging.INFO,
                    "%s: %s: %s", self.path, code.name, details)
        trailers = [("grpc-status", str(int(code)))]
        if details:
            trailers.append(("grpc-message", quote(details, safe=_MESSAGE_SAFE)))
        try:
            if self._headers_sent:
                self.conn.h2.send_headers(self.stream_id, trailers, end_stream=True)
            else:
                self.conn.h2.send_headers(self.stream_id, [(":status", "200"), ("content-type", "application/grpc")]
                                          + trailers, end_stream=True)
            if not self.ended:
                self.conn.h2.reset_stream(self.stream_id)  # NO_ERROR: the answer is complete, stop sending
        except h2.exceptions.StreamClosedError:
            pass
        self.conn.calls.pop(self.stream_id, None)
        self.conn.flush()


# grpc-message is percent-encoded: everything printable but "%" goes as is.
_MESSAGE_SAFE = "".join(chr(c) for c in range(0x20, 0x7f) if chr(c) != "%")


def parse_timeout(value: str) -> float | None:
    try:
        return int(value[:-1]) * _TIMEOUT_UNITS[value[-1]]
    except (ValueError, KeyError, IndexError):
        return None
