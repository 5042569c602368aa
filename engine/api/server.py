"""The Docker Engine API over HTTP/1.1: h11's state machine on the never-deaf
accept loop of containerd_py.rpc.listener, the routes on a thread pool.

One listener thread accepts and reads every connection (an idle one costs
no thread); h11 parses on that thread and each request goes to a worker as
soon as its headers are in, its body following as a stream (http.Inflow).
The worker runs the route and writes the reply through h11; a connection is
kept alive between requests and pipelined requests wait their turn.

Paths are served with and without the `/v1.NN` prefix; a version above
API_VERSION or below MIN_API_VERSION is refused as dockerd refuses it.
Errors are `{"message": ...}` with the status of their engine.errors class.
"""
import http
import logging
import re
import threading
from concurrent import futures
from typing import Callable
from urllib.parse import unquote

import h11

from containerd_py.rpc.listener import Listener, Transport, Trouble
from engine.errors import EngineError, InvalidParameter, http_status
from engine.services.system import API_VERSION, MIN_API_VERSION

from .http import (HIGH_WATER, Hijack, Inflow, RawStream, Reply, Request, Streamed, http_date, json_reply,
                   parse_query)

log = logging.getLogger(__name__)

_PREFIX = re.compile(r"^/v([0-9.]+)(/.*)$")
_PARAM = re.compile(r"\{(\w+)(:\.\*)?\}")
MAX_HEADERS = 1 << 20  # bytes of request line and headers h11 takes before refusing the request
PAGE_NOT_FOUND = Reply(404, b'{"message":"page not found"}\n')  # dockerd's, for a path no route has


def version_tuple(version: str) -> tuple[int, ...]:
    """As moby's versions.compare: dot-separated numbers, missing parts are 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def _compare(a: str, b: str) -> int:
    ta, tb = version_tuple(a), version_tuple(b)
    width = max(len(ta), len(tb))
    ta, tb = ta + (0,) * (width - len(ta)), tb + (0,) * (width - len(tb))
    return (ta > tb) - (ta < tb)


class Router:
    """Routes by method and path pattern: `{name}` is one path segment,
    `{name:.*}` the rest of the path (image names have slashes)."""

    def __init__(self):
        self._exact: dict[tuple[str, str], Callable] = {}
        self._patterns: list[tuple[str, re.Pattern, Callable]] = []

    def add(self, method: str, pattern: str, handler: Callable[[Request], object]) -> None:
        if "{" not in pattern:
            self._exact[(method, pattern)] = handler
            return
        regex = "^" + _PARAM.sub(lambda m: f"(?P<{m[1]}>.*)" if m[2] else f"(?P<{m[1]}>[^/]+)",
                                 pattern) + "$"
        self._patterns.append((method, re.compile(regex), handler))

    def find(self, method: str, path: str) -> tuple[Callable, dict[str, str]] | None:
        handler = self._exact.get((method, path))
        if handler is not None:
            return handler, {}
        for route_method, regex, handler in self._patterns:
            if route_method == method:
                m = regex.match(path)
                if m:
                    return handler, m.groupdict()
        return None


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


class Connection:
    """One client connection: the handler the listener feeds (see its module
    docstring). h11's state is guarded by `lock`; the worker of the request in
    flight writes the reply, the listener's thread everything else."""

    def __init__(self, server: "Server", transport: Transport):
        self.server, self.transport = server, transport
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADERS)
        self.lock = threading.Lock()
        self.drained = threading.Condition(self.lock)  # the transport's buffer went low, or the connection ended
        self.request: Request | None = None  # in flight
        self.raw: Inflow | None = None        # hijacked: the client's bytes go here
        self.lost = False
        self.close_when_drained = False

    # -- the listener's thread ------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        with self.lock:
            if self.raw is not None:
                self.raw.feed(data)
                return
            self.h11.receive_data(data)
            self._next_events()

    def eof_received(self) -> None:
        with self.lock:
            if self.raw is not None:
                self.raw.end()
                return
            self.h11.receive_data(b"")
            self._next_events()

    def writable(self) -> None:
        with self.lock:
            self.drained.notify_all()
            if self.close_when_drained and not self.transport.buffered:
                self.transport.close()

    def connection_lost(self) -> None:
        with self.lock:
            self.lost = True
            self.drained.notify_all()
            for inflow in (self.raw, self.request.body if self.request else None):
                if inflow is not None:
                    inflow.end()
            if self.request is not None:
                self.request.disconnected.set()

    # -- under the lock ---------------------------------------------------------------------------------------------
    def _next_events(self) -> None:
        """Hands what h11 has parsed on: a request to a worker, body bytes to its inflow."""
        while not self.lost:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                self._refuse(e)
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:  # a pipelined request waits for this reply; hold the client back meanwhile
                self.transport.pause_reading()
                return
            if isinstance(event, h11.Request):
                self._start(event)
            elif isinstance(event, h11.Data):
                self.request.body.feed(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.request.body.end()
                self._maybe_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                if self.request is None:
                    self.transport.close()
                else:  # as Go's server cancels the request's context: a stream in flight ends
                    self.request.disconnected.set()
                return

    def _start(self, event: h11.Request) -> None:
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        path = unquote(path)  # routes match the decoded path, as gorilla/mux matches Go's URL.Path
        headers: dict[str, str] = {}
        for name, value in event.headers:
            name, value = name.decode("latin-1"), value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        if self.h11.they_are_waiting_for_100_continue:  # as Go's server: the body is wanted (curl waits for this)
            self._write(h11.InformationalResponse(status_code=100, reason=b"Continue", headers=[]))
        body = Inflow(self.transport.pause_reading, self.transport.resume_reading)
        self.request = Request(event.method.decode("latin-1"), path, parse_query(query), headers, "", body)
        self.server.dispatch(self, self.request)

    def _refuse(self, error: h11.RemoteProtocolError) -> None:
        """A request h11 cannot parse: 400 (or its hint) if a reply can still go out, then the end."""
        log.debug("a bad HTTP request: %s", error)
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE) and self.request is None:
            status = error.error_status_hint
            body = f"{status} {_reason(status).decode()}".encode()
            self._write(h11.Response(status_code=status, reason=_reason(status),
                                     headers=[("Content-Type", "text/plain; charset=utf-8"), ("Connection", "close"),
                                              ("Content-Length", str(len(body)))]))
            self._write(h11.Data(data=body))
            self._write(h11.EndOfMessage())
        self._close_once_drained()

    def _maybe_next_cycle(self) -> None:
        """After a reply, once the request is read too: ready for the next one (or the end)."""
        if self.h11.our_state is h11.MUST_CLOSE:
            self._close_once_drained()
        elif self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.request = None
            self.h11.start_next_cycle()
            self.transport.resume_reading()
            self.server.listener.call_soon(self._resume)

    def _resume(self) -> None:
        """On the listener's thread: requests that came pipelined are already in h11's buffer."""
        with self.lock:
            if self.raw is None and self.request is None:
                self._next_events()

    def _close_once_drained(self) -> None:
        if self.transport.buffered:
            self.close_when_drained = True
        else:
            self.transport.close()

    def _write(self, event) -> None:
        data = self.h11.send(event)
        if data:
            self.transport.write(data)

    # -- the worker's side ------------------------------------------------------------------------------------------
    def send(self, *events) -> bool:
        """Sends h11 events, then waits while much is unsent; False once the client is gone."""
        with self.lock:
            if self.lost:
                return False
            for event in events:
                self._write(event)
            while self.transport.buffered > HIGH_WATER and not self.lost:
                self.drained.wait()
            return not self.lost

    def finish(self) -> None:
        """The reply is complete: the request's unread body is dropped, the connection goes on or ends."""
        with self.lock:
            if self.request is not None:
                self.request.body.discard()
            if not self.lost:
                self._maybe_next_cycle()

    def hijack(self, request: Request, hijack: Hijack) -> RawStream:
        """Leaves HTTP: dockerd's 101 (or bare 200) is sent; the client's bytes go to the stream from now on."""
        upgrade = "upgrade" in request.headers.get("connection", "").lower() and "upgrade" in request.headers
        with self.lock:
            self.raw = Inflow(self.transport.pause_reading, self.transport.resume_reading)
            if upgrade:
                self._write(h11.InformationalResponse(status_code=101, reason=b"UPGRADED", headers=[
                    ("Content-Type", hijack.content_type), ("Connection", "Upgrade"), ("Upgrade", "tcp")]))
            else:
                # h11 would frame a reply to an HTTP/1.1 client; dockerd's hijacked one is bare.
                self.transport.write(f"HTTP/1.1 200 OK\r\nContent-Type: {hijack.content_type}\r\n\r\n".encode())
            leftover, closed = self.h11.trailing_data  # what came after the request, unparsed
            request.body.discard()
            self.raw.feed(bytes(leftover))
            if closed or self.lost:
                self.raw.end()
            self.transport.resume_reading()
        return RawStream(self.raw, self._raw_write, self._raw_close)

    def _raw_write(self, data: bytes) -> None:
        with self.lock:
            if self.lost:
                raise BrokenPipeError("the client has gone")
            self.transport.write(data)
            while self.transport.buffered > HIGH_WATER and not self.lost:
                self.drained.wait()

    def _raw_close(self) -> None:
        with self.lock:
            self._close_once_drained()


class Server:
    """`listen_unix`/`add` sockets, `start`; `stop()` ends serving.

    A request holds its worker for as long as its reply takes, and a stream
    (events, logs -f, wait, attach) for its whole life, as a goroutine holds
    dockerd's: hence many workers (an idle thread costs a stack, not CPU)."""

    def __init__(self, router: Router, max_workers: int = 1024, server_header: str = "engine-py (linux)",
                 max_connections: int | None = None):
        self.router = router
        self.server_header = server_header
        self._pool = futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="api")
        self.listener = Listener(lambda transport: Connection(self, transport), max_connections, name="api")
        self._no_worker = Trouble("api: cannot start a worker thread: {error}; the request waits for one",
                                  "api: worker threads start again, after {count} failures")
        self.stopping = False

    def listen_unix(self, path: str) -> None:
        self.listener.listen_unix(path)

    def add(self, sock) -> None:
        self.listener.add(sock)

    def start(self) -> None:
        self.listener.start()

    def stop(self) -> None:
        """No new connections; those open are closed (streams in flight see `disconnected`)."""
        self.stopping = True
        self.listener.stop_accepting()
        self.listener.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def dispatch(self, conn: Connection, request: Request) -> None:
        try:
            self._pool.submit(self._serve, conn, request)
        except RuntimeError as e:
            if self.stopping:  # the pool is shut down: the connection is being closed
                return
            self._no_worker.failed(e)  # queued, but no thread could start for it: a worker takes it once free
        else:
            self._no_worker.ended()

    # -- a worker -----------------------------------------------------------------------------------------------------
    def _serve(self, conn: Connection, request: Request) -> None:
        log.debug("Calling %s %s", request.method, request.path)
        try:
            reply = self._route(request)
        except Exception as e:  # noqa: BLE001 - every failure is the client's answer, never the server's end
            reply = self._error_reply(e, request)
        try:
            if isinstance(reply, Hijack):
                stream = conn.hijack(request, reply)
                try:
                    reply.serve(stream)
                finally:
                    stream.close()
                return
            self._send(conn, request, reply)
        except Exception:  # noqa: BLE001
            log.exception("api: %s %s failed while replying", request.method, request.path)
            conn.transport.close()
            return
        conn.finish()

    def _route(self, request: Request):
        """The route's reply; 404 for an unknown path, 400 for an unsupported API version."""
        path, version = request.path, None
        m = _PREFIX.match(path)
        if m:
            version, path = m[1], m[2]
        found = self.router.find(request.method, path)
        if found is None and request.method == "HEAD":  # a GET route answers HEAD, without its body
            found = self.router.find("GET", path)
        if found is None:
            return PAGE_NOT_FOUND
        handler, request.params = found
        request.path = path
        if version is not None:
            if _compare(version, API_VERSION) > 0:
                raise InvalidParameter(f"client version {version} is too new. "
                                       f"Maximum supported API version is {API_VERSION}")
            if _compare(version, MIN_API_VERSION) < 0:
                raise InvalidParameter(f"client version {version} is too old. Minimum supported API version is "
                                       f"{MIN_API_VERSION}, please upgrade your client to a newer version")
        request.api_version = version or API_VERSION
        return handler(request)

    def _error_reply(self, error: Exception, request: Request) -> Reply:
        status = http_status(error)
        if not isinstance(error, EngineError):
            log.exception("api: %s %s failed", request.method, request.path)
        elif status >= 500:
            log.error("api: %s %s: %s", request.method, request.path, error)
        else:
            log.info("api: %s %s: %s", request.method, request.path, error)
        return json_reply({"message": str(error)}, status)

    def _headers(self, reply, routed: bool) -> list[tuple[str, str]]:
        headers = list(reply.headers)
        if routed:  # dockerd's version middleware adds these to every routed reply, not to its 404
            headers += [("Api-Version", API_VERSION), ("Docker-Experimental", "false"), ("Ostype", "linux"),
                        ("Server", self.server_header)]
        if reply.content_type:
            headers.append(("Content-Type", reply.content_type))
        headers.append(("Date", http_date()))
        return headers

    def _send(self, conn: Connection, request: Request, reply) -> None:
        headers = self._headers(reply, routed=reply is not PAGE_NOT_FOUND)
        if isinstance(reply, Streamed):
            self._stream(conn, reply, headers)
            return
        body = b"" if reply.status == 304 else reply.body
        if reply.status != 304:
            headers.append(("Content-Length", str(len(body))))
        events = [h11.Response(status_code=reply.status, reason=_reason(reply.status), headers=headers)]
        if body and request.method != "HEAD":
            events.append(h11.Data(data=body))
        conn.send(*events, h11.EndOfMessage())

    def _stream(self, conn: Connection, reply: Streamed, headers) -> None:
        """Headers at once, then each chunk as it comes (h11 frames them chunked)."""
        chunks = iter(reply.chunks)
        try:
            if not conn.send(h11.Response(status_code=reply.status, reason=_reason(reply.status), headers=headers)):
                return
            for chunk in chunks:
                if chunk and not conn.send(h11.Data(data=chunk)):
                    return
            conn.send(h11.EndOfMessage())
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

