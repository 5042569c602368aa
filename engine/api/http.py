"""What a route receives and returns: the request, its body as a stream, and
the kinds of reply (whole, streamed, hijacked). The server (server.py) does
the HTTP; routes know only these types.
"""
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable
from urllib.parse import parse_qs

from engine import gojson
from engine.errors import InvalidParameter

HIGH_WATER, LOW_WATER = 1 << 20, 256 << 10  # bytes of a body buffered before the peer is held back, and let go


class Inflow:
    """Bytes from the peer for a reader on another thread: a request's body, or
    a hijacked connection's input. Fed on the listener's thread; `read` blocks.
    Past HIGH_WATER unread bytes `pause()` is called, below LOW_WATER `resume()`."""

    def __init__(self, pause: Callable[[], None] = lambda: None, resume: Callable[[], None] = lambda: None):
        self._pause, self._resume = pause, resume
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._ended = False
        self._discarding = False
        self._ready = threading.Condition()

    def feed(self, data: bytes) -> None:
        with self._ready:
            if self._discarding or self._ended or not data:
                return
            self._chunks.append(bytes(data))
            self._buffered += len(data)
            if self._buffered > HIGH_WATER and not self._paused:
                self._paused = True
                self._pause()
            self._ready.notify_all()

    def end(self) -> None:
        """No more data: reads return b"" once the buffer is empty."""
        with self._ready:
            self._ended = True
            self._ready.notify_all()

    def discard(self) -> None:
        """The reader is gone: what is buffered and what still comes is dropped."""
        with self._ready:
            self._discarding = True
            self._chunks.clear()
            self._buffered = 0
            self._let_go()
            self._ready.notify_all()

    def read(self, n: int = -1) -> bytes:
        """Up to n bytes (all, to the end, when n < 0); b"" at the end."""
        if n < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        with self._ready:
            while not self._chunks and not self._ended and not self._discarding:
                self._ready.wait()
            if not self._chunks:
                return b""
            chunk = self._chunks.popleft()
            if len(chunk) > n:
                chunk, rest = chunk[:n], chunk[n:]
                self._chunks.appendleft(rest)
            self._buffered -= len(chunk)
            if self._buffered < LOW_WATER:
                self._let_go()
            return chunk

    def _let_go(self) -> None:
        if self._paused:
            self._paused = False
            self._resume()


_REQUIRED = object()  # int_arg without a default


@dataclass
class Request:
    method: str
    path: str                      # without the /v1.NN prefix and the query
    query: dict[str, list[str]]
    headers: dict[str, str]        # names lower-case; a repeated header's values joined by ", "
    api_version: str               # the client's (from the prefix), or the server's own
    body: Inflow
    params: dict[str, str] = field(default_factory=dict)  # the route pattern's {names}
    disconnected: threading.Event = field(default_factory=threading.Event)  # the client has gone

    def arg(self, name: str, default: str | None = None) -> str | None:
        """A query parameter's last value, as Go's r.Form.Get takes the first: docker sends each once."""
        values = self.query.get(name)
        return values[0] if values else default

    def int_arg(self, name: str, default=_REQUIRED):
        """A number parameter as dockerd's strconv.Atoi reads it, with its
        error; absent or empty gives ``default``, or that error without one."""
        value = self.arg(name) or ""
        if not value and default is not _REQUIRED:
            return default
        try:
            return int(value)
        except ValueError:
            raise InvalidParameter(f'strconv.Atoi: parsing "{value}": invalid syntax') from None

    def bool_arg(self, name: str) -> bool:
        """dockerd's httputils.BoolValue: set and not one of "", "0", "no", "false", "none"."""
        return (self.arg(name) or "").strip().lower() not in ("", "0", "no", "false", "none")

    def json_content_type(self) -> None:
        """dockerd's 400 unless the body is said to be JSON (or nothing is said)."""
        if self.headers.get("content-type", "application/json").split(";")[0].strip() not in ("application/json", ""):
            raise InvalidParameter(f"unsupported Content-Type header ({self.headers['content-type']}): "
                                   "must be 'application/json'")

    def json(self):
        """The body as JSON (None when empty), or dockerd's 400 for a bad one."""
        self.json_content_type()
        raw = self.body.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidParameter(f"invalid JSON: {e}") from None


def parse_query(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(seconds: float | None = None) -> str:
    """The Date header's form (RFC 9110's IMF-fixdate), in English whatever
    the locale: email.utils.formatdate's, without the email package (~1 MiB)."""
    t = time.gmtime(seconds)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


@dataclass
class Reply:
    """A whole reply."""
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_reply(obj, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Reply:
    """dockerd's httputils.WriteJSON: Go's encoder, a newline after."""
    return Reply(status, gojson.encode(obj) + b"\n", "application/json", headers or [])


@dataclass
class Streamed:
    """A reply sent chunk by chunk as `chunks` yields them, its headers at once
    (a client waits on them: `docker wait`, `events`, `logs -f`). The iterable
    is closed when the client goes away, at the next chunk; a long wait inside
    it should watch `request.disconnected`."""
    chunks: Iterable[bytes]
    status: int = 200
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Hijack:
    """The connection leaves HTTP: after `101 UPGRADED` (`Upgrade: tcp`
    requested) or dockerd's bare `200 OK` (not requested), `serve(stream)`
    has the raw connection (a RawStream) on the request's worker."""
    serve: Callable[["RawStream"], None]
    content_type: str = "application/vnd.docker.raw-stream"


class RawStream:
    """A hijacked connection as its route sees it: `read(n)` blocks for the
    client's bytes (b"" once it has closed its side or gone), `write` sends
    (waiting while much is unsent), `close` ends the connection once what was
    written has gone out."""

    def __init__(self, inflow: Inflow, write: Callable[[bytes], None], close: Callable[[], None]):
        self.read, self.write, self.close = inflow.read, write, close
