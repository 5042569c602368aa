"""One client connection of the gRPC server: the handler the listener feeds
its bytes to (see listener.py). h2 parses them on the listener's thread and
the events go to the calls; handlers run on the server's worker threads and
write their responses themselves. One lock per connection guards the h2
state machine and the order of its writes.
"""
import logging
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from . import wire
from .call import Call, parse_timeout
from .status import StatusCode
from .listener import Transport

log = logging.getLogger(__name__)

STREAM_WINDOW = 4 << 20         # what a client may send on one stream before we acknowledge
CONNECTION_WINDOW = 64 << 20    # ... and on all streams of a connection (more than a few streams hold back)
# Request headers that are HTTP/2 or gRPC transport, not the call's metadata.
_TRANSPORT_HEADERS = {"te", "content-type", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"}


class Connection:
    """Made on the listener's thread when a client connects; fed there."""

    def __init__(self, server, transport: Transport):
        self.server, self.transport = server, transport
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.lock = threading.Lock()
        self.can_send = threading.Condition(self.lock)  # the client's window opened, or the transport drained
        self.calls: dict[int, Call] = {}
        self.fed: set[Call] = set()  # calls given DATA in this read: acknowledged once, after it
        self.closed = False
        with self.lock:
            self.h2.initiate_connection()
            wire.advertise(self.h2, STREAM_WINDOW)
            self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
            self.flush()

    # -- the listener's thread ----------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        with self.lock:
            try:
                for event in self.h2.receive_data(data):
                    self._on_event(event)
            except h2.exceptions.ProtocolError as e:
                log.debug("HTTP/2 protocol error from a client: %s", e)
                self.flush()  # h2's GOAWAY
                self.transport.close()
                return
            for call in self.fed:
                call.acknowledge()
            self.fed.clear()
            self.flush()

    def eof_received(self) -> None:
        self.transport.close()

    def writable(self) -> None:
        with self.lock:
            self.can_send.notify_all()

    def connection_lost(self) -> None:
        with self.lock:
            self.closed = True
            for call in list(self.calls.values()):
                call.cancel()
            self.calls.clear()
            self.can_send.notify_all()
        self.server.forget(self)

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
            self.can_send.notify_all()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self.can_send.notify_all()
        elif isinstance(event, h2.events.ConnectionTerminated):
            for c in list(self.calls.values()):
                c.cancel()
            self.can_send.notify_all()

    def _on_request(self, stream_id: int, headers: list[tuple[str, str]]) -> None:
        path, metadata, timeout = "", [], None
        for key, value in headers:
            if key == ":path":
                path = value
            elif key == "grpc-timeout":
                timeout = parse_timeout(value)
            elif not key.startswith(":") and key not in _TRANSPORT_HEADERS:
                metadata.append((key, value))
        call = Call(self, stream_id, self.server._methods.get(path), path, metadata,
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

    # -- any thread ---------------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Under the lock: hands what h2 has queued to the transport (which never blocks)."""
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.transport.write(data)

    def busy(self) -> bool:
        with self.lock:
            return bool(self.calls) and not self.closed

    def go_away(self) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                self.h2.close_connection(last_stream_id=max(self.calls, default=0))
            except h2.exceptions.ProtocolError:
                return
            self.flush()
