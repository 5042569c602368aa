"""dockerd's `local` log driver's files (moby daemon/logger/local), as the
logger writes them with `format local`: `<container dir>/local-logs/container.log`
and its rotated files, each entry a protobuf LogEntry (source 1, time_nano 2,
line 3 without its "\\n", partial 4, partial_log_metadata 5 {last 1, id 2,
ordinal 3}) between two big-endian uint32s of its size.

LOCAL_FRAMES is its jsonfile.Format: `docker logs` reads these files with
the json-file reader's tail, since/until and follow.
"""
import os
from typing import BinaryIO

from engine.logs.jsonfile import Entry

_SIZE = 4
MAX_RECORD = 1_000_000  # moby's maxMsgLen: a larger size is not an entry's


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes):
    """(field number, value) of a protobuf message: ints for varints, bytes for
    length-delimited fields; ValueError for any other wire type."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        if key & 7 == 0:
            value, pos = _varint(data, pos)
        elif key & 7 == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"wire type {key & 7}")
        yield key >> 3, value


class _LocalFrames:
    """The local driver's records: size, LogEntry, size."""

    @staticmethod
    def split(data: bytes) -> tuple[list[bytes], bytes]:
        records, pos, end = [], 0, len(data)
        while end - pos >= 2 * _SIZE:
            size = int.from_bytes(data[pos:pos + _SIZE], "big")
            if size > MAX_RECORD:
                return records, b""  # not a frame: nothing after it can be found
            if end - pos < size + 2 * _SIZE:
                break
            records.append(data[pos + _SIZE:pos + _SIZE + size])
            pos += size + 2 * _SIZE
        return records, data[pos:]

    @classmethod
    def tail(cls, f: BinaryIO, count: int) -> tuple[list[bytes], int]:
        """Back from the end by the sizes after each entry, as dockerd's
        getTailReader; a file whose end is not a whole entry (being written)
        is read from its start instead."""
        end = pos = f.seek(0, os.SEEK_END)
        starts = []
        while pos > 0 and len(starts) < count:
            f.seek(pos - _SIZE)
            size = int.from_bytes(f.read(_SIZE), "big")
            start = pos - size - 2 * _SIZE
            if start < 0 or size > MAX_RECORD or (f.seek(start), f.read(_SIZE))[1] != size.to_bytes(_SIZE, "big"):
                f.seek(0)
                records, rest = cls.split(f.read())
                return records[len(records) - min(len(records), count):], end - len(rest)
            starts.append(start)
            pos = start
        if not starts:
            return [], end
        f.seek(starts[-1])
        records, _ = cls.split(f.read(end - starts[-1]))
        return records, end

    @staticmethod
    def decode(record: bytes) -> Entry | None:
        source, line, time_ns, partial, last = b"", b"", 0, False, False
        try:
            for number, value in _fields(record):
                if number == 1:
                    source = value
                elif number == 2:
                    time_ns = value - (1 << 64) if value >= 1 << 63 else value
                elif number == 3:
                    line = value
                elif number == 4:
                    partial = bool(value)
                elif number == 5:
                    last = any(n == 1 and v for n, v in _fields(value))
            return Entry(source.decode(), line if partial and not last else line + b"\n", time_ns)
        except (IndexError, ValueError, TypeError, AttributeError):
            return None


LOCAL_FRAMES = _LocalFrames()
