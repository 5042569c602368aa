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
from datetime import datetime, timezone
from json.decoder import scanstring
from typing import Iterator, NamedTuple

FOLLOW_POLL = 0.1  # seconds between looks at a followed file
_CHUNK = 1 << 20


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
                step = min(_CHUNK, pos)
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


def _lines_from(f, buffer: bytes = b"") -> tuple[list[bytes], bytes]:
    """The whole lines readable from f now, and the part of a line left over."""
    lines: list[bytes] = []
    while chunk := f.read(_CHUNK):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines.extend(complete)
    return lines, buffer


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


def read(path: str, config: ReadConfig = ReadConfig(), stopped: threading.Event | None = None) -> Iterator[Entry]:
    """The entries of the log at `path` (and its rotated files); with `stopped`
    (follow), keeps reading as the log grows and rotates until it is set,
    then reads what is left and ends."""
    keep = _Filter(config)
    files = rotated_files(path)
    if config.tail >= 0:
        lines, newest_end = _last_lines(files, config.tail)
        yield from keep(lines)
        if stopped is None or keep.done:
            return
        current = _open_at(path, newest_end if files and files[-1] == path else 0)
    else:
        current = None
        for name in files:
            with open(name, "rb") as f:
                lines, _ = _lines_from(f)
            if name == path:  # followed from where this read ended
                current = _open_at(path, sum(len(line) + 1 for line in lines))
            yield from keep(lines)
            if keep.done:
                if current:
                    current.close()
                return
        if stopped is None:
            if current:
                current.close()
            return
        current = current or _open_at(path, 0)
    yield from _follow(path, current, keep, stopped)


def _open_at(path: str, offset: int):
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    f.seek(offset)
    return f


def _replaced(path: str, f) -> bool:
    """Whether the log at `path` is now another file than f (rotated)."""
    try:
        return os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        return False


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return 0


def _newer_files(path: str, f) -> list:
    """After a rotation: the files written after f's, oldest first, opened
    (f's file is now LOG.k: LOG.k-1 ... LOG.1, LOG), so that no file is
    skipped when the log rotated more than once between two looks. All of
    them if f's file is gone; [] while the new LOG is not there yet."""
    mine = os.fstat(f.fileno()).st_ino
    while True:
        names = rotated_files(path)
        inodes = [_inode(name) for name in names]
        newer = names[inodes.index(mine) + 1:] if mine in inodes else names
        opened = [f for f in (_open_at(name, 0) for name in newer) if f is not None]
        if [os.fstat(o.fileno()).st_ino for o in opened] == inodes[len(names) - len(newer):]:
            return opened  # nothing rotated while they were opened
        for o in opened:
            o.close()


def _follow(path: str, f, keep: _Filter, stopped: threading.Event) -> Iterator[Entry]:
    buffer, queue = b"", []
    try:
        while True:
            last_look = stopped.is_set()  # set before this read: what it finds is all there is
            if f is None:
                f = _open_at(path, 0)
            if f is not None:
                lines, buffer = _lines_from(f, buffer)
                yield from keep(lines)
                if keep.done:
                    return
                if queue:  # f was rotated away and is now read to its end
                    f.close()
                    f, buffer = queue.pop(0), b""
                    continue
                if _replaced(path, f):
                    queue = _newer_files(path, f)
                    if queue:
                        continue  # f once more to its end, then the newer files
            if last_look:
                return
            stopped.wait(FOLLOW_POLL)
    finally:
        for done_with in [f, *queue]:
            if done_with is not None:
                done_with.close()
