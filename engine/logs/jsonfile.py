"""Reads docker's json-file logs as dockerd's json-file driver reads them:
across the rotated files in order (LOG.N ... LOG.1, each maybe gzipped as
LOG.i.gz), `tail` from the end, `since`/`until`, stdout and stderr apart,
and `follow` as the file grows and rotates. The files' entries are json
lines here (JSON_LINES); the local driver's (engine.logs.local) are read
by the same code through their own Format.

Yields Entry(stream, line, time): the bytes of one entry (with its "\\n"
unless it is a part of a split line) and its time in nanoseconds since the
epoch; the API layer frames them and formats times (format_time).
"""
import gzip
import io
import json
import os
import re
import threading
import time
from datetime import datetime, timezone
from json.decoder import scanstring
from typing import BinaryIO, Iterator, NamedTuple, Protocol

FOLLOW_POLL = 0.1  # seconds between looks at a followed file
_CHUNK = 1 << 20
_TAIL_BLOCK = 1 << 16


class Entry(NamedTuple):
    stream: str
    line: bytes
    time: int


class ReadConfig(NamedTuple):
    """What `docker logs` asks for; times in ns since the epoch, 0 for none;
    tail -1 for all. tail counts entries of both streams (as dockerd does)."""
    stdout: bool = True
    stderr: bool = True
    since: int = 0
    until: int = 0
    tail: int = -1


class Format(Protocol):
    """How a log file's bytes are cut into records and decoded."""

    def split(self, data: bytes) -> tuple[list[bytes], bytes]:
        """The whole records at the start of data, and the rest."""

    def tail(self, f: BinaryIO, count: int) -> tuple[list[bytes], int]:
        """The last `count` whole records of f, read from its end, and where its whole records end."""

    def decode(self, record: bytes) -> "Entry | None":
        """The entry of a record; None for one that is not (torn by a crash)."""


def rotated_files(path: str) -> list[str]:
    """The log and its rotated files (LOG.1 is the newest; LOG.i.gz when
    compressed, LOG.i while still being compressed), oldest first."""
    files, n = [], 1
    while True:
        name = f"{path}.{n}"
        if os.path.exists(name) or os.path.exists(name := f"{name}.gz"):
            files.append(name)
            n += 1
        else:
            break
    files.reverse()
    if os.path.exists(path):
        files.append(path)
    return files


def _open(name: str) -> BinaryIO:
    """A log file for reading; a rotated one compressed since it was listed is
    read from its .gz (the logger removes LOG.i once LOG.i.gz is whole)."""
    if name.endswith(".gz"):
        return gzip.open(name)
    try:
        return open(name, "rb")
    except FileNotFoundError:
        if not re.search(r"\.\d+$", name):
            raise
        return gzip.open(f"{name}.gz")


def gzip_last_time(name: str) -> int | None:
    """The time of a compressed file's last entry, from its gzip header's
    Extra (`{"lastTime":...}`, as dockerd writes it); None without one."""
    try:
        with open(name, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:3] != b"\x1f\x8b\x08" or not head[3] & 4:
                return None
            return parse_time(json.loads(f.read(int.from_bytes(head[10:12], "little")))["lastTime"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


_seconds_cache: dict[str, int] = {}


def parse_time(text: str) -> int:
    """RFC 3339 with nanoseconds (what the logger writes, in UTC) to ns since the epoch."""
    if len(text) >= 20 and text[-1] == "Z":
        head = text[:19]
        seconds = _seconds_cache.get(head)
        if seconds is None:
            if len(_seconds_cache) > 4096:
                _seconds_cache.clear()
            seconds = int(datetime.fromisoformat(head).replace(tzinfo=timezone.utc).timestamp())
            _seconds_cache[head] = seconds
        fraction = text[20:-1] if text[19:20] == "." else ""
        return seconds * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)
    stamp = datetime.fromisoformat(text)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000


def format_time(ns: int) -> str:
    """docker's --timestamps form: RFC 3339 with all nine digits, UTC."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:09d}Z"


# The shape the logger (and dockerd) writes, read without a full JSON decode:
# 100k lines of `docker logs` spend most of their time here.
_ENTRY = re.compile(rb'\{"log":"([^"\\]*(?:\\.[^"\\]*)*)","stream":"(stdout|stderr)",(?:"attrs":\{[^{}]*\},)?'
                    rb'"time":"([^"]+)"\}\r?$')

_STREAMS = {b"stdout": "stdout", b"stderr": "stderr"}


def decode(raw: bytes) -> Entry | None:
    """One line of the file; None for a line that is not an entry (torn by a crash)."""
    m = _ENTRY.match(raw)
    try:
        if m is None:
            d = json.loads(raw)
            return Entry(d["stream"], d["log"].encode(), parse_time(d["time"]))
        text = m.group(1)
        newline = text.endswith(b"\\n")
        body = text[:-2] if newline else text
        if b"\\" in body:
            line = scanstring(text.decode() + '"', 0)[0].encode()
        else:  # plain text, but for its newline
            line = body + b"\n" if newline else body
        return Entry(_STREAMS[m.group(2)], line, parse_time(m.group(3).decode()))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


class _JsonLines:
    """json-file's records: one a line."""

    @staticmethod
    def split(data: bytes) -> tuple[list[bytes], bytes]:
        *complete, rest = data.split(b"\n")
        return complete, rest

    @staticmethod
    def tail(f: BinaryIO, count: int) -> tuple[list[bytes], int]:
        pos = end = f.seek(0, os.SEEK_END)
        block = b""
        while pos > 0 and block.count(b"\n") <= count:
            step = min(max(_TAIL_BLOCK, len(block)), pos)  # doubling: few reads for any tail
            pos -= step
            f.seek(pos)
            block = f.read(step) + block
        *lines, unfinished = block.split(b"\n")
        if pos > 0:
            lines = lines[1:]  # cut by the block's start
        return lines[len(lines) - min(len(lines), count):], end - len(unfinished)

    decode = staticmethod(decode)


JSON_LINES: Format = _JsonLines()


def _whole(name: str) -> BinaryIO:
    """A file to tail: a compressed one decompressed in memory (it is at most max-size)."""
    f = _open(name)
    if isinstance(f, gzip.GzipFile):
        with f:
            return io.BytesIO(f.read())
    return f


def _last_records(files: list[str], count: int, fmt: Format) -> tuple[list[bytes], int, bytes]:
    """The last `count` whole records over the files, read backwards from the
    end of the newest; where the whole records of the newest file end (a
    record still being written is left for a follow to read), and the last
    of them (b"" for none)."""
    found: list[bytes] = []
    newest_end, newest_last = 0, b""
    for index in range(len(files) - 1, -1, -1):
        wanted = count - len(found)
        try:
            with _whole(files[index]) as f:
                records, end = fmt.tail(f, max(wanted, 1))
        except FileNotFoundError:  # rotated past max-file since it was listed
            break
        if index == len(files) - 1:
            newest_end, newest_last = end, records[-1] if records else b""
        found[:0] = records[len(records) - min(len(records), wanted):] if wanted else []
        if len(found) >= count:
            break
    return found, newest_end, newest_last


class _Filter:
    """Records decoded, kept by since/until and the streams asked for; `done` once past until."""

    def __init__(self, config: ReadConfig, fmt: Format):
        self.config, self.fmt, self.done = config, fmt, False

    def __call__(self, records) -> Iterator[Entry]:
        c, decode_record = self.config, self.fmt.decode
        for raw in records:
            entry = decode_record(raw)
            if entry is None or (c.since and entry.time < c.since):
                continue
            if c.until and entry.time > c.until:
                self.done = True
                return
            if (c.stdout if entry.stream == "stdout" else c.stderr if entry.stream == "stderr" else False):
                yield entry


class _Cursor:
    """A log file read by whole records; one not finished yet waits for the
    next read. `last` is the last whole record read."""

    def __init__(self, f, fmt: Format):
        self.f, self.fmt, self.rest, self.last = f, fmt, b"", b""

    def lines(self) -> Iterator[bytes]:
        while chunk := self.f.read(_CHUNK):
            complete, self.rest = self.fmt.split(self.rest + chunk)
            if complete:
                self.last = complete[-1]
            yield from complete

    def inode(self) -> int:
        return os.fstat(self.f.fileno()).st_ino

    def close(self) -> None:
        self.f.close()


def _cursor(path: str, fmt: Format, offset: int = 0) -> _Cursor | None:
    try:
        f = _open(path)
    except FileNotFoundError:  # not there yet, or rotated away since it was listed
        return None
    f.seek(offset)
    return _Cursor(f, fmt)


def read(path: str, config: ReadConfig = ReadConfig(), stopped: threading.Event | None = None,
         idle=None, fmt: Format = JSON_LINES) -> Iterator[Entry]:
    """The entries of the log at `path` (and its rotated files); with `stopped`
    (follow), keeps reading as the log grows and rotates until it is set,
    then reads what is left and ends. A follow yields `idle` (when given)
    whenever it has caught up after entries: the reader's cue to send what
    it has gathered before the wait for more.

    A tail is taken at the call, not at the first entry: a follow with
    tail 0 (attach) sees what is written after the call."""
    files = rotated_files(path)
    keep = _Filter(config, fmt)
    if config.tail < 0:
        return _all(path, files, keep, stopped, idle)
    records, newest_end, newest_last = _last_records(files, config.tail, fmt)
    current = _cursor(path, fmt, newest_end) if stopped is not None and files and files[-1] == path else None
    if current:
        current.last = newest_last  # what identifies its file once compressed, if it reads nothing more
    return _tail(path, records, current, keep, stopped, idle)


def _tail(path, records, current, keep, stopped, idle) -> Iterator[Entry]:
    try:
        yield from keep(records)
        if stopped is not None and not keep.done:
            yield from _follow(path, current, keep, stopped, idle)
    finally:
        if current:
            current.close()


def _before(name: str, since: int) -> bool:
    """A compressed file whose entries all precede `since` (its header says
    so): not even decompressed, as dockerd skips it."""
    last = gzip_last_time(name) if since and name.endswith(".gz") else None
    return last is not None and last < since


def _all(path, files, keep, stopped, idle) -> Iterator[Entry]:
    current = None
    try:
        for name in files:
            if name != path and not _before(name, keep.config.since) and (rotated := _cursor(name, keep.fmt)):
                yield from keep(rotated.lines())
                rotated.close()
                if keep.done:
                    return
        if current := _cursor(path, keep.fmt):
            yield from keep(current.lines())
        if stopped is not None and not keep.done:
            yield from _follow(path, current, keep, stopped, idle)
    finally:
        if current:
            current.close()


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return 0


def _position(names: list[str], inodes: list[int], cursor: _Cursor) -> int | None:
    """Where the cursor's file is among the log's files now: by its inode, or,
    once compressed (a new file), as the oldest .gz whose last entry is not
    before the last one the cursor read (later files hold later entries)."""
    mine = cursor.inode()
    if mine in inodes:
        return inodes.index(mine)
    last = cursor.fmt.decode(cursor.last) if cursor.last else None
    if last is not None:
        for index, name in enumerate(names):
            if name.endswith(".gz") and (gzip_last_time(name) or 0) >= last.time:
                return index
    return None


def _newer_files(path: str, cursor: _Cursor) -> list[_Cursor]:
    """After a rotation: the files written after the cursor's, oldest first,
    opened (its file is now LOG.k: LOG.k-1 ... LOG.1, LOG), so that no file is
    skipped when the log rotated more than once between two looks. All of
    them if its file is gone; [] while the new LOG is not there yet."""
    while True:
        names = rotated_files(path)
        inodes = [_inode(name) for name in names]
        mine = _position(names, inodes, cursor)
        newer = names[mine + 1:] if mine is not None else names
        opened = [c for c in (_cursor(name, cursor.fmt) for name in newer) if c is not None]
        if [c.inode() for c in opened] == inodes[len(names) - len(newer):]:
            return opened  # nothing rotated while they were opened
        for c in opened:
            c.close()


def _follow(path: str, cursor: _Cursor | None, keep: _Filter, stopped: threading.Event, idle) -> Iterator[Entry]:
    queue: list[_Cursor] = []
    caught_up = False
    try:
        while True:
            # Stopped, or past until, before this read: what it finds is all there is.
            last_look = stopped.is_set() or bool(keep.config.until and time.time_ns() > keep.config.until)
            if cursor is None:
                cursor = _cursor(path, keep.fmt)
            if cursor is not None:
                for entry in keep(cursor.lines()):
                    caught_up = False
                    yield entry
                if keep.done:
                    return
                if queue:  # rotated away and now read to its end
                    cursor.close()
                    cursor = queue.pop(0)
                    continue
                if _inode(path) not in (0, cursor.inode()):
                    queue = _newer_files(path, cursor)
                    if queue:
                        continue  # the cursor's file once more to its end, then the newer files
            if last_look:
                return
            if idle is not None and not caught_up:
                caught_up = True
                yield idle
            stopped.wait(FOLLOW_POLL)
    finally:
        for c in [cursor, *queue]:
            if c is not None:
                c.close()
