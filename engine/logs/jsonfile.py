"""Reads docker's json-file logs as dockerd's json-file driver reads them:
across the rotated files in order, `tail` from the end, `since`/`until`,
stdout and stderr apart, and `follow` as the file grows and rotates.

Yields Entry(stream, line, time): the bytes of one entry (with its "\\n"
unless it is a part of a split line) and its time in nanoseconds since the
epoch; the API layer frames them and formats times (format_time).
"""
import json
import os
import re
import threading
import time
from datetime import datetime, timezone
from json.decoder import scanstring
from typing import Iterator, NamedTuple

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


def rotated_files(path: str) -> list[str]:
    """The log and its rotated files (LOG.1 is the newest), oldest first."""
    files, n = [], 1
    while os.path.exists(f"{path}.{n}"):
        files.append(f"{path}.{n}")
        n += 1
    files.reverse()
    if os.path.exists(path):
        files.append(path)
    return files


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


def _last_lines(files: list[str], count: int) -> tuple[list[bytes], int]:
    """The last `count` whole lines over the files, read backwards from the
    end of the newest; and where the whole lines of the newest file end (a
    line still being written is left for a follow to read)."""
    found: list[bytes] = []
    newest_end = 0
    for index in range(len(files) - 1, -1, -1):
        with open(files[index], "rb") as f:
            pos = end = f.seek(0, os.SEEK_END)
            block = b""
            while pos > 0 and block.count(b"\n") <= count - len(found):
                step = min(max(_TAIL_BLOCK, len(block)), pos)  # doubling: few reads for any tail
                pos -= step
                f.seek(pos)
                block = f.read(step) + block
        *lines, unfinished = block.split(b"\n")
        if index == len(files) - 1:
            newest_end = end - len(unfinished)
        if pos > 0:
            lines = lines[1:]  # cut by the block's start
        wanted = count - len(found)
        found[:0] = lines[len(lines) - min(len(lines), wanted):]
        if len(found) >= count:
            break
    return found, newest_end


class _Filter:
    """since/until and the streams asked for; `done` once past until."""

    def __init__(self, config: ReadConfig):
        self.config, self.done = config, False

    def __call__(self, raw_lines) -> Iterator[Entry]:
        c = self.config
        for raw in raw_lines:
            entry = decode(raw)
            if entry is None or (c.since and entry.time < c.since):
                continue
            if c.until and entry.time > c.until:
                self.done = True
                return
            if (c.stdout if entry.stream == "stdout" else c.stderr if entry.stream == "stderr" else False):
                yield entry


class _Cursor:
    """A log file read by whole lines; a line not finished yet waits for the next read."""

    def __init__(self, f):
        self.f, self.rest = f, b""

    def lines(self) -> Iterator[bytes]:
        while chunk := self.f.read(_CHUNK):
            *complete, self.rest = (self.rest + chunk).split(b"\n")
            yield from complete

    def inode(self) -> int:
        return os.fstat(self.f.fileno()).st_ino

    def close(self) -> None:
        self.f.close()


def _cursor(path: str, offset: int = 0) -> _Cursor | None:
    try:
        f = open(path, "rb")
    except FileNotFoundError:  # not there yet, or rotated away since it was listed
        return None
    f.seek(offset)
    return _Cursor(f)


def read(path: str, config: ReadConfig = ReadConfig(), stopped: threading.Event | None = None,
         idle=None) -> Iterator[Entry]:
    """The entries of the log at `path` (and its rotated files); with `stopped`
    (follow), keeps reading as the log grows and rotates until it is set,
    then reads what is left and ends. A follow yields `idle` (when given)
    whenever it has caught up after entries: the reader's cue to send what
    it has gathered before the wait for more.

    A tail is taken at the call, not at the first entry: a follow with
    tail 0 (attach) sees what is written after the call."""
    files = rotated_files(path)
    if config.tail < 0:
        return _all(path, files, _Filter(config), stopped, idle)
    lines, newest_end = _last_lines(files, config.tail)
    current = _cursor(path, newest_end) if stopped is not None and files and files[-1] == path else None
    return _tail(path, lines, current, _Filter(config), stopped, idle)


def _tail(path, lines, current, keep, stopped, idle) -> Iterator[Entry]:
    try:
        yield from keep(lines)
        if stopped is not None and not keep.done:
            yield from _follow(path, current, keep, stopped, idle)
    finally:
        if current:
            current.close()


def _all(path, files, keep, stopped, idle) -> Iterator[Entry]:
    current = None
    try:
        for name in files:
            if name != path and (rotated := _cursor(name)):
                yield from keep(rotated.lines())
                rotated.close()
                if keep.done:
                    return
        if current := _cursor(path):
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


def _newer_files(path: str, cursor: _Cursor) -> list[_Cursor]:
    """After a rotation: the files written after the cursor's, oldest first,
    opened (its file is now LOG.k: LOG.k-1 ... LOG.1, LOG), so that no file is
    skipped when the log rotated more than once between two looks. All of
    them if its file is gone; [] while the new LOG is not there yet."""
    mine = cursor.inode()
    while True:
        names = rotated_files(path)
        inodes = [_inode(name) for name in names]
        newer = names[inodes.index(mine) + 1:] if mine in inodes else names
        opened = [c for c in map(_cursor, newer) if c is not None]
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
                cursor = _cursor(path)
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
