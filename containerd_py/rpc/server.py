"""A gRPC server on a unix socket: HTTP/2 by `h2`, the calls on a thread pool.

The listener (listener.py) accepts and reads every connection on one
thread and never goes deaf; each connection's bytes go to its h2 state
machine (connection.py), and each call (call.py) runs its handler on a
worker of the pool. A worker that cannot be started (a thread limit) is
logged once and retried with back-off; the call waits for it, or for a
worker to come free.
"""
import logging
import threading
import time
from concurrent import futures

from google.protobuf import message_factory

from .call import Call, Method
from .connection import Connection
from .listener import FIRST_BACKOFF, MAX_BACKOFF, Listener, Transport, Trouble
from .status import StatusCode

log = logging.getLogger(__name__)


class Server:
    """`add_service` each servicer, `listen_unix`, `start`; `stop(grace)` returns
    an event set once every connection is closed."""

    def __init__(self, max_workers: int = 256, max_receive_message_length: int = 16 << 20,
                 max_send_message_length: int = 16 << 20, wrap=None, max_connections: int | None = None):
        """`wrap(path, behavior, server_streaming)` returns the behavior to route
        to, for error handling around every method. `max_connections` defaults
        to listener.default_max_connections()."""
        self._pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc")
        self.max_receive, self.max_send = max_receive_message_length, max_send_message_length
        self._wrap = wrap or (lambda path, behavior, server_streaming: behavior)
        self._methods: dict[str, Method] = {}
        self._listener = Listener(self._connect, max_connections, name="grpc")
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._no_worker = Trouble("grpc: cannot start a worker thread: {error}; the call waits, retrying",
                                  "grpc: worker threads start again, after {count} failures")
        self._worker_backoff = 0.0
        self._worker_retry_due = False
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

    def method(self, path: str) -> Method | None:
        return self._methods.get(path)

    def listen_unix(self, path: str) -> None:
        self._listener.listen_unix(path)

    def start(self) -> None:
        self._listener.start()

    def _connect(self, transport: Transport) -> Connection:
        conn = Connection(self, transport)
        with self._lock:
            self._connections.add(conn)
        return conn

    def forget(self, conn: Connection) -> None:
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
        self._listener.stop_accepting()

        def finish():
            deadline = time.monotonic() + (grace or 0)
            while any(conn.busy() for conn in connections) and time.monotonic() < deadline:
                time.sleep(0.02)
            for conn in connections:
                conn.go_away()
            self._listener.close()
            self._pool.shutdown(wait=False, cancel_futures=True)
            done.set()

        threading.Thread(target=finish, name="grpc-stop", daemon=True).start()
        return done

    def dispatch(self, call: Call) -> None:
        """Under the connection's lock: queues the call for a worker."""
        try:
            self._pool.submit(call.run)
        except RuntimeError as e:
            if self.stopping:  # the pool is shut down: stop() is past its grace
                call.finish_locked(StatusCode.UNAVAILABLE, "the server is stopping")
            else:  # queued, but no thread could be started for it
                self._worker_failed(e)
            return
        self._worker_started()

    def _worker_failed(self, error: RuntimeError) -> None:
        self._no_worker.failed(error)
        if not self._worker_retry_due:
            self._worker_retry_due = True
            self._worker_backoff = min(max(self._worker_backoff * 2, FIRST_BACKOFF), MAX_BACKOFF)
            self._listener.call_later(self._worker_backoff, self._retry_worker)

    def _worker_started(self) -> None:
        if self._no_worker.failures:
            self._no_worker.ended()
            self._worker_backoff = 0.0

    def _retry_worker(self) -> None:
        """On the listener's thread: a no-op submitted starts a worker for the queued calls, if it can."""
        self._worker_retry_due = False
        try:
            self._pool.submit(lambda: None)
        except RuntimeError as e:
            if not self.stopping:
                self._worker_failed(e)
            return
        self._worker_started()
