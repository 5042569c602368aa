"""Helpers for the logs tests (a plain module: a conftest.py here would shadow
containerd_py's, whose tests import from theirs).

- Logger: engine-py-logger started as a containerd shim starts a logging
  binary: the container's stdout on fd 3, stderr on fd 4, readiness on fd 5.
- write_entries: a json-file log written directly, for the reader's tests.
- logged_engine: a container service whose containers log through
  engine-py-logger (LoggerSink), with its log service; Client: the input of
  a hijacked attach.
- PRINTER and wait_growth for the survival tests; `names` for the CLI's.
"""
import fcntl
import json
import os
import signal
import threading
import time
import uuid
from contextlib import contextmanager

import pytest

from containers_helpers import engine_on
from engine.api.http import Inflow
from engine.logs import BINARY, jsonfile
from engine.logs.jsonfile import format_time
from engine.logs.sink import LoggerSink
from engine.services.logs import LogService, LogsRequest


def _high(fd: int) -> int:
    """fd moved above 5, so that the dup2s onto 3-5 never clobber one another."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Logger:
    """A running engine-py-logger; `out`/`err` are the write ends of its pipes."""

    def __init__(self, *args: str, env: dict | None = None):
        out_r, self.out = map(_high, os.pipe())
        err_r, self.err = map(_high, os.pipe())
        ready_r, ready_w = map(_high, os.pipe())
        argv = [BINARY, *args]
        self.pid = os.posix_spawn(BINARY, argv, env or {"CONTAINER_ID": "c", "CONTAINER_NAMESPACE": "n"},
                                  file_actions=[(os.POSIX_SPAWN_DUP2, out_r, 3), (os.POSIX_SPAWN_DUP2, err_r, 4),
                                                (os.POSIX_SPAWN_DUP2, ready_w, 5)])
        for fd in (out_r, err_r, ready_w):
            os.close(fd)
        self.ready = os.read(ready_r, 1) == b""  # closed, not written to, once the log is open
        os.close(ready_r)
        self.status = None

    def write(self, data: bytes, stream: str = "stdout") -> None:
        fd = self.out if stream == "stdout" else self.err
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def close(self) -> int:
        """Closes both pipes (the container is gone) and waits for the logger's exit status."""
        for fd in (self.out, self.err):
            if fd >= 0:
                os.close(fd)
        self.out = self.err = -1
        return self.wait()

    def terminate(self) -> int:
        """SIGTERM with the pipes still open, as containerd's shim does on delete."""
        os.kill(self.pid, signal.SIGTERM)
        status = self.wait()
        self.close()
        return status

    def wait(self) -> int:
        if self.status is None:
            _, st = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(st)
        return self.status


def entries_of(*paths) -> list[dict]:
    """Every line of the files as JSON, in order; a line that is not JSON fails the test."""
    found = []
    for path in paths:
        with open(path, "rb") as f:
            for raw in f:
                assert raw.endswith(b"\n"), f"unfinished line in {path}: {raw[:80]!r}"
                found.append(json.loads(raw))
    return found


def write_entries(path, entries, mode: str = "a") -> None:
    """(stream, text, time in ns) entries as json-file lines."""
    with open(path, mode) as f:
        for stream, text, ns in entries:
            f.write(json.dumps({"log": text, "stream": stream, "time": format_time(ns)}) + "\n")


class Logged:
    """An engine whose containers log through engine-py-logger, and its log service."""

    def __init__(self, engine, sink):
        self.engine, self.sink = engine, sink

    @property
    def service(self):
        return self.engine.service

    @property
    def logs(self):
        return LogService(self.engine.service, self.sink)

    def run(self, cmd, name=None, host_config=None, **config):
        record = self.service.create({"Image": "busybox", "Cmd": cmd, **config}, host_config or {}, name)
        self.service.start(record.id)
        return record

    def lines(self, ref, **request):
        tty, entries = self.logs.logs(ref, LogsRequest(**request), threading.Event())
        return [(e.stream, e.line) for e in entries]


@contextmanager
def logged_engine(address, busybox, tmp_path, **options):
    sink = LoggerSink(str(tmp_path / "data" / "containers"), str(tmp_path / "exec"))
    with engine_on(address, tmp_path / "data", busybox, log_sink=sink, **options) as made:
        yield Logged(made, sink)


class Client:
    """A hijacked client's input as the attach reads it."""

    def __init__(self):
        self.inflow = Inflow()

    def send(self, data: bytes) -> None:
        self.inflow.feed(data)


# -- the log promise's tests (a container printing continuously) --------------------

PIPE_CAPACITY = 64 * 1024  # a pipe's default buffer: a blocked copier stalls its container after this much
GROWTH_WHILE_DOWN = 16 * PIPE_CAPACITY
DEADLINE = 120  # seconds; only guards against a hang, never asserted on
# One line in ten on stderr; every line numbered, so a lost one shows.
PRINTER = ('i=0; pad=$(printf "%0200d" 0); while :; do i=$((i+1)); '
           'if [ $((i % 10)) = 0 ]; then echo "$i $pad" >&2; else echo "$i $pad"; fi; '
           '[ $((i % 20)) = 0 ] && usleep 5000; done')


def logged_bytes(path: str) -> int:
    """What the log and its rotated files hold, a compressed one by its
    uncompressed size (gzip's trailer)."""
    while True:
        try:
            return sum(_gzip_size(f) if f.endswith(".gz") else os.path.getsize(f) for f in jsonfile.rotated_files(path))
        except FileNotFoundError:  # rotated or compressed while it was counted
            continue


def _gzip_size(name: str) -> int:
    with open(name, "rb") as f:
        f.seek(-4, os.SEEK_END)
        return int.from_bytes(f.read(4), "little")


def wait_growth(path: str, by: int) -> None:
    start, deadline = logged_bytes(path), time.monotonic() + DEADLINE
    while logged_bytes(path) < start + by:
        assert time.monotonic() < deadline, f"the log stopped growing at {logged_bytes(path)} bytes"
        time.sleep(0.05)


# -- the CLI tests ------------------------------------------------------------------

def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def names(engine_py, dockerd):
    """Makes unique container names, removed from engine-py and dockerd afterwards."""
    made = []
    yield lambda: made.append(unique("l")) or made[-1]
    for name in made:
        for daemon in (engine_py, dockerd):
            daemon.docker("rm", "-f", name, check=False)
