"""A gRPC client channel over a unix socket, HTTP/2 by `h2`: what the client
library (containerd_py/client) calls instead of grpcio's channel, so that
containerd-py-ctl and the engine do not carry grpcio's C core (~20 MiB
resident, see __init__.py).

A channel holds one connection, made at the first call and again after it is
lost (and another while one has as many calls open as the daemon allows).
Each connection has a reader thread: h2 parses what the daemon sends there
and the events go to the calls; callers send their requests themselves. One
lock per connection guards the h2 state machine and the order of writes.

Methods are called by path with the protobuf message classes (`Stub` takes
them from a service's descriptor; grpcio's generated stubs import grpcio).
A call that fails raises RpcError with the daemon's status, or the one gRPC
gives for what went wrong on this side: UNAVAILABLE for a connection that
cannot be made or is lost, DEADLINE_EXCEEDED, CANCELLED, RESOURCE_EXHAUSTED
for a message over the limit. As with grpcio, a streaming call fails on its
first use, not when it is made.

Flow control: a response's DATA is acknowledged while less than
STREAM_BUFFER bytes of complete messages wait for the caller, so a caller
that reads slowly holds the daemon back, not our memory; a request waits
for the daemon's window.
"""
import math
import os
import socket
import threading
import time
from collections import deque
from functools import lru_cache, partial
from urllib.parse import unquote

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from .status import Abort, StatusCode
from .wire import MessageBuffer, advertise, framed

MESSAGE_LIMIT = 16 << 20       # bytes of one message, either way, as the daemon's default
STREAM_WINDOW = 4 << 20        # what the daemon may send on one stream before we acknowledge
CONNECTION_WINDOW = 64 << 20   # ... and on all streams of the connection
STREAM_BUFFER = 4 << 20        # bytes of a call's responses held for its caller before the daemon must wait
READ_SIZE = 256 << 10
CONNECT_TIMEOUT = 20.0         # seconds, for a call without a deadline
# A connection takes no new calls past this stream id (HTTP/2 has 2^31, ours
# are odd: ~1e9 calls); it closes once its last call ends, the next goes on another.
LAST_STREAM_ID = (1 << 31) - (1 << 20)
# Our headers are made right here; h2 checking them again costs a tenth of a small call's time.
_H2_CONFIG = h2.config.H2Configuration(client_side=True, header_encoding="utf-8", validate_outbound_headers=False,
                                       normalize_outbound_headers=False, validate_inbound_headers=False)
# gRPC's statuses for an HTTP status other than 200 (doc/http-grpc-status-mapping.md).
_HTTP_STATUS = {400: StatusCode.INTERNAL, 401: StatusCode.UNAUTHENTICATED, 403: StatusCode.PERMISSION_DENIED,
                404: StatusCode.UNIMPLEMENTED, 429: StatusCode.UNAVAILABLE, 502: StatusCode.UNAVAILABLE,
                503: StatusCode.UNAVAILABLE, 504: StatusCode.UNAVAILABLE}
# ... and for a stream the daemon reset before its trailers (any other code: INTERNAL).
_RESET_STATUS = {h2.errors.ErrorCodes.REFUSED_STREAM: StatusCode.UNAVAILABLE,
                 h2.errors.ErrorCodes.CANCEL: StatusCode.CANCELLED}


class RpcError(Exception):
    """A call's status other than OK, and its details."""

    def __init__(self, code: StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code, self.details = code, details


class Channel:
    """Calls to the daemon at a unix socket's path, from any number of threads."""

    def __init__(self, address: str, max_receive: int = MESSAGE_LIMIT, max_send: int = MESSAGE_LIMIT):
        self.address, self.max_receive, self.max_send = address, max_receive, max_send
        self._lock = threading.Lock()
        self._connections: list[_Connection] = []
        self._closed = False

    def unary(self, path: str, request, response_class, timeout: float | None = None, metadata=()):
        """The response of a unary method."""
        responses = list(self.stream(path, response_class, request, timeout, metadata))
        if len(responses) != 1:
            raise RpcError(StatusCode.INTERNAL, f"{path}: {len(responses)} responses to a unary call")
        return responses[0]

    def stream(self, path: str, response_class, request=None, timeout: float | None = None, metadata=()):
        """A call, its request sent (and its side ended) when given, else
        ready for `send`; iterate it for its responses."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            call = self._start(path, response_class, deadline, metadata)
        except RpcError as e:
            return _Failed(e)
        if request is not None:
            call.send(request, end=True)  # with the headers, in one write
        else:
            call.send_headers()
        return call

    def _start(self, path, response_class, deadline, metadata) -> "Call":
        with self._lock:
            if self._closed:
                raise RpcError(StatusCode.CANCELLED, f"the channel to {self.address} is closed")
            for conn in self._connections:
                if (call := conn.start(path, response_class, deadline, metadata)) is not None:
                    return call
            conn = _Connection(self, deadline)
            self._connections = [c for c in self._connections if c.failure is None] + [conn]
            if (call := conn.start(path, response_class, deadline, metadata)) is None:
                raise RpcError(StatusCode.UNAVAILABLE, conn.failure or f"{self.address}: no room for a call")
            return call

    def close(self) -> None:
        """Ends the calls in flight (CANCELLED) and the connections; no call can be made after."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close(StatusCode.CANCELLED, f"the channel to {self.address} is closed")


class _Connection:
    def __init__(self, channel: Channel, deadline: float | None):
        self.channel = channel
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            self.sock.settimeout(CONNECT_TIMEOUT if deadline is None else max(deadline - time.monotonic(), 0.001))
            self.sock.connect(channel.address)
            self.sock.settimeout(None)
        except OSError as e:
            self.sock.close()
            raise RpcError(StatusCode.UNAVAILABLE, f"dial unix {channel.address}: connect: {_reason(e)}") from None
        self.h2 = h2.connection.H2Connection(_H2_CONFIG)
        self.lock = threading.Lock()
        self.can_send = threading.Condition(self.lock)  # the daemon's window opened, or a call ended
        self.calls: dict[int, Call] = {}
        self.failure: str | None = None  # why it takes no more calls, once lost or closed
        self.draining = False  # its stream ids are used up
        with self.lock:
            self.h2.initiate_connection()
            advertise(self.h2, STREAM_WINDOW)
            self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
            self.flush()
        threading.Thread(target=self._read, name="grpc-client", daemon=True).start()

    def start(self, path, response_class, deadline, metadata) -> "Call | None":
        """A new call's stream, its headers queued; None when this connection has no room for it."""
        with self.lock:
            if self.failure is not None or self.draining or \
                    self.h2.open_outbound_streams >= self.h2.remote_settings.max_concurrent_streams:
                return None
            stream_id = self.h2.get_next_available_stream_id()
            self.draining = stream_id >= LAST_STREAM_ID
            headers = [(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                       ("te", "trailers"), ("content-type", "application/grpc")]
            if deadline is not None:
                headers.append(("grpc-timeout", _timeout_header(deadline - time.monotonic())))
            self.h2.send_headers(stream_id, headers + list(metadata))
            call = self.calls[stream_id] = Call(self, stream_id, path, response_class, deadline)
            return call

    def flush(self) -> None:
        """Under the lock: sends what h2 has queued; a failed write loses the connection."""
        data = self.h2.data_to_send()
        if data and self.failure is None:
            try:
                self.sock.sendall(data)
            except OSError as e:
                self._fail(StatusCode.UNAVAILABLE, f"lost the connection to {self.channel.address}: {_reason(e)}")

    def close(self, code: StatusCode, details: str) -> None:
        with self.lock:
            self._fail(code, details)

    def _fail(self, code: StatusCode, details: str) -> None:
        """Under the lock: every call in flight ends with this status; the reader stops."""
        if self.failure is not None:
            return
        self.failure = details
        for call in list(self.calls.values()):
            call.end(code, details)
        self.can_send.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read(self) -> None:
        """The reader thread: until the daemon or we close the connection."""
        why = f"lost the connection to {self.channel.address}: the daemon closed it"
        try:
            while (data := self.sock.recv(READ_SIZE)) and self._received(data):
                pass
        except OSError as e:
            why = f"lost the connection to {self.channel.address}: {_reason(e)}"
        with self.lock:
            self._fail(StatusCode.UNAVAILABLE, why)
        self.sock.close()

    def _received(self, data: bytes) -> bool:
        """Feeds h2; False once the connection is of no more use (failed here, under
        the lock, so that no caller meets an h2 that takes nothing more)."""
        with self.lock:
            try:
                for event in self.h2.receive_data(data):
                    self._on_event(event)
            except h2.exceptions.ProtocolError as e:
                self.flush()  # h2's GOAWAY
                self._fail(StatusCode.UNAVAILABLE, f"HTTP/2 protocol error from {self.channel.address}: {e}")
            except _GoAway as e:
                self._fail(StatusCode.UNAVAILABLE, str(e))
            self.flush()  # what h2 answers: window updates, pings
            return self.failure is None

    def _on_event(self, event) -> None:
        """Under the lock, on the reader thread; never blocks."""
        call = self.calls.get(getattr(event, "stream_id", None) or 0)
        if isinstance(event, h2.events.DataReceived):
            if call is None:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                call.on_data(event.data, event.flow_controlled_length)
        elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
            if call is not None:
                call.headers.update(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            if call is not None:
                call.on_end()
        elif isinstance(event, h2.events.StreamReset):
            if call is not None:
                call.on_reset(event.error_code)
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self.can_send.notify_all()
        elif isinstance(event, h2.events.ConnectionTerminated):
            # h2 takes nothing more on a connection once it has had a GOAWAY,
            # not even the rest of the calls the daemon means to finish.
            said = f": {event.additional_data.decode(errors='replace')}" if event.additional_data else ""
            raise _GoAway(f"the daemon at {self.channel.address} closed the connection "
                          f"(GOAWAY {_name(event.error_code)}{said})")


class Call:
    """One call's stream: `send` its requests, iterate its responses; `cancel`
    from any thread. Its status is raised as RpcError once the responses
    that came before it have been taken."""

    def __init__(self, conn: _Connection, stream_id: int, path: str, response_class, deadline: float | None):
        self.conn, self.stream_id, self.path = conn, stream_id, path
        self._response_class, self._deadline = response_class, deadline
        self.headers: dict[str, str] = {}  # the response's headers and trailers
        self._messages = MessageBuffer(conn.channel.max_receive)
        self._responses: deque[memoryview] = deque()
        self._held = 0      # bytes of responses waiting for the caller
        self._unacked = 0   # DATA bytes received but not yet acknowledged
        self._arrived = threading.Condition(conn.lock)
        self._status: tuple[StatusCode, str] | None = None
        self._sent_end = False

    # -- the reader thread, under the lock ------------------------------------------------------------------------
    def on_data(self, data: bytes, flow_length: int) -> None:
        self._unacked += flow_length
        if self._status is None:
            try:
                for message in self._messages.feed(data):
                    self._responses.append(message)
                    self._held += len(message)
            except Abort as e:  # over the limit: as grpcio, the call fails and the daemon is told to stop
                self.end(e.code, e.details, h2.errors.ErrorCodes.CANCEL)
        self._acknowledge()
        self._arrived.notify_all()

    def on_end(self) -> None:
        """The daemon's END_STREAM: the status its trailers (or its headers alone) carry."""
        headers = self.headers
        if "grpc-status" in headers:
            try:
                code = StatusCode(int(headers["grpc-status"]))
            except ValueError:
                code = StatusCode.UNKNOWN
            details = unquote(headers.get("grpc-message", ""), errors="replace")
        elif headers.get(":status") != "200":
            status = headers.get(":status", "none")
            code = _HTTP_STATUS.get(int(status) if status.isdigit() else 0, StatusCode.UNKNOWN)
            details = f"unexpected HTTP status code received from server: {status}"
        else:
            code, details = StatusCode.INTERNAL, "server closed the stream without sending trailers"
        # Our side ends too (a client stream the daemon answered before its end), so the stream is closed.
        self.end(code, details, None if self._sent_end else h2.errors.ErrorCodes.NO_ERROR)

    def on_reset(self, error_code) -> None:
        self.end(_RESET_STATUS.get(error_code, StatusCode.INTERNAL),
                 f"stream terminated by RST_STREAM with error code: {_name(error_code)}")

    def end(self, code: StatusCode, details: str, reset=None) -> None:
        """Under the lock: the call's status, once; `reset` the stream with that code."""
        if self._status is not None:
            return
        self._status = (code, details)
        self.conn.calls.pop(self.stream_id, None)
        if self.conn.failure is None:
            if self._unacked:  # the connection's window: what is left of the call's responses is ours now
                self.conn.h2.acknowledge_received_data(self._unacked, self.stream_id)
                self._unacked = 0
            if reset is not None:
                try:
                    self.conn.h2.reset_stream(self.stream_id, reset)
                except h2.exceptions.ProtocolError:
                    pass  # closed already
        self._arrived.notify_all()
        self.conn.can_send.notify_all()
        if self.conn.draining and not self.conn.calls:
            self.conn._fail(StatusCode.UNAVAILABLE, "its stream ids are used up")  # no call is left to fail

    def _acknowledge(self) -> None:
        """Under the lock: opens the daemon's window again, unless too much waits for the caller."""
        if self._unacked and self._held < STREAM_BUFFER:
            self.conn.h2.acknowledge_received_data(self._unacked, self.stream_id)
            self._unacked = 0

    # -- the caller's thread --------------------------------------------------------------------------------------
    def send(self, message, end: bool = False) -> None:
        """Sends a request (as the daemon's window allows); `end`: the last one.
        Nothing is sent once the call has ended: its responses say why."""
        payload = message.SerializeToString()
        conn = self.conn
        with conn.lock:
            if len(payload) > conn.channel.max_send:
                self.end(StatusCode.RESOURCE_EXHAUSTED,
                         f"grpc: trying to send message larger than max ({len(payload)} vs. {conn.channel.max_send})",
                         h2.errors.ErrorCodes.CANCEL)
                conn.flush()
                return
            data = framed(payload)
            rest = memoryview(data)
            try:
                while rest and self._status is None:
                    room = min(conn.h2.local_flow_control_window(self.stream_id), conn.h2.max_outbound_frame_size)
                    if room <= 0:
                        conn.flush()
                        self._wait(conn.can_send)
                        continue
                    chunk, rest = rest[:room], rest[room:]
                    conn.h2.send_data(self.stream_id, data if len(chunk) == len(data) else chunk.tobytes(),
                                      end_stream=end and not rest)
                self._sent_end = end and not rest
            except h2.exceptions.ProtocolError as e:  # the stream or connection closed under us
                self.end(StatusCode.UNAVAILABLE, f"{self.path}: the stream closed while sending: {e}")
            conn.flush()

    def send_headers(self) -> None:
        """Sends what is queued: a call's headers, when it has no request to go with them yet."""
        with self.conn.lock:
            self.conn.flush()

    def done_sending(self) -> None:
        """Ends our side of the call: no more requests."""
        with self.conn.lock:
            if self._status is None and not self._sent_end:
                try:
                    self.conn.h2.end_stream(self.stream_id)
                except h2.exceptions.ProtocolError as e:  # the stream or connection closed under us
                    self.end(StatusCode.UNAVAILABLE, f"{self.path}: the stream closed while sending: {e}")
                self._sent_end = True
                self.conn.flush()

    def cancel(self) -> None:
        """Ends the call (CANCELLED, unless it had ended) and tells the daemon."""
        with self.conn.lock:
            self._responses.clear()
            self._held = 0
            self.end(StatusCode.CANCELLED, "Locally cancelled by application!", h2.errors.ErrorCodes.CANCEL)
            self.conn.flush()

    def __iter__(self):
        return self

    def __next__(self):
        conn = self.conn
        with conn.lock:
            while not self._responses:
                if self._status is not None:
                    code, details = self._status
                    if code == StatusCode.OK:
                        raise StopIteration
                    raise RpcError(code, details)
                self._wait(self._arrived)
            raw = self._responses.popleft()
            self._held -= len(raw)
            if self._unacked:
                self._acknowledge()
                conn.flush()
        try:
            return self._response_class.FromString(raw)
        except DecodeError as e:
            raise RpcError(StatusCode.INTERNAL, f"{self.path}: cannot parse the response: {e}") from None

    def _wait(self, condition: threading.Condition) -> None:
        """Under the lock: waits for `condition`; past the deadline, the call ends."""
        if self._deadline is None:
            condition.wait()
        elif (remaining := self._deadline - time.monotonic()) > 0:
            condition.wait(remaining)
        else:
            self.end(StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", h2.errors.ErrorCodes.CANCEL)
            self.conn.flush()


class _Failed:
    """A call that could not be started (no connection): it fails at its first use, as grpcio's do."""

    def __init__(self, error: RpcError):
        self._error = error

    def send(self, message, end: bool = False) -> None:
        pass

    def send_headers(self) -> None:
        """Sends what is queued: a call's headers, when it has no request to go with them yet."""
        with self.conn.lock:
            self.conn.flush()

    def done_sending(self) -> None:
        pass

    def cancel(self) -> None:
        pass

    def __iter__(self):
        return self

    def __next__(self):
        raise RpcError(self._error.code, self._error.details)


class _GoAway(Exception):
    """The daemon closed the connection with a GOAWAY frame."""


@lru_cache(maxsize=None)
def _methods(service) -> dict:
    return {m.name: (f"/{service.full_name}/{m.name}", message_factory.GetMessageClass(m.output_type),
                     m.client_streaming, m.server_streaming) for m in service.methods}


class Stub:
    """A service's methods as attributes, called as grpcio's generated stubs'
    are: `stub.Get(request, timeout=, metadata=)` returns a unary method's
    response; a server-streaming method returns its Call to iterate; a
    client-streaming one takes no request and returns its Call to `send` on."""

    def __init__(self, channel: Channel, service_descriptor):
        self._channel, self._methods = channel, _methods(service_descriptor)

    def __getattr__(self, name: str):
        try:
            path, response_class, client_streaming, server_streaming = self._methods[name]
        except KeyError:
            raise AttributeError(name) from None
        if client_streaming:
            return partial(self._channel.stream, path, response_class, None)
        if server_streaming:
            return partial(self._channel.stream, path, response_class)
        return partial(self._channel.unary, path, response_class=response_class)


def _timeout_header(seconds: float) -> str:
    """grpc-timeout: at most 8 digits and a unit."""
    millis = max(1, math.ceil(seconds * 1000))
    return f"{millis}m" if millis < 10**8 else f"{min(math.ceil(seconds), 10**8 - 1)}S"


def _reason(error: OSError) -> str:
    """As Go words a socket error: "no such file or directory"."""
    if isinstance(error, TimeoutError):
        return "i/o timeout"
    return os.strerror(error.errno).lower() if error.errno else str(error)


def _name(error_code) -> str:
    return getattr(error_code, "name", str(error_code))
