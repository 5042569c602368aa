"""A gRPC server on a unix socket: HTTP/2 by `h2`, the calls on a thread pool.

One reader thread per connection feeds h2 and routes its events to calls;
handlers run on worker threads and write their responses themselves. One
lock per connection guards the h2 state machine and the socket's writes.
Flow control: a streaming request's DATA is acknowledged (the client's
window opened again) only while fewer than REQUEST_BUFFER bytes wait for the
handler, so a fast client cannot fill the daemon's memory; a response waits
for the client's window.
"""
import logging
import socket
import struct
import threading
import time
from collections import deque
from concurrent import futures
from urllib.parse import quote

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame
from google.protobuf import message_factory
from google.protobuf.message import DecodeError

from .status import Abort, Cancelled, StatusCode

log = logging.getLogger(__name__)
# hpack and h2 log every header they code at debug level: not what `-l debug` is for.
for _name in ("hpack", "h2"):
    logging.getLogger(_name).setLevel(logging.INFO)



def _data_frame_body_repr(self) -> str:
    return hyperframe.frame._raw_data_repr(self.data[:11])


# h2 formats every frame it receives for its trace log (`repr(frame)`, whether
# or not anything logs it), and hyperframe's DataFrame repr hexlifies the
# whole body to show its first 20 hex digits: ~18 us of each 16 KiB frame,
# 60 ms of a 50 MB layer upload. The same text, from the first 11 bytes:
hyperframe.frame.DataFrame._body_repr = _data_frame_body_repr

REQUEST_BUFFER = 4 << 20        # bytes of one streaming call's requests held before the client must wait
STREAM_WINDOW = 4 << 20         # what a client may send on one stream before we acknowledge
CONNECTION_WINDOW = 64 << 20    # ... and on all streams of a connection (more than a few streams hold back)
READ_SIZE = 256 << 10
_PREFIX = struct.Struct(">BI")  # gRPC message: compressed flag, length
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# Request headers that are HTTP/2 or gRPC transport, not the call's metadata.
_TRANSPORT_HEADERS = {"te", "content-type", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"}


class Method:
    """One routed method: how to parse its request, whether either side streams."""

    __slots__ = ("request_class", "client_streaming", "server_streaming", "behavior")

    def __init__(self, request_class, client_streaming, server_streaming, behavior):
        self.request_class, self.behavior = request_class, behavior
        self.client_streaming, self.server_streaming = client_streaming, server_streaming


class ServicerContext:
    """What a handler sees of its call (the subset of grpc.ServicerContext we use)."""

    def __init__(self, call: "_Call"):
        self._call = call

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return self._call.metadata

    def is_active(self) -> bool:
        return self._call.active()

    def abort(self, code: StatusCode, details: str):
        raise Abort(code, details)


class Server:
    """`add_service` each servicer, `listen_unix`, `start`; `stop(grace)` returns
    an event set once every connection is closed."""

    def __init__(self, max_workers: int = 256, max_receive_message_length: int = 16 << 20,
                 max_send_message_length: int = 16 << 20, wrap=None):
        """`wrap(path, behavior, server_streaming)` returns the behavior to route
        to, for error handling around every method."""
        self._pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc")
        self.max_receive, self.max_send = max_receive_message_length, max_send_message_length
        self._wrap = wrap or (lambda path, behavior, server_streaming: behavior)
        self._methods: dict[str, Method] = {}
        self._listeners: list[socket.socket] = []
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self.stopping = False

    def add_service(self, service_descriptor, servicer) -> None:
        """Routes every method of a protobuf service descriptor that `servicer`
        implements (by name, as grpcio's generated servicers do); the others
        answer UNIMPLEMENTED."""
        for m in service_descriptor.methods:
            behavior = getattr(servicer, m.name, None)
            if behavior is None:
                continue
            path = f"/{service_descriptor.full_name}/{m.name}"
            self._methods[path] = Method(message_factory.GetMessageClass(m.input_type), m.client_streaming,
                                         m.server_streaming, self._wrap(path, behavior, m.server_streaming))

    def listen_unix(self, path: str) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._listeners.append(sock)

    def start(self) -> None:
        for sock in self._listeners:
            threading.Thread(target=self._accept, args=(sock,), name="grpc-accept", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # stop() shut the listener down
            conn = _Connection(self, sock)
            with self._lock:
                if self.stopping:
                    sock.close()
                    continue
                self._connections.add(conn)
            threading.Thread(target=conn.serve, name="grpc-conn", daemon=True).start()

    def _forget(self, conn: "_Connection") -> None:
        with self._lock:
            self._connections.discard(conn)

    def stop(self, grace: float | None = None) -> threading.Event:
        """No new connections, new calls answered UNAVAILABLE; calls in flight get
        `grace` seconds, then are cancelled, and each connection ends with a
        GOAWAY. (h2 sends nothing more once it has sent a GOAWAY, so that comes last.)"""
        done = threading.Event()
        with self._lock:
            self.stopping = True
            connections = list(self._connections)
        for sock in self._listeners:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

        def finish():
            deadline = time.monotonic() + (grace or 0)
            while any(conn.busy() for conn in connections) and time.monotonic() < deadline:
                time.sleep(0.02)
            for conn in connections:
                conn.go_away()
                conn.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
            done.set()

        threading.Thread(target=finish, name="grpc-stop", daemon=True).start()
        return done

    def dispatch(self, call: "_Call") -> None:
        """Under the connection's lock."""
        try:
            self._pool.submit(call.run)
        except RuntimeError:  # the pool is shut down: stop() is past its grace
            call.finish_locked(StatusCode.UNAVAILABLE, "the server is stopping")


class _Connection:
    def __init__(self, server: Server, sock: socket.socket):
        self.server, self.sock = server, sock
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.lock = threading.Lock()
        self.window_opened = threading.Condition(self.lock)
        self.calls: dict[int, _Call] = {}
        self.fed: set[_Call] = set()  # calls given DATA in this read: acknowledged once, after it
        self.closed = False

    # -- the reader thread --------------------------------------------------------------------------------------
    def serve(self) -> None:
        try:
            with self.lock:
                self.h2.initiate_connection()
                self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW})
                self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
                self.flush()
            while True:
                data = self.sock.recv(READ_SIZE)
                if not data:
                    break
                with self.lock:
                    for event in self.h2.receive_data(data):
                        self._on_event(event)
                    for call in self.fed:
                        call.acknowledge()
                    self.fed.clear()
                    self.flush()
        except h2.exceptions.ProtocolError as e:
            log.debug("HTTP/2 protocol error from a client: %s", e)
            self._send_quietly()
        except OSError:
            pass
        except Exception:  # noqa: BLE001 - a bug here ends this connection, not the daemon
            log.exception("gRPC connection failed")
        finally:
            self.close()
            self.server._forget(self)

    def _on_event(self, event) -> None:
        """Under the lock; never blocks."""
        # h2 reports an END_STREAM flag on HEADERS or DATA as a StreamEnded event of its own, after.
        if isinstance(event, h2.events.RequestReceived):
            self._on_request(event.stream_id, event.headers)
            return
        call = self.calls.get(getattr(event, "stream_id", None) or 0)
        if isinstance(event, h2.events.DataReceived):
            if call is None:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                call.on_data(event.data, event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            self._on_end(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            if call is not None:
                call.cancel()
            self.window_opened.notify_all()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self.window_opened.notify_all()
        elif isinstance(event, h2.events.ConnectionTerminated):
            for c in list(self.calls.values()):
                c.cancel()
            self.window_opened.notify_all()

    def _on_request(self, stream_id: int, headers: list[tuple[str, str]]) -> None:
        path, metadata, timeout = "", [], None
        for key, value in headers:
            if key == ":path":
                path = value
            elif key == "grpc-timeout":
                timeout = _parse_timeout(value)
            elif not key.startswith(":") and key not in _TRANSPORT_HEADERS:
                metadata.append((key, value))
        call = _Call(self, stream_id, self.server._methods.get(path), path, metadata,
                     None if timeout is None else time.monotonic() + timeout)
        self.calls[stream_id] = call
        if self.server.stopping:
            call.finish_locked(StatusCode.UNAVAILABLE, "the server is stopping")
        elif call.method is None:
            call.finish_locked(StatusCode.UNIMPLEMENTED, f"unknown method {path}")
        elif call.method.client_streaming:
            self.server.dispatch(call)

    def _on_end(self, stream_id: int) -> None:
        call = self.calls.get(stream_id)
        if call is not None:
            call.on_end()

    # -- shared -------------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Under the lock: writes what h2 has queued."""
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.sock.sendall(data)

    def _send_quietly(self) -> None:
        with self.lock:
            try:
                self.flush()
            except OSError:
                pass

    def busy(self) -> bool:
        with self.lock:
            return bool(self.calls) and not self.closed

    def go_away(self) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                self.h2.close_connection(last_stream_id=max(self.calls, default=0))
                self.flush()
            except (OSError, h2.exceptions.ProtocolError):
                pass

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            for call in list(self.calls.values()):
                call.cancel()
            self.calls.clear()
            self.window_opened.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class _Call:
    """One stream: its requests as they arrive, its responses as the handler makes them."""

    def __init__(self, conn: _Connection, stream_id: int, method: Method | None, path: str,
                 metadata: list, deadline: float | None):
        self.conn, self.stream_id, self.method, self.path = conn, stream_id, method, path
        self.metadata, self.deadline = metadata, deadline
        self._chunks: list = []  # the DATA of a message not yet complete
        self._partial = 0         # ... its bytes so far
        self._need: int | None = None  # ... and its length with the prefix, once known
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
        # The frames' data is kept as it came and joined once per message (a
        # growing buffer would copy a 1 MiB message many times over).
        self._chunks.append(data)
        self._partial += len(data)
        self._unacked += flow_length
        self.conn.fed.add(self)
        arrived = False
        while True:
            if self._need is None:
                if self._partial < 5:
                    break
                head = self._chunks[0] if len(self._chunks[0]) >= 5 else b"".join(self._chunks)
                compressed, length = _PREFIX.unpack_from(head)
                limit = self.conn.server.max_receive
                if length > limit:
                    self.finish_locked(StatusCode.RESOURCE_EXHAUSTED,
                                       f"grpc: received message larger than max ({length} vs. {limit})")
                    return
                if compressed:
                    self.finish_locked(StatusCode.UNIMPLEMENTED, "compressed messages are not supported")
                    return
                self._need = 5 + length
            if self._partial < self._need:
                break
            whole = memoryview(self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks))
            self._requests.append(whole[5:self._need])
            self._held += self._need - 5
            rest = whole[self._need:]
            self._chunks = [rest] if rest else []
            self._partial -= self._need
            self._need = None
            arrived = True
        if arrived:
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
        data = memoryview(_PREFIX.pack(0, len(payload)) + payload)
        with conn.lock:
            try:
                self._send_headers()
                while data:
                    if not self.active() or conn.closed:
                        raise Cancelled()
                    n = min(len(data), conn.h2.local_flow_control_window(self.stream_id),
                            conn.h2.max_outbound_frame_size)
                    if n <= 0:
                        conn.flush()
                        conn.window_opened.wait(1.0)
                        continue
                    conn.h2.send_data(self.stream_id, data[:n].tobytes())
                    data = data[n:]
                conn.flush()
            except (OSError, h2.exceptions.StreamClosedError):
                raise Cancelled() from None

    def _send_headers(self) -> None:
        if not self._headers_sent:
            self.conn.h2.send_headers(self.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
            self._headers_sent = True

    def finish(self, code: StatusCode, details: str) -> None:
        with self.conn.lock:
            try:
                self.finish_locked(code, details)
            except OSError:
                pass

    def finish_locked(self, code: StatusCode, details: str) -> None:
        """The trailers (or a trailers-only response); a client still sending is told to stop."""
        if self.finished or self.cancelled or self.conn.closed:
            self.conn.calls.pop(self.stream_id, None)
            return
        self.finished = True
        self._arrived.notify_all()
        if self.deadline is not None and time.monotonic() >= self.deadline:
            code, details = StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"  # whatever the handler made of it
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


def _parse_timeout(value: str) -> float | None:
    try:
        return int(value[:-1]) * _TIMEOUT_UNITS[value[-1]]
    except (ValueError, KeyError, IndexError):
        return None
