"""Accepting and reading a server's connections on one thread, whatever
protocol they speak: the daemon's gRPC server (HTTP/2 by h2) uses it, and
the engine's HTTP/1.1 server (h11) is meant to, for the same guarantees.

One selector thread accepts on the listening sockets and reads every
connection, so an idle connection costs a file descriptor and a few
objects, no thread. Each connection gets a handler, made by the server's
`make_handler(transport)` on that thread; the handler is fed bytes:

    data_received(data)  what the peer sent; parse it, hand complete requests
                         to a worker pool, never block (all connections wait)
    eof_received()       the peer will send nothing more (reading stops)
    writable()           the transport's buffer has drained (see below)
    connection_lost()    the connection is closed, by either side; once, last

Its `Transport` is safe to use from any thread: `write` never blocks (what
the socket does not take now waits in the transport and goes out as the
peer reads; `buffered` says how much), so a worker sending much waits for
`writable()` while `buffered` is high; `pause_reading`/`resume_reading` hold
back a peer whose protocol has no flow control of its own (HTTP/1.1 bodies);
`close` ends the connection, dropping what the peer has not taken.

An HTTP/1.1 server on h11, say, feeds `h11.Connection.receive_data` in
data_received (and b"" in eof_received), pauses reading while a request's
body waits for its worker, writes what h11 makes of the response with
`write`, and closes once h11 says the connection is done.

It never goes deaf: an error at accept or at a connection's setup (EMFILE,
ENFILE, ENOMEM, a handler that cannot be made) is logged once for a run of
them and retried with back-off while the connections already made are
served; a connection over `max_connections` is closed at once, with a log
line, and the others go on.
"""
import errno
import heapq
import itertools
import logging
import os
import resource
import selectors
import socket
import threading
import time
from collections import deque

log = logging.getLogger(__name__)

READ_SIZE = 256 << 10
FIRST_BACKOFF, MAX_BACKOFF = 0.005, 1.0  # seconds between retries of a failing accept, as Go's net/http
REMIND_AFTER = 60.0  # seconds: a run of failures is logged again, with its count, no more often
# Errors of one connection that died in the backlog: the next accept is fine, no back-off.
_GONE = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}


def default_max_connections() -> int:
    """Three quarters of the fd limit: the daemon keeps fds for its own work
    (files, shims, content) however many connections clients open."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(16, soft * 3 // 4)


class Trouble:
    """A run of the same failure, logged when it starts, then at most every
    REMIND_AFTER seconds with its count, and once more when it ends: a line
    per episode, not per retry. `failing` is formatted with {error}, `over`
    with {count}."""

    def __init__(self, failing: str, over: str, clock=time.monotonic):
        self.failing, self.over, self._clock = failing, over, clock
        self.failures = 0
        self._logged_at = 0.0
        self._unlogged = 0

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        now = self._clock()
        if self.failures == 1:
            log.warning(self.failing.format(error=error))
        elif now - self._logged_at >= REMIND_AFTER:
            log.warning("%s (%d times since the last report)", self.failing.format(error=error), self._unlogged + 1)
        else:
            self._unlogged += 1
            return
        self._logged_at, self._unlogged = now, 0

    def ended(self) -> None:
        if self.failures:
            log.info(self.over.format(count=self.failures))
            self.failures = 0


class Transport:
    """One accepted connection's socket, as its handler uses it (from any thread)."""

    def __init__(self, listener: "Listener", sock: socket.socket):
        self._listener, self._sock = listener, sock
        self.handler = None
        self._lock = threading.Lock()
        self._out: deque[memoryview] = deque()
        self.buffered = 0  # bytes written but not yet taken by the socket
        self.closed = False  # by close(): nothing more is written
        self._gone = False   # the socket is closed, the handler told
        self._reading = True  # not paused, not at EOF
        self._eof = False

    def write(self, data: bytes) -> None:
        """Sends what the socket takes now; the rest waits here (never blocks).
        Dropped once the connection is closed."""
        if not data:
            return
        with self._lock:
            if self.closed:
                return
            if not self._out:
                try:
                    sent = self._sock.send(data)
                except BlockingIOError:
                    sent = 0
                except OSError:  # the peer is gone
                    self._closing()
                    return
                if sent == len(data):
                    return
                data = memoryview(data)[sent:]
            self._out.append(memoryview(data))
            self.buffered += len(data)
            if len(self._out) == 1:  # the loop writes the rest once the socket takes more
                self._listener.call_soon(self._update_interest)

    def pause_reading(self) -> None:
        self._listener.call_soon(self._set_reading, False)

    def resume_reading(self) -> None:
        self._listener.call_soon(self._set_reading, True)

    def close(self) -> None:
        """Ends the connection: writes are dropped from now on, and so is what
        the peer has not taken yet (wait for `writable()` first to deliver
        all); the handler's connection_lost() follows, on the loop thread.
        From any thread; idempotent."""
        with self._lock:
            self._closing()

    def _closing(self) -> None:
        """Under the lock."""
        if not self.closed:
            self.closed = True
            self._listener.call_soon(self._close_now)

    # -- on the loop thread ---------------------------------------------------------------------------------------
    def _set_reading(self, on: bool) -> None:
        self._reading = on and not self._eof
        self._update_interest()

    def _update_interest(self) -> None:
        with self._lock:
            if self._gone:
                return
            events = (selectors.EVENT_READ if self._reading else 0) | (selectors.EVENT_WRITE if self._out else 0)
            self._listener._watch(self._sock, events, self)

    def on_readable(self) -> None:
        try:
            data = self._sock.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:  # reset by the peer
            self._close_now()
            return
        if data:
            self.handler.data_received(data)
        else:
            self._eof, self._reading = True, False
            self._update_interest()
            self.handler.eof_received()

    def on_writable(self) -> None:
        with self._lock:
            while self._out:
                try:
                    sent = self._sock.send(self._out[0])
                except BlockingIOError:
                    return
                except OSError:  # the peer is gone
                    break
                self.buffered -= sent
                if sent == len(self._out[0]):
                    self._out.popleft()
                else:
                    self._out[0] = self._out[0][sent:]
            gone = bool(self._out)
        if gone:
            self._close_now()
            return
        self._update_interest()
        self.handler.writable()

    def _close_now(self) -> None:
        with self._lock:
            if self._gone:
                return
            self._gone = self.closed = True
            self._out.clear()
            self.buffered = 0
        self._listener._forget(self._sock, self)
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        if self.handler is not None:
            try:
                self.handler.connection_lost()
            except Exception:  # noqa: BLE001 - a handler's bug must not stop the others' closing
                log.exception("%s: a connection failed at its end", self._listener.name)


class Listener:
    """The selector loop: `listen_unix` (or `add` a listening socket), `start`;
    `stop_accepting`, then `close` to end every connection and the thread."""

    def __init__(self, make_handler, max_connections: int | None = None, name: str = "server"):
        self._make_handler, self.name = make_handler, name
        self.max_connections = max_connections or default_max_connections()
        self._selector = selectors.DefaultSelector()
        self._wakeup = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._selector.register(self._wakeup, selectors.EVENT_READ, None)
        self._wakeup_lock = threading.Lock()  # the fd is closed when the loop ends: never written after
        self._calls: deque = deque()
        self._timers: list = []
        self._order = itertools.count()
        self._listeners: dict[socket.socket, Trouble] = {}
        self._backoff: dict[socket.socket, float] = {}
        self.connections: set[Transport] = set()
        self._over_limit = Trouble(f"{name}: a connection over the limit of {self.max_connections} closed ({{error}})",
                                   f"{name}: taking connections again, after {{count}} closed over the limit")
        self._loop_trouble = Trouble(f"{name}: the connection loop failed: {{error}}; retrying",
                                     f"{name}: the connection loop works again, after {{count}} failures")
        self.thread: threading.Thread | None = None
        self._running = True

    def listen_unix(self, path: str, backlog: int = 128) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(path)
            sock.listen(backlog)
        except OSError:
            sock.close()
            raise
        self.add(sock)

    def add(self, sock: socket.socket) -> None:
        """A bound, listening socket to accept on; before `start`."""
        sock.setblocking(False)
        where = sock.getsockname() or "a socket"
        self._listeners[sock] = Trouble(f"{self.name}: cannot accept a connection on {where}: {{error}}; "
                                        "retrying with back-off",
                                        f"{self.name}: accepting connections on {where} again, after {{count}} failures")
        self._selector.register(sock, selectors.EVENT_READ, sock)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name=f"{self.name}-loop", daemon=True)
        self.thread.start()

    def call_soon(self, fn, *args) -> bool:
        """Runs fn(*args) on the loop thread (from any thread); False once the loop has ended."""
        with self._wakeup_lock:
            if self._wakeup is None:
                return False
            self._calls.append((fn, args))
            os.eventfd_write(self._wakeup, 1)
            return True

    def stop_accepting(self) -> None:
        """Closes the listening sockets: a connect fails once this returns."""
        self._on_loop(self._close_listeners)

    def close(self) -> None:
        """Closes every connection (each handler sees connection_lost) and ends the loop."""
        if self.thread is None:  # never started
            self._shut_down()
            self._release()
            return
        self._on_loop(self._shut_down)
        if self.thread is not threading.current_thread():
            self.thread.join()

    def _on_loop(self, fn) -> None:
        """Runs fn on the loop thread and waits for it, or here if the loop is not running."""
        done = threading.Event()

        def run_then_tell():
            try:
                fn()
            finally:
                done.set()

        if self.thread is None or self.thread is threading.current_thread() or not self.call_soon(run_then_tell):
            fn()
            return
        done.wait()

    # -- the loop thread ------------------------------------------------------------------------------------------
    def _watch(self, sock: socket.socket, events: int, data) -> None:
        key = self._selector.get_map().get(sock)
        if key is None:
            if events:
                self._selector.register(sock, events, data)
        elif not events:
            self._selector.unregister(sock)
        elif key.events != events:
            self._selector.modify(sock, events, data)

    def _forget(self, sock: socket.socket, transport: Transport) -> None:
        if sock in self._selector.get_map():
            self._selector.unregister(sock)
        self.connections.discard(transport)

    def call_later(self, delay: float, fn, *args) -> None:
        """On the loop thread: runs fn(*args) there in `delay` seconds."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._order), fn, args))

    def _run(self) -> None:
        delay = FIRST_BACKOFF
        while self._running:
            try:
                self._turn()
            except Exception as e:  # noqa: BLE001 - a bug here must not leave the server deaf
                self._loop_trouble.failed(e)
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            if self._loop_trouble.failures:
                self._loop_trouble.ended()
                delay = FIRST_BACKOFF
        self._release()

    def _release(self) -> None:
        """The selector and the wakeup fd, once the loop has ended (or never ran)."""
        with self._wakeup_lock:
            if self._wakeup is None:
                return
            os.close(self._wakeup)
            self._wakeup = None
        self._selector.close()
        self._run_calls()  # queued while the loop ended (a close waiting for them)

    def _turn(self) -> None:
        timeout = None
        if self._timers:
            timeout = max(0.0, self._timers[0][0] - time.monotonic())
        for key, events in self._selector.select(timeout):
            if key.data is None:
                os.eventfd_read(self._wakeup)
            elif isinstance(key.data, socket.socket):
                self._accept(key.data)
            else:
                self._serve(key.data, events)
        while self._timers and self._timers[0][0] <= time.monotonic():
            _, _, fn, args = heapq.heappop(self._timers)
            fn(*args)
        self._run_calls()

    def _run_calls(self) -> None:
        while self._calls:
            fn, args = self._calls.popleft()
            fn(*args)

    def _serve(self, transport: Transport, events: int) -> None:
        """One connection's turn; a handler that fails ends its connection only."""
        try:
            if transport.closed:  # its close is queued
                return
            if events & selectors.EVENT_WRITE:
                transport.on_writable()
            if events & selectors.EVENT_READ and not transport.closed:
                transport.on_readable()
        except Exception:  # noqa: BLE001
            log.exception("%s: a connection failed", self.name)
            transport._close_now()

    def _accept(self, listener: socket.socket) -> None:
        trouble = self._listeners[listener]
        try:
            sock, _ = listener.accept()
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno in _GONE:
                return
            self._back_off(listener, trouble, e)
            return
        if len(self.connections) >= self.max_connections:
            self._over_limit.failed(OSError(f"{len(self.connections)} open"))
            sock.close()
            return
        self._over_limit.ended()
        transport = None
        try:
            sock.setblocking(False)
            transport = Transport(self, sock)
            self.connections.add(transport)
            transport.handler = self._make_handler(transport)
            transport._update_interest()
        except Exception as e:  # noqa: BLE001 - MemoryError, a thread or fd the setup could not get, ...
            if transport is not None:
                transport._close_now()
            else:
                sock.close()
            self._back_off(listener, trouble, e)
            return
        trouble.ended()
        self._backoff.pop(listener, None)

    def _back_off(self, listener: socket.socket, trouble: Trouble, error: BaseException) -> None:
        """Stops accepting on `listener` for a while, longer each time in a row."""
        trouble.failed(error)
        delay = min(self._backoff.get(listener, FIRST_BACKOFF / 2) * 2, MAX_BACKOFF)
        self._backoff[listener] = delay
        self._watch(listener, 0, listener)
        self.call_later(delay, self._resume_accepting, listener)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if listener in self._listeners:
            self._watch(listener, selectors.EVENT_READ, listener)

    def _close_listeners(self) -> None:
        for sock in self._listeners:
            self._watch(sock, 0, sock)
            sock.close()
        self._listeners.clear()

    def _shut_down(self) -> None:
        self._close_listeners()
        for transport in list(self.connections):
            transport._close_now()
        self._running = False
